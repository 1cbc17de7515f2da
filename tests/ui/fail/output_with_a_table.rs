use etl_runtime::EtlTable;

#[derive(EtlTable)]
#[etl(output, table = "daily_spend")]
pub struct DailySpend {
    pub day: chrono::NaiveDate,
    pub orders: i64,
}

fn main() {}
