//! The real `atr` binary against real `atrd` processes: every subcommand in
//! human and `--json` form, and every error path with its exit code and
//! one-line message.

use crate::harness::*;

#[test]
fn status_publish_find_search_show_peers_in_both_forms() {
    let node = Node::start();
    let work = tempfile::tempdir().unwrap();

    // status
    let human = run(&mut node.atr(&["status"])).success();
    assert!(human.stdout.contains("node "), "{human:?}");
    assert!(human.stdout.contains(&node.api()), "{human:?}");
    assert!(
        human.stdout.contains("api.token"),
        "the token source is shown: {human:?}"
    );
    let json = run(&mut node.atr(&["--json", "status"])).success().json();
    assert!(json["peer_id"].as_str().unwrap().starts_with("12D3KooW"));
    assert_eq!(json["store"]["specs"], 0);

    // publish, human then JSON; the same spec again is not an error
    let m1 = manifest(work.path(), "adder", "1.0.0", &["math", "demo"]);
    let out = run(&mut node.atr(&["publish", m1.to_str().unwrap()])).success();
    assert!(out.stdout.starts_with("published adder@1.0.0  atr_"), "{out:?}");
    let again = run(&mut node.atr(&["publish", m1.to_str().unwrap()])).success();
    assert!(again.stdout.contains("already published"), "{again:?}");
    let changed = work.path().join("changed.toml");
    let text = std::fs::read_to_string(&m1)
        .unwrap()
        .replace("adds two", "sums two");
    std::fs::write(&changed, text).unwrap();
    let conflict = run(&mut node.atr(&["publish", changed.to_str().unwrap()])).failure(1);
    assert!(conflict.error_line().contains("bump the version"), "{conflict:?}");
    let m2 = manifest(work.path(), "adder", "2.0.0", &["math"]);
    let p2 = run(&mut node.atr(&["--json", "publish", m2.to_str().unwrap()]))
        .success()
        .json();
    assert_eq!(p2["created"], true);
    assert_eq!(p2["spec"]["version"], "2.0.0");
    assert_eq!(
        p2["spec"]["input_schema"]["properties"]["a"]["description"], "first",
        "the schema file next to the manifest was loaded"
    );
    let id2 = p2["id"].as_str().unwrap().to_owned();
    let id1 = node.publish(work.path(), "adder", "1.0.0", &["math", "demo"]);
    node.publish(work.path(), "echo", "0.1.0", &["text"]);

    // find
    let table = run(&mut node.atr(&["find", "--tag", "math"])).success();
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(lines[0].starts_with("ID") && lines[0].contains("NAME") && lines[0].contains("DESCRIPTION"));
    assert_eq!(lines.len(), 3, "header + two versions: {table:?}");
    let short1 = id1.strip_prefix("atr_").unwrap()[..12].to_owned();
    assert!(table.stdout.contains(&short1), "short ids in tables: {table:?}");
    let found = run(&mut node.atr(&["--json", "find", "--name", "adder", "--version", "^2"]))
        .success()
        .json();
    let results = found["results"].as_array().unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["id"], id2.as_str());
    let publisher = run(&mut node.atr(&["--json", "status"])).success().json()["peer_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let by_pub = run(&mut node.atr(&["--json", "find", "--publisher", &publisher]))
        .success()
        .json();
    assert_eq!(by_pub["results"].as_array().unwrap().len(), 3);
    let none = run(&mut node.atr(&["find", "--tag", "nothing-here"])).success();
    assert!(none.stdout.starts_with("no tools found"), "{none:?}");
    // --network with no peers: answers (empty DHT) rather than hanging.
    let net = run(&mut node.atr(&["--json", "find", "--tag", "text", "--network"]))
        .success()
        .json();
    assert_eq!(net["results"].as_array().unwrap().len(), 1);

    // search
    let hits = run(&mut node.atr(&["search", "adds", "integers"])).success();
    assert!(hits.stdout.starts_with("SCORE"), "{hits:?}");
    assert!(hits.stdout.contains("adder"));
    let hits = run(&mut node.atr(&["--json", "search", "echo"])).success().json();
    assert_eq!(hits["hits"][0]["view"]["spec"]["name"], "echo");

    // show, by full id and by short id
    let shown = run(&mut node.atr(&["show", &short1])).success();
    assert!(shown.stdout.starts_with("adder@1.0.0  (active)"), "{shown:?}");
    assert!(shown.stdout.contains(&id1));
    assert!(shown.stdout.contains("input schema"));
    assert!(shown.stdout.contains("examples"));
    let shown = run(&mut node.atr(&["--json", "show", &id2])).success().json();
    assert_eq!(shown["id"], id2.as_str());
    assert!(shown["envelope_hex"].as_str().is_some_and(|h| !h.is_empty()));

    // peers
    let peers = run(&mut node.atr(&["peers"])).success();
    assert_eq!(peers.stdout.trim(), "no peers connected");
    let peers = run(&mut node.atr(&["--json", "peers"])).success().json();
    assert_eq!(peers["peers"], serde_json::json!([]));
}

