//! Content ids.
//!
//! - [`ToolId`]: blake3 of a spec's canonical bytes; text form `atr_` + 52
//!   lowercase base32 characters (RFC 4648 alphabet, no padding).
//! - [`ContentHash`]: blake3 of any other bytes (inputs, outputs, revocations),
//!   text form lowercase hex.
//! - [`InvocationId`]: 16 random bytes chosen by the caller, lowercase hex.

use std::fmt;
use std::str::FromStr;

use data_encoding::{BASE32_NOPAD, Encoding};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Text prefix of a [`ToolId`].
pub const TOOL_ID_PREFIX: &str = "atr_";

fn base32_lower() -> Encoding {
    let mut spec = BASE32_NOPAD.specification();
    spec.symbols = "abcdefghijklmnopqrstuvwxyz234567".to_owned();
    // The specification is a constant known to be valid.
    spec.encoding().unwrap_or_else(|_| BASE32_NOPAD.clone())
}

/// Why a text id could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdParseError {
    /// The `atr_` prefix is missing.
    #[error("a tool id starts with `{TOOL_ID_PREFIX}`")]
    MissingPrefix,
    /// Not valid base32/hex of the right length.
    #[error("not a valid {what}: expected {expected} characters of {alphabet}")]
    Malformed {
        /// The kind of id.
        what: &'static str,
        /// Expected length in characters.
        expected: usize,
        /// Allowed characters.
        alphabet: &'static str,
    },
}

/// The id of a tool spec: blake3 of its canonical CBOR bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ToolId(pub [u8; 32]);

impl ToolId {
    /// The id of the given canonical spec bytes.
    pub fn of(canonical_spec: &[u8]) -> Self {
        Self(*blake3::hash(canonical_spec).as_bytes())
    }
    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
    /// A short form for logs and tables: the first 12 base32 characters.
    pub fn fmt_short(&self) -> String {
        let s = base32_lower().encode(&self.0);
        s[..12].to_owned()
    }
}

impl fmt::Display for ToolId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{TOOL_ID_PREFIX}{}", base32_lower().encode(&self.0))
    }
}

impl fmt::Debug for ToolId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ToolId({})", self.fmt_short())
    }
}

impl FromStr for ToolId {
    type Err = IdParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let body = s
            .strip_prefix(TOOL_ID_PREFIX)
            .ok_or(IdParseError::MissingPrefix)?;
        let err = IdParseError::Malformed {
            what: "tool id",
            expected: 52,
            alphabet: "a-z2-7",
        };
        if body.len() != 52 {
            return Err(err);
        }
        let bytes = base32_lower().decode(body.as_bytes()).map_err(|_| err.clone())?;
        let arr: [u8; 32] = bytes.try_into().map_err(|_| err)?;
        Ok(Self(arr))
    }
}

/// Fewest characters of a short id ([`ToolIdPrefix`]): 12 base32 characters are 60 bits, so
/// finding a second spec whose id starts like a given one costs about 2⁶⁰ hashes (a 4-character
/// prefix, 20 bits, costs a laptop a second). It is also exactly what [`ToolId::fmt_short`]
/// and the CLI's tables show, so what a person copies from a table resolves.
pub const MIN_SHORT_ID_LEN: usize = 12;

/// Characters of a [`ToolId`]'s text after [`TOOL_ID_PREFIX`].
pub const TOOL_ID_CHARS: usize = 52;

/// Why text is not a short id ([`ToolIdPrefix`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PrefixError {
    /// Fewer than [`MIN_SHORT_ID_LEN`] characters after the optional `atr_`.
    #[error("a short id needs at least {MIN_SHORT_ID_LEN} characters (it has {len}); copy more of the id")]
    TooShort {
        /// Characters given.
        len: usize,
    },
    /// More characters than a whole id has.
    #[error("an id has {TOOL_ID_CHARS} characters after `{TOOL_ID_PREFIX}`, this has {len}")]
    TooLong {
        /// Characters given.
        len: usize,
    },
    /// A character outside the id alphabet.
    #[error("ids are written with a-z and 2-7 only")]
    Alphabet,
}

