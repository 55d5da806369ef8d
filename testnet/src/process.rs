//! Process mode: N `atrd` processes on 127.0.0.1.
//!
//! [`Testnet::up`] prepares one directory per node under `DIR/nodes/` (an
//! identity key generated from the seed, an `atrd.toml`), picks free ports,
//! and starts the nodes one after another, each bootstrapping from one or two
//! earlier nodes chosen by the seeded RNG, so the topology is a random
//! connected graph that the DHT and gossipsub then fill in. Ports stay fixed
//! for a node's life, so a node restarted after `kill` comes back at the
//! address its peers remember. The state file ([`crate::state`]) is rewritten
//! after every start, so `down` works even if this process dies.
//!
//! In docker mode ([`crate::docker`]) each node is a container of a
//! `FROM scratch` image on the testnet's own bridge network, at a fixed
//! address; its output is followed into the same `atrd.log`.
//!
//! Dropping a [`Testnet`] kills its nodes (a panicking test leaves nothing
//! behind); [`Testnet::detach`] leaves them running for `atr-testnet up`.

use std::fs::OpenOptions;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use atr_client::endpoint::TokenSource;
use atr_client::{Client, Endpoint};
use atr_protocol::SecretKey;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use crate::scenario::{Assignment, NetworkSettings, Role};
use crate::state::{Mode, NodeRecord, TestnetState};

/// How long one node may take to answer `/health` after it is started.
pub const NODE_START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the whole network may take until every node has a peer.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a node may stay without any peer before [`Testnet::wait_connected`]
/// restarts it once. 15 s.
pub const ISOLATED_RESTART: Duration = Duration::from_secs(15);
/// Attempts to start a node when its chosen port was taken meanwhile.
pub const PORT_ATTEMPTS: usize = 3;
/// Log file of each node, inside its directory.
pub const LOG_FILE: &str = "atrd.log";
/// How often a waiting loop polls a node.
const POLL: Duration = Duration::from_millis(20);

/// What [`Testnet::up`] needs.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// Testnet directory (created if missing; must hold no running testnet).
    pub dir: PathBuf,
    /// The `atrd` binary.
    pub atrd: PathBuf,
    /// Seed of keys and topology.
    pub seed: u64,
    /// Group and role of each node.
    pub assignment: Assignment,
    /// Node settings.
    pub network: NetworkSettings,
    /// Processes or containers.
    pub mode: Mode,
    /// Docker mode: build the static `atrd` image first (else it must exist).
    pub build_image: bool,
}

/// One node of a running testnet.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// Index.
    pub index: usize,
    /// Group id.
    pub group: String,
    /// Role.
    pub role: Role,
    /// API address.
    pub api: SocketAddr,
    /// Peer-to-peer TCP port.
    pub p2p_port: u16,
    /// Peer id.
    pub peer_id: String,
    /// Data directory.
    pub dir: PathBuf,
    /// Its log (JSON lines).
    pub log: PathBuf,
    /// Client of its API (with its token).
    pub client: Client,
    /// Bootstrap node indices.
    pub bootstrap: Vec<usize>,
}

/// A running process-mode testnet.
pub struct Testnet {
    dir: PathBuf,
    atrd: PathBuf,
    nodes: Vec<NodeInfo>,
    alive: Vec<AtomicBool>,
    children: Mutex<Vec<Option<Child>>>,
    state: Mutex<TestnetState>,
    detached: bool,
    /// Docker network name, subnet prefix and p2p port (docker mode).
    docker: Option<(String, [u8; 3], u16)>,
    /// User-space link emulators of nodes with conditions (docker mode).
    emulators: Mutex<Vec<crate::linkem::Emulator>>,
    /// Swarm mode: node i's API is on 127.0.0.1:(this + i).
    swarm_api_base: Option<u16>,
}

impl std::fmt::Debug for Testnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Testnet")
            .field("dir", &self.dir)
            .field("nodes", &self.nodes.len())
            .finish()
    }
}

