//! The state file `testnet.json` and [`down`], which removes everything a
//! testnet made.
//!
//! [`TestnetState`] is written into the testnet directory as soon as the
//! first node starts and again after every start or restart, so a harness
//! that crashed (or an `up` whose shell is long gone) can still be cleaned up
//! from the file alone: `atr-testnet down --dir DIR` reads it, stops every
//! recorded `atrd` that is still running, removes Docker containers and
//! networks carrying the testnet label, and deletes the node directories.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::scenario::Role;

/// Name of the state file inside the testnet directory.
pub const STATE_FILE: &str = "testnet.json";
/// Label put on every Docker container and network a testnet makes; its
/// value is the testnet directory, so `down` finds them without the state file.
pub const DOCKER_LABEL: &str = "atr.testnet.dir";
/// How long `down` waits after SIGTERM before it sends SIGKILL. Defaults to
/// 5 s: `atrd` drains its API and tasks in at most about that.
pub const TERM_GRACE: Duration = Duration::from_secs(5);

/// How the nodes run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Mode {
    /// `atrd` processes on 127.0.0.1.
    Process,
    /// `atrd` containers on a private Docker network.
    Docker,
    /// A Docker Swarm stack on an overlay network ([`crate::swarm`]).
    Swarm,
}

/// One node as recorded in the state file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// Index in the testnet (0-based).
    pub index: usize,
    /// Scenario group.
    pub group: String,
    /// Role of the group.
    pub role: Role,
    /// Process id of the running `atrd`, `None` while it is stopped.
    pub pid: Option<u32>,
    /// Local API address.
    pub api: SocketAddr,
    /// TCP port of the peer-to-peer listener on 127.0.0.1.
    pub p2p_port: u16,
    /// Peer id (= publisher key).
    pub peer_id: String,
    /// Data directory (key, store, token, config, log).
    pub dir: PathBuf,
    /// Whether the node runs tools (its Docker sandbox is on).
    pub sandbox: bool,
    /// Indices of the nodes it bootstraps from.
    pub bootstrap: Vec<usize>,
    /// Container name (docker mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
}

/// Contents of `testnet.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestnetState {
    /// Format version (1).
    pub version: u32,
    /// How the nodes run.
    pub mode: Mode,
    /// The testnet directory (absolute).
    pub dir: PathBuf,
    /// The `atrd` binary.
    pub atrd: PathBuf,
    /// Seed of keys and topology.
    pub seed: u64,
    /// Creation time, Unix milliseconds.
    pub created_unix_ms: u64,
    /// Process id of the harness that made it.
    pub harness_pid: u32,
    /// The nodes.
    pub nodes: Vec<NodeRecord>,
    /// Docker containers made (docker mode).
    #[serde(default)]
    pub docker_containers: Vec<String>,
    /// Docker networks made (docker mode).
    #[serde(default)]
    pub docker_networks: Vec<String>,
    /// The stack deployed (swarm mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swarm_stack: Option<String>,
    /// Whether the harness initialised the swarm (then `down` leaves it).
    #[serde(default)]
    pub swarm_initialised: bool,
}

