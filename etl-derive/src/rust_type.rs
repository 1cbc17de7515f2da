//! Reading a field's Rust type by its syntax: whether it is an `Option`, its canonical name
//! (`Vec<Option<BigDecimal>>`, `DateTime<Utc>`) for comparison with the mapping table, and the
//! SQL type it implies when the model does not write one.
//!
//! Syntax cannot see through type aliases, so a name this module does not know is left to the
//! trait bounds the expansion emits; only names it knows are compared here, which gives the
//! common mistakes one clear message.

use syn::{GenericArgument, PathArguments, Type};

/// The `T` of `Option<T>`.
pub fn option_inner(ty: &Type) -> Option<&Type> {
    single_generic(ty, "Option")
}

fn single_generic<'a>(ty: &'a Type, name: &str) -> Option<&'a Type> {
    let Type::Path(path) = ty else { return None };
    if path.qself.is_some() {
        return None;
    }
    let segment = path.path.segments.last()?;
    if segment.ident != name {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &segment.arguments else {
        return None;
    };
    match args.args.first() {
        Some(GenericArgument::Type(inner)) if args.args.len() == 1 => Some(inner),
        _ => None,
    }
}

/// Names the mapping table uses; a type made only of these can be compared with it.
const KNOWN: &[&str] = &[
    "i8",
    "i16",
    "i32",
    "i64",
    "i128",
    "isize",
    "u8",
    "u16",
    "u32",
    "u64",
    "u128",
    "usize",
    "f32",
    "f64",
    "bool",
    "char",
    "String",
    "str",
    "BigDecimal",
    "Uuid",
    "NaiveDate",
    "NaiveDateTime",
    "DateTime",
    "Utc",
    "NaiveTime",
    "Value",
    "Vec",
    "Option",
];

/// `chrono::DateTime<chrono::Utc>` -> `DateTime<Utc>`; `None` for anything that is not a
/// plain path type.
pub fn canonical(ty: &Type) -> Option<String> {
    let Type::Path(path) = ty else { return None };
    if path.qself.is_some() {
        return None;
    }
    let segment = path.path.segments.last()?;
    let mut out = segment.ident.to_string();
    if let PathArguments::AngleBracketed(args) = &segment.arguments {
        let mut inner = Vec::new();
        for arg in &args.args {
            match arg {
                GenericArgument::Type(t) => inner.push(canonical(t)?),
                _ => return None,
            }
        }
        out.push('<');
        out.push_str(&inner.join(", "));
        out.push('>');
    }
    Some(out)
}

/// Whether every name in a canonical type is one the mapping table knows.
pub fn is_known(canonical: &str) -> bool {
    canonical
        .split(['<', '>', ',', ' '])
        .filter(|s| !s.is_empty())
        .all(|name| KNOWN.contains(&name))
}

/// The mapping table's Rust type in canonical form (`serde_json::Value` -> `Value`).
pub fn canonical_expected(rust_type: &str) -> String {
    rust_type.replace("serde_json::", "")
}

/// What a field's canonical type implies for its SQL type when none is written.
pub enum Inferred {
    Sql(String),
    /// `BigDecimal`: a numeric needs its precision and scale written.
    NumericNeedsPrecision,
    Unknown,
}

pub fn infer_sql_type(canonical: &str) -> Inferred {
    let sql = match canonical {
        "i16" => "smallint",
        "i32" => "integer",
        "i64" => "bigint",
        "f32" => "real",
        "f64" => "double precision",
        "bool" => "boolean",
        "String" => "text",
        "Uuid" => "uuid",
        "NaiveDate" => "date",
        "NaiveDateTime" => "timestamp",
        "DateTime<Utc>" => "timestamptz",
        "NaiveTime" => "time",
        "Value" => "jsonb",
        "Vec<u8>" => "bytea",
        "BigDecimal" => return Inferred::NumericNeedsPrecision,
        other => {
            if let Some(element) = other
                .strip_prefix("Vec<Option<")
                .and_then(|s| s.strip_suffix(">>"))
            {
                return match infer_sql_type(element) {
                    Inferred::Sql(sql) => Inferred::Sql(format!("{sql}[]")),
                    other => other,
                };
            }
            return Inferred::Unknown;
        }
    };
    Inferred::Sql(sql.to_string())
}
