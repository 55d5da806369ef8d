//! The repository: the one owner of the store, the in-memory catalog and the
//! provided set, and the one write path for all three.
//!
//! [`Repo`] (cheap to clone) wraps the redb [`Store`], the [`Catalog`] built
//! from it and the set of foreign specs the operator agreed to run. Every
//! spec insert, revocation and change of consent goes through a `Repo`
//! method, so the three never drift:
//!
//! - [`Repo::insert_spec`]: quotas, store, then index;
//! - [`Repo::insert_revocation`]: a revocation of a held spec by its
//!   publisher is applied first and stored after (see below); any other is
//!   stored, then applied (deleted again if the catalog refuses it); consent
//!   is dropped for the specs it revoked;
//! - [`Repo::add_provided`] / [`Repo::remove_provided`]: consent, durable
//!   first, for stored active foreign specs only;
//! - [`Repo::add_trusted`] / [`Repo::remove_trusted`]: the node's one trust
//!   list (durable first), read live by every selection path
//!   ([`Repo::trust_list`], [`Repo::trusted_publishers`]) and by the quotas.
//!
//! # Locks
//!
//! Writes are serialized by a writer mutex that readers never take; it is
//! the one lock held across a redb commit (fsync). The catalog's
//! `RwLock` is write-locked only for the in-memory step after the store
//! committed (for a batch of specs, in slices of 64), so readers
//! ([`Repo::read`]) never wait for a disk and never see a spec the store
//! does not hold.
//!
//! # The invariant
//!
//! Every spec and revocation in the catalog is in the store, with one
//! exception: a revocation of a held spec by its publisher that the store
//! could not take (disk error) is applied anyway and queued; the queue is
//! retried before every later write and by [`Repo::retry_unpersisted`].
//! Consent (`provided`) names only stored specs that are not revoked.
//! Tested under concurrent writers and readers by
//! `catalog_never_runs_ahead_of_the_store` (`daemon/tests/it/quotas.rs`).
//!
//! # Budgets
//!
//! [`StoreOptions`] sets them: specs (objects and envelope bytes) with a
//! tenth of each reserved for this node and its trusted publishers; a quota
//! per untrusted publisher (objects and bytes); revocations targeting
//! nothing held (a cap and a time to live). A revocation of a held spec by
//! its publisher is never refused for lack of room: unheld revocations are
//! evicted for it, and past that it is stored over the cap.
//!
//! Methods are blocking (redb); async callers use [`Repo::blocking`].

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use atr_protocol::trust::{LabelError, MAX_TRUSTED, TrustEntry, TrustList, TrustSource};
use atr_protocol::{PublicKey, SignedDelegation, SignedReceipt, SignedRevocation, SignedSpec, ToolId};
use tracing::{info, warn};

use crate::catalog::{
    Catalog, DelegationRefused, MAX_CLOCK_SKEW_MS, MAX_DELEGATIONS, RevocationRejected, SpecRef, Standing,
    Status,
};
use crate::lock;
use crate::store::{PeerRecord, Store, StoreCounts, StoreError, StoreOptions};
use crate::time::now_ms;

/// Why a write was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RepoError {
    /// The store refused (full, I/O).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A revocation not signed by the publisher of what it targets.
    #[error("revocation rejected: {0}")]
    Revocation(#[from] RevocationRejected),
    /// A delegation this node does not keep (forged, expired, naming
    /// nothing held, over a cap).
    #[error("delegation refused: {0}")]
    Delegation(#[from] DelegationRefused),
    /// Consent asked for a spec that is not stored, not active or this node's own.
    #[error("{0} is not a stored, active spec of another publisher")]
    NotProvidable(ToolId),
    /// An untrusted publisher's quota is used up; nothing was written.
    #[error(
        "publisher {publisher} already has {specs} specs ({bytes} bytes) stored here, its quota \
         (`[store] publisher_max_specs` / `publisher_max_bytes`); trust it to lift the quota"
    )]
    Quota {
        /// The publisher.
        publisher: PublicKey,
        /// Its stored specs.
        specs: u64,
        /// Their envelope bytes.
        bytes: u64,
    },
}

/// Why a change of the trust list was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// The store refused (I/O).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The trust list holds [`MAX_TRUSTED`] publishers already.
    #[error(
        "the trust list holds {max} publishers, its limit; remove one (`atr trust remove`) before adding another"
    )]
    Full {
        /// [`MAX_TRUSTED`].
        max: usize,
    },
    /// This node's own key is always trusted and never listed.
    #[error("{0} is this node's own key: its tools are always trusted")]
    OwnKey(PublicKey),
    /// The publisher is trusted by the config file; the API does not edit it.
    #[error("{0} is trusted by the config file (`trusted_publishers`); remove it there and restart the node")]
    InConfig(PublicKey),
    /// The label breaks [`atr_protocol::trust::check_label`].
    #[error(transparent)]
    Label(#[from] LabelError),
}

