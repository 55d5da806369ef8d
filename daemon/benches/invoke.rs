//! Invocation benchmarks against the real Docker Engine.
//!
//! Run: `cargo bench -p atrd --bench invoke` (needs the `atr-example-tools:latest`
//! image: `cargo run -p atr-testnet -- tools-image`). Prints a Markdown table for
//! docs/benchmarks/invoke.md:
//! - a fresh hardened container cycle, broken down (create, attach, start, run, wait;
//!   removal of an exited container runs off the critical path);
//! - `docker run --rm -i` of the same image and command, in the same run;
//! - end to end across two nodes on loopback (caller without a sandbox → provider);
//! - sustained throughput of one provider with 4 concurrent callers, and its RSS;
//! - egress (issue 17): `http_fetch` GETting a small page through the node's egress proxy
//!   (internal network, token, allowlist, byte counting) against the no-network `echo` fresh
//!   cycle, interleaved in one phase so both see the same load.
//!
//! `ATR_BENCH_ONLY=egress` runs only the egress phase.

use std::io::Write;
use std::time::{Duration, Instant};

use atr_protocol::api::InvokeRequest;
use atr_protocol::spec::Limits;
use atrd::Node;
use atrd::config::Config;
use atrd::identity::Identity;
use atrd::sandbox::{RunRequest, Sandbox, SandboxOptions, Timings};

const IMAGE: &str = "atr-example-tools:latest";
const RUNS: usize = 60;

fn pct(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn row(name: &str, v: &[f64]) -> String {
    format!(
        "| {name} | {:.1} | {:.1} | {} |",
        pct(v, 0.5),
        pct(v, 0.95),
        v.len()
    )
}

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|k| k.parse::<f64>().ok()))
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn config(dir: &std::path::Path, boot: Vec<libp2p::Multiaddr>, sandbox: bool) -> Config {
    let mut c = Config::with_data_dir(dir);
    c.api = "127.0.0.1:0".parse().expect("addr");
    c.network.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().expect("addr")];
    c.network.bootstrap = boot;
    c.network.heartbeat = Duration::from_millis(100);
    c.network.ip_colocation_penalty = false;
    c.sandbox.enabled = sandbox;
    c.sandbox.options.max_concurrent = 4;
    c
}

