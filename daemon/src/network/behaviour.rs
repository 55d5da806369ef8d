//! The composed libp2p behaviour: connection limits (count and memory),
//! identify, Kademlia (server mode, atr's own protocol name, atr's own
//! record store: [`super::dht_store`]), gossipsub (signed, validated, scored,
//! content-addressed message ids) and four request-response protocols
//! (fetch, sync, invoke and index), each with its own timeout and byte caps.

// The `NetworkBehaviour` derive generates an undocumented `BehaviourEvent` enum.
#![allow(missing_docs)]

use std::time::Duration;

use atr_protocol::wire;
use libp2p::identity::Keypair;
use libp2p::metrics::Registry;
use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{
    StreamProtocol, autonat, connection_limits, dcutr, gossipsub, identify, kad, mdns,
    memory_connection_limits, relay, request_response,
};

use super::codec::CappedBytes;
use super::dht_store::{DhtLimits, DhtStore};
use crate::config::NetworkOptions;
use crate::metrics::LabeledCounter;

/// Timeout of one fetch request.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Timeout of one invoke request: the longest tool limit plus container
/// start and transfer time. Callers apply the spec's own, shorter deadline.
pub const INVOKE_TIMEOUT: Duration = Duration::from_millis(atr_protocol::limits::MAX_TIMEOUT_MS + 30_000);
/// Timeout of one sync request.
pub const SYNC_TIMEOUT: Duration = Duration::from_secs(10);
/// Timeout of one index request (as a fetch).
pub const INDEX_TIMEOUT: Duration = FETCH_TIMEOUT;

/// How long gossipsub keeps a received message in its cache (at least 5
/// heartbeats, its default). A message is forwarded only if its validation
/// verdict arrives while it is still cached: a spec verified after a wait
/// (a busy CPU, the verification queue) would otherwise be stored but never
/// passed on, and reach the other nodes only through anti-entropy.
pub const GOSSIP_CACHE_WINDOW: Duration = Duration::from_secs(3);

/// [`GOSSIP_CACHE_WINDOW`] in heartbeats (5 to 100).
fn history_length(heartbeat: Duration) -> usize {
    let beats = GOSSIP_CACHE_WINDOW.as_millis() / heartbeat.as_millis().max(1);
    usize::try_from(beats).map_or(100, |b| b.clamp(5, 100))
}

/// All of atrd's protocols.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    /// Connections in total, per peer and pending (`[network.budgets]`).
    pub limits: connection_limits::Behaviour,
    /// No new connections while the process uses too much memory.
    pub memory: memory_connection_limits::Behaviour,
    /// Exchange of listen addresses and protocols.
    pub identify: identify::Behaviour,
    /// DHT: provider records for tags and names.
    pub kad: kad::Behaviour<DhtStore>,
    /// Spec and revocation propagation.
    pub gossipsub: gossipsub::Behaviour,
    /// Fetch objects by hash, tag or name.
    pub fetch: request_response::Behaviour<CappedBytes>,
    /// Anti-entropy summaries.
    pub sync: request_response::Behaviour<CappedBytes>,
    /// Invocations.
    pub invoke: request_response::Behaviour<CappedBytes>,
    /// Ids of the specs a peer holds with a tag or name.
    pub index: request_response::Behaviour<CappedBytes>,
    /// Reserving slots on relays and dialing through them (always on).
    pub relay_client: relay::client::Behaviour,
    /// Relaying for others (`[network.nat] relay_server`, off by default).
    pub relay: Toggle<relay::Behaviour>,
    /// Whether this node is reachable, and dial-backs for others.
    pub autonat: Toggle<autonat::Behaviour>,
    /// Hole punching: relayed connections upgraded to direct ones.
    pub dcutr: Toggle<dcutr::Behaviour>,
    /// Peers on the local network.
    pub mdns: Toggle<mdns::tokio::Behaviour>,
}

/// Why the behaviour could not be built.
#[derive(Debug, thiserror::Error)]
#[error("network configuration: {0}")]
pub struct BuildError(pub String);

