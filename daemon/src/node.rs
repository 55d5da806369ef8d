//! The node as a value: [`Node::bind`] opens the store, loads the catalog,
//! binds the network and the local API, and starts the services;
//! [`Node::shutdown`] stops them in order.
//!
//! Tasks and channels:
//!
//! - network loop (owns the swarm) → `NetworkEvent`s → the event dispatcher
//!   task, which spawns one bounded task per gossip message or peer request
//!   ([`ingest`], [`serve`]) and a sync round per new peer ([`sync`]);
//! - a periodic anti-entropy task ([`sync`]);
//! - the API server (axum), calling [`NodeState`] methods ([`publish`], [`discover`]);
//! - one `CancellationToken` tree: the node's token cancels every task.
//!
//! Shutdown order: stop the API (no new requests), cancel the network and the
//! services, wait for in-flight tasks (bounded), then drop the store (redb
//! flushes committed transactions; nothing uncommitted is half-written).

pub mod discover;
pub mod ingest;
pub mod invoke;
pub mod provide;
pub mod publish;
pub mod serve;
pub mod sync;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use libp2p::PeerId;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::catalog::Catalog;
use crate::config::Config;
use crate::identity::{Identity, write_private};
use crate::network::{self, NetworkEvent, NetworkHandle};
use crate::store::Store;

/// File name of the API bearer token inside the data dir.
pub const TOKEN_FILE: &str = "api.token";
/// File name of the redb database inside the data dir.
pub const STORE_FILE: &str = "atr.redb";
/// Most peer messages processed at once; beyond, gossip waits in the channel.
pub const MAX_INFLIGHT_PEER_TASKS: usize = 256;
/// How long shutdown waits for in-flight tasks.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Why the node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The data dir or token could not be set up.
    #[error("data dir {path}: {source}")]
    DataDir {
        /// Path.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Identity.
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
    /// Store.
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    /// Network.
    #[error(transparent)]
    Network(#[from] crate::network::NetworkError),
    /// API bind.
    #[error(
        "cannot serve the local API on {addr}: {source} (is another atrd running? use --api to pick another address)"
    )]
    ApiBind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A background task panicked.
    #[error("task failed: {0}")]
    Task(String),
}

/// Everything the services and the API share.
pub struct NodeState {
    /// The node key.
    pub identity: Identity,
    /// Resolved config.
    pub config: Config,
    /// Persistent store.
    pub store: Store,
    /// In-memory index.
    pub catalog: RwLock<Catalog>,
    /// Network handle.
    pub net: NetworkHandle,
    /// API bearer token.
    pub token: String,
    /// Bounds concurrent peer tasks.
    pub peer_tasks: Arc<Semaphore>,
    /// Cancelled at shutdown.
    pub cancel: CancellationToken,
    /// Tracks spawned tasks.
    pub tasks: TaskTracker,
    /// The Docker sandbox, when enabled and reachable.
    pub sandbox: Option<crate::sandbox::Sandbox>,
    /// Invocation ids seen recently (replay protection).
    pub seen: invoke::SeenInvocations,
    /// Compiled schemas of recently invoked tools.
    pub schemas: invoke::SchemaCache,
    /// Other publishers' specs this node agreed to run (see [`provide`]), mirrored from the store.
    pub provided: RwLock<std::collections::HashSet<atr_protocol::ToolId>>,
}

impl NodeState {
    /// Whether this node runs `spec` for callers: its own specs, and others'
    /// it explicitly agreed to provide. Never a stranger's spec merely because
    /// its pinned image happens to be on this host.
    pub fn provides(&self, spec: &atr_protocol::SignedSpec) -> bool {
        spec.value().publisher == self.public_key()
            || self
                .provided
                .read()
                .map(|p| p.contains(&spec.id()))
                .unwrap_or(false)
    }
}

impl NodeState {
    /// This node's publisher key.
    pub fn public_key(&self) -> atr_protocol::PublicKey {
        self.identity.secret.public()
    }

    /// Runs blocking work (redb, verification) off the async runtime.
    pub async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&NodeState) -> T + Send + 'static,
    ) -> Result<T, NodeError> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || f(&me))
            .await
            .map_err(|e| NodeError::Task(e.to_string()))
    }
}