/// The start of a [`ToolId`]'s text, as a person copies it from a table: at least
/// [`MIN_SHORT_ID_LEN`] base32 characters, with or without `atr_`. Its ids form one
/// contiguous range of 32-byte values ([`Self::range`]), so a node finds them with one range
/// scan of an id-ordered table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolIdPrefix {
    chars: String,
}

impl ToolIdPrefix {
    /// The base32 characters, without `atr_`.
    pub fn as_str(&self) -> &str {
        &self.chars
    }

    /// The smallest and largest id starting with this prefix (both inclusive).
    pub fn range(&self) -> (ToolId, ToolId) {
        let mut lo = [0u8; 32];
        let mut hi = [0xffu8; 32];
        let mut bit = 0usize;
        for c in self.chars.bytes() {
            let v = match c {
                b'a'..=b'z' => c - b'a',
                _ => c - b'2' + 26,
            };
            for k in (0..5).rev() {
                if bit >= 256 {
                    break;
                }
                let (byte, mask) = (bit / 8, 0x80u8 >> (bit % 8));
                if (v >> k) & 1 == 1 {
                    lo[byte] |= mask;
                } else {
                    hi[byte] &= !mask;
                }
                bit += 1;
            }
        }
        (ToolId(lo), ToolId(hi))
    }

    /// Whether `id`'s text starts with this prefix.
    pub fn matches(&self, id: &ToolId) -> bool {
        let (lo, hi) = self.range();
        (lo..=hi).contains(id)
    }
}

impl fmt::Display for ToolIdPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{TOOL_ID_PREFIX}{}", self.chars)
    }
}

impl FromStr for ToolIdPrefix {
    type Err = PrefixError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let body = s.strip_prefix(TOOL_ID_PREFIX).unwrap_or(s);
        if !body
            .bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
        {
            return Err(PrefixError::Alphabet);
        }
        let len = body.len();
        if len < MIN_SHORT_ID_LEN {
            return Err(PrefixError::TooShort { len });
        }
        if len > TOOL_ID_CHARS {
            return Err(PrefixError::TooLong { len });
        }
        Ok(Self {
            chars: body.to_owned(),
        })
    }
}

macro_rules! bytes_serde {
    ($t:ty, $n:expr) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.collect_str(self)
                } else {
                    s.serialize_bytes(&self.0)
                }
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                if d.is_human_readable() {
                    let s = String::deserialize(d)?;
                    s.parse().map_err(serde::de::Error::custom)
                } else {
                    let b: crate::id::ByteBuf = Deserialize::deserialize(d)?;
                    let arr: [u8; $n] = b.0.try_into().map_err(|v: Vec<u8>| {
                        serde::de::Error::invalid_length(v.len(), &concat!(stringify!($n), " bytes"))
                    })?;
                    Ok(Self(arr))
                }
            }
        }
    };
}
pub(crate) use bytes_serde;

/// A byte string for serde (CBOR major type 2), without pulling in `serde_bytes`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ByteBuf(pub Vec<u8>);

impl Serialize for ByteBuf {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for ByteBuf {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ByteBuf;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<ByteBuf, E> {
                Ok(ByteBuf(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<ByteBuf, E> {
                Ok(ByteBuf(v))
            }
        }
        d.deserialize_byte_buf(V)
    }
}

bytes_serde!(ToolId, 32);

macro_rules! hex_id {
    ($(#[$doc:meta])* $name:ident, $n:expr, $what:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; $n]);

        impl $name {
            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; $n] {
                &self.0
            }
            /// A short form for logs: the first 12 hex characters.
            pub fn fmt_short(&self) -> String {
                hex::encode(&self.0[..6])
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.fmt_short())
            }
        }
        impl FromStr for $name {
            type Err = IdParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let err = IdParseError::Malformed { what: $what, expected: 2 * $n, alphabet: "0-9a-f" };
                if s.len() != 2 * $n || s.bytes().any(|b| b.is_ascii_uppercase()) {
                    return Err(err);
                }
                let v = hex::decode(s).map_err(|_| err.clone())?;
                Ok(Self(v.try_into().map_err(|_| err)?))
            }
        }
        bytes_serde!($name, $n);
    };
}

