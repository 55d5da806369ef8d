//! The Kademlia record store: provider records only, for atr's own key
//! shapes, with budgets that strangers cannot use up for this node.
//!
//! libp2p's `MemoryStore` counts every peer's provider records against one
//! "provided keys" cap, so one peer sending `ADD_PROVIDER` for random keys
//! could fill it and stop this node announcing its own tools; it also stores
//! value records, which atr never uses. [`DhtStore`] instead:
//!
//! - accepts provider records only for keys of the shape `/atr/tag/<tag>/<shard>`
//!   or `/atr/name/<name>/<shard>` ([`is_atr_key`]), refuses value records;
//! - keeps this node's own records apart (never evicted, capped by
//!   [`MAX_OWN_KEYS`]), so strangers cannot crowd them out;
//! - caps other peers' records in total and per peer, and per key (the
//!   farthest provider is replaced by a closer one, as libp2p does), and
//!   keeps at most [`MAX_ADDRS_PER_RECORD`] addresses per record.
//!
//! A refused record is counted in `atr_budget_exceeded_total{budget="dht_…"}`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Instant;

use libp2p::PeerId;
use libp2p::kad::store::{Error, RecordStore, Result};
use libp2p::kad::{KBucketKey, ProviderRecord, Record, RecordKey};

use super::keys::is_atr_key;
use crate::metrics::LabeledCounter;

/// Keys this node may announce itself (one per tag and name of the specs it runs).
pub const MAX_OWN_KEYS: usize = 100_000;
/// Providers kept per key, this node's own not counted. libp2p's default (20)
/// silently drops the rest; atr shards tag keys (see `docs/architecture.md`),
/// so a hot tag's providers spread over [`super::keys::TAG_SHARDS`] keys.
pub const MAX_PROVIDERS_PER_KEY: usize = 1024;
/// Addresses kept per provider record.
pub const MAX_ADDRS_PER_RECORD: usize = 4;

/// Budgets of the store (see `[network.budgets]`).
#[derive(Debug, Clone, Copy)]
pub struct DhtLimits {
    /// Other peers' records, all together.
    pub foreign_records: usize,
    /// One other peer's records.
    pub records_per_peer: usize,
}

/// See the module docs.
pub struct DhtStore {
    local: PeerId,
    limits: DhtLimits,
    /// Other peers' records per key, at most [`MAX_PROVIDERS_PER_KEY`] each.
    foreign: HashMap<RecordKey, Vec<ProviderRecord>>,
    /// This node's own records, by key.
    own: HashMap<RecordKey, ProviderRecord>,
    /// Records per other peer.
    per_peer: HashMap<PeerId, usize>,
    /// Other peers' records, all keys.
    foreign_count: usize,
    refused: LabeledCounter,
}

impl std::fmt::Debug for DhtStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DhtStore")
            .field("own", &self.own.len())
            .field("foreign", &self.foreign_count)
            .field("peers", &self.per_peer.len())
            .finish()
    }
}

impl DhtStore {
    /// An empty store for the node `local`; refusals are counted in `refused`.
    pub fn new(local: PeerId, limits: DhtLimits, refused: LabeledCounter) -> Self {
        Self {
            local,
            limits,
            foreign: HashMap::new(),
            own: HashMap::new(),
            per_peer: HashMap::new(),
            foreign_count: 0,
            refused,
        }
    }

    fn refuse(&self, budget: &'static str, err: Error) -> Result<()> {
        self.refused.get_or_create(&[("budget", budget)]).inc();
        Err(err)
    }

    /// Other peers' records held, all keys.
    pub fn foreign_records(&self) -> usize {
        self.foreign_count
    }

    /// Records held for `peer`.
    pub fn records_of(&self, peer: &PeerId) -> usize {
        self.per_peer.get(peer).copied().unwrap_or(0)
    }

    /// Drops other peers' expired records (libp2p drops them only when their
    /// key is looked up); returns how many.
    pub fn sweep_expired(&mut self, now: Instant) -> usize {
        let mut gone = Vec::new();
        self.foreign.retain(|_, recs| {
            recs.retain(|r| {
                let keep = !r.is_expired(now);
                if !keep {
                    gone.push(r.provider);
                }
                keep
            });
            !recs.is_empty()
        });
        for p in &gone {
            self.forget_one(p);
        }
        gone.len()
    }

    fn forget_one(&mut self, peer: &PeerId) {
        self.foreign_count = self.foreign_count.saturating_sub(1);
        if let Some(n) = self.per_peer.get_mut(peer) {
            *n -= 1;
            if *n == 0 {
                self.per_peer.remove(peer);
            }
        }
    }

    fn add_own(&mut self, record: ProviderRecord) -> Result<()> {
        if !self.own.contains_key(&record.key) && self.own.len() >= MAX_OWN_KEYS {
            return self.refuse("dht_own_keys", Error::MaxProvidedKeys);
        }
        self.own.insert(record.key.clone(), record);
        Ok(())
    }

