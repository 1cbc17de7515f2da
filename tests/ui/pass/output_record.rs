use bigdecimal::BigDecimal;
use etl_runtime::{OutputRecord, RecordBatchEncoder};

#[derive(Debug, Clone, etl_runtime::EtlTable)]
#[etl(output, primary_key(day))]
pub struct DailySpend {
    pub day: chrono::NaiveDate,
    pub orders: i64,
    #[etl(sql_type = "numeric(18,2)")]
    pub total: Option<BigDecimal>,
}

fn main() {
    assert_eq!(DailySpend::PRIMARY_KEY, &["day"]);
    let mut encoder = <DailySpend as OutputRecord>::Encoder::with_capacity(1);
    encoder
        .push(&DailySpend {
            day: chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            orders: 3,
            total: Some("12.30".parse().unwrap()),
        })
        .unwrap();
    let batch = encoder.finish().unwrap();
    assert_eq!(batch.num_rows(), 1);
    assert!(!batch.schema().field(1).is_nullable());
}
