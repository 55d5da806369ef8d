//! A serde `Deserializer` that reads canonical CBOR straight into typed
//! values, without building a [`ciborium::Value`] tree first.
//!
//! It applies the strict decoder's rules item by item (shortest heads,
//! definite lengths, sorted unique map keys, canonical floats, no tags or
//! other simple values, the depth cap and the item budget) and maps CBOR to
//! the serde data model the way ciborium's value deserializer does: integers
//! visit as `u64`/`i64` (`i128` below `i64::MIN`), `null` is `None` or unit,
//! text is a unit variant, a one-entry map is a variant with content, and it
//! is not human-readable (byte-string ids). Text and byte strings are
//! borrowed from the input.

use std::cmp::Ordering;

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

use super::{DecodeError, Decoder, MAX_DEPTH};

impl de::Error for DecodeError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        DecodeError::Shape(msg.to_string())
    }
}

/// Reads one canonical item of `bytes` (at most `max_len` bytes) into `T`.
pub(super) fn from_slice<'de, T: de::Deserialize<'de>>(
    bytes: &'de [u8],
    max_len: usize,
) -> Result<T, DecodeError> {
    if bytes.len() > max_len {
        return Err(DecodeError::TooLarge {
            len: bytes.len(),
            max: max_len,
        });
    }
    let budget = super::item_budget(max_len);
    let mut d = Direct {
        dec: Decoder {
            buf: bytes,
            pos: 0,
            items_left: budget,
            budget,
        },
        depth: 0,
    };
    let v = T::deserialize(&mut d)?;
    if d.dec.pos != bytes.len() {
        return Err(DecodeError::TrailingBytes {
            count: bytes.len() - d.dec.pos,
        });
    }
    Ok(v)
}

struct Direct<'de> {
    dec: Decoder<'de>,
    /// Nesting depth of the next item.
    depth: usize,
}

/// One item's head: where it starts, its major type and its argument
/// (length, integer, or for major 7 the additional information).
struct Head {
    start: usize,
    major: u8,
    info: u8,
}

impl<'de> Direct<'de> {
    fn head(&mut self) -> Result<Head, DecodeError> {
        let (start, major, info) = self.dec.head()?;
        Ok(Head { start, major, info })
    }

    fn peek_null(&self) -> bool {
        self.dec.buf.get(self.dec.pos) == Some(&0xf6)
    }

    fn borrowed(&mut self, h: &Head) -> Result<&'de [u8], DecodeError> {
        let n = self.dec.length(h.info, h.start, 1)?;
        let end = self.dec.pos + n;
        let s = &self.dec.buf[self.dec.pos..end];
        self.dec.pos = end;
        Ok(s)
    }

    fn text(&mut self, h: &Head) -> Result<&'de str, DecodeError> {
        let b = self.borrowed(h)?;
        std::str::from_utf8(b).map_err(|_| DecodeError::InvalidUtf8 { offset: h.start })
    }

    fn enter(&mut self) -> Result<(), DecodeError> {
        if self.depth >= MAX_DEPTH {
            return Err(DecodeError::TooDeep { max: MAX_DEPTH });
        }
        self.depth += 1;
        Ok(())
    }

    /// Visits the item whose head was just read.
    fn visit<V: Visitor<'de>>(&mut self, h: Head, visitor: V) -> Result<V::Value, DecodeError> {
        match h.major {
            0 => visitor.visit_u64(self.dec.argument(h.info, h.start)?),
            1 => {
                let n = self.dec.argument(h.info, h.start)?;
                let v = -1 - i128::from(n);
                match i64::try_from(v) {
                    Ok(v) => visitor.visit_i64(v),
                    Err(_) => visitor.visit_i128(v),
                }
            }
            2 => visitor.visit_borrowed_bytes(self.borrowed(&h)?),
            3 => visitor.visit_borrowed_str(self.text(&h)?),
            4 => {
                self.enter()?;
                let n = self.dec.length(h.info, h.start, 1)?;
                let mut seq = Seq { de: self, left: n };
                let v = visitor.visit_seq(&mut seq)?;
                if seq.left > 0 {
                    return Err(DecodeError::Shape(format!("{} array items left over", seq.left)));
                }
                self.depth -= 1;
                Ok(v)
            }
            5 => {
                self.enter()?;
                let n = self.dec.length(h.info, h.start, 2)?;
                let mut map = Map {
                    de: self,
                    left: n,
                    prev_key: None,
                };
                let v = visitor.visit_map(&mut map)?;
                if map.left > 0 {
                    return Err(DecodeError::Shape(format!("{} map entries left over", map.left)));
                }
                self.depth -= 1;
                Ok(v)
            }
            6 => Err(DecodeError::Unsupported {
                offset: h.start,
                what: "CBOR tag",
            }),
            _ => match h.info {
                20 => visitor.visit_bool(false),
                21 => visitor.visit_bool(true),
                22 => visitor.visit_unit(),
                _ => {
                    let v = self.dec.simple_or_float(h.info, h.start)?;
                    match v {
                        ciborium::Value::Float(x) => visitor.visit_f64(x),
                        _ => Err(DecodeError::Unsupported {
                            offset: h.start,
                            what: "simple value",
                        }),
                    }
                }
            },
        }
    }
}

