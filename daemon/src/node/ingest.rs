//! Taking in signed objects from peers (gossip, sync, fetch) and from this
//! node itself: verify fully, then write through the [`Repo`] — or refuse
//! with a reason that says whether the sender is to blame.

use std::collections::HashSet;
use std::sync::Arc;

use atr_protocol::signed::VerifyError;
use atr_protocol::wire::{self, FetchResponse, WireObject};
use atr_protocol::{SignedDelegation, SignedRevocation, SignedSpec, ToolId};
use libp2p::PeerId;
use libp2p::gossipsub::{MessageAcceptance, MessageId};
use tracing::{debug, info, warn};

use crate::announce::Announcer;
use crate::catalog::{DelegationRefused, RevocationRejected, Standing, envelope_hash};
use crate::metrics::Metrics;
use crate::network::NetworkHandle;
use crate::node::spec_queue::SpecQueue;
pub use crate::repo::Ingested;
use crate::repo::{Repo, RepoError};
use crate::store::StoreError;

/// Why an object was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// The bytes are not a valid object: the sender is to blame.
    #[error("invalid {kind}: {source}")]
    Invalid {
        /// Object kind.
        kind: &'static str,
        /// Why.
        #[source]
        source: VerifyError,
    },
    /// A revocation not signed by the target's publisher: the sender is to blame.
    #[error("revocation rejected: {0}")]
    Revocation(#[from] RevocationRejected),
    /// A delegation this node does not keep: the sender is not to blame (a
    /// relayer cannot know what this node holds), but a forged one
    /// ([`DelegationRefused::NotPublisher`]) is a bad object.
    #[error("delegation refused: {0}")]
    Delegation(DelegationRefused),
    /// The store refused (full, I/O): not the sender's fault.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The publisher's quota here is used up: not the sender's fault (a
    /// relayer cannot know this node's quotas), so it is ignored on gossip
    /// (not forwarded) rather than rejected.
    #[error("{0}")]
    Quota(RepoError),
    /// A wire object of a kind this node does not know.
    #[error("unknown object kind")]
    UnknownKind,
    /// An object in a fetch response that was not asked for: the sender is to blame.
    #[error("an object that was not asked for")]
    Unrequested,
    /// The blocking task did not finish.
    #[error(transparent)]
    Task(#[from] crate::repo::TaskFailed),
}

impl From<RepoError> for IngestError {
    fn from(e: RepoError) -> Self {
        match e {
            RepoError::Store(s) => Self::Store(s),
            RepoError::Revocation(r) => Self::Revocation(r),
            RepoError::Delegation(d) => Self::Delegation(d),
            q @ RepoError::Quota { .. } => Self::Quota(q),
            // Not produced by spec or revocation writes.
            RepoError::NotProvidable(_) => Self::UnknownKind,
        }
    }
}

impl IngestError {
    /// Whether the peer that sent it should be penalized.
    pub fn blames_sender(&self) -> bool {
        // A forged revocation is provable only against its author (a relayer
        // may not have known the target when it accepted it); a full pending
        // table is this node's own limit.
        matches!(self, Self::Invalid { .. } | Self::Unrequested)
    }

    /// Whether the object is provably bad (reject it on gossip), even if
    /// the forwarding peer may be honest.
    pub fn is_bad_object(&self) -> bool {
        matches!(
            self,
            Self::Invalid { .. }
                | Self::Revocation(RevocationRejected::NotPublisher { .. })
                | Self::Delegation(DelegationRefused::NotPublisher { .. })
        )
    }
    /// A short reason for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Invalid { .. } => "invalid_object",
            Self::Unrequested => "unrequested_object",
            Self::Revocation(RevocationRejected::NotPublisher { .. }) => "revocation_not_publisher",
            Self::Revocation(_) => "revocation_refused",
            Self::Delegation(DelegationRefused::NotPublisher { .. }) => "delegation_not_publisher",
            Self::Delegation(_) => "delegation_refused",
            Self::Store(_) => "store",
            Self::Quota(_) => "quota",
            Self::UnknownKind | Self::Task(_) => "internal",
        }
    }

    /// The `store_refused` metric label when a store budget refused it.
    fn budget(&self) -> Option<&'static str> {
        match self {
            Self::Quota(_) => Some("quota"),
            Self::Store(StoreError::Full { .. }) => Some("store_full"),
            Self::Revocation(RevocationRejected::TooManyPending { .. }) => Some("pending_full"),
            Self::Revocation(RevocationRejected::Superseded { .. }) => Some("superseded"),
            Self::Revocation(RevocationRejected::OutOfWindow { .. }) => Some("pending_expired"),
            Self::Delegation(DelegationRefused::Unheld) => Some("delegation_unheld"),
            Self::Delegation(DelegationRefused::Expired) => Some("delegation_expired"),
            Self::Delegation(DelegationRefused::PublisherFull(_) | DelegationRefused::Full) => {
                Some("delegations_full")
            }
            _ => None,
        }
    }
}

