//! The node's persistent store, on redb.
//!
//! [`Store`] keeps every verified object the node knows: signed tool specs,
//! revocations, the receipts of invocations, and the addresses of peers it
//! has met. It is opened with [`Store::open`] (or [`Store::open_in_memory`]
//! in tests) and sized by [`StoreOptions`]; writes answer [`Put`] and fail
//! with [`StoreError`].
//!
//! # Tables
//!
//! | table | key | value |
//! |---|---|---|
//! | specs | spec id | signed envelope |
//! | revocations | revocation hash | signed envelope |
//! | receipts | invocation id | signed envelope |
//! | receipt log | local sequence number | invocation id |
//! | sync digests | bucket (first hash byte) | blake3 of the bucket's sorted hashes |
//! | peers, peers by last seen | peer id, `(last_seen_ms, peer id)` | JSON [`PeerRecord`], nothing |
//! | provided | spec id | nothing (operator consent) |
//! | trusted | publisher key | label (operator trust, `atr trust add`) |
//!
//! Each write is one transaction: an object and its sync digest are
//! committed together or not at all, so a crash never leaves a digest that
//! disagrees with the tables.
//!
//! # No index tables
//!
//! Queries are answered by [`crate::catalog::Catalog`], which is rebuilt at
//! start from the specs table ([`Store::load_spec_refs`]). The rebuild is
//! O(n): each envelope's body is hashed and its summary fields decoded; the
//! signature is not checked again (it was verified on write), and schemas
//! and examples stay encoded. Revocations ([`Store::load_revocations`],
//! at most 2 KiB each) are re-verified. Stores
//! written by earlier builds also hold tag, name and publisher index tables
//! that nothing read; [`Store::open`] deletes them (the layout version is
//! unchanged: no table this build reads changed).
//!
//! # Limits
//!
//! Specs, revocations and receipts are capped by [`StoreOptions`]. At a cap
//! new objects are refused with [`StoreError::Full`]: a local publish fails
//! with that clear error, and objects from peers are dropped (the caller
//! counts them). The byte cap on specs and the per-publisher quotas are
//! enforced by [`crate::repo::Repo`], which keeps the tallies. A revocation
//! of a held spec by its publisher may be stored past the revocation cap
//! ([`Store::put_held_revocation`]) so that it is never lost. Stored data is
//! never evicted silently (the repository deletes expired or superseded
//! revocations targeting nothing held, and logs it). The peer table is the
//! exception: it holds at most [`MAX_PEERS`] rows and a new peer replaces the
//! one seen longest ago, because stale addresses are worth less than fresh
//! ones and refusing new peers would freeze the table on dead addresses.
//!
//! Counts come from redb's table lengths, which redb keeps in each table's
//! root and reads in O(1); unlike a separate counter they cannot drift from
//! the data.
//!
//! # Blocking
//!
//! Every method blocks on disk I/O (commits fsync). Call them from
//! `spawn_blocking` or a dedicated writer thread, never on the async runtime.
//!
//! Only verified objects can be stored: the put methods take
//! [`atr_protocol::Signed`] values, which exist only after verification.
//! Objects are served as stored ([`Store::get_object`]): reads check the
//! body's hash against the key (cheap, catches damage) but do not decode or
//! verify signatures again, so damaged bytes on disk surface as
//! [`StoreError::Corrupt`] (or are skipped with a warning when listing),
//! never as a panic. A peer receiving an object verifies it in any case.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use atr_protocol::id::ByteBuf;
use atr_protocol::signed::SignedBody;
use atr_protocol::wire::WireObject;
use atr_protocol::{Signed, SignedDelegation, SignedReceipt, SignedRevocation, SignedSpec, ToolId};
use redb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata, WriteTransaction,
};
use serde::Serialize;
use tracing::warn;

mod peers;
mod receipt_page;
mod sync;
mod tables;

pub use peers::{MAX_PEER_ADDR_LEN, MAX_PEER_ADDRS, MAX_PEER_ID_LEN, MAX_PEERS, PeerRecord};

use tables::{
    DELEGATIONS, META, META_RECEIPT_SEQ, META_SCHEMA, RECEIPT_LOG, RECEIPTS, REVOCATIONS, SCHEMA_VERSION,
    SPECS,
};

/// Default cap on stored specs: far above any one network's catalog today,
/// and about 200 MB of envelopes at the typical 2 KiB spec.
pub const DEFAULT_MAX_SPECS: usize = 100_000;
/// Default cap on stored revocations (each at most 2 KiB).
pub const DEFAULT_MAX_REVOCATIONS: usize = 100_000;
/// Default cap on stored receipts (each at most 2 KiB).
pub const DEFAULT_MAX_RECEIPTS: usize = 100_000;
/// Default cap on the envelope bytes of all stored specs (512 MiB): about
/// 250 000 typical 2 KiB specs, or 8 000 at the 64 KiB spec cap, so the
/// object cap binds for honest catalogs and this one for padded specs.
pub const DEFAULT_MAX_SPEC_BYTES: u64 = 512 * 1024 * 1024;
/// Default cap on revocations that target no held spec (pending by-id ones
/// and by-name ones matching nothing held): half the revocation cap, so the
/// other half is always free for revocations of held specs.
pub const DEFAULT_MAX_PENDING_REVOCATIONS: usize = crate::catalog::MAX_PENDING_REVOCATIONS;
/// Default time a revocation targeting nothing held is kept (7 days): long
/// enough for a spec gossiped after its revocation to arrive, short enough
/// that a flood of junk drains on its own.
pub const DEFAULT_PENDING_REVOCATION_TTL: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);
/// Default number of specs one untrusted publisher may have stored here.
/// A real publisher has tens of tools with a few versions each.
pub const DEFAULT_PUBLISHER_MAX_SPECS: u64 = 1_000;
/// Default envelope bytes one untrusted publisher may have stored here
/// (16 MiB: 1 000 specs of 16 KiB, or 250 at the 64 KiB cap).
pub const DEFAULT_PUBLISHER_MAX_BYTES: u64 = 16 * 1024 * 1024;

const MAX_ID: [u8; 32] = [0xff; 32];
/// Most foreign specs one node agrees to provide (rows of the consent table).
pub const MAX_PROVIDED: usize = 10_000;

