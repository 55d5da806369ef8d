//! Docker mode (a `FROM scratch` atrd image, one container per node on a
//! private network) and the exported compose file. The first run builds a
//! static `atrd` (minutes); later runs reuse cargo's and Docker's caches.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use atr_client::endpoint::TokenSource;
use atr_client::{Client, Endpoint};
use atr_protocol::query::FindQuery;
use atr_testnet::report::Summary;
use atr_testnet::runner::{RunOptions, run};
use atr_testnet::scenario::{Conditions, Scenario};
use atr_testnet::state::{DOCKER_LABEL, Mode};

use crate::{SERIAL, TestResult};

/// Containers and networks labelled with this testnet directory.
fn docker_objects(dir: &Path) -> Result<String, Box<dyn std::error::Error>> {
    let filter = format!("label={DOCKER_LABEL}={}", dir.display());
    let mut all = String::new();
    for args in [&["ps", "-a", "-q"][..], &["network", "ls", "-q"][..]] {
        let out = Command::new("docker")
            .args(args)
            .args(["--filter", &filter])
            .output()?;
        assert!(out.status.success());
        all += String::from_utf8_lossy(&out.stdout).trim();
    }
    Ok(all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Docker Engine"]
async fn partition_runs_in_docker_mode_and_down_removes_everything() -> TestResult {
    let _serial = SERIAL.lock().await;
    let tmp = tempfile::tempdir()?;
    let out = tmp.path().join("out");
    // One side also gets a slow, lossy link: applied by kernel netem where
    // there is one, else by the harness's user-space emulator.
    let mut scenario = Scenario::load("partition")?;
    let left = scenario
        .groups
        .iter_mut()
        .find(|g| g.id == "left")
        .ok_or("no left group")?;
    left.conditions = Some(Conditions {
        delay: Some(Duration::from_millis(20)),
        jitter: Some(Duration::from_millis(2)),
        loss_percent: Some(0.5),
        bandwidth: Some("50mbit".into()),
    });
    let summary: Summary = run(RunOptions {
        scenario,
        nodes: Some(4),
        repeat: 1,
        seed: None,
        out: out.clone(),
        atrd: atr_testnet::atrd::locate(None)?,
        net_dir: None,
        mode: Mode::Docker,
        command: "cargo test -p atr-testnet".into(),
    })
    .await?;
    assert_eq!(summary.mode, "docker");
    assert!(summary.conditions_applied, "{:?}", summary.notes);
    if let Some(link) = summary.link_emulation {
        // User space: the left nodes' packets went through it, each held
        // at least delay - jitter.
        assert!(link.packets > 0 && link.released > 0, "{link:?}");
        assert!(link.min_held_us >= 18_000, "{link:?}");
    }
    let get = |series: &str, kind: &str| {
        summary
            .series
            .iter()
            .find(|s| s.series == series && s.kind == kind)
            .cloned()
            .unwrap_or_else(|| panic!("no {series}/{kind}: {:#?}", summary.series))
    };
    // While cut, each tool reaches only its own side: 1 of the 3 others.
    let during = get("propagation", "propagation");
    assert_eq!(during.count, 30);
    assert_eq!(during.ok, 10, "{during:?}");
    assert_eq!(get("propagation", "propagation_all").ok, 0);
    // After healing, every node gets everything, and lookups find it all.
    assert_eq!(get("heal", "convergence_all").success_rate, 1.0);
    assert_eq!(get("heal", "convergence").count, 4);
    assert_eq!(get("find_after_heal", "find").success_rate, 1.0);
    assert!(out.join("summary.md").exists() && out.join("latency_cdf.svg").exists());
    let net = out.join("net");
    assert!(!net.exists(), "the testnet directory is removed");
    assert_eq!(docker_objects(&net)?, "", "no container or network is left");
    Ok(())
}

fn compose(file: &Path, project: &str, args: &[&str]) -> Result<(), Box<dyn std::error::Error>> {
    // `docker compose` (v2 plugin) where there is one, else docker-compose.
    let v2 = Command::new("docker")
        .args(["compose", "version"])
        .output()?
        .status
        .success();
    let mut c = if v2 {
        let mut c = Command::new("docker");
        c.arg("compose");
        c
    } else {
        Command::new("docker-compose")
    };
    let out = c.arg("-f").arg(file).args(["-p", project]).args(args).output()?;
    assert!(
        out.status.success(),
        "compose {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Docker Engine"]
async fn exported_compose_file_starts_a_working_three_node_network() -> TestResult {
    let _serial = SERIAL.lock().await;
    let tmp = tempfile::tempdir()?;
    let file = tmp.path().join("atr.yml");
    let out = Command::new(env!("CARGO_BIN_EXE_atr-testnet"))
        .args(["export", "--nodes", "3", "--api-base", "17850", "--compose"])
        .arg(&file)
        .output()?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let project = format!("atrtest{}", std::process::id());
    compose(&file, &project, &["up", "-d"])?;
    let result = async {
        let clients: Vec<Client> = (0..3)
            .map(|i| {
                let token = std::fs::read_to_string(tmp.path().join(format!("atr-nodes/{i:04}/api.token")))
                    .ok()
                    .map(|t| t.trim().to_owned());
                Client::new(Endpoint {
                    api: format!("http://127.0.0.1:{}", 17850 + i),
                    token,
                    token_source: TokenSource::Explicit,
                })
            })
            .collect::<Result<_, _>>()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        for c in &clients {
            while !c.status().await.is_ok_and(|s| !s.connected_peers.is_empty()) {
                assert!(Instant::now() < deadline, "{} has no peer", c.api_url());
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        // Tokens are written by the nodes at first start: read them now.
        let token = std::fs::read_to_string(tmp.path().join("atr-nodes/0000/api.token"))?;
        let publisher = Client::new(Endpoint {
            api: "http://127.0.0.1:17850".into(),
            token: Some(token.trim().to_owned()),
            token_source: TokenSource::Explicit,
        })?;
        let manifest = atr_protocol::Manifest::from_toml(
            r#"
name = "composed"
version = "1.0.0"
description = "Published in a compose network."
tags = ["compose"]
input_schema = { type = "object" }
output_schema = { type = "integer" }
[runtime]
image = "atr-example-tools:latest"
digest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
command = ["/bin/add"]
"#,
            "t.toml",
        )?;
        let id = publisher.publish(manifest).await?.id;
        let q = FindQuery {
            tag: Some("compose".into()),
            ..FindQuery::default()
        };
        while !clients[2]
            .find(&q)
            .await
            .is_ok_and(|r| r.results.iter().any(|v| v.id == id))
        {
            assert!(Instant::now() < deadline, "node2 never saw the tool");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok::<(), Box<dyn std::error::Error>>(())
    }
    .await;
    compose(&file, &project, &["down"])?;
    result
}

/// Issue 18: two nodes each behind its own NAT (a masquerading router
/// container) and a public relay. Each finds it is unreachable (AutoNAT),
/// reserves on the relay, and finds the other's tool locally (gossip through
/// the relay) and over the network (DHT + a request to the NATed provider),
/// then invokes it there: the request crosses both NATs, relayed or hole
/// punched. The NATed nodes must connect to each other (through the relay at
/// least); the share of direct connections is reported, not required: it
/// depends on the NAT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Docker"]
async fn nodes_behind_different_nats_find_and_invoke_each_others_tools() -> TestResult {
    let _serial = SERIAL.lock().await;
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("nat");
    let report = atr_testnet::nat::run(atr_testnet::nat::NatOptions {
        nats: 2,
        dir: dir.clone(),
        build_image: true,
        seed: 7,
        settle: Duration::from_secs(10),
        invoke: true,
    })
    .await?;
    println!("{}", atr_testnet::nat::markdown(&report));
    assert_eq!(report.reachability, vec!["private", "private"], "{report:?}");
    assert_eq!(report.relayed_addr_ms.len(), 2);
    assert_eq!(report.discoverable_ms.len(), 2);
    assert_eq!(report.network_find_ok, 2, "{report:?}");
    assert_eq!(
        report.invoke_ok, 2,
        "each NATed node ran the other's call: {report:?}"
    );
    assert_eq!(report.pairs_connected, 1, "the NATed nodes connected: {report:?}");
    assert!(
        report.first_connection_ms.iter().all(Option::is_some),
        "{report:?}"
    );
    assert!(report.relayed_connections >= 1, "{report:?}");
    assert!(report.relay_circuits >= 1, "{report:?}");
    assert!(report.relay_bytes > 0);
    println!("direct share: {:.2}", report.direct_share);
    assert_eq!(
        docker_objects(&dir.canonicalize()?)?,
        "",
        "no container or network is left"
    );
    Ok(())
}

/// Issue 18: `atr-testnet run propagation --mode swarm --nodes 10` on a
/// single-node swarm. The run initialises the swarm when the engine is in
/// none; the test checks that every tool reached every node and that the
/// engine is left as found: the swarm state restored (left again, with its
/// `docker_gwbridge`, when the run initialised it), no network added, no
/// stack container left.
#[test]
#[ignore = "needs Docker"]
fn propagation_runs_on_a_single_node_swarm_and_cleans_up() -> TestResult {
    let _serial = SERIAL.blocking_lock();
    let was_active = atr_testnet::swarm::swarm_active()?;
    // Only the networks a swarm and a stack make are compared: other work
    // on the same engine may add and remove its own meanwhile.
    let networks = || -> Result<String, Box<dyn std::error::Error>> {
        let out = Command::new("docker")
            .args(["network", "ls", "--format", "{{.Name}} {{.Labels}}"])
            .output()?;
        assert!(out.status.success());
        let mut ours: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| {
                l.starts_with("ingress ")
                    || l.starts_with("docker_gwbridge ")
                    || l.contains("com.docker.stack.namespace")
            })
            .map(str::to_owned)
            .collect();
        ours.sort();
        Ok(ours.join("\n"))
    };
    let networks_before = networks()?;
    let tmp = tempfile::tempdir()?;
    let out = tmp.path().join("out");
    let run = Command::new(env!("CARGO_BIN_EXE_atr-testnet"))
        .args(["run", "propagation", "--mode", "swarm", "--nodes", "10", "--out"])
        .arg(&out)
        .output()?;
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    println!("{stderr}");
    assert!(run.status.success(), "{stderr}");
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("summary.json"))?)?;
    assert_eq!(summary["mode"], "swarm");
    assert_eq!(summary["nodes"], 10);
    let series = summary["series"].as_array().ok_or("no series")?;
    let get = |kind: &str| {
        series
            .iter()
            .find(|s| s["kind"] == kind)
            .cloned()
            .ok_or_else(|| format!("no {kind} series: {series:?}"))
    };
    // 20 publishes, each stored on the 9 other nodes.
    let prop = get("propagation")?;
    assert_eq!(prop["count"], 180, "{prop}");
    assert_eq!(prop["success_rate"], 1.0, "{prop}");
    assert_eq!(get("propagation_all")?["success_rate"], 1.0);
    assert_eq!(get("find")?["success_rate"], 1.0);
    assert_eq!(
        atr_testnet::swarm::swarm_active()?,
        was_active,
        "the swarm state is restored"
    );
    assert_eq!(
        networks()?,
        networks_before,
        "no swarm or stack network is left or removed"
    );
    let leftovers = Command::new("docker")
        .args(["ps", "-a", "-q", "--filter", "label=com.docker.stack.namespace"])
        .output()?;
    assert!(leftovers.stdout.is_empty(), "no stack container is left");
    assert!(!out.join("net").exists(), "the testnet directory is removed");
    Ok(())
}
