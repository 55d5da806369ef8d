//! A serde `Serializer` that writes canonical CBOR directly, without building
//! a [`ciborium::Value`] tree first.
//!
//! It produces exactly the bytes of `encode(&Value::serialized(v)?)`: the
//! serde data model is mapped to CBOR the way ciborium's value serializer
//! maps it (unit and `None` are `null`, unit variants are their name,
//! newtype/tuple/struct variants are one-entry maps, `char` is text,
//! 128-bit integers outside the 64-bit CBOR range are bignum tags, which are
//! refused), and the canonical rules of the module doc are applied on the
//! fly: each array or map is written in place, its head is inserted in
//! front once its length is known, and a map's entries are reordered by
//! their encoded keys only if they were not emitted in that order already.

use serde::ser::{self, Serialize};

use super::{EncodeError, MAX_DEPTH, encode_float, encode_integer, write_head};

impl ser::Error for EncodeError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        EncodeError::Serialize(msg.to_string())
    }
}

/// Serializes `value` canonically into a fresh buffer.
pub(super) fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, EncodeError> {
    let mut enc = Encoder {
        out: Vec::with_capacity(1024),
        depth: 0,
    };
    value.serialize(&mut enc)?;
    Ok(enc.out)
}

struct Encoder {
    out: Vec<u8>,
    /// Nesting depth of the item being written (the root is 0).
    depth: usize,
}

impl Encoder {
    fn enter(&self) -> Result<(), EncodeError> {
        if self.depth >= MAX_DEPTH {
            return Err(EncodeError::TooDeep { max: MAX_DEPTH });
        }
        Ok(())
    }

    /// Writes `{variant: ` and goes one level deeper for the variant's
    /// content (undone when that level is too deep).
    fn enter_variant(&mut self, variant: &str) -> Result<(), EncodeError> {
        self.variant_key(variant)?;
        self.depth += 1;
        if let Err(e) = self.enter() {
            self.depth -= 1;
            return Err(e);
        }
        Ok(())
    }

    /// Serializes a child item one level deeper.
    fn child<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), EncodeError> {
        self.depth += 1;
        let r = v.serialize(&mut *self);
        self.depth -= 1;
        r
    }

    /// Inserts the head of a container of `n` items in front of its items,
    /// which start at `start`.
    fn insert_head(&mut self, start: usize, major: u8, n: usize) {
        let mut head = Vec::with_capacity(9);
        write_head(&mut head, major, n as u64);
        self.out.splice(start..start, head);
    }

    fn text(&mut self, s: &str) {
        write_head(&mut self.out, 3, s.len() as u64);
        self.out.extend_from_slice(s.as_bytes());
    }

    /// Starts a one-entry map `{variant: …}` (newtype, tuple and struct variants).
    fn variant_key(&mut self, variant: &str) -> Result<(), EncodeError> {
        self.enter()?;
        self.out.push(0xa1);
        self.text(variant);
        Ok(())
    }
}

/// An array being written: where its items start and how many there are.
pub(super) struct Seq<'a> {
    enc: &'a mut Encoder,
    start: usize,
    count: usize,
    /// Inside a tuple variant's map: one level to leave at the end.
    variant: bool,
}

impl Seq<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), EncodeError> {
        self.count += 1;
        self.enc.child(v)
    }

    fn finish(self) -> Result<(), EncodeError> {
        self.enc.insert_head(self.start, 4, self.count);
        if self.variant {
            self.enc.depth -= 1;
        }
        Ok(())
    }
}

/// A map being written: the start of each entry's key and value.
pub(super) struct Map<'a> {
    enc: &'a mut Encoder,
    start: usize,
    /// (key start, key end) of each entry, in emission order.
    entries: Vec<(usize, usize)>,
    /// Inside a struct variant's map: one level to leave at the end.
    variant: bool,
}