/// The gossip spec queue: twice the cores verifying, `waiting` at most waiting.
fn spec_queue(waiting: usize) -> SpecQueue {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    SpecQueue::new(2 * cores, waiting)
}

/// A fully verified wire object.
enum Verified {
    Spec(Box<SignedSpec>),
    Revocation(SignedRevocation),
    Delegation(SignedDelegation),
}

impl Verified {
    /// Decodes and fully verifies a wire object (blocking, CPU only).
    fn from_wire(obj: &WireObject) -> Result<Self, IngestError> {
        let invalid = |kind| move |source| IngestError::Invalid { kind, source };
        match obj {
            WireObject::Spec(b) => SignedSpec::from_bytes(&b.0)
                .map(|s| Self::Spec(Box::new(s)))
                .map_err(invalid("spec")),
            WireObject::Revocation(b) => SignedRevocation::from_bytes(&b.0)
                .map(Self::Revocation)
                .map_err(invalid("revocation")),
            WireObject::Delegation(b) => SignedDelegation::from_bytes(&b.0)
                .map(Self::Delegation)
                .map_err(invalid("delegation")),
            _ => Err(IngestError::UnknownKind),
        }
    }
}

/// What one fetch response brought.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Fetched {
    /// Objects in the response (decoded, within the count cap).
    pub received: usize,
    /// Objects verified and newly stored.
    pub stored: usize,
    /// Objects refused, or 1 for a response refused whole.
    pub refused: usize,
}

/// Verifies objects and writes them through the repository; answers gossip
/// validation and penalizes senders through the network handle.
#[derive(Clone)]
pub struct Ingest {
    repo: Repo,
    announcer: Announcer,
    net: NetworkHandle,
    metrics: Arc<Metrics>,
    /// Gossip specs verified and stored at once (twice the cores), and the
    /// bounded, fair queue of those waiting (`[network.budgets]
    /// gossip_spec_queue`; beyond it they are ignored: not forwarded,
    /// anti-entropy fetches what an honest one missed). A flood of valid
    /// specs queues there instead of taking every CPU slice; revocations and
    /// delegations skip it; a waiting spec holds no peer-task permit, so a
    /// flood never stalls the node's other events; and honest publishers'
    /// specs do not wait behind a flood ([`SpecQueue`]).
    spec_gossip: SpecQueue,
}

impl Ingest {
    /// An ingest service writing to `repo`.
    pub fn new(repo: Repo, announcer: Announcer, net: NetworkHandle, metrics: Arc<Metrics>) -> Self {
        Self {
            repo,
            announcer,
            net,
            metrics,
            spec_gossip: spec_queue(crate::config::Budgets::default().gossip_spec_queue),
        }
    }

    /// Sets how many gossip specs may wait to be verified.
    pub fn with_spec_queue(mut self, n: usize) -> Self {
        self.spec_gossip = spec_queue(n);
        self
    }

