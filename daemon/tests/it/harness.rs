//! In-process multi-node harness: N nodes on 127.0.0.1 with temp data dirs,
//! seeded keys, short gossip heartbeats, wired into a connected graph.

use std::future::Future;
use std::time::Duration;

use atr_protocol::{Manifest, SecretKey, SignedSpec};
use atrd::Node;
use atrd::config::Config;
use atrd::identity::Identity;

pub(crate) const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

pub(crate) fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn,atrd=info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// A test node and its temp dir (kept alive with it).
pub(crate) struct TestNode {
    pub(crate) node: Node,
    pub(crate) _dir: tempfile::TempDir,
}

pub(crate) fn test_config(dir: &std::path::Path) -> Config {
    let mut c = Config::with_data_dir(dir);
    c.api = "127.0.0.1:0".parse().unwrap();
    c.network.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
    c.network.heartbeat = Duration::from_millis(100);
    c.network.sync_interval = Duration::from_millis(500);
    // Discovery tests use fake image digests; invocation tests enable the sandbox.
    c.sandbox.enabled = false;
    c.network.ip_colocation_penalty = false;
    c
}

pub(crate) async fn start_node(seed: u8, bootstrap: Vec<libp2p::Multiaddr>) -> TestNode {
    let dir = tempfile::tempdir().unwrap();
    start_node_in(seed, bootstrap, dir).await
}

pub(crate) async fn start_node_in(
    seed: u8,
    bootstrap: Vec<libp2p::Multiaddr>,
    dir: tempfile::TempDir,
) -> TestNode {
    start_node_with(seed, bootstrap, dir, |_| {}).await
}

/// Starts a node after `tune` adjusts its test config.
pub(crate) async fn start_node_with(
    seed: u8,
    bootstrap: Vec<libp2p::Multiaddr>,
    dir: tempfile::TempDir,
    tune: impl FnOnce(&mut Config),
) -> TestNode {
    let mut c = test_config(dir.path());
    c.network.bootstrap = bootstrap;
    tune(&mut c);
    let node = Node::bind_with_identity(c, Some(Identity::from_seed([seed; 32])))
        .await
        .unwrap();
    TestNode { node, _dir: dir }
}

/// Starts `n` nodes; node i bootstraps from node i-1 and (for i>1) from a
/// seeded-random earlier node, so the graph is connected.
pub(crate) async fn start_network(n: usize, first_seed: u8) -> Vec<TestNode> {
    let mut nodes: Vec<TestNode> = Vec::new();
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15 ^ first_seed as u64;
    for i in 0..n {
        let mut boot = Vec::new();
        if i > 0 {
            boot.extend(nodes[i - 1].node.dial_addrs().into_iter().take(1));
            if i > 1 {
                rng = rng
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let j = (rng >> 33) as usize % (i - 1);
                boot.extend(nodes[j].node.dial_addrs().into_iter().take(1));
            }
        }
        nodes.push(start_node(first_seed + i as u8, boot).await);
    }
    // Wait until every node has at least one peer.
    wait_for_peers(&nodes, Duration::from_secs(10), "connected", |peers| peers > 0).await;
    nodes
}

/// Starts `n` nodes, each bootstrapping from every earlier one, and waits
/// until each is connected to all the others.
pub(crate) async fn start_full_mesh(n: usize, first_seed: u8) -> Vec<TestNode> {
    let mut nodes: Vec<TestNode> = Vec::new();
    for i in 0..n {
        let boot = nodes
            .iter()
            .flat_map(|t| t.node.dial_addrs().into_iter().take(1))
            .collect();
        nodes.push(start_node(first_seed + i as u8, boot).await);
    }
    wait_for_peers(&nodes, Duration::from_secs(20), "connected to all", |peers| {
        peers == n - 1
    })
    .await;
    nodes
}

/// Waits until `enough(connected peers)` holds on every node.
async fn wait_for_peers(nodes: &[TestNode], timeout: Duration, what: &str, enough: impl Fn(usize) -> bool) {
    for (i, t) in nodes.iter().enumerate() {
        wait_for(timeout, &format!("node {i} {what}"), || async {
            t.node
                .net()
                .status()
                .await
                .map(|s| enough(s.peers.len()))
                .unwrap_or(false)
        })
        .await;
    }
}

