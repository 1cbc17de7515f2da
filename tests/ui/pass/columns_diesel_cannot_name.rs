//! Columns that Diesel's `table!` cannot take under their own name compile: a column named like
//! its table, and names `table!` defines itself. Inside `table!` they are the field's name with
//! `_column` appended (then a number if a field already has that name); Rust keywords and
//! Diesel DSL method names need nothing.
use diesel::prelude::*;
use etl_runtime::EtlTable;

#[derive(Debug, EtlTable)]
#[etl(table = "address", primary_key(id))]
pub struct Address {
    pub id: i32,
    pub address: String,
    /// A real column named like the renamed one: the renamed one gets a number.
    pub address_column: Option<String>,
    pub star: Option<i32>,
    pub table: Option<String>,
    pub columns: Option<String>,
    pub dsl: Option<String>,
    pub all_columns: Option<String>,
    pub diesel: Option<String>,
    pub select: Option<String>,
    pub filter: Option<String>,
    pub count: Option<i64>,
    pub r#type: Option<String>,
}

fn main() {
    let query = address::table
        .filter(address::address_column2.eq("Main St 1"))
        .filter(address::address_column.is_null())
        .select((
            address::star_column,
            address::table_column,
            address::columns_column,
            address::dsl_column,
            address::all_columns_column,
            address::diesel_column,
            address::select,
            address::filter,
            address::count,
            address::r#type,
        ));
    let sql = diesel::debug_query::<diesel::pg::Pg, _>(&query).to_string();
    for expected in [
        r#""address"."address" = $1"#,
        r#""address"."address_column" IS NULL"#,
        r#""address"."star""#,
        r#""address"."table""#,
        r#""address"."columns""#,
        r#""address"."dsl""#,
        r#""address"."all_columns""#,
        r#""address"."diesel""#,
        r#""address"."select""#,
        r#""address"."type""#,
    ] {
        assert!(sql.contains(expected), "{expected} not in {sql}");
    }
    let names: Vec<&str> = Address::INFO.columns.iter().map(|c| c.name).collect();
    assert_eq!(names[1], "address");
    assert_eq!(names[3], "star");
    // The model still selects every column, under its real name.
    let _ = Address::as_select();
}
