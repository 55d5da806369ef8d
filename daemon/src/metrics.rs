//! Every metric of the node, named once here, held in one
//! `prometheus_client` [`Registry`] per node and rendered by
//! [`Metrics::render`] (OpenMetrics text, `prometheus_client`'s encoder).
//!
//! [`Metrics`] is created by the node and shared (`Arc`) with the network
//! loop and the services; two nodes in one process count separately.
//!
//! Counters are registered without their `_total` suffix: the encoder
//! appends it, so `specs_stored` is exposed as `atr_specs_stored_total`.
//! The exposed names are read by the testnet and the tests: keep them.
//!
//! The gossipsub counters are libp2p-gossipsub's own (its `metrics` feature):
//! it fills them in a registry of its own, [`GossipMetrics`], rendered after
//! atr's as `atr_gossipsub_*`, and keeps the handles private, so the two
//! `atr_gossip_*` series derived from them are
//! read from that registry's encoding at scrape time (the one place text is
//! read back; prometheus-client has no other way to read a value it did not
//! hand out).

use std::sync::{Arc, Mutex};

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::lock;

/// Prefix of every series this node exposes.
const PREFIX: &str = "atr";
/// Buckets of latency histograms, seconds.
const LATENCY_BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A counter family with one label whose values are a small fixed set of
/// `&'static str` (reasons, outcomes, protocols), so the series are bounded.
pub type LabeledCounter = Family<[(&'static str, &'static str); 1], Counter>;

