//! numeric(p,s) -> DECIMAL(p,s), exact: the wire's base-10000 digits become the DECIMAL's
//! unscaled integer directly, and a value with more decimal places than the column's scale, or
//! more integer digits than its precision, is an error, never rounded. `numeric = "string"`
//! selects the exact text instead (see [`super::text`]).

use std::fmt::Write as _;
use std::sync::Arc;

use arrow_array::ArrayRef;
use arrow_array::builder::Decimal128Builder;
use arrow_schema::{DataType, Field};
use bigdecimal::BigDecimal;
use bigdecimal::num_bigint::BigInt;

use super::{ColumnEncoder, Encode, FromWire, JsonElement, ValueError};

/// numeric(p,s) -> DECIMAL(p,s), exact.
pub struct DecimalEncoder {
    builder: Decimal128Builder,
    precision: u8,
    scale: i8,
    /// 10^precision: the first magnitude that does not fit.
    limit: i128,
}

impl DecimalEncoder {
    /// `precision` is at most 38 and `scale` at most `precision`; the derive checks both.
    pub fn new(capacity: usize, precision: u8, scale: i8) -> Self {
        let precision = precision.clamp(1, 38);
        let scale = scale.clamp(0, precision as i8);
        let builder = Decimal128Builder::with_capacity(capacity)
            .with_data_type(DataType::Decimal128(precision, scale));
        Self {
            builder,
            precision,
            scale,
            limit: 10i128.pow(u32::from(precision)),
        }
    }

    /// The unscaled value of `v` at this column's scale, if it is exactly representable.
    pub fn unscaled(&self, v: &BigDecimal) -> Result<i128, ValueError> {
        let (digits, exponent) = v.as_bigint_and_exponent();
        let scale = i64::from(self.scale);
        let digits = if exponent > scale {
            let divisor = pow10(exponent - scale);
            if &digits % &divisor != BigInt::default() {
                return Err(ValueError::DecimalScale {
                    value: v.normalized().to_plain_string(),
                    scale: self.scale,
                });
            }
            digits / divisor
        } else if exponent < scale {
            digits * pow10(scale - exponent)
        } else {
            digits
        };
        match i128::try_from(&digits) {
            Ok(unscaled) if unscaled.unsigned_abs() < self.limit.unsigned_abs() => Ok(unscaled),
            _ => Err(ValueError::DecimalOverflow {
                value: v.normalized().to_plain_string(),
                precision: self.precision,
                scale: self.scale,
            }),
        }
    }
}

fn pow10(exponent: i64) -> BigInt {
    BigInt::from(10u8).pow(u32::try_from(exponent).unwrap_or(u32::MAX))
}

impl ColumnEncoder for DecimalEncoder {
    fn field(&self, name: &str, nullable: bool) -> Field {
        Field::new(
            name,
            DataType::Decimal128(self.precision, self.scale),
            nullable,
        )
    }
    fn push_null(&mut self) {
        self.builder.append_null();
    }
    fn finish(&mut self) -> ArrayRef {
        Arc::new(self.builder.finish())
    }
}

impl Encode<BigDecimal> for DecimalEncoder {
    #[inline]
    fn push(&mut self, v: &BigDecimal) -> Result<(), ValueError> {
        let unscaled = self.unscaled(v)?;
        self.builder.append_value(unscaled);
        Ok(())
    }
}

impl DecimalEncoder {
    /// Appends a numeric from its wire digits, exactly or not at all.
    pub fn push_wire_numeric(&mut self, bytes: &[u8]) -> Result<(), ValueError> {
        let numeric = Numeric::read(bytes)?;
        let unscaled = numeric.unscaled(self.scale).and_then(|v| {
            if v.unsigned_abs() < self.limit.unsigned_abs() {
                Ok(v)
            } else {
                Err(NumericError::Overflow)
            }
        });
        match unscaled {
            Ok(v) => {
                self.builder.append_value(v);
                Ok(())
            }
            Err(e) => {
                let mut value = String::new();
                numeric.write_text(&mut value);
                Err(match e {
                    NumericError::NotANumber => ValueError::NotANumber { value },
                    NumericError::Scale => ValueError::DecimalScale {
                        value,
                        scale: self.scale,
                    },
                    NumericError::Overflow => ValueError::DecimalOverflow {
                        value,
                        precision: self.precision,
                        scale: self.scale,
                    },
                })
            }
        }
    }
}

impl FromWire for BigDecimal {
    fn from_wire(bytes: &[u8]) -> Result<Self, ValueError> {
        let numeric = Numeric::read(bytes)?;
        let mut text = String::new();
        numeric.write_text(&mut text);
        if numeric.is_special() {
            return Err(ValueError::NotANumber { value: text });
        }
        text.parse()
            .map_err(|e| ValueError::Wire(format!("numeric {text}: {e}")))
    }
}

