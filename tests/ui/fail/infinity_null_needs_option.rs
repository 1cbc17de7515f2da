use etl_runtime::EtlTable;

#[derive(EtlTable)]
#[etl(table = "events", primary_key(id))]
pub struct Event {
    pub id: i64,
    #[etl(infinity = "null")]
    pub at: chrono::NaiveDateTime,
}

fn main() {}
