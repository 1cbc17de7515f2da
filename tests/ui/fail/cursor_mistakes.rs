//! The cursor of incremental runs must be a NOT NULL timestamp column of a table with a
//! primary key whose deleted rows can be found; every mistake is one error at the attribute.
use etl_runtime::EtlTable;

#[derive(EtlTable)]
#[etl(table = "accounts", primary_key(id), cursor = "changed_at")]
pub struct UnknownColumn {
    pub id: i64,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

#[derive(EtlTable)]
#[etl(table = "accounts", primary_key(id), cursor = "version")]
pub struct NotATimestamp {
    pub id: i64,
    pub version: i64,
}

#[derive(EtlTable)]
#[etl(table = "accounts", primary_key(id), cursor = "updated_at")]
pub struct NullableCursor {
    pub id: i64,
    pub updated_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(EtlTable)]
#[etl(table = "accounts", no_primary_key, cursor = "updated_at")]
pub struct WithoutKey {
    pub id: i64,
    pub updated_at: chrono::NaiveDateTime,
}

#[derive(EtlTable)]
#[etl(table = "prices", primary_key(amount), cursor = "updated_at")]
pub struct KeyThatDoesNotSortAsBytes {
    #[etl(sql_type = "numeric(12,2)")]
    pub amount: bigdecimal::BigDecimal,
    pub updated_at: chrono::NaiveDateTime,
}

#[derive(EtlTable)]
#[etl(output, cursor = "updated_at")]
pub struct OutputRecord {
    pub updated_at: chrono::NaiveDateTime,
}

fn main() {}