/// The first of `n` consecutive TCP ports that were free a moment ago on
/// 0.0.0.0 (swarm mode publishes on every interface), from a per-run start.
fn free_port_run(n: usize) -> anyhow::Result<u16> {
    let start = 30_000 + (crate::state::unix_ms() % 20_000) as u16;
    'outer: for base in (start..60_000u16.saturating_sub(n as u16)).step_by(n.max(1)) {
        for k in 0..n as u16 {
            if TcpListener::bind(("0.0.0.0", base + k)).is_err() {
                continue 'outer;
            }
        }
        return Ok(base);
    }
    bail!("no {n} consecutive free ports")
}

/// A TCP port that was free a moment ago on 127.0.0.1.
fn free_ports(n: usize) -> anyhow::Result<Vec<u16>> {
    // Hold every listener until all are chosen, so the ports differ.
    let ls: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()
        .context("cannot find a free port on 127.0.0.1")?;
    ls.iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect::<Result<_, std::io::Error>>()
        .context("cannot find a free port on 127.0.0.1")
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(bytes)?;
    Ok(())
}

/// The `atrd.toml` of a node.
pub fn node_config(network: &NetworkSettings, sandbox: bool) -> String {
    let mut s = String::from("# Written by atr-testnet.\n[network]\n");
    s += &format!(
        "heartbeat = \"{}\"\n",
        humantime_serde::re::humantime::format_duration(network.heartbeat)
    );
    if let Some(d) = network.sync_interval {
        s += &format!(
            "sync_interval = \"{}\"\n",
            humantime_serde::re::humantime::format_duration(d)
        );
    }
    if let Some(d) = network.gossip_mesh_n {
        s += &format!("gossip_mesh_n = {d}\n");
    }
    if let Some(b) = network.flood_publish {
        s += &format!("flood_publish = {b}\n");
    }
    if let Some(t) = network.idontwant_threshold {
        s += &format!("idontwant_threshold = {t}\n");
    }
    // Every node shares 127.0.0.1: without this gossipsub would score all
    // peers down as a Sybil cluster.
    s += "ip_colocation_penalty = false\n";
    // Nodes find each other through their bootstrap peers only (mDNS would
    // connect every node on a shared Docker network and change the
    // topology a scenario measures); AutoNAT answers on private networks.
    s += "\n[network.nat]\nmdns = \"off\"\nautonat_only_global_ips = false\n";
    s += &format!("\n[sandbox]\nenabled = {sandbox}\n");
    s
}

impl Testnet {
    /// Starts the network; returns once every node answers and has a peer.
    /// If that fails, whatever was started is taken down again.
    pub async fn up(opts: UpOptions) -> anyhow::Result<Self> {
        let dir = opts.dir.clone();
        let had_state = dir.exists() && TestnetState::load(&dir).ok().flatten().is_some();
        match Self::try_up(opts).await {
            Ok(net) => Ok(net),
            Err(e) => {
                // ATR_TESTNET_KEEP_FAILED=1 keeps a failed start for inspection
                // (take it down with `down --dir`).
                let keep = std::env::var_os("ATR_TESTNET_KEEP_FAILED").is_some_and(|v| v == "1");
                if !had_state && !keep {
                    let _ = tokio::task::spawn_blocking(move || crate::state::down(&dir)).await;
                }
                Err(e)
            }
        }
    }

