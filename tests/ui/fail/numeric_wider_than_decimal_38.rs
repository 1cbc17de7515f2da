use etl_runtime::EtlTable;

use bigdecimal::BigDecimal;

#[derive(EtlTable)]
#[etl(table = "orders", primary_key(id))]
pub struct Order {
    pub id: i64,
    #[etl(sql_type = "numeric(50,2)")]
    pub amount: BigDecimal,
}

fn main() {}
