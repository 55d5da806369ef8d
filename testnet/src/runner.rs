//! `atr-testnet run`: a scenario against a fresh network, repeated, with
//! everything it measured written to `--out`.
//!
//! [`run`] does, per repetition: start the network ([`Testnet::up`]), let it
//! settle, measure its idle cost, run the steps ([`steps`]; background steps
//! run beside the later ones), take the network down. Then it writes
//! `samples.jsonl` (as samples arrive), `summary.json`, `summary.md` and the
//! plots. Progress goes to stderr.

mod steps;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use anyhow::{Context, bail};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::logs::{Arrivals, LogWatcher};
use crate::process::{Testnet, UpOptions};
use crate::report::{SAMPLES_FILE, Sample, Summary};
use crate::resources::{self, Machine, ProcSample, Usage};
use crate::scenario::{Assignment, Scenario};
use crate::state::Mode;

/// Window over which the idle network's CPU is measured. 3 s.
pub const IDLE_WINDOW: std::time::Duration = std::time::Duration::from_secs(3);

/// What [`run`] needs.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The scenario.
    pub scenario: Scenario,
    /// Network size (default: the scenario's).
    pub nodes: Option<usize>,
    /// Repetitions (each on a fresh network), at least 1.
    pub repeat: usize,
    /// Seed (default: the scenario's).
    pub seed: Option<u64>,
    /// Output directory.
    pub out: PathBuf,
    /// The `atrd` binary.
    pub atrd: PathBuf,
    /// Where the nodes live while it runs (default `OUT/net`); removed after.
    pub net_dir: Option<PathBuf>,
    /// How the nodes run.
    pub mode: Mode,
    /// The command line, for the report.
    pub command: String,
}

/// Where samples go: appended to `samples.jsonl` at once and kept for the summary.
struct Sink {
    file: BufWriter<File>,
    all: Vec<Sample>,
}

/// A tool published during the run.
#[derive(Debug, Clone)]
struct Published {
    id: atr_protocol::ToolId,
    tag: String,
    node: usize,
    /// Its publish step has ended (lookups expect it from then on).
    done: bool,
    revoked: bool,
}