    async fn try_up(opts: UpOptions) -> anyhow::Result<Self> {
        let n = opts.assignment.nodes.len();
        anyhow::ensure!(n >= 1, "a testnet needs at least one node");
        std::fs::create_dir_all(opts.dir.join("nodes"))
            .with_context(|| format!("cannot create {}", opts.dir.display()))?;
        let dir = opts.dir.canonicalize()?;
        if TestnetState::load(&dir)?.is_some() {
            bail!(
                "{} already holds a testnet; run `atr-testnet down --dir {}` first",
                dir.display(),
                dir.display()
            );
        }
        let atrd = match opts.mode {
            Mode::Docker | Mode::Swarm => PathBuf::from(crate::docker::IMAGE),
            _ => opts
                .atrd
                .canonicalize()
                .with_context(|| format!("no atrd binary at {}", opts.atrd.display()))?,
        };
        let mut rng = StdRng::seed_from_u64(opts.seed);
        let state = TestnetState {
            version: 1,
            mode: opts.mode,
            dir: dir.clone(),
            atrd: atrd.clone(),
            seed: opts.seed,
            created_unix_ms: crate::state::unix_ms(),
            harness_pid: std::process::id(),
            nodes: Vec::new(),
            docker_containers: Vec::new(),
            docker_networks: Vec::new(),
            swarm_stack: None,
            swarm_initialised: false,
        };
        state.save()?;
        let swarm_api_base = if opts.mode == Mode::Swarm {
            anyhow::ensure!(
                n <= crate::docker::MAX_DOCKER_NODES,
                "swarm mode runs at most {} nodes",
                crate::docker::MAX_DOCKER_NODES
            );
            if opts.build_image {
                let root = Path::new(env!("CARGO_MANIFEST_DIR"))
                    .parent()
                    .context("no workspace")?
                    .to_owned();
                crate::docker::build_image(&root).await?;
            }
            let initialised = tokio::task::spawn_blocking(crate::swarm::ensure_swarm).await??;
            let mut st = state.clone();
            st.swarm_stack = Some(crate::swarm::stack_name(&dir));
            st.swarm_initialised = initialised;
            st.save()?;
            // Consecutive free ports for the APIs (host mode publishing).
            Some(free_port_run(n)?)
        } else {
            None
        };
        let docker = match opts.mode {
            Mode::Docker => {
                anyhow::ensure!(
                    n <= crate::docker::MAX_DOCKER_NODES,
                    "docker mode runs at most {} nodes",
                    crate::docker::MAX_DOCKER_NODES
                );
                let root = Path::new(env!("CARGO_MANIFEST_DIR"))
                    .parent()
                    .context("no workspace")?
                    .to_owned();
                if let Some(w) = crate::docker::neighbour_table_warning(n) {
                    eprintln!("atr-testnet: warning: {w}");
                }
                if opts.build_image {
                    eprintln!(
                        "building the static atrd image {} (first time: minutes)",
                        crate::docker::IMAGE
                    );
                    crate::docker::build_image(&root).await?;
                }
                let d = dir.clone();
                let (name, prefix) = tokio::task::spawn_blocking(move || {
                    // Leftovers of a crashed run in this directory would block the names.
                    crate::state::docker_cleanup(&d)?;
                    crate::docker::create_network(&d)
                })
                .await??;
                let mut st = state.clone();
                st.docker_networks.push(name.clone());
                st.save()?;
                Some((name, prefix, crate::docker::fresh_p2p_port()))
            }
            _ => None,
        };
        let mut net = Self {
            dir: dir.clone(),
            atrd,
            nodes: Vec::with_capacity(n),
            alive: (0..n).map(|_| AtomicBool::new(false)).collect(),
            children: Mutex::new((0..n).map(|_| None).collect()),
            state: Mutex::new(TestnetState::load(&dir)?.context("state file vanished")?),
            detached: false,
            docker,
            emulators: Mutex::new(Vec::new()),
            swarm_api_base,
        };
        let mut stack_nodes = Vec::new();
        for (index, (group, role)) in opts.assignment.nodes.iter().enumerate() {
            let mut seed = [0u8; 32];
            rng.fill(&mut seed);
            let peer_id = SecretKey::from_seed(&seed).public().to_string();
            let bootstrap: Vec<usize> = match index {
                0 => vec![],
                1 => vec![0],
                _ => {
                    let k = rng.random_range(1..=2);
                    let earlier: Vec<usize> = (0..index).collect();
                    earlier.choose_multiple(&mut rng, k).copied().collect()
                }
            };
            let node_dir = dir.join("nodes").join(format!("{index:04}"));
            std::fs::create_dir_all(&node_dir)?;
            write_private(&node_dir.join("identity.key"), &seed)?;
            // Containers have no Docker socket: no node runs tools there.
            let sandbox = role.runs_tools() && opts.mode == Mode::Process;
            std::fs::write(node_dir.join("atrd.toml"), node_config(&opts.network, sandbox))?;
            let record = NodeRecord {
                index,
                group: group.clone(),
                role: *role,
                pid: None,
                api: SocketAddr::from(([127, 0, 0, 1], 0)),
                p2p_port: 0,
                peer_id,
                dir: node_dir.clone(),
                sandbox,
                bootstrap,
                container: None,
            };
            if let Some(base) = net.swarm_api_base {
                stack_nodes.push(NodeRecord {
                    api: SocketAddr::from(([127, 0, 0, 1], base + index as u16)),
                    p2p_port: crate::docker::P2P_PORT,
                    ..record
                });
            } else {
                net.start_new(record).await?;
            }
        }
        if net.swarm_api_base.is_some() {
            net.deploy_stack(stack_nodes).await?;
        }
        net.wait_connected().await?;
        Ok(net)
    }

