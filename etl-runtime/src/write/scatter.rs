//! Buffered rows moved into partition order by a scatter: each column of the buffer is read
//! once, in the order the rows came, and each value written to its place in the output.
//!
//! The gather the other way round (`arrow_select::interleave`, one (batch, row) per output row)
//! reads every value from a random place in a buffer far larger than the cache, a miss per
//! value. A scatter reads in order, and its writes advance through one run per partition (a
//! cache line each), so both sides stay in the cache. The buffer is consumed column by column,
//! so memory holds the buffer and one regrouped column more, not two buffers. Types without a
//! scatter here (lists) are still gathered.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{BinaryType, ByteArrayType, Utf8Type};
use arrow_array::{
    Array, ArrayRef, ArrowPrimitiveType, BooleanArray, FixedSizeBinaryArray, GenericByteArray,
    PrimitiveArray, RecordBatch, downcast_primitive_array,
};
use arrow_buffer::{BooleanBufferBuilder, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{ArrowError, DataType, SchemaRef};

use crate::error::{Error, Result};

/// Rows per piece of regrouped output (a piece's text stays within 32-bit offsets).
pub(super) const PIECE_ROWS: usize = 64 * 1024;

/// The rows of `batches` (all of `schema`) in their new order, in pieces of [`PIECE_ROWS`]
/// rows: row `r` of batch `b` becomes row `dests[b][r]` of the output, which has `total` rows
/// (each filled exactly once).
pub(super) fn regroup(
    schema: &SchemaRef,
    batches: Vec<RecordBatch>,
    dests: &[Vec<u32>],
    total: usize,
) -> Result<Vec<RecordBatch>> {
    let lens: Vec<usize> = (0..total.div_ceil(PIECE_ROWS))
        .map(|piece| PIECE_ROWS.min(total - piece * PIECE_ROWS))
        .collect();
    let width = schema.fields().len();
    // The batches' columns, each given up once it is regrouped.
    let mut sources: Vec<Vec<Option<ArrayRef>>> = batches
        .into_iter()
        .map(|batch| batch.columns().iter().cloned().map(Some).collect())
        .collect();
    let mut pieces: Vec<Vec<ArrayRef>> = vec![Vec::with_capacity(width); lens.len()];
    for column in 0..width {
        let arrays: Vec<ArrayRef> = sources
            .iter_mut()
            .map(|columns| columns.get_mut(column).and_then(Option::take))
            .collect::<Option<_>>()
            .ok_or_else(|| invalid("a buffered batch lacks a column"))?;
        let arrays: Vec<&dyn Array> = arrays.iter().map(AsRef::as_ref).collect();
        for (piece, array) in pieces
            .iter_mut()
            .zip(scatter_column(&arrays, dests, &lens)?)
        {
            piece.push(array);
        }
    }
    pieces
        .into_iter()
        .map(|columns| RecordBatch::try_new(schema.clone(), columns).map_err(Error::Arrow))
        .collect()
}

fn invalid(why: &str) -> Error {
    Error::Arrow(ArrowError::InvalidArgumentError(why.into()))
}

/// Splits a row of the output into its piece and its row in the piece.
fn place(dest: u32) -> (usize, usize) {
    let dest = dest as usize;
    (dest / PIECE_ROWS, dest % PIECE_ROWS)
}

/// One column's pieces.
fn scatter_column(
    arrays: &[&dyn Array],
    dests: &[Vec<u32>],
    lens: &[usize],
) -> Result<Vec<ArrayRef>> {
    let Some(&first) = arrays.first() else {
        return Ok(Vec::new());
    };
    if arrays.len() != dests.len() || arrays.iter().zip(dests).any(|(a, d)| a.len() != d.len()) {
        return Err(invalid("buffered rows and their places disagree"));
    }
    let nulls = scatter_nulls(arrays, dests, lens);
    let scattered: Option<Vec<ArrayRef>> = downcast_primitive_array!(
        first => scatter_primitive(first, arrays, dests, lens, nulls),
        DataType::Boolean => scatter_boolean(arrays, dests, lens, nulls),
        DataType::Utf8 => scatter_bytes::<Utf8Type>(arrays, dests, lens, nulls),
        DataType::Binary => scatter_bytes::<BinaryType>(arrays, dests, lens, nulls),
        DataType::FixedSizeBinary(size) => scatter_fixed_binary(*size, arrays, dests, lens, nulls),
        _ => None,
    );
    match scattered {
        Some(pieces) => Ok(pieces),
        None => gather(arrays, dests, lens),
    }
}

/// The way `arrow_select` does it, for the types above that have no scatter (and for a text
/// piece too large for 32-bit offsets, whose error is then `interleave`'s).
fn gather(arrays: &[&dyn Array], dests: &[Vec<u32>], lens: &[usize]) -> Result<Vec<ArrayRef>> {
    let mut orders: Vec<Vec<(usize, usize)>> = lens.iter().map(|&n| vec![(0, 0); n]).collect();
    for (b, dests) in dests.iter().enumerate() {
        for (r, &dest) in dests.iter().enumerate() {
            let (piece, at) = place(dest);
            orders[piece][at] = (b, r);
        }
    }
    orders
        .iter()
        .map(|order| arrow_select::interleave::interleave(arrays, order).map_err(Error::Arrow))
        .collect()
}

/// A bitmap per piece, every bit `value`.
fn bits_per_piece(lens: &[usize], value: bool) -> Vec<BooleanBufferBuilder> {
    lens.iter()
        .map(|&n| {
            let mut bits = BooleanBufferBuilder::new(n);
            bits.append_n(n, value);
            bits
        })
        .collect()
}

/// The pieces' validity, if any source row is null.
fn scatter_nulls(
    arrays: &[&dyn Array],
    dests: &[Vec<u32>],
    lens: &[usize],
) -> Vec<Option<NullBuffer>> {
    if arrays.iter().all(|a| a.null_count() == 0) {
        return vec![None; lens.len()];
    }
    let mut valid: Vec<BooleanBufferBuilder> = bits_per_piece(lens, true);
    for (array, dests) in arrays.iter().zip(dests) {
        let Some(nulls) = array.nulls() else { continue };
        for (r, &dest) in dests.iter().enumerate() {
            if nulls.is_null(r) {
                let (piece, at) = place(dest);
                valid[piece].set_bit(at, false);
            }
        }
    }
    valid
        .into_iter()
        .map(|mut bits| Some(NullBuffer::new(bits.finish())))
        .collect()
}

/// `None` if a source is not of `first`'s type (they all are: one schema).
fn scatter_primitive<T: ArrowPrimitiveType>(
    first: &PrimitiveArray<T>,
    arrays: &[&dyn Array],
    dests: &[Vec<u32>],
    lens: &[usize],
    nulls: Vec<Option<NullBuffer>>,
) -> Option<Vec<ArrayRef>> {
    let mut values: Vec<Vec<T::Native>> = lens
        .iter()
        .map(|&n| vec![T::Native::default(); n])
        .collect();
    for (array, dests) in arrays.iter().zip(dests) {
        let source = array.as_primitive_opt::<T>()?.values();
        for (&value, &dest) in source.iter().zip(dests) {
            let (piece, at) = place(dest);
            values[piece][at] = value;
        }
    }
    values
        .into_iter()
        .zip(nulls)
        .map(|(values, nulls)| {
            let array = PrimitiveArray::<T>::try_new(ScalarBuffer::from(values), nulls).ok()?;
            Some(Arc::new(array.with_data_type(first.data_type().clone())) as ArrayRef)
        })
        .collect()
}

fn scatter_boolean(
    arrays: &[&dyn Array],
    dests: &[Vec<u32>],
    lens: &[usize],
    nulls: Vec<Option<NullBuffer>>,
) -> Option<Vec<ArrayRef>> {
    let mut values: Vec<BooleanBufferBuilder> = bits_per_piece(lens, false);
    for (array, dests) in arrays.iter().zip(dests) {
        let source = array.as_boolean_opt()?.values();
        for (r, &dest) in dests.iter().enumerate() {
            if source.value(r) {
                let (piece, at) = place(dest);
                values[piece].set_bit(at, true);
            }
        }
    }
    Some(
        values
            .into_iter()
            .zip(nulls)
            .map(|(mut values, nulls)| {
                Arc::new(BooleanArray::new(values.finish(), nulls)) as ArrayRef
            })
            .collect(),
    )
}

/// Text and bytes: the pieces' lengths first, then the bytes to their offsets. `None` when a
/// piece passes 32-bit offsets.
fn scatter_bytes<T: ByteArrayType<Offset = i32>>(
    arrays: &[&dyn Array],
    dests: &[Vec<u32>],
    lens: &[usize],
    nulls: Vec<Option<NullBuffer>>,
) -> Option<Vec<ArrayRef>> {
    let sources: Vec<&GenericByteArray<T>> = arrays
        .iter()
        .map(|a| a.as_bytes_opt::<T>())
        .collect::<Option<_>>()?;
    // Lengths, then offsets in place: offsets[piece][at + 1] ends row `at`.
    let mut offsets: Vec<Vec<i32>> = lens.iter().map(|&n| vec![0i32; n + 1]).collect();
    for (source, dests) in sources.iter().zip(dests) {
        for (window, &dest) in source.value_offsets().windows(2).zip(dests) {
            let (piece, at) = place(dest);
            offsets[piece][at + 1] = window[1] - window[0];
        }
    }
    for offsets in &mut offsets {
        let mut total = 0i32;
        for offset in offsets.iter_mut() {
            total = total.checked_add(*offset)?;
            *offset = total;
        }
    }
    let mut bytes: Vec<Vec<u8>> = offsets
        .iter()
        .map(|o| vec![0u8; o.last().map_or(0, |&end| end as usize)])
        .collect();
    for (source, dests) in sources.iter().zip(dests) {
        let data = source.value_data();
        for (window, &dest) in source.value_offsets().windows(2).zip(dests) {
            let (piece, at) = place(dest);
            let (start, end) = (window[0] as usize, window[1] as usize);
            let to = offsets[piece][at] as usize;
            bytes[piece][to..to + end - start].copy_from_slice(&data[start..end]);
        }
    }
    // The values are whole source values, valid as the sources were.
    offsets
        .into_iter()
        .zip(bytes)
        .zip(nulls)
        .map(|((offsets, bytes), nulls)| {
            let array = GenericByteArray::<T>::try_new(
                OffsetBuffer::new(ScalarBuffer::from(offsets)),
                Buffer::from_vec(bytes),
                nulls,
            )
            .ok()?;
            Some(Arc::new(array) as ArrayRef)
        })
        .collect()
}

fn scatter_fixed_binary(
    size: i32,
    arrays: &[&dyn Array],
    dests: &[Vec<u32>],
    lens: &[usize],
    nulls: Vec<Option<NullBuffer>>,
) -> Option<Vec<ArrayRef>> {
    let width = usize::try_from(size).ok()?;
    let mut bytes: Vec<Vec<u8>> = lens.iter().map(|&n| vec![0u8; n * width]).collect();
    for (array, dests) in arrays.iter().zip(dests) {
        let source = array.as_fixed_size_binary_opt()?;
        for (r, &dest) in dests.iter().enumerate() {
            let (piece, at) = place(dest);
            bytes[piece][at * width..(at + 1) * width].copy_from_slice(source.value(r));
        }
    }
    bytes
        .into_iter()
        .zip(nulls)
        .map(|(bytes, nulls)| {
            let array = FixedSizeBinaryArray::try_new(size, Buffer::from_vec(bytes), nulls).ok()?;
            Some(Arc::new(array) as ArrayRef)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::builder::{Int32Builder, ListBuilder};
    use arrow_array::{
        Array, ArrayRef, BinaryArray, BooleanArray, Decimal128Array, FixedSizeBinaryArray,
        Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
    };
    use arrow_schema::{DataType, Field, Schema, TimeUnit};

    use super::{PIECE_ROWS, regroup};

    /// Every type the codecs produce, nulls included, over more than one piece: the same rows
    /// as a gather in the new order.
    #[test]
    fn a_regroup_equals_the_gather_for_every_type() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("i", DataType::Int64, true),
            Field::new(
                "t",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("d", DataType::Decimal128(12, 3), true),
            Field::new("b", DataType::Boolean, true),
            Field::new("s", DataType::Utf8, true),
            Field::new("x", DataType::Binary, false),
            Field::new("u", DataType::FixedSizeBinary(2), true),
            Field::new(
                "l",
                DataType::List(Arc::new(Field::new_list_field(DataType::Int32, true))),
                true,
            ),
        ]));
        let batch = |base: i64, n: usize| {
            let rows: Vec<i64> = (0..n as i64).map(|r| base + r).collect();
            let null = |r: &i64| r % 3 == 1;
            let mut list = ListBuilder::new(Int32Builder::new());
            for r in &rows {
                if null(r) {
                    list.append_null();
                } else {
                    list.values().append_value(*r as i32);
                    list.append(true);
                }
            }
            let columns: Vec<ArrayRef> = vec![
                Arc::new(Int64Array::from_iter(
                    rows.iter().map(|r| (!null(r)).then_some(*r)),
                )),
                Arc::new(
                    TimestampMicrosecondArray::from_iter(
                        rows.iter().map(|r| (r % 4 != 0).then_some(r * 1000)),
                    )
                    .with_timezone("UTC"),
                ),
                Arc::new(
                    Decimal128Array::from_iter(rows.iter().map(|r| Some(i128::from(*r) * 7)))
                        .with_precision_and_scale(12, 3)
                        .unwrap(),
                ),
                Arc::new(BooleanArray::from_iter(
                    rows.iter().map(|r| (r % 5 != 0).then_some(r % 2 == 0)),
                )),
                Arc::new(StringArray::from_iter(
                    rows.iter()
                        .map(|r| (!null(r)).then(|| "é".repeat(*r as usize % 4))),
                )),
                Arc::new(BinaryArray::from_iter_values(
                    rows.iter().map(|r| vec![*r as u8; *r as usize % 3]),
                )),
                Arc::new(
                    FixedSizeBinaryArray::try_from_sparse_iter_with_size(
                        rows.iter().map(|r| (r % 2 == 0).then_some([*r as u8, 1])),
                        2,
                    )
                    .unwrap(),
                ),
                Arc::new(list.finish()),
            ];
            RecordBatch::try_new(schema.clone(), columns).unwrap()
        };
        // A sliced source too: its offsets must be honoured.
        let batches = vec![
            batch(0, 30_000),
            batch(100_000, 40_000).slice(3, 25_000),
            batch(200_000, 20_000),
        ];
        let mut sources: Vec<(usize, usize)> = batches
            .iter()
            .enumerate()
            .flat_map(|(b, batch)| (0..batch.num_rows()).map(move |r| (b, r)))
            .collect();
        // A scrambled order: sorted by a multiplicative hash.
        sources.sort_by_key(|&(b, r)| {
            ((b * 1_000_003 + r) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        });
        let total = sources.len();
        assert!(total > PIECE_ROWS);
        let mut dests: Vec<Vec<u32>> = batches.iter().map(|b| vec![0; b.num_rows()]).collect();
        for (dest, &(b, r)) in sources.iter().enumerate() {
            dests[b][r] = dest as u32;
        }
        let refs: Vec<&RecordBatch> = batches.iter().collect();
        let gathered: Vec<RecordBatch> = sources
            .chunks(PIECE_ROWS)
            .map(|order| arrow_select::interleave::interleave_record_batch(&refs, order).unwrap())
            .collect();
        let pieces = regroup(&schema, batches.clone(), &dests, total).unwrap();
        assert_eq!(pieces.len(), 2);
        assert!(pieces[0].column(0).null_count() > 0);
        assert_eq!(pieces, gathered);
    }
}
