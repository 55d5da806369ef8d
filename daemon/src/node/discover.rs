//! Discovery from the network: DHT providers of a tag's or name's shard keys,
//! then a fetch by tag or name to each provider, verifying every spec.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use atr_protocol::wire::{self, FetchRequest};
use futures::StreamExt;
use libp2p::PeerId;
use tracing::debug;

use super::NodeState;
use super::sync::ingest_fetched;
use crate::metrics;
use crate::network::{self, Proto};

/// Deadline of the DHT phase of a network find.
pub const DHT_DEADLINE: Duration = Duration::from_secs(5);
/// Providers asked at once.
pub const FETCH_CONCURRENCY: usize = 16;
/// Most providers asked in one find.
pub const MAX_PROVIDERS_ASKED: usize = 512;

/// Asks the network for specs with `tag` or `name`; returns how many new
/// specs were stored.
pub async fn from_network(state: &Arc<NodeState>, tag: Option<&str>, name: Option<&str>) -> usize {
    let (kind, value, req) = match (tag, name) {
        (Some(t), _) => ("tag", t.to_owned(), FetchRequest::Tag(t.to_owned())),
        (None, Some(n)) => ("name", n.to_owned(), FetchRequest::Name(n.to_owned())),
        _ => return 0,
    };
    let started = Instant::now();
    let lookups = network::all_shard_keys(kind, &value).into_iter().map(|k| {
        let net = state.net.clone();
        async move { tokio::time::timeout(DHT_DEADLINE, net.get_providers(k)).await }
    });
    let mut providers: HashSet<PeerId> = HashSet::new();
    let results = futures::future::join_all(lookups).await;
    for r in results.into_iter().flatten().flatten() {
        providers.extend(r);
    }
    metrics::DHT_QUERY_SECONDS.observe(started.elapsed().as_secs_f64());
    providers.remove(&state.net.local_peer_id());
    debug!(kind, %value, providers = providers.len(), "DHT providers found");
    let Ok(bytes) = wire::encode_message(&req) else {
        return 0;
    };
    futures::stream::iter(providers.into_iter().take(MAX_PROVIDERS_ASKED))
        .map(|peer| {
            let bytes = bytes.clone();
            async move {
                match state.net.request(Proto::Fetch, peer, bytes).await {
                    Ok(raw) => ingest_fetched(state, peer, &raw, None).await.0,
                    Err(e) => {
                        debug!(%peer, error = %e, "provider did not answer");
                        0
                    }
                }
            }
        })
        .buffer_unordered(FETCH_CONCURRENCY)
        .fold(0usize, |acc, n| async move { acc + n })
        .await
}