    /// Swarm mode: renders the stack file, deploys it, and waits for every
    /// node's API.
    async fn deploy_stack(&mut self, records: Vec<NodeRecord>) -> anyhow::Result<()> {
        let base = self.swarm_api_base.context("not swarm mode")?;
        let label = self.dir.display().to_string();
        let stack_nodes: Vec<crate::swarm::StackNode<'_>> = records
            .iter()
            .map(|r| crate::swarm::StackNode {
                index: r.index,
                peer_id: &r.peer_id,
                dir: &r.dir,
                bootstrap: &r.bootstrap,
            })
            .collect();
        let file = self.dir.join(crate::swarm::STACK_FILE);
        std::fs::write(
            &file,
            crate::swarm::stack_file(&label, &stack_nodes, base, &crate::logs::node_log_filter())?,
        )?;
        {
            let mut st = self.lock_state();
            st.nodes = records.clone();
            st.save()?;
        }
        let stack = crate::swarm::stack_name(&self.dir);
        let f = file.clone();
        let st = stack.clone();
        tokio::task::spawn_blocking(move || crate::swarm::deploy(&f, &st)).await??;
        for r in &records {
            let follower = crate::swarm::follow_service_logs(&stack, r.index, &r.dir.join(LOG_FILE))?;
            self.lock_children()[r.index] = Some(follower);
        }
        for r in records {
            let anon = Client::new(Endpoint {
                api: format!("http://{}", r.api),
                token: None,
                token_source: TokenSource::Explicit,
            })?;
            let deadline = Instant::now() + 3 * NODE_START_TIMEOUT;
            while anon.health().await.is_err() {
                if Instant::now() > deadline {
                    bail!("swarm node {} did not answer on {}", r.index, r.api);
                }
                tokio::time::sleep(POLL).await;
            }
            let token = std::fs::read_to_string(r.dir.join("api.token"))
                .with_context(|| format!("node {} has no api.token", r.index))?;
            self.alive[r.index].store(true, Ordering::SeqCst);
            let client = Client::new(Endpoint {
                api: format!("http://{}", r.api),
                token: Some(token.trim().to_owned()),
                token_source: TokenSource::Explicit,
            })?;
            self.nodes.push(NodeInfo {
                index: r.index,
                group: r.group.clone(),
                role: r.role,
                api: r.api,
                p2p_port: r.p2p_port,
                peer_id: r.peer_id.clone(),
                dir: r.dir.clone(),
                log: r.dir.join(LOG_FILE),
                client,
                bootstrap: r.bootstrap.clone(),
            });
        }
        Ok(())
    }

