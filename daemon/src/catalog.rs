//! The in-memory catalog: every known spec with its revocation status,
//! indexed for find, name resolution and full-text search.
//!
//! [`Catalog`] maps each [`ToolId`] to an [`Entry`] (the verified spec and its
//! [`Status`]) and keeps indexes by tag, name and publisher, plus a BM25
//! full-text index ([`Catalog::search`]). It is rebuilt at start from the
//! store ([`crate::store::Store::load_all`]: specs first, then revocations)
//! and kept in step afterwards: the node inserts each verified spec and
//! applies each verified revocation here and writes it to the store. It does
//! no I/O; the caller wraps it in a `std::sync::RwLock`.
//!
//! # Revocations
//!
//! A revocation is accepted only from the publisher of what it targets
//! ([`Catalog::apply_revocation`]). One whose target is not known yet is kept
//! pending, so a spec that arrives after its revocation (gossip does not
//! preserve order) is born revoked. By-name revocations stay standing: they
//! also apply to specs of that name and publisher, created at or before the
//! revocation, that arrive later. Revoke beats deprecate; between two
//! revocations of one kind the later one (then the larger hash) wins, so
//! every node reaches the same status whatever the arrival order.
//!
//! # Names are not global
//!
//! Anyone can publish a spec called `calculator`. [`Catalog::resolve`] picks
//! a spec by name only among the publishers the caller trusts, or when a
//! single publisher uses the name; otherwise it fails with
//! [`ResolveError::Ambiguous`]. An unknown publisher's higher version must
//! never capture callers of a name (else a stranger's `calculator` 2.0.0
//! would silently answer every unpinned call of `calculator`).

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap, VecDeque};

use atr_protocol::delegation::DelegationScope;
use atr_protocol::query::{FindQuery, MAX_FIND_LIMIT};
use atr_protocol::revocation::{Revocation, RevocationKind, RevocationTarget};
use atr_protocol::{PublicKey, SignedDelegation, SignedRevocation, SignedSpec, ToolId};
use semver::VersionReq;
use tracing::warn;

use crate::time::now_ms;

mod delegations;
mod entry;
mod search;

pub use delegations::{DelegationRefused, MAX_DELEGATIONS, MAX_DELEGATIONS_PER_PUBLISHER};
#[cfg(test)]
pub(crate) mod test_support;

pub use entry::{SpecRef, StoredSpecError, Summary, envelope_hash, split_envelope};
pub use search::{MAX_QUERY_BYTES, MAX_QUERY_TERMS};

/// Default cap on revocations kept for targets not held (pending by-id ones
/// plus by-name ones that match no held spec). Anyone can sign a revocation
/// of an id nobody has, so this bounds what a flood of them can take; it is
/// half the store's default revocation cap, so the other half stays free
/// for revocations of held specs.
pub const MAX_PENDING_REVOCATIONS: usize = 50_000;

/// How far in the future a revocation targeting nothing held may be dated
/// (1 h of clock skew); later ones are refused, so none outlives the
/// pending time to live.
pub const MAX_CLOCK_SKEW_MS: u64 = 3_600_000;

/// A known spec and its status.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The verified spec, as the catalog keeps it (summary and envelope).
    pub spec: SpecRef,
    /// Whether its publisher revoked or deprecated it.
    pub status: Status,
}

/// The revocation status of a spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Status {
    /// Usable and listed.
    Active,
    /// Still runs, hidden from discovery by default.
    Deprecated {
        /// Hash of the deprecation.
        by: [u8; 32],
        /// The replacement the publisher named.
        successor: Option<ToolId>,
    },
    /// Must never be invoked again.
    Revoked {
        /// Hash of the revocation.
        by: [u8; 32],
    },
}

impl Status {
    /// Whether the spec is active.
    pub fn is_active(&self) -> bool {
        matches!(self, Self::Active)
    }

    /// `active`, `deprecated` or `revoked`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Deprecated { .. } => "deprecated",
            Self::Revoked { .. } => "revoked",
        }
    }
}

/// Why a revocation was not accepted. The caller drops it; for
/// [`RevocationRejected::NotPublisher`] it also penalizes the peer that sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RevocationRejected {
    /// Signed by someone other than the target's publisher.
    #[error("revocation of {target} is signed by {signer}, not by its publisher {publisher}")]
    NotPublisher {
        /// The targeted spec.
        target: ToolId,
        /// Who signed the revocation.
        signer: PublicKey,
        /// Who published the spec.
        publisher: PublicKey,
    },
    /// Too many revocations already wait for their targets.
    #[error("{max} revocations already wait for their targets, the limit; this one is dropped")]
    TooManyPending {
        /// The pending cap (`[store] max_pending_revocations`).
        max: usize,
    },
    /// It targets nothing held and is older than the pending time to live,
    /// or dated more than [`MAX_CLOCK_SKEW_MS`] in the future.
    #[error("the revocation targets nothing held here and is dated {created_at_ms}, outside the window kept")]
    OutOfWindow {
        /// Its creation time.
        created_at_ms: u64,
    },
    /// A newer by-name revocation of the same kind, publisher and name is
    /// kept; this older one would change nothing.
    #[error("a newer {kind} of `{name}` by this publisher is already kept")]
    Superseded {
        /// The name.
        name: String,
        /// `revoke` or `deprecate`.
        kind: &'static str,
    },
    /// A target kind this node does not understand.
    #[error("the revocation's target kind is not supported by this node")]
    UnsupportedTarget,
}

/// Why a tool name did not resolve to one spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// No active spec has this name.
    #[error(
        "no active tool named `{name}` is known here (it may be revoked, or not synced yet: try a network find)"
    )]
    NotFound {
        /// The name.
        name: String,
    },
    /// Specs of this name exist, but none from a trusted publisher.
    #[error("`{name}` is published only by untrusted publishers: {}", join_keys(.publishers))]
    NotTrusted {
        /// The name.
        name: String,
        /// Who publishes it.
        publishers: Vec<PublicKey>,
    },
    /// Several publishers use this name and none is trusted.
    #[error(
        "`{name}` is published by {} different publishers ({}); names are not global, so invoke by id or trust one publisher",
        .publishers.len(), join_keys(.publishers)
    )]
    Ambiguous {
        /// The name.
        name: String,
        /// Who publishes it.
        publishers: Vec<PublicKey>,
    },
    /// No version satisfies the requirement.
    #[error("no version of `{name}` matches `{req}`; available: {}", .available.join(", "))]
    NoVersionMatches {
        /// The name.
        name: String,
        /// The requirement.
        req: String,
        /// The versions that exist, highest first.
        available: Vec<String>,
    },
}

