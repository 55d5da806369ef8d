//! Swarm mode: the testnet as a Docker Swarm stack, deployed with
//! `docker stack deploy` from a compose file rendered here, on an overlay
//! network, services spread over the swarm's nodes.
//!
//! - [`ensure_swarm`] initialises a single-node swarm when the engine is in
//!   none (`docker swarm init --advertise-addr 127.0.0.1`) and says so; the
//!   testnet's state records it, and [`teardown`] then leaves the swarm again
//!   (`docker swarm leave --force`) and removes the `docker_gwbridge` network
//!   the init made, so the engine is left as it was found. A swarm that was
//!   already there is never left.
//! - [`stack_file`] renders one service per node: the locally built
//!   [`crate::docker::IMAGE`] (no registry: on a multi-node swarm, load it
//!   on every node with `docker save | docker load`), the node directory
//!   bind-mounted at [`DATA_DIR`] (so the directories must exist on every
//!   swarm node, e.g. a shared mount), `endpoint_mode: dnsrr` so a service
//!   name resolves to its task's address, bootstrap addresses by name
//!   (`/dns4/nodeJ/tcp/4077/p2p/…`, the same seeded topology as the other
//!   modes), the API published in `host` mode on `api_base + i`, placement
//!   spread over `node.id`, and no restart (a node that dies stays dead, as
//!   in the other modes).
//! - The harness reaches each node's API at `127.0.0.1:<api_base + i>`.
//!
//! Kills, restarts, partitions and link conditions are not available in
//! swarm mode (the harness does not own the containers' lifecycle there).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, bail};

use crate::docker::{API_PORT, DATA_DIR, IMAGE, P2P_PORT, docker};

/// The stack file, in the testnet directory (removed by `down`).
pub const STACK_FILE: &str = "stack.yml";

/// Label put on the stack's services, overlay network and containers.
pub const STACK_LABEL: &str = "atr.testnet.dir";

/// Whether this engine is part of a swarm.
pub fn swarm_active() -> anyhow::Result<bool> {
    let state = docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"])?;
    Ok(state.trim() == "active")
}

/// Makes sure the engine is a swarm manager; returns true when it
/// initialised the swarm (then [`teardown`] leaves it).
pub fn ensure_swarm() -> anyhow::Result<bool> {
    if swarm_active()? {
        return Ok(false);
    }
    docker(&["swarm", "init", "--advertise-addr", "127.0.0.1"]).context("docker swarm init")?;
    Ok(true)
}

/// A node of the stack.
#[derive(Debug, Clone)]
pub struct StackNode<'a> {
    /// Its index.
    pub index: usize,
    /// Its peer id.
    pub peer_id: &'a str,
    /// Its directory on the host.
    pub dir: &'a Path,
    /// Indices of its bootstrap peers.
    pub bootstrap: &'a [usize],
}