    /// Starts a node for the first time, on fresh ports (retrying if a port
    /// was taken in between).
    async fn start_new(&mut self, mut record: NodeRecord) -> anyhow::Result<()> {
        let mut last_err = None;
        for _ in 0..PORT_ATTEMPTS {
            if let Some((_, prefix, port)) = &self.docker {
                record.api = SocketAddr::from((
                    crate::docker::node_ip(*prefix, record.index),
                    crate::docker::API_PORT,
                ));
                record.p2p_port = *port;
                record.container = Some(format!(
                    "{}-{}",
                    crate::docker::short_name(&self.dir),
                    record.index
                ));
            } else {
                let ports = free_ports(2)?;
                record.api = SocketAddr::from(([127, 0, 0, 1], ports[0]));
                record.p2p_port = ports[1];
            }
            {
                let mut st = self.lock_state();
                st.nodes.retain(|r| r.index != record.index);
                st.nodes.push(record.clone());
                st.save()?;
            }
            match self.spawn(&record, false).await {
                Ok(client) => {
                    let log = record.dir.join(LOG_FILE);
                    self.nodes.push(NodeInfo {
                        index: record.index,
                        group: record.group.clone(),
                        role: record.role,
                        api: record.api,
                        p2p_port: record.p2p_port,
                        peer_id: record.peer_id.clone(),
                        dir: record.dir.clone(),
                        log,
                        client,
                        bootstrap: record.bootstrap.clone(),
                    });
                    return Ok(());
                }
                Err(e) => {
                    let in_use = self.docker.is_none() && format!("{e:#}").contains("in use");
                    last_err = Some(e);
                    if !in_use {
                        break;
                    }
                }
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow::anyhow!("node {} did not start", record.index)))
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, TestnetState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_children(&self) -> std::sync::MutexGuard<'_, Vec<Option<Child>>> {
        self.children.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn command(&self, r: &NodeRecord, bootstrap: &[String]) -> anyhow::Result<Command> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(r.dir.join(LOG_FILE))
            .with_context(|| format!("cannot open the log of node {}", r.index))?;
        let mut c = Command::new(&self.atrd);
        c.arg("--data-dir")
            .arg(&r.dir)
            .arg("--config")
            .arg(r.dir.join("atrd.toml"))
            .args(["--api", &r.api.to_string()])
            .args(["--listen", &format!("/ip4/127.0.0.1/tcp/{}", r.p2p_port)])
            .args(["--log-format", "json"]);
        for b in bootstrap {
            c.args(["--bootstrap", b]);
        }
        for v in [
            "ATR_CONFIG",
            "ATR_DATA_DIR",
            "ATR_LISTEN",
            "ATR_API_ADDR",
            "ATR_BOOTSTRAP",
            "ATR_LOG_FORMAT",
        ] {
            c.env_remove(v);
        }
        c.env("RUST_LOG", crate::logs::node_log_filter())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // Its own process group: a Ctrl-C meant for the harness does not
        // kill the nodes behind its back; the harness takes them down.
        std::os::unix::process::CommandExt::process_group(&mut c, 0);
        Ok(c)
    }

    fn bootstrap_addrs(&self, r: &NodeRecord) -> Vec<String> {
        let st = self.lock_state();
        r.bootstrap
            .iter()
            .filter_map(|b| st.nodes.iter().find(|x| x.index == *b))
            .map(|b| format!("/ip4/{}/tcp/{}/p2p/{}", b.api.ip(), b.p2p_port, b.peer_id))
            .collect()
    }