/// A running node.
#[must_use = "dropping a Node without shutdown() leaves its tasks running until the runtime stops"]
pub struct Node {
    state: Arc<NodeState>,
    api_addr: SocketAddr,
    api_task: tokio::task::JoinHandle<()>,
    net_task: tokio::task::JoinHandle<()>,
    listen_addrs: Vec<libp2p::Multiaddr>,
}

impl Node {
    /// Starts a node; returns once the store is open and every listener is bound.
    pub async fn bind(config: Config) -> Result<Self, NodeError> {
        Self::bind_with_identity(config, None).await
    }

    /// Starts a node with a given identity (tests and testnets), else the data dir's.
    pub async fn bind_with_identity(config: Config, identity: Option<Identity>) -> Result<Self, NodeError> {
        let dir = config.data_dir.clone();
        std::fs::create_dir_all(&dir).map_err(|source| NodeError::DataDir {
            path: dir.display().to_string(),
            source,
        })?;
        let identity = match identity {
            Some(i) => i,
            None => Identity::load_or_create(&dir)?,
        };
        let token = load_or_create_token(&dir)?;
        let store_path = dir.join(STORE_FILE);
        let opts = config.store;
        let store = tokio::task::spawn_blocking(move || Store::open(&store_path, opts))
            .await
            .map_err(|e| NodeError::Task(e.to_string()))??;
        let loaded = {
            let s = store.clone();
            tokio::task::spawn_blocking(move || s.load_all())
                .await
                .map_err(|e| NodeError::Task(e.to_string()))??
        };
        let mut catalog = Catalog::default();
        let (specs, revocations) = loaded;
        let (n_specs, n_revs) = (specs.len(), revocations.len());
        for s in specs {
            catalog.insert_spec(s);
        }
        for r in &revocations {
            let _ = catalog.apply_revocation(r);
        }
        for forged in catalog.take_rejected_revocations() {
            warn!(revocation = %hex::encode(forged), "stored revocation not signed by its target's publisher; removed");
            let s = store.clone();
            let _ = tokio::task::spawn_blocking(move || s.remove_revocation(&forged)).await;
        }
        info!(specs = n_specs, revocations = n_revs, "catalog loaded");

        let cancel = CancellationToken::new();
        let (net, events, net_task) =
            network::spawn(&identity, &config.network, cancel.child_token()).await?;
        let status = net.status().await?;
        let listen_addrs: Vec<libp2p::Multiaddr> = status
            .listen_addrs
            .iter()
            .filter_map(|a| a.parse().ok())
            .collect();
        info!(peer_id = %identity.peer_id(), listen = ?status.listen_addrs, "atrd started");

        let sandbox = if config.sandbox.enabled {
            match crate::sandbox::Sandbox::connect(
                &identity.peer_id().to_string(),
                config.sandbox.options.clone(),
            )
            .await
            {
                Ok(sb) => {
                    if let Err(e) = sb.cleanup_leftovers().await {
                        warn!(error = %e, "could not clean up leftover sandbox containers");
                    }
                    Some(sb)
                }
                Err(e) => {
                    warn!(error = %e, "sandbox unavailable: this node discovers and forwards but runs no tools");
                    None
                }
            }
        } else {
            info!("sandbox disabled by config");
            None
        };
        let listener = tokio::net::TcpListener::bind(config.api)
            .await
            .map_err(|source| NodeError::ApiBind {
                addr: config.api,
                source,
            })?;
        let api_addr = listener.local_addr().map_err(|source| NodeError::ApiBind {
            addr: config.api,
            source,
        })?;

        // Consent to provide foreign specs, loaded before the API answers.
        let provided_ids: std::collections::HashSet<atr_protocol::ToolId> = match store.provided_ids() {
            Ok(ids) => ids.into_iter().collect(),
            Err(e) => {
                warn!(error = %e, "cannot load provided specs");
                std::collections::HashSet::new()
            }
        };
        let state = Arc::new(NodeState {
            identity,
            config,
            store,
            catalog: RwLock::new(catalog),
            net,
            token,
            peer_tasks: Arc::new(Semaphore::new(MAX_INFLIGHT_PEER_TASKS)),
            cancel: cancel.clone(),
            tasks: TaskTracker::new(),
            sandbox,
            seen: invoke::SeenInvocations::default(),
            provided: RwLock::new(provided_ids),
            schemas: invoke::SchemaCache::default(),
        });
        info!(api = %api_addr, "local API listening");
        let api_task = tokio::spawn(crate::api::serve(listener, state.clone(), cancel.child_token()));
        state.tasks.spawn(dispatch(state.clone(), events));
        state.tasks.spawn(sync::periodic(state.clone()));
        state.tasks.spawn(publish::reprovide_own(state.clone()));
        state.tasks.spawn(provide::reprovide_foreign(state.clone()));
        state.tasks.spawn(sync::dial_known_peers(state.clone()));
        Ok(Self {
            state,
            api_addr,
            api_task,
            net_task,
            listen_addrs,
        })
    }

