//! Discovery from the network: DHT providers of a tag's or name's shard keys;
//! each provider is asked which specs it holds (`/atr/index/1`, ids only),
//! and only the bodies this node lacks are fetched by id and verified.
//!
//! The phases overlap: a provider is asked as soon as the shard lookup that
//! found it returns, and the ids it lists are fetched from it right away.
//! Each lacking id is fetched once, from the first provider that listed it;
//! ids that provider did not deliver are asked once more from another one
//! that listed them.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use atr_protocol::ToolId;
use atr_protocol::wire::{self, FetchRequest, IndexRequest, IndexResponse, WireError};
use futures::StreamExt;
use libp2p::PeerId;
use tracing::debug;

use tokio_util::sync::CancellationToken;

use super::ingest::Ingest;
use crate::lock;
use crate::metrics::Metrics;
use crate::network::{self, Lookup, NetworkError, NetworkHandle, Proto};
use crate::repo::Repo;

/// Deadline of the DHT phase of a network find.
pub const DHT_DEADLINE: Duration = Duration::from_secs(5);
/// Providers asked at once.
pub const FETCH_CONCURRENCY: usize = 16;
/// Most providers asked in one find.
pub const MAX_PROVIDERS_ASKED: usize = 512;
/// Most distinct lacking spec ids fetched in one find.
pub const MAX_FIND_FETCH_IDS: usize = 4096;
/// Providers remembered per lacking id (the first fetches it, the next one
/// is asked again if it did not deliver).
const HOLDERS_KEPT: usize = 4;

/// What one network find did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FindStats {
    /// Providers found in the DHT, other than this node, and asked.
    pub providers: usize,
    /// Ids listed by the providers, summed over providers.
    pub listed: usize,
    /// Distinct listed ids this node lacked.
    pub missing: usize,
    /// Spec bodies received in fetch responses.
    pub fetched: usize,
    /// Specs verified and newly stored.
    pub stored: usize,
}

/// State shared by the concurrent provider tasks of one find (short
/// critical sections, never held across an await).
#[derive(Default)]
struct Shared {
    /// Lacking id → providers that listed it, in order; the first fetches it.
    holders: HashMap<ToolId, Vec<PeerId>>,
    stats: FindStats,
}

/// Finds specs on the network and stores the ones this node lacks.
#[derive(Clone)]
pub struct Discovery {
    repo: Repo,
    ingest: Ingest,
    net: NetworkHandle,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
}

impl Discovery {
    /// A discovery service storing through `ingest`.
    pub fn new(
        repo: Repo,
        ingest: Ingest,
        net: NetworkHandle,
        metrics: Arc<Metrics>,
        cancel: CancellationToken,
    ) -> Self {
        Self {
            repo,
            ingest,
            net,
            metrics,
            cancel,
        }
    }

    /// Asks the network for specs with `tag` or `name`, storing the ones this
    /// node lacks; the API's `fetched_from_network` is [`FindStats::stored`].
    ///
    /// With [`Lookup::First`] each shard's DHT lookup stops at its first
    /// answer naming a provider (one round trip where the routing table knows
    /// the key's closest nodes); [`Lookup::Complete`] asks until every lookup
    /// converges.
    pub async fn from_network(&self, tag: Option<&str>, name: Option<&str>, lookup: Lookup) -> FindStats {
        let (kind, value, index, legacy) = match (tag, name) {
            (Some(t), _) => (
                "tag",
                t.to_owned(),
                IndexRequest::Tag(t.to_owned()),
                FetchRequest::Tag(t.to_owned()),
            ),
            (None, Some(n)) => (
                "name",
                n.to_owned(),
                IndexRequest::Name(n.to_owned()),
                FetchRequest::Name(n.to_owned()),
            ),
            _ => return FindStats::default(),
        };
        let (Ok(index), Ok(legacy)) = (wire::encode_message(&index), wire::encode_message(&legacy)) else {
            return FindStats::default();
        };
        let started = Instant::now();
        let keys = network::all_shard_keys(kind, &value);
        let shards = keys.len();
        let metrics = self.metrics.clone();
        let lookups = futures::stream::iter(keys)
            .map(|k| {
                let net = self.net.clone();
                async move {
                    match tokio::time::timeout(DHT_DEADLINE, net.get_providers(k, lookup)).await {
                        Ok(Ok(p)) => p,
                        _ => HashSet::new(),
                    }
                }
            })
            .buffer_unordered(shards)
            .chain(futures::stream::once(async move {
                metrics.dht_query_seconds.observe(started.elapsed().as_secs_f64());
                HashSet::new()
            }));
        let me = self.net.local_peer_id();
        let mut asked: HashSet<PeerId> = HashSet::new();
        let shared = Mutex::new(Shared::default());
        lookups
            .flat_map(futures::stream::iter)
            .filter(|p| futures::future::ready(*p != me && asked.insert(*p)))
            .take(MAX_PROVIDERS_ASKED)
            .map(|peer| self.ask_provider(peer, &index, &legacy, &shared))
            .buffer_unordered(FETCH_CONCURRENCY)
            .for_each(|()| async {})
            .await;
        self.retry_undelivered(&shared).await;
        let mut stats = lock::lock(&shared).stats;
        stats.providers = asked.len();
        debug!(kind, %value, ?stats, "network find");
        stats
    }