#[test]
fn export_every_format() {
    let node = Node::start();
    let work = tempfile::tempdir().unwrap();
    let old = node.publish(work.path(), "adder", "1.0.0", &["math"]);
    let new = node.publish(work.path(), "adder", "1.1.0", &["math"]);
    node.publish(work.path(), "other", "1.0.0", &["misc"]);

    let names = |v: &serde_json::Value, pointer: &str| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|t| t.pointer(pointer).unwrap().as_str().unwrap().to_owned())
            .collect()
    };
    let openai = run(&mut node.atr(&["export", "--format", "openai", "--tag", "math"]))
        .success()
        .json();
    assert_eq!(
        names(&openai, "/function/name"),
        ["adder"],
        "a tag selects the newest version of each tool, as `atr mcp --tag` serves"
    );
    let versions = run(&mut node.atr(&[
        "export",
        "--format",
        "openai",
        "--tag",
        "math",
        "--version",
        ">=1",
    ]))
    .success()
    .json();
    assert_eq!(
        names(&versions, "/function/name"),
        ["adder", "adder_2"],
        "with --version every matching version; the newest keeps the name"
    );
    assert_eq!(openai[0]["type"], "function");
    assert_eq!(
        openai[0]["function"]["parameters"]["required"],
        serde_json::json!(["a", "b"])
    );

    let strict = run(&mut node.atr(&["export", "--format", "openai", "--strict", "--name", "other"]))
        .success()
        .json();
    assert_eq!(strict[0]["function"]["strict"], true);

    let responses = run(&mut node.atr(&["export", "--format", "openai-responses", "--tag", "misc"]))
        .success()
        .json();
    assert_eq!(responses[0]["strict"], false);
    assert_eq!(responses[0]["name"], "other");

    let anthropic = run(&mut node.atr(&["export", "--format", "anthropic", "--id", &old]))
        .success()
        .json();
    assert_eq!(anthropic[0]["input_schema"]["type"], "object");
    assert_eq!(
        anthropic[0]["input_examples"],
        serde_json::json!([{"a": 1, "b": 2}])
    );

    let mcp = run(&mut node.atr(&["export", "--format", "mcp", "--tag", "math"]))
        .success()
        .json();
    assert_eq!(mcp.as_array().unwrap().len(), 1, "{mcp}");
    assert_eq!(mcp[0]["_meta"]["dev.atr/id"], new.as_str());
    assert_eq!(mcp[0]["annotations"]["readOnlyHint"], true);
    assert_eq!(mcp[0]["outputSchema"]["required"], serde_json::json!(["sum"]));

    let gemini = run(&mut node.atr(&["export", "--format", "gemini"]))
        .success()
        .json();
    assert_eq!(
        gemini.as_array().unwrap().len(),
        2,
        "no filter: the newest version of every active tool of the node"
    );
    assert!(gemini[0]["parametersJsonSchema"].is_object());

    let empty = run(&mut node.atr(&["export", "--format", "openai", "--tag", "nope"])).success();
    assert_eq!(empty.json(), serde_json::json!([]));

    let bad = run(&mut node.atr(&["export", "--format", "yaml"])).failure(2);
    assert!(bad.stderr.contains("openai-responses"), "{bad:?}");
}

