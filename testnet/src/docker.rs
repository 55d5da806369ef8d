//! Docker mode: one `atrd` container per node on a private Docker network.
//!
//! [`build_image`] builds `atrd` statically (gnu target + `crt-static`, via
//! [`atr_sandbox::image::build_static`]) and packs it alone into a `FROM scratch`
//! image, [`IMAGE`]. [`create_network`] makes a bridge network with its own
//! /24 subnet, so every node gets a fixed address (`.10` + index) that
//! survives restarts. Every container and network carries the label
//! [`crate::state::DOCKER_LABEL`] = testnet directory, which is what `down`
//! removes. Link cuts and conditions are applied from the host inside each
//! container's network namespace (`nsenter -t PID -n`): `iptables` DROP rules
//! for partitions, `tc qdisc … netem` for delay, jitter and loss where the
//! kernel has `sch_netem`, else the harness's user-space emulator
//! ([`crate::linkem`], an `NFQUEUE` rule per node), and `tbf` for bandwidth. The harness talks to the containers' APIs over the
//! bridge (the host reaches bridge addresses directly).
//!
//! The docker CLI is used rather than the Engine API: every call is one
//! command a reader can repeat by hand.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use atr_sandbox::image::{self, ImageFile, ScratchImageOptions};

use crate::scenario::Conditions;

/// Tag of the node image.
pub const IMAGE: &str = "atr-testnet-atrd:latest";
/// API port inside each container.
pub const API_PORT: u16 = 7878;
/// Peer-to-peer TCP port inside each container of an exported compose file.
pub const P2P_PORT: u16 = 4077;

/// The peer-to-peer port of a new docker testnet: different for each run.
/// libp2p dials from its listen port (port reuse), so with one fixed port a
/// new testnet on a recycled subnet repeats an old run's address 4-tuples,
/// and the host's connection tracking, still holding the old entries, drops
/// the new SYNs as invalid: the dial times out (seen as nodes left without
/// peers at start).
pub fn fresh_p2p_port() -> u16 {
    let ms = crate::state::unix_ms();
    20_000 + (ms % 40_000) as u16
}
/// Where a node's directory is mounted in its container.
pub const DATA_DIR: &str = "/data";
/// Most nodes of one docker testnet: one /24, addresses `.10` to `.249`.
pub const MAX_DOCKER_NODES: usize = 240;
/// Candidate subnets are `10.213.K.0/24`; the first free K is used.
const SUBNET_BASE: [u8; 2] = [10, 213];

/// Kernel setting that caps the ARP neighbour table, which all network
/// namespaces share.
pub const NEIGH_GC_THRESH3: &str = "/proc/sys/net/ipv4/neigh/default/gc_thresh3";

/// A warning when `nodes` containers that all talk to each other need more
/// ARP neighbour entries (about `nodes²`, one per pair and direction) than
/// the kernel keeps: then new neighbours fail to resolve ("neighbor table
/// overflow" in `dmesg`) and dials time out.
pub fn neighbour_table_warning(nodes: usize) -> Option<String> {
    let max: usize = std::fs::read_to_string(NEIGH_GC_THRESH3)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let need = nodes * nodes.saturating_sub(1) + 4 * nodes;
    (need > max).then(|| {
        format!(
            "{nodes} containers need about {need} ARP neighbour entries but the kernel keeps at most {max} \
             ({NEIGH_GC_THRESH3}); some dials will time out. Raise it, e.g. \
             `sysctl -w net.ipv4.neigh.default.gc_thresh1={} net.ipv4.neigh.default.gc_thresh2={} \
             net.ipv4.neigh.default.gc_thresh3={}`",
            need / 2,
            need,
            need * 2
        )
    })
}

/// Longest one docker CLI call may take (`stack deploy`, `network rm`, `run`
/// are seconds; an engine that hangs must not hang the harness): past it the
/// call is killed and fails.
pub const DOCKER_CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(180);

