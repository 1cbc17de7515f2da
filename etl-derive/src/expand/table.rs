//! What a model is to the engine: `EtlTable` (or `OutputRecord`) with the table's metadata,
//! its columns and how each is selected and read, and the key rendered for messages.

use super::*;

pub(super) fn column_infos(table: &Table<'_>) -> Vec<TokenStream> {
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
pub(super) fn wire_scalar(c: &Column<'_>) -> TokenStream {
    let rt = rt();
    let wire = c.sql.selected_scalar(c.opt).wire();
    match format!("{wire:?}").parse::<TokenStream>() {
        Ok(variant) => quote!(#rt::Scalar::#variant),
        Err(e) => syn::Error::new(Span::call_site(), e.to_string()).to_compile_error(),
    }
}

/// `id=42, tenant="a"` from the key fields, for messages: each value as its codec renders keys,
/// the same text the wire path renders for the same row.
pub(super) fn key_expr(table: &Table<'_>) -> TokenStream {
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

pub(super) fn expand_etl_table(table: &Table<'_>) -> TokenStream {
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

pub(super) fn expand_output_record(table: &Table<'_>) -> TokenStream {
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