impl Behaviour {
    /// Builds every protocol from the node key and options. Gossipsub
    /// registers its counters (messages received with and without duplicate
    /// filtering, among others) in `registry`; the DHT store counts the
    /// records it refuses in `refused`.
    pub fn new(
        key: &Keypair,
        opts: &NetworkOptions,
        registry: &mut Registry,
        refused: LabeledCounter,
        relay_client: relay::client::Behaviour,
    ) -> Result<Self, BuildError> {
        let b = &opts.budgets;
        let limits = connection_limits::Behaviour::new(
            connection_limits::ConnectionLimits::default()
                .with_max_established(Some(b.max_connections))
                .with_max_established_per_peer(Some(b.max_connections_per_peer))
                .with_max_pending_incoming(Some(b.max_pending_incoming))
                .with_max_pending_outgoing(Some(b.max_pending_outgoing)),
        );
        let memory = match b.max_memory_mib {
            Some(mib) => memory_connection_limits::Behaviour::with_max_bytes(
                usize::try_from(mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX),
            ),
            None => memory_connection_limits::Behaviour::with_max_percentage(
                f64::from(b.max_memory_percent) / 100.0,
            ),
        };
        let peer_id = key.public().to_peer_id();
        let identify = identify::Behaviour::new(
            identify::Config::new("/atr/id/1".into(), key.public())
                .with_agent_version(format!("atrd/{}", env!("CARGO_PKG_VERSION")))
                // A relayed address appears after the first identify (once
                // the relay accepted the reservation): push it to connected
                // peers at once, or the relay's DHT never hands it out and no
                // one can dial a node behind a NAT (issue 18).
                .with_push_listen_addr_updates(true)
                // No second address book: identify's own cache would hand
                // every listen address of a peer (loopback, each circuit) to
                // the next dial; the DHT keeps the filtered ones
                // (`nat::dial_candidates`).
                .with_cache_size(0),
        );

        let store = DhtStore::new(
            peer_id,
            DhtLimits {
                foreign_records: b.dht_foreign_records,
                records_per_peer: b.dht_records_per_peer,
            },
            refused,
        );
        let mut kcfg = kad::Config::new(StreamProtocol::new(wire::KAD_PROTOCOL));
        kcfg.set_query_timeout(Duration::from_secs(10));
        let mut kad = kad::Behaviour::with_config(peer_id, store, kcfg);
        kad.set_mode(Some(kad::Mode::Server));

        let gcfg = gossipsub::ConfigBuilder::default()
            .heartbeat_interval(opts.heartbeat)
            .history_length(history_length(opts.heartbeat))
            .validation_mode(gossipsub::ValidationMode::Strict)
            .validate_messages()
            .max_transmit_size(wire::MAX_GOSSIP_BYTES + 1024)
            .message_id_fn(|m: &gossipsub::Message| {
                gossipsub::MessageId::from(blake3::hash(&m.data).as_bytes().to_vec())
            })
            .duplicate_cache_time(Duration::from_secs(120))
            .mesh_n(opts.gossip_mesh_n)
            .mesh_n_low(opts.gossip_mesh_n.saturating_sub(1).max(1))
            .mesh_n_high(opts.gossip_mesh_n * 2)
            .mesh_outbound_min((opts.gossip_mesh_n / 3).clamp(1, 2))
            .flood_publish(opts.flood_publish)
            .idontwant_message_size_threshold(opts.idontwant_threshold)
            .build()
            .map_err(|e| BuildError(e.to_string()))?;
        let topic = gossipsub::IdentTopic::new(wire::GOSSIP_TOPIC);
        let (mut params, thresholds) = score_params(&topic);
        // Only the atr topic gets series: labels never come from peers.
        let mut mcfg = gossipsub::MetricsConfig {
            max_topics: 1,
            max_never_subscribed_topics: 0,
            ..Default::default()
        };
        mcfg.buckets_using_scoring_thresholds(&thresholds);
        let mut gossipsub =
            gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Signed(key.clone()), gcfg)
                .map_err(|e| BuildError(e.to_string()))?
                .with_metrics(registry, mcfg);
        if !opts.ip_colocation_penalty {
            params.ip_colocation_factor_weight = 0.0;
        }
        gossipsub
            .with_peer_score(params, thresholds)
            .map_err(BuildError)?;
        gossipsub
            .subscribe(&topic)
            .map_err(|e| BuildError(e.to_string()))?;

