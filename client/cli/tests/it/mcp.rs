//! `atr mcp` driven by a client this project did not write: the official Python MCP SDK
//! (`client/cli/tests/mcp_client.py`), over stdio and streamable HTTP, with the legacy
//! initialize handshake and with 2026-07-28 discovery. Calls run the real `add` example
//! tool in the sandbox of a node with a Docker Engine.
//!
//! Without the `mcp` Python package the tests print a skip notice, except under `CI=true`,
//! where they fail: CI must install it (`python3 -m pip install mcp==2.3.0`).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::*;

/// Exit code of `mcp_client.py` when the SDK cannot be imported.
const SDK_MISSING: i32 = 77;

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mcp_client.py")
}

/// Fails the calling test unless the Python MCP SDK is importable (the tests that call it are
/// ignored by default and run with `--include-ignored`, as CI does).
pub(crate) fn require_python_sdk() {
    let ok = Command::new("python3")
        .args(["-c", "import mcp, mcp_types"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "this test needs the Python MCP SDK: python3 -m pip install -r client/cli/tests/mcp-requirements.txt"
    );
}

pub(crate) fn client(node: &Node, mode: &str, extra: &[&str]) -> Command {
    let mut cmd = Command::new("python3");
    cmd.arg(script())
        .args(["--mode", mode])
        .args(extra)
        .env("ATR_API", node.api())
        .env("ATR_DATA_DIR", node.dir.path())
        .env_remove("ATR_TOKEN")
        .env("XDG_DATA_HOME", "/nonexistent/atr-test-xdg")
        .env_remove("RUST_LOG");
    cmd
}

#[track_caller]
pub(crate) fn report(out: &Out) -> Value {
    assert_ne!(out.code, SDK_MISSING, "mcp SDK vanished: {out:?}");
    assert_eq!(out.code, 0, "python MCP client failed: {out:#?}");
    let last = out.stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("no report ({e}): {out:#?}"))
}

/// A served tool by name.
fn tool<'a>(r: &'a Value, key: &str, name: &str) -> &'a Value {
    r[key]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no tool {name} in {r:#}"))
}

