//! Anti-entropy: a node that was offline or just joined catches up.
//!
//! One round with a peer: send our 256 bucket digests; the peer answers with
//! the hashes of its objects in whole buckets that differ; fetch the ones we
//! lack in batches of [`wire::MAX_FETCH_IDS`], [`FETCHES_IN_FLIGHT`] at once,
//! verifying each batch in parallel and storing it in one group commit,
//! until the round's byte budget ([`MAX_ROUND_BYTES`]) is spent. Rounds run
//! when a peer connects and every `sync_interval` with a random connected
//! peer; while a round stores objects and the peer has more, the next one
//! follows at once (catch-up).
//!
//! Budgets (`[network.budgets]`): at most `sync_rounds` rounds run at once
//! (a round that finds no slot is skipped and counted; the periodic round
//! catches up), each ends at `sync_round_deadline`, and a round ends at the
//! first short delivery (fewer objects than asked in a response that is not
//! near the byte cap); a peer that delivers none of the ids it listed is
//! penalized (`sync_undelivered`). So slow or lying peers cost a bounded
//! number of slots for a bounded time and never hold the dispatcher.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::Semaphore;

use atr_protocol::id::ByteBuf;
use atr_protocol::wire::{self, FetchRequest, SyncRequest, SyncResponse};
use libp2p::{Multiaddr, PeerId};
use rand::seq::IndexedRandom;
use tracing::{debug, info, warn};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::ingest::Ingest;
use crate::metrics::Metrics;
use crate::network::{NetworkHandle, Proto};
use crate::repo::Repo;
use crate::store::PeerRecord;
use crate::time::now_ms;

/// Most object bytes fetched in one round; the rest waits for the next.
pub const MAX_ROUND_BYTES: usize = 64 * 1024 * 1024;
/// Most known peers dialed at start.
pub const MAX_START_DIALS: usize = 32;
/// Most rounds in a row with one peer while each makes progress.
pub const MAX_CATCHUP_ROUNDS: usize = 64;
/// Fetch requests of one round in flight at once. A responder reserves
/// [`wire::MAX_FETCH_RESPONSE_BYTES`] per fetch it answers, within a
/// per-peer budget of at least twice that (`response_bytes_in_flight` / 8,
/// 8 MiB by default), so two fit and a third could be dropped.
pub const FETCHES_IN_FLIGHT: usize = 2;

/// Result of one round.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RoundStats {
    /// Objects the peer listed that we lacked.
    pub missing: usize,
    /// Objects fetched and stored.
    pub stored: usize,
    /// Objects refused (invalid).
    pub refused: usize,
    /// The peer listed or held more than this round fetched.
    pub more: bool,
}

/// Anti-entropy rounds and the peer address book.
#[derive(Clone)]
pub struct Syncer {
    repo: Repo,
    ingest: Ingest,
    net: NetworkHandle,
    metrics: Arc<Metrics>,
    interval: Duration,
    /// Round slots (`sync_rounds`).
    rounds: Arc<Semaphore>,
    deadline: Duration,
    cancel: CancellationToken,
    tasks: TaskTracker,
}

/// How many rounds at once and how long each may take.
#[derive(Debug, Clone, Copy)]
pub struct RoundBudget {
    /// Rounds at once.
    pub rounds: usize,
    /// Longest round.
    pub deadline: Duration,
}