    /// One provider: its ids, then the bodies of the lacking ones nobody else
    /// is fetching. A provider that does not speak `/atr/index/1` (an older
    /// node) is asked for the bodies by tag or name instead.
    async fn ask_provider(&self, peer: PeerId, index: &[u8], legacy: &[u8], shared: &Mutex<Shared>) {
        let ids = match self.net.request(Proto::Index, peer, index.to_vec()).await {
            Ok(raw) => match parse_index_response(&raw) {
                Ok(ids) => ids,
                Err(reason) => {
                    debug!(%peer, reason, "bad index response");
                    self.net.penalize(peer, reason);
                    return;
                }
            },
            Err(NetworkError::Unsupported { .. }) => {
                match self.net.request(Proto::Fetch, peer, legacy.to_vec()).await {
                    Ok(raw) => {
                        let got = self.ingest.fetched(peer, &raw, None, false).await;
                        self.metrics.find_bodies_fetched.inc_by(got.received as u64);
                        let mut s = lock::lock(shared);
                        s.stats.fetched += got.received;
                        s.stats.stored += got.stored;
                    }
                    Err(e) => debug!(%peer, error = %e, "provider did not answer"),
                }
                return;
            }
            Err(e) => {
                debug!(%peer, error = %e, "provider did not answer");
                return;
            }
        };
        self.metrics.find_ids_listed.inc_by(ids.len() as u64);
        let listed = ids.len();
        let lacking: Vec<ToolId> = self
            .repo
            .blocking(move |r| r.read(|cat| ids.into_iter().filter(|id| cat.get(id).is_none()).collect()))
            .await
            .unwrap_or_default();
        let mine: Vec<ToolId> = {
            let mut s = lock::lock(shared);
            {
                s.stats.listed += listed;
                let mut mine = Vec::new();
                for id in lacking {
                    if !s.holders.contains_key(&id) && s.holders.len() >= MAX_FIND_FETCH_IDS {
                        continue;
                    }
                    let holders = s.holders.entry(id).or_default();
                    if holders.len() < HOLDERS_KEPT && !holders.contains(&peer) {
                        holders.push(peer);
                        if holders.len() == 1 {
                            mine.push(id);
                        }
                    }
                }
                s.stats.missing = s.holders.len();
                mine
            }
        };
        self.fetch_ids(peer, &mine, shared).await;
    }

    /// Fetches `ids` from `peer` in batches of [`wire::MAX_FETCH_IDS`], verifying
    /// each object (one not asked for is refused and counted against the peer).
    /// Stops at the first request that fails.
    async fn fetch_ids(&self, peer: PeerId, ids: &[ToolId], shared: &Mutex<Shared>) {
        for chunk in ids.chunks(wire::MAX_FETCH_IDS) {
            if self.cancel.is_cancelled() {
                return;
            }
            let asked: HashSet<[u8; 32]> = chunk.iter().map(|id| id.0).collect();
            let Ok(bytes) = wire::encode_message(&FetchRequest::Ids(chunk.to_vec())) else {
                return;
            };
            let raw = match self.net.request(Proto::Fetch, peer, bytes).await {
                Ok(raw) => raw,
                Err(e) => {
                    debug!(%peer, error = %e, "provider did not deliver");
                    return;
                }
            };
            let got = self.ingest.fetched(peer, &raw, Some(asked), false).await;
            self.metrics.find_bodies_fetched.inc_by(got.received as u64);
            let mut s = lock::lock(shared);
            s.stats.fetched += got.received;
            s.stats.stored += got.stored;
        }
    }

    /// Ids still lacking after every provider answered (their first lister
    /// failed or left them out) are asked once from the next provider that
    /// listed them.
    async fn retry_undelivered(&self, shared: &Mutex<Shared>) {
        let candidates: Vec<(ToolId, PeerId)> = lock::lock(shared)
            .holders
            .iter()
            .filter_map(|(id, h)| h.get(1).map(|p| (*id, *p)))
            .collect();
        if candidates.is_empty() {
            return;
        }
        let still: Vec<(ToolId, PeerId)> = self
            .repo
            .blocking(move |r| {
                r.read(|cat| {
                    candidates
                        .into_iter()
                        .filter(|(id, _)| cat.get(id).is_none())
                        .collect()
                })
            })
            .await
            .unwrap_or_default();
        let mut by_peer: HashMap<PeerId, Vec<ToolId>> = HashMap::new();
        for (id, peer) in still {
            by_peer.entry(peer).or_default().push(id);
        }
        futures::stream::iter(by_peer)
            .map(|(peer, ids)| async move { self.fetch_ids(peer, &ids, shared).await })
            .buffer_unordered(FETCH_CONCURRENCY)
            .for_each(|()| async {})
            .await;
    }
}

/// Decodes an index response under its caps; on failure, the penalty reason
/// to count against the peer.
pub fn parse_index_response(raw: &[u8]) -> Result<Vec<ToolId>, &'static str> {
    match IndexResponse::decode(raw) {
        Ok(r) => Ok(r.ids),
        Err(WireError::Limit { .. }) => Err("oversized_index_response"),
        Err(_) => Err("bad_index_response"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_index_responses_are_refused_with_a_reason() {
        let ok = IndexResponse {
            ids: vec![ToolId([3; 32]); 2],
            truncated: false,
        };
        assert_eq!(
            parse_index_response(&wire::encode_message(&ok).unwrap()),
            Ok(vec![ToolId([3; 32]); 2])
        );
        let over = IndexResponse {
            ids: vec![ToolId([3; 32]); wire::MAX_INDEX_IDS + 1],
            truncated: true,
        };
        assert_eq!(
            parse_index_response(&wire::encode_message(&over).unwrap()),
            Err("oversized_index_response")
        );
        assert_eq!(parse_index_response(b"\xff junk"), Err("bad_index_response"));
        assert_eq!(
            parse_index_response(&vec![0x40; wire::MAX_INDEX_RESPONSE_BYTES + 1]),
            Err("bad_index_response")
        );
    }
}
