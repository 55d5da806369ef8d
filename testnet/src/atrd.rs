//! Finding the `atrd` binary the testnet runs.
//!
//! In order: the path given (`--atrd`), `$ATR_TESTNET_ATRD`, an `atrd` next to
//! the running executable or one directory up (`target/<profile>/atrd` seen
//! from `target/<profile>/deps/<test>`), and last `cargo build -p atrd` in the
//! workspace this crate was built from (same profile as this binary).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// Environment variable naming the `atrd` binary.
pub const ENV_ATRD: &str = "ATR_TESTNET_ATRD";

/// The `atrd` to run.
pub fn locate(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        if p.is_file() {
            return Ok(p.to_owned());
        }
        bail!("--atrd {}: no such file", p.display());
    }
    if let Some(p) = std::env::var_os(ENV_ATRD).filter(|v| !v.is_empty()) {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        bail!("${ENV_ATRD} = {}: no such file", p.display());
    }
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1).take(2) {
            let p = dir.join("atrd");
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    build()
}

/// Runs `cargo build -p atrd` (release if this binary is a release build)
/// in this crate's workspace and returns the binary's path.
pub fn build() -> anyhow::Result<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("the testnet crate has no parent directory")?;
    // Without the inherited CARGO_* variables: they would make this build and the outer one
    // rebuild `ring` and everything above it, each undoing the other.
    let mut cmd = atr_sandbox::cargo::command();
    cmd.current_dir(root).args([
        "build",
        "-p",
        "atrd",
        "--bin",
        "atrd",
        "--bin",
        "atr-attacker",
        "--message-format=json",
    ]);
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    }
    eprintln!(
        "atr-testnet: no atrd found next to this binary; building it (cargo build -p atrd{}; \
         a first build takes 5-10 min on 2 cores)",
        if cfg!(debug_assertions) { "" } else { " --release" }
    );
    let out = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("cannot run cargo to build atrd; pass --atrd PATH")?;
    if !out.status.success() {
        bail!("cargo build -p atrd failed; pass --atrd PATH");
    }
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(line)
            && v["reason"] == "compiler-artifact"
            && v["target"]["name"] == "atrd"
            && let Some(exe) = v["executable"].as_str()
        {
            return Ok(PathBuf::from(exe));
        }
    }
    bail!("cargo built atrd but did not say where; pass --atrd PATH")
}
