//! Spend per day and status: how many purchase orders were created each day in each status,
//! and the sum of their amounts (NULL when none has an amount, as SQL's `sum`).

use bigdecimal::BigDecimal;
use chrono::NaiveDate;
use diesel::PgConnection;
use etl_runtime::EtlTable;
use etl_runtime::run::task::{Aggregate, TaskError};

use crate::models::purchase_orders::PurchaseOrder;

pub struct SpendPerDay;

#[derive(Debug, Clone, PartialEq, EtlTable)]
#[etl(output)]
pub struct DailySpend {
    pub day: NaiveDate,
    pub status: Option<String>,
    pub orders: i64,
    #[etl(sql_type = "numeric(18,2)")]
    pub total_amount: Option<BigDecimal>,
}

#[derive(Default)]
pub struct Totals {
    orders: i64,
    amount: Option<BigDecimal>,
}

impl Aggregate for SpendPerDay {
    const NAME: &'static str = "spend_per_day";
    type Source = PurchaseOrder;
    type Lookups = ();
    type Key = (NaiveDate, Option<String>);
    type Acc = Totals;
    type Output = DailySpend;

    fn load(_: &mut PgConnection) -> Result<(), TaskError> {
        Ok(())
    }

    fn key(order: &PurchaseOrder, _: &()) -> Result<Option<Self::Key>, TaskError> {
        Ok(Some((order.created_at.date(), order.status.clone())))
    }

    fn fold(totals: &mut Totals, order: &PurchaseOrder, _: &()) -> Result<(), TaskError> {
        totals.orders += 1;
        if let Some(amount) = &order.amount {
            totals.amount = Some(totals.amount.take().unwrap_or_default() + amount);
        }
        Ok(())
    }

    fn merge(into: &mut Totals, from: Totals) {
        into.orders += from.orders;
        into.amount = match (into.amount.take(), from.amount) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
    }

    fn finish((day, status): Self::Key, totals: Totals) -> Result<DailySpend, TaskError> {
        Ok(DailySpend {
            day,
            status,
            orders: totals.orders,
            total_amount: totals.amount,
        })
    }
}