impl Map<'_> {
    fn key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), EncodeError> {
        let ks = self.enc.out.len();
        self.enc.child(k)?;
        self.entries.push((ks, self.enc.out.len()));
        Ok(())
    }

    fn value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), EncodeError> {
        self.enc.child(v)
    }

    fn field<T: Serialize + ?Sized>(&mut self, key: &'static str, v: &T) -> Result<(), EncodeError> {
        let ks = self.enc.out.len();
        self.enc.text(key);
        self.entries.push((ks, self.enc.out.len()));
        self.enc.child(v)
    }

    fn finish(self) -> Result<(), EncodeError> {
        let Map {
            enc,
            start,
            entries,
            variant,
        } = self;
        let mut in_order = true;
        for w in entries.windows(2) {
            let (a, b) = (w[0], w[1]);
            match enc.out[a.0..a.1].cmp(&enc.out[b.0..b.1]) {
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Equal => return Err(EncodeError::DuplicateKey),
                std::cmp::Ordering::Greater => in_order = false,
            }
        }
        if !in_order {
            let end = enc.out.len();
            // (key start, key end, entry end), relative to `start`.
            let mut spans: Vec<(usize, usize, usize)> = entries
                .iter()
                .enumerate()
                .map(|(i, &(ks, ke))| {
                    let ee = entries.get(i + 1).map_or(end, |e| e.0);
                    (ks - start, ke - start, ee - start)
                })
                .collect();
            let items = enc.out.split_off(start);
            spans.sort_by(|a, b| items[a.0..a.1].cmp(&items[b.0..b.1]));
            if spans
                .windows(2)
                .any(|w| items[w[0].0..w[0].1] == items[w[1].0..w[1].1])
            {
                return Err(EncodeError::DuplicateKey);
            }
            for s in spans {
                enc.out.extend_from_slice(&items[s.0..s.2]);
            }
        }
        enc.insert_head(start, 5, entries.len());
        if variant {
            enc.depth -= 1;
        }
        Ok(())
    }
}

impl<'a> ser::Serializer for &'a mut Encoder {
    type Ok = ();
    type Error = EncodeError;
    type SerializeSeq = Seq<'a>;
    type SerializeTuple = Seq<'a>;
    type SerializeTupleStruct = Seq<'a>;
    type SerializeTupleVariant = Seq<'a>;
    type SerializeMap = Map<'a>;
    type SerializeStruct = Map<'a>;
    type SerializeStructVariant = Map<'a>;

