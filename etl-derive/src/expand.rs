//! Code generation from a checked [`Table`]: Diesel's `table!`, `Selectable` and `Queryable`,
//! sqlx's `FromRow`, and `etl_runtime::EtlTable` with its record-batch encoder.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{DeriveInput, Ident, Type};

use crate::ast::Model;
use crate::check::{Column, Table, check};
use crate::ctxt::Ctxt;
use etl_types::{Encoding, Shape, quote_ident};

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

fn expand_diesel_table(table: &Table<'_>) -> TokenStream {
    let module = &table.module;
    let sql_name = &table.table;
    let schema = if table.schema == "public" {
        quote!()
    } else {
        let schema = Ident::new(&table.schema, Span::call_site());
        quote!(#schema .)
    };
    // Diesel needs a key; a table without one declares its first column, which only matters
    // to Diesel's `find`.
    let key_fields: Vec<&Ident> = if table.primary_key.is_empty() {
        table
            .columns
            .iter()
            .take(1)
            .map(|c| &c.diesel_ident)
            .collect()
    } else {
        table
            .primary_key
            .iter()
            .map(|&i| &table.columns[i].diesel_ident)
            .collect()
    };
    let columns = table.columns.iter().map(|c| {
        let ident = &c.diesel_ident;
        let name = &c.name;
        let ty = diesel_column_type(c);
        quote! {
            #[sql_name = #name]
            #ident -> #ty,
        }
    });
    quote! {
        ::diesel::table! {
            #[sql_name = #sql_name]
            #schema #module (#(#key_fields),*) {
                #(#columns)*
            }
        }
    }
}

