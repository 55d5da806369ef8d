//! Node benchmarks (a small harness, not criterion: it drives real nodes).
//!
//! Run: `cargo bench -p atrd --bench node` — prints a Markdown table for
//! docs/benchmarks/node.md. Measures:
//! - publish → discoverable on every node of 5 in-process nodes on loopback;
//! - warm local find by tag, search, at 10 000 specs;
//! - restart with 10 000 cached specs → first find answered.

use std::time::{Duration, Instant};

use atr_protocol::query::FindQuery;
use atr_protocol::{Manifest, SecretKey, SignedSpec};
use atrd::Node;
use atrd::identity::Identity;

mod support;
use support::{DIGEST, WORDS, config, pct};

fn manifest(name: &str, tags: &[&str], words: &str) -> Manifest {
    let tags = tags
        .iter()
        .map(|t| format!("\"{t}\""))
        .collect::<Vec<_>>()
        .join(", ");
    Manifest::from_toml(
        &format!(
            r#"
name = "{name}"
version = "1.0.0"
description = "Tool {name}: {words}."
tags = [{tags}]
input_schema = {{ type = "object", properties = {{ q = {{ type = "string" }} }} }}
[runtime]
image = "bench:latest"
digest = "{DIGEST}"
"#
        ),
        "bench.toml",
    )
    .expect("bench manifest")
}

