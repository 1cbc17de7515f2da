//! Code generation from a checked [`Table`], a room per side of the model: Diesel's `table!`,
//! `Selectable` and `Queryable` (`diesel.rs`), sqlx's `FromRow` (`row.rs`), the engine's
//! `EtlTable` or `OutputRecord` (`table.rs`) and the record-batch encoder (`encoder.rs`). Here:
//! the entry point, the stub a rejected model gets, and the one way generated code reaches a
//! field's codec.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{DeriveInput, Ident, Type};

use crate::ast::Model;
use crate::check::{Column, Table, check};
use crate::ctxt::Ctxt;
use etl_types::{Encoding, Shape, quote_ident};

mod diesel;
mod encoder;
mod row;
mod table;

use self::diesel::*;
use self::encoder::*;
use self::row::*;
use self::table::*;

pub fn derive(input: &DeriveInput) -> Result<TokenStream, syn::Error> {
    let mut cx = Ctxt::default();
    let model = Model::from_ast(&mut cx, input);
    let table = model.as_ref().and_then(|model| check(&mut cx, model));
    cx.check()?;
    match table {
        Some(table) => {
            if !input.generics.params.is_empty() {
                return Err(syn::Error::new_spanned(
                    &input.generics,
                    "a model cannot be generic: it describes one table",
                ));
            }
            Ok(expand(&table))
        }
        None => Err(syn::Error::new(
            Span::call_site(),
            "#[derive(EtlTable)] could not read this model",
        )),
    }
}

/// On error, the errors (each names its own field) and a stub impl of the trait, as
/// serde_derive does: code that uses the model (`Export::table::<Model>()`) then compiles
/// against the stub, so that one mistake in the model is one error, not one more per use.
pub fn with_fallback(input: &DeriveInput, errors: syn::Error) -> TokenStream {
    let errors = errors.to_compile_error();
    if !input.generics.params.is_empty() {
        return errors;
    }
    let rt = rt();
    let ident = &input.ident;
    // `#[etl(output)]`: an `output` word at the top level of an `etl` attribute.
    let output = input
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("etl"))
        .any(|a| match &a.meta {
            syn::Meta::List(list) => list
                .tokens
                .clone()
                .into_iter()
                .any(|t| matches!(t, proc_macro2::TokenTree::Ident(word) if word == "output")),
            _ => false,
        });
    let stub = if output {
        quote! {
            impl #rt::OutputRecord for #ident {
                const COLUMNS: &'static [#rt::ColumnInfo] = &[];
                const PRIMARY_KEY: &'static [&'static str] = &[];
                type Encoder = #rt::StubEncoder;
                fn key(&self) -> ::std::string::String {
                    ::std::string::String::new()
                }
            }
        }
    } else {
        quote! {
            impl #rt::EtlTable for #ident {
                const INFO: #rt::TableInfo = #rt::TableInfo::STUB;
                type Encoder = #rt::StubEncoder;
                fn decode_wire(_: &[u8]) -> ::std::result::Result<Self, #rt::RowError> {
                    ::std::result::Result::Err(#rt::RowError::stub())
                }
                fn key(&self) -> ::std::string::String {
                    ::std::string::String::new()
                }
            }
        }
    };
    quote! {
        #errors
        const _: () = { #stub };
    }
}

fn rt() -> TokenStream {
    quote!(::etl_runtime::__private)
}

/// `<V as FieldOf<Encoder>>::CODEC`, the one way generated code reads and writes a field's
/// value, spanned on the field's type: a field of the wrong type is the same error at the same
/// place wherever the codec is used, which the compiler reports once.
fn field_codec(c: &Column<'_>) -> TokenStream {
    let rt = rt();
    let value_ty = c.value_ty;
    let encoder_ty = encoder(0, c).0; // the type: the index only shapes the constructor
    respan(
        quote!(<#value_ty as #rt::FieldOf<#encoder_ty>>::CODEC),
        c.field.ty.span(),
    )
}

fn expand(table: &Table<'_>) -> TokenStream {
    let encoder = expand_encoder(table);
    if table.output {
        let output = expand_output_record(table);
        return quote! {
            const _: () = {
                #encoder
                #output
            };
        };
    }
    let diesel_table = expand_diesel_table(table);
    let diesel_impls = expand_diesel_impls(table);
    let from_row = expand_from_row(table);
    let etl_table = expand_etl_table(table);
    let wire_encoder = expand_wire_encoder(table);
    let checks = expand_type_checks(table);
    quote! {
        #diesel_table
        const _: () = {
            #diesel_impls
            #from_row
            #etl_table
            #encoder
            #wire_encoder
            #checks
        };
    }
}

/// `tokens` with every span set to `span`, so that an error inside them is reported there.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut tree| {
            if let proc_macro2::TokenTree::Group(group) = &tree {
                let mut new =
                    proc_macro2::Group::new(group.delimiter(), respan(group.stream(), span));
                new.set_span(span);
                tree = proc_macro2::TokenTree::Group(new);
            }
            tree.set_span(span);
            tree
        })
        .collect()
}
