//! The cloneable handle to the network loop: one async method per command,
//! each answered on a oneshot. If the loop has ended, methods return
//! [`NetworkError::Closed`].

use std::collections::HashSet;
use std::sync::Arc;

use libp2p::gossipsub::{MessageAcceptance, MessageId};
use libp2p::request_response::{InboundRequestId, ResponseChannel};
use libp2p::{Multiaddr, PeerId};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use super::budget::{ResponseBudget, ResponsePermit};
use super::proto::Proto;
use crate::metrics::{GossipCounts, GossipMetrics};

/// How far a DHT provider lookup goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lookup {
    /// Stop at the first answer that names any provider. A key's provider
    /// records are stored on the same closest nodes, so the first of them to
    /// answer names (nearly) all: one round trip where the routing table
    /// already knows them.
    #[default]
    First,
    /// Ask until the lookup converges (every closest node answered).
    Complete,
}

/// Why a network operation failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum NetworkError {
    /// The network task has stopped.
    #[error("the network task has stopped")]
    Closed,
    /// Setting up the swarm failed.
    #[error("network setup failed: {0}")]
    Setup(String),
    /// A request to a peer failed (timeout, refused, connection lost).
    #[error("request to {peer} failed: {detail}")]
    Request {
        /// The peer.
        peer: PeerId,
        /// Why.
        detail: String,
    },
    /// The peer does not speak the protocol (e.g. an older node).
    #[error("{peer} does not support the protocol")]
    Unsupported {
        /// The peer.
        peer: PeerId,
    },
    /// Publishing on gossip failed.
    #[error("gossip publish failed: {0}")]
    Publish(String),
    /// A DHT operation failed.
    #[error("DHT: {0}")]
    Dht(String),
    /// Dialing failed.
    #[error("dial {addr}: {detail}")]
    Dial {
        /// Address.
        addr: String,
        /// Why.
        detail: String,
    },
}

/// A connected peer as the loop sees it.
#[derive(Debug, Clone, Serialize)]
pub struct PeerInfo {
    /// Peer id.
    pub peer: String,
    /// Addresses we know for it.
    pub addrs: Vec<String>,
    /// Gossipsub score.
    pub score: Option<f64>,
    /// Bad messages counted against it.
    pub bad_messages: u64,
}

/// The loop's view of itself.
#[derive(Debug, Clone, Serialize)]
pub struct StatusInfo {
    /// Bound listen addresses.
    pub listen_addrs: Vec<String>,
    /// Connected peers.
    pub peers: Vec<PeerInfo>,
    /// Peers in the gossip mesh of the atr topic.
    pub mesh_peers: usize,
    /// What AutoNAT concluded: `public`, `private` or `unknown`.
    pub reachability: String,
    /// Relays this node holds (or is requesting) a reservation on.
    pub relays: Vec<String>,
}

/// Commands the handle sends to the loop.
#[derive(Debug)]
pub(crate) enum Command {
    Publish {
        data: Vec<u8>,
        reply: oneshot::Sender<Result<bool, NetworkError>>,
    },
    Verdict {
        message_id: MessageId,
        source: PeerId,
        acceptance: MessageAcceptance,
    },
    Penalize {
        peer: PeerId,
        reason: &'static str,
    },
    Announce {
        key: Vec<u8>,
        reply: oneshot::Sender<Result<(), NetworkError>>,
    },
    Withdraw {
        key: Vec<u8>,
    },
    GetProviders {
        key: Vec<u8>,
        lookup: Lookup,
        reply: oneshot::Sender<Result<HashSet<PeerId>, NetworkError>>,
    },
    Request {
        proto: Proto,
        peer: PeerId,
        bytes: Vec<u8>,
        reply: oneshot::Sender<Result<Vec<u8>, NetworkError>>,
    },
    Respond {
        proto: Proto,
        request_id: InboundRequestId,
        channel: ResponseChannel<Vec<u8>>,
        bytes: Vec<u8>,
        permit: ResponsePermit,
    },
    Dial {
        addr: Multiaddr,
        reply: oneshot::Sender<Result<(), NetworkError>>,
    },
    Status {
        reply: oneshot::Sender<StatusInfo>,
    },
}

/// Cloneable handle to the network loop.
#[derive(Debug, Clone)]
pub struct NetworkHandle {
    tx: mpsc::Sender<Command>,
    local: PeerId,
    gossip: Arc<GossipMetrics>,
    responses: ResponseBudget,
}

