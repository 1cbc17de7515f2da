//! Derived exports that ship with the demo: written by hand, one task per file, registered
//! here next to the generated table models.

pub mod purchase_orders_usd;
pub mod spend_per_day;

use etl_runtime::Export;

/// Every task of this directory.
pub fn exports() -> Vec<Export> {
    vec![
        Export::transform::<purchase_orders_usd::PurchaseOrdersUsd>(),
        Export::aggregate::<spend_per_day::SpendPerDay>(),
    ]
}
