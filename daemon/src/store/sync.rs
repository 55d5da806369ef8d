//! Anti-entropy support: per-bucket XOR digests and bucket scans.
//!
//! Objects (specs and revocations together) fall into one of
//! [`SYNC_BUCKETS`] buckets by the first byte of their hash. A bucket's
//! digest is the XOR of its hashes; XOR is its own inverse, so adding and
//! removing an object are the same O(1) update ([`toggle_digest`]), made in
//! the transaction that adds or removes the object. Two nodes whose digests
//! are equal hold (with overwhelming probability) the same objects.

use atr_protocol::wire::SYNC_BUCKETS;
use redb::{ReadableTable, WriteTransaction};

use super::tables::{DIGESTS, REVOCATIONS, SPECS};
use super::{MAX_ID, Store, StoreError};

/// XORs `hash` into its bucket's digest.
pub(super) fn toggle_digest(txn: &WriteTransaction, hash: &[u8; 32]) -> Result<(), StoreError> {
    let mut digests = txn.open_table(DIGESTS)?;
    let bucket = hash[0];
    let mut digest = digests.get(bucket)?.map_or([0u8; 32], |g| *g.value());
    for (d, h) in digest.iter_mut().zip(hash) {
        *d ^= h;
    }
    digests.insert(bucket, &digest)?;
    Ok(())
}

impl Store {
    /// The [`SYNC_BUCKETS`] (256) digests: for bucket `b`, the XOR of the
    /// hashes of every stored spec and revocation whose hash starts with `b`
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

    /// Hashes of stored specs and revocations in these buckets, at most
    /// `max` of them, and whether more were left out.
    ///
    /// Buckets are scanned in the order given (duplicates ignored), specs
    /// before revocations within a bucket. When the answer is truncated, a
    /// caller that rotates or shuffles the bucket order between rounds makes
    /// progress even if the first buckets hold only objects the peer has.
    pub fn ids_in_buckets(&self, buckets: &[u8], max: usize) -> Result<(Vec<[u8; 32]>, bool), StoreError> {
        let txn = self.read()?;
        let specs = txn.open_table(SPECS)?;
        let revocations = txn.open_table(REVOCATIONS)?;
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
            for table in [&specs, &revocations] {
                for row in table.range::<&[u8; 32]>(&lo..=&hi)? {
                    let (key, _) = row?;
                    if out.len() >= max {
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
        let mut out = vec![[0u8; 32]; SYNC_BUCKETS];
        for def in [SPECS, REVOCATIONS] {
            for row in txn.open_table(def)?.iter()? {
                let (key, _) = row?;
                let key = key.value();
                for (d, h) in out[usize::from(key[0])].iter_mut().zip(key) {
                    *d ^= h;
                }
            }
        }
        Ok(out)
    }
}
