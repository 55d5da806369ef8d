//! What the catalog keeps of one spec: [`SpecRef`], the fields it indexes
//! and filters on ([`Summary`]) plus the signed envelope as bytes.
//!
//! Schemas and examples stay encoded: a parsed `serde_json::Value` costs up
//! to ~32 bytes of RAM per byte of CBOR, so keeping them parsed would make a
//! node's memory grow with what strangers choose to put in them rather than
//! with the bytes it stores. A reader that needs the whole spec (show,
//! invoke, export) decodes it on demand with [`SpecRef::signed`].

use atr_protocol::limits::MAX_SPEC_BYTES;
use atr_protocol::signed::VerifyError;
use atr_protocol::spec::{Cost, SideEffect};
use atr_protocol::{PublicKey, SignedSpec, ToolId, ToolSpec};
use serde::Deserialize;

/// The fields of a spec the catalog indexes, filters and sorts on. Field
/// names are those of [`ToolSpec`], so `entry.spec.value().name` reads the
/// same whichever the caller holds.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Summary {
    /// Tool name.
    pub name: String,
    /// Semantic version.
    pub version: semver::Version,
    /// What the tool does.
    pub description: String,
    /// Sorted, unique tags.
    pub tags: Vec<String>,
    /// Sorted, unique side effects.
    pub side_effects: Vec<SideEffect>,
    /// Cost hint.
    pub cost: Cost,
    /// The publisher.
    pub publisher: PublicKey,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at_ms: u64,
}

impl Summary {
    /// `name@version`, for messages.
    pub fn label(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    fn of(s: &ToolSpec) -> Self {
        Self {
            name: s.name.clone(),
            version: s.version.clone(),
            description: s.description.clone(),
            tags: s.tags.clone(),
            side_effects: s.side_effects.clone(),
            cost: s.cost,
            publisher: s.publisher,
            created_at_ms: s.created_at_ms,
        }
    }
}

/// A verified spec as the catalog keeps it: its [`Summary`] and its
/// envelope bytes. Its memory is the envelope plus the summary's short
/// strings, whatever the schemas hold.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecRef {
    hash: [u8; 32],
    summary: Summary,
    envelope: Box<[u8]>,
}

/// Why stored bytes could not be read back as a spec.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoredSpecError {
    /// The envelope is not `[body, signature]`.
    #[error("not a signed envelope")]
    Envelope,
    /// The body is not the one stored under this id.
    #[error("the body's hash is {}", hex::encode(.0))]
    Hash([u8; 32]),
    /// The body does not decode as a spec.
    #[error("the body does not decode: {0}")]
    Decode(String),
}

impl SpecRef {
    /// The catalog's form of a spec just verified.
    pub fn from_signed(spec: &SignedSpec) -> Self {
        Self {
            hash: spec.hash(),
            summary: Summary::of(spec.value()),
            envelope: spec.to_bytes().into_boxed_slice(),
        }
    }

    /// The catalog's form of an envelope read from the store under `hash`.
    ///
    /// The envelope was verified when it was written; here only its body's
    /// hash is checked (blake3, cheap) so a damaged row is refused, and the
    /// summary fields are decoded. The signature is checked again only when
    /// a reader asks for the whole spec ([`SpecRef::signed`]).
    pub fn from_stored(hash: [u8; 32], envelope: Vec<u8>) -> Result<Self, StoredSpecError> {
        let (body, _) = split_envelope(&envelope).ok_or(StoredSpecError::Envelope)?;
        let actual = *blake3::hash(body).as_bytes();
        if actual != hash {
            return Err(StoredSpecError::Hash(actual));
        }
        let summary: Summary = atr_protocol::cbor::from_canonical(body, MAX_SPEC_BYTES)
            .map_err(|e| StoredSpecError::Decode(e.to_string()))?;
        Ok(Self {
            hash,
            summary,
            envelope: envelope.into_boxed_slice(),
        })
    }

