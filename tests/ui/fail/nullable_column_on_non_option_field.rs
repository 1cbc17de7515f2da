use etl_runtime::EtlTable;

#[derive(EtlTable)]
#[etl(table = "notes", primary_key(id))]
pub struct Note {
    pub id: i64,
    #[etl(sql_type = "text", nullable)]
    pub body: String,
}

fn main() {}
