//! Every metric of the node, named once here, rendered in the Prometheus
//! text format by [`render`] (one `# HELP`/`# TYPE` per family, label values
//! escaped — the ancestor library got both wrong).
//!
//! Counters are process-global statics: cheap to bump from any task. The
//! gossipsub counters are per node ([`GossipMetrics`]): libp2p-gossipsub
//! keeps them itself in a registry the node owns.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// A monotonically increasing counter.
#[derive(Debug)]
pub struct Counter {
    name: &'static str,
    help: &'static str,
    value: AtomicU64,
}

impl Counter {
    /// A new counter.
    pub const fn new(name: &'static str, help: &'static str) -> Self {
        Self {
            name,
            help,
            value: AtomicU64::new(0),
        }
    }
    /// Adds one.
    pub fn inc(&self) {
        self.value.fetch_add(1, Ordering::Relaxed);
    }
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.value.fetch_add(n, Ordering::Relaxed);
    }
    /// Current value.
    pub fn get(&self) -> u64 {
        self.value.load(Ordering::Relaxed)
    }
}

/// A counter family with one label.
#[derive(Debug)]
pub struct LabeledCounter {
    name: &'static str,
    help: &'static str,
    label: &'static str,
    values: Mutex<BTreeMap<String, u64>>,
}

/// A handle to one labeled series.
pub struct Series<'a> {
    family: &'a LabeledCounter,
    value: String,
}

impl Series<'_> {
    /// Adds one.
    pub fn inc(&self) {
        if let Ok(mut m) = self.family.values.lock() {
            // The label set is bounded: callers pass &'static str reasons/outcomes.
            *m.entry(self.value.clone()).or_insert(0) += 1;
        }
    }
}

impl LabeledCounter {
    /// A new family.
    pub const fn new(name: &'static str, help: &'static str, label: &'static str) -> Self {
        Self {
            name,
            help,
            label,
            values: Mutex::new(BTreeMap::new()),
        }
    }
    /// The series for a label value.
    pub fn with_label(&self, value: &str) -> Series<'_> {
        Series {
            family: self,
            value: value.to_owned(),
        }
    }
    /// Value of one series.
    pub fn get(&self, value: &str) -> u64 {
        self.values
            .lock()
            .map(|m| m.get(value).copied().unwrap_or(0))
            .unwrap_or(0)
    }
}

/// A latency histogram in seconds with fixed buckets.
#[derive(Debug)]
pub struct Histogram {
    name: &'static str,
    help: &'static str,
    buckets: &'static [f64],
    counts: Mutex<(Vec<u64>, u64, f64)>,
}

impl Histogram {
    /// A new histogram.
    pub const fn new(name: &'static str, help: &'static str, buckets: &'static [f64]) -> Self {
        Self {
            name,
            help,
            buckets,
            counts: Mutex::new((Vec::new(), 0, 0.0)),
        }
    }
    /// Records one observation, seconds.
    pub fn observe(&self, secs: f64) {
        if let Ok(mut c) = self.counts.lock() {
            if c.0.len() != self.buckets.len() {
                c.0 = vec![0; self.buckets.len()];
            }
            for (i, b) in self.buckets.iter().enumerate() {
                if secs <= *b {
                    c.0[i] += 1;
                }
            }
            c.1 += 1;
            c.2 += secs;
        }
    }
}

const LATENCY_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Specs stored (gauge-like counter of inserts).
pub static SPECS_STORED: Counter = Counter::new("atr_specs_stored_total", "Specs verified and stored.");
/// Revocations stored.
pub static REVOCATIONS_STORED: Counter =
    Counter::new("atr_revocations_stored_total", "Revocations verified and stored.");
/// Gossip messages received.
pub static GOSSIP_RECEIVED: Counter = Counter::new("atr_gossip_received_total", "Gossip messages received.");
/// Gossip verdicts by outcome.
pub static GOSSIP_VERDICTS: LabeledCounter = LabeledCounter::new(
    "atr_gossip_verdicts_total",
    "Gossip validation verdicts.",
    "outcome",
);
/// Bad peer messages by reason.
pub static BAD_MESSAGES: LabeledCounter = LabeledCounter::new(
    "atr_bad_peer_messages_total",
    "Malformed or invalid peer messages.",
    "reason",
);
/// Network events dropped because the node was not keeping up.
pub static EVENTS_DROPPED: Counter = Counter::new(
    "atr_network_events_dropped_total",
    "Network events dropped (node overloaded).",
);
/// API requests by outcome.
pub static API_REQUESTS: LabeledCounter =
    LabeledCounter::new("atr_api_requests_total", "Local API requests.", "outcome");
/// Peer requests served, by protocol.
pub static PEER_REQUESTS: LabeledCounter =
    LabeledCounter::new("atr_peer_requests_total", "Requests served to peers.", "protocol");
