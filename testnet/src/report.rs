//! What a run writes: raw [`Sample`]s (JSON lines), the [`Summary`]
//! (`summary.json`) with per-series percentiles and success rates, and the
//! same as a Markdown table (`summary.md`) for `docs/benchmarks/`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::resources::{Machine, Usage};

/// File names inside `--out`.
pub const SAMPLES_FILE: &str = "samples.jsonl";
/// Summary, JSON.
pub const SUMMARY_JSON: &str = "summary.json";
/// Summary, Markdown.
pub const SUMMARY_MD: &str = "summary.md";

/// One measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Repetition (0-based).
    pub repeat: usize,
    /// Step (1-based, as in the file).
    pub step: usize,
    /// What was measured: `propagation` (one node received a spec),
    /// `propagation_all` (the last node did), `find`, `revocation`,
    /// `revocation_all`, `invoke`, `publish` (a failed publish), `restart`
    /// (time until the API answered), `resync` (time until a restarted node
    /// had every tool), `duplicates` (per node: gossip copies its gossipsub
    /// dropped per message it received during a publish step; in `value`),
    /// or `event` (a kill or restart, for plots).
    pub kind: String,
    /// Series name (the step's label), which the summary groups by.
    pub series: String,
    /// When, milliseconds since the start of this repetition's first step.
    pub t_ms: f64,
    /// Node concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<usize>,
    /// Tool id or revocation hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Latency, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// A measurement that is not a latency (kind `duplicates`: gossip
    /// copies dropped per message received); summarized like latencies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Succeeded.
    pub ok: bool,
    /// Not counted: the calling node was killed while the call was in flight.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub aborted: bool,
    /// Why it failed, or what happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Statistics of one series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesSummary {
    /// Series name.
    pub series: String,
    /// Sample kind.
    pub kind: String,
    /// Samples counted (aborted ones excluded).
    pub count: usize,
    /// Successful samples.
    pub ok: usize,
    /// Aborted samples (not counted).
    pub aborted: usize,
    /// `ok / count`.
    pub success_rate: f64,
    /// Latency percentiles of the successful samples, ms.
    pub p50_ms: Option<f64>,
    /// 95th percentile.
    pub p95_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: Option<f64>,
    /// Largest.
    pub max_ms: Option<f64>,
    /// Mean.
    pub mean_ms: Option<f64>,
}

/// `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Scenario name.
    pub scenario: String,
    /// Its description.
    pub description: String,
    /// The command that made this run.
    pub command: String,
    /// `process` or `docker`.
    pub mode: String,
    /// Nodes.
    pub nodes: usize,
    /// Repetitions.
    pub repeat: usize,
    /// Seed of the first repetition (repetition r uses seed + r).
    pub seed: u64,
    /// Size of one published signed spec, bytes (`null` if nothing was published).
    pub payload_bytes: Option<usize>,
    /// Gossipsub heartbeat of the nodes, ms.
    pub heartbeat_ms: u64,
    /// Whether the groups' network conditions were applied.
    pub conditions_applied: bool,
    /// Counters of the user-space link emulator, when it applied the
    /// conditions (first repetition): packets delayed, dropped, lateness.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_emulation: Option<crate::linkem::LinkStats>,
    /// Remarks (what was not applied, and why).
    pub notes: Vec<String>,
    /// The machine.
    pub machine: Machine,
    /// `git rev-parse HEAD` of the workspace (`+dirty` with local changes).
    pub git_commit: String,
    /// The `atrd` binary run.
    pub atrd: String,
    /// Start, Unix ms.
    pub started_unix_ms: u64,
    /// Wall time of the whole run, seconds.
    pub duration_s: f64,
    /// Time to start the network (first repetition), seconds.
    pub startup_s: f64,
    /// Cost of the idle network before the first step (first repetition).
    pub idle: Option<Usage>,
    /// Cost over the steps (first repetition; restarted nodes left out).
    pub during: Option<Usage>,
    /// Per series.
    pub series: Vec<SeriesSummary>,
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Groups samples into series (in order of first appearance) and computes
/// their statistics. `event` samples are markers, not a series.
pub fn summarize(samples: &[Sample]) -> Vec<SeriesSummary> {
    let mut order: Vec<(String, String)> = Vec::new();
    let mut groups: BTreeMap<(String, String), Vec<&Sample>> = BTreeMap::new();
    for s in samples.iter().filter(|s| s.kind != "event") {
        let key = (s.series.clone(), s.kind.clone());
        if !groups.contains_key(&key) {
            order.push(key.clone());
        }
        groups.entry(key).or_default().push(s);
    }
    order
        .into_iter()
        .map(|key| {
            let g = &groups[&key];
            let counted: Vec<&&Sample> = g.iter().filter(|s| !s.aborted).collect();
            let ok = counted.iter().filter(|s| s.ok).count();
            let mut lat: Vec<f64> = counted
                .iter()
                .filter(|s| s.ok)
                .filter_map(|s| s.latency_ms.or(s.value))
                .collect();
            lat.sort_by(f64::total_cmp);
            let mean = (!lat.is_empty()).then(|| lat.iter().sum::<f64>() / lat.len() as f64);
            SeriesSummary {
                series: key.0,
                kind: key.1,
                count: counted.len(),
                ok,
                aborted: g.len() - counted.len(),
                success_rate: if counted.is_empty() {
                    0.0
                } else {
                    ok as f64 / counted.len() as f64
                },
                p50_ms: percentile(&lat, 50.0),
                p95_ms: percentile(&lat, 95.0),
                p99_ms: percentile(&lat, 99.0),
                max_ms: lat.last().copied(),
                mean_ms: mean,
            }
        })
        .collect()
}

