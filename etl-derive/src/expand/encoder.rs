//! The record-batch encoder of a model: one column encoder per field, fed by models or by COPY
//! tuples straight from the wire.

use super::*;

/// The encoder of a column: its type and its constructor for `capacity` rows. A top-level
/// text, JSON or bytes column (the `index`-th) also reserves `value_bytes[index]` bytes of
/// values when the caller knows them (see `RecordBatchEncoder::with_value_bytes`).
pub(super) fn encoder(index: usize, c: &Column<'_>) -> (TokenStream, TokenStream) {
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

/// The record-batch encoder: one column encoder per field, fed by models.
pub(super) fn expand_encoder(table: &Table<'_>) -> TokenStream {
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
pub(super) fn expand_wire_encoder(table: &Table<'_>) -> TokenStream {
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

/// The call that writes a column's wire bytes into its encoder.
pub(super) fn wire_push(c: &Column<'_>, encoder: TokenStream, bytes: TokenStream) -> TokenStream {
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
