//! `atr-testnet up` / `down` as separate processes, and `down` after the
//! harness of a `run` was killed.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use atr_testnet::state::{STATE_FILE, TestnetState};

use crate::{SERIAL, TestResult, atrd_running_under};

const BIN: &str = env!("CARGO_BIN_EXE_atr-testnet");

fn down(dir: &Path) -> TestResult {
    let out = Command::new(BIN).arg("down").arg("--dir").arg(dir).output()?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_then_down_leaves_nothing_behind() -> TestResult {
    let _serial = SERIAL.lock().await;
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("net");
    let out = Command::new(BIN)
        .args(["up", "--nodes", "4", "--measure", "1s", "--dir"])
        .arg(&dir)
        .output()?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("idle over"), "{stdout}");
    // The `up` process has exited; the nodes run on, recorded in the state file.
    let state = TestnetState::load(&dir)?.ok_or("no state file")?;
    assert_eq!(state.nodes.len(), 4);
    assert_eq!(atrd_running_under(&dir).len(), 4);
    // Every node bootstraps from earlier ones only.
    for n in &state.nodes {
        assert!(n.bootstrap.iter().all(|b| *b < n.index));
        assert_eq!(n.bootstrap.is_empty(), n.index == 0);
        let cfg = std::fs::read_to_string(n.dir.join("atrd.toml"))?;
        assert!(cfg.contains("ip_colocation_penalty = false") && cfg.contains("enabled = false"));
    }
    // A second `up` on the same directory is refused.
    let again = Command::new(BIN)
        .args(["up", "--nodes", "1", "--measure", "0s", "--dir"])
        .arg(&dir)
        .output()?;
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a testnet"));
    down(&dir)?;
    assert!(!dir.exists(), "the testnet directory is gone");
    assert_eq!(atrd_running_under(tmp.path()), Vec::<u32>::new());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_cleans_up_after_a_killed_harness() -> TestResult {
    let _serial = SERIAL.lock().await;
    let tmp = tempfile::tempdir()?;
    let out_dir = tmp.path().join("out");
    let mut harness = Command::new(BIN)
        .args(["run", "churn", "--nodes", "5", "--out"])
        .arg(&out_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let net = out_dir.join("net");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let up = TestnetState::load(&net)
            .ok()
            .flatten()
            .is_some_and(|s| s.nodes.len() == 5 && s.nodes.iter().all(|n| n.pid.is_some()));
        if up {
            break;
        }
        assert!(Instant::now() < deadline, "the run did not start its nodes");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    harness.kill()?; // SIGKILL: the harness cleans up nothing.
    harness.wait()?;
    assert!(net.join(STATE_FILE).exists());
    assert_eq!(
        atrd_running_under(&net).len(),
        5,
        "the nodes outlive their harness"
    );
    down(&net)?;
    assert!(!net.exists());
    assert_eq!(atrd_running_under(tmp.path()), Vec::<u32>::new());
    // Taking down what is already down is fine.
    down(&net)?;
    Ok(())
}

/// Issue 19: `demo --once` says what it did and that it stopped (not that the network is
/// running), explains why fewer tools are published than built, and its logs and progress on a
/// pipe carry no colour codes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Docker Engine"]
async fn issue_19_demo_once_ends_honestly_in_plain_text() -> TestResult {
    let _serial = SERIAL.lock().await;
    let out = Command::new(BIN)
        .args(["demo", "--once"])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("Done (--once): the 3 nodes are stopped and their data removed"),
        "{stdout}"
    );
    assert!(!stdout.contains("is running"), "{stdout}");
    assert!(
        stderr.contains("hostile on purpose (for the sandbox tests) and are not published"),
        "the tool count is explained: {stderr}"
    );
    assert!(stdout.contains("output   "), "the invocation's output: {stdout}");
    assert!(!stderr.contains('\x1b') && !stdout.contains('\x1b'), "{stderr}");
    Ok(())
}
