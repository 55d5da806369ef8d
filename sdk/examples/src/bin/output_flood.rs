//! `output_flood` (HOSTILE, for sandbox tests): writes one JSON string of
//! `bytes` characters (default 64 MiB, at most [`MAX_BYTES`]) to stdout, so a
//! reader that does not cap output runs out of memory or disk. A sandbox
//! should cut it at its output cap. It stops at `bytes`, or when stdout
//! closes.
//!
//! Input `{"bytes"?: int}`, output `"aaaa…"` (a string of `bytes` `a`s).

use std::io::{BufWriter, Write};
use std::process::ExitCode;

use atr_example_tools::{ToolError, parse, read_input, report};
use serde::Deserialize;

/// Default size, in characters (64 MiB).
const DEFAULT_BYTES: u64 = 64 * 1024 * 1024;
/// Largest size (1 GiB): the bound that stops it without a sandbox.
const MAX_BYTES: u64 = 1024 * 1024 * 1024;
/// Size of one write.
const BLOCK: usize = 64 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    #[serde(default)]
    bytes: Option<u64>,
}

fn main() -> ExitCode {
    let input = read_input(&mut std::io::stdin().lock()).and_then(parse::<Input>);
    match input.and_then(flood) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(&e),
    }
}

fn flood(input: Input) -> Result<(), ToolError> {
    let mut left = input.bytes.unwrap_or(DEFAULT_BYTES).min(MAX_BYTES);
    let block = [b'a'; BLOCK];
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut write = || -> std::io::Result<()> {
        out.write_all(b"\"")?;
        while left > 0 {
            let n = left.min(BLOCK as u64) as usize;
            out.write_all(&block[..n])?;
            left -= n as u64;
        }
        out.write_all(b"\"\n")?;
        out.flush()
    };
    write().map_err(|e| ToolError::failed("stdout_failed", format!("stdout closed: {e}")))
}