/// One node's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    gossip: Arc<GossipMetrics>,
    /// Specs verified and stored (inserts).
    pub specs_stored: Counter,
    /// Revocations verified and stored.
    pub revocations_stored: Counter,
    /// Gossip messages delivered by gossipsub to the node.
    pub gossip_received: Counter,
    /// Gossip validation verdicts, label `outcome`.
    gossip_verdicts: LabeledCounter,
    /// Bad peer messages, label `reason`.
    bad_messages: LabeledCounter,
    /// Network events dropped because the node was not keeping up.
    pub events_dropped: Counter,
    /// Local API requests, label `outcome` (`ok` or the error code).
    api_requests: LabeledCounter,
    /// Requests served to peers, label `protocol`.
    peer_requests: LabeledCounter,
    /// Work refused because a peer budget was exhausted, label `budget`
    /// (the names are in `docs/security.md`).
    budget_exceeded: LabeledCounter,
    /// Objects learned through anti-entropy sync.
    pub sync_objects: Counter,
    /// Spec ids listed by providers in answer to network finds.
    pub find_ids_listed: Counter,
    /// Spec bodies received in answer to network finds.
    pub find_bodies_fetched: Counter,
    /// Latency of DHT provider lookups, seconds.
    pub dht_query_seconds: Histogram,
    /// Objects from peers the store refused for a budget, label `reason`
    /// (`quota`, `store_full`, `pending_full`, `superseded`). Such objects
    /// are ignored on gossip (not forwarded, sender not penalized).
    store_refused: LabeledCounter,
    /// Revocations of held specs applied but not stored (retried).
    pub revocations_unpersisted: Counter,
    /// Specs in the store (set at scrape time).
    specs: Gauge,
    /// Revocations in the store (set at scrape time).
    revocations: Gauge,
    /// Connected peers (set at scrape time).
    connected_peers: Gauge,
    /// Connections established, label `kind` (`direct`, `relayed`).
    connections: LabeledCounter,
    /// DCUtR hole punching attempts, label `outcome` (`success`, `failure`).
    hole_punches: LabeledCounter,
    /// This node's NAT events, label `event` (relay reservations and
    /// circuits as a client, relay addresses, mDNS discoveries).
    nat_events: LabeledCounter,
    /// Relay work done for other peers, label `event`.
    relay_served: LabeledCounter,
    /// What AutoNAT concluded: 1 on the current `status` (`public`,
    /// `private`, `unknown`), 0 on the others.
    reachability: Family<[(&'static str, &'static str); 1], Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix(PREFIX);
        let gossip = Arc::new(GossipMetrics::default());
        let m = Self {
            registry: Registry::default(),
            gossip: gossip.clone(),
            specs_stored: Counter::default(),
            revocations_stored: Counter::default(),
            gossip_received: Counter::default(),
            gossip_verdicts: LabeledCounter::default(),
            bad_messages: LabeledCounter::default(),
            events_dropped: Counter::default(),
            api_requests: LabeledCounter::default(),
            peer_requests: LabeledCounter::default(),
            budget_exceeded: LabeledCounter::default(),
            sync_objects: Counter::default(),
            find_ids_listed: Counter::default(),
            find_bodies_fetched: Counter::default(),
            dht_query_seconds: Histogram::new(LATENCY_BUCKETS),
            store_refused: LabeledCounter::default(),
            revocations_unpersisted: Counter::default(),
            specs: Gauge::default(),
            revocations: Gauge::default(),
            connected_peers: Gauge::default(),
            connections: LabeledCounter::default(),
            hole_punches: LabeledCounter::default(),
            nat_events: LabeledCounter::default(),
            relay_served: LabeledCounter::default(),
            reachability: Family::default(),
        };
        let r = &mut registry;
        r.register(
            "specs_stored",
            "Specs verified and stored",
            m.specs_stored.clone(),
        );
        r.register(
            "revocations_stored",
            "Revocations verified and stored",
            m.revocations_stored.clone(),
        );
        r.register(
            "gossip_received",
            "Gossip messages received",
            m.gossip_received.clone(),
        );
        r.register(
            "network_events_dropped",
            "Network events dropped (node overloaded)",
            m.events_dropped.clone(),
        );
        r.register(
            "sync_objects",
            "Objects learned through anti-entropy sync",
            m.sync_objects.clone(),
        );
        r.register(
            "find_ids_listed",
            "Spec ids listed by providers in answer to network finds",
            m.find_ids_listed.clone(),
        );
        r.register(
            "find_bodies_fetched",
            "Spec bodies received in answer to network finds",
            m.find_bodies_fetched.clone(),
        );
        r.register(
            "gossip_verdicts",
            "Gossip validation verdicts",
            m.gossip_verdicts.clone(),
        );
        r.register(
            "bad_peer_messages",
            "Malformed or invalid peer messages",
            m.bad_messages.clone(),
        );
        r.register("api_requests", "Local API requests", m.api_requests.clone());
        r.register(
            "peer_requests",
            "Requests served to peers",
            m.peer_requests.clone(),
        );
        r.register(
            "budget_exceeded",
            "Work refused because a peer budget was exhausted",
            m.budget_exceeded.clone(),
        );
        r.register(
            "dht_query_seconds",
            "Latency of DHT provider lookups",
            m.dht_query_seconds.clone(),
        );
        r.register(
            "store_refused",
            "Objects refused for a store budget",
            m.store_refused.clone(),
        );
        r.register(
            "revocations_unpersisted",
            "Revocations of held specs applied but not stored",
            m.revocations_unpersisted.clone(),
        );
        r.register("specs", "Specs in the store", m.specs.clone());
        r.register("revocations", "Revocations in the store", m.revocations.clone());
        r.register("connected_peers", "Connected peers", m.connected_peers.clone());
        r.register(
            "connections",
            "Connections established, by kind (direct or relayed)",
            m.connections.clone(),
        );
        r.register(
            "hole_punches",
            "DCUtR hole punching attempts, by outcome",
            m.hole_punches.clone(),
        );
        r.register(
            "nat_events",
            "Relay reservations and circuits as a client, relay addresses, mDNS discoveries",
            m.nat_events.clone(),
        );
        r.register(
            "relay_served",
            "Relay reservations and circuits served to other peers",
            m.relay_served.clone(),
        );
        r.register(
            "reachability",
            "What AutoNAT concluded (1 on the current status)",
            m.reachability.clone(),
        );
        m.set_reachability("unknown");
        r.register_collector(Box::new(GossipCollector(gossip)));
        Self { registry, ..m }
    }

    /// Counts one gossip verdict (`accept`, `reject`, `ignore`, `keep`: stored, not forwarded).
    pub fn gossip_verdict(&self, outcome: &'static str) {
        self.gossip_verdicts.get_or_create(&[("outcome", outcome)]).inc();
    }

    /// Counts one bad message from a peer.
    pub fn bad_message(&self, reason: &'static str) {
        self.bad_messages.get_or_create(&[("reason", reason)]).inc();
    }

    /// Counts one object refused for a store budget.
    pub fn store_refused(&self, reason: &'static str) {
        self.store_refused.get_or_create(&[("reason", reason)]).inc();
    }

    /// How many objects were refused for a store budget with this reason.
    pub fn store_refused_count(&self, reason: &'static str) -> u64 {
        self.store_refused.get_or_create(&[("reason", reason)]).get()
    }

    /// Counts one local API request by outcome.
    pub fn api_request(&self, outcome: &'static str) {
        self.api_requests.get_or_create(&[("outcome", outcome)]).inc();
    }

    /// Counts one request served to a peer.
    pub fn peer_request(&self, protocol: &'static str) {
        self.peer_requests.get_or_create(&[("protocol", protocol)]).inc();
    }

    /// Counts one refusal at `budget`.
    pub fn budget_exceeded(&self, budget: &'static str) {
        self.budget_exceeded.get_or_create(&[("budget", budget)]).inc();
    }

    /// Counts one connection established (`direct` or `relayed`).
    pub fn connection_established(&self, kind: &'static str) {
        self.connections.get_or_create(&[("kind", kind)]).inc();
    }

    /// Connections of `kind` established so far.
    pub fn connections_count(&self, kind: &'static str) -> u64 {
        self.connections.get_or_create(&[("kind", kind)]).get()
    }

    /// Counts one hole punching attempt.
    pub fn hole_punch(&self, outcome: &'static str) {
        self.hole_punches.get_or_create(&[("outcome", outcome)]).inc();
    }

    /// Hole punching attempts with `outcome` so far.
    pub fn hole_punch_count(&self, outcome: &'static str) -> u64 {
        self.hole_punches.get_or_create(&[("outcome", outcome)]).get()
    }

    /// Counts one NAT event of this node.
    pub fn nat_event(&self, event: &'static str) {
        self.nat_events.get_or_create(&[("event", event)]).inc();
    }

    /// NAT events `event` so far.
    pub fn nat_event_count(&self, event: &'static str) -> u64 {
        self.nat_events.get_or_create(&[("event", event)]).get()
    }

    /// Counts one piece of relay work done for others.
    pub fn relay_served(&self, event: &'static str) {
        self.relay_served.get_or_create(&[("event", event)]).inc();
    }

    /// Relay work `event` done so far.
    pub fn relay_served_count(&self, event: &'static str) -> u64 {
        self.relay_served.get_or_create(&[("event", event)]).get()
    }

    /// Sets the AutoNAT status gauge.
    pub fn set_reachability(&self, status: &'static str) {
        for s in ["public", "private", "unknown"] {
            self.reachability
                .get_or_create(&[("status", s)])
                .set(i64::from(s == status));
        }
    }

    /// The refusal counter itself, for parts built before the node (the DHT store).
    pub fn budget_counter(&self) -> LabeledCounter {
        self.budget_exceeded.clone()
    }

    /// How often `budget` was exceeded so far (tests and status).
    pub fn budget_exceeded_count(&self, budget: &'static str) -> u64 {
        self.budget_exceeded.get_or_create(&[("budget", budget)]).get()
    }

    /// Gossipsub's counters of this node, for building the gossipsub behaviour.
    pub fn gossip(&self) -> &Arc<GossipMetrics> {
        &self.gossip
    }

    /// Renders every series with the point-in-time values given.
    pub fn render(&self, now: Snapshot) -> String {
        self.specs.set(now.specs as i64);
        self.revocations.set(now.revocations as i64);
        self.connected_peers.set(now.connected_peers as i64);
        use prometheus_client::encoding::text::{encode_eof, encode_registry};
        let mut out = String::new();
        let encoded = encode_registry(&mut out, &self.registry)
            .and_then(|()| self.gossip.with_registry(|r| encode_registry(&mut out, r)))
            .and_then(|()| encode_eof(&mut out));
        if let Err(e) = encoded {
            tracing::warn!(error = %e, "cannot encode metrics");
        }
        out
    }
}

