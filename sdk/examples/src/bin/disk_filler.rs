//! `disk_filler` (HOSTILE, for sandbox tests): writes 1 MiB blocks to
//! `/tmp/fill` until a write fails or `max_mb` (default 1024, at most
//! [`MAX_MB`]) is reached, then deletes the file and reports. A sandbox's
//! tmpfs size or file-size limit should stop it (a file-size limit kills it
//! with SIGXFSZ, exit 153, before it can report).
//!
//! Input `{"max_mb"?: int}`, output
//! `{"bytes_written": n, "stopped_by": "error" | "max_mb", "error"?: "..."}`.

use std::fs::File;
use std::io::Write;
use std::process::ExitCode;

use atr_example_tools::{ToolError, parse, run};
use serde::Deserialize;
use serde_json::{Value, json};

/// The file it fills: `/tmp` is the one writable place in a sandbox.
const PATH: &str = "/tmp/fill";
/// Size of one write.
const BLOCK: usize = 1024 * 1024;
/// Default bound, in MiB.
const DEFAULT_MAX_MB: u64 = 1024;
/// Largest bound, in MiB (16 GiB).
const MAX_MB: u64 = 16 * 1024;

fn main() -> ExitCode {
    run(disk_filler)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    #[serde(default)]
    max_mb: Option<u64>,
}

fn disk_filler(input: Value) -> Result<Value, ToolError> {
    let input: Input = parse(input)?;
    let max_bytes = input.max_mb.unwrap_or(DEFAULT_MAX_MB).min(MAX_MB) * BLOCK as u64;
    let block = vec![0xA5u8; BLOCK];
    let mut written: u64 = 0;
    let result = File::create(PATH).and_then(|mut f| {
        while written < max_bytes {
            let n = f.write(&block)?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            written += n as u64;
        }
        f.sync_all()
    });
    // Best effort: leave nothing behind (there may be nothing to remove).
    let _ = std::fs::remove_file(PATH);
    Ok(match result {
        Ok(()) => json!({ "bytes_written": written, "stopped_by": "max_mb" }),
        Err(e) => json!({ "bytes_written": written, "stopped_by": "error", "error": e.to_string() }),
    })
}
