use etl_runtime::EtlTable;

#[derive(EtlTable)]
#[etl(table = "notes", primary_key(id))]
pub struct Note {
    #[etl(sql_type = "bigint")]
    pub id: i32,
}

fn main() {}