/// Point-in-time values rendered as gauges.
#[derive(Debug, Default, Clone, Copy)]
pub struct Snapshot {
    /// Specs in the store.
    pub specs: u64,
    /// Revocations in the store.
    pub revocations: u64,
    /// Connected peers.
    pub connected_peers: usize,
}

/// The local API's request counter, as the API's error type reaches it.
///
/// `ApiError::into_response` has no access to the node, so it counts through
/// this handle, which finds the serving node's [`Metrics`] in a task-local
/// set by the API's middleware ([`scope_api`]). Outside that scope nothing is
/// counted.
pub const API_REQUESTS: ApiRequests = ApiRequests;

/// See [`API_REQUESTS`].
#[derive(Debug, Clone, Copy)]
pub struct ApiRequests;

/// One outcome of [`API_REQUESTS`].
#[derive(Debug, Clone, Copy)]
pub struct ApiOutcome(&'static str);

impl ApiRequests {
    /// The series of `outcome` (`ok` or a stable error code).
    pub fn with_label(&self, outcome: &'static str) -> ApiOutcome {
        ApiOutcome(outcome)
    }
}

impl ApiOutcome {
    /// Counts one request in the serving node's registry.
    pub fn inc(&self) {
        let _ = CURRENT_API.try_with(|m| m.api_request(self.0));
    }
}

tokio::task_local! {
    static CURRENT_API: Arc<Metrics>;
}

/// Runs `fut` (one API request) with `metrics` as the node that counts it.
pub async fn scope_api<F: std::future::Future>(metrics: Arc<Metrics>, fut: F) -> F::Output {
    CURRENT_API.scope(metrics, fut).await
}

/// One node's gossipsub counters, filled by libp2p-gossipsub in a
/// `prometheus_client` registry that only this node uses, exposed as
/// `atr_gossipsub_*` (mesh sizes, peer scores and penalties, send queues,
/// messages dropped from them: what tells why gossip slows down).
#[derive(Debug)]
pub struct GossipMetrics {
    registry: Mutex<Registry>,
}

/// Prefix of gossipsub's own series.
const GOSSIPSUB_PREFIX: &str = "atr_gossipsub";

impl Default for GossipMetrics {
    fn default() -> Self {
        Self {
            registry: Mutex::new(Registry::with_prefix(GOSSIPSUB_PREFIX)),
        }
    }
}

/// Messages of the atr topic as gossipsub counted them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GossipCounts {
    /// Received after gossipsub's duplicate filter: each message once
    /// (then validated and, if accepted, delivered and forwarded).
    pub unique: u64,
    /// Received before the filter: every copy from every peer.
    pub all: u64,
}

