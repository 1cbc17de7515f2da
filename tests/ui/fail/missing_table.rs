use etl_runtime::EtlTable;

#[derive(EtlTable)]
#[etl(primary_key(id))]
pub struct Event {
    pub id: i64,
}

fn main() {}
