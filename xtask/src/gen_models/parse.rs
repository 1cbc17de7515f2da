//! A model file read back as a model (with syn, as the compiler reads it): the struct that
//! derives `EtlTable`, its `#[etl(...)]` attributes and its fields. `gen --check` compares
//! these, so formatting and comments never count as differences, and the registry is written
//! from them.

use std::fmt;

use anyhow::{Context, Result};
use quote::ToTokens;

/// The parts of a model that decide what is exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedModel {
    /// The struct's name.
    pub name: String,
    /// Its `#[etl(...)]` attributes (table, schema, key), as tokens.
    pub attributes: Vec<String>,
    pub fields: Vec<ParsedField>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedField {
    pub name: String,
    /// The Rust type, as tokens.
    pub ty: String,
    /// Its `#[etl(...)]` attributes, as tokens.
    pub attributes: Vec<String>,
}

impl fmt::Display for ParsedField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for attribute in &self.attributes {
            write!(f, "{attribute} ")?;
        }
        write!(f, "{}: {}", self.name, self.ty)
    }
}

fn etl_attributes(attrs: &[syn::Attribute]) -> Vec<String> {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("etl"))
        .map(|a| a.to_token_stream().to_string())
        .collect()
}

fn derives_etl_table(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("derive")
            && a.parse_args_with(
                syn::punctuated::Punctuated::<syn::Path, syn::Token![,]>::parse_terminated,
            )
            .is_ok_and(|paths| {
                paths
                    .iter()
                    .any(|p| p.segments.last().is_some_and(|s| s.ident == "EtlTable"))
            })
    })
}

impl ParsedModel {
    /// The model in `source`, if it has a struct deriving `EtlTable`.
    pub fn parse(source: &str) -> Result<Option<ParsedModel>> {
        let file = syn::parse_file(source).context("not valid Rust")?;
        for item in file.items {
            let syn::Item::Struct(item) = item else {
                continue;
            };
            if !derives_etl_table(&item.attrs) {
                continue;
            }
            let fields = item
                .fields
                .iter()
                .map(|field| ParsedField {
                    name: field
                        .ident
                        .as_ref()
                        .map_or_else(String::new, ToString::to_string),
                    ty: field.ty.to_token_stream().to_string(),
                    attributes: etl_attributes(&field.attrs),
                })
                .collect();
            return Ok(Some(ParsedModel {
                name: item.ident.to_string(),
                attributes: etl_attributes(&item.attrs),
                fields,
            }));
        }
        Ok(None)
    }

    /// What differs from `live` (the model the database gives now), one line each, named by
    /// field: `- ...` only in this model, `+ ...` only in the database's.
    pub fn differences(&self, live: &ParsedModel) -> Vec<String> {
        let mut out = Vec::new();
        if self.name != live.name {
            out.push(format!(
                "struct {} (model) / {} (database)",
                self.name, live.name
            ));
        }
        if self.attributes != live.attributes {
            out.push(format!(
                "- {}   (model)\n  + {}   (database)",
                self.attributes.join(" "),
                live.attributes.join(" ")
            ));
        }
        let find = |fields: &[ParsedField], name: &str| fields.iter().position(|f| f.name == name);
        for field in &self.fields {
            match find(&live.fields, &field.name) {
                None => out.push(format!("- {field}   (model only: the column is gone)")),
                Some(i) if live.fields[i] != *field => {
                    out.push(format!("- {field}   (model)"));
                    out.push(format!("+ {}   (database)", live.fields[i]));
                }
                Some(_) => {}
            }
        }
        for field in &live.fields {
            if find(&self.fields, &field.name).is_none() {
                out.push(format!("+ {field}   (database only: a new column)"));
            }
        }
        let order = |fields: &[ParsedField]| -> Vec<String> {
            fields.iter().map(|f| f.name.clone()).collect()
        };
        if out.is_empty() && order(&self.fields) != order(&live.fields) {
            out.push(format!(
                "field order: {} (model) / {} (database)",
                order(&self.fields).join(", "),
                order(&live.fields).join(", ")
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODEL: &str = r#"
        /// A comment.
        #[derive(Debug, Clone, etl_runtime::EtlTable)]
        #[etl(table = "notes", primary_key(id))]
        pub struct Note {
            pub id: i64,
            #[etl(sql_type = "numeric(12,2)")]
            pub amount: Option<BigDecimal>,
        }
    "#;

    #[test]
    fn formatting_does_not_count_and_fields_are_named() {
        let a = ParsedModel::parse(MODEL).unwrap().unwrap();
        let reformatted = MODEL.replace("/// A comment.", "").replace(",\n", ",\n\n");
        let b = ParsedModel::parse(&reformatted).unwrap().unwrap();
        assert!(a.differences(&b).is_empty());
        let retyped = ParsedModel::parse(&MODEL.replace("numeric(12,2)", "numeric(14,2)"))
            .unwrap()
            .unwrap();
        let diff = a.differences(&retyped);
        assert_eq!(diff.len(), 2, "{diff:?}");
        assert!(
            diff[0].contains("amount") && diff[0].contains("12"),
            "{diff:?}"
        );
        assert_eq!(ParsedModel::parse("pub struct X;").unwrap(), None);
    }
}