        let fetch = request_response::Behaviour::with_codec(
            CappedBytes {
                max_request: wire::MAX_FETCH_REQUEST_BYTES,
                max_response: wire::MAX_FETCH_RESPONSE_BYTES,
            },
            [(
                StreamProtocol::new(wire::FETCH_PROTOCOL),
                request_response::ProtocolSupport::Full,
            )],
            request_response::Config::default()
                .with_request_timeout(FETCH_TIMEOUT)
                .with_max_concurrent_streams(64),
        );
        let sync = request_response::Behaviour::with_codec(
            CappedBytes {
                max_request: wire::MAX_SYNC_REQUEST_BYTES,
                max_response: wire::MAX_SYNC_RESPONSE_BYTES,
            },
            [(
                StreamProtocol::new(wire::SYNC_PROTOCOL),
                request_response::ProtocolSupport::Full,
            )],
            request_response::Config::default()
                .with_request_timeout(SYNC_TIMEOUT)
                .with_max_concurrent_streams(16),
        );
        let invoke = request_response::Behaviour::with_codec(
            CappedBytes {
                max_request: wire::MAX_INVOKE_REQUEST_BYTES,
                max_response: wire::MAX_INVOKE_RESPONSE_BYTES,
            },
            [(
                StreamProtocol::new(wire::INVOKE_PROTOCOL),
                request_response::ProtocolSupport::Full,
            )],
            request_response::Config::default()
                .with_request_timeout(INVOKE_TIMEOUT)
                .with_max_concurrent_streams(64),
        );
        let index = request_response::Behaviour::with_codec(
            CappedBytes {
                max_request: wire::MAX_INDEX_REQUEST_BYTES,
                max_response: wire::MAX_INDEX_RESPONSE_BYTES,
            },
            [(
                StreamProtocol::new(wire::INDEX_PROTOCOL),
                request_response::ProtocolSupport::Full,
            )],
            request_response::Config::default()
                .with_request_timeout(INDEX_TIMEOUT)
                .with_max_concurrent_streams(64),
        );
        let nat = &opts.nat;
        let relay = nat.relay_server.then(|| {
            let mut r = relay::Behaviour::new(peer_id, super::nat::relay_config(nat));
            // The operator opted in: offer the hop protocol without waiting
            // for a confirmed external address.
            r.set_status(Some(relay::Status::Enable));
            r
        });
        let autonat = nat
            .autonat
            .then(|| autonat::Behaviour::new(peer_id, super::nat::autonat_config(nat)));
        let dcutr = nat.hole_punching.then(|| dcutr::Behaviour::new(peer_id));
        let mdns = if super::nat::mdns_enabled(nat.mdns, &opts.listen) {
            let cfg = mdns::Config {
                query_interval: Duration::from_secs(60),
                ..Default::default()
            };
            Some(mdns::tokio::Behaviour::new(cfg, peer_id).map_err(|e| BuildError(format!("mdns: {e}")))?)
        } else {
            None
        };
        Ok(Self {
            relay_client,
            relay: relay.into(),
            autonat: autonat.into(),
            dcutr: dcutr.into(),
            mdns: mdns.into(),
            limits,
            memory,
            identify,
            kad,
            gossipsub,
            fetch,
            sync,
            invoke,
            index,
        })
    }
}

/// Peer scoring: invalid messages weigh heavily, so a peer that sends forged
/// or malformed specs is graylisted after a few.
fn score_params(
    topic: &gossipsub::IdentTopic,
) -> (gossipsub::PeerScoreParams, gossipsub::PeerScoreThresholds) {
    let mut params = gossipsub::PeerScoreParams::default();
    let tp = gossipsub::TopicScoreParams {
        topic_weight: 1.0,
        invalid_message_deliveries_weight: -100.0,
        invalid_message_deliveries_decay: 0.9,
        ..Default::default()
    };
    params.topics.insert(topic.hash(), tp);
    let thresholds = gossipsub::PeerScoreThresholds {
        gossip_threshold: -100.0,
        publish_threshold: -500.0,
        graylist_threshold: -1000.0,
        ..Default::default()
    };
    (params, thresholds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_cache_spans_the_window_at_any_heartbeat() {
        assert_eq!(history_length(Duration::from_millis(200)), 15);
        assert_eq!(history_length(Duration::from_secs(1)), 5);
        assert_eq!(history_length(Duration::from_secs(10)), 5);
        assert_eq!(history_length(Duration::from_millis(1)), 100);
        assert_eq!(history_length(Duration::ZERO), 100);
    }
}