fn ms(v: Option<f64>) -> String {
    match v {
        None => "–".into(),
        Some(x) if x >= 100.0 => format!("{x:.0}"),
        Some(x) => format!("{x:.1}"),
    }
}

impl Summary {
    /// The Markdown report.
    pub fn to_markdown(&self) -> String {
        let mut s = format!(
            "### {} — {} nodes ({} mode), {} repetition{}, seed {}\n\n{}\n\n```sh\n{}\n```\n\n",
            self.scenario,
            self.nodes,
            self.mode,
            self.repeat,
            if self.repeat == 1 { "" } else { "s" },
            self.seed,
            self.description,
            self.command
        );
        s += "| series | kind | samples | success | p50 ms | p95 ms | p99 ms | max ms |\n";
        s += "|---|---|---:|---:|---:|---:|---:|---:|\n";
        for r in &self.series {
            s += &format!(
                "| {} | {} | {}{} | {:.1} % | {} | {} | {} | {} |\n",
                r.series,
                r.kind,
                r.count,
                if r.aborted > 0 {
                    format!(" (+{} aborted)", r.aborted)
                } else {
                    String::new()
                },
                r.success_rate * 100.0,
                ms(r.p50_ms),
                ms(r.p95_ms),
                ms(r.p99_ms),
                ms(r.max_ms)
            );
        }
        s += "\n";
        if self.series.iter().any(|r| r.kind == "duplicates") {
            s += "Rows of kind `duplicates` are not milliseconds: per node, the gossip copies its gossipsub \
                  dropped as duplicates per message it received during the publish step (from `/metrics`).\n\n";
        }
        if let Some(l) = &self.link_emulation {
            s += &format!(
                "Link conditions applied in user space (NFQUEUE): {} packets, {} dropped, {} released early \
                 (hold limit), {} released over 5 ms late ({:.2} %); shortest hold {:.1} ms, worst lateness \
                 {:.2} ms.\n\n",
                l.packets,
                l.dropped,
                l.overflow,
                l.late,
                100.0 * l.late as f64 / l.released.max(1) as f64,
                l.min_held_us as f64 / 1000.0,
                l.max_late_us as f64 / 1000.0
            );
        }
        if let Some(b) = self.payload_bytes {
            s += &format!("Signed spec: {b} bytes. ");
        }
        s += &format!(
            "Heartbeat {} ms. Start-up of the network: {:.1} s.",
            self.heartbeat_ms, self.startup_s
        );
        if let Some(u) = &self.idle {
            s += &format!(
                " Idle: RSS {:.1} MiB per node (max {:.1}), CPU {:.2} % of a core per node ({:.1} % in all).",
                u.rss_mean_mib, u.rss_max_mib, u.cpu_mean_percent, u.cpu_total_percent
            );
        }
        if let Some(u) = &self.during {
            s += &format!(
                " During the steps: RSS {:.1} MiB per node, CPU {:.1} % of a core per node ({:.0} % in all).",
                u.rss_mean_mib, u.cpu_mean_percent, u.cpu_total_percent
            );
        }
        s += &format!(
            "\nMachine: {} CPUs ({}), {:.1} GiB, Linux {}; commit {}; run took {:.0} s.\n",
            self.machine.nproc,
            self.machine.cpu_model,
            self.machine.mem_total_bytes as f64 / (1u64 << 30) as f64,
            self.machine.kernel,
            self.git_commit,
            self.duration_s
        );
        for n in &self.notes {
            s += &format!("\nNote: {n}\n");
        }
        s
    }

    /// Writes `summary.json` and `summary.md` into `out`.
    pub fn write(&self, out: &Path) -> anyhow::Result<()> {
        std::fs::write(out.join(SUMMARY_JSON), serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("cannot write {}", out.join(SUMMARY_JSON).display()))?;
        std::fs::write(out.join(SUMMARY_MD), self.to_markdown())
            .with_context(|| format!("cannot write {}", out.join(SUMMARY_MD).display()))?;
        Ok(())
    }
}

/// `git rev-parse HEAD` of the workspace this crate was built from, with
/// `+dirty` when it has uncommitted changes; `unknown` without git.
pub fn git_commit() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .current_dir(root)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    match git(&["rev-parse", "HEAD"]) {
        Some(c) if !c.is_empty() => {
            let dirty =
                git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
            if dirty { format!("{c}+dirty") } else { c }
        }
        _ => "unknown".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(series: &str, ok: bool, lat: f64) -> Sample {
        Sample {
            repeat: 0,
            step: 1,
            kind: "find".into(),
            series: series.into(),
            t_ms: 0.0,
            node: None,
            subject: None,
            latency_ms: Some(lat),
            value: None,
            ok,
            aborted: false,
            detail: None,
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&[7.0], 95.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn series_keep_order_and_count_failures_and_aborts() {
        let mut s = vec![
            sample("b", true, 1.0),
            sample("a", true, 3.0),
            sample("b", false, 9.0),
        ];
        let mut aborted = sample("b", false, 1.0);
        aborted.aborted = true;
        s.push(aborted);
        let sum = summarize(&s);
        assert_eq!(sum[0].series, "b");
        assert_eq!((sum[0].count, sum[0].ok, sum[0].aborted), (2, 1, 1));
        assert_eq!(sum[0].success_rate, 0.5);
        assert_eq!(
            sum[0].max_ms,
            Some(1.0),
            "failed samples do not count in latencies"
        );
        assert_eq!(sum[1].p50_ms, Some(3.0));
    }
}