/// Shared by the steps of one repetition.
struct Ctx {
    net: Arc<Testnet>,
    assignment: Assignment,
    repeat: usize,
    /// Unix µs of the start of the first step.
    t0_unix_us: i64,
    rng: Mutex<StdRng>,
    watch: Mutex<(LogWatcher, Arrivals)>,
    published: Mutex<Vec<Published>>,
    sink: Arc<Mutex<Sink>>,
    payload_bytes: OnceLock<usize>,
    filler: usize,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Ctx {
    fn record(&self, s: Sample) {
        let mut sink = lock(&self.sink);
        if let Ok(line) = serde_json::to_string(&s) {
            // A failed write shows up when the file is flushed at the end.
            let _ = writeln!(sink.file, "{line}");
        }
        sink.all.push(s);
    }

    fn t_ms(&self, unix_us: i64) -> f64 {
        (unix_us - self.t0_unix_us) as f64 / 1000.0
    }

    /// Reads the logs' new events into the arrivals.
    fn refresh(&self) {
        let mut w = lock(&self.watch);
        let events = w.0.poll();
        w.1.add(events);
    }
}

/// Unix time, microseconds.
pub fn unix_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

struct RepeatOutcome {
    /// How link conditions were applied (`Err`: why not).
    conditions: Result<&'static str, String>,
    /// The user-space link emulators' counters, if they ran.
    link: Option<crate::linkem::LinkStats>,
    startup_s: f64,
    idle: Usage,
    during: Usage,
    payload_bytes: Option<usize>,
}

/// Runs the scenario; returns the summary it wrote.
pub async fn run(opts: RunOptions) -> anyhow::Result<Summary> {
    let s = &opts.scenario;
    if s.needs_docker() && opts.mode != Mode::Docker {
        bail!(
            "scenario `{}` cuts links (partition/heal), which needs docker mode (--mode docker): in process \
             mode every node shares the loopback interface, and cutting chosen node pairs off needs a \
             network namespace per node",
            s.name
        );
    }
    let nodes = opts.nodes.unwrap_or(s.nodes);
    anyhow::ensure!(
        (1..=crate::scenario::MAX_NODES).contains(&nodes),
        "--nodes must be 1..={}",
        crate::scenario::MAX_NODES
    );
    let repeat = opts.repeat.max(1);
    let seed = opts.seed.unwrap_or(s.seed);
    let assignment = s.assign(nodes)?;
    std::fs::create_dir_all(&opts.out).with_context(|| format!("cannot create {}", opts.out.display()))?;
    let out = opts.out.canonicalize()?;
    let net_dir = opts.net_dir.clone().unwrap_or_else(|| out.join("net"));
    let mut notes = Vec::new();
    if s.has_conditions() && opts.mode != Mode::Docker {
        notes.push(
            "the scenario's network conditions (delay, jitter, loss, bandwidth) were NOT applied: in process \
             mode all nodes share the loopback interface, where `tc netem` would delay every node alike \
             (and needs root); per-group conditions need docker mode"
                .to_owned(),
        );
        eprintln!("atr-testnet: warning: {}", notes[0]);
    }
    let file = File::create(out.join(SAMPLES_FILE))
        .with_context(|| format!("cannot create {}", out.join(SAMPLES_FILE).display()))?;
    let sink = Arc::new(Mutex::new(Sink {
        file: BufWriter::new(file),
        all: Vec::new(),
    }));
    if matches!(opts.mode, Mode::Docker | Mode::Swarm) {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .context("no workspace")?
            .to_owned();
        eprintln!(
            "[{}] building the static atrd image {} (first time: minutes)",
            s.name,
            crate::docker::IMAGE
        );
        crate::docker::build_image(&root).await?;
    }
    let started = Instant::now();
    let started_unix_ms = crate::state::unix_ms();
    let mut first: Option<RepeatOutcome> = None;
    let mut conditions_applied = false;
    let mut link_emulation = None;
    for r in 0..repeat {
        let one = run_repeat(&opts, r, seed + r as u64, &assignment, &net_dir, sink.clone());
        let outcome = tokio::select! {
            o = one => o,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        };
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => {
                // The nodes are already stopped (the network is dropped);
                // remove what is left on disk.
                let d = net_dir.clone();
                let _ = tokio::task::spawn_blocking(move || crate::state::down(&d)).await;
                lock(&sink).file.flush().ok();
                return Err(e.context(format!("repetition {} of {}", r + 1, s.name)));
            }
        };
        if first.is_none() {
            conditions_applied = outcome.conditions.is_ok() && s.has_conditions();
            match &outcome.conditions {
                Ok(how) => notes.push(format!("link conditions applied by {how}")),
                Err(e) if !e.is_empty() => notes.push(e.clone()),
                Err(_) => {}
            }
            link_emulation = outcome.link;
            first = Some(outcome);
        }
    }
    let all = {
        let mut sink = lock(&sink);
        sink.file.flush().context("cannot write the samples")?;
        sink.all.clone()
    };
    let first = first.context("no repetition ran")?;
    let summary = Summary {
        scenario: s.name.clone(),
        description: s.description.clone(),
        command: opts.command.clone(),
        mode: match opts.mode {
            Mode::Docker => "docker".into(),
            Mode::Swarm => "swarm".into(),
            _ => "process".into(),
        },
        nodes,
        repeat,
        seed,
        payload_bytes: first.payload_bytes,
        heartbeat_ms: u64::try_from(s.network.heartbeat.as_millis()).unwrap_or(u64::MAX),
        conditions_applied,
        link_emulation,
        notes,
        machine: Machine::current(),
        git_commit: crate::report::git_commit(),
        atrd: opts.atrd.display().to_string(),
        started_unix_ms,
        duration_s: started.elapsed().as_secs_f64(),
        startup_s: first.startup_s,
        idle: Some(first.idle),
        during: Some(first.during),
        series: crate::report::summarize(&all),
    };
    summary.write(&out)?;
    let title = format!("{} ({} nodes)", s.name, nodes);
    crate::plot::latency_cdf(&all, &title, &out.join(crate::plot::LATENCY_CDF))?;
    crate::plot::success_over_time(&all, &title, &out.join(crate::plot::SUCCESS_OVER_TIME))?;
    Ok(summary)
}

