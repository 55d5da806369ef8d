//! Delegations: a publisher's signed word that another peer may answer
//! invocations of its tool (one id, or every version of a name) until a
//! given time.
//!
//! Callers accept an answer only from the publisher, from a provider the
//! publisher delegated, or from a provider on their own trusted list; a
//! peer that merely announces a tool's name in the DHT is a lead, never a
//! provider, and never receives a caller's input. A delegation is valid
//! only when signed by the publisher of what it names; nodes check that
//! against their stored spec (this crate checks the signature, the shape
//! and the time window).

use serde::{Deserialize, Serialize};

use crate::id::ToolId;
use crate::key::PublicKey;
use crate::limits::MAX_DELEGATION_BYTES;
use crate::signed::{Signed, SignedBody};
use crate::validate::{self, ValidationError};

/// The delegation format this crate writes and reads.
pub const DELEGATION_FORMAT: u64 = 1;
/// Domain separation prefix of delegation signatures.
pub const DELEGATION_SIGNING_PREFIX: &[u8] = b"atr-delegation-v1";
/// Longest a delegation may last: a delegation cannot be withdrawn before
/// it expires (short ones, renewed, are how a publisher takes one back).
pub const MAX_DELEGATION_MS: u64 = 366 * 24 * 3600 * 1000;

/// A signed, verified delegation. Its hash is its id in sync.
pub type SignedDelegation = Signed<Delegation>;

/// What a delegation covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum DelegationScope {
    /// One spec.
    Id(ToolId),
    /// Every spec of this name by this publisher.
    Name(String),
}

/// A publisher's delegation of its tool to a provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delegation {
    /// Format version, [`DELEGATION_FORMAT`].
    pub v: u64,
    /// The publisher; must be the publisher of what `scope` names.
    pub publisher: PublicKey,
    /// The peer allowed to answer (its ed25519 key is its peer id).
    pub provider: PublicKey,
    /// What it may answer for.
    pub scope: DelegationScope,
    /// When it was made, milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// When it ends, milliseconds since the Unix epoch; at most
    /// [`MAX_DELEGATION_MS`] after `created_at_ms`.
    pub expires_at_ms: u64,
}

impl SignedBody for Delegation {
    const KIND: &'static str = "delegation";
    const SIGNING_PREFIX: &'static [u8] = DELEGATION_SIGNING_PREFIX;
    const MAX_BODY_BYTES: usize = MAX_DELEGATION_BYTES;
    const FORMAT: u64 = DELEGATION_FORMAT;

    fn format(&self) -> u64 {
        self.v
    }
    fn signer(&self) -> &PublicKey {
        &self.publisher
    }

    fn check(&self) -> Result<(), ValidationError> {
        if let DelegationScope::Name(n) = &self.scope {
            validate::check_name(n)?;
        }
        if self.created_at_ms == 0 {
            return Err(ValidationError::CreatedAtMissing);
        }
        if self.expires_at_ms <= self.created_at_ms {
            return Err(ValidationError::Inconsistent(
                "a delegation must expire after it is made",
            ));
        }
        if self.expires_at_ms - self.created_at_ms > MAX_DELEGATION_MS {
            return Err(ValidationError::Inconsistent(
                "a delegation lasts at most 366 days",
            ));
        }
        if self.provider == self.publisher {
            return Err(ValidationError::Inconsistent(
                "a publisher needs no delegation to itself",
            ));
        }
        Ok(())
    }
}

impl Delegation {
    /// Whether it lets `provider` answer for the spec with this id, name and
    /// publisher at `now_ms` (Unix milliseconds).
    pub fn covers(
        &self,
        provider: &PublicKey,
        id: &ToolId,
        name: &str,
        publisher: &PublicKey,
        now_ms: u64,
    ) -> bool {
        self.provider == *provider
            && self.publisher == *publisher
            && now_ms < self.expires_at_ms
            && match &self.scope {
                DelegationScope::Id(t) => t == id,
                DelegationScope::Name(n) => n == name,
            }
    }

    /// Whether it has expired at `now_ms`.
    pub fn expired(&self, now_ms: u64) -> bool {
        now_ms >= self.expires_at_ms
    }
}