/// A blocking task did not finish (it panicked or the runtime is shutting down).
#[derive(Debug, thiserror::Error)]
#[error("background task failed: {0}")]
pub struct TaskFailed(String);

/// What a write did with an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    /// Stored for the first time.
    New,
    /// Already known.
    Known,
}

/// Outcome of [`Repo::insert_revocation`].
#[derive(Debug, Clone)]
pub struct Revoked {
    /// New or already known.
    pub ingested: Ingested,
    /// Specs whose status it changed.
    pub affected: Vec<ToolId>,
    /// Foreign specs this node provided until now and no longer does.
    pub withdrawn: Vec<SignedSpec>,
    /// False when it was applied but the store could not keep it yet (it is
    /// queued and retried).
    pub persisted: bool,
}

impl Revoked {
    fn known() -> Self {
        Self {
            ingested: Ingested::Known,
            affected: Vec::new(),
            withdrawn: Vec::new(),
            persisted: true,
        }
    }
}

/// See the module docs.
#[derive(Clone)]
pub struct Repo {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    catalog: RwLock<Catalog>,
    provided: RwLock<HashSet<ToolId>>,
    me: PublicKey,
    /// The trust list: the config file's entries and the API's, by key. With `me`, these
    /// publishers are exempt from the per-publisher quota.
    trust: RwLock<BTreeMap<PublicKey, TrustEntry>>,
    opts: StoreOptions,
    /// The writer lock; guards the revocations applied but not yet stored.
    writer: Mutex<Vec<SignedRevocation>>,
    /// Spec batches waiting for the writer ([`Repo::insert_specs`]).
    queue: Mutex<std::collections::VecDeque<Queued>>,
    /// Revocations waiting for the writer; spec batches let them go first.
    urgent: std::sync::atomic::AtomicUsize,
}

/// Most specs written in one transaction by a group commit (a single
/// caller's larger batch is written whole).
pub const MAX_COMMIT_BATCH: usize = 1000;
/// Longest a spec batch lets waiting revocations go ahead of it, per turn
/// with the writer.
pub const REVOCATION_PRIORITY: std::time::Duration = std::time::Duration::from_secs(2);
/// Specs indexed per hold of the catalog's write lock after a commit.
const CATALOG_SLICE: usize = 64;

/// One caller's batch waiting for the writer, and where its answer goes.
struct Queued {
    specs: Vec<SignedSpec>,
    answer: std::sync::mpsc::SyncSender<Vec<Result<Ingested, RepoError>>>,
}