    /// Spawns the node's process (or starts its container) and waits until
    /// its API answers; returns a client.
    async fn spawn(&self, r: &NodeRecord, restart: bool) -> anyhow::Result<Client> {
        let boot = self.bootstrap_addrs(r);
        let log = r.dir.join(LOG_FILE);
        let child = match (&self.docker, &r.container) {
            (Some((network, _, _)), Some(name)) => {
                let since = restart.then(|| (crate::runner::unix_us() / 1_000_000) - 1);
                if restart {
                    crate::docker::docker(&["start", name])?;
                } else {
                    crate::docker::run_container(&crate::docker::ContainerSpec {
                        name,
                        network,
                        ip: match r.api.ip() {
                            std::net::IpAddr::V4(ip) => ip,
                            std::net::IpAddr::V6(_) => bail!("docker nodes have IPv4 addresses"),
                        },
                        testnet_dir: &self.dir,
                        node_dir: &r.dir,
                        log_filter: &crate::logs::node_log_filter(),
                        bootstrap: &boot,
                        p2p_port: r.p2p_port,
                    })?;
                    let mut st = self.lock_state();
                    if !st.docker_containers.contains(name) {
                        st.docker_containers.push(name.clone());
                    }
                }
                crate::docker::follow_logs(name, since, &log)?
            }
            _ => self
                .command(r, &boot)?
                .spawn()
                .with_context(|| format!("cannot run {}", self.atrd.display()))?,
        };
        let pid = match &r.container {
            Some(name) => crate::docker::container_pid(name).context("the container is not running")?,
            None => child.id(),
        };
        self.lock_children()[r.index] = Some(child);
        {
            let mut st = self.lock_state();
            if let Some(x) = st.nodes.iter_mut().find(|x| x.index == r.index) {
                x.pid = Some(pid);
            }
            st.save()?;
        }
        let client = Client::new(Endpoint {
            api: format!("http://{}", r.api),
            token: None,
            token_source: TokenSource::Explicit,
        })?;
        let deadline = Instant::now() + NODE_START_TIMEOUT;
        loop {
            if client.health().await.is_ok() {
                break;
            }
            let exited = self.lock_children()[r.index]
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                self.lock_children()[r.index] = None;
                bail!(
                    "node {} exited at start ({status}); its log ends with:\n{}",
                    r.index,
                    log_tail(&r.dir.join(LOG_FILE), 5)
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "node {} did not answer on {} within {NODE_START_TIMEOUT:?}; log: {}",
                    r.index,
                    r.api,
                    r.dir.join(LOG_FILE).display()
                );
            }
            tokio::time::sleep(POLL).await;
        }
        let token = std::fs::read_to_string(r.dir.join("api.token"))
            .with_context(|| format!("node {} has no api.token", r.index))?;
        self.alive[r.index].store(true, Ordering::SeqCst);
        Ok(Client::new(Endpoint {
            api: format!("http://{}", r.api),
            token: Some(token.trim().to_owned()),
            token_source: TokenSource::Explicit,
        })?)
    }

    /// Waits until every live node has at least one connected peer. A node
    /// still alone after [`ISOLATED_RESTART`] is restarted once, which dials
    /// its bootstrap peers again (see `docs/testnet.md`: atrd does not retry
    /// a failed bootstrap dial), with a warning on stderr.
    pub async fn wait_connected(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        for n in &self.nodes {
            if self.nodes.len() < 2 || !self.is_alive(n.index) {
                continue;
            }
            // Swarm mode does not own the containers: no restart there.
            let mut restart_at = self
                .swarm_api_base
                .is_none()
                .then(|| Instant::now() + ISOLATED_RESTART);
            loop {
                if let Ok(s) = n.client.status().await
                    && !s.connected_peers.is_empty()
                {
                    break;
                }
                if Instant::now() > deadline {
                    bail!("node {} has no peer after {CONNECT_TIMEOUT:?}", n.index);
                }
                if restart_at.is_some_and(|t| Instant::now() > t) {
                    restart_at = None;
                    eprintln!(
                        "atr-testnet: warning: node {} has no peer after {ISOLATED_RESTART:?} \
                         (its bootstrap dial failed); restarting it once",
                        n.index
                    );
                    self.kill(n.index, true).await?;
                    self.restart(n.index).await?;
                }
                tokio::time::sleep(POLL).await;
            }
        }
        Ok(())
    }

    /// The testnet directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The nodes.
    pub fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    /// Whether node `i` is running.
    pub fn is_alive(&self, i: usize) -> bool {
        self.alive.get(i).is_some_and(|a| a.load(Ordering::SeqCst))
    }

    /// The running nodes among `candidates`.
    pub fn alive_of(&self, candidates: &[usize]) -> Vec<usize> {
        candidates.iter().copied().filter(|i| self.is_alive(*i)).collect()
    }

    /// (index, pid) of every running node (in docker mode the host pid of
    /// the container's `atrd`).
    pub fn pids(&self) -> Vec<(usize, u32)> {
        self.lock_state()
            .nodes
            .iter()
            .filter(|n| self.is_alive(n.index))
            .filter_map(|n| n.pid.map(|p| (n.index, p)))
            .collect()
    }

    /// The `atrd` binary the nodes run (`atr-attacker` is built beside it).
    pub fn atrd(&self) -> &Path {
        &self.atrd
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.lock_state().mode
    }

    fn container(&self, i: usize) -> Option<String> {
        self.lock_state()
            .nodes
            .iter()
            .find(|n| n.index == i)
            .and_then(|n| n.container.clone())
    }

    /// Cuts the network into `sides` (node indices): nodes on different sides
    /// drop each other's packets (docker mode).
    pub fn partition(&self, sides: &[Vec<usize>]) -> anyhow::Result<()> {
        let Some((_, prefix, _)) = &self.docker else {
            bail!("partitions need docker mode");
        };
        let pids = self.pids();
        for (k, side) in sides.iter().enumerate() {
            let others: Vec<std::net::Ipv4Addr> = sides
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != k)
                .flat_map(|(_, s)| s.iter().map(|i| crate::docker::node_ip(*prefix, *i)))
                .collect();
            for i in side {
                if let Some((_, pid)) = pids.iter().find(|(n, _)| n == i) {
                    crate::docker::cut(*pid, &others).with_context(|| format!("cutting node {i}"))?;
                }
            }
        }
        Ok(())
    }

    /// Removes every cut (docker mode).
    pub fn heal(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.docker.is_some(), "partitions need docker mode");
        for (i, pid) in self.pids() {
            crate::docker::heal(pid).with_context(|| format!("healing node {i}"))?;
        }
        Ok(())
    }

    /// Applies each group's link conditions to its nodes (docker mode);
    /// returns how (kernel netem or the user-space emulator).
    pub fn apply_conditions(
        &self,
        conditions: &[(usize, crate::scenario::Conditions)],
        seed: u64,
    ) -> anyhow::Result<&'static str> {
        anyhow::ensure!(
            self.docker.is_some(),
            "link conditions need docker mode: in process mode all nodes share the loopback interface"
        );
        let pids = self.pids();
        let mut how = "kernel netem";
        for (i, c) in conditions {
            if let Some((_, pid)) = pids.iter().find(|(n, _)| n == i) {
                let node_seed = seed ^ (*i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                match crate::docker::apply_conditions(*pid, c, node_seed)
                    .with_context(|| format!("node {i}"))?
                {
                    crate::docker::Applied::Kernel => {}
                    crate::docker::Applied::Userspace(e) => {
                        how = "user-space emulator (NFQUEUE; this kernel has no netem)";
                        self.lock_emulators().push(e);
                    }
                }
            }
        }
        Ok(how)
    }

    /// The user-space emulators' counters summed (`None`: none run).
    pub fn link_stats(&self) -> Option<crate::linkem::LinkStats> {
        let all: Vec<_> = self
            .lock_emulators()
            .iter()
            .map(crate::linkem::Emulator::stats)
            .collect();
        (!all.is_empty()).then(|| crate::linkem::LinkStats::merge(&all))
    }

    fn lock_emulators(&self) -> std::sync::MutexGuard<'_, Vec<crate::linkem::Emulator>> {
        self.emulators
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stops node `i`: SIGKILL (a crash), or SIGTERM and wait (`graceful`).
    pub async fn kill(&self, i: usize, graceful: bool) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.swarm_api_base.is_none(),
            "swarm mode cannot stop single nodes"
        );
        self.alive[i].store(false, Ordering::SeqCst);
        let child = self.lock_children()[i].take();
        if let Some(name) = self.container(i) {
            let r = if graceful {
                crate::docker::docker(&["stop", "-t", "5", &name])
            } else {
                crate::docker::docker(&["kill", "-s", "KILL", &name])
            };
            r.with_context(|| format!("stopping node {i}"))?;
            if let Some(mut c) = child {
                tokio::task::spawn_blocking(move || c.wait()).await??;
            }
        } else if let Some(mut c) = child {
            if graceful {
                let pid = nix::unistd::Pid::from_raw(i32::try_from(c.id())?);
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            } else {
                // SIGKILL; an error means it already exited.
                let _ = c.kill();
            }
            tokio::task::spawn_blocking(move || c.wait())
                .await?
                .with_context(|| format!("waiting for node {i}"))?;
        }
        let mut st = self.lock_state();
        if let Some(x) = st.nodes.iter_mut().find(|x| x.index == i) {
            x.pid = None;
        }
        st.save()
    }

    /// Starts stopped node `i` again with its old ports, key and store;
    /// returns how long it took to answer.
    pub async fn restart(&self, i: usize) -> anyhow::Result<Duration> {
        anyhow::ensure!(
            self.swarm_api_base.is_none(),
            "swarm mode cannot restart single nodes"
        );
        anyhow::ensure!(!self.is_alive(i), "node {i} is running");
        let record = self
            .lock_state()
            .nodes
            .iter()
            .find(|x| x.index == i)
            .cloned()
            .with_context(|| format!("no node {i}"))?;
        let t = Instant::now();
        self.spawn(&record, true).await?;
        Ok(t.elapsed())
    }

    /// Leaves the nodes running (for `atr-testnet up`); `down` stops them later.
    pub fn detach(mut self) {
        self.detached = true;
    }

    /// Stops every node and removes the testnet directory ([`crate::state::down`]).
    pub async fn down(mut self) -> anyhow::Result<crate::state::DownReport> {
        self.detached = true;
        // Held packets go out before the nodes go away.
        let emulators = std::mem::take(&mut *self.lock_emulators());
        tokio::task::spawn_blocking(move || drop(emulators)).await?;
        let dir = self.dir.clone();
        let report = tokio::task::spawn_blocking(move || crate::state::down(&dir)).await??;
        // Reap the children `down` stopped.
        let children: Vec<Child> = self.lock_children().iter_mut().filter_map(Option::take).collect();
        tokio::task::spawn_blocking(move || {
            for mut c in children {
                let _ = c.kill();
                let _ = c.wait();
            }
        })
        .await?;
        Ok(report)
    }
}

