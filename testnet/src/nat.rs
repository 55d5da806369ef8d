//! The `nat` experiment (docker mode): nodes each behind their own NAT, one
//! public relay, all on the project's own Docker networks.
//!
//! Topology, for `nats` = N:
//!
//! - a "WAN" bridge network (`10.213.K.0/24`) holding the relay node
//!   (`.10`, `relay_server = true`) and one router per NAT (`.20 + i`);
//! - per NAT a "LAN" bridge network holding its router (`.2`) and one node
//!   (`.10`). The node's default route is replaced (from the host, inside its
//!   network namespace) by the router; the router forwards with
//!   `ip_forward = 1`, masquerades the LAN behind its WAN address and drops
//!   new connections from the WAN into the LAN (`iptables`, conntrack): a
//!   home NAT. Docker's own isolation drops traffic between the bridges
//!   through the host, so the router is the only way in or out.
//!
//! Routers run the same `FROM scratch` `atrd` image (an idle node on
//! loopback only: the image holds nothing else, and the namespace needs a
//! process); the rules are set with the host's `iptables` and `ip` through
//! `nsenter`, as for link conditions ([`crate::docker`]).
//!
//! Every node bootstraps from the relay only. A NATed node learns it is
//! unreachable from AutoNAT (the relay's dial-back fails), reserves a slot
//! on the relay and advertises the circuit address; DCUtR upgrades the
//! relayed connections where the punch goes through.
//!
//! Measured (see [`NatReport`]): time from start to a relayed address and to
//! the first connection between NATed nodes, the share of NATed pairs whose
//! connection ends direct (hole punched), hole punching outcomes,
//! publish → discoverable latency (local find after gossip) and network
//! find latency (DHT + index request straight to the NATed provider) across
//! the NATs, and the bytes the relay's interface carried.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use atr_client::endpoint::TokenSource;
use atr_client::{Client, Endpoint};
use atr_protocol::SecretKey;
use atr_protocol::api::InvokeRequest;
use atr_protocol::manifest::Manifest;
use atr_protocol::query::FindQuery;
use atr_protocol::receipt::InvocationStatus;
use serde::{Deserialize, Serialize};

use crate::docker::{self, API_PORT, DATA_DIR, IMAGE};
use crate::state::DOCKER_LABEL;

/// Most NATed nodes of one experiment.
pub const MAX_NATS: usize = 16;
/// Longest wait for one measured event.
const WAIT: Duration = Duration::from_secs(120);
/// Polling period of the nodes' APIs.
const POLL: Duration = Duration::from_millis(200);
/// Longest wait for one invocation across the NATs (the tool's own limit
/// is far shorter; this also covers the provider's container start).
const INVOKE_WAIT: Duration = Duration::from_secs(60);

/// What [`run`] does.
#[derive(Debug, Clone)]
pub struct NatOptions {
    /// NATed nodes (at least 2).
    pub nats: usize,
    /// Working directory (node dirs); removed with everything else at the end.
    pub dir: PathBuf,
    /// Build the atrd image first.
    pub build_image: bool,
    /// Key seed.
    pub seed: u64,
    /// How long to watch connections settle after the finds, before the
    /// direct/relayed census.
    pub settle: Duration,
    /// Also invoke each NATed node's tool from the next NATed node: the
    /// NATed nodes then run tools (sandbox on, the host's Docker socket
    /// mounted) and the example tools image [`crate::tools_image::TOOLS_IMAGE`]
    /// is needed (built first when `build_image`).
    pub invoke: bool,
}

