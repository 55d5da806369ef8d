//! Deployment artifacts against the real thing: the Grafana dashboard's queries name only
//! series a real node's `/metrics` exports, `atrd --check-config` accepts and refuses, and the
//! systemd unit passes `systemd-analyze verify` with a low exposure level.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use std::time::Duration;

use atr_protocol::wire::{self, IndexRequest};
use atrd::attacker::Attacker;
use atrd::network::Proto;
use serde_json::Value;

use crate::harness::{init_tracing, manifest, start_node, start_node_with, wait_for};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Every series name a scrape of `text` (OpenMetrics) can carry: the samples present, and for
/// each `# TYPE` the names its samples take (a labelled family with no sample yet still counts).
fn exported_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split_whitespace();
            let (Some(name), Some(kind)) = (it.next(), it.next()) else {
                continue;
            };
            let suffixes: &[&str] = match kind {
                "counter" => &["_total", "_created"],
                "histogram" => &["_bucket", "_sum", "_count", "_created"],
                "summary" => &["_sum", "_count", "_created"],
                "info" => &["_info"],
                _ => &[""],
            };
            for s in suffixes {
                names.insert(format!("{name}{s}"));
            }
        } else if !line.starts_with('#') && !line.is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_owned());
        }
    }
    names
}

/// The `atr_…` identifiers of a PromQL expression.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in expr.chars().chain(std::iter::once(' ')) {
        if c == '"' {
            quoted = !quoted;
        }
        if !quoted && (c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            word.push(c);
        } else {
            if word.starts_with("atr_") {
                out.insert(std::mem::take(&mut word));
            }
            word.clear();
        }
    }
    out
}

/// The dashboard's shape as Grafana's loader needs it, and every query it holds.
fn dashboard_queries(d: &Value) -> Result<Vec<String>, String> {
    let s = |k: &str| {
        d.get(k)
            .and_then(Value::as_str)
            .ok_or(format!("`{k}` must be a string"))
    };
    s("title")?;
    s("uid")?;
    d["schemaVersion"]
        .as_u64()
        .ok_or("schemaVersion must be a number")?;
    let vars: BTreeSet<&str> = d["templating"]["list"]
        .as_array()
        .ok_or("templating.list must be an array")?
        .iter()
        .map(|v| v["name"].as_str().ok_or("a variable needs a name"))
        .collect::<Result<_, _>>()?;
    let panels = d["panels"].as_array().ok_or("panels must be an array")?;
    let mut ids = BTreeSet::new();
    let mut exprs = Vec::new();
    for p in panels {
        let id = p["id"].as_u64().ok_or("a panel needs a numeric id")?;
        if !ids.insert(id) {
            return Err(format!("panel id {id} twice"));
        }
        p["title"].as_str().ok_or("a panel needs a title")?;
        let kind = p["type"].as_str().ok_or("a panel needs a type")?;
        if !["stat", "timeseries", "gauge", "table", "bargauge"].contains(&kind) {
            return Err(format!("panel type {kind}"));
        }
        let g = &p["gridPos"];
        let (x, w) = (g["x"].as_u64(), g["w"].as_u64());
        match (x, w, g["y"].as_u64(), g["h"].as_u64()) {
            (Some(x), Some(w), Some(_), Some(h)) if x + w <= 24 && w > 0 && h > 0 => {}
            _ => return Err(format!("panel {id}: gridPos must fit the 24-column grid")),
        }
        if p["datasource"]["uid"].as_str() != Some("${datasource}") || !vars.contains("datasource") {
            return Err(format!(
                "panel {id}: datasource must be the `datasource` variable"
            ));
        }
        let targets = p["targets"].as_array().ok_or("a panel needs targets")?;
        for t in targets {
            t["refId"].as_str().ok_or("a target needs a refId")?;
            let e = t["expr"].as_str().ok_or("a target needs an expr")?;
            for v in ["$job", "$instance"] {
                if e.contains(v) && !vars.contains(&v[1..]) {
                    return Err(format!("{e}: no variable {v}"));
                }
            }
            exprs.push(e.to_owned());
        }
    }
    for v in d["templating"]["list"].as_array().into_iter().flatten() {
        if let Some(q) = v["definition"].as_str() {
            exprs.push(q.to_owned());
        }
    }
    Ok(exprs)
}