#[test]
fn revoke_and_deprecate_in_both_forms() {
    let node = Node::start();
    let work = tempfile::tempdir().unwrap();
    let v1 = node.publish(work.path(), "adder", "1.0.0", &["math"]);
    let v2 = node.publish(work.path(), "adder", "2.0.0", &["math"]);
    let v3 = node.publish(work.path(), "adder", "3.0.0", &["math"]);

    let out = run(&mut node.atr(&[
        "revoke",
        &v1[..16],
        "--deprecate",
        "--successor",
        &v2,
        "--reason",
        "use 2.0",
    ]))
    .success();
    assert!(out.stdout.starts_with("deprecated 1 spec(s)"), "{out:?}");
    let shown = run(&mut node.atr(&["show", &v1])).success();
    assert!(shown.stdout.contains("deprecated, use"), "{shown:?}");

    let out = run(&mut node.atr(&["--json", "revoke", &v3, "--reason", "broken"]))
        .success()
        .json();
    assert_eq!(out["affected"], serde_json::json!([v3]));
    assert_eq!(out["revocation"].as_str().unwrap().len(), 64);

    let active = run(&mut node.atr(&["--json", "find", "--tag", "math"]))
        .success()
        .json();
    assert_eq!(
        active["results"].as_array().unwrap().len(),
        1,
        "only v2 is still active"
    );
    let all = run(&mut node.atr(&["find", "--tag", "math", "--include-revoked"])).success();
    assert!(
        all.stdout.contains("revoked") && all.stdout.contains("deprecated"),
        "{all:?}"
    );
}

#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = run(&mut atr_cmd(&["completions", shell])).success();
        assert!(out.stdout.contains("atr"), "{shell}: {out:?}");
        assert!(out.stdout.contains("publish"), "{shell}: {out:?}");
    }
}

#[test]
fn node_down_is_one_line_with_the_hint() {
    let port = free_port();
    let api = format!("http://127.0.0.1:{port}");
    for args in [&["status"][..], &["--json", "find", "--tag", "x"], &["peers"]] {
        let out = run(atr_cmd(args).env("ATR_API", &api)).failure(1);
        assert_eq!(
            out.error_line(),
            format!("error: cannot reach atrd at {api} — is it running? start it with `atrd`")
        );
        assert!(out.stdout.is_empty());
    }
    // --api wins over ATR_API.
    let out = run(atr_cmd(&["--api", &api, "status"]).env("ATR_API", "http://127.0.0.1:1")).failure(1);
    assert!(out.error_line().contains(&api), "{out:?}");
}

#[test]
fn token_problems_are_unauthorized() {
    let node = Node::start();
    let work = tempfile::tempdir().unwrap();
    let m = manifest(work.path(), "adder", "1.0.0", &["math"]);
    let out = run(node
        .atr(&["publish", m.to_str().unwrap()])
        .env("ATR_TOKEN", "wrong"))
    .failure(1);
    let line = out.error_line();
    assert!(line.starts_with("error: unauthorized: wrong API token"), "{line}");
    assert!(
        line.contains("ATR_TOKEN"),
        "says where the token came from: {line}"
    );

    let empty = tempfile::tempdir().unwrap();
    let out = run(node
        .atr(&["--json", "publish", m.to_str().unwrap()])
        .env("ATR_DATA_DIR", empty.path()))
    .failure(1);
    let line = out.error_line();
    assert!(line.starts_with("error: unauthorized"), "{line}");
    assert!(line.contains("no API token"), "{line}");

    // Status lists peers and addresses: it needs the token too (issue 13).
    let out = run(node.atr(&["status"]).env("ATR_TOKEN", "wrong")).failure(1);
    assert!(out.error_line().starts_with("error: unauthorized"), "{out:?}");
    // Local catalog reads need none.
    run(node
        .atr(&["find", "--tag", "math"])
        .env("ATR_DATA_DIR", empty.path())
        .env_remove("ATR_TOKEN"))
    .success();
}

