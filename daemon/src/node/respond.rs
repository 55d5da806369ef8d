//! Answering peer requests: fetch (objects by hash, tag or name), index (ids
//! by tag or name), sync (which objects in differing buckets) and invoke
//! (handed to the [`Provider`]). Malformed requests are answered with an
//! empty response and counted against the peer.
//!
//! Every answer is paid for from the network's budget of response bytes in
//! flight ([`NetworkHandle::reserve_response`]): the largest answer of the
//! protocol is reserved before it is built (for invoke: the answer's size,
//! after the tool ran), the rest is given back once it is built, and the
//! network loop holds the reservation until the answer is sent. A request
//! that finds no room is dropped unanswered and counted
//! (`budget_exceeded{budget="response_bytes"}`).

use std::sync::Arc;

use atr_protocol::id::ByteBuf;
use atr_protocol::query::FindQuery;
use atr_protocol::wire::{
    self, FetchRequest, FetchResponse, IndexRequest, IndexResponse, SyncRequest, SyncResponse, WireObject,
};
use libp2p::PeerId;
use libp2p::request_response::{InboundRequestId, ResponseChannel};
use rand::seq::SliceRandom;
use tracing::{debug, warn};

use super::invoke::provider::Provider;
use crate::metrics::Metrics;
use crate::network::{NetworkHandle, Proto};
use crate::repo::Repo;

fn empty_index() -> IndexResponse {
    IndexResponse {
        ids: vec![],
        truncated: false,
    }
}

fn empty_sync() -> SyncResponse {
    SyncResponse {
        ids: vec![],
        truncated: false,
    }
}

/// Answers the requests of peers.
#[derive(Clone)]
pub struct Responder {
    repo: Repo,
    net: NetworkHandle,
    metrics: Arc<Metrics>,
    provider: Provider,
}

impl Responder {
    /// A responder reading `repo` and running invocations on `provider`.
    pub fn new(repo: Repo, net: NetworkHandle, metrics: Arc<Metrics>, provider: Provider) -> Self {
        Self {
            repo,
            net,
            metrics,
            provider,
        }
    }

    /// Handles one inbound request.
    pub async fn on_request(
        &self,
        proto: Proto,
        peer: PeerId,
        request_id: InboundRequestId,
        request: Vec<u8>,
        channel: ResponseChannel<Vec<u8>>,
    ) {
        let reserve = |bytes: usize| {
            let p = self.net.reserve_response(peer, bytes);
            if p.is_none() {
                self.metrics.budget_exceeded("response_bytes");
                debug!(%peer, ?proto, "no room for a response: request dropped");
            }
            p
        };
        let largest = match proto {
            Proto::Fetch => Some(wire::MAX_FETCH_RESPONSE_BYTES),
            Proto::Sync => Some(wire::MAX_SYNC_RESPONSE_BYTES),
            Proto::Index => Some(wire::MAX_INDEX_RESPONSE_BYTES),
            // Reserved below, once the tool has run and the answer's size is known.
            Proto::Invoke => None,
        };
        let early = match largest.map(reserve) {
            Some(None) => return,
            reserved => reserved.flatten(),
        };
        let answer = match proto {
            Proto::Fetch => {
                let resp = match FetchRequest::decode(&request) {
                    Ok(req) => {
                        self.metrics.peer_request("fetch");
                        self.repo
                            .blocking(move |r| answer_fetch(r, &req))
                            .await
                            .unwrap_or(FetchResponse { objects: vec![] })
                    }
                    Err(e) => {
                        debug!(%peer, error = %e, "bad fetch request");
                        self.net.penalize(peer, "bad_fetch_request");
                        FetchResponse { objects: vec![] }
                    }
                };
                wire::encode_message(&resp)
            }
            Proto::Sync => {
                let resp = match SyncRequest::decode(&request) {
                    Ok(req) => {
                        self.metrics.peer_request("sync");
                        self.repo
                            .blocking(move |r| answer_sync(r, &req))
                            .await
                            .unwrap_or_else(|_| empty_sync())
                    }
                    Err(e) => {
                        debug!(%peer, error = %e, "bad sync request");
                        self.net.penalize(peer, "bad_sync_request");
                        empty_sync()
                    }
                };
                wire::encode_message(&resp)
            }
            Proto::Index => {
                let resp = match IndexRequest::decode(&request) {
                    Ok(req) => {
                        self.metrics.peer_request("index");
                        self.repo
                            .blocking(move |r| answer_index(r, &req))
                            .await
                            .unwrap_or_else(|_| empty_index())
                    }
                    Err(e) => {
                        debug!(%peer, error = %e, "bad index request");
                        self.net.penalize(peer, "bad_index_request");
                        empty_index()
                    }
                };
                wire::encode_message(&resp)
            }
            Proto::Invoke => {
                self.metrics.peer_request("invoke");
                let resp = self.provider.answer(&self.net, peer, &request).await;
                wire::encode_message(&resp)
            }
        };
        let bytes = match answer {
            Ok(b) => b,
            Err(e) => {
                warn!(error = %e, "could not encode a response");
                return;
            }
        };
        let Some(mut permit) = early.or_else(|| reserve(bytes.len())) else {
            return;
        };
        permit.shrink_to(bytes.len());
        if let Err(e) = self.net.respond(proto, request_id, channel, bytes, permit).await {
            debug!(error = %e, "could not respond");
        }
    }
}