/// What [`run`] measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NatReport {
    /// NATed nodes.
    pub nats: usize,
    /// Per NATed node: start → its relayed listen address, ms.
    pub relayed_addr_ms: Vec<f64>,
    /// Per NATed node: what AutoNAT concluded (from `atr_reachability`).
    pub reachability: Vec<String>,
    /// Per NATed node: start → first connection to another NATed node, ms
    /// (`None`: never within the wait).
    pub first_connection_ms: Vec<Option<f64>>,
    /// Publish on node i → found locally on node i+1 (gossip through the
    /// relay), ms.
    pub discoverable_ms: Vec<f64>,
    /// Network finds on node i+1 of node i's tag (DHT lookup and an index
    /// request to the NATed provider), ms, and whether each found the tool.
    pub network_find_ms: Vec<f64>,
    /// Network finds that found the tool.
    pub network_find_ok: usize,
    /// Invocations on node i+1 of node i's tool (`add`, by id) across the
    /// NATs, ms (empty when invocations were not asked for).
    #[serde(default)]
    pub invoke_ms: Vec<f64>,
    /// Invocations answered `ok` with `3` by the NATed publisher, with a
    /// receipt the caller's client verified.
    #[serde(default)]
    pub invoke_ok: usize,
    /// NATed pairs connected at the census.
    pub pairs_connected: usize,
    /// Of those, pairs with a direct (non-relayed) connection.
    pub pairs_direct: usize,
    /// `pairs_direct / pairs_connected` (0 when none is connected).
    pub direct_share: f64,
    /// DCUtR outcomes summed over the NATed nodes.
    pub hole_punch_success: u64,
    /// See above.
    pub hole_punch_failure: u64,
    /// Relayed connections established, summed over the NATed nodes.
    pub relayed_connections: u64,
    /// Circuits the relay accepted.
    pub relay_circuits: u64,
    /// Bytes through the relay container's interface (received + sent).
    pub relay_bytes: u64,
}

/// One container of the experiment.
struct Box_ {
    name: String,
    dir: PathBuf,
    api: Ipv4Addr,
    peer: String,
}

/// Creates a labelled bridge network `name` on the first free
/// `10.<second>.K.0/24`; returns the subnet's first three octets.
fn create_network(label: &str, name: &str, second: u8) -> anyhow::Result<[u8; 3]> {
    let mut last = None;
    for k in 0..250u8 {
        let subnet = format!("10.{second}.{k}.0/24");
        match docker::docker(&[
            "network", "create", "--driver", "bridge", "--subnet", &subnet, "--label", label, name,
        ]) {
            Ok(_) => return Ok([10, second, k]),
            Err(e) if format!("{e:#}").contains("overlap") => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("no free 10.{second}.K.0/24 subnet")))
}

fn ip(prefix: [u8; 3], last: u8) -> Ipv4Addr {
    Ipv4Addr::new(prefix[0], prefix[1], prefix[2], last)
}