fn join_keys(keys: &[PublicKey]) -> String {
    keys.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// [`FindQuery::matches`] over a [`Summary`]: the same rules, on the fields
/// the catalog keeps (a test checks the two agree).
fn matches(q: &FindQuery, s: &Summary, req: Option<&VersionReq>) -> bool {
    q.tag.as_ref().is_none_or(|t| s.tags.iter().any(|x| x == t))
        && q.name.as_ref().is_none_or(|n| &s.name == n)
        && req.is_none_or(|r| r.matches(&s.version))
        && q.publisher.as_ref().is_none_or(|p| &s.publisher == p)
        && q.allowed_side_effects.as_ref().is_none_or(|allowed| {
            s.side_effects
                .iter()
                .all(|x| *x == atr_protocol::spec::SideEffect::None || allowed.contains(x))
        })
        && q.max_cost.is_none_or(|c| s.cost <= c)
}

/// The order of find results: name, then version descending, then id.
fn listing_order(a: &Entry, b: &Entry) -> Ordering {
    let (x, y) = (a.spec.value(), b.spec.value());
    x.name
        .cmp(&y.name)
        .then_with(|| y.version.cmp(&x.version))
        .then_with(|| a.spec.id().cmp(&b.spec.id()))
}

/// Precedence of a revocation: revoke over deprecate, then the later, then
/// the larger hash. Arrival order never matters.
fn precedence(rev: &Revocation, hash: [u8; 32]) -> (u8, u64, [u8; 32]) {
    let kind = match rev.kind {
        RevocationKind::Deprecate => 1,
        // Revoke, and any kind added later: the safe reading is "do not run".
        _ => 2,
    };
    (kind, rev.created_at_ms, hash)
}

/// Every known spec, indexed. See the module docs.
#[derive(Debug)]
pub struct Catalog {
    entries: HashMap<ToolId, Entry>,
    by_tag: HashMap<String, BTreeSet<ToolId>>,
    by_name: HashMap<String, BTreeSet<ToolId>>,
    by_publisher: HashMap<PublicKey, BTreeSet<ToolId>>,
    /// Every accepted revocation, applied or waiting, by hash.
    revocations: HashMap<[u8; 32], SignedRevocation>,
    /// By-id revocations whose target is not known yet, by target.
    pending_by_id: HashMap<ToolId, Vec<[u8; 32]>>,
    /// By-name revocations, by (publisher, name); they stay for late specs.
    by_name_target: HashMap<(PublicKey, String), Vec<[u8; 32]>>,
    /// Revocations that target nothing held (by-id pending, by-name matching
    /// no held spec), by hash, with their arrival time (ms since the epoch).
    /// These are what the pending cap counts and what may be evicted.
    unheld: HashMap<[u8; 32], u64>,
    /// `unheld` in arrival order; may hold hashes no longer in `unheld`.
    unheld_order: VecDeque<([u8; 32], u64)>,
    /// The pending cap.
    max_pending: usize,
    /// Revocations the catalog dropped (forged pending ones once their
    /// target arrived, superseded by-name ones, evicted unheld ones); the
    /// caller deletes them from the store.
    rejected: Vec<[u8; 32]>,
    /// Specs and envelope bytes per publisher.
    usage: HashMap<PublicKey, Usage>,
    /// Envelope bytes of every spec.
    spec_bytes: u64,
    text: search::TextIndex,
    delegations: delegations::Delegations,
}

/// What one publisher's specs take.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Specs.
    pub specs: u64,
    /// Envelope bytes.
    pub bytes: u64,
}

impl Default for Catalog {
    fn default() -> Self {
        Self::with_max_pending(MAX_PENDING_REVOCATIONS)
    }
}

/// Where a revocation stands against what this node holds
/// ([`Catalog::classify`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Already accepted.
    Known,
    /// Signed by the publisher of a held spec it targets (by id, or by name
    /// matching a held spec): always applied.
    Held,
    /// Targets nothing held: counts against the pending cap.
    Unheld,
}

fn kind_str(k: RevocationKind) -> &'static str {
    match k {
        RevocationKind::Deprecate => "deprecate",
        _ => "revoke",
    }
}

fn same_kind(a: RevocationKind, b: RevocationKind) -> bool {
    kind_str(a) == kind_str(b)
}

impl Catalog {
    /// An empty catalog.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty catalog keeping at most `max_pending` revocations of targets
    /// it does not hold.
    pub fn with_max_pending(max_pending: usize) -> Self {
        Self {
            entries: HashMap::new(),
            by_tag: HashMap::new(),
            by_name: HashMap::new(),
            by_publisher: HashMap::new(),
            revocations: HashMap::new(),
            pending_by_id: HashMap::new(),
            by_name_target: HashMap::new(),
            unheld: HashMap::new(),
            unheld_order: VecDeque::new(),
            max_pending,
            rejected: Vec::new(),
            usage: HashMap::new(),
            spec_bytes: 0,
            text: search::TextIndex::default(),
            delegations: delegations::Delegations::default(),
        }
    }

    /// What `publisher`'s specs take.
    pub fn usage(&self, publisher: &PublicKey) -> Usage {
        self.usage.get(publisher).copied().unwrap_or_default()
    }

    /// Envelope bytes of every spec.
    pub fn spec_bytes(&self) -> u64 {
        self.spec_bytes
    }

    /// Revocations that target nothing held (the pending cap's count).
    pub fn unheld_count(&self) -> usize {
        self.unheld.len()
    }

    /// Whether a revocation with this hash is accepted (applied or waiting).
    pub fn has_revocation(&self, hash: &[u8; 32]) -> bool {
        self.revocations.contains_key(hash)
    }

    /// Number of specs.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no spec is known.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of accepted revocations, applied or waiting for their target.
    pub fn revocation_count(&self) -> usize {
        self.revocations.len()
    }

    /// The spec with this id and its status.
    pub fn get(&self, id: &ToolId) -> Option<&Entry> {
        self.entries.get(id)
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&ToolId, &Entry)> {
        self.entries.iter()
    }

    /// Hashes of pending revocations that turned out not to be signed by
    /// their target's publisher when the target arrived. They are forgotten
    /// here; the caller deletes them from the store
    /// ([`crate::store::Store::remove_revocation`]) so they are not offered
    /// to peers.
    pub fn take_rejected_revocations(&mut self) -> Vec<[u8; 32]> {
        std::mem::take(&mut self.rejected)
    }

    /// Adds a verified spec, applying any known revocation that targets it.
    /// Returns whether it was new.
    pub fn insert_spec(&mut self, spec: SignedSpec) -> bool {
        self.insert(SpecRef::from_signed(&spec))
    }

    /// Adds a spec in the catalog's form (e.g. read back from the store),
    /// applying any known revocation that targets it. Returns whether it was
    /// new.
    pub fn insert(&mut self, spec: SpecRef) -> bool {
        let id = spec.id();
        if self.entries.contains_key(&id) {
            return false;
        }
        let v = spec.value();
        for tag in &v.tags {
            self.by_tag.entry(tag.clone()).or_default().insert(id);
        }
        self.by_name.entry(v.name.clone()).or_default().insert(id);
        self.by_publisher.entry(v.publisher).or_default().insert(id);
        self.text.add(id, v);
        let len = spec.envelope().len() as u64;
        let usage = self.usage.entry(v.publisher).or_default();
        usage.specs += 1;
        usage.bytes += len;
        self.spec_bytes += len;
        let name_key = (v.publisher, v.name.clone());
        self.entries.insert(
            id,
            Entry {
                spec,
                status: Status::Active,
            },
        );

        if let Some(hashes) = self.pending_by_id.remove(&id) {
            for hash in hashes {
                self.unheld.remove(&hash);
                if self.applies(&hash, &id) {
                    self.set_status(&id, hash);
                } else {
                    warn!(
                        tool = %id.fmt_short(),
                        revocation = %hex::encode(&hash[..6]),
                        "dropping a pending revocation not signed by the tool's publisher"
                    );
                    self.revocations.remove(&hash);
                    self.rejected.push(hash);
                }
            }
        }
        if let Some(hashes) = self.by_name_target.get(&name_key).cloned() {
            for hash in hashes {
                if self.applies(&hash, &id) {
                    // It now revokes a held spec: no longer evictable.
                    self.unheld.remove(&hash);
                    self.set_status(&id, hash);
                }
            }
        }
        true
    }

