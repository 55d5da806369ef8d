//! Anti-entropy support: per-bucket digests and bucket scans.
//!
//! Objects (specs and revocations together) fall into one of
//! [`SYNC_BUCKETS`] buckets by the first byte of their hash. A bucket's
//! digest is blake3 over its hashes in ascending order, recomputed in the
//! transaction that adds or removes an object ([`update_digest`]; a bucket
//! holds ≈ n/256 objects, so this hashes a few KiB). Not XOR: XOR digests
//! are linear, and a peer free to sign objects could pick a set whose XOR
//! hides an object (e.g. a missed revocation) from anti-entropy. Two nodes
//! whose digests are equal hold the same objects.

use atr_protocol::wire::SYNC_BUCKETS;
use redb::{ReadableTable, WriteTransaction};

use super::tables::{DELEGATIONS, DIGESTS, REVOCATIONS, SPECS};
use super::{MAX_ID, Store, StoreError};

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

/// Recomputes the digest of `hash`'s bucket. Callers must have closed their
/// handles on the spec, revocation and delegation tables (redb opens a table once per
/// write transaction).
pub(super) fn update_digest(txn: &WriteTransaction, hash: &[u8; 32]) -> Result<(), StoreError> {
    let bucket = hash[0];
    let mut lo = [0u8; 32];
    lo[0] = bucket;
    let mut hi = MAX_ID;
    hi[0] = bucket;
    let mut members = Vec::new();
    for def in [SPECS, REVOCATIONS, DELEGATIONS] {
        let table = txn.open_table(def)?;
        for row in table.range::<&[u8; 32]>(&lo..=&hi)? {
            let (key, _) = row?;
            members.push(*key.value());
        }
    }
    let digest = bucket_digest(members);
    let mut digests = txn.open_table(DIGESTS)?;
    if digest == [0u8; 32] {
        digests.remove(bucket)?;
    } else {
        digests.insert(bucket, &digest)?;
    }
    Ok(())
}

impl Store {
    /// The [`SYNC_BUCKETS`] (256) digests: for bucket `b`, the blake3 digest of the sorted
    /// hashes of every stored spec, revocation and delegation whose hash starts with `b`
    /// (all zero for an empty bucket). O(256): digests are kept up to date
    /// by every write.
    pub fn sync_digests(&self) -> Result<Vec<[u8; 32]>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(DIGESTS)?;
        let mut out = vec![[0u8; 32]; SYNC_BUCKETS];
        for row in table.iter()? {
            let (bucket, digest) = row?;
            out[usize::from(bucket.value())] = *digest.value();
        }
        Ok(out)
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
    #[cfg(test)]
    pub(super) fn recompute_digests(&self) -> Result<Vec<[u8; 32]>, StoreError> {
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
