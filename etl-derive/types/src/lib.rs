//! The PostgreSQL -> Rust -> Parquet type mapping: the one table that `#[derive(EtlTable)]`,
//! the engine (`etl-runtime`) and `cargo xtask gen` all follow (see the README's "Type
//! mapping" and `shared/type-mapping.md`).
//!
//! A crate of its own, depending on `std` only, because a proc-macro crate can export nothing
//! but macros: the derive reads [`SqlType`]s at compile time and names each column's
//! [`Scalar::wire`] in the code it generates; the engine reads values by that same [`Scalar`]
//! at run time.

use std::fmt;

mod cursor;
mod naming;
mod partition;
pub use cursor::{VersionKeyOrder, check_cursor, check_version_key, version_key_order};
pub use naming::{quote_ident, snake_ident};
pub use partition::{PartitionSpec, PartitionTransform, parse_partition_by, render_partition_by};

/// One PostgreSQL scalar type, as far as the export is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scalar {
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    /// `numeric(p, s)`; `None` for an unconstrained `numeric`.
    Numeric(Option<NumericTypmod>),
    Bool,
    /// text, varchar(n), char(n): decoded as they are.
    Text,
    Uuid,
    Date,
    Timestamp,
    Timestamptz,
    Time,
    Json,
    Jsonb,
    Bytea,
    /// Exported through `::text` in the SELECT list: interval (ISO 8601), enums, citext, name,
    /// inet, cidr, macaddr, money and any type this table does not know.
    Cast(CastKind),
}

/// Why a type goes through `::text`, so that the Diesel column keeps its real SQL type where
/// Diesel has one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CastKind {
    Interval,
    Inet,
    Cidr,
    MacAddr,
    Money,
    /// citext, name, enums, domains over those and anything unknown.
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NumericTypmod {
    pub precision: u32,
    pub scale: u32,
}

/// The largest precision a Parquet DECIMAL backed by a 128-bit integer can hold.
pub const MAX_DECIMAL_PRECISION: u32 = 38;

/// A column's declared SQL type: a scalar, or a one-dimensional array of one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqlType {
    pub scalar: Scalar,
    pub array: bool,
    /// The type as written, normalised to lower case (kept for messages and `::text` casts).
    pub name: String,
}

/// Why a `sql_type` string could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqlTypeError(pub String);

impl fmt::Display for SqlTypeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SqlTypeError {}

impl SqlType {
    /// Reads a type as PostgreSQL's `format_type` prints it (`numeric(12,2)`, `text[]`,
    /// `timestamp without time zone`, `character varying(32)`) or as people write it (`int8`,
    /// `timestamptz`, `varchar`). A name this table does not know is exported through `::text`.
    pub fn parse(raw: &str) -> Result<SqlType, SqlTypeError> {
        let name = raw.trim().to_ascii_lowercase();
        if name.is_empty() {
            return Err(SqlTypeError("the SQL type is empty".into()));
        }
        let (base, array) = match name.strip_suffix("[]") {
            Some(base) if base.ends_with("[]") => {
                return Err(SqlTypeError(format!(
                    "`{raw}`: multi-dimensional arrays are not supported; export the column through a view that flattens it"
                )));
            }
            Some(base) => (base.trim_end(), true),
            None => (name.as_str(), false),
        };
        let scalar = parse_scalar(base, raw)?;
        Ok(SqlType {
            scalar,
            array,
            name,
        })
    }

    /// The Diesel SQL type for `table!`, without `Nullable`.
    pub fn diesel_type(&self) -> String {
        let scalar = self.scalar.diesel_type();
        if self.array {
            format!("Array<Nullable<{scalar}>>")
        } else {
            scalar.to_string()
        }
    }
}