    /// Where `rev` stands: already known, targeting a held spec of its
    /// signer (always applied), or targeting nothing held. A by-id
    /// revocation of a held spec signed by someone else is
    /// [`RevocationRejected::NotPublisher`].
    pub fn classify(&self, rev: &SignedRevocation) -> Result<Standing, RevocationRejected> {
        if self.revocations.contains_key(&rev.hash()) {
            return Ok(Standing::Known);
        }
        self.target_standing(rev.value())
    }

    /// Whether it holds this delegation.
    pub fn has_delegation(&self, hash: &[u8; 32]) -> bool {
        self.delegations.contains(hash)
    }

    /// Delegations held.
    pub fn delegation_count(&self) -> usize {
        self.delegations.len()
    }

    /// Whether `d` could be kept at `now_ms`: it names a held spec of its
    /// signer (a spec of someone else: forged), is live, and fits the caps.
    pub fn check_delegation(&self, d: &SignedDelegation, now_ms: u64) -> Result<(), DelegationRefused> {
        let v = d.value();
        match &v.scope {
            DelegationScope::Id(target) => match self.entries.get(target) {
                Some(e) if e.spec.value().publisher != v.publisher => {
                    return Err(DelegationRefused::NotPublisher {
                        target: *target,
                        signer: v.publisher,
                        publisher: e.spec.value().publisher,
                    });
                }
                Some(_) => {}
                None => return Err(DelegationRefused::Unheld),
            },
            DelegationScope::Name(name) => {
                let held = self.by_name.get(name).into_iter().flatten().any(|id| {
                    self.entries
                        .get(id)
                        .is_some_and(|e| e.spec.value().publisher == v.publisher)
                });
                if !held {
                    return Err(DelegationRefused::Unheld);
                }
            }
            _ => return Err(DelegationRefused::Unheld),
        }
        self.delegations.room_for(d, now_ms)
    }

    /// Keeps a delegation [`Catalog::check_delegation`] accepted; returns
    /// the expired ones of its publisher it dropped (to delete from the store).
    pub fn add_delegation(&mut self, d: SignedDelegation, now_ms: u64) -> Vec<[u8; 32]> {
        self.delegations.insert(d, now_ms)
    }

    /// Drops expired delegations; returns their hashes.
    pub fn remove_expired_delegations(&mut self, now_ms: u64) -> Vec<[u8; 32]> {
        self.delegations.remove_expired(now_ms)
    }

    /// The providers the publisher of spec `id` delegated it to, live at `now_ms`.
    pub fn delegated_providers(&self, id: &ToolId, now_ms: u64) -> Vec<PublicKey> {
        let Some(e) = self.entries.get(id) else {
            return Vec::new();
        };
        let s = e.spec.value();
        self.delegations.providers_of(&s.publisher, id, &s.name, now_ms)
    }

    /// When the latest live delegation of spec `id` to `provider` ends, if any.
    pub fn delegated_until(&self, id: &ToolId, provider: &PublicKey, now_ms: u64) -> Option<u64> {
        let s = self.entries.get(id)?.spec.value();
        self.delegations
            .expiry(&s.publisher, provider, id, &s.name, now_ms)
    }

    /// Whether a spec of `publisher` is held.
    pub fn holds_publisher(&self, publisher: &PublicKey) -> bool {
        self.by_publisher
            .get(publisher)
            .is_some_and(|ids| !ids.is_empty())
    }

    /// [`Catalog::classify`] for a revocation's value alone (which may not
    /// be verified yet): whether its target is held. Never `Known`.
    pub fn target_standing(&self, r: &Revocation) -> Result<Standing, RevocationRejected> {
        match &r.target {
            RevocationTarget::Id(target) => match self.entries.get(target) {
                Some(e) if e.spec.value().publisher != r.publisher => Err(RevocationRejected::NotPublisher {
                    target: *target,
                    signer: r.publisher,
                    publisher: e.spec.value().publisher,
                }),
                Some(_) => Ok(Standing::Held),
                None => Ok(Standing::Unheld),
            },
            RevocationTarget::Name(name) => {
                let held = self.by_name.get(name).into_iter().flatten().any(|id| {
                    self.entries.get(id).is_some_and(|e| {
                        r.applies_to(id, name, &e.spec.value().publisher, e.spec.value().created_at_ms)
                    })
                });
                Ok(if held { Standing::Held } else { Standing::Unheld })
            }
            _ => Err(RevocationRejected::UnsupportedTarget),
        }
    }

    /// Drops unheld revocations that arrived before `now_ms - ttl_ms`, then,
    /// while `room` more would not fit under the pending cap, the oldest
    /// ones. Returns the hashes dropped (also queued for
    /// [`Catalog::take_rejected_revocations`]).
    pub fn evict_unheld(&mut self, now_ms: u64, ttl_ms: u64, room: usize) -> Vec<[u8; 32]> {
        let mut out = Vec::new();
        let deadline = now_ms.saturating_sub(ttl_ms);
        while let Some(&(hash, arrived)) = self.unheld_order.front() {
            let live = self.unheld.get(&hash) == Some(&arrived);
            let over = self.unheld.len() + room > self.max_pending;
            if live && arrived > deadline && !over {
                break;
            }
            self.unheld_order.pop_front();
            if live {
                self.forget_revocation(&hash);
                out.push(hash);
            }
        }
        self.rejected.extend_from_slice(&out);
        out
    }

    /// Drops the oldest revocation targeting nothing held, to make room for
    /// one of a held spec. Returns its hash; the caller deletes it from the
    /// store.
    pub fn evict_oldest_unheld(&mut self) -> Option<[u8; 32]> {
        while let Some((hash, arrived)) = self.unheld_order.pop_front() {
            if self.unheld.get(&hash) == Some(&arrived) {
                self.forget_revocation(&hash);
                return Some(hash);
            }
        }
        None
    }

    /// Removes an accepted revocation from every table. Statuses it set stay
    /// (only unheld and superseded revocations are forgotten, and neither
    /// is the status of a held spec that nothing else explains).
    fn forget_revocation(&mut self, hash: &[u8; 32]) {
        self.unheld.remove(hash);
        let Some(rev) = self.revocations.remove(hash) else {
            return;
        };
        let r = rev.value();
        match &r.target {
            RevocationTarget::Id(target) => {
                if let Some(v) = self.pending_by_id.get_mut(target) {
                    v.retain(|h| h != hash);
                    if v.is_empty() {
                        self.pending_by_id.remove(target);
                    }
                }
            }
            RevocationTarget::Name(name) => {
                let key = (r.publisher, name.clone());
                if let Some(v) = self.by_name_target.get_mut(&key) {
                    v.retain(|h| h != hash);
                    if v.is_empty() {
                        self.by_name_target.remove(&key);
                    }
                }
            }
            _ => {}
        }
    }

    /// Records an unheld revocation. Its clock is its creation time, or
    /// its arrival if that is earlier: every node then expires it at about
    /// the same time, so anti-entropy does not hand an expired revocation
    /// back to a node that already dropped it.
    fn note_unheld(&mut self, hash: [u8; 32], created_ms: u64, now_ms: u64) {
        let clock = created_ms.min(now_ms);
        self.unheld.insert(hash, clock);
        self.unheld_order.push_back((hash, clock));
    }

