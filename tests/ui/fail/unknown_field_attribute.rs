use etl_runtime::EtlTable;

#[derive(EtlTable)]
#[etl(table = "notes", primary_key(id))]
pub struct Note {
    pub id: i64,
    #[etl(rename = "type")]
    pub type_: String,
}

fn main() {}
