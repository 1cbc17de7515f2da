use etl_runtime::EtlTable;

#[derive(EtlTable)]
#[etl(table = "notes", primary_key(id))]
pub struct Note {
    pub id: i64,
    pub title: String,
    #[etl(column = "title")]
    pub heading: String,
}

fn main() {}
