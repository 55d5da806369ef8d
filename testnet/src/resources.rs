//! What the nodes cost and what machine they ran on, from `/proc`.
//!
//! [`measure`] samples each node's resident memory and CPU time twice, a
//! window apart, and reports [`Usage`]: RSS per node and CPU per node as a
//! percentage of one core. [`Machine`] records the facts a reader needs to
//! compare runs (cores, memory, kernel, CPU model).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One process at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcSample {
    /// Resident set size, bytes.
    pub rss_bytes: u64,
    /// User + system CPU time, clock ticks.
    pub cpu_ticks: u64,
}

/// Reads `/proc/<pid>/status` and `/proc/<pid>/stat`; `None` if the process is gone.
pub fn sample(pid: u32) -> Option<ProcSample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesized name: state is field 3; utime and stime
    // are fields 14 and 15, i.e. the 12th and 13th after the name.
    let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: u64 = rest.get(11)?.parse().ok()?;
    let stime: u64 = rest.get(12)?.parse().ok()?;
    Some(ProcSample {
        rss_bytes: rss_kb * 1024,
        cpu_ticks: utime + stime,
    })
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux unless told otherwise).
pub fn clock_ticks() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|t| *t > 0)
        .unwrap_or(100)
}

/// One node's cost over a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeUsage {
    /// Node index.
    pub node: usize,
    /// RSS at the end of the window, MiB.
    pub rss_mib: f64,
    /// CPU over the window, percent of one core.
    pub cpu_percent: f64,
}

/// The nodes' cost over a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Window length, seconds.
    pub window_s: f64,
    /// Per node.
    pub nodes: Vec<NodeUsage>,
    /// Mean RSS, MiB.
    pub rss_mean_mib: f64,
    /// Largest RSS, MiB.
    pub rss_max_mib: f64,
    /// Sum of RSS, MiB.
    pub rss_total_mib: f64,
    /// Mean CPU per node, percent of one core.
    pub cpu_mean_percent: f64,
    /// Sum over nodes, percent of one core (200 % = both cores of a 2-core machine).
    pub cpu_total_percent: f64,
}

/// Samples `pids` (node index, pid) at the start and end of `window`.
pub async fn measure(pids: &[(usize, u32)], window: Duration) -> Usage {
    let before: Vec<Option<ProcSample>> = pids.iter().map(|(_, p)| sample(*p)).collect();
    let start = std::time::Instant::now();
    tokio::time::sleep(window).await;
    let secs = start.elapsed().as_secs_f64().max(1e-3);
    let tck = clock_ticks() as f64;
    let nodes: Vec<NodeUsage> = pids
        .iter()
        .zip(before)
        .filter_map(|((i, p), b)| {
            let (b, a) = (b?, sample(*p)?);
            Some(NodeUsage {
                node: *i,
                rss_mib: a.rss_bytes as f64 / (1024.0 * 1024.0),
                cpu_percent: (a.cpu_ticks.saturating_sub(b.cpu_ticks)) as f64 / tck / secs * 100.0,
            })
        })
        .collect();
    summarize(nodes, secs)
}

/// Totals and means of per-node usage over a window of `window_s` seconds.
pub fn summarize(nodes: Vec<NodeUsage>, window_s: f64) -> Usage {
    let n = nodes.len().max(1) as f64;
    let rss_total: f64 = nodes.iter().map(|u| u.rss_mib).sum();
    let cpu_total: f64 = nodes.iter().map(|u| u.cpu_percent).sum();
    Usage {
        window_s,
        rss_mean_mib: rss_total / n,
        rss_max_mib: nodes.iter().map(|u| u.rss_mib).fold(0.0, f64::max),
        rss_total_mib: rss_total,
        cpu_mean_percent: cpu_total / n,
        cpu_total_percent: cpu_total,
        nodes,
    }
}

/// The machine a run happened on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// CPUs available to this process.
    pub nproc: usize,
    /// Total memory, bytes.
    pub mem_total_bytes: u64,
    /// CPU model.
    pub cpu_model: String,
    /// Kernel release.
    pub kernel: String,
}

impl Machine {
    /// Reads the facts of this machine.
    pub fn current() -> Self {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_kb: u64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_owned())
            .unwrap_or_else(|| "unknown".into());
        Self {
            nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
            mem_total_bytes: mem_kb * 1024,
            cpu_model,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_owned())
                .unwrap_or_else(|_| "unknown".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_can_be_sampled() {
        let s = sample(std::process::id()).unwrap();
        assert!(s.rss_bytes > 0);
        assert!(sample(u32::MAX).is_none());
        let m = Machine::current();
        assert!(m.nproc >= 1 && m.mem_total_bytes > 0);
    }
}
