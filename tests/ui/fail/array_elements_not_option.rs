use etl_runtime::EtlTable;

#[derive(EtlTable)]
#[etl(table = "orders", primary_key(id))]
pub struct Order {
    pub id: i64,
    #[etl(sql_type = "text[]")]
    pub tags: Vec<String>,
}

fn main() {}