    /// Whether the known revocation `hash` applies to the known spec `id`.
    fn applies(&self, hash: &[u8; 32], id: &ToolId) -> bool {
        match (self.revocations.get(hash), self.entries.get(id)) {
            (Some(rev), Some(entry)) => {
                let s = entry.spec.value();
                rev.value().applies_to(id, &s.name, &s.publisher, s.created_at_ms)
            }
            _ => false,
        }
    }

    /// Applies the known revocation `hash` to `id` if it takes precedence
    /// over the current status. Returns whether the status changed.
    fn set_status(&mut self, id: &ToolId, hash: [u8; 32]) -> bool {
        let Some(rev) = self.revocations.get(&hash).map(|r| r.value()) else {
            return false;
        };
        let Some(entry) = self.entries.get(id) else {
            return false;
        };
        let current = match entry.status {
            Status::Active => None,
            Status::Deprecated { by, .. } | Status::Revoked { by } => Some(match self.revocations.get(&by) {
                Some(r) => precedence(r.value(), by),
                None => (0, 0, by),
            }),
        };
        if current.is_some_and(|c| c >= precedence(rev, hash)) {
            return false;
        }
        let status = match rev.kind {
            RevocationKind::Deprecate => Status::Deprecated {
                by: hash,
                successor: rev.successor,
            },
            _ => Status::Revoked { by: hash },
        };
        if let Some(entry) = self.entries.get_mut(id) {
            entry.status = status;
        }
        true
    }

    /// Applies a verified revocation and returns the ids whose status
    /// changed.
    ///
    /// - By id, target known: accepted only from the spec's publisher,
    ///   otherwise [`RevocationRejected::NotPublisher`].
    /// - By id, target unknown: kept pending until the spec arrives (then
    ///   checked against its publisher).
    /// - By name: applies to every known spec of that name by the signer
    ///   created at or before the revocation, and stays for later ones.
    ///
    /// Revocations that target nothing held count against the pending cap
    /// ([`RevocationRejected::TooManyPending`]); those of held specs never
    /// do. Of the by-name revocations of one publisher, name and kind only
    /// the newest is kept ([`RevocationRejected::Superseded`]; older ones
    /// are dropped and queued for [`Catalog::take_rejected_revocations`]).
    /// A revocation already known changes nothing and returns no ids.
    pub fn apply_revocation(&mut self, rev: &SignedRevocation) -> Result<Vec<ToolId>, RevocationRejected> {
        self.apply_revocation_at(rev, now_ms())
    }

    /// [`Catalog::apply_revocation`] with the arrival time given.
    pub fn apply_revocation_at(
        &mut self,
        rev: &SignedRevocation,
        now_ms: u64,
    ) -> Result<Vec<ToolId>, RevocationRejected> {
        let hash = rev.hash();
        if self.revocations.contains_key(&hash) {
            return Ok(Vec::new());
        }
        let r = rev.value();
        match &r.target {
            RevocationTarget::Id(target) => {
                if let Some(entry) = self.entries.get(target) {
                    let publisher = entry.spec.value().publisher;
                    if publisher != r.publisher {
                        return Err(RevocationRejected::NotPublisher {
                            target: *target,
                            signer: r.publisher,
                            publisher,
                        });
                    }
                    self.revocations.insert(hash, rev.clone());
                    Ok(if self.set_status(target, hash) {
                        vec![*target]
                    } else {
                        Vec::new()
                    })
                } else {
                    self.check_room()?;
                    self.revocations.insert(hash, rev.clone());
                    self.pending_by_id.entry(*target).or_default().push(hash);
                    self.note_unheld(hash, r.created_at_ms, now_ms);
                    Ok(Vec::new())
                }
            }
            RevocationTarget::Name(name) => {
                let key = (r.publisher, name.clone());
                let older: Vec<[u8; 32]> = self
                    .by_name_target
                    .get(&key)
                    .into_iter()
                    .flatten()
                    .filter_map(|h| self.revocations.get(h).map(|o| (h, o.value())))
                    .filter(|(_, o)| same_kind(o.kind, r.kind))
                    .map(|(h, o)| {
                        if precedence(o, *h) > precedence(r, hash) {
                            Err(RevocationRejected::Superseded {
                                name: name.clone(),
                                kind: kind_str(r.kind),
                            })
                        } else {
                            Ok(*h)
                        }
                    })
                    .collect::<Result<_, _>>()?;
                let held = self.classify(rev)? == Standing::Held;
                if !held && older.is_empty() {
                    self.check_room()?;
                }
                self.revocations.insert(hash, rev.clone());
                self.by_name_target.entry(key).or_default().push(hash);
                if !held {
                    self.note_unheld(hash, r.created_at_ms, now_ms);
                }
                let ids: Vec<ToolId> = self
                    .by_name
                    .get(name)
                    .map(|s| s.iter().copied().collect())
                    .unwrap_or_default();
                let mut changed = Vec::new();
                for id in ids {
                    if self.applies(&hash, &id) && self.set_status(&id, hash) {
                        changed.push(id);
                    }
                }
                // A newer one of the same kind covers every spec the older
                // covered (same publisher and name, created no later) and
                // takes precedence over it, so nothing depends on the older.
                for h in older {
                    self.forget_revocation(&h);
                    self.rejected.push(h);
                }
                Ok(changed)
            }
            _ => Err(RevocationRejected::UnsupportedTarget),
        }
    }

    fn check_room(&self) -> Result<(), RevocationRejected> {
        if self.unheld.len() >= self.max_pending {
            return Err(RevocationRejected::TooManyPending {
                max: self.max_pending,
            });
        }
        Ok(())
    }

    /// Specs matching `q`, ordered by name, then version descending, then id,
    /// at most `q.effective_limit()`. `req` is `q.version` parsed by the
    /// caller ([`atr_protocol::query::parse_version_req`]). Revoked and
    /// deprecated specs are left out unless `q.include_revoked`.
    ///
    /// The smallest of the tag, name and publisher index sets given seeds
    /// the candidates; [`FindQuery::matches`] checks the rest.
    pub fn find(&self, q: &FindQuery, req: Option<&VersionReq>) -> Vec<&Entry> {
        self.find_page(q, req, None).results
    }

    /// [`Catalog::find`] from a position: only specs after `after` in find order, and
    /// whether more than the page holds match (the next page starts after its last spec).
    pub fn find_page(
        &self,
        q: &FindQuery,
        req: Option<&VersionReq>,
        after: Option<&ListingKey>,
    ) -> Page<&Entry> {
        let mut sets: Vec<&BTreeSet<ToolId>> = Vec::new();
        let lookups = [
            q.tag.as_ref().map(|t| self.by_tag.get(t)),
            q.name.as_ref().map(|n| self.by_name.get(n)),
            q.publisher.as_ref().map(|p| self.by_publisher.get(p)),
        ];
        for lookup in lookups.into_iter().flatten() {
            match lookup {
                Some(set) => sets.push(set),
                // A filter no spec satisfies.
                None => return Page::default(),
            }
        }
        let keep = |e: &&Entry| {
            (q.include_revoked || e.status.is_active())
                && after.is_none_or(|k| k.precedes(e))
                && matches(q, e.spec.value(), req)
        };
        let mut out: Vec<&Entry> = match sets.into_iter().min_by_key(|s| s.len()) {
            Some(set) => set
                .iter()
                .filter_map(|id| self.entries.get(id))
                .filter(keep)
                .collect(),
            None => self.entries.values().filter(keep).collect(),
        };
        let limit = q.effective_limit();
        let more = out.len() > limit;
        if more {
            out.select_nth_unstable_by(limit - 1, |a, b| listing_order(a, b));
            out.truncate(limit);
        }
        out.sort_by(|a, b| listing_order(a, b));
        Page { results: out, more }
    }