async fn run_repeat(
    opts: &RunOptions,
    r: usize,
    seed: u64,
    assignment: &Assignment,
    net_dir: &std::path::Path,
    sink: Arc<Mutex<Sink>>,
) -> anyhow::Result<RepeatOutcome> {
    let s = &opts.scenario;
    let tag = format!("[{} {}/{}]", s.name, r + 1, opts.repeat.max(1));
    eprintln!(
        "{tag} starting {} nodes in {}",
        assignment.nodes.len(),
        net_dir.display()
    );
    let t_up = Instant::now();
    let net = Testnet::up(UpOptions {
        dir: net_dir.to_owned(),
        atrd: opts.atrd.clone(),
        seed,
        assignment: assignment.clone(),
        network: s.network.clone(),
        mode: opts.mode,
        // Built once before the first repetition (see `run`).
        build_image: false,
    })
    .await?;
    let startup_s = t_up.elapsed().as_secs_f64();
    let conditions = if s.has_conditions() && opts.mode == Mode::Docker {
        let per_node: Vec<(usize, crate::scenario::Conditions)> = s
            .groups
            .iter()
            .filter_map(|g| g.conditions.clone().map(|c| (g, c)))
            .flat_map(|(g, c)| assignment.members(&g.id).into_iter().map(move |i| (i, c.clone())))
            .collect();
        match net.apply_conditions(&per_node, seed) {
            Ok(how) => {
                eprintln!("{tag} link conditions applied by {how}");
                Ok(how)
            }
            Err(e) => {
                let msg = format!(
                    "the scenario's link conditions were NOT applied ({e:#}): neither kernel netem nor the \
                     user-space emulator (nfnetlink_queue) worked, so the run went on without them"
                );
                eprintln!("{tag} warning: {msg}");
                Err(msg)
            }
        }
    } else {
        Err(String::new())
    };
    eprintln!("{tag} network up in {startup_s:.1} s; settling {:?}", s.settle);
    tokio::time::sleep(s.settle).await;
    let idle = resources::measure(&net.pids(), IDLE_WINDOW).await;
    eprintln!(
        "{tag} idle: RSS {:.1} MiB/node, CPU {:.2} %/node",
        idle.rss_mean_mib, idle.cpu_mean_percent
    );
    let logs = net.nodes().iter().map(|n| n.log.clone()).collect();
    let net = Arc::new(net);
    let ctx = Arc::new(Ctx {
        net: net.clone(),
        assignment: assignment.clone(),
        repeat: r,
        t0_unix_us: unix_us(),
        rng: Mutex::new(StdRng::seed_from_u64(seed ^ 0x5eed)),
        watch: Mutex::new((LogWatcher::new(logs), Arrivals::default())),
        published: Mutex::new(Vec::new()),
        sink,
        payload_bytes: OnceLock::new(),
        filler: s.payload_bytes,
    });
    let before: Vec<(usize, u32, Option<ProcSample>)> = net
        .pids()
        .into_iter()
        .map(|(i, p)| (i, p, resources::sample(p)))
        .collect();
    let t_steps = Instant::now();
    let result = steps::run_all(&ctx, &s.steps, &tag).await;
    let during = usage_between(&net, &before, t_steps.elapsed().as_secs_f64());
    let payload_bytes = ctx.payload_bytes.get().copied();
    let link = net.link_stats();
    drop(ctx);
    match Arc::try_unwrap(net) {
        Ok(net) => {
            // The measurements are in: a teardown that leaves something
            // behind (the engine keeping a stale endpoint of a removed
            // container) is reported, not allowed to discard them.
            if let Err(e) = net.down().await {
                eprintln!(
                    "{tag} warning: taking the network down left something behind ({e:#}); \
                     `atr-testnet down --dir {}` retries",
                    net_dir.display()
                );
            }
        }
        Err(net) => {
            drop(net);
            let d = net_dir.to_owned();
            tokio::task::spawn_blocking(move || crate::state::down(&d)).await??;
        }
    }
    result?;
    eprintln!("{tag} done; network taken down");
    Ok(RepeatOutcome {
        conditions,
        link,
        startup_s,
        idle,
        during,
        payload_bytes,
    })
}

/// CPU and RSS of the nodes between `before` and now (nodes whose process
/// changed, i.e. restarted ones, are left out).
fn usage_between(net: &Testnet, before: &[(usize, u32, Option<ProcSample>)], secs: f64) -> Usage {
    let tck = resources::clock_ticks() as f64;
    let now = net.pids();
    let nodes = before
        .iter()
        .filter(|(i, p, _)| now.contains(&(*i, *p)))
        .filter_map(|(i, p, b)| {
            let (b, a) = ((*b)?, resources::sample(*p)?);
            Some(resources::NodeUsage {
                node: *i,
                rss_mib: a.rss_bytes as f64 / (1024.0 * 1024.0),
                cpu_percent: a.cpu_ticks.saturating_sub(b.cpu_ticks) as f64 / tck / secs.max(1e-3) * 100.0,
            })
        })
        .collect();
    resources::summarize(nodes, secs)
}