/// Scrapes `/metrics` of `n`.
async fn scrape(n: &atrd::Node) -> String {
    reqwest::get(format!("http://{}/metrics", n.api_addr()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grafana_dashboard_queries_name_only_series_atrd_exports() {
    init_tracing();
    // A labelled family is exported once it has a series, so the nodes first do what makes
    // each kind of series: gossip and sync between two nodes, API answers, a hostile peer's
    // request flood over the rate budget and its malformed requests.
    let a = start_node_with(181, vec![], tempfile::tempdir().unwrap(), |c| {
        c.network.budgets.peer_requests_per_sec = 5;
        c.network.budgets.peer_request_burst = 5;
    })
    .await;
    let b = start_node(182, a.node.dial_addrs()).await;
    wait_for(Duration::from_secs(20), "b connects", || async {
        b.node.net().status().await.is_ok_and(|s| !s.peers.is_empty())
    })
    .await;
    let spec = a
        .node
        .services()
        .publisher
        .publish(manifest("graphed", "1.0.0", &["graph"]), "t.toml".into())
        .await
        .unwrap()
        .spec;
    wait_for(Duration::from_secs(20), "b holds the spec", || async {
        b.node.repo().spec(&spec.id()).is_some()
    })
    .await;
    let http = reqwest::Client::new();
    for path in ["/v1/find?tag=graph", "/v1/specs/nope", "/v1/peers"] {
        http.get(format!("http://{}{path}", a.node.api_addr()))
            .send()
            .await
            .unwrap();
    }
    let attacker = Attacker::spawn().await.unwrap();
    attacker.connect(a.node.dial_addrs()[0].clone()).await.unwrap();
    attacker
        .flood_requests(a.node.peer_id(), Proto::Index, vec![0xff; 16], 2, 1)
        .await;
    wait_for(
        Duration::from_secs(10),
        "the malformed requests are counted",
        || async { scrape(&a.node).await.contains("atr_bad_peer_messages_total") },
    )
    .await;
    let req = wire::encode_message(&IndexRequest::Tag("graph".into())).unwrap();
    let flood = attacker
        .flood_requests(a.node.peer_id(), Proto::Index, req, 30, 8)
        .await;
    assert!(flood.answered > 0 && flood.failed > 0, "{flood:?}");
    // No honest test traffic makes the store refuse an object: read the family the way the
    // node's own checks do, which creates its (zero) series.
    let _ = a.node.metrics().store_refused_count("quota");

    let text = format!("{}\n{}", scrape(&a.node).await, scrape(&b.node).await);
    let exported = exported_names(&text);
    for family in [
        "atr_specs",
        "atr_budget_exceeded_total",
        "atr_bad_peer_messages_total",
        "atr_peer_requests_total",
        "atr_gossip_verdicts_total",
        "atr_api_requests_total",
    ] {
        assert!(exported.contains(family), "{family} not in {text}");
    }

    let path = repo_root().join("deploy/grafana/atrd-dashboard.json");
    let d: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let exprs = dashboard_queries(&d).unwrap();
    let used: BTreeSet<String> = exprs.iter().flat_map(|e| metric_names(e)).collect();
    let unknown: Vec<&String> = used.iter().filter(|n| !exported.contains(*n)).collect();
    assert!(
        unknown.is_empty(),
        "the dashboard names series atrd does not export: {unknown:?}"
    );
    assert!(used.len() >= 15, "{used:?}");

    // The check itself catches a wrong name and a broken shape.
    let mut bad = d.clone();
    bad["panels"][0]["targets"][0]["expr"] = "sum(atr_specz)".into();
    let used: BTreeSet<String> = dashboard_queries(&bad)
        .unwrap()
        .iter()
        .flat_map(|e| metric_names(e))
        .collect();
    assert!(used.iter().any(|n| !exported.contains(n)));
    let mut bad = d.clone();
    bad["panels"][1]["id"] = d["panels"][0]["id"].clone();
    assert!(dashboard_queries(&bad).is_err());
    assert_eq!(
        metric_names(r#"rate(atr_a_total{x="atr_not_a_metric"}[5m]) / atr_b"#),
        ["atr_a_total", "atr_b"].map(String::from).into()
    );
}

fn atrd(args: &[&str], config: Option<&Path>) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_atrd"));
    c.args(args).env_remove("ATR_CONFIG").env_remove("ATR_API_ADDR");
    if let Some(f) = config {
        c.env("ATR_CONFIG", f);
    }
    c.output().unwrap()
}

#[test]
fn check_config_accepts_a_good_config_and_refuses_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_s = data.to_str().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "api = \"127.0.0.1:7999\"\n[explorer]\ninvoke = true\n[sandbox]\nenabled = false\n",
    )
    .unwrap();
    let out = atrd(&["--check-config", "--data-dir", data_s], Some(&good));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("configuration ok") && stdout.contains("127.0.0.1:7999"),
        "{stdout}"
    );
    assert!(
        stdout.contains("with the invoke form") && stdout.contains("discovery only"),
        "{stdout}"
    );
    assert!(!data.exists(), "--check-config writes nothing");

    for (text, want) in [
        ("nonsense = 1\n", "unknown field"),
        ("api = \"10.0.0.1:7878\"\n", "not a loopback address"),
        ("[explorer]\ninvoke = \"yes\"\n", "invalid type"),
    ] {
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, text).unwrap();
        let out = atrd(&["--check-config", "--data-dir", data_s], Some(&bad));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{text}: {stderr}");
        assert!(
            stderr.contains("invalid configuration") && stderr.contains(want),
            "{text}: {stderr}"
        );
    }
    // A data dir that is a file.
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let out = atrd(
        &["--check-config", "--data-dir", file.to_str().unwrap()],
        Some(&good),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a directory"));
}

