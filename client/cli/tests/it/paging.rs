//! Issue 15 item 5 on the command line: `atr find --all` and `atr export` follow the node's
//! cursors, so every matching spec comes exactly once, also while others are published.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use atr_client::Client;
use atr_client::endpoint::{Endpoint, TokenSource};
use atr_protocol::Manifest;

use crate::harness::*;

/// Specs tagged `bulk` published before the listing.
const HELD: usize = 600;

fn bulk_manifest(name: &str) -> Manifest {
    Manifest::from_toml(
        &format!(
            r#"
name = "{name}"
version = "1.0.0"
description = "Bulk tool {name}."
tags = ["bulk"]
input_schema = {{ type = "object", properties = {{ q = {{ type = "string" }} }} }}
[runtime]
image = "bulk:latest"
digest = "{DIGEST}"
"#
        ),
        "bulk.toml",
    )
    .unwrap()
}

fn client(node: &Node) -> Client {
    let token = std::fs::read_to_string(node.dir.path().join("api.token")).unwrap();
    Client::new(Endpoint {
        api: node.api(),
        token: Some(token.trim().to_owned()),
        token_source: TokenSource::Env,
    })
    .unwrap()
}

/// Publishes `bulk-late<n>` specs until `stop` is set; counts them in `done`.
fn publish_meanwhile(
    node: &Node,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicUsize>,
) -> std::thread::JoinHandle<()> {
    let c = client(node);
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            while !stop.load(Ordering::Relaxed) {
                let n = done.load(Ordering::Relaxed);
                c.publish(bulk_manifest(&format!("bulk-late{n}"))).await.unwrap();
                done.fetch_add(1, Ordering::Relaxed);
            }
        });
    })
}

#[test]
fn issue_15_find_all_and_export_follow_cursors_while_specs_arrive() {
    let node = Node::start();
    let c = client(&node);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let held: Vec<String> = rt.block_on(async {
        let mut ids = Vec::new();
        for i in 0..HELD {
            let r = c.publish(bulk_manifest(&format!("bulk{i:04}"))).await.unwrap();
            ids.push(r.id.to_string());
        }
        ids
    });

    // `atr find --all`, 100 a page, while specs arrive.
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let bg = publish_meanwhile(&node, stop.clone(), done.clone());
    let out = run(&mut node.atr(&["--json", "find", "--tag", "bulk", "--all", "--limit", "100"])).success();
    let compact = run(&mut node.atr(&[
        "--json",
        "find",
        "--tag",
        "bulk",
        "--all",
        "--compact",
        "--limit",
        "250",
    ]))
    .success();
    let export =
        run(&mut node.atr(&["export", "--format", "openai", "--tag", "bulk", "--limit", "100"])).success();
    stop.store(true, Ordering::Relaxed);
    bg.join().unwrap();
    assert!(
        done.load(Ordering::Relaxed) > 0,
        "nothing was published during the listing"
    );

    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let results = out.json()["results"].as_array().unwrap().clone();
    for v in &results {
        *seen.entry(v["id"].as_str().unwrap().to_owned()).or_default() += 1;
        assert!(v["spec"]["input_schema"].is_object(), "a full view");
    }
    assert!(seen.values().all(|n| *n == 1), "a spec listed twice");
    assert!(held.iter().all(|id| seen.contains_key(id)), "a held spec missing");
    assert!(out.json().get("next_cursor").is_none());

    let compact = compact.json()["results"].as_array().unwrap().clone();
    let mut names: Vec<&str> = compact.iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert!(compact.iter().all(|v| v.get("spec").is_none()));
    let before = names.len();
    names.dedup();
    assert_eq!(names.len(), before, "a spec listed twice in the compact view");
    assert!(before >= HELD);

    // Every held tool exported, each once (one version each, so names stay plain).
    let tools = export.json();
    let exported: Vec<&str> = tools
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    let unique: std::collections::BTreeSet<&str> = exported.iter().copied().collect();
    assert_eq!(unique.len(), exported.len(), "a tool exported twice");
    for i in 0..HELD {
        assert!(
            unique.contains(format!("bulk{i:04}").as_str()),
            "bulk{i:04} not exported"
        );
    }

    // Without --all the table says more match.
    let table = run(&mut node.atr(&["find", "--tag", "bulk", "--limit", "10"])).success();
    assert!(table.stdout.contains("--all lists every one"), "{}", table.stdout);
}
