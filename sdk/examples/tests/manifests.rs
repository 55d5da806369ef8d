//! Every manifest in `manifests/` becomes a valid signed-spec body, and every
//! example in it is what the tool binary really prints (run directly, not in
//! Docker: the Docker path is tested by the daemon's sandbox tests).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use atr_protocol::{Manifest, SecretKey};
use serde_json::{Value, json};

/// How each tool's examples are checked.
#[derive(Clone, Copy, PartialEq)]
enum Examples {
    /// Run every example through the binary.
    Run,
    /// Parsed and schema-checked only, with the reason they are not run here.
    Skip(&'static str),
}

/// Every tool: name, binary, whether it is hostile, and whether its examples
/// run on the host.
const TOOLS: &[(&str, &str, bool, Examples)] = &[
    ("add", env!("CARGO_BIN_EXE_add"), false, Examples::Run),
    (
        "calculator",
        env!("CARGO_BIN_EXE_calculator"),
        false,
        Examples::Run,
    ),
    ("datetime", env!("CARGO_BIN_EXE_datetime"), false, Examples::Run),
    ("echo", env!("CARGO_BIN_EXE_echo"), false, Examples::Run),
    ("hash", env!("CARGO_BIN_EXE_hash"), false, Examples::Run),
    (
        "json_query",
        env!("CARGO_BIN_EXE_json_query"),
        false,
        Examples::Run,
    ),
    (
        "text_stats",
        env!("CARGO_BIN_EXE_text_stats"),
        false,
        Examples::Run,
    ),
    // Hostile tools whose examples are cheap and stay on this machine.
    ("fork_bomb", env!("CARGO_BIN_EXE_fork_bomb"), true, Examples::Run),
    (
        "memory_hog",
        env!("CARGO_BIN_EXE_memory_hog"),
        true,
        Examples::Run,
    ),
    (
        "network_probe",
        env!("CARGO_BIN_EXE_network_probe"),
        true,
        Examples::Run,
    ),
    (
        "output_flood",
        env!("CARGO_BIN_EXE_output_flood"),
        true,
        Examples::Run,
    ),
    ("sleeper", env!("CARGO_BIN_EXE_sleeper"), true, Examples::Run),
    // Tools with declared egress: their calls need a node's egress proxy (daemon tests).
    (
        "http_fetch",
        env!("CARGO_BIN_EXE_http_fetch"),
        false,
        Examples::Skip("it needs the node's egress proxy"),
    ),
    (
        "authed_fetch",
        env!("CARGO_BIN_EXE_authed_fetch"),
        false,
        Examples::Skip("it needs the node's egress proxy and a secret"),
    ),
    (
        "disk_filler",
        env!("CARGO_BIN_EXE_disk_filler"),
        true,
        Examples::Skip("it writes the host's /tmp/fill outside a sandbox"),
    ),
];

const IMAGE: &str = "atr-example-tools:latest";

fn manifests_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/manifests"))
}

fn load(name: &str) -> Manifest {
    let file = format!("{name}.toml");
    let text = std::fs::read_to_string(manifests_dir().join(&file)).unwrap();
    Manifest::from_toml(&text, &file).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `bin` with `input` on stdin.
fn run_tool(bin: &str, input: &[u8]) -> Output {
    let mut child = Command::new(bin)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn every_tool_has_one_manifest() {
    let files: BTreeSet<String> = std::fs::read_dir(manifests_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let expected: BTreeSet<String> = TOOLS.iter().map(|(n, ..)| format!("{n}.toml")).collect();
    assert_eq!(files, expected);
}

#[test]
fn manifests_become_valid_specs() {
    let publisher = SecretKey::from_seed(&[7; 32]).public();
    let digest = format!("sha256:{}", "ab".repeat(32));
    for (name, _, hostile, _) in TOOLS {
        let m = load(name);
        let spec = m
            .to_spec(
                &format!("{name}.toml"),
                publisher,
                1_700_000_000_000,
                Some(&digest),
            )
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(spec.name, *name);
        assert_eq!(spec.runtime.image, IMAGE, "{name}");
        assert_eq!(spec.runtime.command, [format!("/bin/{name}")], "{name}");
        assert!(!spec.examples.is_empty(), "{name} has no example");
        let tagged = spec.tags.iter().any(|t| t == "hostile");
        assert_eq!(tagged, *hostile, "{name}: the `hostile` tag");
    }
}

#[test]
fn examples_match_the_binaries() {
    for (name, bin, _, mode) in TOOLS {
        if let Examples::Skip(why) = mode {
            eprintln!("{name}: examples not run ({why})");
            continue;
        }
        for (i, ex) in load(name).examples.iter().enumerate() {
            let out = run_tool(bin, &serde_json::to_vec(&ex.input).unwrap());
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success(),
                "{name} example {i}: {:?}: {stderr}",
                out.status
            );
            let got: Value = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|e| panic!("{name} example {i}: stdout is not one JSON value: {e}"));
            assert_eq!(got, ex.output, "{name} example {i}");
        }
    }
}

#[test]
fn errors_follow_the_contract() {
    let bin = |n: &str| TOOLS.iter().find(|t| t.0 == n).unwrap().1;
    let cases: &[(&str, &[u8], u8, &str)] = &[
        ("add", b"{\"a\": 1}", 2, "invalid_input"),
        ("add", b"{\"a\": 9223372036854775807, \"b\": 1}", 2, "overflow"),
        ("add", b"not json", 2, "invalid_json"),
        ("add", b"", 2, "invalid_json"),
        ("calculator", b"{\"expression\": \"9**9**8\"}", 2, "overflow"),
        ("calculator", b"{\"expression\": \"1/0\"}", 2, "division_by_zero"),
        ("json_query", b"{\"document\": 1}", 2, "invalid_input"),
    ];
    for (tool, input, code, error) in cases {
        let out = run_tool(bin(tool), input);
        assert_eq!(out.status.code(), Some(i32::from(*code)), "{tool}");
        assert!(out.stdout.is_empty(), "{tool}: stdout must be empty on error");
        let err: Value = serde_json::from_slice(&out.stderr).unwrap();
        assert_eq!(err["error"]["code"], json!(error), "{tool}: {err}");
        assert!(err["error"]["message"].is_string());
    }
    // Input over the cap is refused before parsing.
    let big = vec![b' '; atr_example_tools::MAX_INPUT_BYTES + 1];
    let out = run_tool(bin("echo"), &big);
    assert_eq!(out.status.code(), Some(2));
    let err: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["error"]["code"], "input_too_large");
}

#[test]
fn input_cap_matches_the_protocol() {
    assert_eq!(
        atr_example_tools::MAX_INPUT_BYTES,
        atr_protocol::limits::MAX_INPUT_BYTES
    );
}
