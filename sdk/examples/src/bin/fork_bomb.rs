//! `fork_bomb` (HOSTILE, for sandbox tests): keeps spawning copies of itself
//! (`/proc/self/exe`) until a spawn fails, as a fork bomb would, and reports
//! how many it got. A sandbox's process limit should stop it after a handful.
//!
//! Bounded so it stops by itself: at most `max_spawns` (default and maximum
//! [`MAX_SPAWNS`]) copies within `seconds` (default and maximum
//! [`MAX_SECONDS`]); each copy only sleeps and exits after [`CHILD_LIFETIME`],
//! and the parent kills and reaps every copy before it reports. Outside a
//! sandbox it is harmless only in that sense: it can still create
//! [`MAX_SPAWNS`] processes.
//!
//! Input `{"max_spawns"?: int, "seconds"?: int}`, output
//! `{"spawned": n, "stopped_by": "spawn_error" | "max_spawns" | "deadline", "error"?: "..."}`.

use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use atr_example_tools::{ToolError, parse, run};
use serde::Deserialize;
use serde_json::{Value, json};

/// Most copies spawned.
const MAX_SPAWNS: u32 = 10_000;
/// Longest spawning phase, in seconds.
const MAX_SECONDS: u64 = 10;
/// How long a copy lives unless killed first: longer than the spawning phase,
/// so the process count keeps growing while the parent spawns.
const CHILD_LIFETIME: Duration = Duration::from_secs(MAX_SECONDS + 5);
/// The argument that makes a copy sleep instead of spawning.
const CHILD_ARG: &str = "--atr-fork-bomb-child";

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some(CHILD_ARG) {
        std::thread::sleep(CHILD_LIFETIME);
        return ExitCode::SUCCESS;
    }
    run(fork_bomb)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    #[serde(default)]
    max_spawns: Option<u32>,
    #[serde(default)]
    seconds: Option<u64>,
}

fn fork_bomb(input: Value) -> Result<Value, ToolError> {
    let input: Input = parse(input)?;
    let max = input.max_spawns.unwrap_or(MAX_SPAWNS).min(MAX_SPAWNS) as usize;
    let seconds = input.seconds.unwrap_or(MAX_SECONDS).min(MAX_SECONDS);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut children: Vec<Child> = Vec::new();
    let (stopped_by, error) = loop {
        if children.len() >= max {
            break ("max_spawns", None);
        }
        if Instant::now() >= deadline {
            break ("deadline", None);
        }
        let spawned = Command::new("/proc/self/exe")
            .arg(CHILD_ARG)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match spawned {
            Ok(child) => children.push(child),
            Err(e) => break ("spawn_error", Some(e.to_string())),
        }
    };
    let spawned = children.len();
    for child in &mut children {
        // Best effort: a copy that already exited cannot be killed, only reaped.
        let _ = child.kill();
        let _ = child.wait();
    }
    let mut out = json!({ "spawned": spawned, "stopped_by": stopped_by });
    if let Some(e) = error {
        out["error"] = json!(e);
    }
    Ok(out)
}
