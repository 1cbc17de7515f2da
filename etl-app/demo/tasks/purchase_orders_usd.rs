//! Purchase orders with their amount in US dollars and with tax, in exact decimals.
//!
//! The currency is the order's `options->>'currency'`; `currencies.conversion_rate` is the
//! price of one unit in USD and `tax_rates` holds the rate per order type. A missing lookup
//! (no currency, an unknown or inactive one, no tax rate for the type) leaves the derived
//! amounts NULL and keeps the row. Amounts round to cents half away from zero, as
//! PostgreSQL's `round(numeric, 2)` does: first the USD amount, then the amount with tax.

use std::collections::HashMap;

use bigdecimal::{BigDecimal, One, RoundingMode};
use diesel::prelude::*;
use etl_runtime::EtlTable;
use etl_runtime::run::task::{TaskError, Transform};

use crate::models::currencies::currencies;
use crate::models::purchase_orders::PurchaseOrder;
use crate::models::tax_rates::tax_rates;

pub struct PurchaseOrdersUsd;

#[derive(Debug, Clone, PartialEq, EtlTable)]
#[etl(output, primary_key(id))]
pub struct PurchaseOrderUsd {
    pub id: i64,
    #[etl(column = "type")]
    pub type_: String,
    pub currency: Option<String>,
    #[etl(sql_type = "numeric(12,2)")]
    pub amount: Option<BigDecimal>,
    #[etl(sql_type = "numeric(18,8)")]
    pub usd_rate: Option<BigDecimal>,
    #[etl(sql_type = "numeric(14,2)")]
    pub amount_usd: Option<BigDecimal>,
    #[etl(sql_type = "numeric(5,4)")]
    pub tax_rate: Option<BigDecimal>,
    #[etl(sql_type = "numeric(14,2)")]
    pub amount_usd_with_tax: Option<BigDecimal>,
}

pub struct Rates {
    usd_per_unit: HashMap<String, BigDecimal>,
    tax_per_type: HashMap<String, BigDecimal>,
}

impl Transform for PurchaseOrdersUsd {
    const NAME: &'static str = "purchase_orders_usd";
    type Source = PurchaseOrder;
    type Lookups = Rates;
    type Output = PurchaseOrderUsd;

    fn load(conn: &mut PgConnection) -> Result<Rates, TaskError> {
        let usd_per_unit = currencies::table
            .filter(currencies::is_active.eq(true))
            .select((currencies::code, currencies::conversion_rate))
            .load::<(String, BigDecimal)>(conn)?
            .into_iter()
            .collect();
        let tax_per_type = tax_rates::table
            .select((tax_rates::order_type, tax_rates::rate))
            .load::<(String, BigDecimal)>(conn)?
            .into_iter()
            .collect();
        Ok(Rates {
            usd_per_unit,
            tax_per_type,
        })
    }

    fn transform(
        order: &PurchaseOrder,
        rates: &Rates,
        out: &mut Vec<PurchaseOrderUsd>,
    ) -> Result<(), TaskError> {
        let currency = order
            .options
            .as_ref()
            .and_then(|options| options.get("currency"))
            .and_then(|code| code.as_str())
            .map(str::to_string);
        let usd_rate = currency
            .as_ref()
            .and_then(|code| rates.usd_per_unit.get(code))
            .cloned();
        let tax_rate = rates.tax_per_type.get(&order.type_).cloned();
        let amount_usd = match (&order.amount, &usd_rate) {
            (Some(amount), Some(rate)) => Some(cents(amount * rate)),
            _ => None,
        };
        let amount_usd_with_tax = match (&amount_usd, &tax_rate) {
            (Some(amount), Some(tax)) => Some(cents(amount * (BigDecimal::one() + tax))),
            _ => None,
        };
        out.push(PurchaseOrderUsd {
            id: order.id,
            type_: order.type_.clone(),
            currency,
            amount: order.amount.clone(),
            usd_rate,
            amount_usd,
            tax_rate,
            amount_usd_with_tax,
        });
        Ok(())
    }
}

/// Rounds to cents, half away from zero (PostgreSQL's `round(numeric, 2)`).
fn cents(value: BigDecimal) -> BigDecimal {
    value.with_scale_round(2, RoundingMode::HalfUp)
}
