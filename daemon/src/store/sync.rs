//! Anti-entropy support: per-bucket digests and bucket scans.
//!
//! Objects (specs, revocations and delegations together) fall into one of
//! [`SYNC_BUCKETS`] buckets by the first byte of their hash. A bucket's
//! digest is blake3 over its hashes in ascending order. Not XOR: XOR digests
//! are linear, and a peer free to sign objects could pick a set whose XOR
//! hides an object (e.g. a missed revocation) from anti-entropy. Two nodes
//! whose digests are equal hold the same objects.
//!
//! Digests live in memory ([`Digests`]) and are recomputed lazily: a write
//! marks the buckets it touched stale **after** it committed, and
//! [`Store::sync_digests`] rescans only stale buckets, at most once per
//! [`DIGEST_REFRESH`] (in between it answers with the last digests: a
//! stale digest only delays a bucket's repair by one round). So a batch
//! write costs nothing for digests, and a node answering a flood of sync
//! requests during a write flood rescans at most a few times a second.

use std::time::{Duration, Instant};

use atr_protocol::wire::SYNC_BUCKETS;

use super::tables::{DELEGATIONS, REVOCATIONS, SPECS};
use super::{MAX_ID, Store, StoreError};
use crate::lock;

/// Least time between two rescans of stale buckets.
pub(crate) const DIGEST_REFRESH: Duration = Duration::from_millis(200);

/// The digest of a bucket's sorted hashes; all zero for an empty bucket.
pub(super) fn bucket_digest(mut hashes: Vec<[u8; 32]>) -> [u8; 32] {
    if hashes.is_empty() {
        return [0u8; 32];
    }
    hashes.sort_unstable();
    let mut h = blake3::Hasher::new();
    h.update(b"atr-sync-bucket-v1");
    for x in &hashes {
        h.update(x);
    }
    *h.finalize().as_bytes()
}

/// The buckets a write touched (marked stale once it committed).
#[derive(Debug)]
pub(super) struct Touched([bool; SYNC_BUCKETS]);

impl Touched {
    pub(super) fn new() -> Self {
        Self([false; SYNC_BUCKETS])
    }
    /// Notes the bucket of `hash`.
    pub(super) fn add(&mut self, hash: &[u8; 32]) {
        self.0[usize::from(hash[0])] = true;
    }
}

/// The in-memory digests: every bucket starts stale (computed on first use).
#[derive(Debug)]
pub(super) struct Digests {
    value: Vec<[u8; 32]>,
    stale: [bool; SYNC_BUCKETS],
    refreshed: Option<Instant>,
    /// Rescans so far (each reads every stale bucket).
    rescans: u64,
}

impl Digests {
    pub(super) fn new() -> Self {
        Self {
            value: vec![[0u8; 32]; SYNC_BUCKETS],
            stale: [true; SYNC_BUCKETS],
            refreshed: None,
            rescans: 0,
        }
    }
}

impl Store {
    /// Marks the buckets a committed write touched as stale.
    pub(super) fn mark_stale(&self, touched: &Touched) {
        let mut d = lock::lock(&self.digests);
        for (b, t) in touched.0.iter().enumerate() {
            d.stale[b] |= *t;
        }
    }

    /// The [`SYNC_BUCKETS`] (256) digests: for bucket `b`, the blake3 digest of the sorted
    /// hashes of every stored spec, revocation and delegation whose hash starts with `b`
    /// (all zero for an empty bucket). Stale buckets are rescanned first.
    pub fn sync_digests(&self) -> Result<Vec<[u8; 32]>, StoreError> {
        self.digests_within(Duration::ZERO)
    }

    /// [`Store::sync_digests`] for answering peers: stale buckets are
    /// rescanned only if the last rescan is [`DIGEST_REFRESH`] old.
    pub fn sync_digests_for_peers(&self) -> Result<Vec<[u8; 32]>, StoreError> {
        self.digests_within(DIGEST_REFRESH)
    }

