use bigdecimal::BigDecimal;
use chrono::NaiveDateTime;
use etl_runtime::EtlTable;

#[derive(Debug, Clone, EtlTable)]
#[etl(table = "notes", primary_key(id))]
pub struct Note {
    pub id: i64,
    pub title: String,
    pub body: Option<String>,
    #[etl(column = "type")]
    pub type_: String,
    #[etl(sql_type = "numeric(12,2)")]
    pub amount: Option<BigDecimal>,
    pub tags: Option<Vec<Option<String>>>,
    #[etl(sql_type = "interval")]
    pub wait: Option<String>,
    pub created_at: NaiveDateTime,
}

#[test]
fn info() {
    assert_eq!(Note::INFO.name, "notes");
    println!("{}", Note::INFO.select_sql());
}