impl GossipCounts {
    /// Copies gossipsub dropped: duplicates of messages already seen (and,
    /// rarely, messages refused before the filter: this node's own echoed
    /// back, or from a blacklisted peer).
    pub fn duplicates(&self) -> u64 {
        self.all.saturating_sub(self.unique)
    }
}

impl GossipMetrics {
    /// Lends the registry to `f`, for `gossipsub::Behaviour::with_metrics` at build time.
    pub fn with_registry<T>(&self, f: impl FnOnce(&mut Registry) -> T) -> T {
        f(&mut lock::lock(&self.registry))
    }

    /// Current counts of `topic` (the atr topic).
    pub fn counts(&self, topic: &str) -> GossipCounts {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode_registry(&mut text, &lock::lock(&self.registry)).is_err()
        {
            return GossipCounts::default();
        }
        let sample = |family: &str| -> u64 {
            let prefix = format!("{GOSSIPSUB_PREFIX}_{family}_total{{hash=\"{}\"}} ", escape(topic));
            text.lines()
                .find_map(|l| l.strip_prefix(prefix.as_str()))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        };
        GossipCounts {
            unique: sample("topic_msg_recv_counts"),
            all: sample("topic_msg_recv_counts_unfiltered"),
        }
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Exposes the atr topic's gossipsub counts as `atr_gossip_messages_received_total`
/// and `atr_gossip_duplicates_received_total`.
#[derive(Debug)]
struct GossipCollector(Arc<GossipMetrics>);

impl prometheus_client::collector::Collector for GossipCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let c = self.0.counts(atr_protocol::wire::GOSSIP_TOPIC);
        for (name, help, v) in [
            (
                "gossip_messages_received",
                "Gossip messages received by gossipsub, each once (after its duplicate filter)",
                c.unique,
            ),
            (
                "gossip_duplicates_received",
                "Gossip message copies dropped by gossipsub's duplicate filter",
                c.duplicates(),
            ),
        ] {
            let counter = ConstCounter::new(v);
            let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            counter.encode(metric)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every series keeps the name the testnet and the tests read, with one
    /// `# TYPE` per family.
    #[test]
    fn exposed_names_are_stable() {
        let m = Metrics::new();
        m.specs_stored.inc();
        m.bad_message("bad_fetch_request");
        m.api_request("ok");
        m.peer_request("fetch");
        m.gossip_verdict("accept");
        m.dht_query_seconds.observe(0.02);
        m.connection_established("relayed");
        m.hole_punch("success");
        m.nat_event("reservation_accepted");
        m.relay_served("circuit_accepted");
        m.set_reachability("private");
        let text = m.render(Snapshot {
            specs: 3,
            revocations: 1,
            connected_peers: 2,
        });
        for line in [
            "atr_specs_stored_total 1",
            "atr_revocations_stored_total 0",
            "atr_gossip_received_total 0",
            "atr_network_events_dropped_total 0",
            "atr_sync_objects_total 0",
            "atr_find_ids_listed_total 0",
            "atr_find_bodies_fetched_total 0",
            "atr_bad_peer_messages_total{reason=\"bad_fetch_request\"} 1",
            "atr_api_requests_total{outcome=\"ok\"} 1",
            "atr_peer_requests_total{protocol=\"fetch\"} 1",
            "atr_gossip_verdicts_total{outcome=\"accept\"} 1",
            "atr_dht_query_seconds_bucket{le=\"0.025\"} 1",
            "atr_dht_query_seconds_count 1",
            "atr_specs 3",
            "atr_revocations 1",
            "atr_connected_peers 2",
            "atr_gossip_messages_received_total 0",
            "atr_gossip_duplicates_received_total 0",
            "atr_connections_total{kind=\"relayed\"} 1",
            "atr_hole_punches_total{outcome=\"success\"} 1",
            "atr_nat_events_total{event=\"reservation_accepted\"} 1",
            "atr_relay_served_total{event=\"circuit_accepted\"} 1",
            "atr_reachability{status=\"private\"} 1",
            "atr_reachability{status=\"public\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        assert_eq!(text.matches("# TYPE atr_bad_peer_messages counter").count(), 1);
    }

    #[test]
    fn two_nodes_count_separately() {
        let (a, b) = (Metrics::new(), Metrics::new());
        a.specs_stored.inc();
        assert_eq!((a.specs_stored.get(), b.specs_stored.get()), (1, 0));
    }

    #[tokio::test]
    async fn api_outcomes_count_in_the_scoped_node_only() {
        let m = Arc::new(Metrics::new());
        scope_api(m.clone(), async { API_REQUESTS.with_label("not_found").inc() }).await;
        API_REQUESTS.with_label("not_found").inc();
        let text = m.render(Snapshot::default());
        assert!(
            text.contains("atr_api_requests_total{outcome=\"not_found\"} 1"),
            "{text}"
        );
    }

    /// The reader finds the exact families libp2p-gossipsub registers, in
    /// prometheus-client's encoding.
    #[test]
    fn gossip_counts_are_read_from_gossipsubs_families() {
        use libp2p::gossipsub::TopicHash;
        let m = GossipMetrics::default();
        let unique = Family::<TopicHash, Counter>::default();
        let all = Family::<TopicHash, Counter>::default();
        m.with_registry(|r| {
            r.register("topic_msg_recv_counts", "after filtering", unique.clone());
            r.register(
                "topic_msg_recv_counts_unfiltered",
                "before filtering",
                all.clone(),
            );
        });
        let topic = TopicHash::from_raw("atr/objects/1");
        assert_eq!(m.counts("atr/objects/1"), GossipCounts::default());
        unique.get_or_create(&topic).inc_by(2);
        all.get_or_create(&topic).inc_by(7);
        all.get_or_create(&TopicHash::from_raw("other")).inc_by(100);
        let c = m.counts("atr/objects/1");
        assert_eq!((c.unique, c.all, c.duplicates()), (2, 7, 5));
    }
}
