//! The rules a model must follow, each checked here once, with the reason in a comment. The
//! result is a [`Table`] in which every column's SQL type, encoding and nullability is known.

use std::collections::HashMap;

use syn::{Ident, Type};

use crate::ast::{Field, Model};
use crate::ctxt::Ctxt;
use crate::rust_type::{self, Inferred};
use etl_types::{ColumnEncoding, OptIns, PartitionSpec, Scalar, SqlType};

/// Diesel is built with `32-column-tables`; wider tables do not compile in `table!`.
pub const MAX_COLUMNS: usize = 32;

pub struct Table<'a> {
    pub model: &'a Model<'a>,
    /// An output record (`#[etl(output)]`): no table, no Diesel, no reading.
    pub output: bool,
    pub table: String,
    pub schema: String,
    /// The module `table!` generates.
    pub module: Ident,
    /// Indexes into `columns` of the primary key.
    pub primary_key: Vec<usize>,
    pub columns: Vec<Column<'a>>,
    /// Partition keys in directory order, each with the index of its column.
    pub partition_by: Vec<(usize, PartitionSpec)>,
    /// The index of the cursor column, for incremental runs.
    pub cursor: Option<usize>,
    /// Columns of the table left out on purpose.
    pub omitted: Vec<String>,
}

pub struct Column<'a> {
    pub field: &'a Field<'a>,
    pub name: String,
    /// The column's name inside the generated `table!`: the field's name, or that name with
    /// `_column` appended where Diesel cannot take it (see [`diesel_column_ident`]).
    pub diesel_ident: Ident,
    /// The SQL type as declared or inferred (`numeric(12,2)`).
    pub sql_text: String,
    pub sql: SqlType,
    pub opt: OptIns,
    pub encoding: ColumnEncoding,
    /// Whether the field is an `Option`.
    pub nullable: bool,
    /// The field's type without `Option`.
    pub value_ty: &'a Type,
}

