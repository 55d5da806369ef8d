//! Canonical CBOR: one byte string for one value.
//!
//! atr signs and hashes exact bytes, so every value has exactly one encoding.
//! The rules are RFC 8949 §4.2.1 ("core deterministic encoding") plus two of
//! atr's own about numbers:
//!
//! 1. integers, lengths and simple values use the shortest argument form;
//! 2. arrays, maps and strings have definite lengths;
//! 3. map keys are sorted by their encoded bytes (bytewise lexicographic) and
//!    are unique;
//! 4. no tags, no `undefined`, no simple values other than `false`, `true`, `null`;
//! 5. a float whose value is an integer in `[-2^63, 2^64)` is encoded as that
//!    integer (so JSON `1.0` and `1` name the same spec);
//! 6. any other float uses the shortest of half, single or double precision
//!    that holds it exactly; NaN and ±Infinity are rejected.
//!
//! [`decode`] is strict: it rejects anything [`encode`] would not produce
//! ([`DecodeError::NonCanonical`]) instead of "fixing" it, so
//! `encode(decode(b)) == b` for every accepted `b`. It is bounded: the caller
//! passes a size cap, nesting is capped at [`MAX_DEPTH`], the number of items
//! at [`item_budget`] of the cap (a decoded item costs tens of bytes of memory
//! while it may take one byte on the wire), and no length is trusted before
//! the bytes it claims are present.
//!
//! The serde bridge keeps atr types plain serde types: [`to_canonical`]
//! serializes directly to canonical bytes (the same bytes as
//! `encode(&Value::serialized(v))`, without the intermediate tree), and
//! [`from_canonical`] deserializes directly from them, applying [`decode`]'s
//! rules item by item.

use std::cmp::Ordering;

mod de;
mod direct;

use ciborium::value::{Integer, Value};
use serde::{Serialize, de::DeserializeOwned};

pub use crate::limits::MAX_DEPTH;

/// Why a value could not be encoded canonically.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// NaN and infinities have no place in a signed spec.
    #[error("a float is NaN or infinite")]
    NonFiniteFloat,
    /// CBOR tags and other extensions are outside atr's data model.
    #[error("unsupported value: {0}")]
    Unsupported(&'static str),
    /// Integers are limited to the 64-bit CBOR range.
    #[error("integer outside the 64-bit CBOR range")]
    IntegerOutOfRange,
    /// A map holds the same key twice.
    #[error("a map holds a duplicate key")]
    DuplicateKey,
    /// Nesting beyond [`MAX_DEPTH`].
    #[error("nesting deeper than {max} levels")]
    TooDeep {
        /// The cap.
        max: usize,
    },
    /// serde could not map the value to CBOR.
    #[error("cannot serialize: {0}")]
    Serialize(String),
}

/// Why bytes were refused by the strict decoder. Each malformed shape has its
/// own variant so that callers and tests can tell them apart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input is larger than the cap for this kind of object.
    #[error("{len} bytes is over the {max}-byte limit")]
    TooLarge {
        /// Input length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// The input ends in the middle of an item.
    #[error("input ends early (item at byte {offset} needs more bytes)")]
    Truncated {
        /// Where the unfinished item starts.
        offset: usize,
    },
    /// Arrays and maps nest deeper than [`MAX_DEPTH`].
    #[error("nesting deeper than {max} levels")]
    TooDeep {
        /// The cap.
        max: usize,
    },
    /// More items (of any kind) than the budget for this size cap.
    #[error("more than {max} items (the budget for this size)")]
    TooManyItems {
        /// The budget ([`item_budget`] of the size cap).
        max: usize,
    },
    /// Valid CBOR, but not the one canonical encoding.
    #[error("non-canonical encoding at byte {offset}: {what}")]
    NonCanonical {
        /// Where the offending item starts.
        offset: usize,
        /// Which rule is broken.
        what: &'static str,
    },
    /// A CBOR feature outside atr's data model (tags, undefined, simple values).
    #[error("unsupported CBOR item at byte {offset}: {what}")]
    Unsupported {
        /// Where the item starts.
        offset: usize,
        /// What it is.
        what: &'static str,
    },
    /// A map holds the same key twice.
    #[error("duplicate map key at byte {offset}")]
    DuplicateKey {
        /// Where the second key starts.
        offset: usize,
    },
    /// A text string is not UTF-8.
    #[error("invalid UTF-8 in the text string at byte {offset}")]
    InvalidUtf8 {
        /// Where the string starts.
        offset: usize,
    },
    /// A float is NaN or infinite.
    #[error("float at byte {offset} is NaN or infinite")]
    NonFiniteFloat {
        /// Where the float starts.
        offset: usize,
    },
    /// Bytes remain after the single top-level item.
    #[error("{count} bytes follow the top-level item")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// Well-formed canonical CBOR of the wrong shape for the expected type.
    #[error("wrong shape: {0}")]
    Shape(String),
}