fn names(r: &Value, key: &str) -> Vec<String> {
    r[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

/// What every session must see, whatever the transport and protocol version.
#[track_caller]
fn check_session(r: &Value, expected_version: &str, ids: &Ids) {
    assert_eq!(r["server_name"], "atr", "{r:#}");
    assert_eq!(r["protocol_version"], expected_version, "{r:#}");
    assert_eq!(r["tools_capability"]["listChanged"], true, "{r:#}");
    // The newest adder keeps the name; the explicitly selected old one gets a suffix.
    assert_eq!(names(r, "tools"), ["add", "adder", "adder_2", "echo"], "{r:#}");
    let adder = tool(r, "tools", "adder");
    assert_eq!(adder["_meta"]["dev.atr/id"], ids.adder2.as_str());
    assert_eq!(
        tool(r, "tools", "adder_2")["_meta"]["dev.atr/id"],
        ids.adder1.as_str()
    );
    assert_eq!(adder["inputSchema"]["required"], json!(["a", "b"]));
    assert_eq!(adder["inputSchema"]["properties"]["a"]["type"], "integer");
    assert_eq!(adder["outputSchema"]["required"], json!(["sum"]));
    assert_eq!(adder["annotations"]["readOnlyHint"], true);
    // `add` returns a bare integer: served wrapped in an object, and said so.
    let add = tool(r, "tools", "add");
    assert_eq!(add["_meta"]["dev.atr/id"], ids.add.as_str());
    assert_eq!(add["_meta"]["dev.atr/wrapped_output"], "result");
    assert_eq!(add["outputSchema"]["type"], "object");
    assert_eq!(add["outputSchema"]["required"], json!(["result"]));
    assert_eq!(add["outputSchema"]["properties"]["result"]["type"], "integer");

    // A real run in the node's sandbox: structured result, text, receipt in `_meta`.
    let call = &r["call"];
    assert_eq!(call["isError"], false, "{r:#}");
    assert_eq!(call["structured"], json!({"result": 5}), "{r:#}");
    assert_eq!(call["text"], json!(["5"]), "{r:#}");
    let meta = &call["meta"];
    assert_eq!(meta["dev.atr/id"], ids.add.as_str(), "{r:#}");
    assert_eq!(meta["dev.atr/status"], "ok");
    assert_eq!(
        meta["dev.atr/provider"],
        ids.node.as_str(),
        "the node ran it itself"
    );
    let receipt = atr_protocol::SignedReceipt::from_bytes(&unhex(meta["dev.atr/receipt"].as_str().unwrap()))
        .expect("the receipt in _meta verifies");
    assert_eq!(receipt.value().tool.to_string(), ids.add);
    assert_eq!(receipt.value().output_hash, atr_protocol::ContentHash::of(b"5"));
    assert_eq!(
        meta["dev.atr/receipt_id"].as_str().unwrap(),
        unhex_inverse(&receipt.hash())
    );

    assert_eq!(r["bad_call"]["isError"], true, "{r:#}");
    let bad = r["bad_call"]["text"][0].as_str().unwrap();
    assert!(bad.starts_with("invalid arguments for `add`"), "{bad}");
    assert!(bad.contains("/a"), "names the offending field: {bad}");
    // The tool ran and failed (an overflow): a tool error, with its receipt.
    let fail = &r["fail_call"];
    assert_eq!(fail["isError"], true, "{r:#}");
    let text = fail["text"][0].as_str().unwrap();
    assert!(text.starts_with("`add` failed (tool_error): "), "{text}");
    assert!(text.contains("overflow"), "the tool's stderr is kept: {text}");
    assert_eq!(fail["meta"]["dev.atr/status"], "tool_error", "{r:#}");
    assert!(fail["meta"]["dev.atr/receipt"].as_str().is_some(), "{r:#}");
    assert_eq!(r["unknown_call"]["code"], -32602, "{r:#}");
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn unhex_inverse(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

struct Ids {
    /// The serving node's peer id (it runs the tools itself).
    node: String,
    add: String,
    adder1: String,
    adder2: String,
}

/// On a sandboxed node: the real `add` example tool (tag `math`), and test tools (pinned to
/// the example image too, never called here).
fn setup(node: &Node, work: &std::path::Path) -> Ids {
    let add = node.publish_example("add");
    let adder1 = node.publish(work, "adder", "1.0.0", &["math"]);
    let adder2 = node.publish(work, "adder", "2.0.0", &["math"]);
    node.publish(work, "echo", "1.0.0", &["text"]);
    node.publish(work, "unselected", "1.0.0", &["other"]);
    Ids {
        node: node.peer_id(),
        add,
        adder1,
        adder2,
    }
}

const CALL: &[&str] = &[
    "--call",
    "add",
    "--args",
    r#"{"a": 2, "b": 3}"#,
    "--bad-args",
    r#"{"a": "x", "b": 3}"#,
    "--fail-args",
    r#"{"a": 9223372036854775807, "b": 1}"#,
];

#[test]
#[ignore = "needs a Docker Engine and the Python MCP SDK"]
fn stdio_with_the_python_sdk() {
    require_python_sdk();
    let node = Node::start_sandboxed();
    let work = tempfile::tempdir().unwrap();
    let ids = setup(&node, work.path());
    for (mode, version) in [("legacy", "2025-11-25"), ("auto", "2026-07-28")] {
        let mut args = CALL.to_vec();
        args.extend([
            "stdio",
            atr_bin(),
            "mcp",
            "--tag",
            "math",
            "--name",
            "echo",
            "--id",
            &ids.adder1,
        ]);
        let out = run(&mut client(&node, mode, &args));
        check_session(&report(&out), version, &ids);
    }
}

#[test]
#[ignore = "needs a Docker Engine and the Python MCP SDK"]
fn streamable_http_with_the_python_sdk() {
    require_python_sdk();
    let node = Node::start_sandboxed();
    let work = tempfile::tempdir().unwrap();
    let ids = setup(&node, work.path());
    let server = LineChild::spawn_stderr_lines(&mut node.atr(&[
        "mcp",
        "--http",
        "127.0.0.1:0",
        "--tag",
        "math",
        "--name",
        "echo",
        "--id",
        &ids.adder1,
    ]));
    let line = server.line_where(Duration::from_secs(30), |l| l.contains("http://"));
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_owned();
    assert!(url.ends_with("/mcp"), "{line}");
    for (mode, version) in [("legacy", "2025-11-25"), ("auto", "2026-07-28")] {
        let mut args = CALL.to_vec();
        args.extend(["http", &url]);
        let out = run(&mut client(&node, mode, &args));
        check_session(&report(&out), version, &ids);
    }
    // Another Host header is refused (DNS rebinding guard).
    let port = url.split(':').nth(2).unwrap().split('/').next().unwrap();
    let status = {
        use std::io::{BufRead, BufReader, Write};
        let mut s = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
        write!(
            s,
            "POST /mcp HTTP/1.1\r\nHost: evil.example\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut head = String::new();
        BufReader::new(s).read_line(&mut head).unwrap();
        head
    };
    assert!(status.contains(" 403 ") || status.contains(" 400 "), "{status}");
}

/// Publishing a tool that matches the selection reaches connected clients as
/// `notifications/tools/list_changed`, then in the next `tools/list`.
#[test]
#[ignore = "needs the Python MCP SDK"]
fn list_changed_reaches_connected_clients() {
    require_python_sdk();
    let node = Node::start();
    let work = tempfile::tempdir().unwrap();
    node.publish(work.path(), "first", "1.0.0", &["live"]);
    let http = LineChild::spawn_stderr_lines(&mut node.atr(&[
        "mcp",
        "--http",
        "127.0.0.1:0",
        "--tag",
        "live",
        "--refresh-ms",
        "200",
    ]));
    let line = http.line_where(Duration::from_secs(30), |l| l.contains("http://"));
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_owned();

    let sessions: [(&str, Vec<&str>); 3] = [
        // initialize handshake over stdio: a session notification
        (
            "legacy",
            vec!["stdio", atr_bin(), "mcp", "--tag", "live", "--refresh-ms", "200"],
        ),
        // 2026-07-28 over stdio and HTTP: subscriptions/listen
        (
            "auto",
            vec!["stdio", atr_bin(), "mcp", "--tag", "live", "--refresh-ms", "200"],
        ),
        ("auto", vec!["http", &url]),
    ];
    for (i, (mode, target)) in sessions.into_iter().enumerate() {
        let mut args = vec!["--wait-change"];
        args.extend(target.iter().copied());
        let session = LineChild::spawn(&mut client(&node, mode, &args));
        session.line_where(Duration::from_secs(60), |l| l == "READY");
        let name = format!("added{i}");
        let id = node.publish(work.path(), &name, "1.0.0", &["live"]);
        let last = session.line_where(Duration::from_secs(60), |l| l.starts_with('{'));
        let r: Value = serde_json::from_str(&last).unwrap();
        let changed = tool(&r, "changed", &name);
        assert_eq!(changed["_meta"]["dev.atr/id"], id.as_str(), "{mode}: {r:#}");
        assert!(names(&r, "changed").contains(&"first".to_owned()));
    }
}

/// A raw `POST /mcp` with the given extra headers; the status line.
fn raw_post(addr: &str, headers: &[(&str, &str)]) -> String {
    use std::io::{BufRead, BufReader, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    write!(
        s,
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\n{extra}Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut head = String::new();
    BufReader::new(s).read_line(&mut head).unwrap();
    head
}

/// Issue 14 item 6 (and the output cap of item 5): `atr mcp --http` with a token.
///
/// The rule is "a token unless the address is loopback". A test cannot count on a
/// non-loopback address it may bind, so it binds `127.0.0.2` (loopback to the kernel, but
/// not the default address) with `--require-token`, which takes the same path as a
/// non-loopback bind (`serve::tests::a_token_is_needed_off_loopback` checks the address rule).
#[test]
#[ignore = "needs a Docker Engine and the Python MCP SDK"]
fn http_requires_a_token_off_loopback_refuses_foreign_origins_and_caps_output() {
    require_python_sdk();
    let node = Node::start_sandboxed();
    let echo = node.publish_example("echo");
    let server = LineChild::spawn_stderr_lines(&mut node.atr(&[
        "mcp",
        "--http",
        "127.0.0.2:0",
        "--require-token",
        "--id",
        &echo,
        "--max-output-bytes",
        "512",
    ]));
    // Created now, so printed once, and stored in the data dir with mode 0600.
    let created = server.line_where(Duration::from_secs(30), |l| l.contains("bearer token"));
    let token = std::fs::read_to_string(node.dir.path().join("mcp.token")).unwrap();
    let token = token.trim();
    assert_eq!(token.len(), 64);
    assert!(created.contains(token), "{created}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(node.dir.path().join("mcp.token"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let line = server.line_where(Duration::from_secs(30), |l| l.contains("http://"));
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_owned();
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches("/mcp")
        .to_owned();

    // The official SDK without the header, then with a wrong token: refused (a 401 whose
    // JSON-RPC error body the SDK reports).
    for extra in [
        vec![],
        vec![
            "--bearer",
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ],
    ] {
        let mut args = extra.clone();
        args.extend(["http", &url]);
        let out = run(&mut client(&node, "legacy", &args));
        assert_eq!(out.code, 3, "the session must not open: {out:#?}");
        let last: Value = serde_json::from_str(out.stdout.lines().last().unwrap()).unwrap();
        assert!(
            last["connect_error"].to_string().contains("Unauthorized"),
            "{extra:?}: {last}"
        );
    }

    // With the token: a small output comes back whole (structured, and as text); one over
    // the cap is a tool error holding the first 512 bytes and a marker.
    let big = "x".repeat(4000);
    let fail_args = json!({ "message": big }).to_string();
    let args = [
        "--bearer",
        token,
        "--call",
        "echo",
        "--args",
        r#"{"message": "hi"}"#,
        "--fail-args",
        &fail_args,
        "http",
        &url,
    ];
    let r = report(&run(&mut client(&node, "legacy", &args)));
    assert_eq!(r["call"]["isError"], false, "{r:#}");
    assert_eq!(r["call"]["structured"], json!({"message": "hi"}), "{r:#}");
    assert_eq!(r["call"]["text"], json!([r#"{"message":"hi"}"#]), "{r:#}");
    let cut = &r["fail_call"];
    assert_eq!(cut["isError"], true, "{r:#}");
    assert_eq!(cut["structured"], Value::Null, "not sent whole anywhere: {r:#}");
    let text = cut["text"][0].as_str().unwrap();
    assert!(text.contains("over this server's cap of 512 bytes"), "{text}");
    assert!(text.ends_with("bytes more)"), "{text}");
    assert!(text.len() < 1024, "{} bytes handed over", text.len());
    assert!(
        cut["meta"]["dev.atr/receipt"].as_str().is_some(),
        "the receipt still comes: {r:#}"
    );

    // Origin validation: a foreign page is refused even with the token; no Origin passes on.
    let auth = format!("Bearer {token}");
    let status = raw_post(
        &addr,
        &[("Authorization", &auth), ("Origin", "https://evil.example")],
    );
    assert!(status.contains(" 403 "), "{status}");
    let status = raw_post(&addr, &[("Origin", "https://evil.example")]);
    assert!(status.contains(" 401 "), "the token is checked first: {status}");
    let status = raw_post(&addr, &[("Authorization", &auth)]);
    assert!(!status.contains(" 401 ") && !status.contains(" 403 "), "{status}");
    let local_origin = format!("http://{addr}");
    let status = raw_post(&addr, &[("Authorization", &auth), ("Origin", &local_origin)]);
    assert!(!status.contains(" 403 "), "{status}");
}
