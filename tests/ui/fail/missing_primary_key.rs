use etl_runtime::EtlTable;

#[derive(EtlTable)]
#[etl(table = "notes")]
pub struct Note {
    pub id: i64,
}

fn main() {}