impl JsonElement for BigDecimal {
    fn write_json(&self, out: &mut String) -> Result<(), ValueError> {
        out.push_str(&self.to_plain_string());
        Ok(())
    }
}

/// The exact decimal text of a numeric read off the wire (`-12.50`, `NaN`).
pub(super) fn text_from_wire(bytes: &[u8]) -> Result<String, ValueError> {
    let mut text = String::new();
    Numeric::read(bytes)?.write_text(&mut text);
    Ok(text)
}

/// A numeric in JSON: the number as PostgreSQL prints it, `NaN` and `±Infinity` as strings.
pub(super) fn write_json_wire(out: &mut String, bytes: &[u8]) -> Result<(), ValueError> {
    let numeric = Numeric::read(bytes)?;
    if numeric.is_special() {
        out.push('"');
        numeric.write_text(out);
        out.push('"');
    } else {
        numeric.write_text(out);
    }
    Ok(())
}

/// A numeric as PostgreSQL sends it: base-10000 digits, a weight, a sign and a display scale.
pub struct Numeric<'a> {
    digits: &'a [u8],
    weight: i16,
    sign: u16,
    dscale: u16,
}

enum NumericError {
    NotANumber,
    Scale,
    Overflow,
}

const NUMERIC_NEG: u16 = 0x4000;
const NUMERIC_NAN: u16 = 0xC000;
const NUMERIC_PINF: u16 = 0xD000;
const NUMERIC_NINF: u16 = 0xF000;

impl<'a> Numeric<'a> {
    pub fn read(bytes: &'a [u8]) -> Result<Self, ValueError> {
        let short = || ValueError::Wire("truncated numeric".into());
        let header = bytes.get(..8).ok_or_else(short)?;
        let ndigits = u16::from_be_bytes([header[0], header[1]]) as usize;
        let digits = bytes.get(8..8 + 2 * ndigits).ok_or_else(short)?;
        Ok(Numeric {
            digits,
            weight: i16::from_be_bytes([header[2], header[3]]),
            sign: u16::from_be_bytes([header[4], header[5]]),
            dscale: u16::from_be_bytes([header[6], header[7]]),
        })
    }

    fn is_special(&self) -> bool {
        matches!(self.sign, NUMERIC_NAN | NUMERIC_PINF | NUMERIC_NINF)
    }

    fn digit(&self, i: usize) -> i16 {
        i16::from_be_bytes([self.digits[2 * i], self.digits[2 * i + 1]])
    }

    fn ndigits(&self) -> usize {
        self.digits.len() / 2
    }

    /// The value times 10^scale, if that is an integer that fits an i128.
    fn unscaled(&self, scale: i8) -> Result<i128, NumericError> {
        if self.is_special() {
            return Err(if self.sign == NUMERIC_NAN {
                NumericError::NotANumber
            } else {
                NumericError::Overflow
            });
        }
        // The digits d_0..d_n are the number D * 10^exponent, D their concatenation; bring it
        // to `scale` while dropping only zeros, and never hold more digits than the result.
        let overflow = || NumericError::Overflow;
        let mut exponent =
            4 * (i32::from(self.weight) - self.ndigits() as i32 + 1) + i32::from(scale);
        let mut end = self.ndigits();
        while exponent <= -4 && end > 0 {
            if self.digit(end - 1) != 0 {
                return Err(NumericError::Scale);
            }
            end -= 1;
            exponent += 4;
        }
        let mut value: i128 = 0;
        if end > 0 {
            // The first four digits (16 decimal digits, whatever an i16 digit holds) fit an
            // i64 without checks; the rest is checked in i128.
            let unchecked = (end - 1).min(4);
            let mut head: i64 = 0;
            for i in 0..unchecked {
                head = head * 10_000 + i64::from(self.digit(i));
            }
            value = i128::from(head);
            for i in unchecked..end - 1 {
                value = value
                    .checked_mul(10_000)
                    .and_then(|v| v.checked_add(i128::from(self.digit(i))))
                    .ok_or_else(overflow)?;
            }
            // One base-10000 digit: divided as an i32 (an i128 division is a library call).
            let last = i32::from(self.digit(end - 1));
            if exponent < 0 {
                // -3..=-1: the loop above dropped whole zero digits.
                let drop = 10i32.pow(exponent.unsigned_abs());
                if last % drop != 0 {
                    return Err(NumericError::Scale);
                }
                value = value
                    .checked_mul(i128::from(10_000 / drop))
                    .and_then(|v| v.checked_add(i128::from(last / drop)))
                    .ok_or_else(overflow)?;
                exponent = 0;
            } else {
                value = value
                    .checked_mul(10_000)
                    .and_then(|v| v.checked_add(i128::from(last)))
                    .ok_or_else(overflow)?;
            }
            if exponent > 0 {
                let factor = 10i128
                    .checked_pow(exponent.unsigned_abs())
                    .ok_or_else(overflow)?;
                value = value.checked_mul(factor).ok_or_else(overflow)?;
            }
        }
        Ok(if self.sign == NUMERIC_NEG {
            -value
        } else {
            value
        })
    }