fn parse_scalar(base: &str, raw: &str) -> Result<Scalar, SqlTypeError> {
    // Strip a length/precision modifier: `varchar(32)`, `numeric(12, 2)`, `timestamp(3)`.
    let (head, modifier) = match base.find('(') {
        Some(open) => {
            let close = base.rfind(')').ok_or_else(|| {
                SqlTypeError(format!("`{raw}`: unbalanced parenthesis in the type"))
            })?;
            let rest = base[close + 1..].trim();
            let head = base[..open].trim();
            // `timestamp(3) with time zone`: the modifier sits in the middle.
            let head = if rest.is_empty() {
                head.to_string()
            } else {
                format!("{head} {rest}")
            };
            (head, Some(base[open + 1..close].trim()))
        }
        None => (base.to_string(), None),
    };
    let head = head.split_whitespace().collect::<Vec<_>>().join(" ");
    let scalar = match head.as_str() {
        "smallint" | "int2" | "smallserial" | "serial2" => Scalar::Int2,
        "integer" | "int" | "int4" | "serial" | "serial4" => Scalar::Int4,
        "bigint" | "int8" | "bigserial" | "serial8" => Scalar::Int8,
        "real" | "float4" => Scalar::Float4,
        "double precision" | "float8" => Scalar::Float8,
        "float" => match modifier.map(str::parse::<u32>) {
            Some(Ok(bits)) if bits <= 24 => Scalar::Float4,
            _ => Scalar::Float8,
        },
        "numeric" | "decimal" => Scalar::Numeric(parse_numeric_typmod(modifier, raw)?),
        "boolean" | "bool" => Scalar::Bool,
        "text" | "varchar" | "character varying" | "char" | "character" | "bpchar" => Scalar::Text,
        "uuid" => Scalar::Uuid,
        "date" => Scalar::Date,
        "timestamp" | "timestamp without time zone" => Scalar::Timestamp,
        "timestamptz" | "timestamp with time zone" => Scalar::Timestamptz,
        "time" | "time without time zone" => Scalar::Time,
        "json" => Scalar::Json,
        "jsonb" => Scalar::Jsonb,
        "bytea" => Scalar::Bytea,
        "interval" => Scalar::Cast(CastKind::Interval),
        "inet" => Scalar::Cast(CastKind::Inet),
        "cidr" => Scalar::Cast(CastKind::Cidr),
        "macaddr" => Scalar::Cast(CastKind::MacAddr),
        "money" => Scalar::Cast(CastKind::Money),
        _ => Scalar::Cast(CastKind::Other),
    };
    Ok(scalar)
}

fn parse_numeric_typmod(
    modifier: Option<&str>,
    raw: &str,
) -> Result<Option<NumericTypmod>, SqlTypeError> {
    let Some(modifier) = modifier else {
        return Ok(None);
    };
    let mut parts = modifier.split(',').map(str::trim);
    let bad = || {
        SqlTypeError(format!(
            "`{raw}`: expected `numeric(precision, scale)` with 1 <= precision <= 1000 and 0 <= scale <= precision"
        ))
    };
    let precision: u32 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    let scale: u32 = match parts.next() {
        Some(s) => s.parse().map_err(|_| bad())?,
        None => 0,
    };
    if parts.next().is_some() || precision == 0 || precision > 1000 || scale > precision {
        return Err(bad());
    }
    Ok(Some(NumericTypmod { precision, scale }))
}

impl Scalar {
    /// The Rust type a field of this SQL type has by default (what `xtask gen` writes).
    pub fn rust_type(self) -> &'static str {
        match self {
            Scalar::Int2 => "i16",
            Scalar::Int4 => "i32",
            Scalar::Int8 => "i64",
            Scalar::Float4 => "f32",
            Scalar::Float8 => "f64",
            Scalar::Numeric(_) => "BigDecimal",
            Scalar::Bool => "bool",
            Scalar::Text | Scalar::Cast(_) => "String",
            Scalar::Uuid => "Uuid",
            Scalar::Date => "NaiveDate",
            Scalar::Timestamp => "NaiveDateTime",
            Scalar::Timestamptz => "DateTime<Utc>",
            Scalar::Time => "NaiveTime",
            Scalar::Json | Scalar::Jsonb => "serde_json::Value",
            Scalar::Bytea => "Vec<u8>",
        }
    }

    /// The type in `diesel::sql_types` that `table!` declares for a column of this type.
    pub fn diesel_type(self) -> &'static str {
        match self {
            Scalar::Int2 => "Int2",
            Scalar::Int4 => "Int4",
            Scalar::Int8 => "Int8",
            Scalar::Float4 => "Float4",
            Scalar::Float8 => "Float8",
            Scalar::Numeric(_) => "Numeric",
            Scalar::Bool => "Bool",
            Scalar::Text => "Text",
            Scalar::Uuid => "Uuid",
            Scalar::Date => "Date",
            Scalar::Timestamp => "Timestamp",
            Scalar::Timestamptz => "Timestamptz",
            Scalar::Time => "Time",
            Scalar::Json => "Json",
            Scalar::Jsonb => "Jsonb",
            Scalar::Bytea => "Bytea",
            Scalar::Cast(CastKind::Interval) => "Interval",
            Scalar::Cast(CastKind::Inet) => "Inet",
            Scalar::Cast(CastKind::Cidr) => "Cidr",
            Scalar::Cast(CastKind::MacAddr) => "MacAddr",
            Scalar::Cast(CastKind::Money) => "Money",
            // Enums and unknown types have no Diesel type; their values are text on the wire
            // through the `::text` cast the selection applies.
            Scalar::Cast(CastKind::Other) => "Text",
        }
    }

    /// How values of this type read in PostgreSQL's binary format once selected: the type
    /// itself, less what does not change the bytes (numeric's typmod; a `::text` cast is text).
    /// The derive names it in generated code (its `Debug` text is a Rust expression of it); the
    /// engine's codecs match on it.
    pub fn wire(self) -> Scalar {
        match self {
            Scalar::Numeric(_) => Scalar::Numeric(None),
            Scalar::Cast(_) => Scalar::Text,
            scalar => scalar,
        }
    }

    /// Whether values are dates or timestamps, which PostgreSQL lets be `±infinity`.
    pub fn can_be_infinite(self) -> bool {
        matches!(self, Scalar::Date | Scalar::Timestamp | Scalar::Timestamptz)
    }
}

