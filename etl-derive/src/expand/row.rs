//! sqlx's side of a model: `FromRow`, each field read by its codec.

use super::*;

pub(super) fn expand_from_row(table: &Table<'_>) -> TokenStream {
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
