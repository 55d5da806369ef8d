//! Issue 17 against the real Docker Engine: a tool with declared egress reaches exactly its
//! allowed host through the node's proxy, and nothing else; secrets reach only the container.
//!
//! The destination is a small HTTP server this test runs on the gateway address of a Docker
//! bridge network it creates (the project's own network; never an outside address). The node's
//! egress config allows that one address (`allow_networks`) and names it `web.atr-test`
//! (`hosts`), as an operator with a service on a private network would.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use atr_protocol::api::{InvokeRequest, InvokeResponse};
use atr_protocol::policy::Policy;
use atr_protocol::receipt::InvocationStatus;
use atrd::Node;
use atrd::config::HostFirewallMode;
use atrd::identity::Identity;
use bollard::Docker;
use bollard::models::NetworkCreateRequest;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::*;

/// The test's HTTP server on a Docker bridge network's gateway address.
struct Web {
    docker: Docker,
    network: String,
    ip: IpAddr,
    port: u16,
}

impl Web {
    /// Creates bridge network `network` and serves on its gateway. With `token`, answers
    /// 401 unless `Authorization: Bearer <token>` is sent.
    async fn start(network: &str, token: Option<String>) -> Self {
        let docker = Docker::connect_with_local_defaults().unwrap();
        let _ = docker.remove_network(network).await;
        docker
            .create_network(NetworkCreateRequest {
                name: network.into(),
                driver: Some("bridge".into()),
                labels: Some(HashMap::from([("atr.test".to_owned(), "1".to_owned())])),
                ..Default::default()
            })
            .await
            .unwrap();
        let info = docker.inspect_network(network, None).await.unwrap();
        let ip: IpAddr = info.ipam.unwrap().config.unwrap()[0]
            .gateway
            .as_ref()
            .unwrap()
            .parse()
            .unwrap();
        let l = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let token = token.clone();
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    let mut buf = [0u8; 2048];
                    while !got.windows(4).any(|w| w == b"\r\n\r\n") && got.len() < 16384 {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&got).to_string();
                    let authorized =
                        token.is_none_or(|t| head.contains(&format!("Authorization: Bearer {t}\r\n")));
                    let (status, body) = if authorized {
                        ("200 OK", "hello from the allowed host")
                    } else {
                        ("401 Unauthorized", "missing or wrong token")
                    };
                    let resp = format!(
                        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = s.write_all(resp.as_bytes()).await;
                    let _ = s.shutdown().await;
                });
            }
        });
        Self {
            docker,
            network: network.into(),
            ip,
            port,
        }
    }

    async fn stop(self) {
        let _ = self.docker.remove_network(&self.network).await;
    }
}

/// A provider with egress on network `egress_net`, allowed to reach `web`.
async fn provider(seed: u8, egress_net: &str, web: &Web) -> TestNode {
    provider_with(seed, egress_net, web, HostFirewallMode::Atr).await
}

/// [`provider`], with the host firewall kept by `firewall`.
async fn provider_with(seed: u8, egress_net: &str, web: &Web, firewall: HostFirewallMode) -> TestNode {
    ensure_tools_image();
    let dir = tempfile::tempdir().unwrap();
    let mut c = test_config(dir.path());
    c.sandbox.enabled = true;
    c.egress.enabled = true;
    c.egress.host_firewall = firewall;
    c.egress.network = egress_net.into();
    c.egress.proxy.allow_networks = vec![format!("{}/32", web.ip).parse().unwrap()];
    c.egress.proxy.hosts = HashMap::from([("web.atr-test".to_owned(), web.ip)]);
    let node = Node::bind_with_identity(c, Some(Identity::from_seed([seed; 32])))
        .await
        .unwrap();
    assert!(
        node.sandbox().is_some(),
        "a Docker Engine is required for egress tests"
    );
    TestNode { node, _dir: dir }
}

async fn egress_gateway(net: &str) -> IpAddr {
    let docker = Docker::connect_with_local_defaults().unwrap();
    let info = docker.inspect_network(net, None).await.unwrap();
    assert_eq!(info.internal, Some(true), "the egress network must be internal");
    info.ipam.unwrap().config.unwrap()[0]
        .gateway
        .as_ref()
        .unwrap()
        .parse()
        .unwrap()
}

async fn publish(n: &Node, tool: &str, egress: &[String]) -> atr_protocol::SignedSpec {
    let mut m = tool_manifest(tool);
    m.permissions.egress = egress.to_vec();
    n.services()
        .publisher
        .publish(m, format!("{tool}.toml"))
        .await
        .unwrap_or_else(|e| panic!("publish {tool}: {e}"))
        .spec
}

