use etl_runtime::EtlTable;

#[derive(EtlTable)]
#[etl(table = "orders", primary_key(id))]
pub struct Order {
    #[etl(array = "list")]
    pub id: i64,
    #[etl(numeric = "float")]
    pub amount: f64,
}

fn main() {}