/// Why a store operation failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Another process holds the database file.
    #[error(
        "the store {} is already open in another process; is another atrd running with the same data directory?",
        path.display()
    )]
    AlreadyOpen {
        /// The database file.
        path: PathBuf,
    },
    /// The database file could not be opened.
    #[error(
        "cannot open the store {}: {detail}. If the file is damaged, stop the node and move it aside; \
         the node re-syncs specs from its peers",
        path.display()
    )]
    Open {
        /// The database file.
        path: PathBuf,
        /// What redb reported.
        detail: String,
    },
    /// The file was written with a store layout this build does not read.
    #[error(
        "the store uses layout version {found} but this atrd reads version {supported}; \
         run a matching atrd or point it at another data directory"
    )]
    Schema {
        /// Version in the file.
        found: u64,
        /// Version this build reads.
        supported: u64,
    },
    /// A database operation failed (I/O, disk full, closed database).
    #[error(
        "store database error: {0}. Check free disk space and the data directory's permissions; \
         if it persists, stop the node and move the store file aside"
    )]
    Database(String),
    /// A cap of [`StoreOptions`] is reached; nothing was written.
    #[error(
        "the store holds {count} {what}, its limit of {max}; new {what} are refused until the limit is raised"
    )]
    Full {
        /// `specs`, `revocations` or `receipts`.
        what: &'static str,
        /// Rows stored.
        count: u64,
        /// The cap.
        max: u64,
    },
    /// Stored bytes no longer decode or verify.
    #[error("store table `{table}` holds corrupt data: {detail}")]
    Corrupt {
        /// The table (`database` when redb itself found the damage).
        table: &'static str,
        /// What is wrong, naming the row.
        detail: String,
    },
    /// A peer row breaks the peer table's limits.
    #[error("invalid peer record: {0}")]
    InvalidPeer(String),
}

fn from_storage(e: redb::StorageError) -> StoreError {
    match e {
        redb::StorageError::Corrupted(detail) => StoreError::Corrupt {
            table: "database",
            detail,
        },
        other => StoreError::Database(other.to_string()),
    }
}

impl From<redb::StorageError> for StoreError {
    fn from(e: redb::StorageError) -> Self {
        from_storage(e)
    }
}

impl From<redb::TransactionError> for StoreError {
    fn from(e: redb::TransactionError) -> Self {
        match e {
            redb::TransactionError::Storage(s) => from_storage(s),
            other => Self::Database(other.to_string()),
        }
    }
}

impl From<redb::TableError> for StoreError {
    fn from(e: redb::TableError) -> Self {
        match e {
            redb::TableError::Storage(s) => from_storage(s),
            other => Self::Database(other.to_string()),
        }
    }
}

impl From<redb::CommitError> for StoreError {
    fn from(e: redb::CommitError) -> Self {
        match e {
            redb::CommitError::Storage(s) => from_storage(s),
            other => Self::Database(other.to_string()),
        }
    }
}

/// File name of the redb database inside the data dir.
pub const STORE_FILE: &str = "atr.redb";

/// Sizes of the store and the quotas of the repository. The config's
/// `[store]` section converts into this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// Most specs stored; defaults to [`DEFAULT_MAX_SPECS`].
    pub max_specs: usize,
    /// Most envelope bytes of specs stored; defaults to [`DEFAULT_MAX_SPEC_BYTES`].
    pub max_spec_bytes: u64,
    /// Most revocations stored; defaults to [`DEFAULT_MAX_REVOCATIONS`].
    /// Revocations of held specs may go past it when nothing can be evicted.
    pub max_revocations: usize,
    /// Most revocations targeting no held spec; defaults to
    /// [`DEFAULT_MAX_PENDING_REVOCATIONS`]. At most half of `max_revocations`.
    pub max_pending_revocations: usize,
    /// How long a revocation targeting no held spec is kept; defaults to
    /// [`DEFAULT_PENDING_REVOCATION_TTL`].
    pub pending_revocation_ttl: std::time::Duration,
    /// Most receipts stored; defaults to [`DEFAULT_MAX_RECEIPTS`].
    pub max_receipts: usize,
    /// Most specs of one untrusted publisher; defaults to [`DEFAULT_PUBLISHER_MAX_SPECS`].
    pub publisher_max_specs: u64,
    /// Most envelope bytes of one untrusted publisher's specs; defaults to
    /// [`DEFAULT_PUBLISHER_MAX_BYTES`].
    pub publisher_max_bytes: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_specs: DEFAULT_MAX_SPECS,
            max_spec_bytes: DEFAULT_MAX_SPEC_BYTES,
            max_revocations: DEFAULT_MAX_REVOCATIONS,
            max_pending_revocations: DEFAULT_MAX_PENDING_REVOCATIONS,
            pending_revocation_ttl: DEFAULT_PENDING_REVOCATION_TTL,
            max_receipts: DEFAULT_MAX_RECEIPTS,
            publisher_max_specs: DEFAULT_PUBLISHER_MAX_SPECS,
            publisher_max_bytes: DEFAULT_PUBLISHER_MAX_BYTES,
        }
    }
}

/// redb's page cache (its default is 1 GiB): reads at start-up touch every
/// spec, and the catalog already keeps what it needs, so a larger cache
/// would only grow the node's memory with the store.
pub const CACHE_BYTES: usize = 32 * 1024 * 1024;

/// What a put did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    /// The object is new and now stored.
    Inserted,
    /// The object was already stored; nothing changed.
    Existing,
}

/// Row counts of the store, for status and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StoreCounts {
    /// Specs stored.
    pub specs: u64,
    /// Revocations stored.
    pub revocations: u64,
    /// Delegations stored.
    pub delegations: u64,
    /// Receipts stored.
    pub receipts: u64,
    /// Known peers.
    pub peers: u64,
    /// Corrupt rows skipped by listing reads since the store was opened.
    pub corrupt_skipped: u64,
}

