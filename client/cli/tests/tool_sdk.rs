//! The tool author's path, end to end with the real binaries: `atr tool new` → the new crate's
//! own `cargo test` → `atr tool build` (static binary, `FROM scratch` image, pinned manifest) →
//! `atr tool test` (its examples in the sandbox) → `atr publish` on one node → `atr invoke` from
//! a second node, which the first runs in its sandbox.
//!
//! Needs a Docker Engine (skipped with a notice without one, failed under `CI=true`) and
//! compiles the new crate twice (debug for its test, static release for the image): minutes on
//! a small machine. The builds share `<target>/tool-sdk-e2e`, so reruns are faster.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "it/harness.rs"]
#[allow(dead_code, unreachable_pub)]
mod harness;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use harness::{Node, Out, atr_cmd, run, wait_for};

/// The tool crate's name; its image is `sdk-e2e:0.1.0`, its tool `sdk_e2e`.
const NAME: &str = "sdk-e2e";
const TOOL: &str = "sdk_e2e";

/// Runs `cmd` to completion with no deadline (the static release build takes minutes).
fn run_long(cmd: &mut Command) -> Out {
    let out = cmd.stdin(std::process::Stdio::null()).output().unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
#[ignore = "needs a Docker Engine"]
fn new_build_test_publish_and_invoke_from_another_node() {
    harness::require_docker();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join(NAME);
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/tool-sdk-e2e");
    let with_target = |mut c: Command| {
        c.env("CARGO_TARGET_DIR", &target).current_dir(&dir);
        c
    };

    // 1. Scaffold.
    let out = run(&mut atr_cmd(&[
        "tool",
        "new",
        NAME,
        "--path",
        dir.to_str().unwrap(),
    ]))
    .success();
    assert!(out.stdout.contains(&format!("the tool `{TOOL}`")), "{out:?}");
    assert!(dir.join("src/main.rs").is_file() && dir.join("Cargo.lock").is_file());
    let again = run(&mut atr_cmd(&[
        "tool",
        "new",
        NAME,
        "--path",
        dir.to_str().unwrap(),
    ]))
    .failure(2);
    assert!(again.error_line().contains("not empty"), "{again:?}");

    // 2. The new crate passes its own tests.
    let mut test = with_target(atr_sandbox::cargo::command());
    test.args(["test", "--quiet"]);
    let status = test.status().unwrap();
    assert!(status.success(), "the scaffolded crate's `cargo test` failed");

    // 3. Build: one tool, its manifest pinned to the image id.
    let mut build = with_target(atr_cmd(&["--json", "tool", "build"]));
    let built = run_long(&mut build).success().json();
    assert_eq!(built["image"], format!("{NAME}:0.1.0"));
    let id = built["id"].as_str().unwrap().to_owned();
    let manifest = built["manifests"][0]["manifest"].as_str().unwrap().to_owned();
    let text = std::fs::read_to_string(&manifest).unwrap();
    assert!(text.contains(&format!("digest = \"{id}\"")), "{text}");
    assert!(text.contains(&format!("command = [\"/bin/{NAME}\"]")), "{text}");
    let inspect = Command::new("docker")
        .args([
            "image",
            "inspect",
            &id,
            "--format",
            "{{.Config.User}}|{{len .RootFS.Layers}}",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&inspect.stdout).trim(),
        "65534:65534|1",
        "non-root, one layer: FROM scratch"
    );

    // 4. Its examples pass in the sandbox; another crate's manifest in the same directory
    // (here: a stale copy claiming another package) is not tested.
    let stale = std::path::Path::new(&manifest).with_file_name("other.toml");
    std::fs::write(
        &stale,
        text.replace(&format!("from {NAME} 0.1.0"), "from other 0.1.0"),
    )
    .unwrap();
    let mut tested = with_target(atr_cmd(&["--json", "tool", "test"]));
    let tested = run(&mut tested).success().json();
    assert_eq!(
        (tested["passed"].as_u64(), tested["failed"].as_u64()),
        (Some(2), Some(0)),
        "{tested}"
    );

    // 5. Publish on a node that runs tools; invoke from another one.
    let a = Node::start_sandboxed();
    let b = Node::start_with(&["--bootstrap", &a.bootstrap_addr()]);
    let published = run(&mut a.atr(&["--json", "publish", &manifest]))
        .success()
        .json();
    let tool_id = published["id"].as_str().unwrap().to_owned();
    wait_for(
        Duration::from_secs(60),
        "the second node to find the tool",
        || {
            let out = run(&mut b.atr(&["--json", "find", "--name", TOOL, "--network"])).success();
            out.json()["results"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["id"] == tool_id.as_str())
        },
    );
    let input = r#"{"name": "Bob", "style": "excited"}"#;
    let invoked = run(&mut b.atr(&["--json", "invoke", &tool_id, "--input", input]))
        .success()
        .json();
    let shown = invoked.to_string();
    assert!(shown.contains("Hello, Bob!"), "{shown}");
    assert!(shown.contains(&a.peer_id()), "run by the first node: {shown}");
    // A refused input is the tool's exit code 2, reported through the network.
    let refused = run(&mut b.atr(&["invoke", &tool_id, "--input", r#"{"name": " "}"#])).failure(1);
    assert!(refused.stderr.contains("empty_name"), "{refused:?}");

    let _ = Command::new("docker")
        .args(["image", "rm", "-f", &format!("{NAME}:0.1.0")])
        .output();
}
