//! What the node benchmarks share: the word list, the made-up image digest,
//! percentiles and a loopback node config.
// Each bench uses part of this module.
#![allow(dead_code)]

use std::time::Duration;

use atrd::config::Config;

pub(crate) const DIGEST: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
pub(crate) const WORDS: [&str; 50] = [
    "weather",
    "forecast",
    "convert",
    "currency",
    "translate",
    "summarize",
    "search",
    "image",
    "resize",
    "math",
    "solve",
    "equation",
    "calendar",
    "schedule",
    "email",
    "parse",
    "json",
    "csv",
    "sql",
    "query",
    "vector",
    "embed",
    "hash",
    "encrypt",
    "compress",
    "audio",
    "transcribe",
    "video",
    "geo",
    "route",
    "stock",
    "price",
    "news",
    "feed",
    "pdf",
    "extract",
    "table",
    "chart",
    "plot",
    "random",
    "uuid",
    "time",
    "zone",
    "unit",
    "distance",
    "text",
    "grammar",
    "spell",
    "code",
    "lint",
];

pub(crate) fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    if v.is_empty() {
        return f64::NAN;
    }
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

/// A loopback node with the sandbox off, bootstrapping to `boot`.
pub(crate) fn config(dir: &std::path::Path, boot: Vec<libp2p::Multiaddr>) -> Config {
    let mut c = Config::with_data_dir(dir);
    c.api = "127.0.0.1:0".parse().expect("addr");
    c.network.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().expect("addr")];
    c.network.bootstrap = boot;
    c.network.heartbeat = Duration::from_millis(100);
    c.sandbox.enabled = false;
    c
}
