//! Revocations and deprecations: the publisher's signed word that a tool
//! (one id, or every version of a name) must no longer be used.
//!
//! A revocation is valid only when signed by the publisher of what it
//! targets; nodes check that against their stored spec before applying it
//! (this crate checks the signature and shape). A deprecation is a softer
//! revocation that may point to a successor id.

use serde::{Deserialize, Serialize};

use crate::id::ToolId;
use crate::key::PublicKey;
use crate::limits::{MAX_REASON_LEN, MAX_REVOCATION_BYTES};
use crate::signed::{Signed, SignedBody};
use crate::validate::{self, ValidationError};

/// The revocation format this crate writes and reads.
pub const REVOCATION_FORMAT: u64 = 1;
/// Domain separation prefix of revocation signatures.
pub const REVOCATION_SIGNING_PREFIX: &[u8] = b"atr-revocation-v1";

/// A signed, verified revocation. Its hash is its id in sync.
pub type SignedRevocation = Signed<Revocation>;

/// What a revocation targets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum RevocationTarget {
    /// One spec.
    Id(ToolId),
    /// Every spec of this name by this publisher created at or before the revocation.
    Name(String),
}

/// Revoke (never invoke again) or deprecate (hide, point to a successor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum RevocationKind {
    /// The target must never be invoked again.
    Revoke,
    /// The target still runs but is hidden from discovery by default.
    Deprecate,
}

/// A publisher's revocation or deprecation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revocation {
    /// Format version, [`REVOCATION_FORMAT`].
    pub v: u64,
    /// Revoke or deprecate.
    pub kind: RevocationKind,
    /// What is revoked.
    pub target: RevocationTarget,
    /// The publisher; must be the target's publisher.
    pub publisher: PublicKey,
    /// Why, for people.
    pub reason: String,
    /// A replacement (deprecations only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successor: Option<ToolId>,
    /// When, milliseconds since the Unix epoch.
    pub created_at_ms: u64,
}

impl SignedBody for Revocation {
    const KIND: &'static str = "revocation";
    const SIGNING_PREFIX: &'static [u8] = REVOCATION_SIGNING_PREFIX;
    const MAX_BODY_BYTES: usize = MAX_REVOCATION_BYTES;
    const FORMAT: u64 = REVOCATION_FORMAT;

    fn format(&self) -> u64 {
        self.v
    }
    fn signer(&self) -> &PublicKey {
        &self.publisher
    }

    fn check(&self) -> Result<(), ValidationError> {
        if self.reason.len() > MAX_REASON_LEN || self.reason.chars().any(|c| c.is_control() && c != '\n') {
            return Err(ValidationError::TextInvalid {
                field: "reason",
                max: MAX_REASON_LEN,
            });
        }
        validate::check_clean("reason", String::new(), &self.reason)?;
        if let RevocationTarget::Name(n) = &self.target {
            validate::check_name(n)?;
        }
        if self.successor.is_some() && self.kind != RevocationKind::Deprecate {
            return Err(ValidationError::Inconsistent(
                "only a deprecation may name a successor",
            ));
        }
        if let (RevocationTarget::Id(t), Some(s)) = (&self.target, &self.successor)
            && t == s
        {
            return Err(ValidationError::Inconsistent("a tool cannot succeed itself"));
        }
        if self.created_at_ms == 0 {
            return Err(ValidationError::CreatedAtMissing);
        }
        Ok(())
    }
}

impl Revocation {
    /// Whether this revocation applies to a spec with this id, name, publisher and creation time.
    pub fn applies_to(&self, id: &ToolId, name: &str, publisher: &PublicKey, created_at_ms: u64) -> bool {
        if *publisher != self.publisher {
            return false;
        }
        match &self.target {
            RevocationTarget::Id(t) => t == id,
            RevocationTarget::Name(n) => n == name && created_at_ms <= self.created_at_ms,
        }
    }
}