#[test]
#[ignore = "needs systemd-analyze (apt-get install systemd)"]
fn systemd_unit_passes_verify_with_a_low_exposure() {
    let unit = std::fs::read_to_string(repo_root().join("deploy/systemd/atrd.service")).unwrap();
    assert!(unit.contains("DynamicUser=yes") && unit.contains("ProtectSystem=strict"));
    assert!(unit.contains("NoNewPrivileges=yes") && unit.contains("StateDirectory=atr"));
    // Verify the unit as installed, with the binary this build made in place of
    // /usr/local/bin/atrd (verify checks that the executable exists).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("atrd.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/atrd", env!("CARGO_BIN_EXE_atrd")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze is installed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stderr.contains("atrd.service:"),
        "warnings about the unit: {stderr}"
    );
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let level: f64 = text
        .lines()
        .find_map(|l| l.split("Overall exposure level for atrd.service: ").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in {text}"));
    // docs/operations.md records the level; 2.0 and below is what systemd calls "OK".
    assert!(level <= 2.0, "exposure {level}: {text}");
}

#[test]
#[ignore = "needs a Docker Engine and docker compose (or docker-compose)"]
fn container_image_runs_the_three_node_demo_with_compose() {
    let out = Command::new("bash")
        .arg(repo_root().join("deploy/docker/demo.sh"))
        .arg("check")
        .env(
            "ATR_DEMO_PROJECT",
            format!("atr-demo-test-{}", std::process::id()),
        )
        .env("ATR_IMAGE", "atrd:demo-test")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("node2 invoked add on node0: 2 + 40 = 42"),
        "{stdout}"
    );
    // The image is the static binary alone, run as a non-root user.
    let user = Command::new("docker")
        .args([
            "image",
            "inspect",
            "--format",
            "{{.Config.User}}",
            "atrd:demo-test",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&user.stdout).trim(), "65532:65532");
}
