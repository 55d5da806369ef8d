//! Anti-entropy: a node that was offline or just joined catches up.
//!
//! One round with a peer: send our 256 bucket digests; the peer answers with
//! the hashes of its objects in buckets that differ; fetch the ones we lack
//! in batches of [`wire::MAX_FETCH_IDS`], verifying each, until the round's
//! byte budget ([`MAX_ROUND_BYTES`]) is spent. Rounds run when a peer
//! connects and every `sync_interval` with a random connected peer.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use atr_protocol::id::ByteBuf;
use atr_protocol::wire::{self, FetchRequest, FetchResponse, SyncRequest, SyncResponse};
use libp2p::{Multiaddr, PeerId};
use rand::seq::IndexedRandom;
use tracing::{debug, info, warn};

use super::NodeState;
use super::ingest::{self, Ingested};
use crate::metrics;
use crate::network::Proto;
use crate::store::PeerRecord;

/// Most object bytes fetched in one round; the rest waits for the next.
pub const MAX_ROUND_BYTES: usize = 16 * 1024 * 1024;
/// Most known peers dialed at start.
pub const MAX_START_DIALS: usize = 32;

/// Result of one round.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RoundStats {
    /// Objects the peer listed that we lacked.
    pub missing: usize,
    /// Objects fetched and stored.
    pub stored: usize,
    /// Objects refused (invalid).
    pub refused: usize,
}

/// Runs one round with `peer`, logging the outcome.
pub async fn with_peer(state: &Arc<NodeState>, peer: PeerId) {
    match round(state, peer).await {
        Ok(s) if s.missing > 0 => {
            info!(%peer, missing = s.missing, stored = s.stored, refused = s.refused, "sync round")
        }
        Ok(_) => debug!(%peer, "sync round: in sync"),
        Err(e) => debug!(%peer, error = %e, "sync round failed"),
    }
}