/// Encodes `value` canonically.
pub fn encode(value: &Value) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(256);
    encode_into(value, &mut out, 0)?;
    Ok(out)
}

/// Serializes a serde value and encodes it canonically.
pub fn to_canonical<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, EncodeError> {
    direct::to_vec(value)
}

/// Decodes canonical bytes of at most `max_len` bytes into a serde type,
/// straight from the bytes (no [`Value`] tree), under the same rules and
/// budgets as [`decode`].
pub fn from_canonical<T: DeserializeOwned>(bytes: &[u8], max_len: usize) -> Result<T, DecodeError> {
    de::from_slice(bytes, max_len)
}

/// Most items a value decoded under a size cap of `max_len` bytes may hold:
/// one per 16 bytes of the cap, and never fewer than 8192 (a spec's
/// schemas and examples may hold 4096 JSON values, see
/// [`crate::limits::MAX_SPEC_JSON_ITEMS`]). A decoded item costs ~48 bytes,
/// so the tree of any accepted input stays within a few times the cap, where
/// one-byte items alone would cost ~48 times the input.
pub fn item_budget(max_len: usize) -> usize {
    (max_len / 16).max(8192)
}

/// Decodes exactly one canonical item of at most `max_len` bytes.
pub fn decode(bytes: &[u8], max_len: usize) -> Result<Value, DecodeError> {
    if bytes.len() > max_len {
        return Err(DecodeError::TooLarge {
            len: bytes.len(),
            max: max_len,
        });
    }
    let mut d = Decoder {
        buf: bytes,
        pos: 0,
        items_left: item_budget(max_len),
        budget: item_budget(max_len),
    };
    let v = d.item(0)?;
    if d.pos != bytes.len() {
        return Err(DecodeError::TrailingBytes {
            count: bytes.len() - d.pos,
        });
    }
    Ok(v)
}