/// Builds a fetch response within the object and byte caps (blocking).
fn answer_fetch(repo: &Repo, req: &FetchRequest) -> FetchResponse {
    let mut out = Vec::new();
    let mut bytes = 0usize;
    let mut push = |o: WireObject| -> bool {
        let n = o.envelope().len() + 16;
        if out.len() >= wire::MAX_FETCH_OBJECTS || bytes + n > wire::MAX_FETCH_RESPONSE_BYTES - 1024 {
            return false;
        }
        bytes += n;
        out.push(o);
        true
    };
    match req {
        FetchRequest::Ids(ids) => {
            for id in ids {
                match repo.object(id.as_bytes()) {
                    Ok(Some(o)) => {
                        if !push(o) {
                            break;
                        }
                    }
                    Ok(None) => {}
                    Err(e) => warn!(error = %e, "store read failed while serving fetch"),
                }
            }
        }
        FetchRequest::Tag(_) | FetchRequest::Name(_) => {
            let q = match req {
                FetchRequest::Tag(t) => FindQuery {
                    tag: Some(t.clone()),
                    limit: Some(atr_protocol::query::MAX_FIND_LIMIT),
                    ..Default::default()
                },
                FetchRequest::Name(n) => FindQuery {
                    name: Some(n.clone()),
                    limit: Some(atr_protocol::query::MAX_FIND_LIMIT),
                    ..Default::default()
                },
                _ => return FetchResponse { objects: out },
            };
            // Copy envelopes only until the response is full: a ~10-byte
            // request by a popular tag must not copy a thousand of them.
            repo.read(|cat| {
                for e in cat.find(&q, None) {
                    if !push(WireObject::Spec(ByteBuf(e.spec.to_bytes()))) {
                        break;
                    }
                }
            });
        }
        _ => {}
    }
    FetchResponse { objects: out }
}

/// Lists the ids of this node's active specs with the tag or name asked for,
/// in listing order, at most [`MAX_FIND_LIMIT`] (blocking).
///
/// [`MAX_FIND_LIMIT`]: atr_protocol::query::MAX_FIND_LIMIT
fn answer_index(repo: &Repo, req: &IndexRequest) -> IndexResponse {
    let limit = atr_protocol::query::MAX_FIND_LIMIT.min(wire::MAX_INDEX_IDS);
    let mut q = FindQuery {
        limit: Some(limit),
        ..Default::default()
    };
    match req {
        IndexRequest::Tag(t) => q.tag = Some(t.clone()),
        IndexRequest::Name(n) => q.name = Some(n.clone()),
        _ => return empty_index(),
    }
    let ids: Vec<atr_protocol::ToolId> =
        repo.read(|cat| cat.find(&q, None).iter().map(|e| e.spec.id()).collect());
    IndexResponse {
        truncated: ids.len() >= limit,
        ids,
    }
}

/// Lists this node's objects in the buckets whose digests differ (blocking).
fn answer_sync(repo: &Repo, req: &SyncRequest) -> SyncResponse {
    let mine = match repo.sync_digests_for_peers() {
        Ok(d) => d,
        Err(e) => {
            warn!(error = %e, "cannot compute sync digests");
            return empty_sync();
        }
    };
    let mut differing: Vec<u8> = (0..wire::SYNC_BUCKETS)
        .filter(|&b| req.digests.get(b).map(|d| d.0.as_slice()) != mine.get(b).map(|d| d.as_slice()))
        .map(|b| b as u8)
        .collect();
    // When the answer is truncated, a fixed bucket order could keep listing
    // objects the requester already has; a random order makes progress.
    differing.shuffle(&mut rand::rng());
    match repo.ids_in_buckets(&differing, wire::MAX_SYNC_REFS) {
        Ok((ids, truncated)) => SyncResponse {
            ids: ids.into_iter().map(atr_protocol::ToolId).collect(),
            truncated,
        },
        Err(e) => {
            warn!(error = %e, "cannot list sync ids");
            empty_sync()
        }
    }
}