async fn call(n: &Node, id: atr_protocol::ToolId, input: Value) -> Result<InvokeResponse, String> {
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
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Docker Engine"]
async fn issue_17_egress_reaches_only_the_allowed_host() {
    init_tracing();
    let web = Web::start("atr-test-web-egress", None).await;
    let t = provider(171, "atr-egress-test-a", &web).await;
    let n = &t.node;
    let gw = egress_gateway("atr-egress-test-a").await;
    let api = n.api_addr().port();
    let allowed = format!("web.atr-test:{}", web.port);
    let spec = publish(
        n,
        "http_fetch",
        &[
            allowed.clone(),
            // Declared on purpose, refused by the proxy all the same: the node's API on the
            // host's loopback, and the Docker host gateway.
            format!("127.0.0.1:{api}"),
            format!("{gw}:{api}"),
        ],
    )
    .await;

    // The allowed host is reached; the receipt binds the policy and counts the bytes.
    let r = call(n, spec.id(), json!({"url": format!("http://{allowed}/")}))
        .await
        .unwrap();
    assert_eq!(r.status, InvocationStatus::Ok, "{}", r.output);
    assert_eq!(r.output["status"], 200, "{}", r.output);
    assert_eq!(r.output["body"], "hello from the allowed host");
    assert_eq!(r.receipt.policy_hash, Some(Policy::of(spec.value()).hash()));
    let usage = r.receipt.usage.expect("usage");
    assert!(
        usage.egress_in_bytes > 27 && usage.egress_out_bytes > 0,
        "{usage:?}"
    );
    assert!(usage.wall_ms > 0);

    // Everything else is refused by the proxy with 403.
    for url in [
        format!("http://other.atr-test:{}/", web.port), // not on the list
        format!("http://{}:{}/", web.ip, web.port),     // raw IP, not declared
        format!("http://127.0.0.1:{api}/v1/status"),    // host loopback / node API
        format!("http://{gw}:{api}/v1/status"),         // Docker host gateway
    ] {
        let r = call(n, spec.id(), json!({"url": url})).await.unwrap();
        assert_eq!(r.output["status"], 403, "{url}: {}", r.output);
        let u = r.receipt.usage.unwrap();
        assert_eq!(u.egress_in_bytes, 0, "{url}: {u:?}");
    }

    // No DNS inside the container, for outside names or the test's own.
    for name in ["web.atr-test", "example.com", "localhost.localdomain"] {
        let r = call(n, spec.id(), json!({"lookup": name})).await.unwrap();
        assert!(r.output.get("error").is_some(), "{name} resolved: {}", r.output);
    }
    // No route around the proxy to the host's API (bound to loopback) nor to the allowed
    // server (bound to another bridge's gateway, one of the host's own addresses): the node's
    // host firewall chain drops it (`issue_17_egress_cannot_reach_host_services_directly`).
    for addr in [format!("{gw}:{api}"), format!("{}:{}", web.ip, web.port)] {
        let r = call(n, spec.id(), json!({"direct": addr})).await.unwrap();
        assert_eq!(r.output["connected"], false, "{addr}: {}", r.output);
    }
    n.sandbox().unwrap().settle().await;
    t.node.shutdown().await.unwrap();
    web.stop().await;
}

/// `iptables -S <chain>` (empty when the chain does not exist).
fn chain_rules(prog: &str, chain: &str) -> String {
    let out = std::process::Command::new(prog)
        .args(["-w", "5", "-S", chain])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The egress host bypass (security.md, "Egress"): traffic from a tool to the host's own
/// addresses goes through the host's INPUT chain, which Docker does not filter. A TCP server
/// on the host bound to `0.0.0.0` is reachable from an egress tool at the egress gateway and
/// at the host's other addresses when nothing closes it (the first node, whose operator says
/// the host firewall is theirs and did nothing: this shows the probe works), and is not once
/// atrd installs its chain (the second node), while the allowed host through the proxy
/// still answers. At shutdown the chain is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Docker Engine and root (iptables)"]
async fn issue_17_egress_cannot_reach_host_services_directly() {
    init_tracing();
    let web = Web::start("atr-test-web-bypass", None).await;
    // A service on every host address.
    let host = tokio::net::TcpListener::bind(("0.0.0.0", 0)).await.unwrap();
    let port = host.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((s, _)) = host.accept().await {
            drop(s);
        }
    });
    let allowed = format!("web.atr-test:{}", web.port);
    let probe = |gw: IpAddr| [format!("{gw}:{port}"), format!("{}:{port}", web.ip)];

    // Without the chain: the bypass exists.
    let net = "atr-egress-test-open";
    let t = provider_with(174, net, &web, HostFirewallMode::Operator).await;
    let gw = egress_gateway(net).await;
    assert_eq!(
        chain_rules("iptables", &atrd::egress::firewall::chain_for(net)),
        ""
    );
    let spec = publish(&t.node, "http_fetch", std::slice::from_ref(&allowed)).await;
    for addr in probe(gw) {
        let r = call(&t.node, spec.id(), json!({"direct": addr})).await.unwrap();
        assert_eq!(
            r.output["connected"], true,
            "control: {addr} should be open: {}",
            r.output
        );
    }
    t.node.shutdown().await.unwrap();
    let docker = Docker::connect_with_local_defaults().unwrap();
    atrd::egress::network::remove(&docker, net).await;

    // With atrd's chain: closed, but the proxy still works.
    let net = "atr-egress-test-closed";
    let t = provider_with(175, net, &web, HostFirewallMode::Atr).await;
    let gw = egress_gateway(net).await;
    let chain = atrd::egress::firewall::chain_for(net);
    let rules = chain_rules("iptables", &chain);
    assert!(rules.contains("-p tcp") && rules.contains("-j DROP"), "{rules}");
    let spec = publish(&t.node, "http_fetch", std::slice::from_ref(&allowed)).await;
    for addr in probe(gw) {
        let r = call(&t.node, spec.id(), json!({"direct": addr})).await.unwrap();
        assert_eq!(
            r.output["connected"], false,
            "{addr} reached around the proxy: {}",
            r.output
        );
    }
    let r = call(&t.node, spec.id(), json!({"url": format!("http://{allowed}/")}))
        .await
        .unwrap();
    assert_eq!(r.output["status"], 200, "{}", r.output);
    assert_eq!(r.output["body"], "hello from the allowed host");
    t.node.sandbox().unwrap().settle().await;
    t.node.shutdown().await.unwrap();
    assert_eq!(chain_rules("iptables", &chain), "", "chain left after shutdown");
    assert_eq!(chain_rules("ip6tables", &chain), "", "chain left after shutdown");
    atrd::egress::network::remove(&docker, net).await;
    web.stop().await;
}