    /// The spec to invoke for `name`: the highest active version matching
    /// `req` among `trusted` publishers, or among all publishers when
    /// `trusted` is empty and only one publisher uses the name.
    ///
    /// Without `req`, pre-releases are chosen only when no stable version
    /// exists. Between specs of equal version the latest created wins.
    /// Ambiguity is judged on all active specs of the name, before the
    /// version filter, so whether a name resolves does not depend on which
    /// versions a stranger publishes.
    pub fn resolve(
        &self,
        name: &str,
        req: Option<&VersionReq>,
        trusted: &[PublicKey],
    ) -> Result<&Entry, ResolveError> {
        let mut candidates: Vec<&Entry> = self
            .by_name
            .get(name)
            .into_iter()
            .flatten()
            .filter_map(|id| self.entries.get(id))
            .filter(|e| e.status.is_active())
            .collect();
        if candidates.is_empty() {
            return Err(ResolveError::NotFound { name: name.into() });
        }
        let publishers = |c: &[&Entry]| -> Vec<PublicKey> {
            c.iter()
                .map(|e| e.spec.value().publisher)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect()
        };
        if trusted.is_empty() {
            let all = publishers(&candidates);
            if all.len() > 1 {
                return Err(ResolveError::Ambiguous {
                    name: name.into(),
                    publishers: all,
                });
            }
        } else {
            let all = publishers(&candidates);
            candidates.retain(|e| trusted.contains(&e.spec.value().publisher));
            if candidates.is_empty() {
                return Err(ResolveError::NotTrusted {
                    name: name.into(),
                    publishers: all,
                });
            }
        }
        let available = |c: &[&Entry]| -> Vec<String> {
            let mut v: Vec<&semver::Version> = c.iter().map(|e| &e.spec.value().version).collect();
            v.sort_by(|a, b| b.cmp(a));
            v.dedup();
            v.into_iter().map(ToString::to_string).collect()
        };
        let matching: Vec<&Entry> = match req {
            Some(r) => candidates
                .iter()
                .copied()
                .filter(|e| r.matches(&e.spec.value().version))
                .collect(),
            None => {
                let stable: Vec<&Entry> = candidates
                    .iter()
                    .copied()
                    .filter(|e| e.spec.value().version.pre.is_empty())
                    .collect();
                if stable.is_empty() {
                    candidates.clone()
                } else {
                    stable
                }
            }
        };
        matching
            .into_iter()
            .max_by(|a, b| {
                let (x, y) = (a.spec.value(), b.spec.value());
                x.version
                    .cmp(&y.version)
                    .then(x.created_at_ms.cmp(&y.created_at_ms))
                    .then_with(|| a.spec.id().cmp(&b.spec.id()))
            })
            .ok_or_else(|| ResolveError::NoVersionMatches {
                name: name.into(),
                req: req.map(ToString::to_string).unwrap_or_else(|| "*".into()),
                available: available(&candidates),
            })
    }

    /// Full-text search over active specs: BM25 over names (×3), tags (×2)
    /// and descriptions (×1), best first, ties by name, version descending
    /// and id; at most `limit` (capped at [`MAX_FIND_LIMIT`]) results. The
    /// query is cut to [`MAX_QUERY_BYTES`] and [`MAX_QUERY_TERMS`] terms.
    pub fn search(&self, text: &str, limit: usize) -> Vec<(f32, &Entry)> {
        self.search_page(text, limit, None)
            .map(|p| p.results)
            .unwrap_or_default()
    }

    /// [`Catalog::search`] from a position: scored over the documents `after` was scored
    /// over (all of them on a first page), only hits after it. `None` when `after` names
    /// more documents than are indexed or a spec not held (not a position this node gave).
    pub fn search_page(&self, text: &str, limit: usize, after: Option<&SearchKey>) -> Option<SearchPage<'_>> {
        let docs = match after {
            Some(k) if k.docs > self.text.len() => return None,
            Some(k) => k.docs,
            None => self.text.len(),
        };
        let after = match after {
            Some(k) => Some((k.score, self.entries.get(&k.id)?)),
            None => None,
        };
        let order =
            |a: &(f32, &Entry), b: &(f32, &Entry)| b.0.total_cmp(&a.0).then_with(|| listing_order(a.1, b.1));
        let mut hits: Vec<(f32, &Entry)> = self
            .text
            .score(text, docs)
            .into_iter()
            .filter_map(|(score, id)| {
                self.entries
                    .get(&id)
                    .filter(|e| e.status.is_active())
                    .map(|e| (score, e))
            })
            .filter(|h| after.is_none_or(|a| order(&a, h) == Ordering::Less))
            .collect();
        let limit = limit.clamp(1, MAX_FIND_LIMIT);
        let more = hits.len() > limit;
        if more {
            hits.select_nth_unstable_by(limit - 1, order);
            hits.truncate(limit);
        }
        hits.sort_by(order);
        Some(SearchPage {
            results: hits,
            more,
            docs,
        })
    }
}

/// A position in find order (name, version descending, id): where a page ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingKey {
    /// Name of the last spec.
    pub name: String,
    /// Its version.
    pub version: semver::Version,
    /// Its id.
    pub id: ToolId,
}

impl ListingKey {
    /// The key of `e`.
    pub fn of(e: &Entry) -> Self {
        let s = e.spec.value();
        Self {
            name: s.name.clone(),
            version: s.version.clone(),
            id: e.spec.id(),
        }
    }

    /// Whether `e` comes after this position in find order.
    fn precedes(&self, e: &Entry) -> bool {
        let s = e.spec.value();
        s.name
            .as_str()
            .cmp(&self.name)
            .then_with(|| self.version.cmp(&s.version))
            .then_with(|| e.spec.id().cmp(&self.id))
            == Ordering::Greater
    }
}

/// A position in a search's order: the documents scored over, the last hit's score and id.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchKey {
    /// Documents the first page scored over.
    pub docs: u32,
    /// The last hit's score.
    pub score: f32,
    /// The last hit's id.
    pub id: ToolId,
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The page, in listing order.
    pub results: Vec<T>,
    /// Whether more match after it.
    pub more: bool,
}

impl<T> Default for Page<T> {
    fn default() -> Self {
        Self {
            results: Vec::new(),
            more: false,
        }
    }
}

/// One page of a search.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchPage<'a> {
    /// Hits, best first.
    pub results: Vec<(f32, &'a Entry)>,
    /// Whether more hits follow.
    pub more: bool,
    /// Documents scored over (the next page's [`SearchKey::docs`]).
    pub docs: u32,
}

#[cfg(test)]
mod tests {
    use atr_protocol::query::parse_version_req;
    use atr_protocol::spec::{Cost, SideEffect};

