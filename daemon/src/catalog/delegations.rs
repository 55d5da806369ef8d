//! The delegations this node holds, indexed by publisher: who besides a
//! publisher may answer invocations of its tools ([`atr_protocol::delegation`]).
//!
//! Budget: a delegation is kept only while its publisher has a spec here
//! that it names (checked by the catalog before [`Delegations::insert`]),
//! at most [`MAX_DELEGATIONS_PER_PUBLISHER`] per publisher and
//! [`MAX_DELEGATIONS`] in all; expired ones are dropped.

use std::collections::HashMap;

use atr_protocol::{PublicKey, SignedDelegation, ToolId};

/// Most delegations held.
pub const MAX_DELEGATIONS: usize = 20_000;
/// Most delegations held per publisher (its own tools only, so a publisher
/// over it hurts only itself).
pub const MAX_DELEGATIONS_PER_PUBLISHER: usize = 256;

/// Why a delegation was not kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DelegationRefused {
    /// Its publisher has no spec here that it names.
    #[error("the delegation names no spec of its publisher held here")]
    Unheld,
    /// It names a spec of another publisher: forged.
    #[error("the delegation is signed by {signer}, but tool {target} is published by {publisher}")]
    NotPublisher {
        /// The spec named.
        target: ToolId,
        /// Who signed the delegation.
        signer: PublicKey,
        /// Who published the spec.
        publisher: PublicKey,
    },
    /// It has expired.
    #[error("the delegation expired")]
    Expired,
    /// Its publisher has [`MAX_DELEGATIONS_PER_PUBLISHER`] already.
    #[error("publisher {0} has {MAX_DELEGATIONS_PER_PUBLISHER} delegations here already")]
    PublisherFull(PublicKey),
    /// [`MAX_DELEGATIONS`] are held.
    #[error("{MAX_DELEGATIONS} delegations are held already")]
    Full,
}

/// See the module docs.
#[derive(Debug, Default)]
pub(super) struct Delegations {
    by_hash: HashMap<[u8; 32], SignedDelegation>,
    by_publisher: HashMap<PublicKey, Vec<[u8; 32]>>,
}

impl Delegations {
    /// Whether it holds this delegation.
    pub(super) fn contains(&self, hash: &[u8; 32]) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// How many it holds.
    pub(super) fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Whether one more from `publisher` would fit at `now_ms` (expired ones
    /// do not count: [`Delegations::insert`] drops them first).
    pub(super) fn room_for(&self, d: &SignedDelegation, now_ms: u64) -> Result<(), DelegationRefused> {
        let v = d.value();
        if v.expired(now_ms) {
            return Err(DelegationRefused::Expired);
        }
        let live = |hs: &Vec<[u8; 32]>| {
            hs.iter()
                .filter(|h| self.by_hash.get(*h).is_some_and(|d| !d.value().expired(now_ms)))
                .count()
        };
        if self.by_publisher.get(&v.publisher).map_or(0, live) >= MAX_DELEGATIONS_PER_PUBLISHER {
            return Err(DelegationRefused::PublisherFull(v.publisher));
        }
        if self.by_hash.len() >= MAX_DELEGATIONS {
            return Err(DelegationRefused::Full);
        }
        Ok(())
    }

    /// Adds a delegation the caller checked ([`Delegations::room_for`] and
    /// that its publisher's spec is held); returns the expired ones of the
    /// same publisher it dropped.
    pub(super) fn insert(&mut self, d: SignedDelegation, now_ms: u64) -> Vec<[u8; 32]> {
        let publisher = d.value().publisher;
        let mut dropped = Vec::new();
        if let Some(hs) = self.by_publisher.get(&publisher) {
            dropped = hs
                .iter()
                .filter(|h| self.by_hash.get(*h).is_some_and(|d| d.value().expired(now_ms)))
                .copied()
                .collect();
        }
        for h in &dropped {
            self.remove(h);
        }
        let hash = d.hash();
        if self.by_hash.insert(hash, d).is_none() {
            self.by_publisher.entry(publisher).or_default().push(hash);
        }
        dropped
    }

    /// Drops a delegation.
    pub(super) fn remove(&mut self, hash: &[u8; 32]) -> Option<SignedDelegation> {
        let d = self.by_hash.remove(hash)?;
        let publisher = d.value().publisher;
        if let Some(hs) = self.by_publisher.get_mut(&publisher) {
            hs.retain(|h| h != hash);
            if hs.is_empty() {
                self.by_publisher.remove(&publisher);
            }
        }
        Some(d)
    }

    /// Drops every expired delegation; returns their hashes.
    pub(super) fn remove_expired(&mut self, now_ms: u64) -> Vec<[u8; 32]> {
        let gone: Vec<[u8; 32]> = self
            .by_hash
            .iter()
            .filter(|(_, d)| d.value().expired(now_ms))
            .map(|(h, _)| *h)
            .collect();
        for h in &gone {
            self.remove(h);
        }
        gone
    }

    /// The providers `publisher` delegated the spec `id` named `name` to,
    /// live at `now_ms`, soonest-expiring last.
    pub(super) fn providers_of(
        &self,
        publisher: &PublicKey,
        id: &ToolId,
        name: &str,
        now_ms: u64,
    ) -> Vec<PublicKey> {
        let mut out: Vec<(u64, PublicKey)> = self
            .by_publisher
            .get(publisher)
            .into_iter()
            .flatten()
            .filter_map(|h| self.by_hash.get(h))
            .map(|d| d.value())
            .filter(|d| d.covers(&d.provider, id, name, publisher, now_ms))
            .map(|d| (d.expires_at_ms, d.provider))
            .collect();
        out.sort_by(|a, b| b.cmp(a));
        let mut providers: Vec<PublicKey> = Vec::with_capacity(out.len());
        for (_, p) in out {
            if !providers.contains(&p) {
                providers.push(p);
            }
        }
        providers
    }

    /// When the latest live delegation of spec `id` (named `name`, by
    /// `publisher`) to `provider` ends, if there is one.
    pub(super) fn expiry(
        &self,
        publisher: &PublicKey,
        provider: &PublicKey,
        id: &ToolId,
        name: &str,
        now_ms: u64,
    ) -> Option<u64> {
        self.by_publisher
            .get(publisher)
            .into_iter()
            .flatten()
            .filter_map(|h| self.by_hash.get(h))
            .map(|d| d.value())
            .filter(|d| d.covers(provider, id, name, publisher, now_ms))
            .map(|d| d.expires_at_ms)
            .max()
    }
}

#[cfg(test)]
mod tests {
    use atr_protocol::SecretKey;
    use atr_protocol::delegation::{DELEGATION_FORMAT, Delegation, DelegationScope};