#[test]
fn invalid_manifests_name_the_field() {
    let node = Node::start();
    let work = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(manifest(work.path(), "adder", "1.0.0", &["math"])).unwrap();
    let cases = [
        // Caught by the client while parsing.
        (
            "version",
            good.replace("version = \"1.0.0\"", "version = \"one\""),
        ),
        // A schema file that is not there.
        (
            "input_schema",
            good.replace("schemas/adder.in.json", "schemas/missing.json"),
        ),
        // Caught by the node.
        (
            "runtime.digest",
            good.replace(&format!("digest = \"{DIGEST}\"\n"), ""),
        ),
        ("name", good.replace("name = \"adder\"", "name = \"bad name!\"")),
    ];
    for (field, text) in cases {
        let path = work.path().join(format!("bad-{}.toml", field.replace('.', "-")));
        std::fs::write(&path, text).unwrap();
        for json in [false, true] {
            let mut args = vec!["publish", path.to_str().unwrap()];
            if json {
                args.insert(0, "--json");
            }
            let out = run(&mut node.atr(&args)).failure(1);
            let line = out.error_line();
            assert!(line.starts_with("error: invalid manifest:"), "{line}");
            assert!(line.contains(&format!("`{field}`")), "names `{field}`: {line}");
        }
    }
    let out = run(&mut node.atr(&["publish", "/nonexistent/tool.toml"])).failure(1);
    assert!(
        out.error_line().contains("cannot read /nonexistent/tool.toml"),
        "{out:?}"
    );
}

#[test]
fn unknown_ids_fail_with_exit_1() {
    let node = Node::start();
    let unknown = format!("atr_{}", "a".repeat(52));
    let out = run(&mut node.atr(&["show", &unknown])).failure(1);
    assert!(
        out.error_line().contains(&format!("no spec {unknown}")),
        "{out:?}"
    );
    let out = run(&mut node.atr(&["--json", "show", &unknown])).failure(1);
    out.error_line();
    let out = run(&mut node.atr(&["show", "abcdefghijkl"])).failure(1);
    assert!(
        out.error_line()
            .contains("no spec on this node has an id starting with"),
        "{out:?}"
    );
    // Shorter than a short id (12 characters): not looked up as one, and said so.
    let out = run(&mut node.atr(&["show", "abcdefgh"])).failure(1);
    assert!(
        out.error_line().contains("no active tool named `abcdefgh`")
            && out
                .error_line()
                .contains("a short id needs at least 12 characters"),
        "{out:?}"
    );
    let out = run(&mut node.atr(&["revoke", &unknown])).failure(1);
    assert!(out.error_line().contains("cannot revoke"), "{out:?}");
    let out = run(&mut node.atr(&["export", "--format", "mcp", "--id", &unknown])).failure(1);
    out.error_line();
}

#[test]
fn usage_errors_exit_2() {
    let node = Node::start();
    for args in [
        &["frobnicate"][..],
        &["find", "--version", "latest"],
        &["find", "--publisher", "not-a-key"],
        &["publish"],
        &["export"],
        &["show", "atr_zz"],
        &["mcp"],
        &["--api", "https://127.0.0.1:1", "status"],
    ] {
        let out = run(&mut node.atr(args));
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
        assert!(out.stderr.starts_with("error:"), "{args:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{args:?}: {out:?}");
    }
    let out = run(&mut node.atr(&["mcp"])).failure(2);
    assert!(
        out.error_line().contains("never serves the whole network"),
        "{out:?}"
    );
}

#[test]
fn network_find_reaches_another_node() {
    let a = Node::start();
    let b = Node::start_with(&["--bootstrap", &a.bootstrap_addr()]);
    let work = tempfile::tempdir().unwrap();
    let id = a.publish(work.path(), "faraway", "1.0.0", &["remote-only"]);
    wait_for(std::time::Duration::from_secs(30), "the nodes to connect", || {
        let peers = run(&mut b.atr(&["--json", "peers"])).success().json();
        !peers["peers"].as_array().unwrap().is_empty()
    });
    let peers = run(&mut b.atr(&["peers"])).success();
    assert!(peers.stdout.starts_with("PEER"), "{peers:?}");
    // Ask until the DHT has the provider record (gossip may also deliver it first).
    wait_for(
        std::time::Duration::from_secs(60),
        "a network find to return the spec",
        || {
            let out = run(&mut b.atr(&["--json", "find", "--tag", "remote-only", "--network"])).success();
            out.json()["results"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["id"] == id.as_str())
        },
    );
    let human = run(&mut b.atr(&["find", "--tag", "remote-only", "--network"])).success();
    assert!(human.stdout.contains("faraway"), "{human:?}");
}