    use super::test_support::{CREATED, key, revocation, revoke_id, spec, spec_with};
    use super::*;

    fn init_tracing() {
        let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    }

    fn catalog(specs: &[&SignedSpec]) -> Catalog {
        init_tracing();
        let mut c = Catalog::new();
        for s in specs {
            assert!(c.insert_spec((*s).clone()));
        }
        c
    }

    fn versions(entries: &[&Entry]) -> Vec<String> {
        entries.iter().map(|e| e.spec.value().label()).collect()
    }

    fn query(edit: impl FnOnce(&mut FindQuery)) -> FindQuery {
        let mut q = FindQuery::default();
        edit(&mut q);
        q
    }

    fn deprecate_id(seed: u8, id: ToolId, successor: Option<ToolId>) -> SignedRevocation {
        revocation(
            seed,
            RevocationKind::Deprecate,
            RevocationTarget::Id(id),
            CREATED + 1,
            successor,
        )
    }

    #[test]
    fn find_by_tag_name_and_version() -> Result<(), Box<dyn std::error::Error>> {
        let specs: Vec<SignedSpec> = ["1.0.0", "1.2.0", "1.5.0", "2.0.0", "3.0.0"]
            .iter()
            .map(|v| spec(1, "calc", v, &["math"]))
            .collect();
        let other = spec(1, "convert", "1.0.0", &["units"]);
        let mut c = catalog(&specs.iter().chain([&other]).collect::<Vec<_>>());
        assert!(!c.insert_spec(other.clone()), "a second insert is not new");
        assert_eq!(c.len(), 6);

        let math = c.find(&query(|q| q.tag = Some("math".into())), None);
        assert_eq!(
            versions(&math),
            [
                "calc@3.0.0",
                "calc@2.0.0",
                "calc@1.5.0",
                "calc@1.2.0",
                "calc@1.0.0"
            ]
        );
        let req = parse_version_req(">=1.2, <2")?;
        let q = query(|q| q.name = Some("calc".into()));
        assert_eq!(versions(&c.find(&q, Some(&req))), ["calc@1.5.0", "calc@1.2.0"]);
        assert!(
            c.find(&query(|q| q.tag = Some("nothing".into())), None)
                .is_empty()
        );
        // Both filters: the smaller set seeds, the other still applies.
        let q = query(|q| {
            q.tag = Some("units".into());
            q.name = Some("calc".into());
        });
        assert!(c.find(&q, None).is_empty());
        // No filter lists everything, ordered by name; the limit keeps the first.
        assert_eq!(
            versions(&c.find(&FindQuery::default(), None))
                .last()
                .map(String::as_str),
            Some("convert@1.0.0")
        );
        let q = query(|q| q.limit = Some(2));
        assert_eq!(versions(&c.find(&q, None)), ["calc@3.0.0", "calc@2.0.0"]);
        Ok(())
    }

    #[test]
    fn find_filters_publisher_side_effects_and_cost() {
        let mine = spec(1, "fetch", "1.0.0", &["web"]);
        let theirs = spec_with(2, |s| {
            s.name = "fetch".into();
            s.tags = vec!["web".into()];
            s.side_effects = vec![SideEffect::Network, SideEffect::Writes];
            s.permissions.egress = vec![atr_protocol::policy::EgressRule::parse("example.com:443").unwrap()];
            s.cost = Cost::High;
        });
        let c = catalog(&[&mine, &theirs]);
        let q = query(|q| {
            q.name = Some("fetch".into());
            q.publisher = Some(key(2).public());
        });
        assert_eq!(c.find(&q, None), vec![c.get(&theirs.id()).expect("known")]);
        let q = query(|q| q.publisher = Some(key(3).public()));
        assert!(c.find(&q, None).is_empty());

        let q = query(|q| {
            q.tag = Some("web".into());
            q.allowed_side_effects = Some(vec![SideEffect::Network]);
        });
        assert_eq!(c.find(&q, None).len(), 1, "writes is not allowed");
        let q = query(|q| {
            q.tag = Some("web".into());
            q.allowed_side_effects = Some(vec![SideEffect::Network, SideEffect::Writes]);
        });
        assert_eq!(c.find(&q, None).len(), 2);
        let q = query(|q| q.max_cost = Some(Cost::Low));
        assert_eq!(c.find(&q, None), vec![c.get(&mine.id()).expect("known")]);
    }

    #[test]
    fn revoked_specs_are_hidden_unless_asked_for() -> Result<(), RevocationRejected> {
        let s = spec(1, "calc", "1.0.0", &["math"]);
        let mut c = catalog(&[&s]);
        let rev = revoke_id(1, s.id());
        assert_eq!(c.apply_revocation(&rev)?, vec![s.id()]);
        assert_eq!(
            c.apply_revocation(&rev)?,
            vec![],
            "a known revocation changes nothing"
        );
        assert_eq!(
            c.get(&s.id()).map(|e| e.status),
            Some(Status::Revoked { by: rev.hash() })
        );
        assert_eq!(c.revocation_count(), 1);
        let q = query(|q| q.tag = Some("math".into()));
        assert!(c.find(&q, None).is_empty());
        let q = query(|q| {
            q.tag = Some("math".into());
            q.include_revoked = true;
        });
        assert_eq!(c.find(&q, None).len(), 1);
        assert!(c.search("calc", 10).is_empty());
        assert!(matches!(
            c.resolve("calc", None, &[]),
            Err(ResolveError::NotFound { .. })
        ));
        Ok(())
    }

    #[test]
    fn revocation_before_its_spec_is_applied_on_arrival() -> Result<(), RevocationRejected> {
        let s = spec(1, "calc", "1.0.0", &[]);
        let mut c = catalog(&[]);
        let rev = revoke_id(1, s.id());
        assert_eq!(c.apply_revocation(&rev)?, vec![]);
        assert_eq!(c.revocation_count(), 1);
        assert!(c.insert_spec(s.clone()));
        assert_eq!(
            c.get(&s.id()).map(|e| e.status),
            Some(Status::Revoked { by: rev.hash() })
        );
        assert!(c.take_rejected_revocations().is_empty());
        Ok(())
    }

    #[test]
    fn revocation_by_another_key_is_rejected() -> Result<(), RevocationRejected> {
        let s = spec(1, "calc", "1.0.0", &[]);
        let mut c = catalog(&[&s]);
        let forged = revoke_id(2, s.id());
        assert_eq!(
            c.apply_revocation(&forged),
            Err(RevocationRejected::NotPublisher {
                target: s.id(),
                signer: key(2).public(),
                publisher: key(1).public(),
            })
        );
        assert!(c.get(&s.id()).is_some_and(|e| e.status.is_active()));
        assert_eq!(c.revocation_count(), 0);

        // Pending, then found forged when the spec arrives.
        let later = spec(1, "other", "1.0.0", &[]);
        let forged = revoke_id(2, later.id());
        assert_eq!(c.apply_revocation(&forged)?, vec![]);
        c.insert_spec(later.clone());
        assert!(c.get(&later.id()).is_some_and(|e| e.status.is_active()));
        assert_eq!(c.take_rejected_revocations(), vec![forged.hash()]);
        assert_eq!(c.revocation_count(), 0);
        Ok(())
    }