    fn add_foreign(&mut self, record: ProviderRecord) -> Result<()> {
        let recs = self.foreign.entry(record.key.clone()).or_default();
        if let Some(existing) = recs.iter_mut().find(|r| r.provider == record.provider) {
            *existing = record;
            return Ok(());
        }
        let peer_count = self.per_peer.get(&record.provider).copied().unwrap_or(0);
        let budget = if peer_count >= self.limits.records_per_peer {
            Some("dht_records_per_peer")
        } else if self.foreign_count >= self.limits.foreign_records {
            Some("dht_foreign_records")
        } else {
            None
        };
        if let Some(budget) = budget {
            if recs.is_empty() {
                self.foreign.remove(&record.key);
            }
            return self.refuse(budget, Error::MaxRecords);
        }
        if recs.len() >= MAX_PROVIDERS_PER_KEY {
            // Keep the providers closest to the key, as libp2p does.
            let target = KBucketKey::new(record.key.clone());
            let distance = |p: &PeerId| KBucketKey::from(*p).distance(&target);
            let Some((far, _)) = recs.iter().enumerate().max_by_key(|(_, r)| distance(&r.provider)) else {
                return self.refuse("dht_providers_per_key", Error::MaxRecords);
            };
            if distance(&recs[far].provider) <= distance(&record.provider) {
                return self.refuse("dht_providers_per_key", Error::MaxRecords);
            }
            let evicted = recs.swap_remove(far).provider;
            recs.push(record.clone());
            self.forget_one(&evicted);
        } else {
            recs.push(record.clone());
        }
        self.foreign_count += 1;
        *self.per_peer.entry(record.provider).or_insert(0) += 1;
        Ok(())
    }
}

fn borrowed(r: &ProviderRecord) -> Cow<'_, ProviderRecord> {
    Cow::Borrowed(r)
}

type ProvidedIter<'a> = std::iter::Map<
    std::collections::hash_map::Values<'a, RecordKey, ProviderRecord>,
    fn(&'a ProviderRecord) -> Cow<'a, ProviderRecord>,
>;

impl RecordStore for DhtStore {
    type RecordsIter<'a> = std::iter::Empty<Cow<'a, Record>>;
    type ProvidedIter<'a> = ProvidedIter<'a>;

    fn get(&self, _k: &RecordKey) -> Option<Cow<'_, Record>> {
        None
    }

    /// atr keeps no value records.
    fn put(&mut self, _r: Record) -> Result<()> {
        self.refuse("dht_value_record", Error::MaxRecords)
    }

    fn remove(&mut self, _k: &RecordKey) {}

    fn records(&self) -> Self::RecordsIter<'_> {
        std::iter::empty()
    }

    fn add_provider(&mut self, mut record: ProviderRecord) -> Result<()> {
        if !is_atr_key(record.key.as_ref()) {
            return self.refuse("dht_key_shape", Error::MaxRecords);
        }
        record.addresses.truncate(MAX_ADDRS_PER_RECORD);
        if record.provider == self.local {
            self.add_own(record)
        } else {
            self.add_foreign(record)
        }
    }

    fn providers(&self, key: &RecordKey) -> Vec<ProviderRecord> {
        let mut out: Vec<ProviderRecord> = self.own.get(key).cloned().into_iter().collect();
        if let Some(recs) = self.foreign.get(key) {
            out.extend(recs.iter().cloned());
        }
        out
    }

    fn provided(&self) -> Self::ProvidedIter<'_> {
        self.own.values().map(borrowed)
    }

    fn remove_provider(&mut self, key: &RecordKey, provider: &PeerId) {
        if *provider == self.local {
            self.own.remove(key);
            return;
        }
        let Some(recs) = self.foreign.get_mut(key) else {
            return;
        };
        let Some(i) = recs.iter().position(|r| r.provider == *provider) else {
            return;
        };
        recs.swap_remove(i);
        if recs.is_empty() {
            self.foreign.remove(key);
        }
        self.forget_one(provider);
    }
}

#[cfg(test)]
mod tests {
    use libp2p::kad::store::RecordStore;

    use super::*;