impl NetworkHandle {
    pub(crate) fn new(
        tx: mpsc::Sender<Command>,
        local: PeerId,
        gossip: Arc<GossipMetrics>,
        responses: ResponseBudget,
    ) -> Self {
        Self {
            tx,
            local,
            gossip,
            responses,
        }
    }

    /// Gossipsub's counts of atr-topic messages received by this node, with
    /// and without duplicates (read without going through the loop).
    pub fn gossip_counts(&self) -> GossipCounts {
        self.gossip.counts(atr_protocol::wire::GOSSIP_TOPIC)
    }

    /// This node's peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.local
    }

    async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, NetworkError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(make(tx)).await.map_err(|_| NetworkError::Closed)?;
        rx.await.map_err(|_| NetworkError::Closed)
    }

    fn send_nowait(&self, cmd: Command) -> Result<(), NetworkError> {
        self.tx.try_send(cmd).map_err(|_| NetworkError::Closed)
    }

    /// Publishes bytes on the atr gossip topic. `Ok(false)` when no peer was
    /// there to receive it (anti-entropy will carry it later).
    pub async fn publish(&self, data: Vec<u8>) -> Result<bool, NetworkError> {
        self.call(|reply| Command::Publish { data, reply }).await?
    }

    /// Reports the validation verdict of a gossip message (never blocks).
    pub fn verdict(&self, message_id: MessageId, source: PeerId, acceptance: MessageAcceptance) {
        // A full command channel means the loop is overloaded; gossipsub then
        // drops the message on its own after the validation window.
        let _ = self.send_nowait(Command::Verdict {
            message_id,
            source,
            acceptance,
        });
    }

    /// Counts a bad message against `peer`; repeated offenders are disconnected.
    pub fn penalize(&self, peer: PeerId, reason: &'static str) {
        let _ = self.send_nowait(Command::Penalize { peer, reason });
    }

    /// Announces this node as a provider of `key` in the DHT.
    pub async fn announce(&self, key: Vec<u8>) -> Result<(), NetworkError> {
        self.call(|reply| Command::Announce { key, reply }).await?
    }

    /// Stops announcing this node as a provider of `key` (records already
    /// on other nodes expire on their own).
    pub fn withdraw(&self, key: Vec<u8>) {
        let _ = self.send_nowait(Command::Withdraw { key });
    }

    /// Finds the providers of `key` in the DHT, to the end of the lookup or only its first
    /// answer that names any ([`Lookup`]).
    pub async fn get_providers(&self, key: Vec<u8>, lookup: Lookup) -> Result<HashSet<PeerId>, NetworkError> {
        self.call(|reply| Command::GetProviders { key, lookup, reply })
            .await?
    }

    /// Sends a request and waits for the response (the protocol's timeout applies).
    pub async fn request(&self, proto: Proto, peer: PeerId, bytes: Vec<u8>) -> Result<Vec<u8>, NetworkError> {
        self.call(|reply| Command::Request {
            proto,
            peer,
            bytes,
            reply,
        })
        .await?
    }

    /// Reserves `bytes` of the budget of responses in flight for an answer
    /// to `peer` ([`ResponseBudget`]); `None` means: do not answer.
    pub fn reserve_response(&self, peer: PeerId, bytes: usize) -> Option<ResponsePermit> {
        self.responses.try_reserve(peer, bytes)
    }

    /// Bytes of responses in flight now (tests and metrics).
    pub fn responses_in_flight(&self) -> usize {
        self.responses.in_flight()
    }

    /// Answers an inbound request; `permit` (at least `bytes.len()`) is held
    /// until the response is sent or fails.
    pub async fn respond(
        &self,
        proto: Proto,
        request_id: InboundRequestId,
        channel: ResponseChannel<Vec<u8>>,
        bytes: Vec<u8>,
        permit: ResponsePermit,
    ) -> Result<(), NetworkError> {
        self.tx
            .send(Command::Respond {
                proto,
                request_id,
                channel,
                bytes,
                permit,
            })
            .await
            .map_err(|_| NetworkError::Closed)
    }

    /// Dials an address.
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), NetworkError> {
        self.call(|reply| Command::Dial { addr, reply }).await?
    }

    /// Listen addresses and connected peers.
    pub async fn status(&self) -> Result<StatusInfo, NetworkError> {
        self.call(|reply| Command::Status { reply }).await
    }
}