    #[test]
    fn revocation_by_name_covers_earlier_specs_of_its_publisher() -> Result<(), RevocationRejected> {
        let old = spec_with(1, |s| s.name = "calc".into());
        let new = spec_with(1, |s| {
            s.name = "calc".into();
            s.version = semver::Version::new(2, 0, 0);
            s.created_at_ms = CREATED + 10;
        });
        let stranger = spec(2, "calc", "1.0.0", &[]);
        let mut c = catalog(&[&old, &stranger]);
        let rev = revocation(
            1,
            RevocationKind::Revoke,
            RevocationTarget::Name("calc".into()),
            CREATED + 5,
            None,
        );
        assert_eq!(c.apply_revocation(&rev)?, vec![old.id()]);
        assert!(c.get(&stranger.id()).is_some_and(|e| e.status.is_active()));
        // A spec of the name arriving later: born revoked if created before.
        let late_old = spec_with(1, |s| {
            s.name = "calc".into();
            s.version = semver::Version::new(1, 1, 0);
        });
        c.insert_spec(late_old.clone());
        c.insert_spec(new.clone());
        assert!(matches!(
            c.get(&late_old.id()).map(|e| e.status),
            Some(Status::Revoked { .. })
        ));
        assert!(c.get(&new.id()).is_some_and(|e| e.status.is_active()));
        Ok(())
    }

    #[test]
    fn revoke_beats_deprecate_in_any_order() -> Result<(), RevocationRejected> {
        let s = spec(1, "calc", "1.0.0", &[]);
        let succ = spec(1, "calc", "2.0.0", &[]);
        let dep = deprecate_id(1, s.id(), Some(succ.id()));
        let rev = revoke_id(1, s.id());

        let mut a = catalog(&[&s]);
        assert_eq!(a.apply_revocation(&dep)?, vec![s.id()]);
        assert_eq!(
            a.get(&s.id()).map(|e| e.status),
            Some(Status::Deprecated {
                by: dep.hash(),
                successor: Some(succ.id())
            })
        );
        assert_eq!(a.apply_revocation(&rev)?, vec![s.id()]);

        let mut b = catalog(&[&s]);
        b.apply_revocation(&rev)?;
        assert_eq!(
            b.apply_revocation(&dep)?,
            vec![],
            "a deprecation does not soften a revocation"
        );
        let want = Some(Status::Revoked { by: rev.hash() });
        assert_eq!(a.get(&s.id()).map(|e| e.status), want);
        assert_eq!(b.get(&s.id()).map(|e| e.status), want);

        // Deprecated specs are hidden by default and resolve no longer picks them.
        let mut c = catalog(&[&s]);
        c.apply_revocation(&dep)?;
        assert!(c.find(&FindQuery::default(), None).is_empty());
        Ok(())
    }

    #[test]
    fn resolve_refuses_ambiguous_names_and_honours_trust() -> Result<(), Box<dyn std::error::Error>> {
        let mine = spec(1, "calc", "1.0.0", &[]);
        let mine_beta = spec(1, "calc", "1.1.0-beta.1", &[]);
        let hijack = spec(2, "calc", "9.0.0", &[]);
        let c = catalog(&[&mine, &mine_beta]);
        // One publisher: the highest stable version.
        assert_eq!(c.resolve("calc", None, &[]).map(|e| e.spec.id()), Ok(mine.id()));
        let pre = parse_version_req(">=1.1.0-beta")?;
        assert_eq!(
            c.resolve("calc", Some(&pre), &[]).map(|e| e.spec.id()),
            Ok(mine_beta.id())
        );
        let two = parse_version_req("^2")?;
        assert_eq!(
            c.resolve("calc", Some(&two), &[]),
            Err(ResolveError::NoVersionMatches {
                name: "calc".into(),
                req: "^2".into(),
                available: vec!["1.1.0-beta.1".into(), "1.0.0".into()],
            })
        );
        assert!(matches!(
            c.resolve("nope", None, &[]),
            Err(ResolveError::NotFound { .. })
        ));

        // A stranger's higher version never captures the name.
        let c = catalog(&[&mine, &hijack]);
        match c.resolve("calc", None, &[]) {
            Err(ResolveError::Ambiguous { publishers, .. }) => assert_eq!(publishers.len(), 2),
            other => panic!("expected Ambiguous, got {other:?}"),
        }
        let one = parse_version_req("^1")?;
        assert!(matches!(
            c.resolve("calc", Some(&one), &[]),
            Err(ResolveError::Ambiguous { .. })
        ));
        let trusted = [key(1).public()];
        assert_eq!(
            c.resolve("calc", None, &trusted).map(|e| e.spec.id()),
            Ok(mine.id())
        );
        assert!(matches!(
            c.resolve("calc", None, &[key(3).public()]),
            Err(ResolveError::NotTrusted { .. })
        ));
        Ok(())
    }

    #[test]
    fn search_ranks_name_matches_first() -> Result<(), RevocationRejected> {
        let weather = spec_with(1, |s| {
            s.name = "weather".into();
            s.description = "Current conditions and forecasts for a city.".into();
        });
        let forecast = spec_with(1, |s| {
            s.name = "forecast_tool".into();
            s.description =
                "Unlike the weather tools, this one predicts sales from past weather data.".into();
        });
        let tagged = spec_with(2, |s| {
            s.name = "climate".into();
            s.tags = vec!["weather".into()];
            s.description = "Long-term climate statistics.".into();
        });
        let unrelated = spec(3, "calc", "1.0.0", &["math"]);
        let mut c = catalog(&[&forecast, &weather, &tagged, &unrelated]);
        let hits = c.search("Weather", 10);
        let names: Vec<&str> = hits.iter().map(|(_, e)| e.spec.value().name.as_str()).collect();
        assert_eq!(names, ["weather", "climate", "forecast_tool"]);
        assert!(hits.windows(2).all(|w| w[0].0 >= w[1].0));
        // Name tokens split on `_`.
        assert_eq!(
            c.search("tool", 10).first().map(|(_, e)| e.spec.id()),
            Some(forecast.id())
        );
        assert_eq!(c.search("weather", 1).len(), 1);
        assert!(c.search("", 10).is_empty());
        assert!(c.search("zebra", 10).is_empty());
        // Oversized queries are cut, not refused.
        let long = format!("{} weather", "x ".repeat(500));
        assert!(c.search(&long, 10).is_empty(), "`weather` is past the byte cap");
        c.apply_revocation(&revoke_id(1, weather.id()))?;
        assert_eq!(c.search("weather", 10).len(), 2);
        Ok(())
    }

    #[test]
    fn ten_thousand_specs_insert_and_query() {
        let tags = ["math", "web", "text", "data", "image"];
        let specs: Vec<SignedSpec> = (0..10_000u32)
            .map(|i| {
                spec_with((i % 7) as u8, |s| {
                    s.name = format!("tool_{}", i % 2_000);
                    s.version = semver::Version::new(1, 0, u64::from(i / 2_000));
                    s.tags = vec![tags[(i % 5) as usize].to_owned()];
                    s.description = format!("Tool number {i} does {} things.", tags[(i % 3) as usize]);
                })
            })
            .collect();
        let mut c = catalog(&[]);
        for s in specs {
            c.insert_spec(s);
        }
        assert_eq!(c.len(), 10_000);
        let q = query(|q| {
            q.tag = Some("web".into());
            q.limit = Some(1000);
        });
        assert_eq!(c.find(&q, None).len(), 1000);
        let q = query(|q| q.name = Some("tool_42".into()));
        assert_eq!(c.find(&q, None).len(), 5);
        assert_eq!(c.search("math things", 20).len(), 20);
    }