    fn serialize_bool(self, v: bool) -> Result<(), EncodeError> {
        self.out.push(if v { 0xf5 } else { 0xf4 });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), EncodeError> {
        encode_integer(v.into(), &mut self.out)
    }
    fn serialize_i16(self, v: i16) -> Result<(), EncodeError> {
        encode_integer(v.into(), &mut self.out)
    }
    fn serialize_i32(self, v: i32) -> Result<(), EncodeError> {
        encode_integer(v.into(), &mut self.out)
    }
    fn serialize_i64(self, v: i64) -> Result<(), EncodeError> {
        encode_integer(v.into(), &mut self.out)
    }
    fn serialize_i128(self, v: i128) -> Result<(), EncodeError> {
        // Outside [-2^64, 2^64) ciborium makes a bignum tag, which is refused.
        encode_integer(v, &mut self.out).map_err(|_| EncodeError::Unsupported("CBOR tag"))
    }
    fn serialize_u8(self, v: u8) -> Result<(), EncodeError> {
        write_head(&mut self.out, 0, v.into());
        Ok(())
    }
    fn serialize_u16(self, v: u16) -> Result<(), EncodeError> {
        write_head(&mut self.out, 0, v.into());
        Ok(())
    }
    fn serialize_u32(self, v: u32) -> Result<(), EncodeError> {
        write_head(&mut self.out, 0, v.into());
        Ok(())
    }
    fn serialize_u64(self, v: u64) -> Result<(), EncodeError> {
        write_head(&mut self.out, 0, v);
        Ok(())
    }
    fn serialize_u128(self, v: u128) -> Result<(), EncodeError> {
        let v = u64::try_from(v).map_err(|_| EncodeError::Unsupported("CBOR tag"))?;
        write_head(&mut self.out, 0, v);
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), EncodeError> {
        encode_float(v.into(), &mut self.out)
    }
    fn serialize_f64(self, v: f64) -> Result<(), EncodeError> {
        encode_float(v, &mut self.out)
    }
    fn serialize_char(self, v: char) -> Result<(), EncodeError> {
        self.text(v.encode_utf8(&mut [0u8; 4]));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), EncodeError> {
        self.text(v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), EncodeError> {
        write_head(&mut self.out, 2, v.len() as u64);
        self.out.extend_from_slice(v);
        Ok(())
    }
    fn serialize_none(self) -> Result<(), EncodeError> {
        self.out.push(0xf6);
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), EncodeError> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), EncodeError> {
        self.out.push(0xf6);
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), EncodeError> {
        self.out.push(0xf6);
        Ok(())
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _i: u32,
        variant: &'static str,
    ) -> Result<(), EncodeError> {
        self.text(variant);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        v: &T,
    ) -> Result<(), EncodeError> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        _i: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<(), EncodeError> {
        if (name, variant) == ("@@TAG@@", "@@UNTAGGED@@") {
            return v.serialize(self);
        }
        self.variant_key(variant)?;
        self.child(v)
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Seq<'a>, EncodeError> {
        self.enter()?;
        let start = self.out.len();
        Ok(Seq {
            enc: self,
            start,
            count: 0,
            variant: false,
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Seq<'a>, EncodeError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<Seq<'a>, EncodeError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        _i: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Seq<'a>, EncodeError> {
        if (name, variant) == ("@@TAG@@", "@@TAGGED@@") {
            return Err(EncodeError::Unsupported("CBOR tag"));
        }
        self.enter_variant(variant)?;
        let start = self.out.len();
        Ok(Seq {
            enc: self,
            start,
            count: 0,
            variant: true,
        })
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Map<'a>, EncodeError> {
        self.enter()?;
        let start = self.out.len();
        Ok(Map {
            enc: self,
            start,
            entries: Vec::with_capacity(len.unwrap_or(0)),
            variant: false,
        })
    }
    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<Map<'a>, EncodeError> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _i: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Map<'a>, EncodeError> {
        self.enter_variant(variant)?;
        let start = self.out.len();
        Ok(Map {
            enc: self,
            start,
            entries: Vec::with_capacity(len),
            variant: true,
        })
    }
    fn is_human_readable(&self) -> bool {
        false
    }
}

/// The sequence-like serde traits all append one element.
macro_rules! seq_impl {
    ($($trait:ident :: $method:ident),*) => {$(
        impl ser::$trait for Seq<'_> {
            type Ok = ();
            type Error = EncodeError;
            fn $method<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), EncodeError> {
                self.element(v)
            }
            fn end(self) -> Result<(), EncodeError> {
                self.finish()
            }
        }
    )*};
}

seq_impl!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl ser::SerializeMap for Map<'_> {
    type Ok = ();
    type Error = EncodeError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), EncodeError> {
        self.key(k)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), EncodeError> {
        self.value(v)
    }
    fn end(self) -> Result<(), EncodeError> {
        self.finish()
    }
}

/// The struct-like serde traits both add one named field.
macro_rules! struct_impl {
    ($($trait:ident),*) => {$(
        impl ser::$trait for Map<'_> {
            type Ok = ();
            type Error = EncodeError;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                v: &T,
            ) -> Result<(), EncodeError> {
                self.field(key, v)
            }
            fn end(self) -> Result<(), EncodeError> {
                self.finish()
            }
        }
    )*};
}

struct_impl!(SerializeStruct, SerializeStructVariant);
