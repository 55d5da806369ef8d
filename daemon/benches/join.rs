//! Catch-up and publish throughput (a small harness, not criterion: it
//! drives real nodes on loopback, in one process).
//!
//! Run: `cargo bench -p atrd --bench join` (N = 100 000; `ATR_JOIN_N=…` for
//! another size). Prints a Markdown table for docs/benchmarks/node.md:
//! - **join**: node A holds N signed specs of N/100 publishers; node B
//!   starts empty, bootstraps to A and is timed until it holds all N and
//!   answers a find (its anti-entropy sync: whole buckets listed, fetches
//!   pipelined, verification in parallel, one group commit per response);
//! - **publish**: 5 000 manifests through `POST /v1/publish`, 32 clients at
//!   once (concurrent publishes share fsyncs through the group commit).

use std::time::{Duration, Instant};

use atr_protocol::query::FindQuery;
use atr_protocol::{Manifest, SecretKey, SignedSpec};
use atrd::Node;
use atrd::config::Config;
use atrd::identity::Identity;
use rayon::prelude::*;

mod support;
use support::DIGEST;

fn manifest(name: &str, tag: &str) -> Manifest {
    Manifest::from_toml(
        &format!(
            r#"
name = "{name}"
version = "1.0.0"
description = "Tool {name}: converts one thing into another for the join benchmark."
tags = ["{tag}", "join"]
input_schema = {{ type = "object", properties = {{ q = {{ type = "string", description = "what to convert" }} }}, required = ["q"] }}
output_schema = {{ type = "object", properties = {{ r = {{ type = "string" }} }} }}
[runtime]
image = "bench:latest"
digest = "{DIGEST}"
"#
        ),
        "bench.toml",
    )
    .expect("bench manifest")
}

fn config(dir: &std::path::Path, boot: Vec<libp2p::Multiaddr>, max_specs: usize) -> Config {
    let mut c = support::config(dir, boot);
    c.store.max_specs = max_specs;
    c.store.max_spec_bytes = max_specs as u64 * 8192;
    c
}

/// `n` specs signed by `n / 100` publishers (each within the default
/// per-publisher quota), in parallel.
fn specs(n: usize) -> Vec<SignedSpec> {
    (0..n)
        .into_par_iter()
        .map(|i| {
            let publisher = (i / 100) as u64;
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&publisher.to_le_bytes());
            seed[31] = 7;
            let key = SecretKey::from_seed(&seed);
            let spec = manifest(&format!("tool{i}"), &format!("t{}", i % 50))
                .to_spec("b.toml", key.public(), 1_764_000_000_000 + i as u64, None)
                .expect("spec");
            SignedSpec::sign(spec, &key).expect("sign")
        })
        .collect()
}

async fn join(n: usize, rows: &mut Vec<String>) {
    let t0 = Instant::now();
    let specs = specs(n);
    let generated = t0.elapsed();
    let cap = n * 2 + 1000;
    let da = tempfile::tempdir().expect("tmp");
    let a = Node::bind_with_identity(
        config(da.path(), vec![], cap),
        Some(Identity::from_seed([230; 32])),
    )
    .await
    .expect("node A");
    let ingest = a.services().ingest.clone();
    let t0 = Instant::now();
    tokio::task::spawn_blocking(move || {
        for chunk in specs.chunks(1000) {
            for r in ingest.store_specs(chunk) {
                r.expect("store");
            }
        }
    })
    .await
    .expect("prefill");
    let prefill = t0.elapsed();
    assert_eq!(a.repo().read(|c| c.len()), n);

    let db = tempfile::tempdir().expect("tmp");
    let cpu0 = cpu_time();
    let t0 = Instant::now();
    let b = Node::bind_with_identity(
        config(db.path(), a.dial_addrs(), cap),
        Some(Identity::from_seed([231; 32])),
    )
    .await
    .expect("node B");
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut last = (Instant::now(), 0usize);
    loop {
        let held = b.repo().read(|c| c.len());
        if held >= n {
            break;
        }
        if held != last.1 {
            last = (Instant::now(), held);
        }
        assert!(
            Instant::now() < deadline && last.0.elapsed() < Duration::from_secs(120),
            "B holds {held} of {n}: no progress"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let q = FindQuery {
        tag: Some("t7".into()),
        limit: Some(10),
        ..Default::default()
    };
    let found = b.repo().read(|c| c.find(&q, None).len());
    let joined = t0.elapsed().as_secs_f64();
    let cpu = cpu_time() - cpu0;
    assert_eq!(found, 10);
    rows.push(format!(
        "| join: B starts empty, bootstraps to A holding {n} specs of {} publishers → B holds all and answers a find | {joined:.2} s ({:.0} specs/s; both nodes' CPU {cpu:.1} s = {:.0} µs/spec) | N = 100 000 in ≤ 10 s |",
        n / 100,
        n as f64 / joined,
        cpu * 1e6 / n as f64,
    ));
    rows.push(format!(
        "| (setup) generate and sign {n} specs; A stores them in group commits of 1000 | {:.1} s; {:.2} s ({:.0} specs/s) | |",
        generated.as_secs_f64(),
        prefill.as_secs_f64(),
        n as f64 / prefill.as_secs_f64()
    ));
    b.shutdown().await.expect("shutdown");
    a.shutdown().await.expect("shutdown");
}

async fn publish(rows: &mut Vec<String>) {
    const N: usize = 5000;
    const CLIENTS: usize = 32;
    let d = tempfile::tempdir().expect("tmp");
    let node = Node::bind_with_identity(
        config(d.path(), vec![], 100_000),
        Some(Identity::from_seed([232; 32])),
    )
    .await
    .expect("node");
    let base = format!("http://{}", node.api_addr());
    let token = node.api_token().to_owned();
    let http = reqwest::Client::new();
    let t0 = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..CLIENTS {
        let (http, base, token) = (http.clone(), base.clone(), token.clone());
        tasks.spawn(async move {
            for i in (c..N).step_by(CLIENTS) {
                let body = serde_json::json!({ "manifest": manifest(&format!("pub{i}"), "p") });
                let r = http
                    .post(format!("{base}/v1/publish"))
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                    .expect("publish");
                assert!(r.status().is_success(), "publish: {}", r.status());
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("client");
    }
    let s = t0.elapsed().as_secs_f64();
    assert_eq!(node.repo().read(|c| c.len()), N);
    rows.push(format!(
        "| publish {N} manifests through `POST /v1/publish`, {CLIENTS} clients at once | {s:.2} s ({:.0} specs/s) | ≥ 2 000 specs/s |",
        N as f64 / s
    ));
    node.shutdown().await.expect("shutdown");
}

/// This process's user + system CPU time, seconds (Linux).
fn cpu_time() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return f64::NAN;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
    // Fields 14 and 15 (utime, stime) are at 11 and 12 after the `)`.
    (ticks(11) + ticks(12)) / 100.0
}

fn main() {
    let n = std::env::var("ATR_JOIN_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut rows = vec![
        "| measurement | result | goal |".to_owned(),
        "|---|---|---|".to_owned(),
    ];
    rt.block_on(async {
        join(n, &mut rows).await;
        publish(&mut rows).await;
    });
    println!("{}", rows.join("\n"));
}
