//! `#[derive(EtlTable)]`: one annotated model is the single source of truth for a table.
//!
//! From a struct like
//!
//! ```text
//! use bigdecimal::BigDecimal;
//! use chrono::NaiveDateTime;
//! use etl_runtime::EtlTable;
//!
//! #[derive(Debug, Clone, EtlTable)]
//! #[etl(table = "notes", primary_key(id))]
//! pub struct Note {
//!     pub id: i64,
//!     pub title: String,
//!     pub body: Option<String>,
//!     #[etl(column = "type")]
//!     pub type_: String,
//!     #[etl(sql_type = "numeric(12,2)")]
//!     pub amount: Option<BigDecimal>,
//!     pub tags: Option<Vec<Option<String>>>,
//!     pub created_at: NaiveDateTime,
//! }
//! ```
//!
//! (a complete, tested example is in `etl_runtime`'s documentation) the derive generates,
//! next to the struct:
//! - the Diesel `table!` (module `notes`), with `#[sql_name]` where a field is renamed, and
//!   `Selectable`/`Queryable` for `diesel::pg::Pg`, each field checked against its column's SQL
//!   type at compile time (diesel's `check_for_backend`);
//! - sqlx's `FromRow`, by column name, with the same renames;
//! - `etl_runtime::EtlTable`: the table metadata (schema, table, primary key, columns with
//!   their SQL types and nullability, the SELECT list), decoding of COPY tuples, and the
//!   encoder that turns models into Arrow record batches for Parquet's `ArrowWriter`.
//!
//! The crate that holds models must depend on `diesel` (the `table!` macro refers to it by
//! name) and `etl-runtime`.
//!
//! # Attributes
//!
//! On the struct, `#[etl(...)]` with:
//!
//! | key | example | meaning |
//! |---|---|---|
//! | `table` | `table = "purchase_orders"` | the table name in PostgreSQL, exactly (required) |
//! | `schema` | `schema = "sales"` | the schema; `public` by default |
//! | `primary_key` | `primary_key(id)`, `primary_key(tenant_id, id)` | the key's fields; errors name the key of the row at fault |
//! | `no_primary_key` | `no_primary_key` | the table has none (one of the two is required) |
//!
//! On a field, `#[etl(...)]` with:
//!
//! | key | example | meaning |
//! |---|---|---|
//! | `column` | `column = "type"`, `column = "Display Name"` | the column name when it differs from the field name; it is also the Parquet column name |
//! | `sql_type` | `sql_type = "numeric(12,2)"`, `sql_type = "varchar(32)[]"` | the column's SQL type; inferred from the Rust type when left out (`i64` is `bigint`, `String` is `text`, ...), required for `numeric` |
//! | `nullable` | `nullable` | states that the column is nullable: the field must then be an `Option` |
//! | `numeric` | `numeric = "string"`, `numeric = "f64"` | a numeric as exact decimal text (field `String`) or as a lossy DOUBLE (field `f64`) |
//! | `array` | `array = "list"` | an array as a native Parquet LIST instead of JSON text |
//! | `uuid` | `uuid = "bytes"` | a uuid as FIXED_LEN_BYTE_ARRAY(16) / UUID instead of text |
//! | `infinity` | `infinity = "null"` | `±infinity` in a date or timestamp column becomes NULL instead of an error (field must be an `Option`) |
//!
//! Every mistake is a compile error at the offending attribute or field; all of them are
//! reported at once.

mod ast;
mod check;
mod ctxt;
mod expand;
mod rust_type;

use proc_macro::TokenStream;
use syn::{DeriveInput, parse_macro_input};

/// See the [crate documentation](crate) for the attribute language.
#[proc_macro_derive(EtlTable, attributes(etl))]
pub fn derive_etl_table(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand::derive(&input)
        .unwrap_or_else(|errors| expand::with_fallback(&input, errors))
        .into()
}
