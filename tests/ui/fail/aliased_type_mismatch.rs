use etl_runtime::EtlTable;

/// An alias hides the type from the derive's syntax check; the trait bounds still catch it.
type Count = u64;

#[derive(EtlTable)]
#[etl(table = "events", primary_key(id))]
pub struct Event {
    pub id: i64,
    #[etl(sql_type = "bigint")]
    pub count: Count,
}

fn main() {}
