//! The `up`, `down`, `run` and `scenarios` subcommands, so `main.rs` only
//! parses flags. Each prints its result (tables to stdout, progress to stderr).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::bail;

use crate::process::{Testnet, UpOptions};
use crate::scenario::{Assignment, BUILTINS, NetworkSettings, Role, Scenario};
use crate::state::Mode;

/// Flags of `atr-testnet up`.
#[derive(Debug, Clone)]
pub struct UpArgs {
    /// Nodes.
    pub nodes: usize,
    /// Testnet directory.
    pub dir: PathBuf,
    /// `atrd` binary (default: found or built, see [`crate::atrd::locate`]).
    pub atrd: Option<PathBuf>,
    /// Seed of keys and topology.
    pub seed: u64,
    /// How many nodes (the first ones) run tools.
    pub providers: usize,
    /// Gossipsub heartbeat.
    pub heartbeat: Duration,
    /// Idle-cost measurement window after start (zero: none).
    pub measure: Duration,
    /// Process or docker.
    pub mode: Mode,
}

/// `atr-testnet up`: starts the nodes, prints them and their idle cost, and
/// leaves them running.
pub async fn up(a: UpArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=crate::scenario::MAX_NODES).contains(&a.nodes),
        "--nodes must be 1..={}",
        crate::scenario::MAX_NODES
    );
    anyhow::ensure!(a.providers <= a.nodes, "--providers is more than --nodes");
    let atrd = crate::atrd::locate(a.atrd.as_deref())?;
    let nodes = (0..a.nodes)
        .map(|i| {
            if i < a.providers {
                ("providers".to_owned(), Role::Provider)
            } else {
                ("nodes".to_owned(), Role::Bystander)
            }
        })
        .collect();
    let t = Instant::now();
    eprintln!("starting {} nodes ({})", a.nodes, atrd.display());
    let net = Testnet::up(UpOptions {
        dir: a.dir.clone(),
        atrd,
        seed: a.seed,
        assignment: Assignment { nodes },
        network: NetworkSettings {
            heartbeat: a.heartbeat,
            ..NetworkSettings::default()
        },
        mode: a.mode,
        build_image: true,
    })
    .await?;
    eprintln!(
        "{} nodes up and connected in {:.1} s",
        a.nodes,
        t.elapsed().as_secs_f64()
    );
    let pids = net.pids();
    println!("node  role       pid      api                    p2p    peer id");
    for n in net.nodes() {
        let pid = pids.iter().find(|(i, _)| *i == n.index).map_or(0, |(_, p)| *p);
        println!(
            "{:<5} {:<10} {:<8} {:<22} {:<6} {}",
            n.index,
            format!("{:?}", n.role).to_lowercase(),
            pid,
            format!("http://{}", n.api),
            n.p2p_port,
            n.peer_id
        );
    }
    if !a.measure.is_zero() {
        eprintln!("measuring the idle network for {:?}", a.measure);
        let u = crate::resources::measure(&pids, a.measure).await;
        println!(
            "idle over {:.1} s: RSS {:.1} MiB per node (max {:.1}, total {:.0}); CPU {:.2} % of a core per node ({:.1} % in all)",
            u.window_s,
            u.rss_mean_mib,
            u.rss_max_mib,
            u.rss_total_mib,
            u.cpu_mean_percent,
            u.cpu_total_percent
        );
    }
    eprintln!(
        "state in {}; stop with: atr-testnet down --dir {}",
        net.dir().join(crate::state::STATE_FILE).display(),
        a.dir.display()
    );
    net.detach();
    Ok(())
}

/// `atr-testnet down`.
pub async fn down(dir: PathBuf) -> anyhow::Result<()> {
    if !dir.exists() {
        println!("{}: no such directory, nothing to take down", dir.display());
        return Ok(());
    }
    let d = dir.clone();
    let r = tokio::task::spawn_blocking(move || crate::state::down(&d)).await??;
    println!(
        "stopped {} node(s) ({} needed SIGKILL), removed {} container(s), {} network(s); {} {}",
        r.stopped,
        r.killed,
        r.containers,
        r.networks,
        dir.display(),
        if r.dir_removed {
            "removed"
        } else {
            "kept (it holds other files)"
        }
    );
    Ok(())
}

/// Flags of `atr-testnet run`.
#[derive(Debug, Clone)]
pub struct RunArgs {
    /// Built-in scenario name or file.
    pub scenario: String,
    /// Network size.
    pub nodes: Option<usize>,
    /// Repetitions.
    pub repeat: usize,
    /// Seed.
    pub seed: Option<u64>,
    /// Output directory.
    pub out: PathBuf,
    /// `atrd` binary.
    pub atrd: Option<PathBuf>,
    /// Testnet directory while it runs.
    pub net_dir: Option<PathBuf>,
    /// Process or docker.
    pub mode: Mode,
}

/// `atr-testnet run`: runs the scenario and prints the Markdown summary.
pub async fn run(a: RunArgs) -> anyhow::Result<()> {
    let scenario = Scenario::load(&a.scenario)?;
    let atrd = crate::atrd::locate(a.atrd.as_deref())?;
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let out = a.out.clone();
    let summary = crate::runner::run(crate::runner::RunOptions {
        scenario,
        nodes: a.nodes,
        repeat: a.repeat,
        seed: a.seed,
        out: a.out,
        atrd,
        net_dir: a.net_dir,
        mode: a.mode,
        command,
    })
    .await?;
    println!("{}", summary.to_markdown());
    eprintln!("results in {}", out.display());
    Ok(())
}

/// `atr-testnet scenarios`: lists the built-ins, or prints one.
pub fn scenarios(show: Option<String>) -> anyhow::Result<()> {
    match show {
        Some(name) => match crate::scenario::builtin(&name) {
            Some(text) => print!("{text}"),
            None => bail!("no built-in scenario `{name}`"),
        },
        None => {
            for (name, text) in BUILTINS {
                let s = Scenario::parse(text, name)?;
                println!("{name:<12} {}", s.description);
            }
        }
    }
    Ok(())
}

/// Flags of `atr-testnet export`.
#[derive(Debug, Clone)]
pub struct ExportArgs {
    /// Compose file to write.
    pub compose: PathBuf,
    /// Nodes.
    pub nodes: usize,
    /// Seed of keys and topology.
    pub seed: u64,
    /// Host port of node 0's API.
    pub api_base: u16,
    /// Build the atrd image first.
    pub build: bool,
}

/// `atr-testnet export --compose FILE`.
pub async fn export(a: ExportArgs) -> anyhow::Result<()> {
    if a.build {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .map(std::path::Path::to_owned)
            .unwrap_or_default();
        eprintln!(
            "building the image {} (first time: minutes)",
            crate::docker::IMAGE
        );
        crate::docker::build_image(&root).await?;
    }
    let nodes = crate::compose::export(&crate::compose::ComposeOptions {
        file: a.compose.clone(),
        nodes: a.nodes,
        seed: a.seed,
        subnet: [10, 213, 250],
        api_base: a.api_base,
        network: NetworkSettings::default(),
    })?;
    for n in &nodes {
        println!("{:<8} {:<24} {}", n.service, n.api, n.peer_id);
    }
    eprintln!(
        "wrote {}; start with `docker compose -f {} up -d` (or docker-compose)",
        a.compose.display(),
        a.compose.display()
    );
    Ok(())
}
