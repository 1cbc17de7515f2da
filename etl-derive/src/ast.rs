//! The model of one `#[derive(EtlTable)]` input: attributes parsed into typed values that
//! point back at the tokens they came from, so that every later error has a precise span.

use syn::meta::ParseNestedMeta;
use syn::{Data, DeriveInput, Fields, Ident, LitStr, Type};

use crate::ctxt::Ctxt;

pub struct Model<'a> {
    pub ident: &'a Ident,
    pub table: Option<LitStr>,
    pub schema: Option<LitStr>,
    /// `primary_key(a, b)`: field names as written.
    pub primary_key: Option<Vec<Ident>>,
    /// The `no_primary_key` flag, kept as its path for spans.
    pub no_primary_key: Option<syn::Path>,
    /// The `output` flag: a record tasks write, with no source table.
    pub output: Option<syn::Path>,
    /// `partition_by = "region, created_at:day"`.
    pub partition_by: Option<LitStr>,
    /// `cursor = "updated_at"`: the column incremental runs read changes by.
    pub cursor: Option<LitStr>,
    /// `omit = "ssn, notes"`: the table's columns left out on purpose.
    pub omit: Option<LitStr>,
    pub fields: Vec<Field<'a>>,
}

pub struct Field<'a> {
    pub ident: &'a Ident,
    pub ty: &'a Type,
    pub column: Option<LitStr>,
    pub sql_type: Option<LitStr>,
    pub nullable_flag: Option<syn::Path>,
    pub numeric: Option<LitStr>,
    pub array: Option<LitStr>,
    pub uuid: Option<LitStr>,
    pub infinity: Option<LitStr>,
    /// `mask = "hmac_sha256"`.
    pub mask: Option<LitStr>,
}

impl Field<'_> {
    /// The column name: `column = "..."` or the field's name (without `r#`).
    pub fn column_name(&self) -> String {
        match &self.column {
            Some(lit) => lit.value(),
            None => self.ident.to_string().trim_start_matches("r#").to_string(),
        }
    }
}

mod kw {
    pub const ETL: &str = "etl";
    pub const TABLE: &str = "table";
    pub const SCHEMA: &str = "schema";
    pub const PRIMARY_KEY: &str = "primary_key";
    pub const NO_PRIMARY_KEY: &str = "no_primary_key";
    pub const OUTPUT: &str = "output";
    pub const PARTITION_BY: &str = "partition_by";
    pub const CURSOR: &str = "cursor";
    pub const OMIT: &str = "omit";
    pub const COLUMN: &str = "column";
    pub const SQL_TYPE: &str = "sql_type";
    pub const NULLABLE: &str = "nullable";
    pub const NUMERIC: &str = "numeric";
    pub const ARRAY: &str = "array";
    pub const UUID: &str = "uuid";
    pub const INFINITY: &str = "infinity";
    pub const MASK: &str = "mask";
}

impl<'a> Model<'a> {
    pub fn from_ast(cx: &mut Ctxt, input: &'a DeriveInput) -> Option<Model<'a>> {
        let mut model = Model {
            ident: &input.ident,
            table: None,
            schema: None,
            primary_key: None,
            no_primary_key: None,
            output: None,
            partition_by: None,
            cursor: None,
            omit: None,
            fields: Vec::new(),
        };
        for attr in input.attrs.iter().filter(|a| a.path().is_ident(kw::ETL)) {
            let result = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident(kw::TABLE) {
                    set_once(cx, &meta, &mut model.table)
                } else if meta.path.is_ident(kw::SCHEMA) {
                    set_once(cx, &meta, &mut model.schema)
                } else if meta.path.is_ident(kw::PARTITION_BY) {
                    set_once(cx, &meta, &mut model.partition_by)
                } else if meta.path.is_ident(kw::CURSOR) {
                    set_once(cx, &meta, &mut model.cursor)
                } else if meta.path.is_ident(kw::OMIT) {
                    set_once(cx, &meta, &mut model.omit)
                } else if meta.path.is_ident(kw::PRIMARY_KEY) {
                    let mut keys = Vec::new();
                    meta.parse_nested_meta(|key| {
                        match key.path.get_ident() {
                            Some(ident) => keys.push(ident.clone()),
                            None => cx.error_spanned_by(&key.path, "expected a field name"),
                        }
                        Ok(())
                    })?;
                    if model.primary_key.replace(keys).is_some() {
                        cx.error_spanned_by(&meta.path, "duplicate `primary_key`");
                    }
                    Ok(())
                } else if meta.path.is_ident(kw::OUTPUT) {
                    if model.output.replace(meta.path.clone()).is_some() {
                        cx.error_spanned_by(&meta.path, "duplicate `output`");
                    }
                    Ok(())
                } else if meta.path.is_ident(kw::NO_PRIMARY_KEY) {
                    if model.no_primary_key.replace(meta.path.clone()).is_some() {
                        cx.error_spanned_by(&meta.path, "duplicate `no_primary_key`");
                    }
                    Ok(())
                } else {
                    Err(meta.error(format!(
                        "unknown attribute `{}` on the struct; expected one of `table`, `schema`, `primary_key(...)`, `no_primary_key`, `partition_by`, `cursor`, `omit`, `output`",
                        path_name(&meta.path)
                    )))
                }
            });
            if let Err(e) = result {
                cx.syn_error(e);
            }
        }