/// The persistent store. Cheap to clone: clones share one database.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
    opts: StoreOptions,
    /// [`MAX_PEERS`]; a field so tests can shrink it.
    max_peers: u64,
    corrupt_skipped: Arc<AtomicU64>,
    /// The sync digests ([`sync`]), shared by clones.
    digests: Arc<std::sync::Mutex<sync::Digests>>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the database file at `path`, creating it (but not its directory)
    /// if missing.
    pub fn open(path: &Path, opts: StoreOptions) -> Result<Self, StoreError> {
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => StoreError::AlreadyOpen { path: path.into() },
                other => StoreError::Open {
                    path: path.into(),
                    detail: other.to_string(),
                },
            })?;
        Self::init(db, opts)
    }

    /// Opens a fresh store that lives in memory only (tests, ephemeral nodes).
    pub fn open_in_memory(opts: StoreOptions) -> Result<Self, StoreError> {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(|e| StoreError::Open {
                path: PathBuf::from(":memory:"),
                detail: e.to_string(),
            })?;
        Self::init(db, opts)
    }

    /// Creates every table and checks the layout version, so that reads
    /// never meet a missing table.
    fn init(db: Database, opts: StoreOptions) -> Result<Self, StoreError> {
        let txn = db.begin_write()?;
        {
            txn.open_table(SPECS)?;
            txn.open_table(REVOCATIONS)?;
            txn.open_table(DELEGATIONS)?;
            txn.open_table(RECEIPTS)?;
            txn.open_table(RECEIPT_LOG)?;
            txn.open_table(tables::PEERS)?;
            txn.open_table(tables::PEERS_BY_SEEN)?;
            for legacy in tables::LEGACY_INDEXES {
                txn.delete_table(legacy)?;
            }
            // Digests live in memory now (`sync.rs`); the table of
            // earlier builds is dropped.
            txn.delete_table(tables::DIGESTS)?;
            txn.open_table(tables::PROVIDED)?;
            txn.open_table(tables::TRUSTED)?;
            let mut meta = txn.open_table(META)?;
            let found = meta.get(META_SCHEMA)?.map(|g| g.value());
            match found {
                None => {
                    meta.insert(META_SCHEMA, SCHEMA_VERSION)?;
                }
                Some(v) if v == SCHEMA_VERSION => {}
                Some(found) => {
                    return Err(StoreError::Schema {
                        found,
                        supported: SCHEMA_VERSION,
                    });
                }
            }
        }
        txn.commit()?;
        Ok(Self {
            db: Arc::new(db),
            opts,
            max_peers: MAX_PEERS,
            corrupt_skipped: Arc::new(AtomicU64::new(0)),
            digests: Arc::new(std::sync::Mutex::new(sync::Digests::new())),
        })
    }

    /// The caps this store was opened with.
    pub fn options(&self) -> StoreOptions {
        self.opts
    }

    fn read(&self) -> Result<ReadTransaction, StoreError> {
        Ok(self.db.begin_read()?)
    }

    /// Runs `f` in one write transaction. It commits when `f` returns
    /// `Ok((true, _))` and aborts when `f` returns `Ok((false, _))` or fails.
    fn write<T>(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<(bool, T), StoreError>,
    ) -> Result<T, StoreError> {
        let txn = self.db.begin_write()?;
        let (commit, out) = f(&txn)?;
        if commit {
            txn.commit()?;
        } else {
            txn.abort()?;
        }
        Ok(out)
    }

    /// [`Store::write`] for writes that add or remove synced objects: the
    /// buckets `f` notes in its [`sync::Touched`] are marked stale once the
    /// transaction committed.
    fn write_synced<T>(
        &self,
        f: impl FnOnce(&WriteTransaction, &mut sync::Touched) -> Result<(bool, T), StoreError>,
    ) -> Result<T, StoreError> {
        let mut touched = sync::Touched::new();
        let out = self.write(|txn| f(txn, &mut touched))?;
        self.mark_stale(&touched);
        Ok(out)
    }

    /// Notes a corrupt row skipped by a listing read.
    fn skip(&self, err: &StoreError) {
        self.corrupt_skipped.fetch_add(1, Ordering::Relaxed);
        warn!(error = %err, "skipping a corrupt row of the store");
    }

    /// Stores a verified spec with its sync digest, in one
    /// transaction. Refuses with [`StoreError::Full`] at
    /// [`StoreOptions::max_specs`]; a spec already stored is
    /// [`Put::Existing`] even at the cap.
    pub fn put_spec(&self, spec: &SignedSpec) -> Result<Put, StoreError> {
        self.put_specs(std::slice::from_ref(spec))?
            .pop()
            .unwrap_or(Ok(Put::Existing))
    }

    /// [`Store::put_spec`] for many specs in one transaction (one commit):
    /// each spec's outcome, or [`StoreError::Full`] for those past the cap.
    /// Other errors abort the whole batch. The sync digest of each bucket a
    /// batch touches is recomputed once, after its inserts.
    pub fn put_specs(&self, specs: &[SignedSpec]) -> Result<Vec<Result<Put, StoreError>>, StoreError> {
        self.write_synced(|txn, touched| {
            let mut out = Vec::with_capacity(specs.len());
            let mut t = txn.open_table(SPECS)?;
            let max = self.opts.max_specs as u64;
            let mut count = t.len()?;
            for spec in specs {
                let hash = spec.hash();
                if t.get(&hash)?.is_some() {
                    out.push(Ok(Put::Existing));
                    continue;
                }
                if count >= max {
                    out.push(Err(StoreError::Full {
                        what: "specs",
                        count,
                        max,
                    }));
                    continue;
                }
                t.insert(&hash, spec.to_bytes().as_slice())?;
                count += 1;
                touched.add(&hash);
                out.push(Ok(Put::Inserted));
            }
            let commit = out.iter().any(|r| matches!(r, Ok(Put::Inserted)));
            Ok((commit, out))
        })
    }

    /// Stores a verified revocation under its hash, with its sync digest.
    /// Store only revocations the catalog accepted
    /// ([`crate::catalog::Catalog::apply_revocation`]), including pending
    /// ones, so they survive a restart. Refuses with [`StoreError::Full`] at
    /// [`StoreOptions::max_revocations`].
    pub fn put_revocation(&self, rev: &SignedRevocation) -> Result<Put, StoreError> {
        self.put_revocation_capped(rev, self.opts.max_revocations as u64)
    }

    /// Stores a revocation of a held spec by its publisher, past
    /// [`StoreOptions::max_revocations`] if need be. The caller first evicts
    /// revocations targeting nothing held; this is the last resort that
    /// keeps such a revocation durable. It is bounded: at most two stored
    /// by-name revocations per publisher and name, and by-id ones only of
    /// held specs.
    pub fn put_held_revocation(&self, rev: &SignedRevocation) -> Result<Put, StoreError> {
        self.put_revocation_capped(rev, u64::MAX)
    }

    fn put_revocation_capped(&self, rev: &SignedRevocation, max: u64) -> Result<Put, StoreError> {
        self.put_synced(REVOCATIONS, "revocations", rev.hash(), &rev.to_bytes(), max)
    }

    /// [`put_synced_in`] in a transaction of its own.
    fn put_synced(
        &self,
        def: redb::TableDefinition<&[u8; 32], &[u8]>,
        what: &'static str,
        hash: [u8; 32],
        envelope: &[u8],
        max: u64,
    ) -> Result<Put, StoreError> {
        self.write_synced(|txn, touched| {
            let put = put_synced_in(txn, touched, def, what, hash, envelope, max)?;
            Ok((put == Put::Inserted, put))
        })
    }

    /// Deletes a stored revocation, e.g. a pending one the catalog rejected
    /// once its target arrived signed by someone else
    /// ([`crate::catalog::Catalog::take_rejected_revocations`]), so it is not
    /// offered to peers. Returns whether it was stored.
    pub fn remove_revocation(&self, hash: &[u8; 32]) -> Result<bool, StoreError> {
        self.write_synced(|txn, touched| {
            let removed = txn.open_table(REVOCATIONS)?.remove(hash)?.is_some();
            if removed {
                touched.add(hash);
            }
            Ok((removed, removed))
        })
    }

    /// Stores a verified receipt under its invocation id. The first receipt
    /// of an invocation id wins; a second one is [`Put::Existing`]. Refuses
    /// with [`StoreError::Full`] at [`StoreOptions::max_receipts`].
    pub fn put_receipt(&self, receipt: &SignedReceipt) -> Result<Put, StoreError> {
        let invocation = receipt.value().invocation.0;
        let max = self.opts.max_receipts as u64;
        self.write(|txn| {
            let mut receipts = txn.open_table(RECEIPTS)?;
            if receipts.get(&invocation)?.is_some() {
                return Ok((false, Put::Existing));
            }
            let count = receipts.len()?;
            if count >= max {
                return Err(StoreError::Full {
                    what: "receipts",
                    count,
                    max,
                });
            }
            receipts.insert(&invocation, receipt.to_bytes().as_slice())?;
            let mut meta = txn.open_table(META)?;
            let seq = meta.get(META_RECEIPT_SEQ)?.map_or(0, |g| g.value()) + 1;
            meta.insert(META_RECEIPT_SEQ, seq)?;
            txn.open_table(RECEIPT_LOG)?.insert(seq, &invocation)?;
            Ok((true, Put::Inserted))
        })
    }

    /// Whether a receipt for this invocation id is stored (replay check).
    pub fn has_receipt(&self, invocation: &atr_protocol::InvocationId) -> Result<bool, StoreError> {
        let txn = self.read()?;
        Ok(txn.open_table(RECEIPTS)?.get(&invocation.0)?.is_some())
    }

    /// Up to `limit` receipts, the most recently stored first. Corrupt rows
    /// are skipped with a warning.
    pub fn receipts(&self, limit: usize) -> Result<Vec<SignedReceipt>, StoreError> {
        let txn = self.read()?;
        let log = txn.open_table(RECEIPT_LOG)?;
        let receipts = txn.open_table(RECEIPTS)?;
        let mut out = Vec::new();
        for row in log.iter()?.rev() {
            if out.len() >= limit {
                break;
            }
            let (_, invocation) = row?;
            let invocation = *invocation.value();
            let Some(bytes) = receipts.get(&invocation)? else {
                continue;
            };
            match decode_receipt(&invocation, bytes.value()) {
                Ok(r) => out.push(r),
                Err(e) => self.skip(&e),
            }
        }
        Ok(out)
    }

    /// The spec with this id, re-verified. Damaged bytes are
    /// [`StoreError::Corrupt`].
    pub fn get_spec(&self, id: &ToolId) -> Result<Option<SignedSpec>, StoreError> {
        let txn = self.read()?;
        let specs = txn.open_table(SPECS)?;
        let Some(bytes) = specs.get(id.as_bytes())? else {
            return Ok(None);
        };
        decode_signed("specs", id.as_bytes(), bytes.value()).map(Some)
    }

    /// Ids of the stored specs that start with `prefix`, in id order, at most `max`; true when
    /// more match. One range scan of the id-keyed specs table (a prefix is one contiguous
    /// range of ids, [`ToolIdPrefix::range`]), so it costs the same with a million specs.
    pub fn spec_ids_with_prefix(
        &self,
        prefix: &atr_protocol::id::ToolIdPrefix,
        max: usize,
    ) -> Result<(Vec<ToolId>, bool), StoreError> {
        let (lo, hi) = prefix.range();
        let txn = self.read()?;
        let specs = txn.open_table(SPECS)?;
        let mut out = Vec::new();
        for row in specs.range::<&[u8; 32]>(lo.as_bytes()..=hi.as_bytes())? {
            let (key, _) = row?;
            if out.len() >= max {
                return Ok((out, true));
            }
            out.push(ToolId(*key.value()));
        }
        Ok((out, false))
    }

    /// The spec or revocation with this hash as a wire object, for the fetch
    /// protocol, served as stored: it was verified when it was written, so
    /// only its body's hash is checked again (blake3, no decoding, no
    /// signature), and damaged bytes are [`StoreError::Corrupt`] rather
    /// than sent to a peer. A receiver verifies everything anyway.
    pub fn get_object(&self, hash: &[u8; 32]) -> Result<Option<WireObject>, StoreError> {
        let txn = self.read()?;
        if let Some(bytes) = txn.open_table(SPECS)?.get(hash)? {
            check_stored_hash("specs", hash, bytes.value())?;
            return Ok(Some(WireObject::Spec(ByteBuf(bytes.value().to_vec()))));
        }
        if let Some(bytes) = txn.open_table(REVOCATIONS)?.get(hash)? {
            check_stored_hash("revocations", hash, bytes.value())?;
            return Ok(Some(WireObject::Revocation(ByteBuf(bytes.value().to_vec()))));
        }
        if let Some(bytes) = txn.open_table(DELEGATIONS)?.get(hash)? {
            check_stored_hash("delegations", hash, bytes.value())?;
            return Ok(Some(WireObject::Delegation(ByteBuf(bytes.value().to_vec()))));
        }
        Ok(None)
    }

    /// Every stored spec in the catalog's form, for rebuilding the catalog at
    /// start: the summary fields are decoded and the body's hash checked,
    /// the signature is not (it was verified on write). Corrupt rows are
    /// skipped with a warning and counted in [`StoreCounts::corrupt_skipped`].
    pub fn load_spec_refs(&self) -> Result<Vec<crate::catalog::SpecRef>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(SPECS)?;
        let mut out = Vec::with_capacity(usize::try_from(table.len()?).unwrap_or(0));
        for row in table.iter()? {
            let (key, bytes) = row?;
            let id = *key.value();
            match crate::catalog::SpecRef::from_stored(id, bytes.value().to_vec()) {
                Ok(s) => out.push(s),
                Err(e) => self.skip(&StoreError::Corrupt {
                    table: "specs",
                    detail: format!("row {}: {e}", ToolId(id)),
                }),
            }
        }
        Ok(out)
    }

    /// Every stored revocation, re-verified (each is at most 2 KiB), for
    /// rebuilding the catalog at start. Corrupt rows are skipped.
    pub fn load_revocations(&self) -> Result<Vec<SignedRevocation>, StoreError> {
        let txn = self.read()?;
        self.load_table(&txn, REVOCATIONS, "revocations")
    }

    /// Whether a spec or revocation with this hash is stored.
    pub fn has_object(&self, hash: &[u8; 32]) -> Result<bool, StoreError> {
        let txn = self.read()?;
        Ok(txn.open_table(SPECS)?.get(hash)?.is_some()
            || txn.open_table(REVOCATIONS)?.get(hash)?.is_some()
            || txn.open_table(DELEGATIONS)?.get(hash)?.is_some())
    }

    /// Every stored spec and revocation, re-verified, for rebuilding the
    /// catalog at start. Corrupt rows are skipped with a warning and counted
    /// in [`StoreCounts::corrupt_skipped`].
    pub fn load_all(&self) -> Result<(Vec<SignedSpec>, Vec<SignedRevocation>), StoreError> {
        let before = self.corrupt_skipped.load(Ordering::Relaxed);
        let txn = self.read()?;
        let specs = self.load_table(&txn, SPECS, "specs")?;
        let revocations = self.load_table(&txn, REVOCATIONS, "revocations")?;
        let skipped = self.corrupt_skipped.load(Ordering::Relaxed) - before;
        if skipped > 0 {
            warn!(
                skipped,
                "the store holds corrupt rows that were skipped; the node re-fetches the objects from peers"
            );
        }
        Ok((specs, revocations))
    }

    fn load_table<T: SignedBody>(
        &self,
        txn: &ReadTransaction,
        def: redb::TableDefinition<&[u8; 32], &[u8]>,
        name: &'static str,
    ) -> Result<Vec<Signed<T>>, StoreError> {
        let table = txn.open_table(def)?;
        let mut out = Vec::with_capacity(usize::try_from(table.len()?).unwrap_or(0));
        for row in table.iter()? {
            let (key, bytes) = row?;
            match decode_signed(name, key.value(), bytes.value()) {
                Ok(v) => out.push(v),
                Err(e) => self.skip(&e),
            }
        }
        Ok(out)
    }

    /// Stores a delegation the catalog accepted, with its sync digest.
    /// Refuses with [`StoreError::Full`] at `max`.
    pub fn put_delegation(&self, d: &SignedDelegation, max: u64) -> Result<Put, StoreError> {
        self.put_synced(DELEGATIONS, "delegations", d.hash(), &d.to_bytes(), max)
    }

    /// Deletes delegations (expired, or no longer accepted); returns how many were stored.
    pub fn remove_delegations(&self, hashes: &[[u8; 32]]) -> Result<usize, StoreError> {
        self.write_synced(|txn, touched| {
            let mut removed = Vec::new();
            {
                let mut t = txn.open_table(DELEGATIONS)?;
                for h in hashes {
                    if t.remove(h)?.is_some() {
                        removed.push(*h);
                    }
                }
            }
            for h in &removed {
                touched.add(h);
            }
            Ok((!removed.is_empty(), removed.len()))
        })
    }

    /// Every stored delegation, verified; corrupt rows are skipped and counted.
    pub fn load_delegations(&self) -> Result<Vec<SignedDelegation>, StoreError> {
        let txn = self.read()?;
        self.load_table(&txn, DELEGATIONS, "delegations")
    }

    /// Records consent to run another publisher's spec. Refuses with
    /// [`StoreError::Full`] at [`MAX_PROVIDED`] entries. Returns whether it
    /// was new.
    pub fn put_provided(&self, id: &ToolId) -> Result<bool, StoreError> {
        self.write(|txn| {
            let mut t = txn.open_table(tables::PROVIDED)?;
            if t.get(id.as_bytes())?.is_some() {
                return Ok((false, false));
            }
            let count = t.len()?;
            let max = MAX_PROVIDED as u64;
            if count >= max {
                return Err(StoreError::Full {
                    what: "provided specs",
                    count,
                    max,
                });
            }
            t.insert(id.as_bytes(), ())?;
            Ok((true, true))
        })
    }

    /// Withdraws consent to run a spec. Returns whether it was recorded.
    pub fn remove_provided(&self, id: &ToolId) -> Result<bool, StoreError> {
        self.write(|txn| {
            let removed = txn.open_table(tables::PROVIDED)?.remove(id.as_bytes())?.is_some();
            Ok((removed, removed))
        })
    }

    /// Ids of the specs this node agreed to provide.
    pub fn provided_ids(&self) -> Result<Vec<ToolId>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(tables::PROVIDED)?;
        Ok(table
            .iter()?
            .map(|r| r.map(|(k, _)| ToolId(*k.value())))
            .collect::<Result<_, _>>()?)
    }

    /// Trusts `publisher` with `label` (empty: none), or replaces its label. Refuses a new
    /// key with [`StoreError::Full`] once `max` keys are stored. Returns whether anything
    /// changed. The label is checked by the caller ([`atr_protocol::trust::check_label`]).
    pub fn put_trusted(
        &self,
        publisher: &atr_protocol::PublicKey,
        label: &str,
        max: usize,
    ) -> Result<bool, StoreError> {
        self.write(|txn| {
            let mut t = txn.open_table(tables::TRUSTED)?;
            let old = t.get(publisher.as_bytes())?.map(|g| g.value().to_owned());
            match old {
                Some(old) if old == label => return Ok((false, false)),
                Some(_) => {}
                None => {
                    let count = t.len()?;
                    let max = max as u64;
                    if count >= max {
                        return Err(StoreError::Full {
                            what: "trusted publishers",
                            count,
                            max,
                        });
                    }
                }
            }
            t.insert(publisher.as_bytes(), label)?;
            Ok((true, true))
        })
    }

    /// Stops trusting `publisher`. Returns whether it was stored.
    pub fn remove_trusted(&self, publisher: &atr_protocol::PublicKey) -> Result<bool, StoreError> {
        self.write(|txn| {
            let removed = txn
                .open_table(tables::TRUSTED)?
                .remove(publisher.as_bytes())?
                .is_some();
            Ok((removed, removed))
        })
    }

    /// The publishers trusted through the API, by key, with their labels (empty: none).
    pub fn trusted(&self) -> Result<Vec<(atr_protocol::PublicKey, String)>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(tables::TRUSTED)?;
        Ok(table
            .iter()?
            .map(|r| r.map(|(k, v)| (atr_protocol::PublicKey(*k.value()), v.value().to_owned())))
            .collect::<Result<_, _>>()?)
    }

    /// Row counts, each read in O(1).
    pub fn counts(&self) -> Result<StoreCounts, StoreError> {
        let txn = self.read()?;
        Ok(StoreCounts {
            specs: txn.open_table(SPECS)?.len()?,
            revocations: txn.open_table(REVOCATIONS)?.len()?,
            delegations: txn.open_table(DELEGATIONS)?.len()?,
            receipts: txn.open_table(RECEIPTS)?.len()?,
            peers: txn.open_table(tables::PEERS)?.len()?,
            corrupt_skipped: self.corrupt_skipped.load(Ordering::Relaxed),
        })
    }
}

