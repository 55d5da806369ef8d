//! Reading the nodes' JSON logs for the events the testnet measures.
//!
//! Every node runs with `--log-format json` and `RUST_LOG` [`NODE_LOG_FILTER`],
//! so its log holds little besides the structured events on
//! `atr::_events::*`. [`LogWatcher`] tails all node logs (remembering each
//! file's offset) and [`Arrivals`] keeps, per object, the first time each node
//! logged it. Times are the log lines' own timestamps (wall clock, microsecond
//! precision), so how often the harness polls does not change a measurement.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// `RUST_LOG` of every node: warnings, plus the measured events.
pub const NODE_LOG_FILTER: &str = "warn,atr::_events=info";
/// Environment variable that replaces [`NODE_LOG_FILTER`] (to debug nodes;
/// it must keep `atr::_events=info` for the measurements).
pub const ENV_NODE_LOG: &str = "ATR_TESTNET_NODE_LOG";

/// The nodes' `RUST_LOG`: `$ATR_TESTNET_NODE_LOG` or [`NODE_LOG_FILTER`].
pub fn node_log_filter() -> String {
    std::env::var(ENV_NODE_LOG)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| NODE_LOG_FILTER.to_owned())
}

/// Target of a newly stored spec (field `tool`: its id).
pub const SPEC_STORED: &str = "atr::_events::spec::stored";
/// Target of a newly stored revocation (field `revocation`: its hash, hex).
pub const REVOCATION_STORED: &str = "atr::_events::revocation::stored";
/// Longest log line parsed; longer lines are skipped (no measured event is
/// anywhere near this).
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// Most bytes read from one log per poll, so one chatty node cannot stall the
/// harness; the rest is read at the next poll.
pub const MAX_READ_PER_POLL: u64 = 4 * 1024 * 1024;

/// A measured event from a node's log.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventKind {
    /// A spec was stored (`tool` id).
    SpecStored(String),
    /// A revocation was stored (hash, hex).
    RevocationStored(String),
}

/// One event: which node, when (Unix microseconds), what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Node index.
    pub node: usize,
    /// Log timestamp, Unix microseconds.
    pub unix_us: i64,
    /// What happened.
    pub kind: EventKind,
}

#[derive(Deserialize)]
struct Line {
    timestamp: String,
    target: String,
    #[serde(default)]
    fields: HashMap<String, serde_json::Value>,
}

/// Parses one JSON log line; `None` for anything but a measured event.
pub fn parse_line(node: usize, line: &str) -> Option<Event> {
    if !line.contains("atr::_events") {
        return None;
    }
    let l: Line = serde_json::from_str(line).ok()?;
    let field = |k: &str| l.fields.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    let kind = match l.target.as_str() {
        SPEC_STORED => EventKind::SpecStored(field("tool")?),
        REVOCATION_STORED => EventKind::RevocationStored(field("revocation")?),
        _ => return None,
    };
    let t = OffsetDateTime::parse(&l.timestamp, &Rfc3339).ok()?;
    let unix_us = i64::try_from(t.unix_timestamp_nanos() / 1000).ok()?;
    Some(Event { node, unix_us, kind })
}

struct Tail {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
}

/// Tails the logs of all nodes.
pub struct LogWatcher {
    tails: Vec<Tail>,
}

impl LogWatcher {
    /// Watches `logs[i]` as node `i`'s log, from its current end (events
    /// logged before the watch began are not wanted).
    pub fn new(logs: Vec<PathBuf>) -> Self {
        let tails = logs
            .into_iter()
            .map(|path| {
                let offset = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                Tail {
                    path,
                    offset,
                    partial: Vec::new(),
                }
            })
            .collect();
        Self { tails }
    }

    /// Reads what the logs gained since the last poll.
    pub fn poll(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        for (node, t) in self.tails.iter_mut().enumerate() {
            let Ok(mut f) = std::fs::File::open(&t.path) else {
                continue;
            };
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            if len < t.offset {
                // Truncated (a new node in a reused dir): start over.
                t.offset = 0;
                t.partial.clear();
            }
            if len == t.offset || f.seek(SeekFrom::Start(t.offset)).is_err() {
                continue;
            }
            let mut buf = Vec::new();
            let Ok(n) = f.take(MAX_READ_PER_POLL).read_to_end(&mut buf) else {
                continue;
            };
            t.offset += n as u64;
            t.partial.extend_from_slice(&buf);
            let Some(last_nl) = t.partial.iter().rposition(|b| *b == b'\n') else {
                if t.partial.len() > MAX_LINE_BYTES {
                    t.partial.clear();
                }
                continue;
            };
            for line in t.partial[..last_nl].split(|b| *b == b'\n') {
                if line.len() <= MAX_LINE_BYTES
                    && let Ok(s) = std::str::from_utf8(line)
                    && let Some(e) = parse_line(node, s)
                {
                    out.push(e);
                }
            }
            t.partial.drain(..=last_nl);
        }
        out
    }
}

/// First arrival of each object at each node.
#[derive(Debug, Default)]
pub struct Arrivals {
    specs: HashMap<String, HashMap<usize, i64>>,
    revocations: HashMap<String, HashMap<usize, i64>>,
}

impl Arrivals {
    /// Records events (later duplicates of a first arrival are ignored).
    pub fn add(&mut self, events: impl IntoIterator<Item = Event>) {
        for e in events {
            let map = match e.kind {
                EventKind::SpecStored(id) => self.specs.entry(id),
                EventKind::RevocationStored(h) => self.revocations.entry(h),
            };
            map.or_default().entry(e.node).or_insert(e.unix_us);
        }
    }

    /// When each node stored spec `tool` (Unix µs by node).
    pub fn spec(&self, tool: &str) -> Option<&HashMap<usize, i64>> {
        self.specs.get(tool)
    }

    /// When each node stored revocation `hash`.
    pub fn revocation(&self, hash: &str) -> Option<&HashMap<usize, i64>> {
        self.revocations.get(hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_event_line_parses() {
        let line = r#"{"timestamp":"2026-11-25T13:23:01.123456Z","level":"INFO","fields":{"message":"spec stored","tool":"atr_abc","name":"x","version":"1.0.0"},"target":"atr::_events::spec::stored"}"#;
        let e = parse_line(3, line).unwrap();
        assert_eq!(e.node, 3);
        assert_eq!(e.kind, EventKind::SpecStored("atr_abc".into()));
        assert_eq!(e.unix_us % 1_000_000, 123_456);
        assert!(parse_line(0, r#"{"timestamp":"x","target":"atrd::node","fields":{}}"#).is_none());
        assert!(parse_line(0, "not json atr::_events").is_none());
    }

    #[test]
    fn watcher_reads_only_new_whole_lines() {
        let dir = std::env::temp_dir().join(format!("atr-testnet-logs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.log");
        std::fs::write(&p, "old line\n").unwrap();
        let mut w = LogWatcher::new(vec![p.clone()]);
        assert!(w.poll().is_empty());
        let ev = r#"{"timestamp":"2026-11-25T13:23:01Z","target":"atr::_events::revocation::stored","fields":{"revocation":"ab"}}"#;
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        write!(f, "{ev}\n{}", &ev[..10]).unwrap();
        let got = w.poll();
        assert_eq!(got.len(), 1);
        writeln!(f, "{}", &ev[10..]).unwrap();
        let got2 = w.poll();
        assert_eq!(got2.len(), 1, "a line split across polls is read once whole");
        let mut a = Arrivals::default();
        a.add(got.into_iter().chain(got2));
        assert_eq!(a.revocation("ab").unwrap().len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
