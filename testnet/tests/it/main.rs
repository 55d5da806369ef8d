//! Integration tests of atr-testnet: real `atrd` processes on 127.0.0.1.
//!
//! They need the `atrd` binary next to the test binary's directory
//! (`target/<profile>/atrd`, built by `cargo test --workspace`; otherwise it
//! is built on first use). Testnets run one at a time ([`SERIAL`]) so that
//! two networks do not compete for the two cores and skew each other.

mod cli;
mod docker;
mod linkem;
mod readme;
mod scenarios;

/// Held by every test that starts a testnet.
pub(crate) static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub(crate) type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Whether a live (not zombie) `atrd` runs on any data dir under `dir`.
pub(crate) fn atrd_running_under(dir: &std::path::Path) -> Vec<u32> {
    let mut found = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return found;
    };
    let want = dir.as_os_str().as_encoded_bytes();
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let zombie = stat
            .rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().next())
            .is_some_and(|s| s == "Z" || s == "X");
        if !zombie && cmd.windows(want.len()).any(|w| w == want) && cmd.starts_with(b"/") {
            let exe = cmd.split(|b| *b == 0).next().unwrap_or_default();
            if exe.ends_with(b"atrd") {
                found.push(pid);
            }
        }
    }
    found
}