/// Runs a command in the network namespace of a container's process.
fn in_netns(pid: u32, cmd: &[&str]) -> anyhow::Result<String> {
    let out = std::process::Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-n", "--"])
        .args(cmd)
        .stdin(std::process::Stdio::null())
        .output()
        .context("cannot run `nsenter`")?;
    if !out.status.success() {
        bail!(
            "{}: {}",
            cmd.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The `atrd.toml` of a node of the experiment (`sandbox`: it runs tools).
fn config(relay: bool, sandbox: bool) -> String {
    let mut s = String::from(
        "# Written by atr-testnet nat.\n[network]\nheartbeat = \"200ms\"\nsync_interval = \"5s\"\nip_colocation_penalty = false\n\n[network.nat]\nmdns = \"off\"\nautonat_only_global_ips = false\nautonat_boot_delay = \"2s\"\nautonat_retry_interval = \"5s\"\n",
    );
    if relay {
        s += "relay_server = true\nreserve = \"never\"\n";
    }
    s += &format!("\n[sandbox]\nenabled = {sandbox}\n");
    s
}

/// Writes a node directory (identity from `seed`, config); returns the peer id.
fn node_dir(dir: &Path, seed: [u8; 32], relay: bool, sandbox: bool) -> anyhow::Result<String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(dir)?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dir.join("identity.key"))
        .with_context(|| format!("cannot create {}/identity.key", dir.display()))?;
    f.write_all(&seed)?;
    std::fs::write(dir.join("atrd.toml"), config(relay, sandbox))?;
    Ok(SecretKey::from_seed(&seed).public().to_string())
}

/// `docker run` of an atrd container on `network` at `addr`.
#[allow(clippy::too_many_arguments)]
fn run_node(
    label: &str,
    name: &str,
    network: &str,
    addr: Ipv4Addr,
    dir: &Path,
    listen: &str,
    bootstrap: Option<&str>,
    extra: &[&str],
) -> anyhow::Result<()> {
    let mount = format!("{}:{DATA_DIR}", dir.display());
    let ip = addr.to_string();
    let api = format!("0.0.0.0:{API_PORT}");
    let config = format!("{DATA_DIR}/atrd.toml");
    let log = format!("RUST_LOG={}", crate::logs::node_log_filter());
    let mut args = vec![
        "run",
        "-d",
        "--name",
        name,
        "--hostname",
        name,
        "--network",
        network,
        "--ip",
        &ip,
        "--label",
        label,
        "-e",
        &log,
        "-v",
        &mount,
    ];
    args.extend(extra);
    args.extend([
        IMAGE,
        "--data-dir",
        DATA_DIR,
        "--config",
        &config,
        "--api",
        &api,
        "--api-allow-remote",
        "--listen",
        listen,
        "--log-format",
        "json",
    ]);
    if let Some(b) = bootstrap {
        args.extend(["--bootstrap", b]);
    }
    docker::docker(&args)?;
    Ok(())
}

fn client(addr: Ipv4Addr, token: Option<String>) -> anyhow::Result<Client> {
    Ok(Client::new(Endpoint {
        api: format!("http://{addr}:{API_PORT}"),
        token,
        token_source: TokenSource::Explicit,
    })?)
}

/// Waits until the node at `addr` answers, then returns a client with its
/// API token (written into its directory at start).
async fn node_client(addr: Ipv4Addr, dir: &Path) -> anyhow::Result<Client> {
    let anon = client(addr, None)?;
    wait_until("a node's API", || async { anon.health().await.is_ok() }).await?;
    let token = std::fs::read_to_string(dir.join("api.token"))
        .with_context(|| format!("no api.token in {}", dir.display()))?;
    client(addr, Some(token.trim().to_owned()))
}

/// The value of one series in a metrics text (0 when absent).
pub fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .unwrap_or(0)
}

/// Received + sent bytes of `eth0` in `/proc/PID/net/dev` (the process's namespace).
fn interface_bytes(pid: u32) -> anyhow::Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/dev"))?;
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("eth0:"))
        .context("no eth0 in the relay's namespace")?;
    let f: Vec<u64> = line
        .split(':')
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    ensure!(f.len() >= 9, "unexpected /proc/net/dev line: {line}");
    Ok(f[0] + f[8])
}

/// The example tools' `add` with `tag`: runnable (the publisher pins the
/// local image's digest), or with a made-up digest.
fn manifest(name: &str, tag: &str, runnable: bool) -> anyhow::Result<Manifest> {
    let digest = if runnable {
        String::new()
    } else {
        format!("digest = \"sha256:{}\"\n", "1".repeat(64))
    };
    let src = format!(
        r#"
name = "{name}"
version = "1.0.0"
description = "atr-testnet nat tool {name}"
tags = ["{tag}"]
input_schema = {{ type = "object", properties = {{ a = {{ type = "integer" }}, b = {{ type = "integer" }} }}, required = ["a", "b"] }}
output_schema = {{ type = "integer" }}
[runtime]
image = "{image}"
{digest}command = ["/bin/add"]
"#,
        image = crate::tools_image::TOOLS_IMAGE,
    );
    Manifest::from_toml(&src, "atr-testnet").map_err(|e| anyhow::anyhow!("nat manifest: {e}"))
}