/// Checks that a stored envelope's body hashes to the key it is stored under.
fn check_stored_hash(table: &'static str, key: &[u8; 32], bytes: &[u8]) -> Result<(), StoreError> {
    if crate::catalog::envelope_hash(bytes) == Some(*key) {
        return Ok(());
    }
    Err(StoreError::Corrupt {
        table,
        detail: format!(
            "row {} does not hold the object stored under it",
            hex::encode(key)
        ),
    })
}

/// Stores `envelope` under `hash` in a synced object table (specs,
/// revocations, delegations) holding at most `max` rows, and updates the
/// hash's sync digest. An object already stored is [`Put::Existing`], even
/// at the cap.
fn put_synced_in(
    txn: &WriteTransaction,
    touched: &mut sync::Touched,
    def: redb::TableDefinition<&[u8; 32], &[u8]>,
    what: &'static str,
    hash: [u8; 32],
    envelope: &[u8],
    max: u64,
) -> Result<Put, StoreError> {
    let mut t = txn.open_table(def)?;
    if t.get(&hash)?.is_some() {
        return Ok(Put::Existing);
    }
    let count = t.len()?;
    if count >= max {
        return Err(StoreError::Full { what, count, max });
    }
    t.insert(&hash, envelope)?;
    touched.add(&hash);
    Ok(Put::Inserted)
}

