//! `atr-testnet demo`: the main job in one command.
//!
//! Builds the example tools image, starts three local `atrd` processes
//! (node 0 runs tools; nodes 1 and 2 only discover and call), publishes the
//! example tools on node 0, finds them by tag from node 2, invokes one from
//! node 2 and prints the verified result — then keeps the network running
//! until Ctrl-C, printing how to point `atr` and an MCP client at it. Nodes 1
//! and up trust node 0 (`atr trust add`), so their `atr mcp --tag math` serves
//! its tools.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use atr_client::Client;
use atr_client::endpoint::Endpoint;
use atr_protocol::api::InvokeRequest;
use atr_protocol::query::FindQuery;

use crate::tools_image;

/// Options of the demo.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Nodes to start (at least 2).
    pub nodes: usize,
    /// Where node data goes (default: a fresh temp dir, removed at exit).
    pub dir: Option<PathBuf>,
    /// The `atrd` binary (default: next to this binary, else built with cargo).
    pub atrd: Option<PathBuf>,
    /// Exit after the walkthrough instead of waiting for Ctrl-C.
    pub once: bool,
}

/// One `atrd` child process, stopped when dropped.
struct NodeProcess {
    child: Child,
    dir: PathBuf,
    api: String,
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        // SIGTERM first (graceful shutdown), then make sure.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn start_node(
    atrd: &Path,
    dir: &Path,
    index: usize,
    bootstrap: &[String],
    runs_tools: bool,
) -> anyhow::Result<NodeProcess> {
    std::fs::create_dir_all(dir)?;
    let config = format!(
        "[network]\nheartbeat = \"200ms\"\nsync_interval = \"2s\"\nip_colocation_penalty = false\n\n[sandbox]\nenabled = {runs_tools}\nwarm_pool = {}\n",
        if runs_tools { 2 } else { 0 }
    );
    std::fs::write(dir.join("atrd.toml"), config)?;
    let port = free_port()?;
    let mut cmd = Command::new(atrd);
    cmd.arg("--data-dir")
        .arg(dir)
        .args(["--api", &format!("127.0.0.1:{port}")])
        .args(["--listen", "/ip4/127.0.0.1/tcp/0"])
        .args(["--log-format", "json"])
        .env("RUST_LOG", "info,libp2p=warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("atrd.log"))?);
    for b in bootstrap {
        cmd.args(["--bootstrap", b]);
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("cannot start node {index} ({})", atrd.display()))?;
    Ok(NodeProcess {
        child,
        dir: dir.to_owned(),
        api: format!("http://127.0.0.1:{port}"),
    })
}

fn client_for(node: &NodeProcess) -> anyhow::Result<Client> {
    let token = std::fs::read_to_string(node.dir.join("api.token"))
        .ok()
        .map(|t| t.trim().to_owned());
    let mut ep = Endpoint::from_env(Some(&node.api))?;
    ep.token = token;
    Ok(Client::new(ep)?)
}

async fn wait_healthy(c: &Client, what: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while c.health().await.is_err() {
        if Instant::now() > deadline {
            bail!("{what} did not become healthy within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Runs the demo.
pub async fn run(opts: DemoOptions) -> anyhow::Result<()> {
    if opts.nodes < 2 {
        bail!("the demo needs at least 2 nodes");
    }
    let root = tools_image::default_workspace_root();
    // Before any build: a missing atrd is built now, not after the tools.
    let atrd = crate::atrd::locate(opts.atrd.as_deref())?;
    eprintln!(
        "• building the example tools image: static binaries ({}) in a FROM scratch image;\n  \
         the first time this compiles for a few minutes (cargo's progress below), then it takes seconds…",
        atr_sandbox::image::STATIC_TARGET
    );
    let image = tools_image::build(&root, tools_image::TOOLS_IMAGE).await?;
    let hostile = hostile_manifests(&root)?;
    eprintln!(
        "  {} tools in {} ({}); {} of them are hostile on purpose (for the sandbox tests) and are not published",
        image.tools.len(),
        image.tag,
        image.id,
        hostile
    );
    let temp = match &opts.dir {
        Some(_) => None,
        None => Some(tempfile::tempdir()?),
    };
    let base = match (&opts.dir, &temp) {
        (Some(d), _) => d.clone(),
        (None, Some(t)) => t.path().to_owned(),
        (None, None) => bail!("no data dir"),
    };

    eprintln!("• starting {} nodes on 127.0.0.1…", opts.nodes);
    let mut nodes: Vec<NodeProcess> = Vec::new();
    let mut clients: Vec<Client> = Vec::new();
    let mut bootstrap: Vec<String> = Vec::new();
    for i in 0..opts.nodes {
        let n = start_node(&atrd, &base.join(format!("node{i}")), i, &bootstrap, i == 0)?;
        let c = client_for(&n)?;
        wait_healthy(&c, &format!("node {i}")).await?;
        let c = client_for(&n)?; // the token file exists now
        let st = c.status().await?;
        eprintln!("  node {i}: {}  api {}", st.peer_id, n.api);
        if i > 0 {
            // The other nodes trust node 0, the demo's publisher: `atr mcp --tag math` and
            // `atr export` on them serve its tools (only own and trusted publishers' by default).
            let publisher = clients[0].node_key().await?;
            c.trust_add(&publisher, Some("demo publisher (node 0)"))
                .await
                .with_context(|| format!("node {i}: trust node 0"))?;
        }
        if i == 0 {
            bootstrap = st
                .listen_addrs
                .iter()
                .filter(|a| a.contains("/tcp/"))
                .map(|a| format!("{a}/p2p/{}", st.peer_id))
                .collect();
        }
        nodes.push(n);
        clients.push(c);
    }

    eprintln!("• publishing the safe example tools on node 0 (the node pins each image by digest)…");
    for p in example_manifests(&root)? {
        let text = std::fs::read_to_string(&p)?;
        if is_hostile(&text) {
            continue;
        }
        let r = clients[0]
            .publish_file(&p)
            .await
            .with_context(|| format!("publish {}", p.display()))?;
        eprintln!(
            "  {:<12} {}@{}  {}",
            r.spec.name,
            r.spec.name,
            r.spec.version,
            r.id.fmt_short()
        );
    }

    let last = clients.len() - 1;
    eprintln!("• finding tools tagged `math` from node {last}…");
    let deadline = Instant::now() + Duration::from_secs(30);
    let found = loop {
        let q = FindQuery {
            tag: Some("math".into()),
            network: true,
            ..Default::default()
        };
        let f = clients[last].find(&q).await?;
        if !f.results.is_empty() {
            break f;
        }
        if Instant::now() > deadline {
            bail!("node {last} did not find the tools within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for v in &found.results {
        println!(
            "  {:<14} {:<8} {}  publisher …{}",
            v.spec.name,
            v.spec.version.to_string(),
            v.id.fmt_short(),
            v.spec.publisher.fmt_short()
        );
    }
    let calc = found
        .results
        .iter()
        .find(|v| v.spec.name == "calculator")
        .context("calculator not found")?;
    let input = serde_json::json!({"expression": "2 * (3 + 4) ^ 2 - sqrt(16)"});
    eprintln!("• invoking calculator from node {last} (it runs in a hardened container on node 0)…");
    let started = Instant::now();
    let r = clients[last]
        .invoke(&InvokeRequest {
            id: Some(calc.id),
            name: None,
            version: None,
            publisher: None,
            input: input.clone(),
        })
        .await?;
    println!("  input    {input}");
    println!("  output   {}", r.output);
    println!(
        "  receipt  status {}, provider …{}, {} ms, signature verified",
        r.receipt.status.as_str(),
        r.receipt.provider.fmt_short(),
        started.elapsed().as_millis()
    );

    let n = &nodes[last];
    println!();
    if opts.once {
        drop(nodes);
        match &opts.dir {
            Some(d) => println!(
                "Done (--once): the {} nodes are stopped; their data is kept in {}.",
                opts.nodes,
                d.display()
            ),
            None => println!(
                "Done (--once): the {} nodes are stopped and their data removed. Run without --once \
                 to keep the network up and try `atr` and MCP against it.",
                opts.nodes
            ),
        }
        return Ok(());
    }
    println!("The network is running. Point the `atr` command line at node {last} (in another shell):");
    println!("  export ATR_API={} ATR_DATA_DIR={}", n.api, n.dir.display());
    println!("  atr find --tag math");
    println!("  atr invoke add --input '{{\"a\": 2, \"b\": 40}}'");
    println!(
        "MCP clients (stdio): command `atr`, args [\"mcp\", \"--tag\", \"math\"], env {{\"ATR_API\": \"{}\", \"ATR_DATA_DIR\": \"{}\"}}.",
        n.api,
        n.dir.display()
    );
    println!("Press Ctrl-C to stop (the nodes stop and their data is removed).");
    tokio::signal::ctrl_c().await?;
    eprintln!("• stopping the nodes…");
    drop(nodes);
    Ok(())
}

/// The example manifests, in name order.
fn example_manifests(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let dir = root.join("sdk/examples/manifests");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    Ok(paths)
}

/// Whether a manifest is one of the hostile examples (tagged `hostile`), which only the
/// sandbox tests run.
fn is_hostile(manifest: &str) -> bool {
    manifest.contains("\"hostile\"")
}

/// How many example manifests are hostile.
fn hostile_manifests(root: &Path) -> anyhow::Result<usize> {
    let mut n = 0;
    for p in example_manifests(root)? {
        if is_hostile(&std::fs::read_to_string(&p)?) {
            n += 1;
        }
    }
    Ok(n)
}
