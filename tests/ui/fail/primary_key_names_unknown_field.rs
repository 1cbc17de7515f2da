use etl_runtime::EtlTable;

#[derive(EtlTable)]
#[etl(table = "notes", primary_key(note_id))]
pub struct Note {
    pub id: i64,
}

fn main() {}
