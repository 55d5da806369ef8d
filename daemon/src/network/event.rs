//! [`NetworkEvent`]: what the network loop tells the node.

use libp2p::{Multiaddr, PeerId};

#[cfg(doc)]
use super::handle::NetworkHandle;
use super::proto::Proto;

/// What the network tells the node.
#[derive(Debug)]
#[non_exhaustive]
pub enum NetworkEvent {
    /// A gossip message awaiting validation.
    Gossip {
        /// The peer that forwarded it (penalized on reject).
        source: PeerId,
        /// The peer that created (signed) it.
        author: Option<PeerId>,
        /// Its content id.
        message_id: libp2p::gossipsub::MessageId,
        /// The bytes.
        data: Vec<u8>,
    },
    /// A peer asks something; answer with [`NetworkHandle::respond`].
    InboundRequest {
        /// Which protocol.
        proto: Proto,
        /// Who asks.
        peer: PeerId,
        /// Its id, to hand back with the response.
        request_id: libp2p::request_response::InboundRequestId,
        /// The raw request (capped by the codec).
        request: Vec<u8>,
        /// Where the answer goes.
        channel: libp2p::request_response::ResponseChannel<Vec<u8>>,
    },
    /// A connection to a new peer is up.
    PeerConnected {
        /// The peer.
        peer: PeerId,
    },
    /// A peer told us its listen addresses.
    PeerIdentified {
        /// The peer.
        peer: PeerId,
        /// Its listen addresses.
        addrs: Vec<Multiaddr>,
    },
}