pub fn check<'a>(cx: &mut Ctxt, model: &'a Model<'a>) -> Option<Table<'a>> {
    let output = model.output.is_some();
    // An output record is written by a task: it has no table of its own to read.
    if output {
        for (lit, key) in [(&model.table, "table"), (&model.schema, "schema")] {
            if let Some(lit) = lit {
                cx.error_spanned_by(
                    lit,
                    format!("an `output` record has no source table; remove `{key}`"),
                );
            }
        }
    }
    let table = match &model.table {
        _ if output => model.ident.to_string(),
        Some(lit) if !lit.value().is_empty() => lit.value(),
        Some(lit) => {
            cx.error_spanned_by(lit, "the table name is empty");
            return None;
        }
        None => {
            cx.error_spanned_by(
                model.ident,
                "missing `#[etl(table = \"...\")]`: the PostgreSQL table this model reads",
            );
            return None;
        }
    };
    let schema = model
        .schema
        .as_ref()
        .map_or_else(|| "public".to_string(), |lit| lit.value());
    if let Some(lit) = &model.schema
        && !is_plain_ident(&schema)
    {
        // Diesel's `table!` takes the schema as a Rust identifier.
        cx.error_spanned_by(lit, "the schema must be a plain lower-case identifier");
    }
    let module = Ident::new(&module_name(&table), model.ident.span());

    if model.fields.is_empty() {
        cx.error_spanned_by(model.ident, "a model needs at least one field");
        return None;
    }
    if model.fields.len() > MAX_COLUMNS {
        cx.error_spanned_by(
            model.ident,
            format!(
                "{} columns: Diesel's `table!` (built with `32-column-tables`) takes at most {MAX_COLUMNS}; \
                 export a subset with `cargo xtask gen --columns`",
                model.fields.len()
            ),
        );
    }

    let mut columns = Vec::with_capacity(model.fields.len());
    let mut seen: HashMap<String, &Ident> = HashMap::new();
    let field_names: Vec<String> = model.fields.iter().map(|f| f.ident.to_string()).collect();
    let mut diesel_names: Vec<String> = Vec::new();
    let module_text = module.to_string();
    for field in &model.fields {
        let diesel_ident =
            diesel_column_ident(field.ident, &module_text, &field_names, &diesel_names);
        diesel_names.push(diesel_ident.to_string());
        let Some(column) = check_field(cx, field, diesel_ident) else {
            continue;
        };
        // Two fields on one column would write two Parquet columns of the same name.
        if let Some(first) = seen.insert(column.name.clone(), field.ident) {
            let ident = field.ident;
            cx.error_spanned_by(
                field
                    .column
                    .as_ref()
                    .map_or_else(|| quote::quote!(#ident), |lit| quote::quote!(#lit)),
                format!(
                    "duplicate column `{}`: field `{first}` already maps to it",
                    column.name
                ),
            );
        }
        columns.push(column);
    }

    // Errors name the key of the row at fault, so a table with a key must declare it; one
    // without says so explicitly rather than by omission.
    let mut primary_key = Vec::new();
    match (&model.primary_key, &model.no_primary_key) {
        (Some(keys), None) => {
            if keys.is_empty() {
                cx.error_spanned_by(model.ident, "`primary_key()` names no field");
            }
            for key in keys {
                if !model.fields.iter().any(|f| f.ident == key) {
                    cx.error_spanned_by(
                        key,
                        format!("`primary_key` names `{key}`, which is not a field of this struct"),
                    );
                } else if let Some(i) = columns.iter().position(|c| c.field.ident == key) {
                    primary_key.push(i);
                }
            }
        }
        (None, Some(_)) => {}
        (Some(_), Some(flag)) => cx.error_spanned_by(
            flag,
            "`no_primary_key` contradicts `primary_key(...)`; keep one",
        ),
        (None, None) if output => {}
        (None, None) => cx.error_spanned_by(
            model.ident,
            "missing primary key: add `#[etl(primary_key(field, ...))]`, or `#[etl(no_primary_key)]` for a table that has none",
        ),
    }

    // Masking happens where a table is read; a task's records are its own values.
    if output {
        for column in &columns {
            if let Some(lit) = &column.field.mask {
                cx.error_spanned_by(
                    lit,
                    "`mask` applies to columns of tables, not of `output` records: mask the \
                     source table's column",
                );
            }
        }
    }

    let partition_by = match &model.partition_by {
        Some(lit) => check_partition_by(cx, lit, output, &columns),
        None => Vec::new(),
    };

    let cursor = model
        .cursor
        .as_ref()
        .and_then(|lit| check_cursor(cx, lit, output, &primary_key, &columns));

    let omitted = model
        .omit
        .as_ref()
        .map(|lit| check_omit(cx, lit, output, &columns))
        .unwrap_or_default();

    Some(Table {
        model,
        output,
        table,
        schema,
        module,
        primary_key,
        columns,
        partition_by,
        cursor,
        omitted,
    })
}

/// `omit` names columns of the table that are not fields: each once, none a field's column.
fn check_omit(
    cx: &mut Ctxt,
    lit: &syn::LitStr,
    output: bool,
    columns: &[Column<'_>],
) -> Vec<String> {
    if output {
        cx.error_spanned_by(lit, "`omit` applies to tables, not to `output` records");
        return Vec::new();
    }
    let mut omitted: Vec<String> = Vec::new();
    for name in lit.value().split(',').map(str::trim) {
        if name.is_empty() {
            cx.error_spanned_by(lit, "`omit` lists column names, separated by commas");
        } else if columns.iter().any(|c| c.name == name) {
            cx.error_spanned_by(
                lit,
                format!("`omit` names `{name}`, which is a column of this model"),
            );
        } else if omitted.iter().any(|o| o == name) {
            cx.error_spanned_by(lit, format!("`omit` names `{name}` twice"));
        } else {
            omitted.push(name.to_string());
        }
    }
    omitted
}

/// The cursor names a NOT NULL timestamp column of a table with a primary key: incremental
/// runs add the rows changed since the last run, and readers keep each key's latest version.
fn check_cursor(
    cx: &mut Ctxt,
    lit: &syn::LitStr,
    output: bool,
    primary_key: &[usize],
    columns: &[Column<'_>],
) -> Option<usize> {
    if output {
        cx.error_spanned_by(lit, "`cursor` applies to tables, not to `output` records");
        return None;
    }
    let name = lit.value();
    let Some(index) = columns.iter().position(|c| c.name == name) else {
        let known: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
        cx.error_spanned_by(
            lit,
            format!(
                "cursor names `{name}`, which is not a column of this model (columns: {})",
                known.join(", ")
            ),
        );
        return None;
    };
    let column = &columns[index];
    if let Err(why) = etl_types::check_cursor(&column.encoding, column.nullable) {
        cx.error_spanned_by(lit, format!("cursor `{name}` ({}): {why}", column.sql_text));
        return None;
    }
    if primary_key.is_empty() {
        // Batches repeat changed rows; without a key a reader cannot tell versions apart.
        cx.error_spanned_by(
            lit,
            "a `cursor` needs `primary_key(...)`: incremental batches add new versions of \
             rows, and readers keep each key's latest",
        );
        return None;
    }
    for &key in primary_key {
        let column = &columns[key];
        let wire = column.sql.selected_scalar(column.opt).wire();
        if let Err(why) = etl_types::check_version_key(wire) {
            cx.error_spanned_by(
                lit,
                format!(
                    "a `cursor` needs a key whose deletions can be found: `{}` ({}): {why}",
                    column.name, column.sql_text
                ),
            );
            return None;
        }
    }
    Some(index)
}

/// Each key names a column of the model (by its PostgreSQL name) that can be partitioned the
/// way it asks; every mistake is an error at the attribute's string.
fn check_partition_by(
    cx: &mut Ctxt,
    lit: &syn::LitStr,
    output: bool,
    columns: &[Column<'_>],
) -> Vec<(usize, PartitionSpec)> {
    if output {
        // A task's records are written as one set of files.
        cx.error_spanned_by(
            lit,
            "`partition_by` applies to tables, not to `output` records",
        );
        return Vec::new();
    }
    let specs = match etl_types::parse_partition_by(&lit.value()) {
        Ok(specs) => specs,
        Err(e) => {
            cx.error_spanned_by(lit, format!("partition_by {e}"));
            return Vec::new();
        }
    };
    let mut keys = Vec::new();
    for spec in specs {
        let Some(index) = columns.iter().position(|c| c.name == spec.column) else {
            let known: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
            cx.error_spanned_by(
                lit,
                format!(
                    "partition_by names `{}`, which is not a column of this model (columns: {})",
                    spec.column,
                    known.join(", ")
                ),
            );
            continue;
        };
        // A derived key must not shadow a column of the files.
        if spec.transform.granularity().is_some()
            && let Some(clash) = columns.iter().find(|c| c.name == spec.key_name())
        {
            cx.error_spanned_by(
                lit,
                format!(
                    "partition key `{}` would have the name of column `{}`",
                    spec.key_name(),
                    clash.name
                ),
            );
            continue;
        }
        if columns[index].opt.mask.is_some() {
            // One directory per hashed value, each named by the hash: nothing a reader prunes by.
            cx.error_spanned_by(
                lit,
                format!(
                    "partition_by `{}`: a masked column cannot be a partition key",
                    spec.column
                ),
            );
            continue;
        }
        if let Err(why) = spec.transform.check(&columns[index].encoding) {
            cx.error_spanned_by(
                lit,
                format!(
                    "partition_by `{}` ({}): {why}",
                    spec.column, columns[index].sql_text
                ),
            );
            continue;
        }
        keys.push((index, spec));
    }
    keys
}

fn check_field<'a>(cx: &mut Ctxt, field: &'a Field<'a>, diesel_ident: Ident) -> Option<Column<'a>> {
    let option_inner = rust_type::option_inner(field.ty);
    let nullable = option_inner.is_some();
    let value_ty = option_inner.unwrap_or(field.ty);
    if rust_type::option_inner(value_ty).is_some() {
        cx.error_spanned_by(
            field.ty,
            "`Option<Option<T>>`: a column is NULL or a value, use `Option<T>`",
        );
        return None;
    }
    let name = field.column_name();
    if name.is_empty() {
        cx.error_spanned_by(&field.column, "the column name is empty");
        return None;
    }
    let canonical = rust_type::canonical(value_ty);

    // The SQL type: as written, or implied by the Rust type.
    let (sql_text, sql_span): (String, proc_macro2::TokenStream) = match &field.sql_type {
        Some(lit) => (lit.value(), quote::quote!(#lit)),
        None => {
            let ty = value_ty;
            match canonical.as_deref().map(rust_type::infer_sql_type) {
                Some(Inferred::Sql(sql)) => (sql, quote::quote!(#ty)),
                Some(Inferred::NumericNeedsPrecision) => {
                    cx.error_spanned_by(
                        ty,
                        format!(
                            "field `{}` is a numeric without precision: write `#[etl(sql_type = \"numeric(p, s)\")]` \
                             so it is exported exactly as DECIMAL(p, s) (`cargo xtask gen` reads them from the live table)",
                            field.ident
                        ),
                    );
                    return None;
                }
                _ => {
                    cx.error_spanned_by(
                        ty,
                        format!(
                            "cannot tell the SQL type of field `{}` from its Rust type; add `#[etl(sql_type = \"...\")]`",
                            field.ident
                        ),
                    );
                    return None;
                }
            }
        }
    };
    let sql = match SqlType::parse(&sql_text) {
        Ok(sql) => sql,
        Err(e) => {
            cx.error_spanned_by(&sql_span, e);
            return None;
        }
    };

    let opt = OptIns {
        numeric_f64: field.numeric.as_ref().is_some_and(|l| l.value() == "f64"),
        numeric_string: field
            .numeric
            .as_ref()
            .is_some_and(|l| l.value() == "string"),
        array_list: field.array.as_ref().is_some_and(|l| l.value() == "list"),
        uuid_bytes: field.uuid.as_ref().is_some_and(|l| l.value() == "bytes"),
        infinity_null: field.infinity.as_ref().is_some_and(|l| l.value() == "null"),
        mask: field
            .mask
            .as_ref()
            .and_then(|l| etl_types::Mask::parse(&l.value())),
    };
    // A masked column is written as its hash: an opt-in about how its value is written has
    // nothing to apply to.
    if let Some(mask) = &field.mask {
        for (lit, option) in [
            (&field.numeric, "numeric"),
            (&field.array, "array"),
            (&field.uuid, "uuid"),
            (&field.infinity, "infinity"),
        ] {
            if let Some(lit) = lit {
                cx.error_spanned_by(
                    lit,
                    format!(
                        "`{option}` says how `{name}` is written, but `mask = \"{}\"` writes its hash; keep one",
                        mask.value()
                    ),
                );
            }
        }
    }
    // An opt-in that does not apply to the column's type is a misunderstanding, not a no-op.
    let misplaced = |cx: &mut Ctxt, lit: &Option<syn::LitStr>, applies: bool, what: &str| {
        if let Some(lit) = lit
            && !applies
        {
            cx.error_spanned_by(
                lit,
                format!(
                    "this option applies to {what} columns, and `{}` is `{sql_text}`",
                    name
                ),
            );
        }
    };
    misplaced(
        cx,
        &field.numeric,
        matches!(sql.scalar, Scalar::Numeric(_)),
        "numeric",
    );
    misplaced(cx, &field.array, sql.array, "array");
    misplaced(cx, &field.uuid, sql.scalar == Scalar::Uuid, "uuid");
    misplaced(
        cx,
        &field.infinity,
        sql.scalar.can_be_infinite() && !sql.array,
        "date and timestamp",
    );
    if opt.infinity_null && !nullable {
        cx.error_spanned_by(
            field.ty,
            "`infinity = \"null\"` writes NULL, so the field must be an `Option`",
        );
    }
    if let Some(flag) = &field.nullable_flag
        && !nullable
    {
        cx.error_spanned_by(
            flag,
            format!(
                "column `{name}` is nullable but field `{}` is not an `Option`: a NULL would fail the export; use `Option<{}>`",
                field.ident,
                canonical.as_deref().unwrap_or("...")
            ),
        );
    }

    let encoding = match sql.encoding(opt) {
        Ok(encoding) => encoding,
        Err(message) => {
            cx.error_spanned_by(&sql_span, format!("column `{name}`: {message}"));
            return None;
        }
    };

    // The field's Rust type against the mapping table. Unknown names (aliases) are left to
    // the trait bounds of the expansion.
    let expected = rust_type::canonical_expected(&sql.rust_type(opt));
    if let Some(actual) = &canonical
        && rust_type::is_known(actual)
        && *actual != expected
    {
        let message = match opt.mask {
            // The field holds what is selected: the value's text, which the export hashes.
            Some(_) => format!(
                "column `{name}` is masked, so it is read as its text and written as its hash: \
                 field `{}` must be `String`, not `{actual}`",
                field.ident
            ),
            None => format!(
                "column `{name}` is `{sql_text}`, which maps to `{expected}`, but field `{}` is `{actual}`",
                field.ident
            ),
        };
        cx.error_spanned_by(value_ty, message);
        return None;
    }

    Some(Column {
        field,
        name,
        diesel_ident,
        sql_text,
        sql,
        opt,
        encoding,
        nullable,
        value_ty,
    })
}

/// Names Diesel's `table!` defines itself in a table's module (`table`, `star`, the `columns`
/// and `dsl` modules, ...), so that a column cannot have them.
const DIESEL_RESERVED: &[&str] = &[
    "table",
    "star",
    "columns",
    "dsl",
    "all_columns",
    "diesel",
    "SqlType",
    "BoxedQuery",
];

/// The column's identifier inside the generated `table!` (and so in the Diesel DSL of tasks:
/// `address::address_column`). It is the field's name, except where Diesel cannot take it: the
/// table's own module name (`address.address`), a name `table!` defines itself
/// ([`DIESEL_RESERVED`]), or a name that does not start with a lower-case letter or `_` (it
/// could shadow one of Diesel's SQL types, which `table!` imports). Those get `_column`
/// appended, then a number if a field already has that name. The SQL name is unchanged: the
/// generated `table!` keeps it through `#[sql_name]`.
pub fn diesel_column_ident(
    field: &Ident,
    module: &str,
    fields: &[String],
    taken: &[String],
) -> Ident {
    let name = field.to_string();
    let bare = name.trim_start_matches("r#");
    let clashes = bare == module
        || DIESEL_RESERVED.contains(&bare)
        || !bare.starts_with(|c: char| c.is_lowercase() || c == '_');
    if !clashes {
        return field.clone();
    }
    let free = |candidate: &str| {
        candidate != module
            && !fields.iter().any(|f| f == candidate)
            && !taken.iter().any(|t| t == candidate)
    };
    let mut candidate = format!("{bare}_column");
    let mut n = 2;
    while !free(&candidate) {
        candidate = format!("{bare}_column{n}");
        n += 1;
    }
    Ident::new(&candidate, field.span())
}

fn is_plain_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The Rust module name of a table's Diesel `table!`: the same snake_case name `cargo xtask
/// gen` gives it (`purchase_orders`, `Display Table` -> `display_table`, `UserID` -> `user_id`).
pub fn module_name(table: &str) -> String {
    if table.chars().any(|c| c.is_ascii_alphanumeric()) {
        etl_types::snake_ident(table)
    } else {
        // Nothing to keep (`注文`): `table` itself is an item `table!` defines.
        "table_".to_string()
    }
}