struct Seq<'a, 'de> {
    de: &'a mut Direct<'de>,
    left: usize,
}

impl<'de> de::SeqAccess<'de> for &mut Seq<'_, 'de> {
    type Error = DecodeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DecodeError> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(&mut *self.de).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

struct Map<'a, 'de> {
    de: &'a mut Direct<'de>,
    left: usize,
    prev_key: Option<(usize, usize)>,
}

impl<'de> de::MapAccess<'de> for &mut Map<'_, 'de> {
    type Error = DecodeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, DecodeError> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        let key_start = self.de.dec.pos;
        let k = seed.deserialize(&mut *self.de)?;
        let key_end = self.de.dec.pos;
        if let Some((ps, pe)) = self.prev_key {
            let buf = self.de.dec.buf;
            match buf[ps..pe].cmp(&buf[key_start..key_end]) {
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
        self.prev_key = Some((key_start, key_end));
        Ok(Some(k))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DecodeError> {
        seed.deserialize(&mut *self.de)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

/// An enum: a text item (unit variant) or a one-entry map (variant with content).
struct Enum<'a, 'de> {
    de: &'a mut Direct<'de>,
}

impl<'de> de::EnumAccess<'de> for Enum<'_, 'de> {
    type Error = DecodeError;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), DecodeError> {
        let v = seed.deserialize(&mut *self.de)?;
        Ok((v, self))
    }
}

impl<'de> de::VariantAccess<'de> for Enum<'_, 'de> {
    type Error = DecodeError;

    fn unit_variant(self) -> Result<(), DecodeError> {
        de::Deserialize::deserialize(&mut *self.de)
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DecodeError> {
        seed.deserialize(&mut *self.de)
    }
    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DecodeError> {
        de::Deserializer::deserialize_seq(&mut *self.de, visitor)
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        de::Deserializer::deserialize_map(&mut *self.de, visitor)
    }
}

impl<'de> de::Deserializer<'de> for &mut Direct<'de> {
    type Error = DecodeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        let h = self.head()?;
        self.visit(h, visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        if self.peek_null() {
            self.head()?;
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        let h = self.head()?;
        match h.major {
            3 => {
                let s = self.text(&h)?;
                visitor.visit_enum(s.into_deserializer())
            }
            5 => {
                let n = self.dec.length(h.info, h.start, 2)?;
                if n != 1 {
                    return Err(DecodeError::Shape(format!(
                        "an enum variant with content is a map of one entry, not {n}"
                    )));
                }
                self.enter()?;
                let v = visitor.visit_enum(Enum { de: self })?;
                self.depth -= 1;
                Ok(v)
            }
            _ => Err(DecodeError::Shape(
                "expected an enum (text or a one-entry map)".into(),
            )),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        visitor.visit_newtype_struct(self)
    }

    fn is_human_readable(&self) -> bool {
        false
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}
