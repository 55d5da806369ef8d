//! Paging of the API's listings (`find`, `search`, `receipts`): the opaque cursor a page
//! ends with and the next request hands back, and the page-size limits both sides apply.
//!
//! A cursor is the *position* after the last item of a page, not an offset, so pages stay
//! exact while items are added: every item that existed when the first page was asked for
//! and still matches is returned exactly once across the pages (new items after the
//! position may appear, new items before it do not).
//!
//! - find: the listing key of the last spec (name, version, id), the order of
//!   [`FindResponse`](crate::api::FindResponse) results;
//! - search: the number of documents the first page scored over (later pages score the
//!   same documents with the same statistics, so scores do not move), and the last hit's
//!   score and id;
//! - receipts: the store sequence number of the last receipt (the next page holds older ones).
//!
//! On the wire a cursor is `base64url` (no padding) of a small binary form, at most
//! [`MAX_CURSOR_LEN`] characters. Clients never look inside; the node refuses one it cannot
//! read with the error code `invalid_cursor` (400).

use data_encoding::BASE64URL_NOPAD;

use crate::id::ToolId;
use crate::limits::MAX_NAME_LEN;

/// Longest cursor text accepted (a find cursor with a 64-byte name and a long version is
/// well under it).
pub const MAX_CURSOR_LEN: usize = 400;
/// Longest version text a find cursor carries (a longer version is refused by publish).
const MAX_VERSION_LEN: usize = 128;

const KIND_FIND: u8 = 1;
const KIND_SEARCH: u8 = 2;
const KIND_RECEIPTS: u8 = 3;

/// Where a page of a listing ended.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Cursor {
    /// After this spec in find order (name, version descending, id).
    Find {
        /// Its name.
        name: String,
        /// Its version.
        version: semver::Version,
        /// Its id.
        id: ToolId,
    },
    /// After this hit of a search over the first `docs` documents of the node's index.
    Search {
        /// Documents the first page scored over.
        docs: u32,
        /// The last hit's score.
        score: f32,
        /// The last hit's id.
        id: ToolId,
    },
    /// Receipts stored before this sequence number.
    Receipts {
        /// The last receipt's sequence number.
        before: u64,
    },
}

/// Why a cursor was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CursorError {
    /// Longer than [`MAX_CURSOR_LEN`].
    #[error("the cursor is {0} characters, over the limit of {MAX_CURSOR_LEN}")]
    TooLong(usize),
    /// Not base64url, or not a cursor's binary form.
    #[error("not a cursor this node issued: {0}")]
    Malformed(&'static str),
    /// A cursor of another listing (e.g. a search cursor given to find).
    #[error("this cursor belongs to a {found} listing, not to {expected}")]
    WrongKind {
        /// The listing asked.
        expected: &'static str,
        /// The listing the cursor came from.
        found: &'static str,
    },
}

impl Cursor {
    /// The listing it belongs to: `find`, `search` or `receipts`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Find { .. } => "find",
            Self::Search { .. } => "search",
            Self::Receipts { .. } => "receipts",
        }
    }

    /// Its wire text.
    pub fn encode(&self) -> String {
        let mut b = Vec::with_capacity(64);
        match self {
            Self::Find { name, version, id } => {
                let v = version.to_string();
                b.push(KIND_FIND);
                push_short(&mut b, name.as_bytes());
                push_short(&mut b, v.as_bytes());
                b.extend_from_slice(&id.0);
            }
            Self::Search { docs, score, id } => {
                b.push(KIND_SEARCH);
                b.extend_from_slice(&docs.to_be_bytes());
                b.extend_from_slice(&score.to_bits().to_be_bytes());
                b.extend_from_slice(&id.0);
            }
            Self::Receipts { before } => {
                b.push(KIND_RECEIPTS);
                b.extend_from_slice(&before.to_be_bytes());
            }
        }
        BASE64URL_NOPAD.encode(&b)
    }

    /// Reads a cursor of the `expected` listing (`find`, `search` or `receipts`), checking
    /// its size first and every field's shape.
    pub fn decode(text: &str, expected: &'static str) -> Result<Self, CursorError> {
        if text.len() > MAX_CURSOR_LEN {
            return Err(CursorError::TooLong(text.len()));
        }
        let bytes = BASE64URL_NOPAD
            .decode(text.as_bytes())
            .map_err(|_| CursorError::Malformed("not base64url"))?;
        let mut r = Reader(&bytes);
        let c = match r.byte()? {
            KIND_FIND => {
                let name = std::str::from_utf8(r.short(MAX_NAME_LEN)?)
                    .map_err(|_| CursorError::Malformed("name is not UTF-8"))?
                    .to_owned();
                if name.is_empty() {
                    return Err(CursorError::Malformed("empty name"));
                }
                let version = std::str::from_utf8(r.short(MAX_VERSION_LEN)?)
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .ok_or(CursorError::Malformed("version is not semver"))?;
                let id = ToolId(r.array()?);
                Self::Find { name, version, id }
            }
            KIND_SEARCH => {
                let docs = u32::from_be_bytes(r.array()?);
                let score = f32::from_bits(u32::from_be_bytes(r.array()?));
                if !score.is_finite() {
                    return Err(CursorError::Malformed("score is not finite"));
                }
                let id = ToolId(r.array()?);
                Self::Search { docs, score, id }
            }
            KIND_RECEIPTS => Self::Receipts {
                before: u64::from_be_bytes(r.array()?),
            },
            _ => return Err(CursorError::Malformed("unknown kind")),
        };
        if !r.0.is_empty() {
            return Err(CursorError::Malformed("trailing bytes"));
        }
        if c.kind() != expected {
            return Err(CursorError::WrongKind {
                expected,
                found: c.kind(),
            });
        }
        Ok(c)
    }
}