async fn wait_until<F, Fut>(what: &str, mut f: F) -> anyhow::Result<f64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let t = Instant::now();
    while t.elapsed() < WAIT {
        if f().await {
            return Ok(t.elapsed().as_secs_f64() * 1000.0);
        }
        tokio::time::sleep(POLL).await;
    }
    bail!("timed out after {WAIT:?} waiting for {what}")
}

/// Runs the experiment and removes every container and network it made
/// (also when it fails).
pub async fn run(opts: NatOptions) -> anyhow::Result<NatReport> {
    ensure!(
        (2..=MAX_NATS).contains(&opts.nats),
        "the nat experiment needs 2..={MAX_NATS} NATed nodes"
    );
    std::fs::create_dir_all(&opts.dir)?;
    let dir = opts.dir.canonicalize()?;
    if opts.build_image {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .context("no workspace")?
            .to_owned();
        docker::build_image(&root).await?;
        if opts.invoke {
            crate::tools_image::build(&root, crate::tools_image::TOOLS_IMAGE).await?;
        }
    }
    if opts.invoke {
        let tools = crate::tools_image::TOOLS_IMAGE;
        docker::docker(&["image", "inspect", "--format", "{{.Id}}", tools])
            .with_context(|| format!("invocations need the image {tools} (`atr-testnet tools-image`)"))?;
    }
    let d = dir.clone();
    tokio::task::spawn_blocking(move || crate::state::docker_cleanup(&d)).await??;
    let r = experiment(&opts, &dir).await;
    let d = dir.clone();
    let cleaned = tokio::task::spawn_blocking(move || {
        save_logs(&d);
        crate::state::docker_cleanup(&d)
    })
    .await?;
    let report = r?;
    cleaned?;
    Ok(report)
}