/// Polls `pred` until it holds; panics with `what` after `timeout`.
pub(crate) async fn wait_for<F, Fut>(timeout: Duration, what: &str, mut pred: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if pred().await {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) fn manifest(name: &str, version: &str, tags: &[&str]) -> Manifest {
    let tags = tags
        .iter()
        .map(|t| format!("\"{t}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let src = format!(
        r#"
name = "{name}"
version = "{version}"
description = "Test tool {name}: adds two integers."
tags = [{tags}]
input_schema = {{ type = "object", properties = {{ a = {{ type = "integer" }}, b = {{ type = "integer" }} }}, required = ["a", "b"] }}
output_schema = {{ type = "integer" }}
[runtime]
image = "atr-example-tools:latest"
digest = "{DIGEST}"
command = ["/bin/add"]
"#
    );
    Manifest::from_toml(&src, "test.toml").unwrap()
}

/// A spec signed by an arbitrary key (a publisher that is not a node here).
pub(crate) fn foreign_spec(seed: u8, name: &str, tags: &[&str]) -> SignedSpec {
    let key = SecretKey::from_seed(&[seed; 32]);
    let spec = manifest(name, "1.0.0", tags)
        .to_spec("test.toml", key.public(), 1_764_000_000_000 + seed as u64, None)
        .unwrap();
    SignedSpec::sign(spec, &key).unwrap()
}

pub(crate) fn find_local(n: &Node, q: atr_protocol::query::FindQuery) -> Vec<atr_protocol::ToolId> {
    n.repo()
        .read(|cat| cat.find(&q, None).into_iter().map(|e| e.spec.id()).collect())
}

pub(crate) fn by_tag(tag: &str) -> atr_protocol::query::FindQuery {
    atr_protocol::query::FindQuery {
        tag: Some(tag.into()),
        limit: Some(1000),
        ..Default::default()
    }
}

/// The example tools image every sandbox test runs.
pub(crate) const TOOLS_IMAGE: &str = "atr-example-tools:latest";

/// Builds the example tools image once per test binary if the engine lacks it
/// (CI starts with no images). Under `CI=true` a missing engine is an error.
pub(crate) fn ensure_tools_image() {
    static DONE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        let have = std::process::Command::new("docker")
            .args(["image", "inspect", TOOLS_IMAGE])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if have {
            return;
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let status = std::process::Command::new(env!("CARGO"))
            .args(["run", "--quiet", "-p", "atr-testnet", "--", "tools-image"])
            .current_dir(root)
            .status()
            .expect("run atr-testnet tools-image");
        assert!(status.success(), "building {TOOLS_IMAGE} failed");
    });
}

/// Starts a node with the sandbox on (and `max_concurrent` slots).
pub(crate) async fn start_provider(seed: u8, bootstrap: Vec<libp2p::Multiaddr>, slots: usize) -> TestNode {
    ensure_tools_image();
    let dir = tempfile::tempdir().unwrap();
    let mut c = test_config(dir.path());
    c.network.bootstrap = bootstrap;
    c.sandbox.enabled = true;
    c.sandbox.options.max_concurrent = slots;
    let node = Node::bind_with_identity(c, Some(Identity::from_seed([seed; 32])))
        .await
        .unwrap();
    assert!(
        node.sandbox().is_some(),
        "a Docker Engine is required for sandbox tests"
    );
    TestNode { node, _dir: dir }
}

/// Reads an example tool manifest from sdk/examples/manifests.
pub(crate) fn tool_manifest(tool: &str) -> Manifest {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let path = root.join(format!("sdk/examples/manifests/{tool}.toml"));
    let src = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Manifest::from_toml(&src, &path.display().to_string()).unwrap()
}

/// A test node's local API over real HTTP; `api.rs` and `api_guard.rs` add
/// the calls they need.
pub(crate) struct Api {
    pub(crate) base: String,
    pub(crate) token: String,
    pub(crate) http: reqwest::Client,
}

impl Api {
    pub(crate) fn new(t: &TestNode) -> Self {
        Self {
            base: format!("http://{}", t.node.api_addr()),
            token: t.node.api_token().to_owned(),
            http: reqwest::Client::new(),
        }
    }
}
