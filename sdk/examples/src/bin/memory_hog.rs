//! `memory_hog` (HOSTILE, for sandbox tests): allocates `mb` MiB (default
//! 4096, at most [`MAX_MB`]) in 16 MiB chunks and writes every byte, so the
//! memory is really used, not just reserved. A sandbox's memory limit should
//! kill it (exit 137, OOM); outside one it stops at `mb` and frees it all.
//!
//! Input `{"mb"?: int}`, output `{"allocated_mb": n}` (`mb` rounded up to a
//! whole chunk) or, when an allocation is refused, `{"allocated_mb": n, "error": "..."}`.

use std::process::ExitCode;

use atr_example_tools::{ToolError, parse, run};
use serde::Deserialize;
use serde_json::{Value, json};

/// Size of one allocation, in MiB.
const CHUNK_MB: u64 = 16;
/// Default target, in MiB (4 GiB).
const DEFAULT_MB: u64 = 4096;
/// Largest target, in MiB (64 GiB): the bound that stops it without a sandbox.
const MAX_MB: u64 = 64 * 1024;

fn main() -> ExitCode {
    run(memory_hog)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    #[serde(default)]
    mb: Option<u64>,
}

fn memory_hog(input: Value) -> Result<Value, ToolError> {
    let input: Input = parse(input)?;
    let mb = input.mb.unwrap_or(DEFAULT_MB).min(MAX_MB);
    let chunk = (CHUNK_MB * 1024 * 1024) as usize;
    let mut held: Vec<Vec<u8>> = Vec::new();
    let mut allocated = 0;
    while allocated < mb {
        let mut v: Vec<u8> = Vec::new();
        if let Err(e) = v.try_reserve_exact(chunk) {
            return Ok(json!({ "allocated_mb": allocated, "error": e.to_string() }));
        }
        // A non-zero fill writes every page, so the kernel must back it.
        v.resize(chunk, 0xA5);
        // Keeps the optimizer from eliding memory that is never read.
        held.push(std::hint::black_box(v));
        allocated += CHUNK_MB;
    }
    std::hint::black_box(&held);
    Ok(json!({ "allocated_mb": allocated }))
}