/// One anti-entropy round with `peer`.
pub async fn round(state: &Arc<NodeState>, peer: PeerId) -> Result<RoundStats, crate::network::NetworkError> {
    let digests = state.blocking(|s| s.store.sync_digests()).await;
    let Ok(Ok(digests)) = digests else {
        return Ok(RoundStats::default());
    };
    let req = SyncRequest {
        digests: digests.into_iter().map(|d| ByteBuf(d.to_vec())).collect(),
    };
    let Ok(bytes) = wire::encode_message(&req) else {
        return Ok(RoundStats::default());
    };
    let resp = state.net.request(Proto::Sync, peer, bytes).await?;
    let resp = match SyncResponse::decode(&resp) {
        Ok(r) => r,
        Err(e) => {
            debug!(%peer, error = %e, "bad sync response");
            state.net.penalize(peer, "bad_sync_response");
            return Ok(RoundStats::default());
        }
    };
    let missing = state
        .blocking(move |s| {
            resp.ids
                .into_iter()
                .filter(|id| !s.store.has_object(id.as_bytes()).unwrap_or(true))
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
    let mut stats = RoundStats {
        missing: missing.len(),
        ..Default::default()
    };
    let mut budget = MAX_ROUND_BYTES;
    for chunk in missing.chunks(wire::MAX_FETCH_IDS) {
        if budget == 0 || state.cancel.is_cancelled() {
            break;
        }
        let asked: HashSet<[u8; 32]> = chunk.iter().map(|id| id.0).collect();
        let Ok(bytes) = wire::encode_message(&FetchRequest::Ids(chunk.to_vec())) else {
            break;
        };
        let raw = state.net.request(Proto::Fetch, peer, bytes).await?;
        budget = budget.saturating_sub(raw.len());
        let got = ingest_fetched(state, peer, &raw, Some(asked)).await;
        stats.stored += got.stored;
        stats.refused += got.refused;
    }
    metrics::SYNC_OBJECTS.add(stats.stored as u64);
    Ok(stats)
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

/// Verifies and stores the objects of a fetch response. With `asked`, an
/// object that was not asked for is refused and counted against the peer.
pub async fn ingest_fetched(
    state: &Arc<NodeState>,
    peer: PeerId,
    raw: &[u8],
    asked: Option<HashSet<[u8; 32]>>,
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
                state.net.penalize(peer, "bad_fetch_response");
                return refused_whole;
            }
        };
    if resp.objects.len() > wire::MAX_FETCH_OBJECTS {
        state.net.penalize(peer, "oversized_fetch_response");
        return refused_whole;
    }
    let received = resp.objects.len();
    let results = state
        .blocking(move |s| {
            resp.objects
                .iter()
                .map(|o| {
                    let hash = *blake3::hash(&envelope_body(o.envelope())).as_bytes();
                    if let Some(a) = &asked
                        && !a.contains(&hash)
                    {
                        return Err("unrequested_object");
                    }
                    match ingest::object_blocking(s, o) {
                        Ok((_, Ingested::New)) => Ok(true),
                        Ok((_, Ingested::Known)) => Ok(false),
                        Err(e) if e.blames_sender() => Err(e.reason()),
                        Err(_) => Ok(false),
                    }
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
    let mut got = Fetched {
        received,
        ..Fetched::default()
    };
    for r in results {
        match r {
            Ok(true) => got.stored += 1,
            Ok(false) => {}
            Err(reason) => {
                got.refused += 1;
                state.net.penalize(peer, reason);
            }
        }
    }
    got
}

/// The body of an envelope, for hashing before full verification; empty if malformed.
fn envelope_body(envelope: &[u8]) -> Vec<u8> {
    match atr_protocol::cbor::decode(envelope, atr_protocol::limits::MAX_ENVELOPE_BYTES) {
        Ok(ciborium::value::Value::Array(items)) => match items.into_iter().next() {
            Some(ciborium::value::Value::Bytes(b)) => b,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// Every `sync_interval`, one round with a random connected peer.
pub async fn periodic(state: Arc<NodeState>) {
    let mut tick = tokio::time::interval(state.config.network.sync_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            biased;
            _ = state.cancel.cancelled() => break,
            _ = tick.tick() => {}
        }
        let Ok(status) = state.net.status().await else {
            break;
        };
        let peers: Vec<PeerId> = status.peers.iter().filter_map(|p| p.peer.parse().ok()).collect();
        let pick = peers.choose(&mut rand::rng()).copied();
        if let Some(peer) = pick {
            with_peer(&state, peer).await;
        }
    }
}

/// Records a peer's addresses so the node can reconnect after a restart.
pub async fn remember_peer(state: &Arc<NodeState>, peer: PeerId, addrs: Vec<Multiaddr>) {
    let rec = PeerRecord {
        addrs: addrs.iter().take(8).map(|a| a.to_string()).collect(),
        last_seen_ms: now_ms(),
    };
    let key = peer.to_string();
    if let Ok(Err(e)) = state.blocking(move |s| s.store.put_peer(&key, &rec)).await {
        debug!(error = %e, "could not record peer");
    }
}

/// Dials up to [`MAX_START_DIALS`] peers remembered from earlier runs.
pub async fn dial_known_peers(state: Arc<NodeState>) {
    let peers = state.blocking(|s| s.store.peers()).await;
    let Ok(Ok(mut peers)) = peers else { return };
    peers.sort_by_key(|(_, r)| std::cmp::Reverse(r.last_seen_ms));
    let me = state.identity.peer_id().to_string();
    for (peer, rec) in peers.into_iter().filter(|(p, _)| *p != me).take(MAX_START_DIALS) {
        let Some(addr) = rec.addrs.iter().find_map(|a| a.parse::<Multiaddr>().ok()) else {
            continue;
        };
        let Ok(pid) = peer.parse::<PeerId>() else { continue };
        let addr = addr.with(libp2p::multiaddr::Protocol::P2p(pid));
        let st = state.clone();
        state.tasks.spawn(async move {
            if let Err(e) = tokio::time::timeout(Duration::from_secs(10), st.net.dial(addr.clone())).await {
                debug!(%addr, error = %e, "known peer did not answer");
            }
        });
    }
    if state.cancel.is_cancelled() {
        warn!("dialing known peers interrupted by shutdown");
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
