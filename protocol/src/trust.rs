//! The node's trust list: the publishers whose tools this node's agents get by name.
//!
//! Names are not global: anyone can publish a spec named `calculator`. A node keeps one list
//! of publishers it trusts ([`TrustEntry`]: a key and an optional label); every selection
//! path reads it: invoke by name, `atr mcp`, `atr export`, and the find and search displays.
//! [`Standing`] is the one rule they apply to a publisher: this node's own key, a trusted
//! key, or a stranger.
//!
//! The list is bounded ([`MAX_TRUSTED`]) and its labels are short, single-line text
//! ([`check_label`]), since they are shown in terminals and tool lists.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::key::PublicKey;

/// Most publishers one node trusts (config and API entries together). A real operator trusts
/// tens; the cap bounds the table, the API answer and every per-spec lookup.
pub const MAX_TRUSTED: usize = 1024;

/// Longest label of a trusted publisher, in characters: enough for an organisation's name,
/// short enough for a table cell.
pub const MAX_TRUST_LABEL_CHARS: usize = 64;

/// Why a label is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LabelError {
    /// Over [`MAX_TRUST_LABEL_CHARS`].
    #[error("a trust label is at most {max} characters, this one has {len}")]
    TooLong {
        /// Its length in characters.
        len: usize,
        /// [`MAX_TRUST_LABEL_CHARS`].
        max: usize,
    },
    /// A control, invisible or bidirectional-override character (it could rewrite what a
    /// terminal or a model shows next to the key).
    #[error(
        "a trust label may not contain U+{code:04X} (control, invisible or bidi character) at character {at}"
    )]
    ForbiddenChar {
        /// The character's code point.
        code: u32,
        /// Its position, in characters from 0.
        at: usize,
    },
}

/// Whether `c` may not appear in a label: C0 and C1 controls, DEL, zero-width and
/// bidirectional formatting characters, the byte order mark.
fn forbidden(c: char) -> bool {
    c.is_control()
        || matches!(c as u32,
            0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2069 | 0xFEFF | 0x061C | 0x180E)
}

/// Checks a label of a trusted publisher: at most [`MAX_TRUST_LABEL_CHARS`] characters, no
/// control, invisible or bidi characters. The empty label is allowed (it means none).
pub fn check_label(label: &str) -> Result<(), LabelError> {
    // Bounded before any other work: count at most one character past the cap.
    let len = label.chars().take(MAX_TRUST_LABEL_CHARS + 1).count();
    if len > MAX_TRUST_LABEL_CHARS {
        return Err(LabelError::TooLong {
            len: label.chars().count(),
            max: MAX_TRUST_LABEL_CHARS,
        });
    }
    match label.chars().enumerate().find(|(_, c)| forbidden(*c)) {
        Some((at, c)) => Err(LabelError::ForbiddenChar { code: c as u32, at }),
        None => Ok(()),
    }
}

/// Where a trust entry comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TrustSource {
    /// The config file's `trusted_publishers`: read-only through the API (edit the file).
    Config,
    /// Added through the API (`atr trust add`), kept in the store.
    Api,
}

/// One trusted publisher.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustEntry {
    /// The publisher's key (its peer id).
    pub publisher: PublicKey,
    /// What the operator calls it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Where the entry comes from.
    pub source: TrustSource,
}

/// How a selection path sees a spec's publisher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Standing {
    /// This node published it.
    Own,
    /// On this node's trust list.
    Trusted,
    /// Anyone else.
    Untrusted,
}

impl Standing {
    /// The word shown in tables and `_meta`: `own`, `trusted`, `untrusted`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Own => "own",
            Self::Trusted => "trusted",
            Self::Untrusted => "untrusted",
        }
    }

    /// Own or trusted: the publishers whose tools a node serves and resolves by default.
    pub fn is_trusted(self) -> bool {
        !matches!(self, Self::Untrusted)
    }
}

impl fmt::Display for Standing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Answer to `GET /v1/trust`: this node's key and the publishers it trusts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustList {
    /// This node's own publisher key (always trusted, never listed in `entries`).
    pub node: PublicKey,
    /// Trusted publishers, config entries first, then by key.
    pub entries: Vec<TrustEntry>,
}

impl TrustList {
    /// The one rule: this node's key is [`Standing::Own`], a listed key
    /// [`Standing::Trusted`], any other [`Standing::Untrusted`].
    pub fn standing(&self, publisher: &PublicKey) -> Standing {
        if *publisher == self.node {
            Standing::Own
        } else if self.entries.iter().any(|e| e.publisher == *publisher) {
            Standing::Trusted
        } else {
            Standing::Untrusted
        }
    }

    /// The label of a trusted publisher, when it has one.
    pub fn label(&self, publisher: &PublicKey) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| e.publisher == *publisher)
            .and_then(|e| e.label.as_deref())
    }
}

/// `POST /v1/trust`: trust a publisher.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustRequest {
    /// The publisher's key (its peer id).
    pub publisher: PublicKey,
    /// A label for people ([`check_label`]); adding a trusted key again replaces its label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// Answer to `POST /v1/trust` and `DELETE /v1/trust/{publisher}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustResponse {
    /// The publisher.
    pub publisher: PublicKey,
    /// Whether it is trusted now.
    pub trusted: bool,
    /// Whether the call changed anything.
    pub changed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_short_single_line_text() {
        assert!(check_label("").is_ok());
        assert!(check_label("Acme tools — prod").is_ok());
        assert!(check_label(&"é".repeat(MAX_TRUST_LABEL_CHARS)).is_ok());
        assert_eq!(
            check_label(&"x".repeat(MAX_TRUST_LABEL_CHARS + 1)),
            Err(LabelError::TooLong {
                len: MAX_TRUST_LABEL_CHARS + 1,
                max: MAX_TRUST_LABEL_CHARS
            })
        );
        for (bad, code) in [
            ("a\nb", 0x0A),
            ("a\u{1b}[31mb", 0x1B),
            ("a\u{9b}b", 0x9B),
            ("a\u{7f}", 0x7F),
            ("a\u{202e}b", 0x202E),
            ("a\u{200b}b", 0x200B),
            ("\u{feff}a", 0xFEFF),
        ] {
            match check_label(bad) {
                Err(LabelError::ForbiddenChar { code: c, .. }) => assert_eq!(c, code, "{bad:?}"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn standing_is_own_then_listed_then_stranger() {
        let key = |b| PublicKey([b; 32]);
        let list = TrustList {
            node: key(1),
            entries: vec![TrustEntry {
                publisher: key(2),
                label: Some("c".into()),
                source: TrustSource::Api,
            }],
        };
        assert_eq!(list.standing(&key(1)), Standing::Own);
        assert_eq!(list.standing(&key(2)), Standing::Trusted);
        assert_eq!(list.standing(&key(3)), Standing::Untrusted);
        assert!(Standing::Own.is_trusted() && !Standing::Untrusted.is_trusted());
        assert_eq!(list.label(&key(2)), Some("c"));
        let json = serde_json::to_value(&list).unwrap();
        assert_eq!(json["entries"][0]["source"], "api");
        assert_eq!(serde_json::from_value::<TrustList>(json).unwrap(), list);
    }
}