fn parse_type(text: &str) -> TokenStream {
    match syn::parse_str::<Type>(text) {
        Ok(ty) => quote!(#ty),
        Err(e) => e.to_compile_error(),
    }
}

/// The column's type in `table!` (unqualified: `table!` imports `diesel::sql_types::*`).
fn diesel_column_type(c: &Column<'_>) -> TokenStream {
    let ty = parse_type(&c.sql.diesel_type());
    if c.nullable {
        quote!(Nullable<#ty>)
    } else {
        ty
    }
}

/// The SQL type of the value the selection yields, qualified: the column's, or the cast's.
fn selected_sql_type(c: &Column<'_>) -> TokenStream {
    let scalar = c.sql.selected_scalar(c.opt).diesel_type();
    let text = if c.sql.selected_array(c.opt) {
        format!(
            "::diesel::sql_types::Array<::diesel::sql_types::Nullable<::diesel::sql_types::{scalar}>>"
        )
    } else {
        format!("::diesel::sql_types::{scalar}")
    };
    let ty = parse_type(&text);
    if c.nullable {
        quote!(::diesel::sql_types::Nullable<#ty>)
    } else {
        ty
    }
}

/// The Diesel select expression of a column: the column itself, or a cast of it as SQL.
fn diesel_selection(table: &Table<'_>, c: &Column<'_>) -> (TokenStream, TokenStream) {
    let module = &table.module;
    let ident = &c.diesel_ident;
    match c.sql.select_cast(c.opt) {
        None => (quote!(#module::#ident), quote!(#module::#ident)),
        Some(cast) => {
            let st = selected_sql_type(c);
            let sql = format!(
                "{}.{}.{}::{cast}",
                quote_ident(&table.schema),
                quote_ident(&table.table),
                quote_ident(&c.name)
            );
            (
                quote!(::diesel::expression::SqlLiteral<#st>),
                quote!(::diesel::dsl::sql::<#st>(#sql)),
            )
        }
    }
}

fn expand_diesel_impls(table: &Table<'_>) -> TokenStream {
    let ident = table.model.ident;
    let (select_tys, select_exprs): (Vec<_>, Vec<_>) = table
        .columns
        .iter()
        .map(|c| diesel_selection(table, c))
        .unzip();
    let field_tys: Vec<&Type> = table.columns.iter().map(|c| c.field.ty).collect();
    let field_idents: Vec<&Ident> = table.columns.iter().map(|c| c.field.ident).collect();
    let sts: Vec<Ident> = (0..table.columns.len())
        .map(|i| format_ident!("__ST{}", i))
        .collect();
    let indexes = (0..table.columns.len()).map(syn::Index::from);
    quote! {
        impl ::diesel::Selectable<::diesel::pg::Pg> for #ident {
            type SelectExpression = (#(#select_tys,)*);
            fn construct_selection() -> Self::SelectExpression {
                (#(#select_exprs,)*)
            }
        }

        impl<__DB: ::diesel::backend::Backend, #(#sts),*> ::diesel::Queryable<(#(#sts,)*), __DB> for #ident
        where
            (#(#field_tys,)*): ::diesel::deserialize::FromStaticSqlRow<(#(#sts,)*), __DB>,
        {
            type Row = (#(#field_tys,)*);
            fn build(row: Self::Row) -> ::diesel::deserialize::Result<Self> {
                ::std::result::Result::Ok(Self {
                    #(#field_idents: row.#indexes,)*
                })
            }
        }
    }
}

fn expand_from_row(table: &Table<'_>) -> TokenStream {
    let rt = rt();
    let ident = table.model.ident;
    let fields = table.columns.iter().map(|c| {
        let field = c.field.ident;
        let name = &c.name;
        let codec = field_codec(c);
        let decode = quote!((#codec.decode)(row, index));
        let read = if c.opt.infinity_null {
            quote! {
                if #rt::is_null(row, index)? {
                    ::std::result::Result::Ok(::std::option::Option::None)
                } else {
                    match #decode {
                        ::std::result::Result::Err(#rt::DecodeError::Value(#rt::ValueError::Infinite(_))) => ::std::result::Result::Ok(::std::option::Option::None),
                        other => other.map(::std::option::Option::Some),
                    }
                }
            }
        } else if c.nullable {
            quote! {
                if #rt::is_null(row, index)? {
                    ::std::result::Result::Ok(::std::option::Option::None)
                } else {
                    #decode.map(::std::option::Option::Some)
                }
            }
        } else {
            decode
        };
        quote!(#field: #rt::decode_named_with(row, #name, |row, index| #read)?)
    });
    quote! {
        impl<'r> #rt::sqlx::FromRow<'r, #rt::sqlx::postgres::PgRow> for #ident {
            fn from_row(row: &'r #rt::sqlx::postgres::PgRow) -> ::std::result::Result<Self, #rt::sqlx::Error> {
                ::std::result::Result::Ok(Self { #(#fields,)* })
            }
        }
    }
}

/// The encoder of a column: its type and its constructor for `capacity` rows. A top-level
/// text, JSON or bytes column (the `index`-th) also reserves `value_bytes[index]` bytes of
/// values when the caller knows them (see `RecordBatchEncoder::with_value_bytes`).
fn encoder(index: usize, c: &Column<'_>) -> (TokenStream, TokenStream) {
    let rt = rt();
    let value_bytes = quote!(value_bytes.get(#index).copied());
    let element = |encoding: Encoding, top: bool| -> (TokenStream, TokenStream) {
        let (name, args) = match encoding {
            Encoding::Int16 => ("Int16Encoder", quote!()),
            Encoding::Int32 => ("Int32Encoder", quote!()),
            Encoding::Int64 => ("Int64Encoder", quote!()),
            Encoding::Float32 => ("Float32Encoder", quote!()),
            Encoding::Float64 => ("Float64Encoder", quote!()),
            Encoding::Decimal(typmod) => {
                // check.rs limited precision to 38, so both fit.
                let precision = typmod.precision as u8;
                let scale = typmod.scale as i8;
                ("DecimalEncoder", quote!(, #precision, #scale))
            }
            Encoding::DecimalText | Encoding::Utf8 | Encoding::UuidText if top => {
                return (
                    quote!(#rt::Utf8Encoder),
                    quote!(#rt::Utf8Encoder::sized(capacity, #value_bytes)),
                );
            }
            Encoding::DecimalText | Encoding::Utf8 | Encoding::UuidText => {
                ("Utf8Encoder", quote!())
            }
            Encoding::Json => {
                let bytes = if top {
                    value_bytes.clone()
                } else {
                    quote!(None)
                };
                return (
                    quote!(#rt::Utf8Encoder),
                    quote!(#rt::Utf8Encoder::json_sized(capacity, #bytes)),
                );
            }
            Encoding::Bool => ("BoolEncoder", quote!()),
            Encoding::UuidBytes => ("UuidBytesEncoder", quote!()),
            Encoding::Date => ("DateEncoder", quote!()),
            Encoding::Timestamp => ("TimestampEncoder", quote!()),
            Encoding::Timestamptz => ("TimestamptzEncoder", quote!()),
            Encoding::Time => ("TimeEncoder", quote!()),
            Encoding::Bytes if top => {
                return (
                    quote!(#rt::BytesEncoder),
                    quote!(#rt::BytesEncoder::sized(capacity, #value_bytes)),
                );
            }
            Encoding::Bytes => ("BytesEncoder", quote!()),
        };
        let name = Ident::new(name, Span::call_site());
        (quote!(#rt::#name), quote!(#rt::#name::new(capacity #args)))
    };
    match c.encoding.shape {
        Shape::Scalar => element(c.encoding.element, true),
        Shape::JsonArray => (
            quote!(#rt::Utf8Encoder),
            quote!(#rt::Utf8Encoder::json_sized(capacity, #value_bytes)),
        ),
        Shape::List => {
            let (ty, new) = element(c.encoding.element, false);
            (
                quote!(#rt::ListEncoder<#ty>),
                quote!(#rt::ListEncoder::new(capacity, #new)),
            )
        }
    }
}

fn column_infos(table: &Table<'_>) -> Vec<TokenStream> {
    let rt = rt();
    table
        .columns
        .iter()
        .map(|c| {
            let name = &c.name;
            let field = c.field.ident.to_string();
            let sql_type = &c.sql_text;
            let nullable = c.nullable;
            let select = match c.sql.select_cast(c.opt) {
                Some(cast) => format!("{}::{cast}", quote_ident(&c.name)),
                None => quote_ident(&c.name),
            };
            let wire = wire_scalar(c);
            let mask = match c.opt.mask {
                Some(mask) => {
                    let variant = format_ident!("{}", format!("{mask:?}"));
                    quote!(::std::option::Option::Some(#rt::Mask::#variant))
                }
                None => quote!(::std::option::Option::None),
            };
            quote! {
                #rt::ColumnInfo {
                    name: #name, field: #field, sql_type: #sql_type, nullable: #nullable, select: #select,
                    wire: #wire, mask: #mask,
                }
            }
        })
        .collect()
}

/// `Scalar::...`: how the column's selected values read, the same enum the engine matches on,
/// written as its `Debug` text (`Int8`, `Numeric(None)`).
fn wire_scalar(c: &Column<'_>) -> TokenStream {
    let rt = rt();
    let wire = c.sql.selected_scalar(c.opt).wire();
    match format!("{wire:?}").parse::<TokenStream>() {
        Ok(variant) => quote!(#rt::Scalar::#variant),
        Err(e) => syn::Error::new(Span::call_site(), e.to_string()).to_compile_error(),
    }
}

/// `id=42, tenant="a"` from the key fields, for messages: each value as its codec renders keys,
/// the same text the wire path renders for the same row.
fn key_expr(table: &Table<'_>) -> TokenStream {
    if table.primary_key.is_empty() {
        return quote!(::std::string::String::from("(no primary key)"));
    }
    let rt = rt();
    let parts = table.primary_key.iter().enumerate().map(|(n, &i)| {
        let c = &table.columns[i];
        let prefix = if n == 0 {
            format!("{}=", c.name)
        } else {
            format!(", {}=", c.name)
        };
        let field = c.field.ident;
        quote! {
            key.push_str(#prefix);
            #rt::JsonElement::write_key(&self.#field, &mut key);
        }
    });
    quote!({
        let mut key = ::std::string::String::new();
        #(#parts)*
        key
    })
}

fn expand_etl_table(table: &Table<'_>) -> TokenStream {
    let rt = rt();
    let ident = table.model.ident;
    let schema = &table.schema;
    let table_name = &table.table;
    let key_names = table.primary_key.iter().map(|&i| &table.columns[i].name);
    let infos = column_infos(table);
    let column_count = table.columns.len();
    let wire_decodes = table.columns.iter().enumerate().map(|(index, c)| {
        let field = c.field.ident;
        let codec = field_codec(c);
        let from_wire = quote!((#codec.from_wire)(bytes));
        let error = quote! {
            |kind| #rt::RowError::wire(&<Self as #rt::EtlTable>::INFO, #index, tuple, kind)
        };
        let value_err = quote!(|e| (#error)(#rt::RowErrorKind::Value(e)));
        let present = if c.opt.infinity_null {
            quote! {
                match #from_wire {
                    ::std::result::Result::Err(#rt::ValueError::Infinite(_)) => ::std::option::Option::None,
                    other => ::std::option::Option::Some(other.map_err(#value_err)?),
                }
            }
        } else if c.nullable {
            quote!(::std::option::Option::Some(#from_wire.map_err(#value_err)?))
        } else {
            quote!(#from_wire.map_err(#value_err)?)
        };
        let absent = if c.nullable {
            quote!(::std::option::Option::None)
        } else {
            quote!(return ::std::result::Result::Err((#error)(#rt::RowErrorKind::UnexpectedNull)))
        };
        quote! {
            #field: match #rt::take_field(&mut rest).map_err(#value_err)? {
                ::std::option::Option::Some(bytes) => #present,
                ::std::option::Option::None => #absent,
            }
        }
    });
    let key = key_expr(table);
    let partition_keys = table.partition_by.iter().map(|(column, spec)| {
        let name = spec.key_name();
        let transform = format_ident!("{}", format!("{:?}", spec.transform));
        quote! {
            #rt::PartitionKey {
                name: #name,
                column: #column,
                transform: #rt::PartitionTransform::#transform,
            }
        }
    });
    let cursor = match table.cursor {
        Some(index) => quote!(::std::option::Option::Some(#index)),
        None => quote!(::std::option::Option::None),
    };
    let omitted = &table.omitted;
    quote! {
        impl #rt::EtlTable for #ident {
            const INFO: #rt::TableInfo = #rt::TableInfo {
                schema: #schema,
                name: #table_name,
                primary_key: &[#(#key_names),*],
                columns: &[#(#infos),*],
                partition_by: &[#(#partition_keys),*],
                cursor: #cursor,
                omitted: &[#(#omitted),*],
            };
            type Encoder = __EtlRecordBatchEncoder;

            fn decode_wire(tuple: &[u8]) -> ::std::result::Result<Self, #rt::RowError> {
                let mut rest = #rt::tuple_fields(tuple, #column_count).map_err(|e| {
                    #rt::RowError::wire(&<Self as #rt::EtlTable>::INFO, 0, tuple, #rt::RowErrorKind::Value(e))
                })?;
                ::std::result::Result::Ok(Self { #(#wire_decodes,)* })
            }

            fn key(&self) -> ::std::string::String {
                #key
            }
        }
    }
}

fn expand_output_record(table: &Table<'_>) -> TokenStream {
    let rt = rt();
    let ident = table.model.ident;
    let infos = column_infos(table);
    let key = key_expr(table);
    let key_names = table.primary_key.iter().map(|&i| &table.columns[i].name);
    quote! {
        impl #rt::OutputRecord for #ident {
            const COLUMNS: &'static [#rt::ColumnInfo] = &[#(#infos),*];
            const PRIMARY_KEY: &'static [&'static str] = &[#(#key_names),*];
            type Encoder = __EtlRecordBatchEncoder;

            fn key(&self) -> ::std::string::String {
                #key
            }
        }
    }
}

/// The record-batch encoder: one column encoder per field, fed by models.
fn expand_encoder(table: &Table<'_>) -> TokenStream {
    let rt = rt();
    let ident = table.model.ident;
    let key_trait = if table.output {
        quote!(#rt::OutputRecord)
    } else {
        quote!(#rt::EtlTable)
    };
    let encoder_fields: Vec<Ident> = (0..table.columns.len())
        .map(|i| format_ident!("c{}", i))
        .collect();
    let (encoder_tys, encoder_news): (Vec<_>, Vec<_>) = table
        .columns
        .iter()
        .enumerate()
        .map(|(index, c)| encoder(index, c))
        .unzip();
    let schema_fields = table.columns.iter().zip(&encoder_fields).map(|(c, e)| {
        let name = &c.name;
        let nullable = c.nullable;
        quote!(#rt::ColumnEncoder::field(&self.#e, #name, #nullable))
    });
    let pushes = table.columns.iter().zip(&encoder_fields).map(|(c, e)| {
        let field = c.field.ident;
        let name = &c.name;
        let codec = field_codec(c);
        let push = quote!((#codec.push));
        let err = quote!(|e| #rt::RowError::value(#name, #key_trait::key(row), e));
        if c.nullable {
            quote! {
                match &row.#field {
                    ::std::option::Option::Some(value) => #push(value, &mut self.#e).map_err(#err)?,
                    ::std::option::Option::None => #rt::ColumnEncoder::push_null(&mut self.#e),
                }
            }
        } else {
            quote!(#push(&row.#field, &mut self.#e).map_err(#err)?;)
        }
    });
    let finishes = encoder_fields
        .iter()
        .map(|e| quote!(#rt::ColumnEncoder::finish(&mut self.#e)));
    quote! {
        /// Turns models into Arrow record batches, one encoder per column.
        #[doc(hidden)]
        pub struct __EtlRecordBatchEncoder {
            schema: #rt::SchemaRef,
            #(#encoder_fields: #encoder_tys,)*
        }

        impl __EtlRecordBatchEncoder {
            fn __new(capacity: usize, value_bytes: &[usize]) -> Self {
                // Unused by a model without text, JSON or bytes columns.
                let _ = value_bytes;
                Self {
                    schema: #rt::Arc::new(#rt::Schema::empty()),
                    #(#encoder_fields: #encoder_news,)*
                }
            }

            fn __schema(&self) -> #rt::SchemaRef {
                #rt::Arc::new(#rt::Schema::new(::std::vec![#(#schema_fields),*]))
            }
        }

        impl #rt::RecordBatchEncoder<#ident> for __EtlRecordBatchEncoder {
            fn with_capacity(capacity: usize) -> Self {
                Self::with_value_bytes(capacity, &[])
            }

            fn with_value_bytes(capacity: usize, value_bytes: &[usize]) -> Self {
                let mut encoder = Self::__new(capacity, value_bytes);
                encoder.schema = encoder.__schema();
                encoder
            }

            fn schema() -> #rt::SchemaRef {
                Self::__new(0, &[]).__schema()
            }

            fn push(&mut self, row: &#ident) -> ::std::result::Result<(), #rt::RowError> {
                #(#pushes)*
                ::std::result::Result::Ok(())
            }

            fn finish(&mut self) -> ::std::result::Result<#rt::RecordBatch, #rt::ArrowError> {
                #rt::RecordBatch::try_new(
                    ::std::clone::Clone::clone(&self.schema),
                    ::std::vec![#(#finishes),*],
                )
            }
        }
    }
}

/// Table exports: COPY tuples straight into the column encoders.
fn expand_wire_encoder(table: &Table<'_>) -> TokenStream {
    let rt = rt();
    let ident = table.model.ident;
    let column_count = table.columns.len();
    let wire_pushes = table.columns.iter().enumerate().map(|(index, c)| {
        let e = format_ident!("c{}", index);
        let push = wire_push(c, quote!(&mut self.#e), quote!(bytes));
        let error = quote! {
            |kind| #rt::RowError::wire(&<#ident as #rt::EtlTable>::INFO, #index, tuple, kind)
        };
        let pushed = if c.opt.infinity_null {
            quote! {
                match #push {
                    ::std::result::Result::Err(#rt::ValueError::Infinite(_)) => {
                        #rt::ColumnEncoder::push_null(&mut self.#e);
                        ::std::result::Result::Ok(())
                    }
                    other => other,
                }
            }
        } else {
            push
        };
        let on_null = if c.nullable {
            quote!(#rt::ColumnEncoder::push_null(&mut self.#e))
        } else {
            quote!(return ::std::result::Result::Err((#error)(#rt::RowErrorKind::UnexpectedNull)))
        };
        quote! {
            match #rt::take_field(&mut rest).map_err(|e| (#error)(#rt::RowErrorKind::Value(e)))? {
                ::std::option::Option::Some(bytes) => {
                    #pushed.map_err(|e| (#error)(#rt::RowErrorKind::Value(e)))?
                }
                ::std::option::Option::None => #on_null,
            }
        }
    });
    quote! {
        impl #rt::WireBatchEncoder for __EtlRecordBatchEncoder {
            fn push_wire(&mut self, tuple: &[u8]) -> ::std::result::Result<(), #rt::RowError> {
                let mut rest = #rt::tuple_fields(tuple, #column_count).map_err(|e| {
                    #rt::RowError::wire(&<#ident as #rt::EtlTable>::INFO, 0, tuple, #rt::RowErrorKind::Value(e))
                })?;
                #(#wire_pushes)*
                ::std::result::Result::Ok(())
            }
        }
    }
}

/// One bound per field, spanned on the field's type, so that a Rust type that cannot hold the
/// column's SQL type is an error at that field (diesel's `check_for_backend`).
fn expand_type_checks(table: &Table<'_>) -> TokenStream {
    let bounds = table.columns.iter().map(|c| {
        let ty = c.field.ty;
        let (select_ty, _) = diesel_selection(table, c);
        let span = ty.span();
        quote_spanned! {span=>
            #ty: ::diesel::deserialize::FromSqlRow<::diesel::dsl::SqlTypeOf<#select_ty>, ::diesel::pg::Pg>,
        }
    });
    quote! {
        #[allow(dead_code)]
        fn __etl_check_field_types()
        where
            #(#bounds)*
        {}
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

/// The call that writes a column's wire bytes into its encoder.
fn wire_push(c: &Column<'_>, encoder: TokenStream, bytes: TokenStream) -> TokenStream {
    let rt = rt();
    let wire = wire_scalar(c);
    let scalar = |encoding: Encoding, encoder: TokenStream, bytes: TokenStream| match encoding {
        Encoding::Decimal(_) => quote!((#encoder).push_wire_numeric(#bytes)),
        Encoding::Utf8 | Encoding::DecimalText | Encoding::UuidText | Encoding::Json => {
            quote!((#encoder).push_wire_as(#wire, #bytes))
        }
        _ => quote!(#rt::WireEncode::push_wire(#encoder, #bytes)),
    };
    match c.encoding.shape {
        Shape::Scalar => scalar(c.encoding.element, encoder, bytes),
        Shape::JsonArray => quote!((#encoder).push_wire_json_array(#wire, #bytes)),
        Shape::List => {
            let element = scalar(c.encoding.element, quote!(element), quote!(value));
            quote!((#encoder).push_wire_list(#bytes, |element, value| #element))
        }
    }
}