    fn digests_within(&self, refresh: Duration) -> Result<Vec<[u8; 32]>, StoreError> {
        let mut d = lock::lock(&self.digests);
        let due = d.refreshed.is_none_or(|t| t.elapsed() >= refresh);
        if due && d.stale.iter().any(|s| *s) {
            let txn = self.read()?;
            let tables = [
                txn.open_table(SPECS)?,
                txn.open_table(REVOCATIONS)?,
                txn.open_table(DELEGATIONS)?,
            ];
            for b in 0..SYNC_BUCKETS {
                if !d.stale[b] {
                    continue;
                }
                let mut lo = [0u8; 32];
                lo[0] = b as u8;
                let mut hi = MAX_ID;
                hi[0] = b as u8;
                let mut members = Vec::new();
                for table in &tables {
                    for row in table.range::<&[u8; 32]>(&lo..=&hi)? {
                        members.push(*row?.0.value());
                    }
                }
                d.value[b] = bucket_digest(members);
                d.stale[b] = false;
            }
            d.refreshed = Some(Instant::now());
            d.rescans += 1;
        }
        Ok(d.value.clone())
    }

    /// Hashes of stored specs, revocations and delegations in these buckets, at most
    /// `max` of them, and whether more were left out.
    ///
    /// Buckets are scanned in the order given (duplicates ignored), specs
    /// before revocations within a bucket, and listed whole: the answer
    /// stops before the first bucket that does not fit (a first bucket
    /// larger than `max` is listed in part). When the answer is truncated, a
    /// caller that rotates or shuffles the bucket order between rounds makes
    /// progress even if the first buckets hold only objects the peer has.
    pub fn ids_in_buckets(&self, buckets: &[u8], max: usize) -> Result<(Vec<[u8; 32]>, bool), StoreError> {
        let txn = self.read()?;
        let specs = txn.open_table(SPECS)?;
        let revocations = txn.open_table(REVOCATIONS)?;
        let delegations = txn.open_table(DELEGATIONS)?;
        let mut seen = [false; SYNC_BUCKETS];
        let mut out = Vec::new();
        for &b in buckets {
            if std::mem::replace(&mut seen[usize::from(b)], true) {
                continue;
            }
            let mut lo = [0u8; 32];
            lo[0] = b;
            let mut hi = MAX_ID;
            hi[0] = b;
            // Whole buckets only: a bucket listed whole is in sync once
            // fetched, so every round makes progress. The bucket that does
            // not fit is left for a later round, unless it is the first
            // (one larger than `max` is listed in part).
            let start = out.len();
            for table in [&specs, &revocations, &delegations] {
                for row in table.range::<&[u8; 32]>(&lo..=&hi)? {
                    let (key, _) = row?;
                    if out.len() >= max {
                        if start > 0 {
                            out.truncate(start);
                        }
                        return Ok((out, true));
                    }
                    out.push(*key.value());
                }
            }
        }
        Ok((out, false))
    }

    /// Recomputes the digests from the tables (tests check the incremental
    /// digests against it).
    /// How many times stale buckets were rescanned so far.
    pub fn digest_rescans(&self) -> u64 {
        lock::lock(&self.digests).rescans
    }

    #[cfg(test)]
    pub(super) fn recompute_digests(&self) -> Result<Vec<[u8; 32]>, StoreError> {
        use redb::ReadableTable;
        let txn = self.read()?;
        let mut members: Vec<Vec<[u8; 32]>> = vec![Vec::new(); SYNC_BUCKETS];
        for def in [SPECS, REVOCATIONS, DELEGATIONS] {
            for row in txn.open_table(def)?.iter()? {
                let (key, _) = row?;
                let key = *key.value();
                members[usize::from(key[0])].push(key);
            }
        }
        Ok(members.into_iter().map(bucket_digest).collect())
    }
}