fn write_head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    if n < 24 {
        out.push(m | n as u8);
    } else if n <= u8::MAX as u64 {
        out.push(m | 24);
        out.push(n as u8);
    } else if n <= u16::MAX as u64 {
        out.push(m | 25);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else if n <= u32::MAX as u64 {
        out.push(m | 26);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn encode_integer(i: i128, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    if i >= 0 {
        let n = u64::try_from(i).map_err(|_| EncodeError::IntegerOutOfRange)?;
        write_head(out, 0, n);
    } else {
        let n = u64::try_from(-1 - i).map_err(|_| EncodeError::IntegerOutOfRange)?;
        write_head(out, 1, n);
    }
    Ok(())
}

/// The integer a float stands for under rule 5, if any.
fn integral_value(x: f64) -> Option<i128> {
    // -2^63 and 2^64 are exactly representable; the range test keeps the cast exact.
    const MIN: f64 = -9_223_372_036_854_775_808.0; // -2^63
    const MAX: f64 = 18_446_744_073_709_551_616.0; // 2^64
    if x.fract() == 0.0 && (MIN..MAX).contains(&x) {
        Some(x as i128)
    } else {
        None
    }
}

/// Half-precision bits for `x` if it is exactly representable.
fn to_f16_exact(x: f64) -> Option<u16> {
    let sign: u16 = if x.is_sign_negative() { 0x8000 } else { 0 };
    let a = x.abs();
    if a == 0.0 {
        return Some(sign);
    }
    // Subnormal halves: m * 2^-24, m in 1..1024.
    let scaled = a * 16_777_216.0; // 2^24
    if scaled < 1024.0 {
        return (scaled.fract() == 0.0).then_some(sign | scaled as u16);
    }
    let bits = a.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32 - 1023;
    let mant = bits & ((1u64 << 52) - 1);
    if !(-14..=15).contains(&exp) || mant & ((1u64 << 42) - 1) != 0 {
        return None;
    }
    Some(sign | (((exp + 15) as u16) << 10) | (mant >> 42) as u16)
}

fn f16_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = ((h >> 10) & 0x1f) as i32;
    let mant = (h & 0x3ff) as f64;
    match exp {
        0 => sign * mant * 2f64.powi(-24),
        31 => {
            if mant == 0.0 {
                sign * f64::INFINITY
            } else {
                f64::NAN
            }
        }
        e => sign * (1.0 + mant / 1024.0) * 2f64.powi(e - 15),
    }
}

fn encode_float(x: f64, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    if !x.is_finite() {
        return Err(EncodeError::NonFiniteFloat);
    }
    if let Some(i) = integral_value(x) {
        return encode_integer(i, out);
    }
    if let Some(h) = to_f16_exact(x) {
        out.push(0xf9);
        out.extend_from_slice(&h.to_be_bytes());
    } else if (x as f32) as f64 == x {
        out.push(0xfa);
        out.extend_from_slice(&(x as f32).to_be_bytes());
    } else {
        out.push(0xfb);
        out.extend_from_slice(&x.to_be_bytes());
    }
    Ok(())
}

fn encode_into(value: &Value, out: &mut Vec<u8>, depth: usize) -> Result<(), EncodeError> {
    match value {
        Value::Integer(i) => encode_integer(i128::from(*i), out)?,
        Value::Bytes(b) => {
            write_head(out, 2, b.len() as u64);
            out.extend_from_slice(b);
        }
        Value::Text(s) => {
            write_head(out, 3, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
        Value::Float(x) => encode_float(*x, out)?,
        Value::Bool(false) => out.push(0xf4),
        Value::Bool(true) => out.push(0xf5),
        Value::Null => out.push(0xf6),
        Value::Array(items) => {
            if depth >= MAX_DEPTH {
                return Err(EncodeError::TooDeep { max: MAX_DEPTH });
            }
            write_head(out, 4, items.len() as u64);
            for item in items {
                encode_into(item, out, depth + 1)?;
            }
        }
        Value::Map(entries) => {
            if depth >= MAX_DEPTH {
                return Err(EncodeError::TooDeep { max: MAX_DEPTH });
            }
            let mut pairs = Vec::with_capacity(entries.len());
            for (k, v) in entries {
                let mut kb = Vec::new();
                encode_into(k, &mut kb, depth + 1)?;
                pairs.push((kb, v));
            }
            pairs.sort_by(|a, b| a.0.cmp(&b.0));
            if pairs.windows(2).any(|w| w[0].0 == w[1].0) {
                return Err(EncodeError::DuplicateKey);
            }
            write_head(out, 5, pairs.len() as u64);
            for (kb, v) in pairs {
                out.extend_from_slice(&kb);
                encode_into(v, out, depth + 1)?;
            }
        }
        Value::Tag(..) => return Err(EncodeError::Unsupported("CBOR tag")),
        _ => return Err(EncodeError::Unsupported("unknown CBOR value")),
    }
    Ok(())
}

struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
    items_left: usize,
    budget: usize,
}

impl Decoder<'_> {
    fn take(&mut self, n: usize, item_start: usize) -> Result<&[u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(DecodeError::Truncated { offset: item_start })?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Reads the argument of a head whose additional info is `info`,
    /// rejecting non-shortest forms and indefinite lengths.
    fn argument(&mut self, info: u8, start: usize) -> Result<u64, DecodeError> {
        let non_shortest = DecodeError::NonCanonical {
            offset: start,
            what: "integer or length not in its shortest form",
        };
        match info {
            0..=23 => Ok(info as u64),
            24 => {
                let n = self.take(1, start)?[0] as u64;
                if n < 24 { Err(non_shortest) } else { Ok(n) }
            }
            25 => {
                let b = self.take(2, start)?;
                let n = u16::from_be_bytes([b[0], b[1]]) as u64;
                if n <= u8::MAX as u64 {
                    Err(non_shortest)
                } else {
                    Ok(n)
                }
            }
            26 => {
                let b = self.take(4, start)?;
                let n = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as u64;
                if n <= u16::MAX as u64 {
                    Err(non_shortest)
                } else {
                    Ok(n)
                }
            }
            27 => {
                let b = self.take(8, start)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                let n = u64::from_be_bytes(a);
                if n <= u32::MAX as u64 {
                    Err(non_shortest)
                } else {
                    Ok(n)
                }
            }
            31 => Err(DecodeError::NonCanonical {
                offset: start,
                what: "indefinite length",
            }),
            _ => Err(DecodeError::Unsupported {
                offset: start,
                what: "reserved additional information (28-30)",
            }),
        }
    }

    /// A length that must fit in the remaining input, `unit` bytes per element at least.
    fn length(&mut self, info: u8, start: usize, unit: usize) -> Result<usize, DecodeError> {
        let n = self.argument(info, start)?;
        let n = usize::try_from(n).map_err(|_| DecodeError::Truncated { offset: start })?;
        if n.saturating_mul(unit) > self.remaining() {
            return Err(DecodeError::Truncated { offset: start });
        }
        Ok(n)
    }

    /// Counts one item against the budget and reads its head byte:
    /// where the item starts, its major type and additional information.
    fn head(&mut self) -> Result<(usize, u8, u8), DecodeError> {
        self.items_left = self
            .items_left
            .checked_sub(1)
            .ok_or(DecodeError::TooManyItems { max: self.budget })?;
        let start = self.pos;
        let head = self.take(1, start)?[0];
        Ok((start, head >> 5, head & 0x1f))
    }

    fn item(&mut self, depth: usize) -> Result<Value, DecodeError> {
        let (start, major, info) = self.head()?;
        match major {
            0 => Ok(Value::Integer(Integer::from(self.argument(info, start)?))),
            1 => {
                let n = self.argument(info, start)?;
                Ok(Value::Integer(Integer::try_from(-1 - n as i128).map_err(
                    |_| DecodeError::Unsupported {
                        offset: start,
                        what: "integer out of range",
                    },
                )?))
            }
            2 => {
                let n = self.length(info, start, 1)?;
                Ok(Value::Bytes(self.take(n, start)?.to_vec()))
            }
            3 => {
                let n = self.length(info, start, 1)?;
                let b = self.take(n, start)?;
                let s = std::str::from_utf8(b).map_err(|_| DecodeError::InvalidUtf8 { offset: start })?;
                Ok(Value::Text(s.to_owned()))
            }
            4 => {
                if depth >= MAX_DEPTH {
                    return Err(DecodeError::TooDeep { max: MAX_DEPTH });
                }
                let n = self.length(info, start, 1)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.item(depth + 1)?);
                }
                Ok(Value::Array(items))
            }
            5 => {
                if depth >= MAX_DEPTH {
                    return Err(DecodeError::TooDeep { max: MAX_DEPTH });
                }
                let n = self.length(info, start, 2)?;
                let mut entries = Vec::with_capacity(n);
                let mut prev_key: Option<(usize, usize)> = None;
                for _ in 0..n {
                    let key_start = self.pos;
                    let k = self.item(depth + 1)?;
                    let key_end = self.pos;
                    if let Some((ps, pe)) = prev_key {
                        match self.buf[ps..pe].cmp(&self.buf[key_start..key_end]) {
                            Ordering::Less => {}
                            Ordering::Equal => return Err(DecodeError::DuplicateKey { offset: key_start }),
                            Ordering::Greater => {
                                return Err(DecodeError::NonCanonical {
                                    offset: key_start,
                                    what: "map keys not sorted by their encoded bytes",
                                });
                            }
                        }
                    }
                    prev_key = Some((key_start, key_end));
                    let v = self.item(depth + 1)?;
                    entries.push((k, v));
                }
                Ok(Value::Map(entries))
            }
            6 => Err(DecodeError::Unsupported {
                offset: start,
                what: "CBOR tag",
            }),
            _ => self.simple_or_float(info, start),
        }
    }

    fn simple_or_float(&mut self, info: u8, start: usize) -> Result<Value, DecodeError> {
        let x = match info {
            20 => return Ok(Value::Bool(false)),
            21 => return Ok(Value::Bool(true)),
            22 => return Ok(Value::Null),
            23 => {
                return Err(DecodeError::Unsupported {
                    offset: start,
                    what: "undefined",
                });
            }
            25 => {
                let b = self.take(2, start)?;
                f16_to_f64(u16::from_be_bytes([b[0], b[1]]))
            }
            26 => {
                let b = self.take(4, start)?;
                f32::from_be_bytes([b[0], b[1], b[2], b[3]]) as f64
            }
            27 => {
                let b = self.take(8, start)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                f64::from_be_bytes(a)
            }
            31 => {
                return Err(DecodeError::NonCanonical {
                    offset: start,
                    what: "break outside an indefinite-length item",
                });
            }
            _ => {
                return Err(DecodeError::Unsupported {
                    offset: start,
                    what: "simple value",
                });
            }
        };
        if !x.is_finite() {
            return Err(DecodeError::NonFiniteFloat { offset: start });
        }
        let mut canonical = Vec::with_capacity(9);
        // Cannot fail: x is finite.
        encode_float(x, &mut canonical).map_err(|_| DecodeError::NonFiniteFloat { offset: start })?;
        if canonical != self.buf[start..self.pos] {
            return Err(DecodeError::NonCanonical {
                offset: start,
                what: "float not in its shortest exact form, or integral",
            });
        }
        Ok(Value::Float(x))
    }
}