    use super::*;

    fn d(publisher: &SecretKey, provider: u64, created: u64, expires: u64) -> SignedDelegation {
        let mut seed = [9u8; 32];
        seed[..8].copy_from_slice(&provider.to_le_bytes());
        let v = Delegation {
            v: DELEGATION_FORMAT,
            publisher: publisher.public(),
            provider: SecretKey::from_seed(&seed).public(),
            scope: DelegationScope::Id(ToolId([1; 32])),
            created_at_ms: created,
            expires_at_ms: expires,
        };
        SignedDelegation::sign(v, publisher).unwrap()
    }

    /// The per-publisher cap is exceeded by one; expired delegations neither
    /// count against it nor are kept.
    #[test]
    fn per_publisher_cap_and_expiry() {
        let p = SecretKey::from_seed(&[1; 32]);
        let mut ds = Delegations::default();
        let now = 1_000_000;
        for i in 0..MAX_DELEGATIONS_PER_PUBLISHER as u64 {
            let x = d(&p, i, now, now + 1_000);
            assert_eq!(ds.room_for(&x, now), Ok(()));
            ds.insert(x, now);
        }
        let over = d(&p, 9_999, now, now + 1_000);
        assert_eq!(
            ds.room_for(&over, now),
            Err(DelegationRefused::PublisherFull(p.public()))
        );
        // Another publisher still has room.
        let q = SecretKey::from_seed(&[2; 32]);
        assert_eq!(ds.room_for(&d(&q, 1, now, now + 1_000), now), Ok(()));
        // Once they expire, they leave room and are dropped on the next insert.
        let later = now + 2_000;
        assert_eq!(ds.room_for(&over, later), Err(DelegationRefused::Expired));
        let fresh = d(&p, 10_000, later, later + 1_000);
        assert_eq!(ds.room_for(&fresh, later), Ok(()));
        let dropped = ds.insert(fresh, later);
        assert_eq!(dropped.len(), MAX_DELEGATIONS_PER_PUBLISHER);
        assert_eq!(ds.len(), 1);
        assert_eq!(ds.remove_expired(later + 5_000).len(), 1);
        assert_eq!(ds.len(), 0);
    }

    /// The total cap is exceeded by one (from publishers each under their own cap).
    #[test]
    fn total_cap() {
        let mut ds = Delegations::default();
        let now = 1_000_000;
        let per = MAX_DELEGATIONS_PER_PUBLISHER as u64;
        let publishers = (MAX_DELEGATIONS as u64).div_ceil(per);
        'fill: for p in 0..publishers {
            let key = SecretKey::from_seed(&[p as u8 + 10; 32]);
            for i in 0..per {
                if ds.len() == MAX_DELEGATIONS {
                    break 'fill;
                }
                let x = d(&key, i, now, now + 1_000);
                assert_eq!(ds.room_for(&x, now), Ok(()));
                ds.insert(x, now);
            }
        }
        assert_eq!(ds.len(), MAX_DELEGATIONS);
        let fresh = SecretKey::from_seed(&[250; 32]);
        assert_eq!(
            ds.room_for(&d(&fresh, 0, now, now + 1_000), now),
            Err(DelegationRefused::Full)
        );
    }

    #[test]
    fn providers_of_lists_only_live_matching_delegates() {
        let p = SecretKey::from_seed(&[1; 32]);
        let mut ds = Delegations::default();
        let live = d(&p, 1, 10, 1_000);
        let dead = d(&p, 2, 10, 20);
        let provider = live.value().provider;
        ds.insert(live, 15);
        ds.insert(dead, 15);
        assert_eq!(
            ds.providers_of(&p.public(), &ToolId([1; 32]), "x", 30),
            vec![provider]
        );
        assert!(ds.providers_of(&p.public(), &ToolId([2; 32]), "x", 30).is_empty());
        assert!(
            ds.providers_of(
                &SecretKey::from_seed(&[3; 32]).public(),
                &ToolId([1; 32]),
                "x",
                30
            )
            .is_empty()
        );
        assert_eq!(
            ds.expiry(&p.public(), &provider, &ToolId([1; 32]), "x", 30),
            Some(1_000)
        );
    }
}