/// A provider whose operator disabled egress refuses an egress tool with a clear error rather
/// than running it without network.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Docker Engine"]
async fn issue_17_a_provider_without_egress_refuses_egress_tools() {
    init_tracing();
    let t = start_provider(172, vec![], 2).await;
    let spec = publish(&t.node, "http_fetch", &["web.atr-test:80".to_owned()]).await;
    let e = call(&t.node, spec.id(), json!({"url": "http://web.atr-test/"}))
        .await
        .unwrap_err();
    assert!(e.contains("cannot enforce the spec's policy"), "{e}");
    assert!(e.contains("egress"), "{e}");
}

/// A tracing writer into a shared buffer, to grep every log line of a test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every file under `dir` but the secrets directory holds no `needle`.
fn grep_dir(dir: &std::path::Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.ends_with(atr_protocol::local::SECRETS_DIR) {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else if std::fs::read(&p).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle)) {
                hits.push(p.display().to_string());
            }
        }
    }
    hits
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "needs a Docker Engine"]
async fn issue_17_secrets_reach_only_the_container() {
    // All of this test's tasks run on this thread, so this subscriber sees every log line.
    let logs = Captured::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("debug")
        .with_writer(move || sink.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    const SECRET: &str = "tok-3f9c1d7e8a2b4c6d";
    let web = Web::start("atr-test-web-secret", Some(SECRET.to_owned())).await;
    let t = provider(173, "atr-egress-test-b", &web).await;
    let n = &t.node;
    let allowed = format!("web.atr-test:{}", web.port);
    let spec = publish(n, "authed_fetch", std::slice::from_ref(&allowed)).await;
    assert_eq!(spec.value().permissions.secrets, ["API_TOKEN"]);
    let url = json!({"url": format!("http://{allowed}/")});

    // Without the secret: refused, naming the missing secret.
    let e = call(n, spec.id(), url.clone()).await.unwrap_err();
    assert!(e.contains("does not hold secret(s) API_TOKEN"), "{e}");

    // With it (as `atr secret set` stores it): the server sees the right token.
    let dir = atrd::secrets::dir(t._dir.path());
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("API_TOKEN");
    std::fs::write(&file, format!("{SECRET}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let r = call(n, spec.id(), url.clone()).await.unwrap();
    assert_eq!(r.output["status"], 200, "{}", r.output);
    assert_eq!(r.receipt.policy_hash, Some(Policy::of(spec.value()).hash()));

    // The value is in no answer, receipt, stored object or log line.
    let answer = serde_json::to_string(&r).unwrap();
    assert!(!answer.contains(SECRET) && !r.receipt_hex.contains(&hex::encode(SECRET)));
    for stored in n.repo().receipts(100).unwrap() {
        assert!(
            !stored
                .to_bytes()
                .windows(SECRET.len())
                .any(|w| w == SECRET.as_bytes())
        );
    }
    n.sandbox().unwrap().settle().await;
    let hits = grep_dir(t._dir.path(), SECRET.as_bytes());
    assert!(hits.is_empty(), "secret found in {hits:?}");
    let text = String::from_utf8_lossy(&logs.0.lock().unwrap()).to_string();
    assert!(!text.is_empty(), "no logs captured");
    assert!(!text.contains(SECRET), "secret in the logs");
    // Shut down (not dropped): the node removes its egress firewall chain.
    t.node.shutdown().await.unwrap();
    web.stop().await;
}