impl Drop for Testnet {
    fn drop(&mut self) {
        if self.detached {
            return;
        }
        // Not taken down properly (a panic, an early error): do not leave
        // processes behind. The directory stays for `down` or inspection.
        for c in self.lock_children().iter_mut().filter_map(Option::take) {
            let mut c = c;
            let _ = c.kill();
            let _ = c.wait();
        }
        let containers: Vec<String> = self
            .lock_state()
            .nodes
            .iter()
            .filter_map(|n| n.container.clone())
            .collect();
        if !containers.is_empty() {
            let mut args = vec!["kill"];
            args.extend(containers.iter().map(String::as_str));
            let _ = crate::docker::docker(&args);
        }
        let mut st = self.lock_state();
        for n in &mut st.nodes {
            n.pid = None;
        }
        let _ = st.save();
    }
}

/// The last `n` lines of a file (for error messages).
pub fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_config_carries_the_scenarios_gossip_tuning() {
        let plain = node_config(&NetworkSettings::default(), false);
        assert!(plain.contains("heartbeat = \"200ms\"") && plain.contains("ip_colocation_penalty = false"));
        assert!(!plain.contains("gossip_mesh_n") && !plain.contains("flood_publish"));
        let tuned = NetworkSettings {
            gossip_mesh_n: Some(4),
            flood_publish: Some(false),
            idontwant_threshold: Some(200),
            ..NetworkSettings::default()
        };
        let text = node_config(&tuned, true);
        for line in [
            "gossip_mesh_n = 4",
            "flood_publish = false",
            "idontwant_threshold = 200",
            "enabled = true",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        // What atrd reads back is a TOML table with exactly these keys.
        let v: toml::Value = toml::from_str(&text).unwrap();
        assert_eq!(v["network"]["gossip_mesh_n"].as_integer(), Some(4));
    }
}