    /// Gossip specs waiting for verification now.
    pub fn specs_waiting(&self) -> usize {
        self.spec_gossip.waiting()
    }

    /// This node's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Verifies and stores a spec envelope (blocking).
    pub fn spec(&self, envelope: &[u8]) -> Result<(SignedSpec, Ingested), IngestError> {
        let spec = SignedSpec::from_bytes(envelope)
            .map_err(|source| IngestError::Invalid { kind: "spec", source })?;
        self.store_spec(spec)
    }

    /// Counts a refusal for a store budget.
    fn count_refusal(&self, e: &IngestError) {
        if let Some(reason) = e.budget() {
            self.metrics.store_refused(reason);
        }
    }

    /// Stores and indexes an already verified spec (blocking).
    pub fn store_spec(&self, spec: SignedSpec) -> Result<(SignedSpec, Ingested), IngestError> {
        let r = self
            .store_specs(std::slice::from_ref(&spec))
            .pop()
            .unwrap_or(Ok(Ingested::Known));
        r.map(|i| (spec, i))
    }

    /// Stores and indexes already verified specs in one group commit
    /// ([`Repo::insert_specs`]), each with its own outcome (blocking).
    pub fn store_specs(&self, specs: &[SignedSpec]) -> Vec<Result<Ingested, IngestError>> {
        let results = self.repo.insert_specs(specs);
        specs
            .iter()
            .zip(results)
            .map(|(spec, r)| match r {
                Ok(Ingested::New) => {
                    self.metrics.specs_stored.inc();
                    info!(target: "atr::_events::spec::stored", tool = %spec.id(), name = %spec.value().name, version = %spec.value().version, "spec stored");
                    Ok(Ingested::New)
                }
                Ok(i) => Ok(i),
                Err(e) => {
                    let e = IngestError::from(e);
                    self.count_refusal(&e);
                    Err(e)
                }
            })
            .collect()
    }

    /// Verifies and stores a revocation envelope (blocking).
    pub fn revocation(
        &self,
        envelope: &[u8],
    ) -> Result<(SignedRevocation, Ingested, Vec<ToolId>), IngestError> {
        let rev = SignedRevocation::from_bytes(envelope).map_err(|source| IngestError::Invalid {
            kind: "revocation",
            source,
        })?;
        self.store_revocation(rev)
    }

    /// Applies and stores a verified revocation (blocking); returns the specs
    /// it affected. Specs it revoked that this node provided stop being announced.
    pub fn store_revocation(
        &self,
        rev: SignedRevocation,
    ) -> Result<(SignedRevocation, Ingested, Vec<ToolId>), IngestError> {
        let r = self.repo.insert_revocation(&rev).map_err(|e| {
            let e = IngestError::from(e);
            self.count_refusal(&e);
            e
        })?;
        if r.ingested == Ingested::Known {
            return Ok((rev, Ingested::Known, Vec::new()));
        }
        if !r.persisted {
            self.metrics.revocations_unpersisted.inc();
        }
        for spec in &r.withdrawn {
            self.announcer.withdraw(&self.repo, spec);
        }
        self.metrics.revocations_stored.inc();
        info!(target: "atr::_events::revocation::stored", revocation = %hex::encode(rev.hash()), affected = r.affected.len(), "revocation stored");
        Ok((rev, Ingested::New, r.affected))
    }

    /// Verifies and keeps a delegation envelope (blocking).
    pub fn delegation(&self, envelope: &[u8]) -> Result<(SignedDelegation, Ingested), IngestError> {
        let d = SignedDelegation::from_bytes(envelope).map_err(|source| IngestError::Invalid {
            kind: "delegation",
            source,
        })?;
        self.store_delegation(d)
    }

