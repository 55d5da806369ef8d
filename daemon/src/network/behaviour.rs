//! The composed libp2p behaviour: identify, Kademlia (server mode, atr's own
//! protocol name, raised provider caps), gossipsub (signed, validated, scored,
//! content-addressed message ids) and four request-response protocols
//! (fetch, sync, invoke and index), each with its own timeout and byte caps.

// The `NetworkBehaviour` derive generates an undocumented `BehaviourEvent` enum.
#![allow(missing_docs)]

use std::time::Duration;

use atr_protocol::wire;
use libp2p::identity::Keypair;
use libp2p::metrics::Registry;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{StreamProtocol, gossipsub, identify, kad, request_response};

use super::codec::CappedBytes;
use crate::config::NetworkOptions;

/// Providers kept per DHT key. libp2p's default (20) silently drops the rest;
/// atr also shards tag keys (see `docs/architecture.md`), so a hot tag's
/// providers spread over [`crate::network::TAG_SHARDS`] keys and each stays far below this.
pub const MAX_PROVIDERS_PER_KEY: usize = 1024;
/// Keys this node may provide. Default 1024 would cap a node at ~1000 tools;
/// one key per distinct tag and per distinct name shard, so 100 000 covers
/// 10 000 specs with room to spare.
pub const MAX_PROVIDED_KEYS: usize = 100_000;
/// Timeout of one fetch request.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Timeout of one invoke request: the longest tool limit plus container
/// start and transfer time. Callers apply the spec's own, shorter deadline.
pub const INVOKE_TIMEOUT: Duration = Duration::from_millis(atr_protocol::limits::MAX_TIMEOUT_MS + 30_000);
/// Timeout of one sync request.
pub const SYNC_TIMEOUT: Duration = Duration::from_secs(10);
/// Timeout of one index request (as a fetch).
pub const INDEX_TIMEOUT: Duration = FETCH_TIMEOUT;

/// All of atrd's protocols.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    /// Exchange of listen addresses and protocols.
    pub identify: identify::Behaviour,
    /// DHT: provider records for tags and names.
    pub kad: kad::Behaviour<kad::store::MemoryStore>,
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
}

/// Why the behaviour could not be built.
#[derive(Debug, thiserror::Error)]
#[error("network configuration: {0}")]
pub struct BuildError(pub String);

impl Behaviour {
    /// Builds every protocol from the node key and options. Gossipsub
    /// registers its counters (messages received with and without duplicate
    /// filtering, among others) in `registry`.
    pub fn new(key: &Keypair, opts: &NetworkOptions, registry: &mut Registry) -> Result<Self, BuildError> {
        let peer_id = key.public().to_peer_id();
        let identify = identify::Behaviour::new(
            identify::Config::new("/atr/id/1".into(), key.public())
                .with_agent_version(format!("atrd/{}", env!("CARGO_PKG_VERSION"))),
        );

        let store = provider_store(peer_id);
        let mut kcfg = kad::Config::new(StreamProtocol::new(wire::KAD_PROTOCOL));
        kcfg.set_query_timeout(Duration::from_secs(10));
        let mut kad = kad::Behaviour::with_config(peer_id, store, kcfg);
        kad.set_mode(Some(kad::Mode::Server));

        let gcfg = gossipsub::ConfigBuilder::default()
            .heartbeat_interval(opts.heartbeat)
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
        Ok(Self {
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

/// The DHT record store with atr's raised caps.
pub fn provider_store(peer_id: libp2p::PeerId) -> kad::store::MemoryStore {
    kad::store::MemoryStore::with_config(
        peer_id,
        kad::store::MemoryStoreConfig {
            max_records: 1024,
            max_value_bytes: 65 * 1024,
            max_providers_per_key: MAX_PROVIDERS_PER_KEY,
            max_provided_keys: MAX_PROVIDED_KEYS,
        },
    )
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
    use libp2p::kad::store::RecordStore;
    use libp2p::kad::{ProviderRecord, RecordKey};

    use super::*;

    /// libp2p's default store silently keeps 20 providers per key and 1024
    /// provided keys; atr's keeps 300 providers of one key and 10 000 keys.
    #[test]
    fn store_keeps_300_providers_of_one_key_and_10000_provided_keys() {
        let me = libp2p::PeerId::random();
        let mut store = provider_store(me);
        let key = RecordKey::new(&crate::network::tag_key(
            "popular",
            &atr_protocol::SecretKey::from_seed(&[1; 32]).public(),
        ));
        for _ in 0..300 {
            store
                .add_provider(ProviderRecord::new(key.clone(), libp2p::PeerId::random(), vec![]))
                .unwrap();
        }
        assert_eq!(store.providers(&key).len(), 300);
        for i in 0..10_000 {
            let k = RecordKey::new(&format!("/atr/name/tool{i}/0"));
            store.add_provider(ProviderRecord::new(k, me, vec![])).unwrap();
        }
        assert_eq!(store.provided().count(), 10_000);

        let mut default = kad::store::MemoryStore::new(me);
        for _ in 0..300 {
            let _ = default.add_provider(ProviderRecord::new(key.clone(), libp2p::PeerId::random(), vec![]));
        }
        assert_eq!(
            default.providers(&key).len(),
            20,
            "the default the design works around"
        );
    }
}