/// Decodes lower-case hex.
fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// `atr invoke` and `atr receipts` against a node that runs the example tools in its sandbox.
#[test]
#[ignore = "needs a Docker Engine"]
fn invoke_and_receipts_in_both_forms() {
    let node = Node::start_sandboxed();
    let add = node.publish_example("add");
    let none = run(&mut node.atr(&["receipts"])).success();
    assert!(none.stdout.starts_with("no receipts yet"), "{none:?}");

    // By name, human: the output on stdout, the receipt summary on stderr.
    let out = run(&mut node.atr(&["invoke", "add", "--input", r#"{"a":2,"b":3}"#])).success();
    assert_eq!(out.stdout.trim(), "5", "{out:?}");
    let summary = out.stderr.trim();
    assert!(
        summary.starts_with("ok · ") && summary.contains("verified") && summary.contains("this node"),
        "{out:?}"
    );
    assert!(summary.contains(&add[4..16]), "names the tool: {out:?}");

    // By short id, JSON: the whole answer, with a receipt anyone can check.
    let short = &add[4..16];
    let j = run(&mut node.atr(&["--json", "invoke", short, "--input", r#"{"a":2,"b":3}"#]))
        .success()
        .json();
    assert_eq!(j["output"], 5);
    assert_eq!(j["status"], "ok");
    assert_eq!(j["id"], add.as_str());
    assert_eq!(j["provider"], node.peer_id().as_str(), "the node ran it itself");
    let receipt =
        atr_protocol::SignedReceipt::from_bytes(&unhex(j["receipt_hex"].as_str().unwrap())).unwrap();
    assert_eq!(receipt.value().tool.to_string(), add);
    assert_eq!(
        receipt.value().output_hash,
        atr_protocol::ContentHash::of(b"5"),
        "the receipt binds the output"
    );

    // --input-file, and a name with a version requirement.
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("input.json");
    std::fs::write(&file, r#"{"a": -7, "b": 4}"#).unwrap();
    let out = run(&mut node.atr(&[
        "invoke",
        "add",
        "--version",
        "^1",
        "--input-file",
        file.to_str().unwrap(),
    ]))
    .success();
    assert_eq!(out.stdout.trim(), "-3", "{out:?}");

    // A schema violation: exit 1, each offending pointer on its own line.
    for json in [false, true] {
        let mut args = vec!["invoke", "add", "--input", r#"{"a":"x","b":3}"#];
        if json {
            args.insert(0, "--json");
        }
        let out = run(&mut node.atr(&args)).failure(1);
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert!(
            lines[0].starts_with("error: invalid input for `add`: 1 violation(s)"),
            "{out:?}"
        );
        assert!(lines[1].trim_start().starts_with("/a: "), "{out:?}");
        assert!(out.stdout.is_empty(), "{out:?}");
    }

    // The tool runs and fails (an overflow is refused): exit 1 with its message.
    let out =
        run(&mut node.atr(&["invoke", "add", "--input", r#"{"a":9223372036854775807,"b":1}"#])).failure(1);
    assert!(out.stderr.starts_with("error: `add` failed: "), "{out:?}");
    assert!(out.stderr.contains("tool_error"), "{out:?}");
    let failed = run(&mut node.atr(&[
        "--json",
        "invoke",
        "add",
        "--input",
        r#"{"a":9223372036854775807,"b":1}"#,
    ]))
    .failure(1);
    assert_eq!(
        failed.json()["status"],
        "tool_error",
        "the answer is still printed: {failed:?}"
    );

    // Unknown tools, by name and by id: exit 1, one line.
    let out = run(&mut node.atr(&["invoke", "nosuchtool", "--input", "{}"])).failure(1);
    assert!(out.error_line().contains("nosuchtool"), "{out:?}");
    let unknown = format!("atr_{}", "a".repeat(52));
    let out = run(&mut node.atr(&["invoke", &unknown, "--input", "{}"])).failure(1);
    assert!(out.error_line().contains(&unknown), "{out:?}");

    // Input that is not a JSON object, or none at all: usage errors.
    for args in [
        &["invoke", "add", "--input", "{nope"][..],
        &["invoke", "add", "--input", "[1, 2]"],
        &["invoke", "add"],
        &["invoke", "add", "--input", "{}", "--input-file", "x.json"],
    ] {
        let out = run(&mut node.atr(args));
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
        assert!(out.stderr.starts_with("error:"), "{args:?}: {out:?}");
    }

    // Bad token.
    let out = run(node
        .atr(&["invoke", "add", "--input", r#"{"a":1,"b":1}"#])
        .env("ATR_TOKEN", "wrong"))
    .failure(1);
    assert!(out.error_line().starts_with("error: unauthorized"), "{out:?}");

    // receipts: newest first, in both forms.
    let table = run(&mut node.atr(&["receipts"])).success();
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(
        lines[0].starts_with("FINISHED") && lines[0].contains("STATUS"),
        "{table:?}"
    );
    assert_eq!(lines.len(), 1 + 5, "header + five runs: {table:?}");
    assert!(lines[1].contains("tool_error"), "newest first: {table:?}");
    assert!(table.stdout.contains(&add[4..16]), "{table:?}");
    assert!(
        lines[0].contains("TOOL") && lines[1..].iter().any(|l| l.contains("add@1.0.0")),
        "receipts name the tool: {table:?}"
    );
    let j = run(&mut node.atr(&["--json", "receipts", "--limit", "2"]))
        .success()
        .json();
    let receipts = j["receipts"].as_array().unwrap();
    assert_eq!(receipts.len(), 2);
    assert_eq!(receipts[0]["status"], "tool_error");
}

/// `atr provide`, `atr provided` and `atr unprovide` against two sandboxed nodes: B
/// agrees to run A's tool, by name and by id, in both output forms.
#[test]
#[ignore = "needs a Docker Engine"]
fn provide_provided_unprovide_in_both_forms() {
    let a = Node::start_sandboxed();
    let b = Node::start_sandboxed_with(&["--bootstrap", &a.bootstrap_addr()]);
    let id = a.publish_example("echo");
    wait_for(std::time::Duration::from_secs(30), "B to learn A's spec", || {
        b.atr(&["--json", "show", &id])
            .output()
            .is_ok_and(|o| o.status.success())
    });

    let none = run(&mut b.atr(&["provided"])).success();
    assert!(
        none.stdout
            .starts_with("this node provides no other publisher's tools"),
        "{none:?}"
    );
    let j = run(&mut b.atr(&["--json", "provided"])).success().json();
    assert_eq!(j["provided"], serde_json::json!([]));

    // By name, human; again by id, JSON (idempotent).
    let out = run(&mut b.atr(&["provide", "echo"])).success();
    assert_eq!(out.stdout.trim(), format!("providing {id}"), "{out:?}");
    let j = run(&mut b.atr(&["--json", "provide", &id])).success().json();
    assert_eq!(j["id"], id.as_str());
    assert_eq!(j["provided"], true);
    assert_eq!(j["changed"], false);

    let j = run(&mut b.atr(&["--json", "provided"])).success().json();
    assert_eq!(j["provided"][0]["id"], id.as_str(), "{j}");
    assert_eq!(j["provided"][0]["name"], "echo", "{j}");
    let human = run(&mut b.atr(&["provided"])).success();
    assert!(human.stdout.starts_with("ID"), "{human:?}");
    assert!(human.stdout.contains("echo"), "{human:?}");

    // A tool published by the node itself is refused in one line, exit 1.
    let own = b.publish_example("add");
    let out = run(&mut b.atr(&["provide", &own])).failure(1);
    assert!(out.error_line().contains("published by this node"), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    // An unknown name is a failed lookup, as with `show` and `invoke`.
    let out = run(&mut b.atr(&["provide", "no-such-tool"])).failure(1);
    assert!(out.error_line().contains("no active tool named"), "{out:?}");

    // Withdraw by name (human), then again by id (JSON): not provided, exit 1.
    let out = run(&mut b.atr(&["unprovide", "echo"])).success();
    assert_eq!(out.stdout.trim(), format!("stopped providing {id}"), "{out:?}");
    let out = run(&mut b.atr(&["--json", "unprovide", &id])).failure(1);
    assert!(out.error_line().contains("does not provide"), "{out:?}");
    let j = run(&mut b.atr(&["--json", "provide", &id])).success().json();
    assert_eq!(j["changed"], true);
    let j = run(&mut b.atr(&["--json", "unprovide", &id])).success().json();
    assert_eq!(j["provided"], false);
    let j = run(&mut b.atr(&["--json", "provided"])).success().json();
    assert_eq!(j["provided"], serde_json::json!([]));
}