    #[test]
    fn summary_filter_agrees_with_find_query() -> Result<(), Box<dyn std::error::Error>> {
        let specs = [
            spec_with(1, |s| {
                s.side_effects = vec![SideEffect::Network];
                s.permissions.egress =
                    vec![atr_protocol::policy::EgressRule::parse("example.com:443").unwrap()];
                s.cost = Cost::High;
            }),
            spec(2, "calc", "2.0.0-rc.1", &["math", "x"]),
            spec(1, "calc", "1.4.0", &["math"]),
        ];
        let reqs = [
            None,
            Some(parse_version_req("^1")?),
            Some(parse_version_req(">=2.0.0-rc.0")?),
        ];
        let queries = [
            query(|_| {}),
            query(|q| q.tag = Some("math".into())),
            query(|q| q.name = Some("calc".into())),
            query(|q| q.publisher = Some(key(2).public())),
            query(|q| q.allowed_side_effects = Some(vec![])),
            query(|q| q.allowed_side_effects = Some(vec![SideEffect::Network])),
            query(|q| q.max_cost = Some(Cost::Low)),
        ];
        for s in &specs {
            let r = SpecRef::from_signed(s);
            for q in &queries {
                for req in &reqs {
                    assert_eq!(
                        matches(q, r.value(), req.as_ref()),
                        q.matches(s.value(), req.as_ref()),
                        "{q:?} {req:?} {}",
                        s.value().label()
                    );
                }
            }
        }
        Ok(())
    }

    #[test]
    fn unheld_revocations_are_capped_expire_and_become_held() {
        init_tracing();
        let mut c = Catalog::with_max_pending(2);
        let later = spec(1, "late", "1.0.0", &[]);
        let a = revoke_id(1, later.id());
        let b = revoke_id(2, ToolId([7; 32]));
        c.apply_revocation_at(&a, 1_000).unwrap();
        c.apply_revocation_at(&b, 2_000).unwrap();
        assert_eq!(c.unheld_count(), 2);
        assert_eq!(
            c.apply_revocation_at(&revoke_id(3, ToolId([8; 32])), 3_000),
            Err(RevocationRejected::TooManyPending { max: 2 })
        );
        // Its target arrives: `a` now revokes a held spec, off the pending count.
        c.insert_spec(later.clone());
        assert_eq!(c.unheld_count(), 1);
        assert!(matches!(
            c.get(&later.id()).map(|e| e.status),
            Some(Status::Revoked { .. })
        ));
        assert_eq!(c.classify(&a), Ok(Standing::Known));
        // `b` expires (arrived at 2 000, ttl 500, now 3 000); `a` is held and stays.
        assert_eq!(c.evict_unheld(3_000, 500, 0), vec![b.hash()]);
        assert_eq!(c.take_rejected_revocations(), vec![b.hash()]);
        assert!(!c.has_revocation(&b.hash()));
        assert!(c.has_revocation(&a.hash()));
        assert_eq!(c.unheld_count(), 0);
        assert_eq!(c.evict_oldest_unheld(), None);
    }

    #[test]
    fn only_the_newest_by_name_revocation_of_a_kind_is_kept() {
        init_tracing();
        let mut c = catalog(&[&spec(1, "calc", "1.0.0", &[])]);
        let by_name = |kind, t| revocation(1, kind, RevocationTarget::Name("calc".into()), CREATED + t, None);
        let old = by_name(RevocationKind::Deprecate, 10);
        let new = by_name(RevocationKind::Deprecate, 20);
        let revoke = by_name(RevocationKind::Revoke, 5);
        c.apply_revocation(&old).unwrap();
        c.apply_revocation(&revoke).unwrap();
        c.apply_revocation(&new).unwrap();
        assert_eq!(c.take_rejected_revocations(), vec![old.hash()]);
        assert!(!c.has_revocation(&old.hash()));
        // The revocation of the other kind stays: dropping it would un-revoke.
        assert!(c.has_revocation(&revoke.hash()));
        assert_eq!(
            c.apply_revocation(&old),
            Err(RevocationRejected::Superseded {
                name: "calc".into(),
                kind: "deprecate"
            })
        );
        let status = c.iter().next().map(|(_, e)| e.status);
        assert!(matches!(status, Some(Status::Revoked { .. })));
    }

    /// Pages of a find by tag, with specs of that tag arriving between pages: every spec
    /// held before the first page comes exactly once, none comes twice.
    #[test]
    fn find_pages_return_each_spec_once_while_specs_arrive() {
        let mut c = Catalog::new();
        let mut before = BTreeSet::new();
        for i in 0..300u32 {
            // Few names, many versions and publishers: ties on name and version are common.
            let s = spec(
                (i % 7) as u8 + 1,
                &format!("t{}", i % 13),
                &format!("1.{}.0", i % 5),
                &["page"],
            );
            before.insert(s.id());
            c.insert_spec(s);
        }
        let q = query(|q| {
            q.tag = Some("page".into());
            q.limit = Some(17);
        });
        let mut seen = Vec::new();
        let mut after: Option<ListingKey> = None;
        let mut added = 0u32;
        loop {
            let page = c.find_page(&q, None, after.as_ref());
            assert!(page.results.len() <= 17);
            seen.extend(page.results.iter().map(|e| e.spec.id()));
            after = page.results.last().map(|e| ListingKey::of(e));
            if !page.more {
                break;
            }
            for _ in 0..5 {
                added += 1;
                c.insert_spec(spec(
                    9,
                    &format!("t{}", added % 13),
                    &format!("2.{added}.0"),
                    &["page"],
                ));
            }
        }
        let unique: BTreeSet<ToolId> = seen.iter().copied().collect();
        assert_eq!(unique.len(), seen.len(), "a spec came twice");
        assert!(
            before.is_subset(&unique),
            "a spec held from the start was skipped"
        );
    }

    #[test]
    fn search_pages_score_the_first_pages_documents() {
        let mut c = Catalog::new();
        for i in 0..120u32 {
            c.insert_spec(spec(
                (i % 5) as u8 + 1,
                &format!("weather{i}"),
                "1.0.0",
                &["weather"],
            ));
        }
        let all: Vec<ToolId> = c
            .search("weather", 1000)
            .iter()
            .map(|(_, e)| e.spec.id())
            .collect();
        assert_eq!(all.len(), 120);
        let mut seen = Vec::new();
        let mut after: Option<SearchKey> = None;
        loop {
            let page = c.search_page("weather", 25, after.as_ref()).unwrap();
            seen.extend(page.results.iter().map(|(_, e)| e.spec.id()));
            after = page.results.last().map(|(score, e)| SearchKey {
                docs: page.docs,
                score: *score,
                id: e.spec.id(),
            });
            if !page.more {
                break;
            }
            // New documents change every score of a fresh search, not those of this one.
            c.insert_spec(spec(
                9,
                &format!("weather-new{}", seen.len()),
                "1.0.0",
                &["weather"],
            ));
        }
        assert_eq!(seen, all, "the pages are the first page's search, in order");
        // A position this index never gave is refused.
        let bad = SearchKey {
            docs: 1_000_000,
            score: 1.0,
            id: all[0],
        };
        assert!(c.search_page("weather", 25, Some(&bad)).is_none());
    }
}