    /// The tool id.
    pub fn id(&self) -> ToolId {
        ToolId(self.hash)
    }

    /// blake3 of the body (the id's bytes).
    pub fn hash(&self) -> [u8; 32] {
        self.hash
    }

    /// The indexed fields.
    pub fn value(&self) -> &Summary {
        &self.summary
    }

    /// The signed envelope, as stored and as sent to peers.
    pub fn envelope(&self) -> &[u8] {
        &self.envelope
    }

    /// A copy of the signed envelope.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.envelope.to_vec()
    }

    /// The spec's value decoded from the kept body, without checking the
    /// signature again (it was verified when the spec was stored): for
    /// displays. Use [`SpecRef::signed`] to act on it.
    pub fn tool_spec(&self) -> Result<ToolSpec, StoredSpecError> {
        let (body, _) = split_envelope(&self.envelope).ok_or(StoredSpecError::Envelope)?;
        atr_protocol::cbor::from_canonical(body, MAX_SPEC_BYTES)
            .map_err(|e| StoredSpecError::Decode(e.to_string()))
    }

    /// The whole spec, decoded and verified again from the envelope.
    pub fn signed(&self) -> Result<SignedSpec, VerifyError> {
        SignedSpec::from_bytes(&self.envelope)
    }
}

/// Splits a canonical envelope `[body, signature]` into its two byte
/// strings without decoding either: a few header bytes are read, nothing is
/// allocated. `None` when the bytes are not that shape.
pub fn split_envelope(envelope: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = envelope.strip_prefix(&[0x82])?;
    let (body, rest) = byte_string(rest)?;
    let (sig, rest) = byte_string(rest)?;
    rest.is_empty().then_some((body, sig))
}

/// The blake3 hash of an envelope's body (the object's id), computed without
/// decoding or verifying anything: the cheap "already known?" key.
pub fn envelope_hash(envelope: &[u8]) -> Option<[u8; 32]> {
    split_envelope(envelope).map(|(body, _)| *blake3::hash(body).as_bytes())
}

/// One CBOR byte string (major type 2, definite length) at the start of `b`.
fn byte_string(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&head, rest) = b.split_first()?;
    if head >> 5 != 2 {
        return None;
    }
    let (len, rest) = match head & 0x1f {
        n @ 0..=23 => (usize::from(n), rest),
        24 => (usize::from(*rest.first()?), rest.get(1..)?),
        25 => (
            usize::from(u16::from_be_bytes(rest.get(..2)?.try_into().ok()?)),
            rest.get(2..)?,
        ),
        26 => (
            usize::try_from(u32::from_be_bytes(rest.get(..4)?.try_into().ok()?)).ok()?,
            rest.get(4..)?,
        ),
        _ => return None,
    };
    if rest.len() < len {
        return None;
    }
    Some(rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::test_support::spec;

    #[test]
    fn stored_form_round_trips_and_refuses_damage() -> Result<(), Box<dyn std::error::Error>> {
        let s = spec(1, "calc", "1.2.3", &["math"]);
        let r = SpecRef::from_signed(&s);
        let back = SpecRef::from_stored(s.hash(), s.to_bytes())?;
        assert_eq!(back, r);
        assert_eq!(back.value().label(), "calc@1.2.3");
        assert_eq!(back.signed()?, s);
        assert_eq!(envelope_hash(&s.to_bytes()), Some(s.hash()));
        assert!(matches!(
            SpecRef::from_stored([0; 32], s.to_bytes()),
            Err(StoredSpecError::Hash(_))
        ));
        let mut cut = s.to_bytes();
        cut.pop();
        assert!(matches!(
            SpecRef::from_stored(s.hash(), cut.clone()),
            Err(StoredSpecError::Envelope)
        ));
        assert_eq!(envelope_hash(&cut), None);
        assert_eq!(envelope_hash(b""), None);
        assert_eq!(envelope_hash(&[0x82, 0x5b, 0, 0, 0, 0, 0, 0, 0, 1]), None);
        Ok(())
    }
}
