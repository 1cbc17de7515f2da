use etl_runtime::EtlTable;

#[derive(EtlTable)]
#[etl(table = "notes", primary_key(id), colour = "red")]
pub struct Note {
    pub id: i64,
}

fn main() {}