impl TestnetState {
    /// Reads `dir/testnet.json`; `Ok(None)` when there is none.
    pub fn load(dir: &Path) -> anyhow::Result<Option<Self>> {
        let path = dir.join(STATE_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => {
                Ok(Some(serde_json::from_slice(&bytes).with_context(|| {
                    format!("{} is not a testnet state file", path.display())
                })?))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Writes `dir/testnet.json` atomically (temp file + rename), so a crash
    /// never leaves half a file.
    pub fn save(&self) -> anyhow::Result<()> {
        let path = self.dir.join(STATE_FILE);
        let tmp = self.dir.join(format!("{STATE_FILE}.tmp"));
        let text = serde_json::to_vec_pretty(self).context("encoding the state file")?;
        std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(())
    }
}

/// Unix time, milliseconds.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// What [`down`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DownReport {
    /// Processes that were still running and were stopped.
    pub stopped: usize,
    /// Of those, how many needed SIGKILL.
    pub killed: usize,
    /// Docker containers removed.
    pub containers: usize,
    /// Docker networks removed.
    pub networks: usize,
    /// Whether the testnet directory itself was removed.
    pub dir_removed: bool,
}

/// Stops every node recorded in `dir/testnet.json`, removes Docker objects
/// labelled with this testnet, the node directories, the state file and, if
/// then empty, `dir` itself. A directory without a state file is left alone
/// (an error, unless it does not exist: then there is nothing to do).
pub fn down(dir: &Path) -> anyhow::Result<DownReport> {
    let mut report = DownReport::default();
    if !dir.exists() {
        return Ok(report);
    }
    let dir = dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", dir.display()))?;
    let Some(state) = TestnetState::load(&dir)? else {
        bail!(
            "{} has no {STATE_FILE}: not a testnet directory (or already taken down); nothing removed",
            dir.display()
        );
    };
    let running: Vec<(u32, PathBuf)> = state
        .nodes
        .iter()
        .filter_map(|n| n.pid.map(|p| (p, n.dir.clone())))
        .filter(|(pid, d)| is_our_atrd(*pid, d))
        .collect();
    for (pid, _) in &running {
        signal(*pid, nix::sys::signal::Signal::SIGTERM);
    }
    let deadline = Instant::now() + TERM_GRACE;
    while Instant::now() < deadline && running.iter().any(|(p, d)| is_our_atrd(*p, d)) {
        std::thread::sleep(Duration::from_millis(50));
    }
    for (pid, d) in &running {
        if is_our_atrd(*pid, d) {
            signal(*pid, nix::sys::signal::Signal::SIGKILL);
            report.killed += 1;
        }
    }
    report.stopped = running.len();
    if let Some(stack) = &state.swarm_stack {
        crate::swarm::teardown(stack, state.swarm_initialised)?;
        let file = dir.join(crate::swarm::STACK_FILE);
        if file.exists() {
            std::fs::remove_file(&file).with_context(|| format!("cannot remove {}", file.display()))?;
        }
    }
    if state.mode == Mode::Docker || !state.docker_containers.is_empty() || !state.docker_networks.is_empty()
    {
        let (c, n) = docker_cleanup(&dir)?;
        report.containers = c;
        report.networks = n;
    }
    for n in &state.nodes {
        // Only directories inside the testnet directory are ever removed.
        if n.dir.starts_with(&dir) && n.dir != dir && n.dir.exists() {
            std::fs::remove_dir_all(&n.dir).with_context(|| format!("cannot remove {}", n.dir.display()))?;
        }
    }
    let nodes_dir = dir.join("nodes");
    if nodes_dir.exists() && std::fs::read_dir(&nodes_dir)?.next().is_none() {
        std::fs::remove_dir(&nodes_dir)?;
    }
    std::fs::remove_file(dir.join(STATE_FILE)).with_context(|| format!("cannot remove the {STATE_FILE}"))?;
    if std::fs::read_dir(&dir)?.next().is_none() {
        std::fs::remove_dir(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
        report.dir_removed = true;
    }
    Ok(report)
}

/// Whether `pid` is a live (not zombie) `atrd` running on data dir `dir`:
/// guards against killing an unrelated process that reused the pid.
pub fn is_our_atrd(pid: u32, dir: &Path) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // Field 3, after the parenthesized command name, is the state.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    if matches!(state, Some("Z" | "X")) {
        return false;
    }
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let want = dir.as_os_str().as_encoded_bytes();
    args.windows(2).any(|w| w[0] == b"--data-dir" && w[1] == want)
}

fn signal(pid: u32, sig: nix::sys::signal::Signal) {
    let Ok(raw) = i32::try_from(pid) else { return };
    // An error means the process is already gone: nothing to do.
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), sig);
}

/// Removes Docker containers and networks labelled with this testnet
/// directory; returns how many of each.
pub(crate) fn docker_cleanup(dir: &Path) -> anyhow::Result<(usize, usize)> {
    use crate::docker::docker;
    let filter = format!("label={DOCKER_LABEL}={}", dir.display());
    let list = |args: &[&str]| -> anyhow::Result<Vec<String>> {
        let mut all = args.to_vec();
        all.extend(["--filter", &filter, "-q"]);
        Ok(docker(&all)?.split_whitespace().map(str::to_owned).collect())
    };
    let containers = list(&["ps", "-a"])?;
    if !containers.is_empty() {
        let mut rm = vec!["rm", "-f"];
        rm.extend(containers.iter().map(String::as_str));
        docker(&rm)?;
    }
    let networks = list(&["network", "ls"])?;
    for net in &networks {
        remove_network(net)?;
    }
    Ok((containers.len(), networks.len()))
}

/// Removes a Docker network. Right after `docker rm -f` of many containers
/// the engine may still list some of their endpoints ("has active
/// endpoints"): those are disconnected by force and the removal retried,
/// for at most about 10 s.
fn remove_network(net: &str) -> anyhow::Result<()> {
    use crate::docker::docker;
    let mut last = None;
    for attempt in 0..20 {
        let e = match docker(&["network", "rm", net]) {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        if format!("{e:#}").contains("not found") {
            return Ok(());
        }
        last = Some(e);
        if attempt > 0 {
            let format = "{{range $k, $v := .Containers}}{{$k}} {{end}}";
            let listed = docker(&["network", "inspect", "-f", format, net]).unwrap_or_default();
            for endpoint in listed.split_whitespace() {
                let _ = docker(&["network", "disconnect", "-f", net, endpoint]);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    Err(last.map_or_else(
        || anyhow::anyhow!("docker network rm {net}"),
        |e| e.context(format!("removing network {net}")),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_of_a_missing_dir_is_a_no_op_and_a_foreign_dir_is_refused() {
        let tmp = std::env::temp_dir().join(format!("atr-testnet-state-{}", std::process::id()));
        assert_eq!(down(&tmp.join("absent")).unwrap(), DownReport::default());
        std::fs::create_dir_all(&tmp).unwrap();
        let e = down(&tmp).unwrap_err();
        assert!(e.to_string().contains("not a testnet directory"), "{e:#}");
        assert!(tmp.exists(), "a foreign directory is never removed");
        std::fs::remove_dir_all(&tmp).unwrap();
    }

    #[test]
    fn our_own_process_is_not_an_atrd() {
        assert!(!is_our_atrd(std::process::id(), Path::new("/nowhere")));
        assert!(!is_our_atrd(u32::MAX, Path::new("/nowhere")));
    }
}