impl Syncer {
    /// A syncer running a round every `interval`; dials are spawned on `tasks`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        repo: Repo,
        ingest: Ingest,
        net: NetworkHandle,
        metrics: Arc<Metrics>,
        interval: Duration,
        budget: RoundBudget,
        cancel: CancellationToken,
        tasks: TaskTracker,
    ) -> Self {
        Self {
            repo,
            ingest,
            net,
            metrics,
            interval,
            rounds: Arc::new(Semaphore::new(budget.rounds.max(1))),
            deadline: budget.deadline,
            cancel,
            tasks,
        }
    }

    /// Runs rounds with `peer` if a round slot is free, each within the
    /// round deadline, logging the outcome: another round follows at once
    /// while the last one stored objects and the peer has more (a joining
    /// node catches up without waiting for the periodic round), at most
    /// [`MAX_CATCHUP_ROUNDS`] in a row.
    pub async fn with_peer(&self, peer: PeerId) {
        let Ok(_slot) = self.rounds.clone().try_acquire_owned() else {
            self.metrics.budget_exceeded("sync_rounds");
            debug!(%peer, "every sync slot is busy: round skipped");
            return;
        };
        for _ in 0..MAX_CATCHUP_ROUNDS {
            if self.cancel.is_cancelled() {
                return;
            }
            match tokio::time::timeout(self.deadline, self.round(peer)).await {
                Ok(Ok(s)) if s.missing > 0 => {
                    info!(%peer, missing = s.missing, stored = s.stored, refused = s.refused, more = s.more, "sync round");
                    if !(s.more && s.stored > 0) {
                        return;
                    }
                }
                Ok(Ok(_)) => {
                    debug!(%peer, "sync round: in sync");
                    return;
                }
                Ok(Err(e)) => {
                    debug!(%peer, error = %e, "sync round failed");
                    return;
                }
                Err(_) => {
                    self.metrics.budget_exceeded("sync_deadline");
                    debug!(%peer, deadline = ?self.deadline, "sync round cut at its deadline");
                    return;
                }
            }
        }
    }

    /// One anti-entropy round with `peer`.
    pub async fn round(&self, peer: PeerId) -> Result<RoundStats, crate::network::NetworkError> {
        let digests = self.repo.blocking(|r| r.sync_digests()).await;
        let Ok(Ok(digests)) = digests else {
            return Ok(RoundStats::default());
        };
        let req = SyncRequest {
            digests: digests.into_iter().map(|d| ByteBuf(d.to_vec())).collect(),
        };
        let Ok(bytes) = wire::encode_message(&req) else {
            return Ok(RoundStats::default());
        };
        let resp = self.net.request(Proto::Sync, peer, bytes).await?;
        let resp = match SyncResponse::decode(&resp) {
            Ok(r) => r,
            Err(e) => {
                debug!(%peer, error = %e, "bad sync response");
                self.net.penalize(peer, "bad_sync_response");
                return Ok(RoundStats::default());
            }
        };
        let missing = self
            .repo
            .blocking(move |r| {
                resp.ids
                    .into_iter()
                    .filter(|id| !r.has_object(id.as_bytes()).unwrap_or(true))
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default();
        let mut stats = RoundStats {
            missing: missing.len(),
            more: resp.truncated,
            ..Default::default()
        };
        let mut budget = MAX_ROUND_BYTES;
        let chunks: Vec<Vec<atr_protocol::ToolId>> =
            missing.chunks(wire::MAX_FETCH_IDS).map(<[_]>::to_vec).collect();
        let n_chunks = chunks.len();
        // Fetch → verify → store, pipelined: the next responses are on their
        // way while one is verified. Results are taken in order, so the
        // round's stop rules hold; dropping the stream cancels the rest.
        let mut fetches = futures::stream::iter(chunks)
            .map(|chunk| async move {
                let asked: HashSet<[u8; 32]> = chunk.iter().map(|id| id.0).collect();
                let wanted = chunk.len();
                let bytes = wire::encode_message(&FetchRequest::Ids(chunk)).map_err(|e| {
                    crate::network::NetworkError::Request {
                        peer,
                        detail: format!("cannot encode a fetch request: {e}"),
                    }
                })?;
                let raw = self.net.request(Proto::Fetch, peer, bytes).await?;
                let got = self.ingest.fetched(peer, &raw, Some(asked), true).await;
                Ok::<_, crate::network::NetworkError>((wanted, raw.len(), got))
            })
            .buffered(FETCHES_IN_FLIGHT);
        let mut done = 0;
        while let Some(r) = fetches.next().await {
            let (wanted, size, got) = r?;
            done += 1;
            budget = budget.saturating_sub(size);
            stats.stored += got.stored;
            stats.refused += got.refused;
            if got.received == 0 {
                // Listed, then not delivered: the slow-and-empty attack.
                self.net.penalize(peer, "sync_undelivered");
                break;
            }
            if got.received < wanted && size < wire::MAX_FETCH_RESPONSE_BYTES / 2 {
                break;
            }
            if budget == 0 || self.cancel.is_cancelled() {
                break;
            }
        }
        stats.more |= done < n_chunks;
        Ok(stats)
    }

    /// Every `sync_interval`, one round with a random connected peer.
    pub async fn periodic(self) {
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                biased;
                _ = self.cancel.cancelled() => break,
                _ = tick.tick() => {}
            }
            let Ok(status) = self.net.status().await else {
                break;
            };
            let peers: Vec<PeerId> = status.peers.iter().filter_map(|p| p.peer.parse().ok()).collect();
            let pick = peers.choose(&mut rand::rng()).copied();
            if let Some(peer) = pick {
                self.with_peer(peer).await;
            }
        }
    }

    /// Records a peer's addresses so the node can reconnect after a restart.
    pub async fn remember_peer(&self, peer: PeerId, addrs: Vec<Multiaddr>) {
        let rec = PeerRecord {
            addrs: addrs.iter().take(8).map(|a| a.to_string()).collect(),
            last_seen_ms: now_ms(),
        };
        let key = peer.to_string();
        if let Ok(Err(e)) = self.repo.blocking(move |r| r.put_peer(&key, &rec)).await {
            debug!(error = %e, "could not record peer");
        }
    }

    /// Dials up to [`MAX_START_DIALS`] peers remembered from earlier runs.
    pub async fn dial_known_peers(self) {
        let peers = self.repo.blocking(|r| r.peers()).await;
        let Ok(Ok(mut peers)) = peers else { return };
        peers.sort_by_key(|(_, r)| std::cmp::Reverse(r.last_seen_ms));
        let me = self.net.local_peer_id().to_string();
        for (peer, rec) in peers.into_iter().filter(|(p, _)| *p != me).take(MAX_START_DIALS) {
            let Some(addr) = rec.addrs.iter().find_map(|a| a.parse::<Multiaddr>().ok()) else {
                continue;
            };
            let Ok(pid) = peer.parse::<PeerId>() else { continue };
            let addr = addr.with(libp2p::multiaddr::Protocol::P2p(pid));
            let net = self.net.clone();
            self.tasks.spawn(async move {
                if let Err(e) = tokio::time::timeout(Duration::from_secs(10), net.dial(addr.clone())).await {
                    debug!(%addr, error = %e, "known peer did not answer");
                }
            });
        }
        if self.cancel.is_cancelled() {
            warn!("dialing known peers interrupted by shutdown");
        }
    }
}