async fn fresh_cycle(rows: &mut Vec<String>) -> f64 {
    let sb = Sandbox::connect("bench", SandboxOptions::default())
        .await
        .expect("docker");
    let image = sb
        .resolve_image(IMAGE)
        .await
        .expect("image: run `cargo run -p atr-testnet -- tools-image`");
    let limits = Limits {
        timeout_ms: 10_000,
        memory_bytes: 64 << 20,
        cpu_millis: 500,
        pids: 16,
        max_output_bytes: 1 << 20,
    };
    let cmd = vec!["/bin/echo".to_owned()];
    let mut all: Vec<Timings> = Vec::new();
    let mut total = Vec::new();
    for i in 0..RUNS + 5 {
        let inv = format!("{i:032x}");
        let t0 = Instant::now();
        let out = sb
            .run(RunRequest {
                image: &image,
                command: &cmd,
                workdir: None,
                limits: &limits,
                input: br#"{"hello":"world"}"#,
                invocation: &inv,
                permissions: &atr_protocol::policy::Permissions::EMPTY,
                egress: None,
                secrets: Default::default(),
            })
            .await
            .expect("run");
        assert_eq!(out.stdout.trim_ascii(), br#"{"hello":"world"}"#);
        if i >= 5 {
            total.push(t0.elapsed().as_secs_f64() * 1000.0);
            all.push(out.timings);
        }
    }
    let col = |f: fn(&Timings) -> f64| all.iter().map(f).collect::<Vec<_>>();
    rows.push(row("create", &col(|t| t.create_ms)));
    rows.push(row("attach", &col(|t| t.attach_ms)));
    rows.push(row("start", &col(|t| t.start_ms)));
    rows.push(row("run (stdin → stdout EOF)", &col(|t| t.run_ms)));
    rows.push(row("wait (exit code)", &col(|t| t.wait_ms)));
    rows.push(row("**fresh hardened cycle, total**", &total));
    pct(&total, 0.5)
}

async fn pooled_cycle(rows: &mut Vec<String>) -> f64 {
    let opts = SandboxOptions {
        warm_pool: 2,
        ..Default::default()
    };
    let sb = Sandbox::connect("bench-pool", opts).await.expect("docker");
    let image = sb.resolve_image(IMAGE).await.expect("image");
    let limits = Limits {
        timeout_ms: 10_000,
        memory_bytes: 64 << 20,
        cpu_millis: 500,
        pids: 16,
        max_output_bytes: 1 << 20,
    };
    let cmd = vec!["/bin/echo".to_owned()];
    let mut total = Vec::new();
    for i in 0..RUNS + 5 {
        let inv = format!("{i:032x}");
        // Calls spaced by 250 ms: the pool refills behind each call (a start
        // takes ≈100 ms); back-to-back calls faster than that fall back to fresh.
        tokio::time::sleep(Duration::from_millis(250)).await;
        let t0 = Instant::now();
        let out = sb
            .run(RunRequest {
                image: &image,
                command: &cmd,
                workdir: None,
                limits: &limits,
                input: br#"{"hello":"world"}"#,
                invocation: &inv,
                permissions: &atr_protocol::policy::Permissions::EMPTY,
                egress: None,
                secrets: Default::default(),
            })
            .await
            .expect("run");
        assert_eq!(out.stdout.trim_ascii(), br#"{"hello":"world"}"#);
        if i >= 5 {
            total.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
    }
    sb.drain_pool();
    tokio::time::sleep(Duration::from_millis(500)).await;
    rows.push(row(
        "**warm pool (2 pre-started per tool), claim → output**",
        &total,
    ));
    pct(&total, 0.5)
}

fn docker_run(rows: &mut Vec<String>) -> f64 {
    let mut v = Vec::new();
    for i in 0..RUNS + 5 {
        let t0 = Instant::now();
        let mut child = std::process::Command::new("docker")
            .args([
                "run",
                "--rm",
                "-i",
                "--network",
                "none",
                "--read-only",
                "--user",
                "65534:65534",
            ])
            .args([
                "--memory",
                "64m",
                "--memory-swap",
                "64m",
                "--pids-limit",
                "16",
                "--cap-drop",
                "ALL",
            ])
            .args([
                "--security-opt",
                "no-new-privileges",
                "--log-driver",
                "none",
                IMAGE,
                "/bin/echo",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("docker cli");
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(br#"{"hello":"world"}"#);
        }
        let out = child.wait_with_output().expect("docker run");
        assert!(out.status.success());
        if i >= 5 {
            v.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
    }
    rows.push(row("`docker run --rm -i` (same image, same flags), total", &v));
    pct(&v, 0.5)
}

/// A provider (sandbox on, `warm_pool` pre-started containers) and a caller
/// without a sandbox, with `echo` published on the provider and known to the caller.
struct TwoNodes {
    provider: Node,
    caller: Node,
    echo: atr_protocol::ToolId,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

async fn two_nodes(seed: u8, warm_pool: usize) -> TwoNodes {
    let d1 = tempfile::tempdir().expect("tmp");
    let d2 = tempfile::tempdir().expect("tmp");
    let mut pc = config(d1.path(), vec![], true);
    pc.sandbox.options.warm_pool = warm_pool;
    let provider = Node::bind_with_identity(pc, Some(Identity::from_seed([seed; 32])))
        .await
        .expect("provider");
    let caller = Node::bind_with_identity(
        config(d2.path(), provider.dial_addrs(), false),
        Some(Identity::from_seed([seed + 1; 32])),
    )
    .await
    .expect("caller");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk/examples/manifests/echo.toml");
    let m =
        atr_protocol::Manifest::from_toml(&std::fs::read_to_string(&root).expect("manifest"), "echo.toml")
            .expect("manifest");
    let spec = provider
        .services()
        .publisher
        .publish(m, "echo.toml".into())
        .await
        .expect("publish")
        .spec;
    let t0 = Instant::now();
    while caller.repo().spec(&spec.id()).is_none() {
        assert!(t0.elapsed() < Duration::from_secs(20), "spec did not propagate");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    TwoNodes {
        provider,
        caller,
        echo: spec.id(),
        _dirs: (d1, d2),
    }
}

fn echo_request(id: atr_protocol::ToolId, input: serde_json::Value) -> InvokeRequest {
    InvokeRequest {
        id: Some(id),
        name: None,
        version: None,
        publisher: None,
        input,
    }
}

/// `RUNS` sequential invocations (after 5 warm-up ones), `spacing` apart; latencies in ms.
async fn sequential(t: &TwoNodes, spacing: Duration) -> Vec<f64> {
    let mut v = Vec::new();
    for i in 0..RUNS + 5 {
        tokio::time::sleep(spacing).await;
        let started = Instant::now();
        let r = t
            .caller
            .services()
            .caller
            .invoke(echo_request(t.echo, serde_json::json!({ "n": i })))
            .await
            .expect("invoke");
        assert_eq!(r.output["n"], serde_json::json!(i));
        if i >= 5 {
            v.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    v
}

async fn end_to_end_pool(rows: &mut Vec<String>) {
    let t = two_nodes(232, 2).await;
    let v = sequential(&t, Duration::from_millis(250)).await;
    rows.push(row(
        "**end to end across two nodes, provider with a warm pool**",
        &v,
    ));
    t.caller.shutdown().await.expect("shutdown");
    t.provider.shutdown().await.expect("shutdown");
}

async fn end_to_end(rows: &mut Vec<String>) -> (f64, f64, f64, usize) {
    let t = two_nodes(230, 0).await;
    let v = sequential(&t, Duration::ZERO).await;
    rows.push(row(
        "**end to end across two nodes** (caller API call → verified receipt)",
        &v,
    ));

    // Sustained throughput: 4 concurrent callers, bounded by count and time.
    let rss0 = rss_mb();
    let started = Instant::now();
    let budget = Duration::from_secs(20);
    let mut handles = Vec::new();
    for w in 0..4 {
        let st = t.caller.services().caller.clone();
        let id = t.echo;
        handles.push(tokio::spawn(async move {
            let mut ok = 0usize;
            let mut failed = 0usize;
            for i in 0..150 {
                if started.elapsed() > budget {
                    break;
                }
                match st
                    .invoke(echo_request(id, serde_json::json!({ "w": w, "i": i })))
                    .await
                {
                    Ok(_) => ok += 1,
                    Err(_) => failed += 1,
                }
            }
            (ok, failed)
        }));
    }
    let mut ok = 0;
    let mut failed = 0;
    for h in handles {
        let (o, f) = h.await.expect("join");
        ok += o;
        failed += f;
    }
    let secs = started.elapsed().as_secs_f64();
    let rss1 = rss_mb();
    t.caller.shutdown().await.expect("shutdown");
    t.provider.shutdown().await.expect("shutdown");
    (pct(&v, 0.5), ok as f64 / secs, rss1 - rss0, failed)
}

/// A small HTTP server on the gateway of a bridge network of the bench's own; its address.
async fn bench_web(docker: &bollard::Docker) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let net = "atr-bench-web";
    let _ = docker.remove_network(net).await;
    docker
        .create_network(bollard::models::NetworkCreateRequest {
            name: net.into(),
            driver: Some("bridge".into()),
            ..Default::default()
        })
        .await
        .expect("create bench network");
    let info = docker.inspect_network(net, None).await.expect("inspect");
    let ip: std::net::IpAddr = info
        .ipam
        .and_then(|i| i.config)
        .and_then(|c| c.first().and_then(|c| c.gateway.clone()))
        .expect("gateway")
        .parse()
        .expect("ip");
    let l = tokio::net::TcpListener::bind((ip, 0)).await.expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") && got.len() < 16384 {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let body = "{\"hello\":\"world\"}";
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    addr
}

async fn egress_cycle(rows: &mut Vec<String>) -> (f64, f64) {
    use atr_protocol::policy::{EgressRule, Permissions};
    use atr_protocol::sandbox::EgressAttachment;
    use atrd::egress::{EgressProxy, ProxyConfig, network};
    let sb = Sandbox::connect("bench-egress", SandboxOptions::default())
        .await
        .expect("docker");
    let image = sb.resolve_image(IMAGE).await.expect("image");
    let web = bench_web(sb.docker()).await;
    let egress_net = "atr-egress-bench";
    let net = network::ensure(sb.docker(), egress_net, None)
        .await
        .expect("egress network");
    let gw = net.gateway;
    let config = ProxyConfig {
        allow_networks: vec![format!("{}/32", web.ip()).parse().expect("net")],
        hosts: std::collections::HashMap::from([("web.bench".to_owned(), web.ip())]),
        ..Default::default()
    };
    let proxy = EgressProxy::start(
        std::net::SocketAddr::new(gw.into(), 0),
        config,
        Default::default(),
    )
    .await
    .expect("proxy");
    // As a node runs it: the host firewall chain in front of INPUT for the bridge.
    let firewall =
        atrd::egress::firewall::HostFirewall::install(egress_net, &net.bridge, gw, proxy.addr().port())
            .await
            .expect("egress host firewall (run as root)");
    let perms = Permissions {
        egress: vec![EgressRule::parse(&format!("web.bench:{}", web.port())).expect("rule")],
        ..Default::default()
    };
    let limits = Limits {
        timeout_ms: 10_000,
        memory_bytes: 64 << 20,
        cpu_millis: 500,
        pids: 16,
        max_output_bytes: 1 << 20,
    };
    let echo = vec!["/bin/echo".to_owned()];
    let fetch = vec!["/bin/http_fetch".to_owned()];
    let input = format!(r#"{{"url":"http://web.bench:{}/"}}"#, web.port());
    let (mut plain, mut via) = (Vec::new(), Vec::new());
    // Where the difference goes: `start` (the network attachment happens there) and `run`
    // (stdin → stdout EOF: the GET through the proxy) of each row.
    let (mut plain_start, mut via_start, mut plain_run, mut via_run) = (vec![], vec![], vec![], vec![]);
    for i in 0..RUNS + 5 {
        let inv = format!("{i:032x}");
        let t0 = Instant::now();
        let out = sb
            .run(RunRequest {
                image: &image,
                command: &echo,
                workdir: None,
                limits: &limits,
                input: br#"{"hello":"world"}"#,
                invocation: &inv,
                permissions: &Permissions::EMPTY,
                egress: None,
                secrets: Default::default(),
            })
            .await
            .expect("run");
        assert_eq!(out.stdout.trim_ascii(), br#"{"hello":"world"}"#);
        let plain_ms = t0.elapsed().as_secs_f64() * 1000.0;
        let plain_t = out.timings;
        let grant = proxy.grant(&perms);
        let t0 = Instant::now();
        let out = sb
            .run(RunRequest {
                image: &image,
                command: &fetch,
                workdir: None,
                limits: &limits,
                input: input.as_bytes(),
                invocation: &inv,
                permissions: &perms,
                egress: Some(EgressAttachment {
                    network: egress_net.into(),
                    proxy_url: grant.proxy_url(),
                }),
                secrets: Default::default(),
            })
            .await
            .expect("run");
        let via_ms = t0.elapsed().as_secs_f64() * 1000.0;
        let via_t = out.timings;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(v["status"], 200, "{v}");
        assert!(grant.usage().in_bytes > 0);
        if i >= 5 {
            plain.push(plain_ms);
            via.push(via_ms);
            plain_start.push(plain_t.start_ms);
            via_start.push(via_t.start_ms);
            plain_run.push(plain_t.run_ms);
            via_run.push(via_t.run_ms);
        }
    }
    sb.settle().await;
    firewall.remove().await;
    let _ = sb.docker().remove_network("atr-bench-web").await;
    rows.push(row(
        "fresh cycle, no network (`echo`, interleaved with the next row)",
        &plain,
    ));
    rows.push(row(
        "**egress: `http_fetch` small GET through the proxy, fresh cycle**",
        &via,
    ));
    rows.push(row("… of which start, no network (`echo`)", &plain_start));
    rows.push(row(
        "… of which start, egress network attached (`http_fetch`)",
        &via_start,
    ));
    rows.push(row("… of which run (stdin → stdout EOF), `echo`", &plain_run));
    rows.push(row(
        "… of which run (stdin → stdout EOF), `http_fetch` GET through the proxy",
        &via_run,
    ));
    (pct(&plain, 0.5), pct(&via, 0.5))
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut rows = vec![
        "| step | p50 ms | p95 ms | runs |".to_owned(),
        "|---|---|---|---|".to_owned(),
    ];
    if std::env::var("ATR_BENCH_ONLY").as_deref() == Ok("egress") {
        let (plain, via) = rt.block_on(egress_cycle(&mut rows));
        println!("{}", rows.join("\n"));
        println!();
        println!(
            "- egress overhead (p50 http_fetch through the proxy − p50 no-network echo, same phase): {:.1} ms ({:.2}× the no-network cycle)",
            via - plain,
            via / plain
        );
        return;
    }
    let (fresh, cli, (e2e, tput, rss, failed)) = rt.block_on(async {
        let fresh = fresh_cycle(&mut rows).await;
        let _ = pooled_cycle(&mut rows).await;
        let cli = docker_run(&mut rows);
        let e = end_to_end(&mut rows).await;
        end_to_end_pool(&mut rows).await;
        let _ = egress_cycle(&mut rows).await;
        (fresh, cli, e)
    });
    println!("{}", rows.join("\n"));
    println!();
    println!(
        "- fresh cycle vs `docker run --rm -i`: {:.2}× faster (p50 {fresh:.1} ms vs {cli:.1} ms)",
        cli / fresh
    );
    println!(
        "- network + protocol overhead (end to end p50 − fresh cycle p50): {:.1} ms",
        e2e - fresh
    );
    println!(
        "- sustained: {tput:.1} invocations/s from 4 concurrent callers through one provider (4 slots), {failed} failed; process RSS change over the run {rss:+.1} MiB"
    );
}
