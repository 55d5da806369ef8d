//! Announcing: the Kademlia provider records by which other nodes find the
//! specs this node runs.
//!
//! For each spec it runs ([`Repo::runnable`]: its own active specs and the
//! foreign ones its operator agreed to provide) the node announces one DHT
//! key per tag and one for the name, each in the shard of this node's key
//! ([`network::tag_key`], [`network::name_key`]). Provider records live in
//! memory on the nodes that hold them, so [`Announcer::announce_all`] runs
//! again at every start; [`Announcer::withdraw`] stops announcing the keys of
//! a spec this node no longer runs, except the keys another spec it runs
//! still needs.

use std::collections::HashSet;

use atr_protocol::{PublicKey, SignedSpec};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::network::{self, NetworkHandle};
use crate::repo::Repo;

/// Starts and stops this node's provider records.
#[derive(Debug, Clone)]
pub struct Announcer {
    net: NetworkHandle,
    me: PublicKey,
}

impl Announcer {
    /// An announcer for the node whose publisher key is `me`.
    pub fn new(net: NetworkHandle, me: PublicKey) -> Self {
        Self { net, me }
    }

    /// The DHT keys (tag shards and name shard) this node announces for `spec`.
    pub fn keys(&self, spec: &SignedSpec) -> Vec<Vec<u8>> {
        let v = spec.value();
        let mut keys: Vec<Vec<u8>> = v.tags.iter().map(|t| network::tag_key(t, &self.me)).collect();
        keys.push(network::name_key(&v.name, &self.me));
        keys
    }

    /// Announces the DHT keys of `spec`.
    pub async fn announce(&self, spec: &SignedSpec) {
        for k in self.keys(spec) {
            if let Err(e) = self.net.announce(k).await {
                warn!(error = %e, "DHT announce failed");
            }
        }
    }

    /// At start: announces the keys of every spec this node runs, each key once.
    pub async fn announce_all(&self, repo: &Repo, cancel: &CancellationToken) {
        let specs = match repo.blocking(|r| r.runnable()).await {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "cannot list the specs to announce");
                return;
            }
        };
        info!(count = specs.len(), "announcing the specs this node runs");
        let mut seen = HashSet::new();
        for s in &specs {
            for k in self.keys(s) {
                if cancel.is_cancelled() {
                    return;
                }
                if seen.insert(k.clone())
                    && let Err(e) = self.net.announce(k).await
                {
                    warn!(error = %e, "DHT announce failed");
                }
            }
        }
    }

    /// Stops announcing the keys of `spec` that no spec this node still runs
    /// shares (blocking: reads the repository).
    pub fn withdraw(&self, repo: &Repo, spec: &SignedSpec) {
        let mut keys: HashSet<Vec<u8>> = self.keys(spec).into_iter().collect();
        for other in repo.runnable() {
            if keys.is_empty() {
                break;
            }
            for k in self.keys(&other) {
                keys.remove(&k);
            }
        }
        for k in keys {
            self.net.withdraw(k);
        }
    }
}
