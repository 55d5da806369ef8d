//! Issue 15 item 4: what a find answer costs through the HTTP API, full specs and the
//! compact view, side by side in one run with the ancestor's in-process `list_tools(tag)`,
//! and the resident memory per stored spec of the real `atrd` binary.
//!
//! Run (release): `cargo bench -p atrd --bench answers` with the ancestor installed in a
//! throw-away venv (`python3 -m venv /tmp/atr-ancestor && /tmp/atr-ancestor/bin/pip install
//! agentmesh-tool-registry==3.7.0`; another interpreter: `ATR_ANCESTOR_PYTHON`). Prints a
//! Markdown table for docs/benchmarks/node.md.
//!
//! Both sides hold the same N tools (default 10 000, `ATR_BENCH_SPECS`), each a 3-parameter
//! tool with 5 tags out of 50 words, so a tag matches ≈ N/10 tools. The node's store is
//! written before it starts (`Store::put_specs`); the node is the `atrd` binary with its
//! sandbox off. A query is timed from sending the request until the whole answer has been
//! read (keep-alive connection); decoding it into the client's types is timed apart.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use atr_protocol::api::{CompactView, FindResponse};
use atr_protocol::{Manifest, SecretKey, SignedSpec};
use atrd::store::{Store, StoreOptions};

mod support;
use support::{DIGEST, WORDS, pct};

/// 5 distinct tags of tool `i` (a fixed xorshift sequence: the same on both sides).
fn tags_of(i: usize) -> Vec<&'static str> {
    let mut x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut out: Vec<&str> = Vec::new();
    while out.len() < 5 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let w = WORDS[(x % 50) as usize];
        if !out.contains(&w) {
            out.push(w);
        }
    }
    out.sort_unstable();
    out
}