    /// The shared state (for embedding and tests).
    pub fn state(&self) -> &Arc<NodeState> {
        &self.state
    }
    /// The bound API address.
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }
    /// The peer id.
    pub fn peer_id(&self) -> PeerId {
        self.state.identity.peer_id()
    }
    /// Bound listen addresses, each with `/p2p/<peer id>` appended.
    pub fn dial_addrs(&self) -> Vec<libp2p::Multiaddr> {
        self.listen_addrs
            .iter()
            .map(|a| a.clone().with(libp2p::multiaddr::Protocol::P2p(self.peer_id())))
            .collect()
    }

    /// Stops the node in order: API, network and services, in-flight tasks, store.
    pub async fn shutdown(self) -> Result<(), NodeError> {
        info!("shutting down");
        self.state.cancel.cancel();
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, self.api_task).await;
        self.state.tasks.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.state.tasks.wait())
            .await
            .is_err()
        {
            warn!("in-flight tasks did not finish within the grace period");
        }
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, self.net_task).await;
        if let Some(sb) = &self.state.sandbox {
            sb.drain_pool();
            match sb.remove_all_own().await {
                Ok(0) => {}
                Ok(n) => info!(
                    removed = n,
                    "removed sandbox containers still running at shutdown"
                ),
                Err(e) => warn!(error = %e, "could not remove sandbox containers at shutdown"),
            }
        }
        info!("stopped");
        Ok(())
    }
}

fn load_or_create_token(dir: &std::path::Path) -> Result<String, NodeError> {
    let path = dir.join(TOKEN_FILE);
    let err = |source| NodeError::DataDir {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(t) if t.trim().len() >= 32 => Ok(t.trim().to_owned()),
        Ok(_) => Err(err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "API token file is too short; delete it to create a new one",
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut b = [0u8; 32];
            rand::fill(&mut b);
            let t = hex::encode(b);
            write_private(&path, t.as_bytes()).map_err(err)?;
            Ok(t)
        }
        Err(e) => Err(err(e)),
    }
}

/// Routes network events to bounded tasks.
async fn dispatch(state: Arc<NodeState>, mut events: tokio::sync::mpsc::Receiver<NetworkEvent>) {
    loop {
        let ev = tokio::select! {
            biased;
            _ = state.cancel.cancelled() => break,
            ev = events.recv() => match ev { Some(e) => e, None => break },
        };
        let Ok(permit) = state.peer_tasks.clone().acquire_owned().await else {
            break;
        };
        let st = state.clone();
        match ev {
            NetworkEvent::Gossip {
                source,
                author,
                message_id,
                data,
            } => {
                state.tasks.spawn(async move {
                    ingest::on_gossip(&st, source, author, message_id, data).await;
                    drop(permit);
                });
            }
            NetworkEvent::InboundRequest {
                proto,
                peer,
                request,
                channel,
            } => {
                state.tasks.spawn(async move {
                    serve::on_request(&st, proto, peer, request, channel).await;
                    drop(permit);
                });
            }
            NetworkEvent::PeerConnected { peer } => {
                state.tasks.spawn(async move {
                    sync::with_peer(&st, peer).await;
                    drop(permit);
                });
            }
            NetworkEvent::PeerIdentified { peer, addrs } => {
                state.tasks.spawn(async move {
                    sync::remember_peer(&st, peer, addrs).await;
                    drop(permit);
                });
            }
        }
    }
}
