//! Partition keys: identity on text, integer and boolean columns, granularities on date,
//! timestamp and timestamptz columns, several in order.
use etl_runtime::{EtlTable, PartitionTransform};

#[derive(EtlTable)]
#[etl(
    table = "orders",
    primary_key(id),
    partition_by = "region, shard, express, placed_at:day, placed_on:month, shipped_at:year"
)]
pub struct Order {
    pub id: i64,
    pub region: Option<String>,
    pub shard: i16,
    pub express: bool,
    pub placed_at: chrono::NaiveDateTime,
    pub placed_on: chrono::NaiveDate,
    pub shipped_at: Option<chrono::DateTime<chrono::Utc>>,
}

fn main() {
    let keys = <Order as EtlTable>::INFO.partition_by;
    let names: Vec<&str> = keys.iter().map(|k| k.name).collect();
    assert_eq!(
        names,
        ["region", "shard", "express", "placed_at_day", "placed_on_month", "shipped_at_year"]
    );
    assert_eq!(keys[3].column, 4);
    assert_eq!(keys[5].transform, PartitionTransform::Year);
}