fn manifest(i: usize) -> Manifest {
    let tags = tags_of(i)
        .iter()
        .map(|t| format!("\"{t}\""))
        .collect::<Vec<_>>()
        .join(", ");
    Manifest::from_toml(
        &format!(
            r#"
name = "tool{i}"
version = "1.0.0"
description = "Tool tool{i}: looks things up."
tags = [{tags}]
output_schema = {{ type = "string" }}
[input_schema]
type = "object"
required = ["query", "limit", "verbose"]
properties.query = {{ type = "string", description = "what to look up" }}
properties.limit = {{ type = "integer", description = "at most this many results" }}
properties.verbose = {{ type = "boolean", description = "explain each result" }}
[runtime]
image = "bench:latest"
digest = "{DIGEST}"
"#
        ),
        "bench.toml",
    )
    .expect("bench manifest")
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

/// The `atrd` binary on `dir`, healthy; its API base URL.
async fn start(dir: &std::path::Path, http: &reqwest::Client) -> (Child, String) {
    std::fs::write(dir.join("atrd.toml"), "[sandbox]\nenabled = false\n").expect("config");
    let port = free_port();
    let bin = std::env::var("ATR_BENCH_ATRD").unwrap_or_else(|_| env!("CARGO_BIN_EXE_atrd").into());
    let child = Command::new(bin)
        .args(["--data-dir", dir.to_str().expect("dir")])
        .args(["--api", &format!("127.0.0.1:{port}")])
        .args(["--listen", "/ip4/127.0.0.1/tcp/0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn atrd");
    let base = format!("http://127.0.0.1:{port}");
    let t0 = Instant::now();
    while !http
        .get(format!("{base}/health"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(t0.elapsed() < Duration::from_secs(120), "atrd not healthy");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Settle: RSS after start-up, not during.
    tokio::time::sleep(Duration::from_millis(500)).await;
    (child, base)
}

/// The ancestor's `list_tools(tag)` on the same tools: (p50 ms, p95 ms, mean results, KiB per tool).
fn ancestor(n: usize, queries: usize) -> Option<(f64, f64, f64, f64)> {
    use std::io::Write;
    let python =
        std::env::var("ATR_ANCESTOR_PYTHON").unwrap_or_else(|_| "/tmp/atr-ancestor/bin/python".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/ancestor_list_tools.py");
    let tags: Vec<Vec<&str>> = (0..n).map(tags_of).collect();
    let mut child = Command::new(&python)
        .args([script, &n.to_string(), &queries.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| eprintln!("ancestor not run ({python}: {e})"))
        .ok()?;
    child
        .stdin
        .take()?
        .write_all(serde_json::to_string(&tags).ok()?.as_bytes())
        .ok()?;
    let out = child.wait_with_output().ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| eprintln!("ancestor output: {e}: {}", String::from_utf8_lossy(&out.stdout)))
        .ok()?;
    Some((
        v["list_tools_p50_ms"].as_f64()?,
        v["list_tools_p95_ms"].as_f64()?,
        v["mean_results"].as_f64()?,
        v["rss_per_tool_kib"].as_f64()?,
    ))
}

/// Times `queries` finds by tag (cycling over the 50 words): per query, until the answer is
/// read, and decoding it; also the mean result count.
async fn finds(http: &reqwest::Client, base: &str, view: &str, queries: usize) -> (Vec<f64>, Vec<f64>, f64) {
    let (mut read, mut decode, mut results) = (Vec::new(), Vec::new(), 0usize);
    for q in 0..queries {
        let url = format!("{base}/v1/find?tag={}&limit=1000{view}", WORDS[q % 50]);
        let t = Instant::now();
        let body = http
            .get(&url)
            .send()
            .await
            .expect("find")
            .bytes()
            .await
            .expect("body");
        read.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        let n = if view.is_empty() {
            serde_json::from_slice::<FindResponse>(&body)
                .expect("decode")
                .results
                .len()
        } else {
            serde_json::from_slice::<FindResponse<CompactView>>(&body)
                .expect("decode")
                .results
                .len()
        };
        decode.push(t.elapsed().as_secs_f64() * 1000.0);
        results += n;
    }
    (read, decode, results as f64 / queries as f64)
}

async fn run(rows: &mut Vec<String>) {
    let n: usize = std::env::var("ATR_BENCH_SPECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let queries = 200;
    let full_dir = tempfile::tempdir().expect("tmp");
    let empty_dir = tempfile::tempdir().expect("tmp");
    let specs: Vec<SignedSpec> = (0..n)
        .map(|i| {
            let key = SecretKey::from_seed(&[(i % 250) as u8 + 1; 32]);
            let s = manifest(i)
                .to_spec("bench.toml", key.public(), 1_764_000_000_000 + i as u64, None)
                .expect("spec");
            SignedSpec::sign(s, &key).expect("sign")
        })
        .collect();
    let envelope_bytes: usize = specs.iter().map(|s| s.to_bytes().len()).sum();
    {
        let store = Store::open(
            &full_dir.path().join(atrd::node::STORE_FILE),
            StoreOptions::default(),
        )
        .expect("store");
        for batch in specs.chunks(1000) {
            store.put_specs(batch).expect("put");
        }
    }
    drop(specs);
    let http = reqwest::Client::new();
    let (mut empty, _) = start(empty_dir.path(), &http).await;
    let rss_empty = rss_kib(empty.id());
    let _ = empty.kill();
    let _ = empty.wait();
    let (mut node, base) = start(full_dir.path(), &http).await;
    let rss_start = rss_kib(node.id());

    let anc1 = ancestor(n, queries);
    // First touch of every tag (the render cache is empty): the cold cost.
    let (mut cold, _, _) = finds(&http, &base, "", 50).await;
    let (mut full, mut full_decode, full_n) = finds(&http, &base, "", queries).await;
    // `ATR_BENCH_FULL_ONLY=1`: an `atrd` without the compact view (`ATR_BENCH_ATRD`, e.g. an
    // older build, for a before/after comparison).
    let full_only = std::env::var_os("ATR_BENCH_FULL_ONLY").is_some();
    let (mut compact, mut compact_decode, compact_n) = if full_only {
        (vec![f64::NAN], vec![f64::NAN], 0.0)
    } else {
        finds(&http, &base, "&view=compact", queries).await
    };
    let anc2 = ancestor(n, queries);
    let rss_after = rss_kib(node.id());
    let _ = node.kill();
    let _ = node.wait();

    let anc: Vec<(f64, f64, f64, f64)> = [anc1, anc2].into_iter().flatten().collect();
    let anc_p50 = {
        let mut v: Vec<f64> = anc.iter().map(|a| a.0).collect();
        (!v.is_empty()).then(|| pct(&mut v, 0.5))
    };
    let ratio = |x: f64| anc_p50.map_or_else(|| "–".to_owned(), |a| format!("{:.1}×", a / x));
    for (i, a) in anc.iter().enumerate() {
        rows.push(format!(
            "| ancestor `list_tools(tag)` in-process, run {} ({:.0} results) | p50 {:.2} ms, p95 {:.2} ms | |",
            i + 1,
            a.2,
            a.0,
            a.1
        ));
    }
    let f50 = pct(&mut full, 0.5);
    rows.push(format!(
        "| atr `GET /v1/find?tag=…&limit=1000`, full specs ({full_n:.0} results) | p50 {f50:.2} ms, p95 {:.2} ms (decode into `FindResponse` p50 {:.2} ms) | {} (goal ≥ 5×) |",
        pct(&mut full, 0.95),
        pct(&mut full_decode, 0.5),
        ratio(f50)
    ));
    let c50 = pct(&mut compact, 0.5);
    rows.push(format!(
        "| atr … `&view=compact` ({compact_n:.0} results) | p50 {c50:.2} ms, p95 {:.2} ms (decode p50 {:.2} ms) | {} (goal ≥ 20×) |",
        pct(&mut compact, 0.95),
        pct(&mut compact_decode, 0.5),
        ratio(c50)
    ));
    rows.push(format!(
        "| atr full specs, first query of each tag (nothing rendered yet, 50 queries) | p50 {:.2} ms | {} |",
        pct(&mut cold, 0.5),
        ratio(pct(&mut cold, 0.5))
    ));
    let per = |kib: u64| kib.saturating_sub(rss_empty) as f64 / n as f64;
    rows.push(format!(
        "| RSS per stored spec: after start / after the finds ({n} specs, {:.0} B envelope each; empty node {} MiB) | {:.1} / {:.1} KiB | ancestor {} KiB per tool |",
        envelope_bytes as f64 / n as f64,
        rss_empty / 1024,
        per(rss_start),
        per(rss_after),
        anc.first().map_or_else(|| "–".into(), |a| format!("{:.1}", a.3))
    ));
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut rows = vec![
        "| measurement | result | vs ancestor p50 |".to_owned(),
        "|---|---|---|".to_owned(),
    ];
    rt.block_on(run(&mut rows));
    println!("{}", rows.join("\n"));
}