/// How a column's values are written to Parquet: the default of the mapping table or one of
/// its opt-ins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    /// DECIMAL(p, s), exact.
    Decimal(NumericTypmod),
    /// The exact decimal as UTF8 text (numeric wider than DECIMAL(38) or opted into `string`).
    DecimalText,
    Bool,
    Utf8,
    /// canonical lowercase text (the default for uuid)
    UuidText,
    /// FIXED_LEN_BYTE_ARRAY(16) / UUID (opt-in)
    UuidBytes,
    Date,
    Timestamp,
    Timestamptz,
    Time,
    /// JSON text (json, jsonb)
    Json,
    Bytes,
}

/// The opt-ins a field can declare, as read from its `#[etl(...)]` attribute.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OptIns {
    /// `numeric = "f64"`: a lossy DOUBLE.
    pub numeric_f64: bool,
    /// `numeric = "string"`: exact decimal text (also lets NaN through as `NaN`).
    pub numeric_string: bool,
    /// `array = "list"`: a native Parquet LIST instead of JSON text.
    pub array_list: bool,
    /// `uuid = "bytes"`: FIXED_LEN_BYTE_ARRAY(16) / UUID.
    pub uuid_bytes: bool,
    /// `infinity = "null"`: `±infinity` dates and timestamps become NULL.
    pub infinity_null: bool,
    /// `mask = "hmac_sha256"`: the value's text is replaced by its keyed hash.
    pub mask: Option<Mask>,
}

/// How a masked column's values are replaced. Whatever its type, the column is selected as
/// PostgreSQL's text of the value (`::text`), so that the same value hashes the same in every
/// table (an `int4` and an `int8` 42 alike), and is written as text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mask {
    /// HMAC-SHA256 of the value's text under the run's mask key, as 64 lowercase hex digits.
    HmacSha256,
}

impl Mask {
    /// The attribute's spelling: `mask = "hmac_sha256"`.
    pub const NAMES: &'static [&'static str] = &["hmac_sha256"];

    pub fn parse(name: &str) -> Option<Mask> {
        match name {
            "hmac_sha256" => Some(Mask::HmacSha256),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mask::HmacSha256 => "hmac_sha256",
        }
    }
}

/// How a column is written: its element encoding and whether it is an array, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ColumnEncoding {
    pub element: Encoding,
    pub shape: Shape,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Scalar,
    /// An array written as JSON text: `["a",null,"b"]`.
    JsonArray,
    /// An array written as a native Parquet LIST.
    List,
}