/// Objects learned by anti-entropy sync.
pub static SYNC_OBJECTS: Counter = Counter::new(
    "atr_sync_objects_total",
    "Objects learned through anti-entropy sync.",
);
/// Spec ids listed by providers to this node's network finds.
pub static FIND_IDS_LISTED: Counter = Counter::new(
    "atr_find_ids_listed_total",
    "Spec ids listed by providers in answer to network finds.",
);
/// Spec bodies received by this node's network finds.
pub static FIND_BODIES_FETCHED: Counter = Counter::new(
    "atr_find_bodies_fetched_total",
    "Spec bodies received in answer to network finds.",
);
/// DHT provider lookup latency.
pub static DHT_QUERY_SECONDS: Histogram = Histogram::new(
    "atr_dht_query_seconds",
    "Latency of DHT provider lookups.",
    LATENCY_BUCKETS,
);

/// Name of the per-node counter of unique gossip messages.
pub const GOSSIP_MESSAGES_RECEIVED: &str = "atr_gossip_messages_received_total";
/// Name of the per-node counter of duplicate gossip messages.
pub const GOSSIP_DUPLICATES_RECEIVED: &str = "atr_gossip_duplicates_received_total";

/// One node's gossipsub counters, filled by libp2p-gossipsub (its `metrics`
/// feature) in a `prometheus_client` registry that only this node uses.
#[derive(Debug, Default)]
pub struct GossipMetrics {
    registry: prometheus_client::registry::Registry,
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
    /// The registry, for `gossipsub::Behaviour::with_metrics` at build time.
    pub fn registry_mut(&mut self) -> &mut prometheus_client::registry::Registry {
        &mut self.registry
    }

    /// Current counts of `topic` (the atr topic).
    pub fn counts(&self, topic: &str) -> GossipCounts {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode_registry(&mut text, &self.registry).is_err() {
            return GossipCounts::default();
        }
        let sample = |family: &str| -> u64 {
            let prefix = format!("{family}_total{{hash=\"{}\"}} ", escape(topic));
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

/// Renders every metric; `counters` adds this node's own counters and
/// `gauges` point-in-time values (name, help, value).
pub fn render(counters: &[(&str, &str, u64)], gauges: &[(&str, &str, f64)]) -> String {
    let mut out = String::new();
    for (name, help, v) in counters {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
    }
    for c in [
        &SPECS_STORED,
        &REVOCATIONS_STORED,
        &GOSSIP_RECEIVED,
        &EVENTS_DROPPED,
        &SYNC_OBJECTS,
        &FIND_IDS_LISTED,
        &FIND_BODIES_FETCHED,
    ] {
        let _ = writeln!(
            out,
            "# HELP {} {}\n# TYPE {} counter\n{} {}",
            c.name,
            c.help,
            c.name,
            c.name,
            c.get()
        );
    }
    for f in [&GOSSIP_VERDICTS, &BAD_MESSAGES, &API_REQUESTS, &PEER_REQUESTS] {
        let _ = writeln!(out, "# HELP {} {}\n# TYPE {} counter", f.name, f.help, f.name);
        if let Ok(m) = f.values.lock() {
            for (v, n) in m.iter() {
                let _ = writeln!(out, "{}{{{}=\"{}\"}} {}", f.name, f.label, escape(v), n);
            }
        }
    }
    let h = &DHT_QUERY_SECONDS;
    let _ = writeln!(out, "# HELP {} {}\n# TYPE {} histogram", h.name, h.help, h.name);
    if let Ok(c) = h.counts.lock() {
        for (i, b) in h.buckets.iter().enumerate() {
            let _ = writeln!(
                out,
                "{}_bucket{{le=\"{}\"}} {}",
                h.name,
                b,
                c.0.get(i).copied().unwrap_or(0)
            );
        }
        let _ = writeln!(
            out,
            "{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}",
            h.name, c.1, h.name, c.2, h.name, c.1
        );
    }
    for (name, help, v) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_help_appears_once() {
        BAD_MESSAGES.with_label("x\"} evil 1 #").inc();
        let text = render(&[], &[("atr_specs", "Specs in the store.", 3.0)]);
        assert!(text.contains(r#"reason="x\"} evil 1 #""#), "{text}");
        assert_eq!(text.matches("# HELP atr_bad_peer_messages_total").count(), 1);
        assert!(text.contains("atr_specs 3"));
    }

    /// The parser reads the exact families libp2p-gossipsub registers, in
    /// prometheus-client's encoding.
    #[test]
    fn gossip_counts_are_read_from_gossipsubs_families() {
        use libp2p::gossipsub::TopicHash;
        use prometheus_client::metrics::counter::Counter as PCounter;
        use prometheus_client::metrics::family::Family;
        let mut m = GossipMetrics::default();
        let unique = Family::<TopicHash, PCounter>::default();
        let all = Family::<TopicHash, PCounter>::default();
        m.registry_mut()
            .register("topic_msg_recv_counts", "after filtering", unique.clone());
        m.registry_mut().register(
            "topic_msg_recv_counts_unfiltered",
            "before filtering",
            all.clone(),
        );
        let topic = TopicHash::from_raw("atr/objects/1");
        assert_eq!(m.counts("atr/objects/1"), GossipCounts::default());
        unique.get_or_create(&topic).inc_by(2);
        all.get_or_create(&topic).inc_by(7);
        all.get_or_create(&TopicHash::from_raw("other")).inc_by(100);
        let c = m.counts("atr/objects/1");
        assert_eq!((c.unique, c.all, c.duplicates()), (2, 7, 5));
    }
}