    fn distinct_keys(n: usize, kind: &str) -> impl Iterator<Item = RecordKey> + '_ {
        (0..n).map(move |i| RecordKey::new(&format!("/atr/{kind}/k{i}/{}", i % 16)))
    }

    /// A record as kad stores a stranger's: expiring (here in an hour).
    fn expiring(key: RecordKey, peer: PeerId) -> ProviderRecord {
        let mut r = ProviderRecord::new(key, peer, vec![]);
        r.expires = Some(Instant::now() + std::time::Duration::from_secs(3600));
        r
    }

    fn store(me: PeerId, foreign: usize, per_peer: usize) -> (DhtStore, LabeledCounter) {
        let refused = LabeledCounter::default();
        let s = DhtStore::new(
            me,
            DhtLimits {
                foreign_records: foreign,
                records_per_peer: per_peer,
            },
            refused.clone(),
        );
        (s, refused)
    }

    fn count(c: &LabeledCounter, budget: &'static str) -> u64 {
        c.get_or_create(&[("budget", budget)]).get()
    }

    #[test]
    fn only_atr_key_shapes_are_accepted() {
        for ok in ["/atr/tag/math/0", "/atr/name/calculator/15", "/atr/tag/a-b/3"] {
            assert!(is_atr_key(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "/atr/tag/math/16",
            "/atr/tag/math/01",
            "/atr/tag/math",
            "/atr/tag/math/0/x",
            "/atr/value/x/0",
            "/atr/tag/Not A Tag/0",
            "random",
            "",
        ] {
            assert!(!is_atr_key(bad.as_bytes()), "{bad}");
        }
        assert!(!is_atr_key(&[0xff, 0xfe]));
        let (mut s, refused) = store(PeerId::random(), 10, 10);
        let rec = ProviderRecord::new(RecordKey::new(&"/ipfs/whatever"), PeerId::random(), vec![]);
        assert!(s.add_provider(rec).is_err());
        assert!(
            s.put(Record::new(RecordKey::new(&"/atr/tag/x/0"), vec![1]))
                .is_err()
        );
        assert_eq!(count(&refused, "dht_key_shape"), 1);
        assert_eq!(count(&refused, "dht_value_record"), 1);
        assert_eq!(s.records().count(), 0);
    }

    /// One peer flooding ADD_PROVIDER for random keys stops at its own budget;
    /// a sybil crowd stops at the total; this node's own keys still go in.
    #[test]
    fn a_provider_flood_stops_at_its_budgets_and_own_keys_still_fit() {
        let me = PeerId::random();
        let (mut s, refused) = store(me, 1_000, 100);
        let flooder = PeerId::random();
        let accepted = distinct_keys(500, "tag")
            .filter(|k| s.add_provider(expiring(k.clone(), flooder)).is_ok())
            .count();
        assert_eq!(accepted, 100);
        assert_eq!(s.records_of(&flooder), 100);
        assert_eq!(count(&refused, "dht_records_per_peer"), 400);
        // 20 sybils with 100 each: the total (1000) holds.
        for _ in 0..20 {
            let sybil = PeerId::random();
            for k in distinct_keys(100, "name") {
                let _ = s.add_provider(expiring(k, sybil));
            }
        }
        assert_eq!(s.foreign_records(), 1_000);
        assert!(count(&refused, "dht_foreign_records") >= 1_000);
        // This node's own keys are not in that budget.
        for k in distinct_keys(5_000, "tag") {
            s.add_provider(ProviderRecord::new(k, me, vec![])).unwrap();
        }
        assert_eq!(s.provided().count(), 5_000);
        // Withdrawing and expiry give room back.
        let k = distinct_keys(1, "tag").next().unwrap();
        s.remove_provider(&k, &flooder);
        assert_eq!(s.records_of(&flooder), 99);
        assert_eq!(s.foreign_records(), 999);
        assert_eq!(
            s.sweep_expired(Instant::now() + std::time::Duration::from_secs(2 * 3600)),
            999
        );
        assert_eq!((s.foreign_records(), s.records_of(&flooder)), (0, 0));
        assert_eq!(s.provided().count(), 5_000, "own records never expire here");
    }

    #[test]
    fn a_full_key_keeps_the_closest_providers_and_caps_addresses() {
        let me = PeerId::random();
        let (mut s, _) = store(me, 10_000, 10);
        let key = RecordKey::new(&"/atr/tag/popular/3");
        for _ in 0..MAX_PROVIDERS_PER_KEY + 200 {
            let _ = s.add_provider(ProviderRecord::new(key.clone(), PeerId::random(), vec![]));
        }
        assert_eq!(s.providers(&key).len(), MAX_PROVIDERS_PER_KEY);
        assert_eq!(s.foreign_records(), MAX_PROVIDERS_PER_KEY);
        let addrs: Vec<libp2p::Multiaddr> = (0..20)
            .map(|i| format!("/ip4/10.0.0.{i}/tcp/1").parse().unwrap())
            .collect();
        s.add_provider(ProviderRecord::new(key.clone(), me, addrs))
            .unwrap();
        let mine = s.providers(&key).into_iter().find(|r| r.provider == me).unwrap();
        assert_eq!(mine.addresses.len(), MAX_ADDRS_PER_RECORD);
        assert_eq!(s.providers(&key).len(), MAX_PROVIDERS_PER_KEY + 1);
    }
}