/// Runs `docker ARGS`; returns stdout, or an error with docker's stderr (also
/// when it has not ended within [`DOCKER_CALL_TIMEOUT`]).
pub fn docker(args: &[&str]) -> anyhow::Result<String> {
    use std::io::Read;
    let mut child = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run `docker` (is the Docker CLI installed?)")?;
    // Read both pipes on their own threads, so a full pipe never stalls the wait.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut v);
            }
            v
        })
    };
    let out = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let err = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let deadline = std::time::Instant::now() + DOCKER_CALL_TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait().context("waiting for `docker`")? {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "docker {}: no answer within {DOCKER_CALL_TIMEOUT:?}",
                args.first().copied().unwrap_or_default()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    if !status.success() {
        bail!(
            "docker {}: {}",
            args.first().copied().unwrap_or_default(),
            String::from_utf8_lossy(&stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&stdout).trim().to_owned())
}

/// Builds the static `atrd` in `workspace_root` and the `FROM scratch` image
/// [`IMAGE`] holding only `/atrd`; returns the image id.
pub async fn build_image(workspace_root: &Path) -> anyhow::Result<String> {
    let root = workspace_root.to_owned();
    let bins = tokio::task::spawn_blocking(move || image::build_static("atrd", &["atrd"], &root))
        .await?
        .context("building a static atrd")?;
    let bin = bins.first().context("cargo built no atrd")?;
    let bytes = std::fs::read(bin).with_context(|| format!("cannot read {}", bin.display()))?;
    let docker = image::connect().await?;
    // Root inside the container: the node writes its data dir, a bind mount
    // owned by the harness's user.
    let opts = ScratchImageOptions::default()
        .with_user("0:0")
        .with_entrypoint(["/atrd"])
        .with_label("org.opencontainers.image.title", "atrd (atr-testnet)");
    let id =
        image::build_scratch_image(&docker, IMAGE, &[ImageFile::executable("/atrd", bytes)], &opts).await?;
    Ok(id.to_string())
}

/// A short name for the testnet in `dir`, used in container and network names.
pub fn short_name(dir: &Path) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    dir.hash(&mut h);
    format!("atr-tn-{:08x}", h.finish() as u32)
}

/// Creates the testnet's bridge network on the first free `10.213.K.0/24`;
/// returns its name and the subnet's first three octets.
pub fn create_network(dir: &Path) -> anyhow::Result<(String, [u8; 3])> {
    let name = short_name(dir);
    let label = format!("{}={}", crate::state::DOCKER_LABEL, dir.display());
    let mut last = None;
    // 250 and up are left for exported compose files (`10.213.250.0/24`).
    for k in 0..250u8 {
        let subnet = format!("{}.{}.{k}.0/24", SUBNET_BASE[0], SUBNET_BASE[1]);
        match docker(&[
            "network", "create", "--driver", "bridge", "--subnet", &subnet, "--label", &label, &name,
        ]) {
            Ok(_) => return Ok((name, [SUBNET_BASE[0], SUBNET_BASE[1], k])),
            Err(e) if format!("{e:#}").contains("overlap") => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("no free 10.213.K.0/24 subnet for the testnet network")))
}

/// The fixed address of node `index`.
pub fn node_ip(prefix: [u8; 3], index: usize) -> Ipv4Addr {
    Ipv4Addr::new(
        prefix[0],
        prefix[1],
        prefix[2],
        10 + (index % MAX_DOCKER_NODES) as u8,
    )
}

/// What [`run_container`] starts.
#[derive(Debug, Clone)]
pub struct ContainerSpec<'a> {
    /// Container name.
    pub name: &'a str,
    /// Network name.
    pub network: &'a str,
    /// Its address.
    pub ip: Ipv4Addr,
    /// Testnet directory (label value).
    pub testnet_dir: &'a Path,
    /// Node directory on the host (mounted at [`DATA_DIR`]).
    pub node_dir: &'a Path,
    /// `RUST_LOG`.
    pub log_filter: &'a str,
    /// Bootstrap multiaddrs.
    pub bootstrap: &'a [String],
    /// Peer-to-peer port.
    pub p2p_port: u16,
}

/// Starts a node container (detached).
pub fn run_container(c: &ContainerSpec<'_>) -> anyhow::Result<()> {
    let label = format!("{}={}", crate::state::DOCKER_LABEL, c.testnet_dir.display());
    let mount = format!("{}:{DATA_DIR}", c.node_dir.display());
    let ip = c.ip.to_string();
    let env = format!("RUST_LOG={}", c.log_filter);
    let api = format!("0.0.0.0:{API_PORT}");
    let listen = format!("/ip4/0.0.0.0/tcp/{}", c.p2p_port);
    let config = format!("{DATA_DIR}/atrd.toml");
    let mut args = vec![
        "run",
        "-d",
        "--name",
        c.name,
        "--hostname",
        c.name,
        "--network",
        c.network,
        "--ip",
        &ip,
        "--label",
        &label,
        "-e",
        &env,
        "-v",
        &mount,
        IMAGE,
        "--data-dir",
        DATA_DIR,
        "--config",
        &config,
        "--api",
        &api,
        // Reached from the host at the container's address, on the testnet's own network.
        "--api-allow-remote",
        "--listen",
        &listen,
        "--log-format",
        "json",
    ];
    for b in c.bootstrap {
        args.push("--bootstrap");
        args.push(b);
    }
    docker(&args)?;
    Ok(())
}

/// The host pid of a running container's `atrd`, if it runs.
pub fn container_pid(name: &str) -> Option<u32> {
    docker(&["inspect", "-f", "{{.State.Pid}}", name])
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|p| *p > 0)
}

