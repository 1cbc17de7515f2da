//! Each key of `partition_by` must name a column that can be partitioned the way it asks; every
//! mistake is one error at the attribute.
use etl_runtime::EtlTable;

#[derive(EtlTable)]
#[etl(table = "orders", primary_key(id), partition_by = "placed_at:day, warehouse")]
pub struct UnknownColumn {
    pub id: i64,
    pub placed_at: chrono::NaiveDateTime,
}

#[derive(EtlTable)]
#[etl(table = "orders", primary_key(id), partition_by = "status:month")]
pub struct GranularityOnText {
    pub id: i64,
    pub status: String,
}

#[derive(EtlTable)]
#[etl(table = "orders", primary_key(id), partition_by = "placed_at")]
pub struct TimestampWithoutGranularity {
    pub id: i64,
    pub placed_at: chrono::NaiveDateTime,
}

#[derive(EtlTable)]
#[etl(table = "orders", primary_key(id), partition_by = "amount")]
pub struct NumericKey {
    pub id: i64,
    #[etl(sql_type = "numeric(12,2)")]
    pub amount: bigdecimal::BigDecimal,
}

#[derive(EtlTable)]
#[etl(table = "orders", primary_key(id), partition_by = "placed_at:week")]
pub struct UnknownGranularity {
    pub id: i64,
    pub placed_at: chrono::NaiveDateTime,
}

fn main() {}