/// Decodes and verifies a stored envelope and checks it is stored under its
/// own hash.
fn decode_signed<T: SignedBody>(
    table: &'static str,
    key: &[u8; 32],
    bytes: &[u8],
) -> Result<Signed<T>, StoreError> {
    let label = || match table {
        "specs" => ToolId(*key).to_string(),
        _ => hex::encode(key),
    };
    let signed = Signed::<T>::from_bytes(bytes).map_err(|e| StoreError::Corrupt {
        table,
        detail: format!("row {}: {e}", label()),
    })?;
    if signed.hash() != *key {
        return Err(StoreError::Corrupt {
            table,
            detail: format!(
                "row {} holds an object whose hash is {}",
                label(),
                hex::encode(signed.hash())
            ),
        });
    }
    Ok(signed)
}

fn decode_receipt(invocation: &[u8; 16], bytes: &[u8]) -> Result<SignedReceipt, StoreError> {
    let label = || hex::encode(invocation);
    let r = SignedReceipt::from_bytes(bytes).map_err(|e| StoreError::Corrupt {
        table: "receipts",
        detail: format!("row {}: {e}", label()),
    })?;
    if r.value().invocation.0 != *invocation {
        return Err(StoreError::Corrupt {
            table: "receipts",
            detail: format!(
                "row {} holds the receipt of invocation {}",
                label(),
                r.value().invocation
            ),
        });
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use atr_protocol::revocation::{RevocationKind, RevocationTarget};

    use super::*;
    use crate::catalog::test_support::{CREATED, receipt, revocation, revoke_id, spec};

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn init_tracing() {
        let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    }

    fn mem(opts: StoreOptions) -> Result<Store, StoreError> {
        init_tracing();
        Store::open_in_memory(opts)
    }

    /// Overwrites a row of `def` with `bytes`, as disk damage would.
    fn damage<K: redb::Key + 'static>(
        store: &Store,
        def: redb::TableDefinition<K, &[u8]>,
        key: K::SelfType<'_>,
        bytes: &[u8],
    ) -> TestResult {
        let txn = store.db.begin_write()?;
        txn.open_table(def)?.insert(key, bytes)?;
        txn.commit()?;
        Ok(())
    }

    #[test]
    fn trusted_publishers_are_capped_relabelled_removable_and_survive_reopen() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("atr.redb");
        let key = |b: u8| atr_protocol::PublicKey([b; 32]);
        {
            let store = Store::open(&path, StoreOptions::default())?;
            assert!(store.put_trusted(&key(1), "", 2)?);
            assert!(!store.put_trusted(&key(1), "", 2)?, "same label: no change");
            assert!(store.put_trusted(&key(1), "acme", 2)?, "new label");
            assert!(store.put_trusted(&key(2), "", 2)?);
            match store.put_trusted(&key(3), "", 2) {
                Err(StoreError::Full { count, max, .. }) => assert_eq!((count, max), (2, 2)),
                other => panic!("expected Full, got {other:?}"),
            }
            assert!(store.put_trusted(&key(2), "relabelled at the cap", 2)?);
            assert!(store.remove_trusted(&key(2))?);
            assert!(!store.remove_trusted(&key(2))?);
        }
        let store = Store::open(&path, StoreOptions::default())?;
        assert_eq!(store.trusted()?, vec![(key(1), "acme".to_owned())]);
        Ok(())
    }

    #[test]
    fn put_is_idempotent_and_get_round_trips() -> TestResult {
        let store = mem(StoreOptions::default())?;
        let s = spec(1, "calc", "1.0.0", &["math"]);
        assert_eq!(store.put_spec(&s)?, Put::Inserted);
        assert_eq!(store.put_spec(&s)?, Put::Existing);
        assert_eq!(store.get_spec(&s.id())?, Some(s.clone()));
        assert_eq!(store.get_spec(&ToolId([9; 32]))?, None);
        assert!(store.has_object(&s.hash())?);
        assert!(!store.has_object(&[9; 32])?);
        match store.get_object(&s.hash())? {
            Some(WireObject::Spec(b)) => assert_eq!(b.0, s.to_bytes()),
            other => panic!("expected a spec, got {other:?}"),
        }
        let counts = store.counts()?;
        assert_eq!(
            (counts.specs, counts.revocations, counts.receipts, counts.peers),
            (1, 0, 0, 0)
        );
        Ok(())
    }

    #[test]
    fn provided_consent_is_idempotent_capped_removable_and_survives_reopen() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("atr.redb");
        {
            let store = Store::open(&path, StoreOptions::default())?;
            for i in 0..MAX_PROVIDED as u32 {
                let mut id = [0u8; 32];
                id[..4].copy_from_slice(&i.to_be_bytes());
                assert!(store.put_provided(&ToolId(id))?);
            }
            assert!(!store.put_provided(&ToolId([0; 32]))?, "existing: no change");
            match store.put_provided(&ToolId([0xff; 32])) {
                Err(StoreError::Full { count, max, .. }) => {
                    assert_eq!((count, max), (MAX_PROVIDED as u64, MAX_PROVIDED as u64));
                }
                other => panic!("expected Full, got {other:?}"),
            }
            assert!(store.remove_provided(&ToolId([0; 32]))?);
            assert!(!store.remove_provided(&ToolId([0; 32]))?);
        }
        let store = Store::open(&path, StoreOptions::default())?;
        let ids = store.provided_ids()?;
        assert_eq!(ids.len(), MAX_PROVIDED - 1);
        assert!(!ids.contains(&ToolId([0; 32])));
        Ok(())
    }

    #[test]
    fn full_store_refuses_new_objects_and_keeps_old_ones() -> TestResult {
        let opts = StoreOptions {
            max_specs: 2,
            max_revocations: 1,
            max_receipts: 1,
            ..StoreOptions::default()
        };
        let store = mem(opts)?;
        let a = spec(1, "a", "1.0.0", &["x"]);
        let b = spec(1, "b", "1.0.0", &["x"]);
        let c = spec(1, "c", "1.0.0", &["x"]);
        store.put_spec(&a)?;
        store.put_spec(&b)?;
        let digests = store.sync_digests()?;
        match store.put_spec(&c) {
            Err(StoreError::Full { what, count, max }) => assert_eq!((what, count, max), ("specs", 2, 2)),
            other => panic!("expected Full, got {other:?}"),
        }
        // Nothing of the refused spec was written, nothing old was lost.
        assert_eq!(store.put_spec(&a)?, Put::Existing);
        assert_eq!(store.get_spec(&c.id())?, None);
        assert_eq!(store.sync_digests()?, digests);
        assert_eq!(store.load_all()?.0.len(), 2);

        store.put_revocation(&revoke_id(1, a.id()))?;
        assert!(matches!(
            store.put_revocation(&revoke_id(1, b.id())),
            Err(StoreError::Full {
                what: "revocations",
                ..
            })
        ));
        store.put_receipt(&receipt(5, 1, a.id()))?;
        assert!(matches!(
            store.put_receipt(&receipt(5, 2, a.id())),
            Err(StoreError::Full { what: "receipts", .. })
        ));
        let counts = store.counts()?;
        assert_eq!((counts.specs, counts.revocations, counts.receipts), (2, 1, 1));
        Ok(())
    }

    #[test]
    fn revocations_and_receipts_round_trip() -> TestResult {
        let store = mem(StoreOptions::default())?;
        let s = spec(1, "calc", "1.0.0", &[]);
        store.put_spec(&s)?;
        let r = revoke_id(1, s.id());
        let by_name = revocation(
            1,
            RevocationKind::Deprecate,
            RevocationTarget::Name("calc".into()),
            CREATED + 9,
            None,
        );
        assert_eq!(store.put_revocation(&r)?, Put::Inserted);
        assert_eq!(store.put_revocation(&r)?, Put::Existing);
        store.put_revocation(&by_name)?;
        match store.get_object(&r.hash())? {
            Some(WireObject::Revocation(b)) => assert_eq!(b.0, r.to_bytes()),
            other => panic!("expected a revocation, got {other:?}"),
        }
        let (specs, mut revs) = store.load_all()?;
        assert_eq!(specs, vec![s.clone()]);
        revs.sort_by_key(|x| x.hash());
        let mut want = vec![r.clone(), by_name];
        want.sort_by_key(|x| x.hash());
        assert_eq!(revs, want);

        assert!(store.remove_revocation(&r.hash())?);
        assert!(!store.remove_revocation(&r.hash())?);
        assert!(!store.has_object(&r.hash())?);

        let receipts: Vec<SignedReceipt> = (1..=3).map(|n| receipt(5, n, s.id())).collect();
        for rc in &receipts {
            assert_eq!(store.put_receipt(rc)?, Put::Inserted);
        }
        // The first receipt of an invocation id wins.
        assert_eq!(store.put_receipt(&receipt(6, 1, s.id()))?, Put::Existing);
        let newest_first: Vec<SignedReceipt> = receipts.iter().rev().cloned().collect();
        assert_eq!(store.receipts(10)?, newest_first);
        assert_eq!(store.receipts(2)?, newest_first[..2]);
        Ok(())
    }

    #[test]
    fn sync_digests_track_the_object_set() -> TestResult {
        let objects: Vec<SignedSpec> = (0..40)
            .map(|i| spec(i % 3, &format!("t{i}"), "1.0.0", &[]))
            .collect();
        let rev = revoke_id(0, objects[0].id());
        let a = mem(StoreOptions::default())?;
        let b = mem(StoreOptions::default())?;
        assert_eq!(a.sync_digests()?, vec![[0u8; 32]; 256]);
        for s in &objects {
            a.put_spec(s)?;
        }
        a.put_revocation(&rev)?;
        // Same set, other order: same digests.
        b.put_revocation(&rev)?;
        for s in objects.iter().rev() {
            b.put_spec(s)?;
        }
        let da = a.sync_digests()?;
        assert_eq!(da.len(), 256);
        assert_eq!(da, b.sync_digests()?);
        assert_eq!(da, a.recompute_digests()?);

        // One more object changes exactly its bucket.
        let extra = spec(7, "extra", "1.0.0", &[]);
        b.put_spec(&extra)?;
        let db = b.sync_digests()?;
        let differing: Vec<usize> = (0..256).filter(|&i| da[i] != db[i]).collect();
        assert_eq!(differing, vec![usize::from(extra.hash()[0])]);
        assert_eq!(db, b.recompute_digests()?);

        // Removing and re-adding the revocation restores the digest.
        a.remove_revocation(&rev.hash())?;
        assert_ne!(a.sync_digests()?, da);
        assert_eq!(a.sync_digests()?, a.recompute_digests()?);
        a.put_revocation(&rev)?;
        assert_eq!(a.sync_digests()?, da);
        Ok(())
    }

    /// Peers asking for digests while every write makes a bucket stale: the store rescans at
    /// most once per `DIGEST_REFRESH` (in between peers get the last digests), while its own
    /// rounds (`sync_digests`) always see the exact set.
    #[test]
    fn peers_asking_for_digests_during_writes_cause_one_rescan_per_refresh() -> TestResult {
        use crate::store::sync::DIGEST_REFRESH;
        let store = mem(StoreOptions::default())?;
        let first = spec(0, "first", "1.0.0", &[]);
        store.put_spec(&first)?;
        let before = store.sync_digests_for_peers()?;
        assert_eq!(store.digest_rescans(), 1);
        let started = std::time::Instant::now();
        let (mut asked, mut i) = (0u32, 0u32);
        // Bounded: at most 2 000 writes or 3 refresh periods.
        while started.elapsed() < DIGEST_REFRESH * 3 && i < 2_000 {
            store.put_spec(&spec(1, &format!("w{i}"), "1.0.0", &[]))?;
            i += 1;
            for _ in 0..50 {
                store.sync_digests_for_peers()?;
                asked += 1;
            }
        }
        let periods = started.elapsed().as_millis() / DIGEST_REFRESH.as_millis() + 1;
        let rescans = u128::from(store.digest_rescans() - 1);
        assert!(asked > 1_000, "only {asked} requests made");
        assert!(
            rescans <= periods,
            "{rescans} rescans for {asked} requests in {periods} refresh periods"
        );
        // Peers may have been answered stale digests; the node's own rounds are exact.
        assert_ne!(store.sync_digests()?, before);
        assert_eq!(store.sync_digests()?, store.recompute_digests()?);
        Ok(())
    }

    #[test]
    fn short_ids_resolve_by_one_range_scan() -> TestResult {
        use atr_protocol::id::ToolIdPrefix;
        let store = mem(StoreOptions::default())?;
        let specs: Vec<SignedSpec> = (0..40).map(|i| spec(2, &format!("p{i}"), "1.0.0", &[])).collect();
        for s in &specs {
            store.put_spec(s)?;
        }
        for s in &specs {
            let text = s.id().to_string();
            let p: ToolIdPrefix = text[..16].parse()?;
            assert_eq!(store.spec_ids_with_prefix(&p, 8)?, (vec![s.id()], false));
        }
        // Nothing stored starts like this (ids are blake3; the chance of a clash is 2^-60).
        let absent = ToolId::of(b"absent").to_string();
        assert_eq!(
            store.spec_ids_with_prefix(&absent[..16].parse()?, 8)?,
            (vec![], false)
        );
        // A revocation's hash is not a spec id.
        let rev = revoke_id(2, specs[0].id());
        store.put_revocation(&rev)?;
        let rev_text = ToolId(rev.hash()).to_string();
        assert_eq!(
            store.spec_ids_with_prefix(&rev_text[..16].parse()?, 8)?,
            (vec![], false)
        );
        Ok(())
    }

    #[test]
    fn ids_in_buckets_scans_and_truncates() -> TestResult {
        let store = mem(StoreOptions::default())?;
        let specs: Vec<SignedSpec> = (0..60).map(|i| spec(1, &format!("t{i}"), "1.0.0", &[])).collect();
        for s in &specs {
            store.put_spec(s)?;
        }
        let rev = revoke_id(1, specs[0].id());
        store.put_revocation(&rev)?;
        let all: Vec<[u8; 32]> = specs.iter().map(|s| s.hash()).chain([rev.hash()]).collect();

        let every: Vec<u8> = (0..=255).collect();
        let (ids, truncated) = store.ids_in_buckets(&every, 1000)?;
        assert!(!truncated);
        let mut got = ids.clone();
        got.sort();
        let mut want = all.clone();
        want.sort();
        assert_eq!(got, want);

        // One bucket: exactly the objects whose hash starts with it.
        let b = rev.hash()[0];
        let (ids, truncated) = store.ids_in_buckets(&[b, b], 1000)?;
        assert!(!truncated);
        let mut want: Vec<[u8; 32]> = all.iter().copied().filter(|h| h[0] == b).collect();
        want.sort();
        let mut got = ids;
        got.sort();
        assert_eq!(got, want);

        // Truncated at a bucket boundary: every bucket listed is whole.
        let (ids, truncated) = store.ids_in_buckets(&every, 10)?;
        assert!(truncated);
        assert!(!ids.is_empty() && ids.len() <= 10, "{}", ids.len());
        for h in &ids {
            let whole = all.iter().filter(|x| x[0] == h[0]).count();
            let listed = ids.iter().filter(|x| x[0] == h[0]).count();
            assert_eq!(listed, whole, "bucket {} listed in part", h[0]);
        }
        // A first bucket larger than the cap is listed in part (61 objects
        // in 256 buckets: some bucket holds two).
        let fullest = (0..=255u8)
            .max_by_key(|b| all.iter().filter(|h| h[0] == *b).count())
            .unwrap_or(0);
        let big = all.iter().filter(|h| h[0] == fullest).count();
        assert!(big > 1);
        let (ids, truncated) = store.ids_in_buckets(&[fullest], big - 1)?;
        assert!(truncated);
        assert_eq!(ids.len(), big - 1);
        let (ids, truncated) = store.ids_in_buckets(&every, all.len())?;
        assert!(!truncated);
        assert_eq!(ids.len(), all.len());
        assert_eq!(store.ids_in_buckets(&[], 10)?, (vec![], false));
        Ok(())
    }

    #[test]
    fn corrupt_rows_surface_as_corrupt() -> TestResult {
        let store = mem(StoreOptions::default())?;
        let good = spec(1, "good", "1.0.0", &[]);
        let bad = spec(1, "bad", "1.0.0", &[]);
        let moved = spec(1, "moved", "1.0.0", &[]);
        for s in [&good, &bad, &moved] {
            store.put_spec(s)?;
        }
        damage(&store, SPECS, &bad.hash(), b"\x82\x41\x00garbage")?;
        // A valid envelope stored under another spec's id.
        damage(&store, SPECS, &moved.hash(), &good.to_bytes())?;
        assert!(matches!(
            store.get_spec(&bad.id()),
            Err(StoreError::Corrupt { table: "specs", .. })
        ));
        assert!(matches!(
            store.get_spec(&moved.id()),
            Err(StoreError::Corrupt { table: "specs", .. })
        ));
        assert!(matches!(
            store.get_object(&bad.hash()),
            Err(StoreError::Corrupt { .. })
        ));
        let (specs, _) = store.load_all()?;
        assert_eq!(specs, vec![good.clone()]);
        assert_eq!(store.counts()?.corrupt_skipped, 2);

        let rc = receipt(5, 1, good.id());
        store.put_receipt(&rc)?;
        store.put_receipt(&receipt(5, 2, good.id()))?;
        damage(&store, RECEIPTS, &[2u8; 16], b"nope")?;
        assert_eq!(store.receipts(10)?, vec![rc]);
        Ok(())
    }

    #[test]
    fn peers_update_and_evict_the_stalest() -> TestResult {
        let mut store = mem(StoreOptions::default())?;
        store.max_peers = 3;
        let rec = |seen: u64| PeerRecord {
            addrs: vec![format!("/ip4/127.0.0.1/tcp/{seen}")],
            last_seen_ms: seen,
        };
        store.put_peer("a", &rec(10))?;
        store.put_peer("b", &rec(20))?;
        store.put_peer("c", &rec(30))?;
        // An update moves "a" to the front without growing the table.
        store.put_peer("a", &rec(40))?;
        let names = |s: &Store| -> Result<Vec<String>, StoreError> {
            Ok(s.peers()?.into_iter().map(|(p, _)| p).collect())
        };
        assert_eq!(names(&store)?, ["a", "c", "b"]);
        // A fourth peer replaces the stalest, "b".
        store.put_peer("d", &rec(50))?;
        assert_eq!(names(&store)?, ["d", "a", "c"]);
        assert_eq!(store.counts()?.peers, 3);
        assert_eq!(store.peers()?[0].1, rec(50));

        let noisy = PeerRecord {
            addrs: (0..40)
                .map(|i| format!("/ip4/10.0.0.{i}/tcp/1"))
                .chain(["x".repeat(1000)])
                .collect(),
            last_seen_ms: 60,
        };
        store.put_peer("e", &noisy)?;
        assert_eq!(store.peers()?[0].1.addrs.len(), MAX_PEER_ADDRS);
        assert!(matches!(
            store.put_peer("", &rec(1)),
            Err(StoreError::InvalidPeer(_))
        ));
        assert!(matches!(
            store.put_peer(&"p".repeat(500), &rec(1)),
            Err(StoreError::InvalidPeer(_))
        ));
        Ok(())
    }

    #[test]
    fn file_store_survives_reopen() -> TestResult {
        init_tracing();
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("store.redb");
        let s = spec(1, "calc", "1.0.0", &["math"]);
        let rev = revoke_id(1, s.id());
        {
            let store = Store::open(&path, StoreOptions::default())?;
            store.put_spec(&s)?;
            store.put_revocation(&rev)?;
            store.put_peer(
                "a",
                &PeerRecord {
                    addrs: vec!["/ip4/1.2.3.4/tcp/1".into()],
                    last_seen_ms: 1,
                },
            )?;
            assert!(matches!(
                Store::open(&path, StoreOptions::default()),
                Err(StoreError::AlreadyOpen { .. })
            ));
        }
        let store = Store::open(&path, StoreOptions::default())?;
        assert_eq!(store.load_all()?, (vec![s.clone()], vec![rev]));
        assert_eq!(store.peers()?.len(), 1);
        assert_eq!(store.sync_digests()?, store.recompute_digests()?);
        Ok(())
    }

    /// A store written by a build that kept index tables opens, keeps its
    /// objects and loses only those tables.
    #[test]
    fn legacy_index_tables_are_deleted_at_open() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("store.redb");
        let s = spec(1, "calc", "1.0.0", &["math"]);
        {
            let store = Store::open(&path, StoreOptions::default())?;
            store.put_spec(&s)?;
        }
        {
            let db = Database::create(&path)?;
            let txn = db.begin_write()?;
            let old: redb::TableDefinition<(&str, &[u8; 32]), ()> =
                redb::TableDefinition::new("tag_index_v1");
            txn.open_table(old)?.insert(("math", &s.hash()), ())?;
            txn.commit()?;
        }
        let store = Store::open(&path, StoreOptions::default())?;
        assert_eq!(store.load_all()?.0, vec![s]);
        let txn = store.read()?;
        let names: Vec<String> = txn
            .list_tables()?
            .map(|t| redb::TableHandle::name(&t).to_owned())
            .collect();
        assert!(!names.iter().any(|n| n.contains("index")), "{names:?}");
        Ok(())
    }

    #[test]
    fn newer_layout_is_refused() -> TestResult {
        init_tracing();
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("store.redb");
        {
            let store = Store::open(&path, StoreOptions::default())?;
            let txn = store.db.begin_write()?;
            txn.open_table(META)?.insert(META_SCHEMA, SCHEMA_VERSION + 1)?;
            txn.commit()?;
        }
        match Store::open(&path, StoreOptions::default()) {
            Err(e @ StoreError::Schema { .. }) => assert!(e.to_string().contains("layout version 2")),
            other => panic!("expected Schema, got {other:?}"),
        }
        Ok(())
    }
}