    /// Keeps a verified delegation (blocking).
    pub fn store_delegation(&self, d: SignedDelegation) -> Result<(SignedDelegation, Ingested), IngestError> {
        let ingested = self.repo.insert_delegation(&d).map_err(|e| {
            let e = IngestError::from(e);
            self.count_refusal(&e);
            e
        })?;
        if ingested == Ingested::New {
            info!(target: "atr::_events::delegation::stored", delegation = %hex::encode(d.hash()), provider = %d.value().provider, "delegation stored");
        }
        Ok((d, ingested))
    }

    /// [`Ingest::object`] for gossip (blocking), and whether the object is
    /// worth forwarding, for an object past [`Ingest::revocation_precheck`]
    /// ([`Ingest::on_gossip`] runs it first, on the async worker). A genuine
    /// revocation spreads through the nodes that hold its target (every
    /// node, once a spec has spread); a node that gets its spec later learns
    /// the revocation by sync from one of them. One that revokes nothing new
    /// (its spec already revoked) is stored but not forwarded.
    fn gossip_object(&self, obj: &WireObject) -> Result<(Ingested, bool), IngestError> {
        let WireObject::Revocation(b) = obj else {
            return self.object(obj).map(|(_, i)| (i, true));
        };
        let (_, ingested, affected) = self.revocation(&b.0)?;
        Ok((ingested, !affected.is_empty()))
    }

    /// The checks of a gossip revocation that need no signature check and
    /// no store access (an in-memory hash lookup, a decode of a small body,
    /// a catalog lookup): whether it is known already or targets nothing
    /// held, both decided without verifying (`Some`), else `None`. One that
    /// targets nothing held is neither stored nor forwarded (counted as
    /// `store_refused{reason="unheld_gossip"}`): a flood of revocations of
    /// made-up names costs each first hop a decode and a catalog lookup on
    /// the async worker (no signature check, no store write, no
    /// blocking-pool hand-off) and goes no further.
    fn revocation_precheck(&self, envelope: &[u8]) -> Result<Option<(Ingested, bool)>, IngestError> {
        if self.known(envelope).is_some() {
            return Ok(Some((Ingested::Known, false)));
        }
        // Whether it targets anything held is decided on the unverified
        // value: dropping it needs no signature check, so a flood of
        // revocations of made-up names costs a decode and a lookup each.
        let value = SignedRevocation::peek(envelope).map_err(|source| IngestError::Invalid {
            kind: "revocation",
            source,
        })?;
        if self.repo.read(|c| c.target_standing(&value)) == Ok(Standing::Unheld) {
            self.metrics.store_refused("unheld_gossip");
            return Ok(Some((Ingested::Known, false)));
        }
        Ok(None)
    }

    /// The hash of an envelope's body if this node already holds it (an
    /// in-memory lookup, before anything is verified).
    fn known(&self, envelope: &[u8]) -> Option<[u8; 32]> {
        envelope_hash(envelope).filter(|h| self.repo.knows(h))
    }

    /// Verifies and stores any wire object (blocking): [`Ingest::objects`]
    /// of one. An object already known (by the hash of its body, an
    /// in-memory lookup) is [`Ingested::Known`] before anything is decoded
    /// or verified.
    pub fn object(&self, obj: &WireObject) -> Result<([u8; 32], Ingested), IngestError> {
        let ingested = self
            .objects(std::slice::from_ref(obj), None)
            .pop()
            .unwrap_or(Err(IngestError::UnknownKind))?;
        // A stored or known object's envelope has a body, so it has a hash.
        let hash = envelope_hash(obj.envelope()).ok_or(IngestError::UnknownKind)?;
        Ok((hash, ingested))
    }