    /// The exact decimal text PostgreSQL prints for it (`-12.50`, `NaN`, `Infinity`).
    pub fn write_text(&self, out: &mut String) {
        match self.sign {
            NUMERIC_NAN => return out.push_str("NaN"),
            NUMERIC_PINF => return out.push_str("Infinity"),
            NUMERIC_NINF => return out.push_str("-Infinity"),
            _ => {}
        }
        if self.sign == NUMERIC_NEG {
            out.push('-');
        }
        let weight = i32::from(self.weight);
        // Integer part: base-10000 digits 0..=weight.
        if weight < 0 {
            out.push('0');
        } else {
            for i in 0..=weight {
                let d = if (i as usize) < self.ndigits() {
                    self.digit(i as usize)
                } else {
                    0
                };
                if i == 0 {
                    let _ = write!(out, "{d}");
                } else {
                    let _ = write!(out, "{d:04}");
                }
            }
        }
        if self.dscale > 0 {
            out.push('.');
            let mut written = 0;
            let mut i = weight + 1;
            while written < i32::from(self.dscale) {
                let d = if i >= 0 && (i as usize) < self.ndigits() {
                    self.digit(i as usize)
                } else {
                    0
                };
                let group = format!("{d:04}");
                for c in group.chars() {
                    if written < i32::from(self.dscale) {
                        out.push(c);
                        written += 1;
                    }
                }
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(weight: i16, sign: u16, dscale: u16, digits: &[i16]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend((digits.len() as u16).to_be_bytes());
        out.extend(weight.to_be_bytes());
        out.extend(sign.to_be_bytes());
        out.extend(dscale.to_be_bytes());
        for d in digits {
            out.extend(d.to_be_bytes());
        }
        out
    }

    fn text(bytes: &[u8]) -> String {
        let mut s = String::new();
        Numeric::read(bytes).unwrap().write_text(&mut s);
        s
    }

    #[test]
    fn numerics_read_exactly() {
        // 123456.78 = [12, 3456, 7800], weight 1, dscale 2
        let v = numeric(1, 0, 2, &[12, 3456, 7800]);
        assert_eq!(text(&v), "123456.78");
        let n = Numeric::read(&v).unwrap();
        assert!(matches!(n.unscaled(2), Ok(12_345_678)));
        assert!(matches!(n.unscaled(4), Ok(1_234_567_800)));
        assert!(matches!(n.unscaled(1), Err(NumericError::Scale)));
        // 28 integer digits and 10 decimals: 40 wire digits, 38 significant.
        let v = numeric(
            6,
            0,
            10,
            &[1234, 5678, 9012, 3456, 7890, 1234, 5678, 123, 4567, 8900],
        );
        assert!(matches!(
            Numeric::read(&v).unwrap().unscaled(10),
            Ok(12_345_678_901_234_567_890_123_456_780_123_456_789)
        ));
        assert!(matches!(
            Numeric::read(&v).unwrap().unscaled(9),
            Err(NumericError::Scale)
        ));
        // -0.0001 = [1], weight -1, dscale 4
        let v = numeric(-1, NUMERIC_NEG, 4, &[1]);
        assert_eq!(text(&v), "-0.0001");
        assert!(matches!(Numeric::read(&v).unwrap().unscaled(4), Ok(-1)));
        // 1e20 = [1], weight 5, dscale 0
        let v = numeric(5, 0, 0, &[1]);
        assert_eq!(text(&v), "100000000000000000000");
        assert!(matches!(Numeric::read(&v).unwrap().unscaled(0), Ok(v) if v == 10i128.pow(20)));
        assert!(matches!(Numeric::read(&v).unwrap().unscaled(3), Ok(v) if v == 10i128.pow(23)));
        assert_eq!(text(&numeric(0, 0, 0, &[])), "0");
        assert_eq!(text(&numeric(0, 0, 2, &[])), "0.00");
        assert_eq!(text(&numeric(0, NUMERIC_NAN, 0, &[])), "NaN");
        assert_eq!(text(&numeric(0, 0, 3, &[1, 5000])), "1.500");
    }
}