async fn propagation(rows: &mut Vec<String>) {
    let mut dirs = Vec::new();
    let mut nodes: Vec<Node> = Vec::new();
    for i in 0..5u8 {
        let d = tempfile::tempdir().expect("tmp");
        let boot = nodes.last().map(|n| n.dial_addrs()).unwrap_or_default();
        let n = Node::bind_with_identity(config(d.path(), boot), Some(Identity::from_seed([200 + i; 32])))
            .await
            .expect("node");
        nodes.push(n);
        dirs.push(d);
    }
    // Let the gossip mesh form.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut every = Vec::new();
    let mut farthest = Vec::new();
    for i in 0..60 {
        let m = manifest(&format!("prop{i}"), &["bench"], "propagation");
        let t0 = Instant::now();
        let spec = nodes[0]
            .services()
            .publisher
            .publish(m, "bench.toml".into())
            .await
            .expect("publish")
            .spec;
        let id = spec.id();
        let mut seen = [None::<f64>; 5];
        seen[0] = Some(t0.elapsed().as_secs_f64() * 1000.0);
        while seen.iter().any(Option::is_none) && t0.elapsed() < Duration::from_secs(10) {
            for (k, n) in nodes.iter().enumerate() {
                if seen[k].is_none() && n.repo().spec(&id).is_some() {
                    seen[k] = Some(t0.elapsed().as_secs_f64() * 1000.0);
                }
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        if i < 10 {
            continue; // warm-up
        }
        let all: Vec<f64> = seen.iter().map(|s| s.unwrap_or(10_000.0)).collect();
        every.push(all.iter().cloned().fold(0.0, f64::max));
        farthest.push(all[4]);
    }
    rows.push(format!(
        "| publish → discoverable on all 5 nodes (50 publishes) | p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms | p95 ≤ 250 ms |",
        pct(&mut every.clone(), 0.5),
        pct(&mut every.clone(), 0.95),
        pct(&mut every, 1.0)
    ));
    rows.push(format!(
        "| … on node E (4 hops away in the bootstrap chain) | p50 {:.1} ms, p95 {:.1} ms | |",
        pct(&mut farthest.clone(), 0.5),
        pct(&mut farthest, 0.95)
    ));
    for n in nodes {
        n.shutdown().await.expect("shutdown");
    }
}

async fn at_scale(rows: &mut Vec<String>) {
    let dir = tempfile::tempdir().expect("tmp");
    let node = Node::bind_with_identity(config(dir.path(), vec![]), Some(Identity::from_seed([220; 32])))
        .await
        .expect("node");
    let t0 = Instant::now();
    let specs: Vec<SignedSpec> = (0..10_000u32)
        .map(|i| {
            let key = SecretKey::from_seed(&[(i % 250) as u8 + 1; 32]);
            let tags = [
                WORDS[(i % 50) as usize],
                WORDS[((i / 50) % 50) as usize],
                WORDS[((i * 7) % 50) as usize],
            ];
            let mut tags: Vec<&str> = tags.to_vec();
            tags.sort();
            tags.dedup();
            let desc = format!(
                "{} {} {}",
                WORDS[(i * 3 % 50) as usize],
                WORDS[(i * 11 % 50) as usize],
                WORDS[(i * 13 % 50) as usize]
            );
            let spec = manifest(&format!("tool{i}"), &tags, &desc)
                .to_spec("b.toml", key.public(), 1_764_000_000_000 + i as u64, None)
                .expect("spec");
            SignedSpec::sign(spec, &key).expect("sign")
        })
        .collect();
    let generated = t0.elapsed();
    let t0 = Instant::now();
    let ingest = node.services().ingest.clone();
    tokio::task::spawn_blocking(move || {
        for s in specs {
            ingest.store_spec(s).expect("store");
        }
    })
    .await
    .expect("join");
    let ingest_s = t0.elapsed().as_secs_f64();
    rows.push(format!(
        "| store 10 000 verified specs (one redb transaction each) | {:.2} s ({:.0} µs/spec; generation {:.1} s) | |",
        ingest_s,
        ingest_s * 1e6 / 10_000.0,
        generated.as_secs_f64()
    ));

    let mut find = Vec::new();
    let mut counts = 0;
    for i in 0..2000 {
        let q = FindQuery {
            tag: Some(WORDS[i % 50].into()),
            limit: Some(100),
            ..Default::default()
        };
        let t = Instant::now();
        counts += node.repo().read(|cat| cat.find(&q, None).len());
        find.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let mut find_all = Vec::new();
    for i in 0..200 {
        let q = FindQuery {
            tag: Some(WORDS[i % 50].into()),
            limit: Some(1000),
            ..Default::default()
        };
        let t = Instant::now();
        counts += node.repo().read(|cat| cat.find(&q, None).len());
        find_all.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let mut search = Vec::new();
    for i in 0..2000 {
        let text = format!("{} {}", WORDS[i % 50], WORDS[(i * 7) % 50]);
        let t = Instant::now();
        counts += node.repo().read(|cat| cat.search(&text, 20).len());
        search.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    assert!(counts > 0);
    let f50 = pct(&mut find.clone(), 0.5);
    rows.push(format!(
        "| warm local find by tag, 10 000 specs, ≈600 matches, first 100 (2000 queries) | p50 {:.3} ms, p99 {:.3} ms | p99 ≤ 2 ms |",
        f50,
        pct(&mut find, 0.99)
    ));
    let fa50 = pct(&mut find_all.clone(), 0.5);
    rows.push(format!(
        "| find by tag returning every match (≈600), vs the Python `agentmesh-tool-registry` v3 `list_tools(tag=…)` 17 ms | p50 {:.3} ms ({:.0}× faster) | ≥ 10× |",
        fa50,
        17.0 / fa50
    ));
    rows.push(format!(
        "| full-text search (BM25), 2 terms, top 20, 10 000 specs (2000 queries) | p50 {:.3} ms, p95 {:.3} ms | p95 ≤ 10 ms |",
        pct(&mut search.clone(), 0.5),
        pct(&mut search, 0.95)
    ));

    node.shutdown().await.expect("shutdown");
    let t0 = Instant::now();
    let node = Node::bind_with_identity(config(dir.path(), vec![]), Some(Identity::from_seed([220; 32])))
        .await
        .expect("restart");
    let q = FindQuery {
        tag: Some("weather".into()),
        ..Default::default()
    };
    let n = node.repo().read(|cat| cat.find(&q, None).len());
    let restart = t0.elapsed().as_secs_f64() * 1000.0;
    assert!(n > 0);
    rows.push(format!(
        "| restart with 10 000 cached specs → first find answered | {restart:.0} ms | ≤ 1000 ms |"
    ));
    node.shutdown().await.expect("shutdown");
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut rows = vec![
        "| measurement | result | goal |".to_owned(),
        "|---|---|---|".to_owned(),
    ];
    rt.block_on(async {
        propagation(&mut rows).await;
        at_scale(&mut rows).await;
    });
    println!("{}", rows.join("\n"));
}