impl Repo {
    /// Builds the catalog, the provided set and the trust list from `store`
    /// (blocking). `trusted` are the config file's trusted publishers: they
    /// join those stored (the API's) and cannot be removed through the API.
    /// Trusted publishers (and `me`) are exempt from the per-publisher quota.
    ///
    /// Stored revocations the catalog does not accept (not signed by their
    /// target's publisher, superseded, over the pending cap or past their
    /// time to live) are deleted; consent for specs revoked since it was
    /// given is dropped.
    pub fn load(store: Store, me: PublicKey, trusted: &[PublicKey]) -> Result<Self, StoreError> {
        let opts = store.options();
        let specs = store.load_spec_refs()?;
        let revocations = store.load_revocations()?;
        let mut catalog = Catalog::with_max_pending(opts.max_pending_revocations);
        let (n_specs, n_revs) = (specs.len(), revocations.len());
        for s in specs {
            catalog.insert(s);
        }
        let now = now_ms();
        let mut refused = Vec::new();
        for r in &revocations {
            // Arrival time is not stored: the revocation's own time, capped at now.
            if let Err(e) = catalog.apply_revocation_at(r, r.value().created_at_ms.min(now)) {
                warn!(revocation = %hex::encode(r.hash()), error = %e, "stored revocation no longer accepted; removed");
                refused.push(r.hash());
            }
        }
        catalog.evict_unheld(now, ttl_ms(&opts), 0);
        refused.extend(catalog.take_rejected_revocations());
        for hash in refused {
            store.remove_revocation(&hash)?;
        }
        let mut stale = Vec::new();
        for d in store.load_delegations()? {
            match catalog.check_delegation(&d, now) {
                Ok(()) => stale.extend(catalog.add_delegation(d, now)),
                Err(_) => stale.push(d.hash()),
            }
        }
        if !stale.is_empty() {
            store.remove_delegations(&stale)?;
        }
        let mut provided = HashSet::new();
        for id in store.provided_ids()? {
            match catalog.get(&id) {
                Some(e) if matches!(e.status, Status::Revoked { .. }) => {
                    store.remove_provided(&id)?;
                    info!(tool = %id, "spec revoked; stopped providing it");
                }
                _ => {
                    provided.insert(id);
                }
            }
        }
        let mut trust = BTreeMap::new();
        for (publisher, label) in store.trusted()? {
            if publisher != me {
                let label = (!label.is_empty()).then_some(label);
                let source = TrustSource::Api;
                trust.insert(
                    publisher,
                    TrustEntry {
                        publisher,
                        label,
                        source,
                    },
                );
            }
        }
        for publisher in trusted.iter().copied().filter(|p| *p != me) {
            let label = trust.get(&publisher).and_then(|e| e.label.clone());
            let source = TrustSource::Config;
            trust.insert(
                publisher,
                TrustEntry {
                    publisher,
                    label,
                    source,
                },
            );
        }
        info!(
            specs = n_specs,
            revocations = n_revs,
            provided = provided.len(),
            trusted = trust.len(),
            "catalog loaded"
        );
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                catalog: RwLock::new(catalog),
                provided: RwLock::new(provided),
                me,
                trust: RwLock::new(trust),
                opts,
                writer: Mutex::new(Vec::new()),
                queue: Mutex::new(std::collections::VecDeque::new()),
                urgent: std::sync::atomic::AtomicUsize::new(0),
            }),
        })
    }

    /// Runs blocking work on the repository off the async runtime.
    pub async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Repo) -> T + Send + 'static,
    ) -> Result<T, TaskFailed> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || f(&me))
            .await
            .map_err(|e| TaskFailed(e.to_string()))
    }

    /// This node's publisher key.
    pub fn me(&self) -> PublicKey {
        self.inner.me
    }

    /// Reads the catalog (concurrently with other readers).
    pub fn read<T>(&self, f: impl FnOnce(&Catalog) -> T) -> T {
        f(&lock::read(&self.inner.catalog))
    }

    /// A stored spec, decoded whole, and its status. `None` also when the
    /// kept envelope no longer verifies (logged).
    pub fn spec(&self, id: &ToolId) -> Option<(SignedSpec, Status)> {
        let (r, status) = self.read(|c| c.get(id).map(|e| (e.spec.clone(), e.status)))?;
        decode(&r).map(|s| (s, status))
    }

    /// Whether `publisher` is exempt from quotas (this node, trusted ones).
    fn exempt(&self, publisher: &PublicKey) -> bool {
        *publisher == self.inner.me || lock::read(&self.inner.trust).contains_key(publisher)
    }

    /// Whether `publisher` is established here: this node, a trusted
    /// publisher, or one with a spec held (an in-memory lookup). Their
    /// gossip specs are verified before those of publishers new to this node.
    pub fn established(&self, publisher: &PublicKey) -> bool {
        self.exempt(publisher) || self.read(|c| c.holds_publisher(publisher))
    }

    /// The trust list as every selection path reads it: this node's key and the trusted
    /// publishers, config entries first, then by key.
    pub fn trust_list(&self) -> TrustList {
        let mut entries: Vec<TrustEntry> = lock::read(&self.inner.trust).values().cloned().collect();
        entries.sort_by_key(|e| (e.source != TrustSource::Config, e.publisher));
        TrustList {
            node: self.inner.me,
            entries,
        }
    }

    /// The trusted publishers' keys (not this node's own), read live: names
    /// resolve among them and this node.
    pub fn trusted_publishers(&self) -> Vec<PublicKey> {
        lock::read(&self.inner.trust).keys().copied().collect()
    }

    /// Trusts `publisher` (with a label, or replaces its label): durable
    /// first, then live. Returns whether anything changed. A key trusted by
    /// the config file is left as it is (`Ok(false)`).
    pub fn add_trusted(&self, publisher: PublicKey, label: Option<String>) -> Result<bool, TrustError> {
        let label = label.filter(|l| !l.is_empty());
        atr_protocol::trust::check_label(label.as_deref().unwrap_or_default())?;
        if publisher == self.inner.me {
            return Err(TrustError::OwnKey(publisher));
        }
        let _writer = lock::lock(&self.inner.writer);
        let (existing, config_count, len) = {
            let t = lock::read(&self.inner.trust);
            let config = t.values().filter(|e| e.source == TrustSource::Config).count();
            (t.get(&publisher).cloned(), config, t.len())
        };
        match &existing {
            Some(e) if e.source == TrustSource::Config => return Ok(false),
            Some(e) if e.label == label => return Ok(false),
            Some(_) => {}
            None if len >= MAX_TRUSTED => return Err(TrustError::Full { max: MAX_TRUSTED }),
            None => {}
        }
        let max = MAX_TRUSTED.saturating_sub(config_count);
        match self
            .inner
            .store
            .put_trusted(&publisher, label.as_deref().unwrap_or_default(), max)
        {
            Ok(_) => {}
            Err(StoreError::Full { .. }) => return Err(TrustError::Full { max: MAX_TRUSTED }),
            Err(e) => return Err(e.into()),
        }
        let source = TrustSource::Api;
        lock::write(&self.inner.trust).insert(
            publisher,
            TrustEntry {
                publisher,
                label,
                source,
            },
        );
        info!(publisher = %publisher, "publisher trusted");
        Ok(true)
    }

    /// Stops trusting `publisher`: durable first, then live. Returns whether
    /// it was trusted. A key trusted by the config file is refused
    /// ([`TrustError::InConfig`]).
    pub fn remove_trusted(&self, publisher: &PublicKey) -> Result<bool, TrustError> {
        let _writer = lock::lock(&self.inner.writer);
        let source = lock::read(&self.inner.trust).get(publisher).map(|e| e.source);
        if source == Some(TrustSource::Config) {
            return Err(TrustError::InConfig(*publisher));
        }
        let stored = self.inner.store.remove_trusted(publisher)?;
        let live = lock::write(&self.inner.trust).remove(publisher).is_some();
        if stored || live {
            info!(publisher = %publisher, "publisher no longer trusted");
        }
        Ok(stored || live)
    }

    /// Stores and indexes a verified spec; [`Repo::insert_specs`] of one.
    pub fn insert_spec(&self, spec: &SignedSpec) -> Result<Ingested, RepoError> {
        self.insert_specs(std::slice::from_ref(spec))
            .pop()
            .unwrap_or(Ok(Ingested::Known))
    }

    /// Stores and indexes verified specs, each with its own outcome, in the
    /// order given. A pending revocation that a spec proves forged (signed
    /// by someone else) is deleted.
    ///
    /// **Group commit.** Callers queue their specs and take turns with the
    /// writer lock; a turn writes the oldest queued batches (those of
    /// callers that arrived while the previous commit was on disk), about
    /// [`MAX_COMMIT_BATCH`] specs in one transaction with one fsync, and
    /// answers each of their callers. So concurrent writers (gossip, sync,
    /// publish) share fsyncs without a timer, a caller returns only once
    /// its specs are durable, and another writer (a revocation) waits for
    /// at most one commit. Readers never wait for the disk.
    ///
    /// Refused with [`RepoError::Quota`] when an untrusted publisher's quota
    /// is used up, and with [`StoreError::Full`] at the store's caps (for
    /// untrusted publishers at nine tenths of them).
    pub fn insert_specs(&self, specs: &[SignedSpec]) -> Vec<Result<Ingested, RepoError>> {
        if specs.is_empty() {
            return Vec::new();
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        lock::lock(&self.inner.queue).push_back(Queued {
            specs: specs.to_vec(),
            answer: tx,
        });
        // Each turn with the writer lock writes the oldest queued batches,
        // about MAX_COMMIT_BATCH specs, then lets go: other writers (a
        // revocation) wait for one commit at most, never for a whole flood.
        // This caller's batch is ahead of every batch queued after it, so
        // it is answered after a bounded number of turns.
        loop {
            // A revocation waiting for the writer goes first (a flood of
            // valid specs must not hold back a genuine revocation); it
            // holds the writer for one commit. A stream of revocations
            // holds a spec batch back for at most REVOCATION_PRIORITY per
            // turn, so it cannot starve spec ingest either.
            let yielded = std::time::Instant::now();
            while self.inner.urgent.load(std::sync::atomic::Ordering::SeqCst) > 0
                && yielded.elapsed() < REVOCATION_PRIORITY
            {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            let mut writer = lock::lock(&self.inner.writer);
            // Checked under the lock: the writer that took this batch
            // answered before letting go of it.
            if let Ok(answer) = rx.try_recv() {
                return answer;
            }
            let turn = {
                let mut q = lock::lock(&self.inner.queue);
                let mut turn = Vec::new();
                let mut n = 0;
                while let Some(front) = q.front()
                    && (turn.is_empty() || n + front.specs.len() <= MAX_COMMIT_BATCH)
                {
                    n += front.specs.len();
                    turn.extend(q.pop_front());
                }
                turn
            };
            if turn.is_empty() {
                // Nothing queued and no answer: the batch was lost (cannot
                // happen; a writer answers before letting go of the lock).
                break;
            }
            self.flush_unpersisted(&mut writer);
            self.commit_queued(turn);
        }
        let gone = StoreError::Database("the writer that took this batch did not answer".into());
        specs.iter().map(|_| Err(gone.clone().into())).collect()
    }

    /// Writes queued batches (writer lock held) in chunks of at most
    /// [`MAX_COMMIT_BATCH`] specs and answers each batch.
    fn commit_queued(&self, queued: Vec<Queued>) {
        let all: Vec<&SignedSpec> = queued.iter().flat_map(|q| q.specs.iter()).collect();
        let mut results = Vec::with_capacity(all.len());
        for chunk in all.chunks(MAX_COMMIT_BATCH) {
            results.extend(self.commit_chunk(chunk));
        }
        let mut results = results.into_iter();
        for q in queued {
            let answer: Vec<_> = results.by_ref().take(q.specs.len()).collect();
            // The caller waits on a channel of one; it cannot be gone.
            let _ = q.answer.try_send(answer);
        }
    }

    /// Checks quotas and caps for `chunk` against the catalog plus what the
    /// chunk itself adds, writes the accepted specs in one transaction and
    /// indexes them (writer lock held).
    fn commit_chunk(&self, chunk: &[&SignedSpec]) -> Vec<Result<Ingested, RepoError>> {
        let o = &self.inner.opts;
        let mut out: Vec<Option<Result<Ingested, RepoError>>> = Vec::with_capacity(chunk.len());
        let mut accepted: Vec<SignedSpec> = Vec::new();
        let mut seen: HashSet<ToolId> = HashSet::new();
        let mut added: BTreeMap<PublicKey, crate::catalog::Usage> = BTreeMap::new();
        let (mut total, mut count) = self.read(|c| (c.spec_bytes(), c.len() as u64));
        let exempt: HashSet<PublicKey> = chunk
            .iter()
            .map(|s| s.value().publisher)
            .filter(|p| self.exempt(p))
            .collect();
        {
            let cat = lock::read(&self.inner.catalog);
            for spec in chunk {
                let id = spec.id();
                if cat.get(&id).is_some() || !seen.insert(id) {
                    out.push(Some(Ok(Ingested::Known)));
                    continue;
                }
                let publisher = spec.value().publisher;
                let len = spec.to_bytes().len() as u64;
                let (max_bytes, max_specs) = if exempt.contains(&publisher) {
                    (o.max_spec_bytes, o.max_specs as u64)
                } else {
                    let before = cat.usage(&publisher);
                    let more = added.get(&publisher).copied().unwrap_or_default();
                    let (specs, bytes) = (before.specs + more.specs, before.bytes + more.bytes);
                    if specs >= o.publisher_max_specs || bytes + len > o.publisher_max_bytes {
                        out.push(Some(Err(RepoError::Quota {
                            publisher,
                            specs,
                            bytes,
                        })));
                        continue;
                    }
                    (
                        o.max_spec_bytes - o.max_spec_bytes / 10,
                        (o.max_specs - o.max_specs / 10) as u64,
                    )
                };
                if count >= max_specs {
                    out.push(Some(Err(StoreError::Full {
                        what: "specs",
                        count,
                        max: max_specs,
                    }
                    .into())));
                    continue;
                }
                if total + len > max_bytes {
                    out.push(Some(Err(StoreError::Full {
                        what: "spec bytes",
                        count: total,
                        max: max_bytes,
                    }
                    .into())));
                    continue;
                }
                let u = added.entry(publisher).or_default();
                u.specs += 1;
                u.bytes += len;
                total += len;
                count += 1;
                accepted.push((*spec).clone());
                out.push(None);
            }
        }
        let stored = match self.inner.store.put_specs(&accepted) {
            Ok(r) => r,
            Err(e) => {
                return out
                    .into_iter()
                    .map(|r| r.unwrap_or_else(|| Err(e.clone().into())))
                    .collect();
            }
        };
        // Indexed in slices, the catalog's write lock let go between them,
        // so readers wait for one slice, not a whole commit's worth.
        let mut dropped = Vec::new();
        let committed: Vec<&SignedSpec> = accepted
            .iter()
            .zip(&stored)
            .filter(|(_, put)| put.is_ok())
            .map(|(spec, _)| spec)
            .collect();
        for slice in committed.chunks(CATALOG_SLICE) {
            let mut cat = lock::write(&self.inner.catalog);
            for spec in slice {
                cat.insert_spec((*spec).clone());
            }
            dropped.extend(cat.take_rejected_revocations());
        }
        for forged in dropped {
            warn!(revocation = %hex::encode(forged), "pending revocation was not signed by the publisher; removed");
            self.remove_revocations(&[forged]);
        }
        let mut stored = stored.into_iter();
        out.into_iter()
            .map(|r| {
                r.unwrap_or_else(|| match stored.next() {
                    Some(Ok(crate::store::Put::Inserted)) => Ok(Ingested::New),
                    Some(Ok(_)) => Ok(Ingested::Known),
                    Some(Err(e)) => Err(e.into()),
                    None => Err(StoreError::Database("batch result missing".into()).into()),
                })
            })
            .collect()
    }

    /// Keeps and stores a verified delegation if it names a held spec of
    /// its signer, is live and fits the caps ([`Catalog::check_delegation`]);
    /// expired delegations of the same publisher are deleted on the way.
    pub fn insert_delegation(&self, d: &SignedDelegation) -> Result<Ingested, RepoError> {
        let _writer = lock::lock(&self.inner.writer);
        let now = now_ms();
        if self.read(|c| c.has_delegation(&d.hash())) {
            return Ok(Ingested::Known);
        }
        self.read(|c| c.check_delegation(d, now))?;
        self.inner.store.put_delegation(d, MAX_DELEGATIONS as u64)?;
        let expired = lock::write(&self.inner.catalog).add_delegation(d.clone(), now);
        if !expired.is_empty() {
            self.inner.store.remove_delegations(&expired)?;
        }
        Ok(Ingested::New)
    }

    /// Deletes expired delegations (housekeeping); returns how many.
    pub fn expire_delegations(&self) -> Result<usize, StoreError> {
        let _writer = lock::lock(&self.inner.writer);
        let expired = lock::write(&self.inner.catalog).remove_expired_delegations(now_ms());
        if expired.is_empty() {
            return Ok(0);
        }
        self.inner.store.remove_delegations(&expired)
    }

    /// Applies and stores a verified revocation, and drops consent for the
    /// specs it revoked.
    ///
    /// A revocation of a held spec signed by its publisher (by id, or by
    /// name matching a held spec) is **always applied**: stored, evicting
    /// revocations that target nothing held if the table is full, past the
    /// cap if nothing can be evicted, and applied in the catalog whatever the
    /// store answered; if the disk failed it is queued for a retry
    /// ([`Revoked::persisted`] is false).
    ///
    /// Any other revocation is stored first, so the node never keeps one it
    /// could not store, and counts against the pending cap (after those
    /// past their time to live are dropped).
    pub fn insert_revocation(&self, rev: &SignedRevocation) -> Result<Revoked, RepoError> {
        // Ahead of spec batches: they wait while a revocation waits.
        self.inner
            .urgent
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut writer = lock::lock(&self.inner.writer);
        self.inner
            .urgent
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        self.flush_unpersisted(&mut writer);
        if writer.iter().any(|r| r.hash() == rev.hash()) {
            return Ok(Revoked::known());
        }
        let standing = self.read(|c| c.classify(rev))?;
        let (affected, persisted) = match standing {
            Standing::Known => return Ok(Revoked::known()),
            Standing::Held => {
                // Stored first when the store can take it; applied whatever
                // the store answered.
                let persisted = self.persist_held(rev);
                let applied = {
                    let mut cat = lock::write(&self.inner.catalog);
                    cat.apply_revocation(rev)
                        .map(|a| (a, cat.take_rejected_revocations()))
                };
                let (affected, dropped) = match applied {
                    Ok(a) => a,
                    Err(e) => {
                        // Superseded by a newer one of its kind: nothing to keep.
                        if persisted {
                            self.inner.store.remove_revocation(&rev.hash())?;
                        }
                        return Err(e.into());
                    }
                };
                self.remove_revocations(&dropped);
                if !persisted {
                    writer.push(rev.clone());
                }
                (affected, persisted)
            }
            Standing::Unheld => {
                let (now, ttl) = (now_ms(), ttl_ms(&self.inner.opts));
                let created_at_ms = rev.value().created_at_ms;
                if created_at_ms.saturating_add(ttl) <= now
                    || created_at_ms > now.saturating_add(MAX_CLOCK_SKEW_MS)
                {
                    return Err(RevocationRejected::OutOfWindow { created_at_ms }.into());
                }
                let expired = {
                    let mut cat = lock::write(&self.inner.catalog);
                    cat.evict_unheld(now, ttl, 0);
                    cat.take_rejected_revocations()
                };
                self.remove_revocations(&expired);
                let max = self.inner.opts.max_pending_revocations;
                if self.read(|c| c.unheld_count()) >= max {
                    return Err(RevocationRejected::TooManyPending { max }.into());
                }
                self.inner.store.put_revocation(rev)?;
                let applied = {
                    let mut cat = lock::write(&self.inner.catalog);
                    cat.apply_revocation(rev)
                        .map(|a| (a, cat.take_rejected_revocations()))
                };
                match applied {
                    Ok((affected, dropped)) => {
                        self.remove_revocations(&dropped);
                        (affected, true)
                    }
                    Err(e) => {
                        self.inner.store.remove_revocation(&rev.hash())?;
                        return Err(e.into());
                    }
                }
            }
        };
        let withdrawn = self.withdraw_revoked(&affected);
        Ok(Revoked {
            ingested: Ingested::New,
            affected,
            withdrawn,
            persisted,
        })
    }

    /// Stores a revocation of a held spec; see [`Repo::insert_revocation`].
    /// False when the store failed (the caller queues it).
    fn persist_held(&self, rev: &SignedRevocation) -> bool {
        let store = &self.inner.store;
        let result = match store.put_revocation(rev) {
            Err(StoreError::Full { .. }) => {
                let victim = lock::write(&self.inner.catalog).evict_oldest_unheld();
                if let Some(v) = victim {
                    info!(evicted = %hex::encode(v), "revocation table full: evicted the oldest revocation of a spec not held");
                    self.remove_revocations(&[v]);
                }
                match store.put_revocation(rev) {
                    Err(StoreError::Full { .. }) => store.put_held_revocation(rev),
                    other => other,
                }
            }
            other => other,
        };
        match result {
            Ok(_) => true,
            Err(e) => {
                warn!(revocation = %hex::encode(rev.hash()), error = %e, "revocation of a held spec applied but not stored; will retry");
                false
            }
        }
    }

    /// Retries storing the revocations applied but not stored yet; returns
    /// how many are still waiting.
    pub fn retry_unpersisted(&self) -> usize {
        let mut writer = lock::lock(&self.inner.writer);
        self.flush_unpersisted(&mut writer);
        writer.len()
    }

    fn flush_unpersisted(&self, queue: &mut Vec<SignedRevocation>) {
        if queue.is_empty() {
            return;
        }
        queue.retain(|r| !self.persist_held(r));
        if queue.is_empty() {
            info!("every applied revocation is stored again");
        }
    }

    /// Deletes revocations the catalog dropped; a failure is logged (the
    /// row is then offered to peers until the next start removes it).
    fn remove_revocations(&self, hashes: &[[u8; 32]]) {
        for h in hashes {
            if let Err(e) = self.inner.store.remove_revocation(h) {
                warn!(revocation = %hex::encode(h), error = %e, "cannot delete a dropped revocation");
            }
        }
    }

    /// Drops consent for the specs among `affected` that are now revoked;
    /// returns the foreign specs no longer provided.
    fn withdraw_revoked(&self, affected: &[ToolId]) -> Vec<SignedSpec> {
        let revoked: Vec<SpecRef> = self.read(|cat| {
            affected
                .iter()
                .filter_map(|id| cat.get(id))
                .filter(|e| matches!(e.status, Status::Revoked { .. }))
                .map(|e| e.spec.clone())
                .collect()
        });
        let mut withdrawn = Vec::new();
        for r in revoked {
            let id = r.id();
            let in_memory = lock::write(&self.inner.provided).remove(&id);
            match self.inner.store.remove_provided(&id) {
                Ok(stored) if stored || in_memory => {
                    info!(tool = %id, "spec revoked; stopped providing it");
                    withdrawn.extend(decode(&r));
                }
                Ok(_) => {}
                Err(e) => warn!(tool = %id, error = %e, "cannot drop consent for a revoked spec"),
            }
        }
        withdrawn
    }

    /// Records consent to run the foreign spec `id`; false if it was given
    /// already. Refused unless `id` is stored, active and not this node's.
    pub fn add_provided(&self, id: &ToolId) -> Result<bool, RepoError> {
        let _writer = lock::lock(&self.inner.writer);
        let providable = self.read(|cat| match cat.get(id) {
            Some(e) if e.status.is_active() || matches!(e.status, Status::Deprecated { .. }) => {
                e.spec.value().publisher != self.inner.me
            }
            _ => false,
        });
        if !providable {
            return Err(RepoError::NotProvidable(*id));
        }
        let new = self.inner.store.put_provided(id)?;
        lock::write(&self.inner.provided).insert(*id);
        Ok(new)
    }

    /// Withdraws consent to run `id`; false if none was given.
    pub fn remove_provided(&self, id: &ToolId) -> Result<bool, RepoError> {
        let _writer = lock::lock(&self.inner.writer);
        let stored = self.inner.store.remove_provided(id)?;
        let in_memory = lock::write(&self.inner.provided).remove(id);
        Ok(stored || in_memory)
    }

    /// Whether this node runs `spec` for callers: its own specs, and others'
    /// its operator agreed to provide. Never a stranger's spec merely because
    /// its pinned image happens to be on this host.
    pub fn provides(&self, spec: &SignedSpec) -> bool {
        spec.value().publisher == self.inner.me || lock::read(&self.inner.provided).contains(&spec.id())
    }

    /// The foreign specs this node provides, sorted by id, with their specs when stored.
    pub fn provided(&self) -> Vec<(ToolId, Option<SignedSpec>)> {
        let mut ids: Vec<ToolId> = lock::read(&self.inner.provided).iter().copied().collect();
        ids.sort_by_key(|id| id.0);
        let refs: Vec<(ToolId, Option<SpecRef>)> = self.read(|cat| {
            ids.into_iter()
                .map(|id| (id, cat.get(&id).map(|e| e.spec.clone())))
                .collect()
        });
        refs.into_iter()
            .map(|(id, r)| (id, r.as_ref().and_then(decode)))
            .collect()
    }

    /// Every spec this node runs and announces: its own active ones and the
    /// provided ones that are not revoked.
    pub fn runnable(&self) -> Vec<SignedSpec> {
        let refs: Vec<SpecRef> = {
            let provided = lock::read(&self.inner.provided);
            self.read(|cat| {
                cat.iter()
                    .filter(|(id, e)| match &e.status {
                        Status::Revoked { .. } => false,
                        _ if e.spec.value().publisher == self.inner.me => e.status.is_active(),
                        _ => provided.contains(id),
                    })
                    .map(|(_, e)| e.spec.clone())
                    .collect()
            })
        };
        refs.iter().filter_map(decode).collect()
    }

    /// The envelope of a stored spec or revocation, as a wire object.
    pub fn object(&self, hash: &[u8; 32]) -> Result<Option<atr_protocol::wire::WireObject>, StoreError> {
        self.inner.store.get_object(hash)
    }

    /// Whether a spec or revocation with this hash is stored.
    pub fn has_object(&self, hash: &[u8; 32]) -> Result<bool, StoreError> {
        self.inner.store.has_object(hash)
    }

    /// Whether a spec or revocation with this hash is known: an in-memory
    /// lookup, the cheap check made before any decoding or verification.
    pub fn knows(&self, hash: &[u8; 32]) -> bool {
        self.read(|c| c.get(&ToolId(*hash)).is_some() || c.has_revocation(hash) || c.has_delegation(hash))
    }

    /// The store's caps and quotas.
    pub fn options(&self) -> StoreOptions {
        self.inner.opts
    }

    /// The anti-entropy bucket digests.
    pub fn sync_digests(&self) -> Result<Vec<[u8; 32]>, StoreError> {
        self.inner.store.sync_digests()
    }

    /// [`Store::sync_digests_for_peers`].
    pub fn sync_digests_for_peers(&self) -> Result<Vec<[u8; 32]>, StoreError> {
        self.inner.store.sync_digests_for_peers()
    }

    /// Hashes of the objects in `buckets`, at most `max`; true when cut.
    pub fn ids_in_buckets(&self, buckets: &[u8], max: usize) -> Result<(Vec<[u8; 32]>, bool), StoreError> {
        self.inner.store.ids_in_buckets(buckets, max)
    }

    /// Ids of the stored specs starting with `prefix` (at most `max`; true when more match).
    pub fn spec_ids_with_prefix(
        &self,
        prefix: &atr_protocol::id::ToolIdPrefix,
        max: usize,
    ) -> Result<(Vec<ToolId>, bool), StoreError> {
        self.inner.store.spec_ids_with_prefix(prefix, max)
    }

    /// Row counts of the store.
    pub fn counts(&self) -> Result<StoreCounts, StoreError> {
        self.inner.store.counts()
    }

    /// Keeps a receipt this node issued or received.
    pub fn put_receipt(&self, receipt: &SignedReceipt) -> Result<(), StoreError> {
        self.inner.store.put_receipt(receipt).map(|_| ())
    }

    /// Whether a receipt for this invocation is stored (replay check).
    pub fn has_receipt(&self, invocation: &atr_protocol::InvocationId) -> Result<bool, StoreError> {
        self.inner.store.has_receipt(invocation)
    }

    /// The newest receipts, newest first.
    pub fn receipts(&self, limit: usize) -> Result<Vec<SignedReceipt>, StoreError> {
        self.inner.store.receipts(limit)
    }

    /// A page of receipts ([`Store::receipts_page`]).
    pub fn receipts_page(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<(Vec<(u64, SignedReceipt)>, bool), StoreError> {
        self.inner.store.receipts_page(before, limit)
    }

    /// Remembers a peer's addresses.
    pub fn put_peer(&self, peer: &str, rec: &PeerRecord) -> Result<(), StoreError> {
        self.inner.store.put_peer(peer, rec)
    }

    /// Every remembered peer.
    pub fn peers(&self) -> Result<Vec<(String, PeerRecord)>, StoreError> {
        self.inner.store.peers()
    }
}

/// The pending time to live in milliseconds.
fn ttl_ms(o: &StoreOptions) -> u64 {
    u64::try_from(o.pending_revocation_ttl.as_millis()).unwrap_or(u64::MAX)
}

/// The whole spec behind a catalog entry; `None` (logged) if its envelope no
/// longer verifies, which only damaged memory or a damaged store row whose
/// body still hashes right (a broken signature) can cause.
fn decode(r: &SpecRef) -> Option<SignedSpec> {
    match r.signed() {
        Ok(s) => Some(s),
        Err(e) => {
            warn!(tool = %r.id(), error = %e, "a kept spec no longer verifies; leaving it out");
            None
        }
    }
}