impl SqlType {
    /// The encoding of this column given the field's opt-ins. Errors are messages for the user.
    pub fn encoding(&self, opt: OptIns) -> Result<ColumnEncoding, String> {
        if opt.mask.is_some() {
            // A hash of the whole value's text, arrays included.
            return Ok(ColumnEncoding {
                element: Encoding::Utf8,
                shape: Shape::Scalar,
            });
        }
        let element = match self.scalar {
            Scalar::Int2 => Encoding::Int16,
            Scalar::Int4 => Encoding::Int32,
            Scalar::Int8 => Encoding::Int64,
            Scalar::Float4 => Encoding::Float32,
            Scalar::Float8 => Encoding::Float64,
            Scalar::Numeric(_) if opt.numeric_f64 => Encoding::Float64,
            Scalar::Numeric(_) if opt.numeric_string => Encoding::DecimalText,
            Scalar::Numeric(Some(t)) if t.precision <= MAX_DECIMAL_PRECISION => {
                Encoding::Decimal(t)
            }
            Scalar::Numeric(Some(t)) => {
                return Err(format!(
                    "`{}` has precision {} but Parquet DECIMAL holds at most {MAX_DECIMAL_PRECISION} digits; \
                     add `numeric = \"string\"` to export the exact decimal as text",
                    self.name, t.precision
                ));
            }
            Scalar::Numeric(None) => {
                return Err(format!(
                    "`{}` has no precision, so no exact Parquet DECIMAL can be chosen; write the precision \
                     and scale the data needs (`sql_type = \"numeric(18, 6)\"`; `cargo xtask gen` picks them \
                     from the live data), or opt into `numeric = \"string\"` (exact text) or `numeric = \"f64\"` (lossy)",
                    self.name
                ));
            }
            Scalar::Bool => Encoding::Bool,
            Scalar::Text | Scalar::Cast(_) => Encoding::Utf8,
            Scalar::Uuid if opt.uuid_bytes => Encoding::UuidBytes,
            Scalar::Uuid => Encoding::UuidText,
            Scalar::Date => Encoding::Date,
            Scalar::Timestamp => Encoding::Timestamp,
            Scalar::Timestamptz => Encoding::Timestamptz,
            Scalar::Time => Encoding::Time,
            Scalar::Json | Scalar::Jsonb => Encoding::Json,
            Scalar::Bytea => Encoding::Bytes,
        };
        let shape = match (self.array, opt.array_list) {
            (false, _) => Shape::Scalar,
            (true, false) => Shape::JsonArray,
            (true, true) => Shape::List,
        };
        Ok(ColumnEncoding { element, shape })
    }

    /// The Rust type a field of this column has (what `xtask gen` writes), before `Option`.
    pub fn rust_type(&self, opt: OptIns) -> String {
        if opt.mask.is_some() {
            return "String".to_string();
        }
        let element = match self.scalar {
            Scalar::Numeric(_) if opt.numeric_f64 => "f64",
            Scalar::Numeric(_) if opt.numeric_string => "String",
            scalar => scalar.rust_type(),
        };
        if self.array {
            format!("Vec<Option<{element}>>")
        } else {
            element.to_string()
        }
    }

    /// The SQL type the value has once selected: the column's own type, or `text`/`float8`
    /// when the selection casts it.
    pub fn selected_scalar(&self, opt: OptIns) -> Scalar {
        match self.scalar {
            _ if opt.mask.is_some() => Scalar::Text,
            Scalar::Numeric(_) if opt.numeric_f64 => Scalar::Float8,
            Scalar::Numeric(_) if opt.numeric_string => Scalar::Text,
            Scalar::Cast(_) => Scalar::Text,
            scalar => scalar,
        }
    }

    /// Whether the selected value is an array: a masked array is selected as one text.
    pub fn selected_array(&self, opt: OptIns) -> bool {
        self.array && opt.mask.is_none()
    }

    /// The cast the SELECT list applies to this column, if any (`::text`, `::float8`, ...).
    pub fn select_cast(&self, opt: OptIns) -> Option<&'static str> {
        if opt.mask.is_some() {
            return (self.array || self.scalar != Scalar::Text).then_some("text");
        }
        let needs_cast = self.selected_scalar(opt) != self.scalar;
        match (needs_cast, self.selected_scalar(opt), self.array) {
            (false, _, _) => None,
            (true, Scalar::Float8, false) => Some("float8"),
            (true, Scalar::Float8, true) => Some("float8[]"),
            (true, _, false) => Some("text"),
            (true, _, true) => Some("text[]"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_format_type_output() {
        let t = SqlType::parse("numeric(12,2)").unwrap();
        assert_eq!(
            t.scalar,
            Scalar::Numeric(Some(NumericTypmod {
                precision: 12,
                scale: 2
            }))
        );
        assert_eq!(
            SqlType::parse("timestamp(3) with time zone")
                .unwrap()
                .scalar,
            Scalar::Timestamptz
        );
        let arr = SqlType::parse("character varying(32)[]").unwrap();
        assert!(arr.array);
        assert_eq!(arr.scalar, Scalar::Text);
        assert_eq!(
            SqlType::parse("mood").unwrap().scalar,
            Scalar::Cast(CastKind::Other)
        );
        assert!(SqlType::parse("numeric(2,5)").is_err());
        assert!(SqlType::parse("int[][]").is_err());
    }

    #[test]
    fn numeric_needs_a_precision_or_an_opt_in() {
        let t = SqlType::parse("numeric").unwrap();
        assert!(t.encoding(OptIns::default()).is_err());
        let opt = OptIns {
            numeric_string: true,
            ..OptIns::default()
        };
        assert_eq!(t.encoding(opt).unwrap().element, Encoding::DecimalText);
        assert_eq!(t.select_cast(opt), Some("text"));
    }
}