fn push_short(b: &mut Vec<u8>, s: &[u8]) {
    // Names and versions are far below 256 bytes (checked at publish); cut defensively.
    let s = &s[..s.len().min(255)];
    b.push(s.len() as u8);
    b.extend_from_slice(s);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CursorError> {
        if self.0.len() < n {
            return Err(CursorError::Malformed("cut short"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, CursorError> {
        Ok(self.take(1)?[0])
    }

    fn short(&mut self, max: usize) -> Result<&'a [u8], CursorError> {
        let n = usize::from(self.byte()?);
        if n > max {
            return Err(CursorError::Malformed("field too long"));
        }
        self.take(n)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CursorError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
}

/// How a listing shows each spec.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum View {
    /// The whole spec ([`crate::api::SpecView`]).
    #[default]
    Full,
    /// Id, name, version, publisher, description, tags and status, no schemas
    /// ([`crate::api::CompactView`]).
    Compact,
}

impl View {
    /// Its query-string text.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Compact => "compact",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_other_kinds() {
        let id = ToolId([7; 32]);
        let all = [
            Cursor::Find {
                name: "calc".into(),
                version: "1.2.3-beta.1".parse().unwrap(),
                id,
            },
            Cursor::Search {
                docs: 5000,
                score: 3.25,
                id,
            },
            Cursor::Receipts { before: 42 },
        ];
        for c in all {
            let text = c.encode();
            assert!(text.len() <= MAX_CURSOR_LEN);
            assert_eq!(Cursor::decode(&text, c.kind()).unwrap(), c);
            let other = if c.kind() == "find" { "search" } else { "find" };
            assert!(matches!(
                Cursor::decode(&text, other),
                Err(CursorError::WrongKind { .. })
            ));
        }
        let longest = Cursor::Find {
            name: "n".repeat(MAX_NAME_LEN),
            version: format!("1.0.0-{}", "a".repeat(MAX_VERSION_LEN - 6))
                .parse()
                .unwrap(),
            id,
        };
        assert!(longest.encode().len() <= MAX_CURSOR_LEN);
    }

    #[test]
    fn hostile_cursors_are_refused() {
        let bad = [
            "",
            "!!!",
            "AQ",
            &"A".repeat(MAX_CURSOR_LEN + 1),
            &BASE64URL_NOPAD.encode(&[9, 0, 0]),
            &BASE64URL_NOPAD.encode(&[KIND_RECEIPTS, 0, 0, 0, 0, 0, 0, 0, 1, 5]),
            &BASE64URL_NOPAD.encode(&[KIND_FIND, 200, b'a']),
            &BASE64URL_NOPAD.encode(&[KIND_FIND, 1, b'a', 3, b'x', b'y', b'z']),
        ];
        for text in bad {
            assert!(Cursor::decode(text, "find").is_err(), "{text}");
            assert!(Cursor::decode(text, "receipts").is_err(), "{text}");
        }
        let nan = [
            &[KIND_SEARCH, 0, 0, 0, 1][..],
            &f32::NAN.to_bits().to_be_bytes(),
            &[0; 32],
        ]
        .concat();
        assert!(Cursor::decode(&BASE64URL_NOPAD.encode(&nan), "search").is_err());
    }
}
