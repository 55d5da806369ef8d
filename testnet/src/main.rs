//! `atr-testnet`: multi-node experiments (work in progress: see issue 7) and
//! the example tools image.

use std::path::PathBuf;
use std::process::ExitCode;

use atr_testnet::commands::{self, ExportArgs, RunArgs, UpArgs};
use atr_testnet::tools_image;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "atr-testnet", version, about = "atr multi-node experiments")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ModeArg {
    Process,
    Docker,
    Swarm,
}

impl From<ModeArg> for atr_testnet::state::Mode {
    fn from(m: ModeArg) -> Self {
        match m {
            ModeArg::Process => Self::Process,
            ModeArg::Docker => Self::Docker,
            ModeArg::Swarm => Self::Swarm,
        }
    }
}

fn duration(s: &str) -> Result<std::time::Duration, String> {
    humantime_serde::re::humantime::parse_duration(s).map_err(|e| e.to_string())
}

#[derive(Subcommand)]
enum Cmd {
    /// Start N atrd nodes and leave them running (stop them with `down`).
    Up {
        /// Nodes to start.
        #[arg(long, default_value_t = 10)]
        nodes: usize,
        /// Testnet directory (node dirs, logs, testnet.json).
        #[arg(long)]
        dir: PathBuf,
        /// The atrd binary (default: next to this one, else built).
        #[arg(long)]
        atrd: Option<PathBuf>,
        /// Seed of keys and bootstrap topology.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// How many nodes (the first ones) run tools (sandbox on).
        #[arg(long, default_value_t = 0)]
        providers: usize,
        /// Gossipsub heartbeat of the nodes.
        #[arg(long, default_value = "200ms", value_parser = duration)]
        heartbeat: std::time::Duration,
        /// Measure idle RSS and CPU over this window after start (0s: skip).
        #[arg(long, default_value = "5s", value_parser = duration)]
        measure: std::time::Duration,
        /// How nodes run.
        #[arg(long, value_enum, default_value = "process")]
        mode: ModeArg,
    },
    /// Stop and remove everything a testnet made (works after a crash too).
    Down {
        /// Testnet directory.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Run a scenario (built-in name or TOML file) on a fresh network.
    Run {
        /// Built-in scenario (see `scenarios`) or a scenario file.
        scenario: String,
        /// Network size (default: the scenario's).
        #[arg(long)]
        nodes: Option<usize>,
        /// Repetitions, each on a fresh network.
        #[arg(long, default_value_t = 1)]
        repeat: usize,
        /// Seed (default: the scenario's).
        #[arg(long)]
        seed: Option<u64>,
        /// Output directory (samples, summary, plots).
        #[arg(long)]
        out: PathBuf,
        /// The atrd binary (default: next to this one, else built).
        #[arg(long)]
        atrd: Option<PathBuf>,
        /// Testnet directory while it runs (default: OUT/net; removed after).
        #[arg(long)]
        net_dir: Option<PathBuf>,
        /// How nodes run.
        #[arg(long, value_enum, default_value = "process")]
        mode: ModeArg,
    },
    /// Write a Docker Compose file (and generated keys) for an N-node network.
    Export {
        /// The compose file to write.
        #[arg(long)]
        compose: PathBuf,
        /// Nodes.
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// Seed of keys and bootstrap topology.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Host port of node 0's API (node i gets this + i, on 127.0.0.1).
        #[arg(long, default_value_t = 17800)]
        api_base: u16,
        /// Do not build the atrd image (it must exist where the file runs).
        #[arg(long)]
        no_build: bool,
    },
    /// Render a scenario's network as Kubernetes objects (a StatefulSet, its
    /// headless Service, a ConfigMap and a Secret), one YAML stream.
    Kube {
        /// Built-in scenario (see `scenarios`) or a scenario file: its
        /// node count and `[network]` settings.
        scenario: String,
        /// Pods (default: the scenario's node count).
        #[arg(long)]
        nodes: Option<usize>,
        /// Key seed (default: the scenario's).
        #[arg(long)]
        seed: Option<u64>,
        /// Output file.
        #[arg(long)]
        file: PathBuf,
    },
    /// The NAT experiment (docker mode): N nodes each behind its own NAT
    /// (a masquerading router container) and one public relay; prints the
    /// measures as Markdown and JSON.
    Nat {
        /// NATed nodes (2..=16).
        #[arg(long, default_value_t = 3)]
        nats: usize,
        /// Working directory (removed containers and networks at the end).
        #[arg(long)]
        dir: PathBuf,
        /// Key seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Watch connections this long after the finds before counting them.
        #[arg(long, default_value = "20s", value_parser = duration)]
        settle: std::time::Duration,
        /// Reuse the existing atrd image (and example tools image).
        #[arg(long)]
        no_build: bool,
        /// Do not invoke the tools across the NATs (then the NATed nodes run
        /// no tools and need no Docker socket nor the example tools image).
        #[arg(long)]
        no_invoke: bool,
    },
    /// List the built-in scenarios, or print one's TOML.
    Scenarios {
        /// Print this scenario's file.
        #[arg(long)]
        show: Option<String>,
    },
    /// Start a local 3-node network with the example tools, find and invoke
    /// one across nodes, then keep running until Ctrl-C.
    Demo {
        /// Nodes to start.
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// Data directory for the nodes (default: a temp dir removed at exit).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The atrd binary (default: next to this one, built if needed).
        #[arg(long)]
        atrd: Option<PathBuf>,
        /// Exit after the walkthrough instead of waiting for Ctrl-C.
        #[arg(long)]
        once: bool,
    },
    /// Build the example tools statically and pack them into a FROM scratch
    /// image; prints the image id.
    ToolsImage {
        /// Image tag.
        #[arg(long, default_value = tools_image::TOOLS_IMAGE)]
        tag: String,
        /// Workspace to build in (default: the one this binary was built from).
        #[arg(long)]
        workspace_root: Option<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        // Plain text when stderr is a file or a pipe: no colour codes in saved logs.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("atr-testnet: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Cmd::Up {
            nodes,
            dir,
            atrd,
            seed,
            providers,
            heartbeat,
            measure,
            mode,
        } => {
            let mode = mode.into();
            commands::up(UpArgs {
                nodes,
                dir,
                atrd,
                seed,
                providers,
                heartbeat,
                measure,
                mode,
            })
            .await?;
        }
        Cmd::Down { dir } => commands::down(dir).await?,
        Cmd::Run {
            scenario,
            nodes,
            repeat,
            seed,
            out,
            atrd,
            net_dir,
            mode,
        } => {
            let mode = mode.into();
            commands::run(RunArgs {
                scenario,
                nodes,
                repeat,
                seed,
                out,
                atrd,
                net_dir,
                mode,
            })
            .await?;
        }
        Cmd::Export {
            compose,
            nodes,
            seed,
            api_base,
            no_build,
        } => {
            let build = !no_build;
            commands::export(ExportArgs {
                compose,
                nodes,
                seed,
                api_base,
                build,
            })
            .await?;
        }
        Cmd::Kube {
            scenario,
            nodes,
            seed,
            file,
        } => {
            let s = atr_testnet::scenario::Scenario::load(&scenario)?;
            let yaml =
                atr_testnet::kube::render(nodes.unwrap_or(s.nodes), seed.unwrap_or(s.seed), &s.network)?;
            std::fs::write(&file, yaml)?;
            eprintln!("wrote {} (kubectl apply -f it)", file.display());
        }
        Cmd::Nat {
            nats,
            dir,
            seed,
            settle,
            no_build,
            no_invoke,
        } => {
            let report = atr_testnet::nat::run(atr_testnet::nat::NatOptions {
                nats,
                dir,
                build_image: !no_build,
                seed,
                settle,
                invoke: !no_invoke,
            })
            .await?;
            println!("{}", atr_testnet::nat::markdown(&report));
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        Cmd::Scenarios { show } => commands::scenarios(show)?,
        Cmd::Demo {
            nodes,
            dir,
            atrd,
            once,
        } => {
            atr_testnet::demo::run(atr_testnet::demo::DemoOptions {
                nodes,
                dir,
                atrd,
                once,
            })
            .await?;
        }
        Cmd::ToolsImage { tag, workspace_root } => {
            let root = workspace_root.unwrap_or_else(tools_image::default_workspace_root);
            let built = tools_image::build(&root, &tag).await?;
            eprintln!(
                "{} tools, {:.1} MB of binaries; static build {:.1} s, image build {:.2} s, image {}",
                built.tools.len(),
                built.binaries_bytes as f64 / 1e6,
                built.static_build.as_secs_f64(),
                built.image_build.as_secs_f64(),
                built
                    .image_bytes
                    .map_or("size unknown".to_owned(), |b| format!("{:.1} MB", b as f64 / 1e6)),
            );
            println!("{}", built.id);
        }
    }
    Ok(())
}
