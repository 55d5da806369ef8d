//! The sandbox against a real Docker Engine: every hardening rule has an
//! adversarial tool, after each no atr container remains and the node still
//! serves the next invocation; every example of every example tool runs.

use atr_protocol::api::InvokeRequest;
use atr_protocol::receipt::InvocationStatus;
use atrd::node::invoke::caller;
use serde_json::{Value, json};

use crate::harness::*;

async fn publish_tool(n: &atrd::Node, tool: &str) -> atr_protocol::SignedSpec {
    n.services()
        .publisher
        .publish(tool_manifest(tool), format!("{tool}.toml"))
        .await
        .unwrap_or_else(|e| panic!("publish {tool}: {e}"))
        .spec
}

async fn call(n: &atrd::Node, id: atr_protocol::ToolId, input: Value) -> atr_protocol::api::InvokeResponse {
    n.services()
        .caller
        .invoke(InvokeRequest {
            id: Some(id),
            name: None,
            version: None,
            publisher: None,
            input,
        })
        .await
        .unwrap_or_else(|e| panic!("invoke: {e}"))
}

async fn assert_clean_and_alive(n: &atrd::Node, echo: atr_protocol::ToolId) {
    let sb = n.sandbox().unwrap();
    sb.settle().await;
    assert!(
        sb.list_own().await.unwrap().is_empty(),
        "an atr container was left behind"
    );
    let r = call(n, echo, json!({"still": "alive"})).await;
    assert_eq!(r.status, InvocationStatus::Ok);
    assert_eq!(r.output, json!({"still": "alive"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Docker Engine"]
async fn hostile_tools_are_contained_and_cleaned_up() {
    init_tracing();
    let t = start_provider(140, vec![], 4).await;
    let n = &t.node;
    let echo = publish_tool(n, "echo").await.id();

    // Network: nothing reachable from NetworkMode=none.
    let probe = publish_tool(n, "network_probe").await.id();
    let r = call(n, probe, json!({})).await;
    assert_eq!(r.status, InvocationStatus::Ok, "{}", r.output);
    let results = r.output["results"].as_array().expect("probe results");
    assert!(!results.is_empty());
    assert!(
        results.iter().all(|x| x["reachable"] == json!(false)),
        "{}",
        r.output
    );
    assert_clean_and_alive(n, echo).await;

    // Fork bomb: stopped by the pids limit.
    let fork = publish_tool(n, "fork_bomb").await;
    let pids = fork.value().limits.pids as i64;
    let r = call(n, fork.id(), json!({})).await;
    let spawned = r.output["spawned"].as_i64().unwrap_or(0);
    assert!(
        spawned < pids,
        "spawned {spawned} with pids limit {pids}: {}",
        r.output
    );
    assert_clean_and_alive(n, echo).await;

    // Memory hog: OOM-killed and reported.
    let hog = publish_tool(n, "memory_hog").await.id();
    let r = call(n, hog, json!({"mb": 1024})).await;
    assert_eq!(r.status, InvocationStatus::OutOfMemory, "{}", r.output);
    assert_eq!(r.receipt.status, InvocationStatus::OutOfMemory);
    assert_clean_and_alive(n, echo).await;

    // Disk filler: the read-only root and the capped tmpfs stop it.
    let filler = publish_tool(n, "disk_filler").await.id();
    let r = call(n, filler, json!({})).await;
    let written = r.output["bytes_written"].as_u64().unwrap_or(u64::MAX);
    assert!(written <= 16 * 1024 * 1024, "wrote {written} bytes: {}", r.output);
    assert_clean_and_alive(n, echo).await;

    // Output flood: cut at the cap, reported as an error.
    let flood = publish_tool(n, "output_flood").await.id();
    let r = call(n, flood, json!({})).await;
    assert_eq!(r.status, InvocationStatus::OutputTooLarge, "{}", r.output);
    assert_clean_and_alive(n, echo).await;

    // Sleeper: killed at its timeout.
    let sleeper = publish_tool(n, "sleeper").await;
    let r = call(n, sleeper.id(), json!({"seconds": 3600})).await;
    assert_eq!(r.status, InvocationStatus::Timeout, "{}", r.output);
    let took = r.receipt.finished_at_ms - r.receipt.started_at_ms;
    assert!(
        took < sleeper.value().limits.timeout_ms + 10_000,
        "took {took} ms"
    );
    assert_clean_and_alive(n, echo).await;

    t.node.shutdown().await.unwrap();
}

/// Issue 17: the receipt's `usage` carries the run's CPU time and peak memory, measured from
/// the container's parent cgroup (`atr_sandbox::usage`; this needs the engine's `cgroupfs`
/// driver, as on the CI machine). A tool that writes 32 MiB reports at least that much peak
/// memory and some CPU time; `echo` reports less memory than it; both are signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Docker Engine (cgroupfs driver)"]
async fn issue_17_receipts_measure_cpu_and_peak_memory() {
    init_tracing();
    let t = start_provider(141, vec![], 2).await;
    let n = &t.node;
    let hog = publish_tool(n, "memory_hog").await.id();
    let r = call(n, hog, json!({"mb": 32})).await;
    assert_eq!(r.status, InvocationStatus::Ok, "{}", r.output);
    let u = r.receipt.usage.expect("usage");
    let cpu = u.cpu_ms.expect("cpu_ms measured");
    let peak = u.peak_memory_bytes.expect("peak_memory_bytes measured");
    assert!(cpu > 0, "{u:?}");
    assert!(peak >= 32 << 20, "peak {peak} below the 32 MiB written: {u:?}");
    assert!(peak <= 64 << 20, "peak {peak} above the 64 MiB limit: {u:?}");

    let echo = publish_tool(n, "echo").await.id();
    let r = call(n, echo, json!({"x": 1})).await;
    assert_eq!(r.status, InvocationStatus::Ok, "{}", r.output);
    let e = r.receipt.usage.expect("usage");
    let echo_peak = e.peak_memory_bytes.expect("peak_memory_bytes measured");
    assert!(echo_peak > 0 && echo_peak < peak, "echo {e:?} vs hog {u:?}");
    assert!(e.cpu_ms.is_some(), "{e:?}");
    t.node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Docker Engine"]
async fn every_example_of_every_tool_runs_in_the_sandbox() {
    init_tracing();
    let t = start_provider(141, vec![], 4).await;
    let n = &t.node;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk/examples/manifests");
    let mut ran = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let tool = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let m = tool_manifest(&tool);
        // Hostile tools have their own tests; tools with declared egress need an egress proxy
        // (`egress::` tests).
        if m.tags.iter().any(|t| t == "hostile") || m.side_effects.iter().any(|s| s == "network") {
            continue;
        }
        let spec = publish_tool(n, &tool).await;
        for ex in &spec.value().examples {
            let r = call(n, spec.id(), ex.input.clone()).await;
            assert_eq!(r.status, InvocationStatus::Ok, "{tool}: {}", r.output);
            assert_eq!(r.output, ex.output, "{tool} example input {}", ex.input);
            ran += 1;
        }
    }
    assert!(ran >= 7, "only {ran} examples ran");
    t.node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Docker Engine"]
async fn invalid_input_is_refused_before_any_container_starts() {
    init_tracing();
    let t = start_provider(142, vec![], 2).await;
    let n = &t.node;
    let add = publish_tool(n, "add").await.id();
    let e = n
        .services()
        .caller
        .invoke(InvokeRequest {
            id: Some(add),
            name: None,
            version: None,
            publisher: None,
            input: json!({"a": "one"}),
        })
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, caller::InvokeError::InvalidInput(_)), "{msg}");
    assert!(msg.contains("/a"), "violations carry JSON pointers: {msg}");
    assert_eq!(n.repo().counts().unwrap().receipts, 0, "no container ran");
    t.node.shutdown().await.unwrap();
}