/// The stack's compose file (version 3.8, `docker stack deploy -c`).
pub fn stack_file(
    label: &str,
    nodes: &[StackNode<'_>],
    api_base: u16,
    log_filter: &str,
) -> anyhow::Result<String> {
    let mut y = String::from(
        "# Written by atr-testnet (swarm mode): docker stack deploy -c FILE NAME\nversion: \"3.8\"\nservices:\n",
    );
    for n in nodes {
        let port = api_base
            .checked_add(u16::try_from(n.index).context("too many nodes")?)
            .context("API port out of range")?;
        writeln!(y, "  node{}:", n.index)?;
        writeln!(y, "    image: \"{IMAGE}\"")?;
        writeln!(y, "    environment:\n      RUST_LOG: \"{log_filter}\"")?;
        writeln!(
            y,
            "    volumes:\n      - type: bind\n        source: \"{}\"\n        target: \"{DATA_DIR}\"",
            n.dir.display()
        )?;
        writeln!(
            y,
            "    ports:\n      - target: {API_PORT}\n        published: {port}\n        protocol: tcp\n        mode: host"
        )?;
        writeln!(y, "    networks:\n      - atr")?;
        let mut cmd = vec![
            "--data-dir".to_owned(),
            DATA_DIR.to_owned(),
            "--config".to_owned(),
            format!("{DATA_DIR}/atrd.toml"),
            "--api".to_owned(),
            format!("0.0.0.0:{API_PORT}"),
            "--api-allow-remote".to_owned(),
            "--listen".to_owned(),
            format!("/ip4/0.0.0.0/tcp/{P2P_PORT}"),
            "--log-format".to_owned(),
            "json".to_owned(),
        ];
        for b in n.bootstrap {
            let peer = nodes
                .iter()
                .find(|x| x.index == *b)
                .map(|x| x.peer_id)
                .context("bootstrap peer not in the stack")?;
            cmd.push("--bootstrap".to_owned());
            cmd.push(format!("/dns4/node{b}/tcp/{P2P_PORT}/p2p/{peer}"));
        }
        let quoted: Vec<String> = cmd.iter().map(|c| format!("\"{c}\"")).collect();
        writeln!(y, "    command: [{}]", quoted.join(", "))?;
        writeln!(
            y,
            "    deploy:\n      replicas: 1\n      endpoint_mode: dnsrr\n      restart_policy:\n        condition: none\n      placement:\n        preferences:\n          - spread: node.id\n      labels:\n        {STACK_LABEL}: \"{label}\""
        )?;
    }
    writeln!(
        y,
        "networks:\n  atr:\n    driver: overlay\n    attachable: true\n    labels:\n      {STACK_LABEL}: \"{label}\""
    )?;
    Ok(y)
}

/// The stack name of the testnet in `dir`.
pub fn stack_name(dir: &Path) -> String {
    crate::docker::short_name(dir)
}

/// Deploys the stack file.
pub fn deploy(file: &Path, stack: &str) -> anyhow::Result<()> {
    let f = file.to_string_lossy();
    docker(&["stack", "deploy", "-c", &f, stack]).context("docker stack deploy")?;
    Ok(())
}

/// The service name of node `index` in `stack` (`docker stack deploy`
/// prefixes each service with the stack name).
pub fn service_name(stack: &str, index: usize) -> String {
    format!("{stack}_node{index}")
}

/// Follows node `index`'s output (`docker service logs -f --raw`, which
/// works for tasks on any swarm node) into `log`, the file the harness reads
/// its measured events from. The nodes write only to their standard output;
/// without this nothing reaches the harness and every propagation sample
/// fails. The returned process ends when the service is removed.
pub fn follow_service_logs(stack: &str, index: usize, log: &Path) -> anyhow::Result<std::process::Child> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("cannot open {}", log.display()))?;
    let mut c = std::process::Command::new("docker");
    c.args(["service", "logs", "--follow", "--raw", "--no-trunc"])
        .arg(service_name(stack, index))
        .stdin(std::process::Stdio::null())
        .stdout(f.try_clone()?)
        .stderr(f);
    std::os::unix::process::CommandExt::process_group(&mut c, 0);
    c.spawn().context("cannot run `docker service logs`")
}

/// Removes the stack and waits (at most a minute) until its containers and
/// network are gone; then, if `initialised`, leaves the swarm and removes
/// the `docker_gwbridge` network the init made.
pub fn teardown(stack: &str, initialised: bool) -> anyhow::Result<()> {
    if swarm_active()? {
        let _ = docker(&["stack", "rm", stack]);
        let filter = format!("label=com.docker.stack.namespace={stack}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let c = docker(&["ps", "-a", "-q", "--filter", &filter])?;
            let n = docker(&["network", "ls", "-q", "--filter", &filter])?;
            if c.is_empty() && n.is_empty() {
                break;
            }
            if std::time::Instant::now() > deadline {
                bail!("the stack {stack} was not removed within a minute");
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
    }
    if initialised && swarm_active()? {
        docker(&["swarm", "leave", "--force"]).context("docker swarm leave")?;
        // The init made it; a swarm that is left keeps it.
        let _ = docker(&["network", "rm", "docker_gwbridge"]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stack_file_spreads_nodes_and_bootstraps_by_name() {
        let dir = Path::new("/tmp/x");
        let nodes = [
            StackNode {
                index: 0,
                peer_id: "P0",
                dir,
                bootstrap: &[],
            },
            StackNode {
                index: 1,
                peer_id: "P1",
                dir,
                bootstrap: &[0],
            },
        ];
        let y = stack_file("/tmp/net", &nodes, 18000, "info").unwrap();
        assert!(y.contains("/dns4/node0/tcp/4077/p2p/P0"), "{y}");
        assert!(y.contains("published: 18001") && y.contains("mode: host"));
        assert!(y.contains("spread: node.id") && y.contains("endpoint_mode: dnsrr"));
        assert!(y.contains("driver: overlay"));
        assert_eq!(y.matches("    image: ").count(), 2);
    }
}
