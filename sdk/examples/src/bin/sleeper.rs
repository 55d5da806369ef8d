//! `sleeper` (HOSTILE, for sandbox tests): sleeps `seconds` (default 3600, at
//! most [`MAX_SECONDS`]) and then answers, so a sandbox's wall-clock deadline
//! must kill it. It uses no CPU while it waits.
//!
//! Input `{"seconds"?: int}`, output `{"slept_seconds": n}`.

use std::process::ExitCode;
use std::time::Duration;

use atr_example_tools::{ToolError, parse, run};
use serde::Deserialize;
use serde_json::{Value, json};

/// Default sleep, in seconds (one hour).
const DEFAULT_SECONDS: u64 = 3600;
/// Longest sleep, in seconds (one day).
const MAX_SECONDS: u64 = 86_400;

fn main() -> ExitCode {
    run(sleeper)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    #[serde(default)]
    seconds: Option<u64>,
}

fn sleeper(input: Value) -> Result<Value, ToolError> {
    let input: Input = parse(input)?;
    let seconds = input.seconds.unwrap_or(DEFAULT_SECONDS).min(MAX_SECONDS);
    std::thread::sleep(Duration::from_secs(seconds));
    Ok(json!({ "slept_seconds": seconds }))
}