/// Writes each container's output (`docker logs`) to `<dir>/<name>.log`
/// before the containers go: what the nodes said stays for inspection
/// (`ATR_TESTNET_NODE_LOG` sets their `RUST_LOG`). Best effort.
fn save_logs(dir: &Path) {
    let filter = format!("label={DOCKER_LABEL}={}", dir.display());
    let Ok(names) = docker::docker(&["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"]) else {
        return;
    };
    for name in names.split_whitespace() {
        let Ok(file) = std::fs::File::create(dir.join(format!("{name}.log"))) else {
            continue;
        };
        let Ok(err) = file.try_clone() else { continue };
        let mut c = std::process::Command::new("docker");
        c.args(["logs", name])
            .stdin(std::process::Stdio::null())
            .stdout(file)
            .stderr(err);
        if let Ok(mut child) = c.spawn() {
            // Bounded: a container's log is read in well under this.
            let deadline = Instant::now() + Duration::from_secs(30);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn experiment(opts: &NatOptions, dir: &Path) -> anyhow::Result<NatReport> {
    let label = format!("{DOCKER_LABEL}={}", dir.display());
    let short = docker::short_name(dir);
    let port = docker::fresh_p2p_port();
    let listen = format!("/ip4/0.0.0.0/tcp/{port},/ip4/0.0.0.0/udp/{port}/quic-v1");
    let wan_name = format!("{short}-wan");
    let wan = create_network(&label, &wan_name, 213)?;
    let mut seed_rng = opts.seed;
    let mut next_seed = || {
        seed_rng = seed_rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut s = [0u8; 32];
        s[..8].copy_from_slice(&seed_rng.to_le_bytes());
        s[8] = 0x4e;
        s
    };

    // The public relay.
    let relay_dir = dir.join("relay");
    let relay_peer = node_dir(&relay_dir, next_seed(), true, false)?;
    let relay = Box_ {
        name: format!("{short}-relay"),
        dir: relay_dir,
        api: ip(wan, 10),
        peer: relay_peer,
    };
    run_node(
        &label,
        &relay.name,
        &wan_name,
        relay.api,
        &relay.dir,
        &listen,
        None,
        &[],
    )?;
    let boot = format!("/ip4/{}/tcp/{port}/p2p/{}", relay.api, relay.peer);

    // Routers and NATed nodes.
    let mut nodes = Vec::new();
    let started = Instant::now();
    for i in 0..opts.nats {
        let lan_name = format!("{short}-lan{i}");
        let lan = create_network(&label, &lan_name, 214)?;
        let router_dir = dir.join(format!("router{i}"));
        node_dir(&router_dir, next_seed(), false, false)?;
        let router = format!("{short}-router{i}");
        let wan_ip = ip(wan, 20 + i as u8);
        // An idle atrd on loopback holds the router's namespace.
        run_node(
            &label,
            &router,
            &wan_name,
            wan_ip,
            &router_dir,
            "/ip4/127.0.0.1/tcp/4077",
            None,
            &["--sysctl", "net.ipv4.ip_forward=1"],
        )?;
        let lan_router = ip(lan, 2).to_string();
        docker::docker(&["network", "connect", "--ip", &lan_router, &lan_name, &router])?;
        let rpid = docker::container_pid(&router).context("the router is not running")?;
        let subnet = format!("{}.{}.{}.0/24", lan[0], lan[1], lan[2]);
        in_netns(
            rpid,
            &[
                "iptables",
                "-t",
                "nat",
                "-A",
                "POSTROUTING",
                "-s",
                &subnet,
                "!",
                "-d",
                &subnet,
                "-j",
                "MASQUERADE",
            ],
        )?;
        in_netns(
            rpid,
            &[
                "iptables",
                "-A",
                "FORWARD",
                "-d",
                &subnet,
                "-m",
                "conntrack",
                "--ctstate",
                "ESTABLISHED,RELATED",
                "-j",
                "ACCEPT",
            ],
        )?;
        in_netns(rpid, &["iptables", "-A", "FORWARD", "-d", &subnet, "-j", "DROP"])?;
        // Unsolicited packets to the router itself are dropped silently, as
        // home routers do: answered with a TCP reset or an ICMP error, a
        // hole punch's early packet would end the peer's attempt at once.
        for proto in ["tcp", "udp"] {
            in_netns(
                rpid,
                &[
                    "iptables",
                    "-A",
                    "INPUT",
                    "!",
                    "-i",
                    "lo",
                    "-p",
                    proto,
                    "-m",
                    "conntrack",
                    "--ctstate",
                    "NEW",
                    "-j",
                    "DROP",
                ],
            )?;
        }

        let ndir = dir.join(format!("node{i}"));
        let peer = node_dir(&ndir, next_seed(), false, opts.invoke)?;
        let n = Box_ {
            name: format!("{short}-nat{i}"),
            dir: ndir,
            api: ip(lan, 10),
            peer,
        };
        // A provider runs tools in containers of the host's engine.
        let socket: &[&str] = if opts.invoke {
            &["-v", "/var/run/docker.sock:/var/run/docker.sock"]
        } else {
            &[]
        };
        run_node(
            &label,
            &n.name,
            &lan_name,
            n.api,
            &n.dir,
            &listen,
            Some(&boot),
            socket,
        )?;
        let npid = docker::container_pid(&n.name).context("the node is not running")?;
        in_netns(npid, &["ip", "route", "replace", "default", "via", &lan_router])?;
        nodes.push(n);
    }
    let relay_client = node_client(relay.api, &relay.dir).await?;
    let mut clients = Vec::new();
    for n in &nodes {
        clients.push(node_client(n.api, &n.dir).await?);
    }
    let relay_pid = docker::container_pid(&relay.name).context("the relay is not running")?;
    let relay_bytes_before = interface_bytes(relay_pid)?;
    // Watches, from now to the census, when each NATed node first holds a
    // connection to another NATed node.
    let peers: Vec<String> = nodes.iter().map(|n| n.peer.clone()).collect();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let watcher = tokio::spawn(first_connections(clients.clone(), peers, started, stopped));

    let mut report = NatReport {
        nats: opts.nats,
        ..Default::default()
    };
    // Relayed addresses (AutoNAT → private → reservation).
    for c in &clients {
        wait_until("a relayed listen address", || async {
            c.status()
                .await
                .is_ok_and(|s| s.listen_addrs.iter().any(|a| a.contains("/p2p-circuit")))
        })
        .await?;
        report
            .relayed_addr_ms
            .push(started.elapsed().as_secs_f64() * 1000.0);
        let text = c.metrics().await.unwrap_or_default();
        let status = ["public", "private", "unknown"]
            .into_iter()
            .find(|s| metric(&text, &format!("atr_reachability{{status=\"{s}\"}}")) == 1)
            .unwrap_or("unknown");
        report.reachability.push(status.into());
    }

    // Publish on i, then find on i+1: locally (gossip through the relay),
    // then over the network (DHT + index request to the NATed provider),
    // then invoke it there (the request goes to the NATed publisher).
    let n = clients.len();
    for i in 0..n {
        let j = (i + 1) % n;
        let tag = format!("nat{i}");
        let id = clients[i]
            .publish(manifest(&format!("nat-tool-{i}"), &tag, opts.invoke)?)
            .await
            .with_context(|| format!("publish on NATed node {i}"))?
            .id;
        let q = FindQuery {
            tag: Some(tag.clone()),
            ..Default::default()
        };
        let ms = wait_until("the tool found locally across the NATs", || async {
            clients[j].find(&q).await.is_ok_and(|r| !r.results.is_empty())
        })
        .await?;
        report.discoverable_ms.push(ms);
        let nq = FindQuery {
            tag: Some(tag),
            network: true,
            ..Default::default()
        };
        let t = Instant::now();
        let found = clients[j].find(&nq).await.is_ok_and(|r| !r.results.is_empty());
        report.network_find_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        report.network_find_ok += usize::from(found);
        if opts.invoke {
            let req = InvokeRequest {
                id: Some(id),
                name: None,
                version: None,
                publisher: None,
                input: serde_json::json!({ "a": 1, "b": 2 }),
            };
            let t = Instant::now();
            let r = tokio::time::timeout(INVOKE_WAIT, clients[j].invoke(&req)).await;
            report.invoke_ms.push(t.elapsed().as_secs_f64() * 1000.0);
            match r {
                Ok(Ok(resp))
                    if resp.status == InvocationStatus::Ok
                        && resp.output == serde_json::json!(3)
                        && resp.provider == nodes[i].peer =>
                {
                    report.invoke_ok += 1;
                }
                other => eprintln!("atr-testnet nat: invoke of node {i}'s tool from node {j}: {other:?}"),
            }
        }
    }
    // Let connections settle (hole punches), then the census.
    tokio::time::sleep(opts.settle).await;
    let _ = stop.send(());
    report.first_connection_ms = watcher.await?;
    let mut seen = std::collections::HashSet::new();
    for (i, c) in clients.iter().enumerate() {
        let peers = c.peers().await.map(|p| p.peers).unwrap_or_default();
        for v in peers {
            let Some(k) = nodes.iter().position(|o| o.peer == v.peer_id) else {
                continue;
            };
            if !seen.insert((i.min(k), i.max(k))) {
                continue;
            }
            report.pairs_connected += 1;
            if v.addrs.iter().any(|a| !a.contains("/p2p-circuit")) {
                report.pairs_direct += 1;
            }
        }
        let text = c.metrics().await.unwrap_or_default();
        report.hole_punch_success += metric(&text, "atr_hole_punches_total{outcome=\"success\"}");
        report.hole_punch_failure += metric(&text, "atr_hole_punches_total{outcome=\"failure\"}");
        report.relayed_connections += metric(&text, "atr_connections_total{kind=\"relayed\"}");
    }
    report.direct_share = if report.pairs_connected == 0 {
        0.0
    } else {
        report.pairs_direct as f64 / report.pairs_connected as f64
    };
    let text = relay_client.metrics().await.unwrap_or_default();
    report.relay_circuits = metric(&text, "atr_relay_served_total{event=\"circuit_accepted\"}");
    report.relay_bytes = interface_bytes(relay_pid)?.saturating_sub(relay_bytes_before);
    Ok(report)
}

/// Polls every NATed node's peers until `stop`; returns, per node, the time
/// from `started` to its first connection to another NATed node.
async fn first_connections(
    clients: Vec<Client>,
    peers: Vec<String>,
    started: Instant,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> Vec<Option<f64>> {
    let mut first = vec![None; clients.len()];
    // Bounded: the experiment's waits end within a few `WAIT`s.
    let deadline = Instant::now() + 10 * WAIT;
    while Instant::now() < deadline {
        for (i, c) in clients.iter().enumerate() {
            if first[i].is_some() {
                continue;
            }
            if let Ok(p) = c.peers().await
                && p.peers
                    .iter()
                    .any(|v| v.peer_id != peers[i] && peers.contains(&v.peer_id))
            {
                first[i] = Some(started.elapsed().as_secs_f64() * 1000.0);
            }
        }
        if first.iter().all(Option::is_some) {
            break;
        }
        tokio::select! {
            _ = &mut stop => break,
            () = tokio::time::sleep(POLL) => {}
        }
    }
    first
}

/// The report as a Markdown table.
pub fn markdown(r: &NatReport) -> String {
    let ms = |v: &[f64]| {
        if v.is_empty() {
            return "–".to_owned();
        }
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        format!("median {:.0}, max {:.0}", s[s.len() / 2], s[s.len() - 1])
    };
    let first: Vec<f64> = r.first_connection_ms.iter().flatten().copied().collect();
    format!(
        "| measure | value |\n|---|---|\n\
         | NATed nodes | {} |\n\
         | AutoNAT verdicts | {} |\n\
         | start → relayed address, ms | {} |\n\
         | start → first connection between NATed nodes, ms | {} ({} of {} nodes) |\n\
         | publish → discoverable across the NATs (gossip via the relay), ms | {} |\n\
         | network find across the NATs (DHT + index request), ms | {} ({} of {} found) |\n\
         | invoke across the NATs (`add` on the NATed publisher), ms | {} ({} of {} ok) |\n\
         | NATed pairs connected / direct | {} / {} (direct share {:.2}) |\n\
         | hole punches success / failure | {} / {} |\n\
         | relayed connections (NATed nodes) | {} |\n\
         | circuits accepted by the relay | {} |\n\
         | relay interface bytes | {} |\n",
        r.nats,
        r.reachability.join(", "),
        ms(&r.relayed_addr_ms),
        ms(&first),
        first.len(),
        r.nats,
        ms(&r.discoverable_ms),
        ms(&r.network_find_ms),
        r.network_find_ok,
        r.network_find_ms.len(),
        ms(&r.invoke_ms),
        r.invoke_ok,
        r.invoke_ms.len(),
        r.pairs_connected,
        r.pairs_direct,
        r.direct_share,
        r.hole_punch_success,
        r.hole_punch_failure,
        r.relayed_connections,
        r.relay_circuits,
        r.relay_bytes,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_lines_are_read() {
        let text = "# TYPE x counter\natr_hole_punches_total{outcome=\"success\"} 3\natr_x 1.0\n";
        assert_eq!(metric(text, "atr_hole_punches_total{outcome=\"success\"}"), 3);
        assert_eq!(metric(text, "atr_x"), 1);
        assert_eq!(metric(text, "atr_hole_punches_total{outcome=\"failure\"}"), 0);
    }

    #[test]
    fn the_relay_serves_and_nated_nodes_probe() {
        let relay = config(true, false);
        assert!(relay.contains("relay_server = true") && relay.contains("mdns = \"off\""));
        let node = config(false, true);
        assert!(!node.contains("relay_server") && node.contains("autonat_only_global_ips = false"));
        assert!(node.contains("[sandbox]\nenabled = true") && relay.contains("enabled = false"));
    }
}