        let named = match &input.data {
            Data::Struct(data) => match &data.fields {
                Fields::Named(named) => Some(named),
                _ => None,
            },
            _ => None,
        };
        let Some(named) = named else {
            cx.error_spanned_by(
                &input.ident,
                "#[derive(EtlTable)] needs a struct with named fields, one per column",
            );
            return None;
        };
        for original in &named.named {
            let Some(ident) = original.ident.as_ref() else {
                continue;
            };
            let mut field = Field {
                ident,
                ty: &original.ty,
                column: None,
                sql_type: None,
                nullable_flag: None,
                numeric: None,
                array: None,
                uuid: None,
                infinity: None,
                mask: None,
            };
            for attr in original.attrs.iter().filter(|a| a.path().is_ident(kw::ETL)) {
                let result = attr.parse_nested_meta(|meta| {
                    if meta.path.is_ident(kw::COLUMN) {
                        set_once(cx, &meta, &mut field.column)
                    } else if meta.path.is_ident(kw::SQL_TYPE) {
                        set_once(cx, &meta, &mut field.sql_type)
                    } else if meta.path.is_ident(kw::NULLABLE) {
                        field.nullable_flag = Some(meta.path.clone());
                        Ok(())
                    } else if meta.path.is_ident(kw::NUMERIC) {
                        set_choice(cx, &meta, &mut field.numeric, &["string", "f64"])
                    } else if meta.path.is_ident(kw::ARRAY) {
                        set_choice(cx, &meta, &mut field.array, &["json", "list"])
                    } else if meta.path.is_ident(kw::UUID) {
                        set_choice(cx, &meta, &mut field.uuid, &["string", "bytes"])
                    } else if meta.path.is_ident(kw::INFINITY) {
                        set_choice(cx, &meta, &mut field.infinity, &["error", "null"])
                    } else if meta.path.is_ident(kw::MASK) {
                        set_choice(cx, &meta, &mut field.mask, etl_types::Mask::NAMES)
                    } else {
                        Err(meta.error(format!(
                            "unknown attribute `{}` on a field; expected one of `column`, `sql_type`, `nullable`, `numeric`, `array`, `uuid`, `infinity`, `mask`",
                            path_name(&meta.path)
                        )))
                    }
                });
                if let Err(e) = result {
                    cx.syn_error(e);
                }
            }
            model.fields.push(field);
        }
        Some(model)
    }
}

fn path_name(path: &syn::Path) -> String {
    path.segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect::<Vec<_>>()
        .join("::")
}

fn set_once(
    cx: &mut Ctxt,
    meta: &ParseNestedMeta<'_>,
    slot: &mut Option<LitStr>,
) -> syn::Result<()> {
    let value: LitStr = meta.value()?.parse()?;
    if slot.replace(value).is_some() {
        cx.error_spanned_by(&meta.path, format!("duplicate `{}`", path_name(&meta.path)));
    }
    Ok(())
}

fn set_choice(
    cx: &mut Ctxt,
    meta: &ParseNestedMeta<'_>,
    slot: &mut Option<LitStr>,
    choices: &[&str],
) -> syn::Result<()> {
    let value: LitStr = meta.value()?.parse()?;
    if !choices.contains(&value.value().as_str()) {
        let expected = choices
            .iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(" or ");
        cx.error_spanned_by(
            &value,
            format!("`{}` must be {expected}", path_name(&meta.path)),
        );
        return Ok(());
    }
    if slot.replace(value).is_some() {
        cx.error_spanned_by(&meta.path, format!("duplicate `{}`", path_name(&meta.path)));
    }
    Ok(())
}
