use bigdecimal::BigDecimal;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use etl_runtime::{EtlTable, RecordBatchEncoder};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, EtlTable)]
#[etl(
    table = "Everything Table",
    schema = "sales",
    primary_key(tenant_id, id),
    omit = "ssn, notes"
)]
pub struct Everything {
    pub tenant_id: i32,
    pub id: i64,
    #[etl(column = "type")]
    pub type_: String,
    #[etl(column = "Display Name", sql_type = "varchar(40)", nullable)]
    pub display_name: Option<String>,
    #[etl(sql_type = "numeric(12,2)")]
    pub amount: BigDecimal,
    #[etl(sql_type = "numeric", numeric = "string")]
    pub exact_text: Option<String>,
    #[etl(sql_type = "numeric(10,4)", numeric = "f64")]
    pub rate: Option<f64>,
    #[etl(array = "list")]
    pub scores: Option<Vec<Option<i32>>>,
    #[etl(array = "json", sql_type = "numeric(8,3)[]")]
    pub weights: Option<Vec<Option<BigDecimal>>>,
    #[etl(uuid = "bytes")]
    pub key: Uuid,
    #[etl(uuid = "string")]
    pub other_key: Option<Uuid>,
    #[etl(infinity = "null")]
    pub valid_until: Option<DateTime<Utc>>,
    #[etl(infinity = "error")]
    pub day: NaiveDate,
    pub at: NaiveDateTime,
    pub t: Option<NaiveTime>,
    pub doc: Option<serde_json::Value>,
    pub raw: Vec<u8>,
    #[etl(sql_type = "interval")]
    pub wait: Option<String>,
    #[etl(sql_type = "mood")]
    pub feeling: String,
    #[etl(mask = "hmac_sha256")]
    pub email: Option<String>,
    #[etl(sql_type = "date[]", mask = "hmac_sha256")]
    pub birthdays: String,
}

fn main() {
    use etl_runtime::EtlTable as _;
    assert_eq!(Everything::INFO.schema, "sales");
    assert_eq!(Everything::INFO.primary_key, &["tenant_id", "id"]);
    let schema = <Everything as etl_runtime::EtlTable>::Encoder::schema();
    assert_eq!(schema.field(3).name(), "Display Name");
    assert!(!schema.field(0).is_nullable());
    assert_eq!(Everything::INFO.omitted, &["ssn", "notes"]);
    let masked: Vec<&str> = Everything::INFO
        .columns
        .iter()
        .filter(|c| c.mask.is_some())
        .map(|c| c.select)
        .collect();
    assert_eq!(masked, ["\"email\"", "\"birthdays\"::text"]);
    assert_eq!(schema.field(20).data_type().to_string(), "Utf8");
    let _ = everything_table::table;
}