    /// Runs `f` on a clone of this service off the async runtime.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Ingest) -> T + Send + 'static,
    ) -> Result<T, crate::repo::TaskFailed> {
        let me = self.clone();
        self.repo.blocking(move |_| f(&me)).await
    }

    /// Handles one gossip message: decode, verify, store, then report the verdict.
    pub async fn on_gossip(
        &self,
        source: PeerId,
        author: Option<PeerId>,
        message_id: MessageId,
        data: Vec<u8>,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) {
        let obj: WireObject = match wire::decode_message(&data, wire::MAX_GOSSIP_BYTES, "gossip") {
            Ok(o) => o,
            Err(e) => {
                debug!(peer = %source, error = %e, "undecodable gossip");
                self.reject(source, message_id, "undecodable_gossip");
                return;
            }
        };
        let _slot = match &obj {
            WireObject::Spec(b) => {
                let envelope = b.0.clone();
                // Known already (by hash), or whose publisher (unverified).
                let peeked = self
                    .blocking(move |s| match s.known(&envelope) {
                        Some(_) => Ok(None),
                        None => SignedSpec::peek(&envelope)
                            .map(|v| Some((v.publisher, s.repo.established(&v.publisher)))),
                    })
                    .await;
                match peeked {
                    Ok(Ok(None)) => {
                        self.metrics.gossip_verdict("ignore");
                        self.net.verdict(message_id, source, MessageAcceptance::Ignore);
                        return;
                    }
                    Ok(Ok(Some((publisher, established)))) => {
                        // Wait in the fair queue, giving the peer-task permit back.
                        drop(permit);
                        match self.spec_gossip.acquire(publisher, established).await {
                            Ok(slot) => Some(slot),
                            Err(_) => {
                                self.metrics.budget_exceeded("gossip_spec_queue");
                                self.net.verdict(message_id, source, MessageAcceptance::Ignore);
                                return;
                            }
                        }
                    }
                    // Undecodable: ingest below names the error (it fails
                    // at the same early step, without a slot).
                    Ok(Err(_)) | Err(_) => None,
                }
            }
            _ => None,
        };
        let decided = match &obj {
            WireObject::Revocation(b) => self.revocation_precheck(&b.0).transpose(),
            _ => None,
        };
        let result = match decided {
            Some(r) => Ok(r),
            None => self.blocking(move |s| s.gossip_object(&obj)).await,
        };
        match result {
            Ok(Ok((Ingested::New, true))) => {
                self.metrics.gossip_verdict("accept");
                debug!(peer = %source, "gossip object accepted");
                self.net.verdict(message_id, source, MessageAcceptance::Accept);
            }
            Ok(Ok((Ingested::New, false))) => {
                // Stored (it revoked nothing new), not forwarded.
                self.metrics.gossip_verdict("keep");
                self.net.verdict(message_id, source, MessageAcceptance::Ignore);
            }
            Ok(Ok((Ingested::Known, _))) => {
                // Known already (past gossipsub's duplicate window, or
                // learned by sync): not forwarded again, not the sender's fault.
                self.metrics.gossip_verdict("ignore");
                self.net.verdict(message_id, source, MessageAcceptance::Ignore);
            }
            Ok(Err(e)) if e.blames_sender() || (e.is_bad_object() && author == Some(source)) => {
                warn!(peer = %source, error = %e, "gossip object rejected");
                self.reject(source, message_id, e.reason());
            }
            Ok(Err(e)) if e.is_bad_object() => {
                warn!(peer = %source, error = %e, "gossip object rejected (relayed; its author is penalized by scoring)");
                self.metrics.gossip_verdict("reject");
                self.net.verdict(message_id, source, MessageAcceptance::Reject);
            }
            Ok(Err(e)) => {
                warn!(peer = %source, error = %e, "gossip object ignored");
                self.metrics.gossip_verdict("ignore");
                self.net.verdict(message_id, source, MessageAcceptance::Ignore);
            }
            Err(e) => {
                warn!(error = %e, "gossip task failed");
                self.net.verdict(message_id, source, MessageAcceptance::Ignore);
            }
        }
    }

    fn reject(&self, source: PeerId, message_id: MessageId, reason: &'static str) {
        self.metrics.gossip_verdict("reject");
        self.net.verdict(message_id, source, MessageAcceptance::Reject);
        self.net.penalize(source, reason);
    }

    /// Verifies and stores the objects of a fetch response. With `asked`, an
    /// object that was not asked for is refused and counted against the peer.
    ///
    /// With `by_sync`, the objects stored are counted in `sync_objects` as
    /// they are stored (in the blocking task, so a round that stops while
    /// the task runs still counts them).
    pub async fn fetched(
        &self,
        peer: PeerId,
        raw: &[u8],
        asked: Option<HashSet<[u8; 32]>>,
        by_sync: bool,
    ) -> Fetched {
        let refused_whole = Fetched {
            refused: 1,
            ..Fetched::default()
        };
        let resp: FetchResponse =
            match wire::decode_message(raw, wire::MAX_FETCH_RESPONSE_BYTES, "fetch response") {
                Ok(r) => r,
                Err(e) => {
                    debug!(%peer, error = %e, "bad fetch response");
                    self.net.penalize(peer, "bad_fetch_response");
                    return refused_whole;
                }
            };
        if resp.objects.len() > wire::MAX_FETCH_OBJECTS {
            self.net.penalize(peer, "oversized_fetch_response");
            return refused_whole;
        }
        let received = resp.objects.len();
        let results = self
            .blocking(move |s| {
                let results = s.objects(&resp.objects, asked.as_ref());
                if by_sync {
                    let stored = results.iter().filter(|r| matches!(r, Ok(Ingested::New))).count();
                    s.metrics.sync_objects.inc_by(stored as u64);
                }
                results
            })
            .await
            .unwrap_or_default();
        let mut got = Fetched {
            received,
            ..Fetched::default()
        };
        for r in results {
            match r {
                Ok(Ingested::New) => got.stored += 1,
                Ok(Ingested::Known) => {}
                Err(e) if e.blames_sender() => {
                    got.refused += 1;
                    self.net.penalize(peer, e.reason());
                }
                Err(_) => {}
            }
        }
        got
    }

    /// Verifies and stores many objects (blocking), each with its outcome:
    /// those already known are recognised by hash first, the rest are
    /// verified in parallel on every core, their specs stored in one group
    /// commit, then their revocations and delegations (so one that targets
    /// a spec of the same batch finds it held). With `asked`, an object not
    /// asked for is refused ([`IngestError::Unrequested`]) unverified.
    pub fn objects(
        &self,
        objects: &[WireObject],
        asked: Option<&HashSet<[u8; 32]>>,
    ) -> Vec<Result<Ingested, IngestError>> {
        use rayon::prelude::*;
        let repo = &self.repo;
        let verified: Vec<Result<Option<Verified>, IngestError>> = objects
            .par_iter()
            .map(|o| {
                let envelope = o.envelope();
                let hash = envelope_hash(envelope);
                if let Some(a) = asked
                    && !hash.is_some_and(|h| a.contains(&h))
                {
                    return Err(IngestError::Unrequested);
                }
                if hash.is_some_and(|h| repo.knows(&h)) {
                    return Ok(None);
                }
                Verified::from_wire(o).map(Some)
            })
            .collect();
        let specs: Vec<SignedSpec> = verified
            .iter()
            .filter_map(|v| match v {
                Ok(Some(Verified::Spec(s))) => Some(SignedSpec::clone(s)),
                _ => None,
            })
            .collect();
        let mut stored = self.store_specs(&specs).into_iter();
        verified
            .into_iter()
            .map(|v| match v? {
                None => Ok(Ingested::Known),
                Some(Verified::Spec(_)) => stored.next().unwrap_or(Ok(Ingested::Known)),
                Some(Verified::Revocation(r)) => self.store_revocation(r).map(|(_, i, _)| i),
                Some(Verified::Delegation(d)) => self.store_delegation(d).map(|(_, i)| i),
            })
            .collect()
    }
}
