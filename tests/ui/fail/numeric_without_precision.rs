use etl_runtime::EtlTable;

use bigdecimal::BigDecimal;

#[derive(EtlTable)]
#[etl(table = "orders", primary_key(id))]
pub struct Order {
    pub id: i64,
    pub amount: BigDecimal,
    #[etl(sql_type = "numeric")]
    pub total: Option<BigDecimal>,
}

fn main() {}