/// Converts a JSON value to the CBOR data model: objects become maps with
/// text keys, numbers follow rules 5 and 6 of the module doc.
pub fn json_to_value(j: &serde_json::Value) -> Value {
    match j {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::Integer(u.into())
            } else if let Some(i) = n.as_i64() {
                Value::Integer(i.into())
            } else {
                Value::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        serde_json::Value::String(s) => Value::Text(s.clone()),
        serde_json::Value::Array(a) => Value::Array(a.iter().map(json_to_value).collect()),
        serde_json::Value::Object(o) => Value::Map(
            o.iter()
                .map(|(k, v)| (Value::Text(k.clone()), json_to_value(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(v: &Value) -> String {
        hex::encode(encode(v).unwrap())
    }

    #[test]
    fn shortest_integers() {
        for (n, h) in [
            (0i64, "00"),
            (23, "17"),
            (24, "1818"),
            (255, "18ff"),
            (256, "190100"),
            (65535, "19ffff"),
            (65536, "1a00010000"),
            (4294967296, "1b0000000100000000"),
            (-1, "20"),
            (-24, "37"),
            (-25, "3818"),
            (-1000, "3903e7"),
        ] {
            assert_eq!(hex(&Value::Integer(n.into())), h, "{n}");
        }
    }

    #[test]
    fn floats_shortest_and_integral_as_integer() {
        assert_eq!(hex(&Value::Float(1.0)), "01");
        assert_eq!(hex(&Value::Float(-4.0)), "23");
        assert_eq!(hex(&Value::Float(1.5)), "f93e00");
        assert_eq!(hex(&Value::Float(0.1)), "fb3fb999999999999a");
        assert_eq!(hex(&Value::Float(100000.5)), "fa47c35040");
        assert_eq!(hex(&Value::Float(5.960464477539063e-8)), "f90001");
        assert_eq!(hex(&Value::Float(65504.5)), "fa477fe080");
        assert_eq!(hex(&Value::Float(-0.0)), "00", "negative zero is the integer 0");
        assert_eq!(encode(&Value::Float(f64::NAN)), Err(EncodeError::NonFiniteFloat));
        assert_eq!(
            encode(&Value::Float(f64::INFINITY)),
            Err(EncodeError::NonFiniteFloat)
        );
    }

    #[test]
    fn map_keys_sorted_by_encoded_bytes() {
        let m = Value::Map(vec![
            (Value::Text("bb".into()), Value::Integer(1.into())),
            (Value::Text("a".into()), Value::Integer(2.into())),
            (Value::Text("c".into()), Value::Integer(3.into())),
        ]);
        // shorter keys first (length is in the head byte), then bytewise
        assert_eq!(hex(&m), "a361610261630362626201");
    }

    #[test]
    fn decoder_rejects_non_canonical_forms() {
        let cases: &[(&str, &str)] = &[
            ("1817", "integer or length not in its shortest form"),
            ("190017", "integer or length not in its shortest form"),
            ("5f41014102ff", "indefinite length"),
            ("f93c00", "float not in its shortest exact form, or integral"),
            (
                "fb3ff8000000000000",
                "float not in its shortest exact form, or integral",
            ),
            ("a2616201616101", "map keys not sorted by their encoded bytes"),
        ];
        for (h, what) in cases {
            let b = hex::decode(h).unwrap();
            match decode(&b, 100) {
                Err(DecodeError::NonCanonical { what: w, .. }) => assert_eq!(&w, what, "{h}"),
                other => panic!("{h}: {other:?}"),
            }
        }
    }

    #[test]
    fn decoder_rejects_other_malformations_with_distinct_errors() {
        let d = |h: &str| decode(&hex::decode(h).unwrap(), 64);
        assert!(matches!(
            d("a2616101616102"),
            Err(DecodeError::DuplicateKey { .. })
        ));
        assert!(matches!(d("c11a514b67b0"), Err(DecodeError::Unsupported { .. })));
        assert!(matches!(d("f7"), Err(DecodeError::Unsupported { .. })));
        assert!(matches!(d("f97e00"), Err(DecodeError::NonFiniteFloat { .. })));
        assert!(matches!(d("f97c00"), Err(DecodeError::NonFiniteFloat { .. })));
        assert!(matches!(d("6261"), Err(DecodeError::Truncated { .. })));
        assert!(matches!(
            d("9bffffffffffffffff"),
            Err(DecodeError::Truncated { .. })
        ));
        assert!(matches!(d("0101"), Err(DecodeError::TrailingBytes { count: 1 })));
        assert!(matches!(d("62c328"), Err(DecodeError::InvalidUtf8 { .. })));
        assert!(matches!(
            decode(&[0u8; 65], 64),
            Err(DecodeError::TooLarge { len: 65, max: 64 })
        ));
        let deep = [vec![0x81u8; MAX_DEPTH + 1], vec![0x00]].concat();
        assert_eq!(decode(&deep, 1000), Err(DecodeError::TooDeep { max: MAX_DEPTH }));
        let ok_deep = [vec![0x81u8; MAX_DEPTH], vec![0x00]].concat();
        assert!(decode(&ok_deep, 1000).is_ok());
    }

    /// The direct deserializer refuses exactly what [`decode`] refuses, with
    /// the same error (offsets included), for every malformation above, the
    /// caps, and single-byte corruptions of a real spec body.
    #[test]
    fn direct_deserializer_applies_the_same_rules() {
        use serde::de::IgnoredAny;
        let direct = |b: &[u8], max: usize| from_canonical::<IgnoredAny>(b, max).err();
        let cases = [
            "1817",
            "190017",
            "5f41014102ff",
            "f93c00",
            "fb3ff8000000000000",
            "a2616201616101",
            "a2616101616102",
            "c11a514b67b0",
            "f7",
            "f97e00",
            "f97c00",
            "6261",
            "9bffffffffffffffff",
            "0101",
            "62c328",
        ];
        for h in cases {
            let b = hex::decode(h).unwrap();
            let want = decode(&b, 64).err();
            assert!(want.is_some(), "{h}");
            assert_eq!(direct(&b, 64), want, "{h}");
        }
        assert_eq!(
            direct(&[0u8; 65], 64),
            Some(DecodeError::TooLarge { len: 65, max: 64 })
        );
        let deep = [vec![0x81u8; MAX_DEPTH + 1], vec![0x00]].concat();
        assert_eq!(direct(&deep, 1000), Some(DecodeError::TooDeep { max: MAX_DEPTH }));
        let ok_deep = [vec![0x81u8; MAX_DEPTH], vec![0x00]].concat();
        assert_eq!(direct(&ok_deep, 1000), None);
        // The item budget: an array of one-byte items past it.
        let budget = item_budget(64);
        let mut many = vec![0x99];
        many.extend_from_slice(&(budget as u16).to_be_bytes());
        many.extend(std::iter::repeat_n(0u8, budget));
        let max = many.len();
        assert_eq!(direct(&many, max), decode(&many, max).err());
        assert!(matches!(
            direct(&many, max),
            Some(DecodeError::TooManyItems { .. })
        ));

        // Corruptions of a real body: accepted by both or refused by both.
        let spec = crate::manifest::Manifest::from_toml(
            r#"
name = "calc"
version = "1.2.3"
description = "Adds, with a float 1.5 and a negative -3."
tags = ["math", "calc"]
input_schema = { type = "object", properties = { a = { type = "number", minimum = -3, maximum = 1.5 } }, required = ["a"] }
[runtime]
image = "calc:1"
digest = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
"#,
            "t.toml",
        )
        .unwrap()
        .to_spec("t.toml", crate::SecretKey::from_seed(&[3; 32]).public(), 1, None)
        .unwrap();
        let body = to_canonical(&spec).unwrap();
        let back: crate::spec::ToolSpec = from_canonical(&body, 1 << 16).unwrap();
        assert_eq!(to_canonical(&back).unwrap(), body);
        let mut agree = 0;
        for i in 0..body.len() {
            for x in [0x01u8, 0x20, 0x80, 0xff] {
                let mut b = body.clone();
                b[i] ^= x;
                let (slow, fast) = (decode(&b, 1 << 16), from_canonical::<IgnoredAny>(&b, 1 << 16));
                assert_eq!(slow.is_ok(), fast.is_ok(), "byte {i} ^ {x:#x}");
                if let (Err(s), Err(f)) = (slow, fast) {
                    assert_eq!(s, f, "byte {i} ^ {x:#x}");
                }
                agree += 1;
            }
        }
        assert_eq!(agree, body.len() * 4);
    }

    /// The direct serializer writes exactly what the `Value` path writes.
    #[test]
    fn direct_serializer_matches_value_path() {
        use std::collections::BTreeMap;
        #[derive(serde::Serialize)]
        enum E {
            Unit,
            New(u8),
            Tup(i32, String),
            St { zz: bool, a: Option<f64> },
        }
        #[derive(serde::Serialize)]
        struct S {
            zeta: Vec<E>,
            b: (char, i128, u128, f32),
            unit: (),
            none: Option<u8>,
            json: serde_json::Value,
            map: BTreeMap<String, i64>,
        }
        let s = S {
            zeta: vec![
                E::Unit,
                E::New(200),
                E::Tup(-1000, "x".into()),
                E::St {
                    zz: true,
                    a: Some(1.5),
                },
                E::St { zz: false, a: None },
            ],
            b: ('é', -(1i128 << 64), u64::MAX.into(), 0.1),
            unit: (),
            none: None,
            json: serde_json::json!({"type": "object", "properties": {"bb": {"minimum": 1.0}, "a": [0.5, -3, "s", null]}, "c": true}),
            map: BTreeMap::from([("long key".into(), 1), ("z".into(), -2), ("".into(), 3)]),
        };
        let via_value = encode(&Value::serialized(&s).unwrap()).unwrap();
        assert_eq!(to_canonical(&s).unwrap(), via_value);
        // Errors: a NaN, a too-deep nesting, a bignum, duplicate keys.
        assert_eq!(to_canonical(&f64::NAN), Err(EncodeError::NonFiniteFloat));
        let mut deep = serde_json::json!(0);
        for _ in 0..=MAX_DEPTH {
            deep = serde_json::json!([deep]);
        }
        assert_eq!(to_canonical(&deep), Err(EncodeError::TooDeep { max: MAX_DEPTH }));
        assert_eq!(
            to_canonical(&(1u128 << 64)),
            Err(EncodeError::Unsupported("CBOR tag"))
        );
        struct Pairs(Vec<(f64, i32)>);
        impl serde::Serialize for Pairs {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
            }
        }
        // 1.0 is the integer 1 (rule 5): a duplicate of the key `1`.
        let dup = Pairs(vec![(1.0, 1), (1.5, 2), (1.0, 3)]);
        assert_eq!(to_canonical(&dup), Err(EncodeError::DuplicateKey));
    }

    #[test]
    fn json_numbers_map_by_value() {
        let a: serde_json::Value = serde_json::from_str(r#"{"m": 1.0, "n": 2.5}"#).unwrap();
        let b: serde_json::Value = serde_json::from_str(r#"{"n": 2.5, "m": 1}"#).unwrap();
        assert_eq!(encode(&json_to_value(&a)), encode(&json_to_value(&b)));
    }
}