/// Follows a container's output (from `since`, Unix seconds, if given) into
/// `log`; the returned `docker logs -f` process ends with the container.
pub fn follow_logs(name: &str, since: Option<i64>, log: &Path) -> anyhow::Result<std::process::Child> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("cannot open {}", log.display()))?;
    let mut c = Command::new("docker");
    c.args(["logs", "-f"]);
    if let Some(s) = since {
        c.args(["--since", &s.to_string()]);
    }
    c.arg(name).stdin(Stdio::null()).stdout(f.try_clone()?).stderr(f);
    std::os::unix::process::CommandExt::process_group(&mut c, 0);
    c.spawn().context("cannot run `docker logs`")
}

/// Runs a command inside the network namespace of process `pid`.
fn in_netns(pid: u32, cmd: &[&str]) -> anyhow::Result<()> {
    let pid = pid.to_string();
    let out = Command::new("nsenter")
        .args(["-t", &pid, "-n", "--"])
        .args(cmd)
        .stdin(Stdio::null())
        .output()
        .context("cannot run `nsenter` (needed to cut links and add delay inside a container)")?;
    if !out.status.success() {
        bail!(
            "{} in the node's network namespace: {}",
            cmd.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Drops all traffic between the node (netns of `pid`) and `others`.
pub fn cut(pid: u32, others: &[Ipv4Addr]) -> anyhow::Result<()> {
    if others.is_empty() {
        return Ok(());
    }
    let list = others.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",");
    in_netns(pid, &["iptables", "-I", "INPUT", "-s", &list, "-j", "DROP"])?;
    in_netns(pid, &["iptables", "-I", "OUTPUT", "-d", &list, "-j", "DROP"])
}

/// Removes every cut of the node.
pub fn heal(pid: u32) -> anyhow::Result<()> {
    in_netns(pid, &["iptables", "-F", "INPUT"])?;
    in_netns(pid, &["iptables", "-F", "OUTPUT"])
}

/// How a node's link conditions were applied.
#[derive(Debug)]
pub enum Applied {
    /// By the kernel (`tc netem`, and `tbf` for bandwidth).
    Kernel,
    /// Bandwidth by `tbf` (if asked), delay/jitter/loss by the harness's
    /// user-space emulator, which works for as long as this value lives.
    Userspace(crate::linkem::Emulator),
}

/// Applies link conditions on the node's `eth0`: `tc netem` where the kernel
/// has it, else the user-space emulator ([`crate::linkem`]) for delay,
/// jitter and loss; bandwidth always through `tbf`. `seed` makes the
/// emulator's jitter and loss reproducible.
pub fn apply_conditions(pid: u32, c: &Conditions, seed: u64) -> anyhow::Result<Applied> {
    let params = crate::linkem::LinkParams {
        delay: c.delay.unwrap_or_default(),
        jitter: c.jitter.unwrap_or_default(),
        loss: c.loss_percent.unwrap_or(0.0) / 100.0,
    };
    let mut netem: Vec<String> = Vec::new();
    if let Some(d) = c.delay {
        netem.extend(["delay".into(), format!("{}us", d.as_micros())]);
        if let Some(j) = c.jitter {
            netem.push(format!("{}us", j.as_micros()));
        }
    }
    if let Some(l) = c.loss_percent {
        netem.extend(["loss".into(), format!("{l}%")]);
    }
    let mut kernel = true;
    if !params.is_noop() {
        let mut cmd = vec![
            "tc", "qdisc", "add", "dev", "eth0", "root", "handle", "1:", "netem",
        ];
        cmd.extend(netem.iter().map(String::as_str));
        if let Err(e) = in_netns(pid, &cmd) {
            tracing::debug!(error = %e, "no kernel netem; emulating in user space");
            kernel = false;
        }
    }
    if let Some(rate) = &c.bandwidth {
        let parent: &[&str] = if kernel && !params.is_noop() {
            &["parent", "1:"]
        } else {
            &["root"]
        };
        let mut cmd = vec!["tc", "qdisc", "add", "dev", "eth0"];
        cmd.extend(parent);
        cmd.extend([
            "handle", "2:", "tbf", "rate", rate, "burst", "32kbit", "latency", "400ms",
        ]);
        in_netns(pid, &cmd)?;
    }
    if kernel {
        return Ok(Applied::Kernel);
    }
    let ns = std::path::PathBuf::from(format!("/proc/{pid}/ns/net"));
    let emulator = crate::linkem::Emulator::start(&ns, params, seed)
        .context("starting the user-space link emulator (needs nfnetlink_queue)")?;
    let rule = crate::linkem::iptables_rule("eth0");
    in_netns(pid, &rule.iter().map(String::as_str).collect::<Vec<_>>())?;
    Ok(Applied::Userspace(emulator))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_names_are_stable() {
        assert_eq!(node_ip([10, 213, 4], 0).to_string(), "10.213.4.10");
        assert_eq!(node_ip([10, 213, 4], 239).to_string(), "10.213.4.249");
        let a = short_name(Path::new("/tmp/a"));
        assert_eq!(a, short_name(Path::new("/tmp/a")));
        assert_ne!(a, short_name(Path::new("/tmp/b")));
        assert!(a.starts_with("atr-tn-") && a.len() == 15);
    }
}
