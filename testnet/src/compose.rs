//! `atr-testnet export --compose FILE`: the same network as a Docker Compose
//! file that runs on any Docker host.
//!
//! [`export`] writes the compose file and, next to it, one directory per node
//! (`<stem>-nodes/NNNN/` with its generated `identity.key` and `atrd.toml`),
//! mounted into the node's container. Nodes get fixed addresses on the
//! compose network, so the bootstrap list (each node bootstraps from one or
//! two earlier nodes chosen by the seed, as in process mode) is written out
//! in full. Each node's API is published on `127.0.0.1:<api_base + index>`.
//! The image is [`crate::docker::IMAGE`], built by [`crate::docker::build_image`]
//! (`export` builds it unless told not to); copy it to another host with
//! `docker save | docker load`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use atr_protocol::SecretKey;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use crate::docker::{API_PORT, DATA_DIR, IMAGE, P2P_PORT};
use crate::logs::NODE_LOG_FILTER;
use crate::process::node_config;
use crate::scenario::NetworkSettings;

/// What [`export`] writes.
#[derive(Debug, Clone)]
pub struct ComposeOptions {
    /// The compose file.
    pub file: PathBuf,
    /// Nodes.
    pub nodes: usize,
    /// Seed of keys and topology.
    pub seed: u64,
    /// First three octets of the compose network's /24.
    pub subnet: [u8; 3],
    /// Host port of node 0's API (node i: `api_base + i`, on 127.0.0.1).
    pub api_base: u16,
    /// Node settings.
    pub network: NetworkSettings,
}

/// One exported node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedNode {
    /// Service name.
    pub service: String,
    /// Peer id.
    pub peer_id: String,
    /// API on the host.
    pub api: String,
    /// Data directory on the host.
    pub dir: PathBuf,
}

/// Writes the compose file and the node directories; returns the nodes.
pub fn export(o: &ComposeOptions) -> anyhow::Result<Vec<ExportedNode>> {
    anyhow::ensure!(
        (1..=crate::docker::MAX_DOCKER_NODES).contains(&o.nodes),
        "--nodes must be 1..={}",
        crate::docker::MAX_DOCKER_NODES
    );
    let parent = o
        .file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    let stem = o
        .file
        .file_stem()
        .and_then(|s| s.to_str())
        .context("the compose file needs a name")?;
    let nodes_rel = format!("{stem}-nodes");
    let nodes_dir = parent.join(&nodes_rel);
    anyhow::ensure!(
        !nodes_dir.exists(),
        "{} exists; remove it (and stop that network) first",
        nodes_dir.display()
    );
    let mut rng = StdRng::seed_from_u64(o.seed);
    let ip = |i: usize| crate::docker::node_ip(o.subnet, i);
    let mut peers: Vec<String> = Vec::new();
    let mut out = Vec::new();
    let mut y = String::from(
        "# Written by `atr-testnet export --compose`. Start with `docker compose up -d`\n\
         # (or docker-compose); the image is built by the same command (docker save/load to move it).\n",
    );
    y += "services:\n";
    for i in 0..o.nodes {
        let mut seed = [0u8; 32];
        rng.fill(&mut seed);
        let peer_id = SecretKey::from_seed(&seed).public().to_string();
        let boot: Vec<usize> = match i {
            0 => vec![],
            1 => vec![0],
            _ => {
                let k = rng.random_range(1..=2);
                (0..i)
                    .collect::<Vec<_>>()
                    .choose_multiple(&mut rng, k)
                    .copied()
                    .collect()
            }
        };
        let dir = nodes_dir.join(format!("{i:04}"));
        std::fs::create_dir_all(&dir)?;
        write_key(&dir.join("identity.key"), &seed)?;
        std::fs::write(dir.join("atrd.toml"), node_config(&o.network, false))?;
        let service = format!("node{i}");
        let host_port = o.api_base.checked_add(i as u16).context("--api-base too high")?;
        writeln!(y, "  {service}:")?;
        writeln!(y, "    image: {IMAGE}")?;
        writeln!(y, "    environment:\n      RUST_LOG: \"{NODE_LOG_FILTER}\"")?;
        writeln!(y, "    volumes:\n      - ./{nodes_rel}/{i:04}:{DATA_DIR}")?;
        writeln!(y, "    ports:\n      - \"127.0.0.1:{host_port}:{API_PORT}\"")?;
        writeln!(y, "    networks:\n      atr:\n        ipv4_address: {}", ip(i))?;
        let mut cmd = vec![
            "--data-dir".to_owned(),
            DATA_DIR.to_owned(),
            "--config".to_owned(),
            format!("{DATA_DIR}/atrd.toml"),
            "--api".to_owned(),
            format!("0.0.0.0:{API_PORT}"),
            // Published on the host's loopback only (`ports:` above).
            "--api-allow-remote".to_owned(),
            "--listen".to_owned(),
            format!("/ip4/0.0.0.0/tcp/{P2P_PORT}"),
            "--log-format".to_owned(),
            "json".to_owned(),
        ];
        for b in &boot {
            cmd.push("--bootstrap".to_owned());
            cmd.push(format!("/ip4/{}/tcp/{P2P_PORT}/p2p/{}", ip(*b), peers[*b]));
        }
        let quoted: Vec<String> = cmd.iter().map(|c| format!("\"{c}\"")).collect();
        writeln!(y, "    command: [{}]", quoted.join(", "))?;
        if let Some(first) = boot.first() {
            writeln!(y, "    depends_on:\n      - node{first}")?;
        }
        peers.push(peer_id.clone());
        out.push(ExportedNode {
            service,
            peer_id,
            api: format!("http://127.0.0.1:{host_port}"),
            dir,
        });
    }
    writeln!(
        y,
        "networks:\n  atr:\n    driver: bridge\n    ipam:\n      config:\n        - subnet: {}.{}.{}.0/24",
        o.subnet[0], o.subnet[1], o.subnet[2]
    )?;
    std::fs::write(&o.file, y).with_context(|| format!("cannot write {}", o.file.display()))?;
    Ok(out)
}

fn write_key(path: &Path, seed: &[u8; 32]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(seed)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_writes_keys_and_a_bootstrap_chain() {
        let tmp = std::env::temp_dir().join(format!("atr-compose-{}", std::process::id()));
        let file = tmp.join("net.yml");
        let nodes = export(&ComposeOptions {
            file: file.clone(),
            nodes: 3,
            seed: 9,
            subnet: [10, 213, 250],
            api_base: 17900,
            network: NetworkSettings::default(),
        })
        .unwrap();
        assert_eq!(nodes.len(), 3);
        let y = std::fs::read_to_string(&file).unwrap();
        assert!(y.contains("ipv4_address: 10.213.250.11"));
        assert!(y.contains(&format!("/ip4/10.213.250.10/tcp/4077/p2p/{}", nodes[0].peer_id)));
        assert!(y.contains("127.0.0.1:17902:7878"));
        assert_eq!(
            std::fs::read(nodes[2].dir.join("identity.key")).unwrap().len(),
            32
        );
        assert!(
            export(&ComposeOptions {
                file,
                nodes: 3,
                seed: 9,
                subnet: [10, 213, 250],
                api_base: 17900,
                network: NetworkSettings::default(),
            })
            .is_err()
        );
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