hex_id!(
    /// blake3 of arbitrary bytes: a tool input or output, a revocation body.
    ContentHash, 32, "content hash"
);
hex_id!(
    /// The caller-chosen random id of one invocation (replay protection).
    InvocationId, 16, "invocation id"
);

impl ContentHash {
    /// blake3 of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(*blake3::hash(bytes).as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_id_text_round_trips() {
        let id = ToolId::of(b"hello");
        let s = id.to_string();
        assert!(s.starts_with("atr_") && s.len() == 56, "{s}");
        assert_eq!(s.parse::<ToolId>().unwrap(), id);
        assert_eq!(id.fmt_short().len(), 12);
    }

    #[test]
    fn a_prefix_range_holds_exactly_the_ids_that_start_with_it() {
        let ids: Vec<ToolId> = (0u8..=255).map(|i| ToolId::of(&[i])).collect();
        for id in &ids {
            let text = id.to_string();
            for n in [12, 13, 17, 31, 51, 52] {
                let p: ToolIdPrefix = text[4..4 + n].parse().unwrap();
                let (lo, hi) = p.range();
                assert!(lo <= *id && *id <= hi, "{text} {n}");
                assert!(lo.to_string().starts_with(&p.to_string()));
                assert!(hi.to_string().starts_with(&p.to_string()));
                for other in &ids {
                    assert_eq!(p.matches(other), other.to_string().starts_with(&p.to_string()));
                }
            }
        }
        // With `atr_`, and the whole id.
        let t = ids[7].to_string();
        assert_eq!(t.parse::<ToolIdPrefix>().unwrap().range(), (ids[7], ids[7]));
        assert!(t[..16].parse::<ToolIdPrefix>().unwrap().matches(&ids[7]));
    }

    #[test]
    fn short_ids_need_twelve_characters_of_the_alphabet() {
        assert_eq!(
            "abcdefghijk".parse::<ToolIdPrefix>(),
            Err(PrefixError::TooShort { len: 11 })
        );
        assert_eq!(
            "atr_abcd".parse::<ToolIdPrefix>(),
            Err(PrefixError::TooShort { len: 4 })
        );
        assert_eq!("abcdefghijk1".parse::<ToolIdPrefix>(), Err(PrefixError::Alphabet));
        assert_eq!("ABCDEFGHIJKL".parse::<ToolIdPrefix>(), Err(PrefixError::Alphabet));
        assert_eq!(
            "a".repeat(53).parse::<ToolIdPrefix>(),
            Err(PrefixError::TooLong { len: 53 })
        );
        assert!("abcdefghijkl".parse::<ToolIdPrefix>().is_ok());
    }

    #[test]
    fn tool_id_rejects_bad_text() {
        assert_eq!("abc".parse::<ToolId>(), Err(IdParseError::MissingPrefix));
        assert!(matches!(
            "atr_abc".parse::<ToolId>(),
            Err(IdParseError::Malformed { .. })
        ));
        let upper = ToolId::of(b"x")
            .to_string()
            .to_uppercase()
            .replace("ATR_", "atr_");
        assert!(upper.parse::<ToolId>().is_err());
    }

    #[test]
    fn hex_ids_round_trip_and_reject() {
        let h = ContentHash::of(b"x");
        assert_eq!(h.to_string().parse::<ContentHash>().unwrap(), h);
        assert!("zz".parse::<ContentHash>().is_err());
        assert!(h.to_string().to_uppercase().parse::<ContentHash>().is_err());
        let i = InvocationId([7; 16]);
        assert_eq!(i.to_string().parse::<InvocationId>().unwrap(), i);
    }
}
