//! Issue 19, "the first ten minutes": each papercut a new user hit, as the user hit it.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::*;

/// `atr show … | head -1`: the reader leaves early; `atr` exits 0 without a word.
#[test]
fn issue_19_broken_pipe_exits_0_quietly() {
    let node = Node::start();
    let work = tempfile::tempdir().unwrap();
    node.publish(work.path(), "adder", "1.0.0", &["math"]);
    for args in [
        &["show", "adder"][..],
        &["find", "--tag", "math"],
        &["--json", "status"],
    ] {
        let mut child = node
            .atr(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader is gone before `atr` writes a byte.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: quiet, no panic: {stderr}");
    }
}

/// `atr show NAME`, "did you mean", and an ambiguous name listing its candidates.
#[test]
fn issue_19_show_by_name_did_you_mean_and_ambiguous_names() {
    let node = Node::start();
    let work = tempfile::tempdir().unwrap();
    let id = node.publish(work.path(), "adder", "1.0.0", &["math"]);
    node.publish(work.path(), "echo", "0.1.0", &["text"]);

    let shown = run(&mut node.atr(&["show", "adder"])).success();
    assert!(shown.stdout.starts_with("adder@1.0.0"), "{shown:?}");
    assert!(shown.stdout.contains(&id), "{shown:?}");
    let json = run(&mut node.atr(&["--json", "show", "adder"])).success().json();
    assert_eq!(json["id"], id.as_str());

    let typo = run(&mut node.atr(&["show", "addr"])).failure(1);
    assert!(typo.error_line().contains("did you mean `adder`?"), "{typo:?}");
    let far = run(&mut node.atr(&["show", "zzzzzzzz"])).failure(1);
    assert!(
        far.error_line().contains("no active tool named `zzzzzzzz`"),
        "{far:?}"
    );

    let id2 = node.publish(work.path(), "adder", "2.0.0", &["math"]);
    let many = run(&mut node.atr(&["show", "adder"])).failure(2);
    let lines: Vec<&str> = many.stderr.lines().collect();
    assert!(
        lines[0].starts_with("error: 2 active tools are named `adder`"),
        "{many:?}"
    );
    assert!(
        many.stderr.contains(&id) && many.stderr.contains(&id2),
        "{many:?}"
    );
    assert!(
        many.stderr.contains("adder@2.0.0") && many.stderr.contains("give the id"),
        "{many:?}"
    );
    // Picking one by its id works.
    run(&mut node.atr(&["show", &id2])).success();
}

/// `atr status` prints an address another node bootstraps from as is; `atr peers` shows
/// the connected peers' addresses.
#[test]
fn issue_19_status_bootstrap_address_and_peer_addresses() {
    let a = Node::start();
    let status = run(&mut a.atr(&["status"])).success();
    let line = status
        .stdout
        .lines()
        .find(|l| l.starts_with("bootstrap"))
        .unwrap_or_else(|| panic!("no bootstrap line: {status:?}"));
    let addr = line.split_whitespace().nth(1).unwrap().to_owned();
    assert!(
        addr.starts_with("/ip4/127.0.0.1/tcp/") && addr.ends_with(&format!("/p2p/{}", a.peer_id())),
        "{addr}"
    );
    let b = Node::start_with(&["--bootstrap", &addr]);
    wait_for(Duration::from_secs(30), "B to connect to A", || {
        let peers = run(&mut b.atr(&["--json", "peers"])).success().json();
        !peers["peers"].as_array().unwrap().is_empty()
    });
    let peers = run(&mut b.atr(&["--json", "peers"])).success().json();
    let p = &peers["peers"][0];
    assert_eq!(p["peer_id"], a.peer_id().as_str());
    let addrs = p["addrs"].as_array().unwrap();
    assert!(
        addrs
            .iter()
            .any(|x| x.as_str().unwrap().starts_with("/ip4/127.0.0.1/tcp/")),
        "the connection's address: {peers}"
    );
    let table = run(&mut b.atr(&["peers"])).success();
    assert!(table.stdout.contains("/ip4/127.0.0.1/tcp/"), "{table:?}");
}

/// `--json` where it means nothing is refused with why, not silently ignored.
#[test]
fn issue_19_json_is_refused_where_it_means_nothing() {
    for (args, what) in [
        (&["--json", "export", "--format", "openai"][..], "atr export"),
        (&["--json", "mcp", "--tag", "math"], "atr mcp"),
        (&["--json", "tool", "new", "x"], "atr tool new"),
        (&["--json", "completions", "bash"], "atr completions"),
    ] {
        let out = run(&mut atr_cmd(args)).failure(2);
        assert!(
            out.error_line()
                .contains(&format!("--json means nothing for `{what}`")),
            "{out:?}"
        );
    }
}

/// `atr mcp` fails at start, with the fix, when calls could not work.
#[test]
fn issue_19_mcp_checks_the_node_and_the_token_at_start() {
    let down = run(&mut atr_cmd(&[
        "--api",
        "http://127.0.0.1:9",
        "mcp",
        "--tag",
        "math",
    ]))
    .failure(1);
    assert!(down.error_line().contains("cannot reach atrd"), "{down:?}");

    let node = Node::start();
    // No token anywhere: the environment of an MCP client config without `env`.
    let mut no_token = atr_cmd(&["mcp", "--tag", "math"]);
    no_token.env("ATR_API", node.api());
    let out = run(&mut no_token).failure(2);
    let line = out.error_line();
    assert!(
        line.contains("no API token") && line.contains("\"env\""),
        "{out:?}"
    );

    let mut wrong = node.atr(&["mcp", "--tag", "math"]);
    wrong.env("ATR_TOKEN", "not-the-token");
    let out = run(&mut wrong).failure(2);
    assert!(out.error_line().contains("refuses the API token"), "{out:?}");
}

/// `atr mcp --tag` and `atr export --tag` select the same specs.
#[test]
fn issue_19_mcp_and_export_select_the_same_specs() {
    let node = Node::start();
    let work = tempfile::tempdir().unwrap();
    node.publish(work.path(), "adder", "1.0.0", &["math"]);
    let newest = node.publish(work.path(), "adder", "1.1.0", &["math"]);
    let exported = run(&mut node.atr(&["export", "--format", "mcp", "--tag", "math"]))
        .success()
        .json();
    let ids: Vec<&str> = exported
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["_meta"]["dev.atr/id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [newest.as_str()]);
    // What the MCP server serves for the same flag: its tools/list over HTTP.
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let _server = LineChild::spawn_stderr_lines(&mut node.atr(&["mcp", "--tag", "math", "--http", &addr]));
    wait_for(Duration::from_secs(30), "the MCP server", || {
        http_status(port, "/mcp").is_some()
    });
    let listed = mcp_tools_list(port);
    let served: Vec<&str> = listed["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("{listed}"))
        .iter()
        .map(|t| t["_meta"]["dev.atr/id"].as_str().unwrap())
        .collect();
    assert_eq!(served, ids, "{listed}");
}

/// `tools/list` over streamable HTTP with curl: initialize, then list in the same session.
fn mcp_tools_list(port: u16) -> serde_json::Value {
    let url = format!("http://127.0.0.1:{port}/mcp");
    let post = |body: &str, session: Option<&str>| {
        let mut c = Command::new("curl");
        c.args(["-s", "-D", "-", "-X", "POST", &url])
            .args(["-H", "content-type: application/json"])
            .args(["-H", "accept: application/json, text/event-stream"])
            .args(["-d", body]);
        if let Some(s) = session {
            c.args(["-H", &format!("mcp-session-id: {s}")]);
        }
        String::from_utf8_lossy(&c.output().unwrap().stdout).into_owned()
    };
    let init = post(
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#,
        None,
    );
    let session = init
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("mcp-session-id:")
                .then(|| l.split_once(':').unwrap().1.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no session: {init}"));
    post(
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        Some(&session),
    );
    let listed = post(
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}"#,
        Some(&session),
    );
    let data = listed
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim)
        .find(|d| d.contains("\"id\":2"))
        .unwrap_or_else(|| panic!("no tools/list answer: {listed}"));
    serde_json::from_str(data).unwrap()
}

/// `atrd` start-up errors: one line with the hint, the cause once, no backtrace; logs to a
/// file or pipe carry no colour codes.
#[test]
fn issue_19_atrd_start_errors_are_one_line_and_logs_plain() {
    let node = Node::start();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(atrd_bin())
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--api", &format!("127.0.0.1:{}", node.port)])
        .args(["--listen", "/ip4/127.0.0.1/tcp/0"])
        .env("RUST_BACKTRACE", "1")
        .env("RUST_LOG", "info")
        .env_remove("ATR_CONFIG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains('\x1b'), "no ANSI codes off a terminal: {stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("atrd: ")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    let e = errors[0];
    assert!(e.contains("is another atrd running?"), "the hint: {e}");
    let cause = "Address already in use";
    assert_eq!(e.matches(cause).count(), 1, "the cause once: {e}");
    assert!(
        !stderr.contains("Caused by") && !stderr.contains("stack backtrace"),
        "{stderr}"
    );
    // The lines before it are the plain-text logs of the start.
    assert!(stderr.lines().any(|l| l.contains(" INFO ")), "{stderr}");
}

/// Invoking a name two tools share: the failure lists both and how to pick one.
#[test]
#[ignore = "needs a Docker Engine"]
fn issue_19_an_ambiguous_invoke_lists_the_candidates() {
    let node = Node::start_sandboxed();
    let calc = node.publish_example("calculator");
    // A second `calculator` of another shape, as `atr tool new calculator` would make.
    let work = tempfile::tempdir().unwrap();
    let m = manifest(work.path(), "calculator", "0.1.0", &["math"]);
    let text = std::fs::read_to_string(&m).unwrap();
    // `add` answers a bare number: no output schema.
    let text: String = text
        .replace(&format!("digest = \"{DIGEST}\"\n"), "")
        .lines()
        .filter(|l| !l.starts_with("output_schema") && !l.starts_with("output = "))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&m, text.replace("[[examples]]\ninput = { a = 1, b = 2 }\n", "")).unwrap();
    let other = run(&mut node.atr(&["--json", "publish", m.to_str().unwrap()]))
        .success()
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = run(&mut node.atr(&["invoke", "calculator", "--input", r#"{"a": 2, "b": 3}"#])).failure(1);
    assert!(
        out.stderr.contains("2 active tools are named `calculator`"),
        "{out:?}"
    );
    assert!(
        out.stderr.contains(&calc) && out.stderr.contains(&other),
        "{out:?}"
    );
    assert!(out.stderr.contains("--version"), "how to pick one: {out:?}");
    // Picked by id, it runs.
    let ok = run(&mut node.atr(&["invoke", &other, "--input", r#"{"a": 2, "b": 3}"#])).success();
    assert!(ok.stdout.contains('5'), "{ok:?}");
    // A typo gets "did you mean".
    let typo = run(&mut node.atr(&["invoke", "calculater", "--input", "{}"])).failure(1);
    assert!(typo.stderr.contains("did you mean `calculator`?"), "{typo:?}");
}
