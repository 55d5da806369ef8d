//! The repository: the one owner of the store, the in-memory catalog and the
//! provided set, and the one write path for all three.
//!
//! [`Repo`] (cheap to clone) wraps the redb [`Store`], the [`Catalog`] built
//! from it and the set of foreign specs the operator agreed to run. Every
//! spec insert, revocation and change of consent goes through a `Repo`
//! method that updates the three together under the catalog's write lock,
//! so they never drift:
//!
//! - [`Repo::insert_spec`]: store, then index;
//! - [`Repo::insert_revocation`]: store, apply (undone if the catalog
//!   refuses it), and drop consent for the specs it revoked;
//! - [`Repo::add_provided`] / [`Repo::remove_provided`]: consent, durable
//!   first, for stored active foreign specs only.
//!
//! The catalog's write lock is the writer lock: writes are serialized, reads
//! ([`Repo::read`]) run concurrently and see either the state before a write
//! or after it. Budgets per publisher and batched transactions belong here.
//!
//! Methods are blocking (redb); async callers use [`Repo::blocking`].

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use atr_protocol::{PublicKey, SignedReceipt, SignedRevocation, SignedSpec, ToolId};
use tracing::{info, warn};

use crate::catalog::{Catalog, RevocationRejected, Status};
use crate::lock;
use crate::store::{PeerRecord, Store, StoreCounts, StoreError};

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
    /// Consent asked for a spec that is not stored, not active or this node's own.
    #[error("{0} is not a stored, active spec of another publisher")]
    NotProvidable(ToolId),
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
}

impl Repo {
    /// Builds the catalog and the provided set from `store` (blocking).
    ///
    /// Stored revocations not signed by their target's publisher are deleted;
    /// consent for specs revoked since it was given is dropped.
    pub fn load(store: Store, me: PublicKey) -> Result<Self, StoreError> {
        let (specs, revocations) = store.load_all()?;
        let mut catalog = Catalog::default();
        let (n_specs, n_revs) = (specs.len(), revocations.len());
        for s in specs {
            catalog.insert_spec(s);
        }
        for r in &revocations {
            let _ = catalog.apply_revocation(r);
        }
        for forged in catalog.take_rejected_revocations() {
            warn!(revocation = %hex::encode(forged), "stored revocation not signed by its target's publisher; removed");
            store.remove_revocation(&forged)?;
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
        info!(
            specs = n_specs,
            revocations = n_revs,
            provided = provided.len(),
            "catalog loaded"
        );
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                catalog: RwLock::new(catalog),
                provided: RwLock::new(provided),
                me,
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

    /// A stored spec and its status.
    pub fn spec(&self, id: &ToolId) -> Option<(SignedSpec, Status)> {
        self.read(|c| c.get(id).map(|e| (e.spec.clone(), e.status)))
    }

    /// Stores and indexes a verified spec. A pending revocation that the
    /// spec proves forged (signed by someone else) is deleted.
    pub fn insert_spec(&self, spec: &SignedSpec) -> Result<Ingested, RepoError> {
        let mut cat = lock::write(&self.inner.catalog);
        if cat.get(&spec.id()).is_some() {
            return Ok(Ingested::Known);
        }
        self.inner.store.put_spec(spec)?;
        cat.insert_spec(spec.clone());
        for forged in cat.take_rejected_revocations() {
            warn!(revocation = %hex::encode(forged), "pending revocation was not signed by the publisher; removed");
            self.inner.store.remove_revocation(&forged)?;
        }
        Ok(Ingested::New)
    }

    /// Stores and applies a verified revocation, and drops consent for the
    /// specs it revoked. Stored first, so the node never acts on a
    /// revocation it did not keep; deleted again if the catalog refuses it.
    pub fn insert_revocation(&self, rev: &SignedRevocation) -> Result<Revoked, RepoError> {
        let mut cat = lock::write(&self.inner.catalog);
        if self.inner.store.has_object(&rev.hash())? {
            return Ok(Revoked {
                ingested: Ingested::Known,
                affected: Vec::new(),
                withdrawn: Vec::new(),
            });
        }
        self.inner.store.put_revocation(rev)?;
        let affected = match cat.apply_revocation(rev) {
            Ok(a) => a,
            Err(e) => {
                self.inner.store.remove_revocation(&rev.hash())?;
                return Err(e.into());
            }
        };
        let mut withdrawn = Vec::new();
        let mut provided = lock::write(&self.inner.provided);
        for id in &affected {
            let Some(e) = cat.get(id) else { continue };
            if !matches!(e.status, Status::Revoked { .. }) {
                continue;
            }
            let in_memory = provided.remove(id);
            match self.inner.store.remove_provided(id) {
                Ok(stored) if stored || in_memory => {
                    info!(tool = %id, "spec revoked; stopped providing it");
                    withdrawn.push(e.spec.clone());
                }
                Ok(_) => {}
                Err(e) => warn!(tool = %id, error = %e, "cannot drop consent for a revoked spec"),
            }
        }
        Ok(Revoked {
            ingested: Ingested::New,
            affected,
            withdrawn,
        })
    }

    /// Records consent to run the foreign spec `id`; false if it was given
    /// already. Refused unless `id` is stored, active and not this node's.
    pub fn add_provided(&self, id: &ToolId) -> Result<bool, RepoError> {
        let cat = lock::write(&self.inner.catalog);
        match cat.get(id) {
            Some(e) if e.status.is_active() || matches!(e.status, Status::Deprecated { .. }) => {
                if e.spec.value().publisher == self.inner.me {
                    return Err(RepoError::NotProvidable(*id));
                }
            }
            _ => return Err(RepoError::NotProvidable(*id)),
        }
        let new = self.inner.store.put_provided(id)?;
        lock::write(&self.inner.provided).insert(*id);
        Ok(new)
    }

    /// Withdraws consent to run `id`; false if none was given.
    pub fn remove_provided(&self, id: &ToolId) -> Result<bool, RepoError> {
        let _writer = lock::write(&self.inner.catalog);
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
        self.read(|cat| {
            ids.into_iter()
                .map(|id| (id, cat.get(&id).map(|e| e.spec.clone())))
                .collect()
        })
    }

    /// Every spec this node runs and announces: its own active ones and the
    /// provided ones that are not revoked.
    pub fn runnable(&self) -> Vec<SignedSpec> {
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
    }

    /// The envelope of a stored spec or revocation, as a wire object.
    pub fn object(&self, hash: &[u8; 32]) -> Result<Option<atr_protocol::wire::WireObject>, StoreError> {
        self.inner.store.get_object(hash)
    }

    /// Whether a spec or revocation with this hash is stored.
    pub fn has_object(&self, hash: &[u8; 32]) -> Result<bool, StoreError> {
        self.inner.store.has_object(hash)
    }

    /// The anti-entropy bucket digests.
    pub fn sync_digests(&self) -> Result<Vec<[u8; 32]>, StoreError> {
        self.inner.store.sync_digests()
    }

    /// Hashes of the objects in `buckets`, at most `max`; true when cut.
    pub fn ids_in_buckets(&self, buckets: &[u8], max: usize) -> Result<(Vec<[u8; 32]>, bool), StoreError> {
        self.inner.store.ids_in_buckets(buckets, max)
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

    /// Remembers a peer's addresses.
    pub fn put_peer(&self, peer: &str, rec: &PeerRecord) -> Result<(), StoreError> {
        self.inner.store.put_peer(peer, rec)
    }

    /// Every remembered peer.
    pub fn peers(&self) -> Result<Vec<(String, PeerRecord)>, StoreError> {
        self.inner.store.peers()
    }
}
