//! Diesel's side of a model: its `table!`, `Selectable` and `Queryable`, and the bounds that
//! make a field whose Rust type cannot hold its column's SQL type an error at that field.

use super::*;

pub(super) fn expand_diesel_table(table: &Table<'_>) -> TokenStream {
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

pub(super) fn parse_type(text: &str) -> TokenStream {
    match syn::parse_str::<Type>(text) {
        Ok(ty) => quote!(#ty),
        Err(e) => e.to_compile_error(),
    }
}

/// The column's type in `table!` (unqualified: `table!` imports `diesel::sql_types::*`).
pub(super) fn diesel_column_type(c: &Column<'_>) -> TokenStream {
    let ty = parse_type(&c.sql.diesel_type());
    if c.nullable {
        quote!(Nullable<#ty>)
    } else {
        ty
    }
}

/// The SQL type of the value the selection yields, qualified: the column's, or the cast's.
pub(super) fn selected_sql_type(c: &Column<'_>) -> TokenStream {
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
pub(super) fn diesel_selection(table: &Table<'_>, c: &Column<'_>) -> (TokenStream, TokenStream) {
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

pub(super) fn expand_diesel_impls(table: &Table<'_>) -> TokenStream {
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

/// One bound per field, spanned on the field's type, so that a Rust type that cannot hold the
/// column's SQL type is an error at that field (diesel's `check_for_backend`).
pub(super) fn expand_type_checks(table: &Table<'_>) -> TokenStream {
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
