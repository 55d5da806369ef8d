//! The node as a value: [`Node::bind`] opens the store, loads the catalog,
//! binds the network and the local API, and starts the services;
//! [`Node::shutdown`] stops them in order.
//!
//! Tasks and channels:
//!
//! - network loop (owns the swarm) → `NetworkEvent`s → the event dispatcher
//!   task, which spawns one bounded task per gossip message or peer request
//!   ([`ingest::Ingest`], [`respond::Responder`]) and a sync round per new
//!   peer ([`sync::Syncer`]);
//! - a periodic anti-entropy task ([`sync`]) and, at start, one task that
//!   announces the DHT keys of every spec this node runs ([`crate::announce`]);
//! - the API server (axum), calling the services it holds
//!   ([`publish::Publisher`], [`provide::Consent`], [`discover::Discovery`],
//!   [`invoke::caller::Caller`]).
//!
//! Every service holds the handles it uses (the [`Repo`], the network
//! handle, the metrics, …), not the node; the node builds them in
//! [`Node::bind`]. Nothing under `node/` imports this file.
//!
//! One `CancellationToken` tree: the node's token cancels every task.
//!
//! Shutdown order: stop the API (no new requests), cancel the network and the
//! services, wait for in-flight tasks (bounded), then drop the store (redb
//! flushes committed transactions; nothing uncommitted is half-written).

pub mod discover;
pub mod ingest;
pub mod invoke;
pub mod provide;
pub mod publish;
pub mod respond;
pub mod spec_queue;
pub mod sync;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use libp2p::PeerId;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::announce::Announcer;
use crate::api::ApiContext;
use crate::config::Config;
use crate::identity::{Identity, write_private};
use crate::metrics::Metrics;
use crate::network::{self, NetworkEvent, NetworkHandle};
use crate::repo::Repo;
use crate::store::Store;
use discover::Discovery;
use ingest::Ingest;
use invoke::caller::Caller;
use invoke::provider::Provider;
use provide::Consent;
use publish::Publisher;
use respond::Responder;
use sync::Syncer;

pub use crate::store::STORE_FILE;
pub use atr_protocol::local::TOKEN_FILE;
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
    /// Egress was enabled but its network or proxy could not be set up.
    #[error("egress: {0}")]
    Egress(String),
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

/// A running node.
#[must_use = "dropping a Node without shutdown() leaves its tasks running until the runtime stops"]
pub struct Node {
    repo: Repo,
    net: NetworkHandle,
    metrics: Arc<Metrics>,
    identity: Identity,
    sandbox: Option<crate::sandbox::Sandbox>,
    services: Services,
    token: String,
    cancel: CancellationToken,
    tasks: TaskTracker,
    api_addr: SocketAddr,
    api_task: tokio::task::JoinHandle<()>,
    net_task: tokio::task::JoinHandle<()>,
    listen_addrs: Vec<libp2p::Multiaddr>,
    /// The egress bridge's host firewall chain, removed at shutdown.
    egress_firewall: Option<crate::egress::firewall::HostFirewall>,
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
        let me = identity.secret.public();
        let trusted = config.trusted_publishers.clone();
        let repo = tokio::task::spawn_blocking(move || Repo::load(store, me, &trusted))
            .await
            .map_err(|e| NodeError::Task(e.to_string()))??;

        let cancel = CancellationToken::new();
        let metrics = Arc::new(Metrics::new());
        let (net, events, net_task) =
            network::spawn(&identity, &config.network, metrics.clone(), cancel.child_token()).await?;
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

        let tasks = TaskTracker::new();
        let announcer = Announcer::new(net.clone(), me);
        let ingest = Ingest::new(repo.clone(), announcer.clone(), net.clone(), metrics.clone())
            .with_spec_queue(config.network.budgets.gossip_spec_queue);
        let schemas = Arc::new(invoke::SchemaCache::default());
        let (egress, egress_firewall) = match (&sandbox, config.egress.enabled) {
            (Some(sb), true) => {
                let (service, firewall) = start_egress(sb, &config.egress, cancel.child_token()).await?;
                (Some(service), firewall)
            }
            (None, true) => {
                warn!("egress enabled but no sandbox: tools with egress are refused");
                (None, None)
            }
            _ => (None, None),
        };
        let provider = Provider::new(
            repo.clone(),
            sandbox.clone(),
            identity.clone(),
            config.invoke.clone(),
            schemas.clone(),
        )
        .with_egress(egress)
        .with_secrets_dir(crate::secrets::dir(&config.data_dir));
        let services = Services {
            publisher: Publisher::new(
                repo.clone(),
                ingest.clone(),
                announcer.clone(),
                net.clone(),
                identity.clone(),
                sandbox.clone(),
            ),
            consent: Consent::new(repo.clone(), announcer.clone(), sandbox.clone()),
            discovery: Discovery::new(
                repo.clone(),
                ingest.clone(),
                net.clone(),
                metrics.clone(),
                cancel.child_token(),
            ),
            caller: Caller::new(
                repo.clone(),
                net.clone(),
                provider.clone(),
                schemas,
                config.trusted_providers.clone(),
            ),
            ingest: ingest.clone(),
        };
        let syncer = Syncer::new(
            repo.clone(),
            ingest.clone(),
            net.clone(),
            metrics.clone(),
            config.network.sync_interval,
            sync::RoundBudget {
                rounds: config.network.budgets.sync_rounds,
                deadline: config.network.budgets.sync_round_deadline,
            },
            cancel.child_token(),
            tasks.clone(),
        );
        let dispatcher = Dispatcher {
            ingest,
            responder: Responder::new(repo.clone(), net.clone(), metrics.clone(), provider),
            syncer: syncer.clone(),
            peer_tasks: Arc::new(Semaphore::new(MAX_INFLIGHT_PEER_TASKS)),
            tasks: tasks.clone(),
            cancel: cancel.clone(),
        };
        let api = ApiContext {
            claims: crate::claims::DomainClaims::new(&config.claims),
            spec_json: Arc::default(),
            explorer: config.explorer,
            repo: repo.clone(),
            net: net.clone(),
            metrics: metrics.clone(),
            token: token.clone(),
            publisher: services.publisher.clone(),
            consent: services.consent.clone(),
            discovery: services.discovery.clone(),
            caller: services.caller.clone(),
            access: crate::api::guard::Access::new(
                api_addr,
                config.api_allow_remote,
                config.api_hosts.clone(),
            ),
            warnings: sandbox
                .as_ref()
                .and_then(|sb| sb.confinement()?.warning())
                .map(str::to_owned)
                .into_iter()
                .collect(),
        };
        info!(api = %api_addr, "local API listening");
        let api_task = tokio::spawn(crate::api::run(listener, api, cancel.child_token()));
        tasks.spawn(dispatcher.run(events));
        tasks.spawn(syncer.clone().periodic());
        let (a, r, c) = (announcer, repo.clone(), cancel.clone());
        tasks.spawn(async move { a.announce_all(&r, &c).await });
        tasks.spawn(syncer.dial_known_peers());
        tasks.spawn(retry_unpersisted(repo.clone(), cancel.child_token()));
        Ok(Self {
            repo,
            net,
            metrics,
            identity,
            sandbox,
            services,
            token,
            cancel,
            tasks,
            api_addr,
            api_task,
            net_task,
            listen_addrs,
            egress_firewall,
        })
    }

    /// The repository (store, catalog, provided set).
    pub fn repo(&self) -> &Repo {
        &self.repo
    }
    /// The network handle.
    pub fn net(&self) -> &NetworkHandle {
        &self.net
    }
    /// The node's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }
    /// The node key.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }
    /// This node's publisher key.
    pub fn public_key(&self) -> atr_protocol::PublicKey {
        self.identity.secret.public()
    }
    /// The Docker sandbox, when connected (this node can run tools).
    pub fn sandbox(&self) -> Option<&crate::sandbox::Sandbox> {
        self.sandbox.as_ref()
    }
    /// The API bearer token.
    pub fn api_token(&self) -> &str {
        &self.token
    }
    /// The services, for embedding and tests.
    pub fn services(&self) -> &Services {
        &self.services
    }
    /// The bound API address.
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }
    /// The peer id.
    pub fn peer_id(&self) -> PeerId {
        self.identity.peer_id()
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
        self.cancel.cancel();
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, self.api_task).await;
        self.tasks.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.tasks.wait())
            .await
            .is_err()
        {
            warn!("in-flight tasks did not finish within the grace period");
        }
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, self.net_task).await;
        if let Some(sb) = &self.sandbox {
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
        if let Some(fw) = self.egress_firewall {
            fw.remove().await;
        }
        info!("stopped");
        Ok(())
    }
}

/// How often revocations applied but not yet stored (a full or failing
/// disk) are written again; every later write also tries first.
const UNPERSISTED_RETRY: Duration = Duration::from_secs(30);

/// Retries, every [`UNPERSISTED_RETRY`], storing the revocations of held specs
/// that were applied while the store could not keep them, and deletes
/// expired delegations.
async fn retry_unpersisted(repo: Repo, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(UNPERSISTED_RETRY);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        match repo.blocking(|r| r.retry_unpersisted()).await {
            Ok(0) => {}
            Ok(n) => warn!(waiting = n, "applied revocations still not stored"),
            Err(e) => warn!(error = %e, "revocation retry task failed"),
        }
        // Same cadence: expired delegations leave the catalog and the store.
        match repo.blocking(|r| r.expire_delegations()).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => debug!(expired = n, "expired delegations deleted"),
            Ok(Err(e)) => warn!(error = %e, "cannot delete expired delegations"),
            Err(e) => warn!(error = %e, "delegation expiry task failed"),
        }
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

/// The services the API and embedders call.
#[derive(Clone)]
#[non_exhaustive]
pub struct Services {
    /// Publish and revoke.
    pub publisher: Publisher,
    /// Consent to run foreign specs.
    pub consent: Consent,
    /// Find on the network.
    pub discovery: Discovery,
    /// Invoke tools.
    pub caller: Caller,
    /// Verify and store objects.
    pub ingest: Ingest,
}

/// Routes network events to bounded tasks.
struct Dispatcher {
    ingest: Ingest,
    responder: Responder,
    syncer: Syncer,
    /// Bounds concurrent peer tasks.
    peer_tasks: Arc<Semaphore>,
    tasks: TaskTracker,
    cancel: CancellationToken,
}

impl Dispatcher {
    async fn run(self, mut events: tokio::sync::mpsc::Receiver<NetworkEvent>) {
        loop {
            let ev = tokio::select! {
                biased;
                _ = self.cancel.cancelled() => break,
                ev = events.recv() => match ev { Some(e) => e, None => break },
            };
            if let NetworkEvent::PeerConnected { peer } = ev {
                // Rounds have their own slots (and skip when none is free):
                // they never hold a peer-task permit.
                let syncer = self.syncer.clone();
                self.tasks.spawn(async move { syncer.with_peer(peer).await });
                continue;
            }
            let Ok(permit) = self.peer_tasks.clone().acquire_owned().await else {
                break;
            };
            match ev {
                NetworkEvent::Gossip {
                    source,
                    author,
                    message_id,
                    data,
                } => {
                    let ingest = self.ingest.clone();
                    self.tasks.spawn(async move {
                        ingest.on_gossip(source, author, message_id, data, permit).await;
                    });
                }
                NetworkEvent::InboundRequest {
                    proto,
                    peer,
                    request_id,
                    request,
                    channel,
                } => {
                    let responder = self.responder.clone();
                    self.tasks.spawn(async move {
                        responder
                            .on_request(proto, peer, request_id, request, channel)
                            .await;
                        drop(permit);
                    });
                }
                // Handled above, without a permit.
                NetworkEvent::PeerConnected { .. } => drop(permit),
                NetworkEvent::PeerIdentified { peer, addrs } => {
                    let syncer = self.syncer.clone();
                    self.tasks.spawn(async move {
                        syncer.remember_peer(peer, addrs).await;
                        drop(permit);
                    });
                }
            }
        }
    }
}

/// Creates (or finds) the internal egress network, starts the proxy on its gateway and, unless
/// the operator's firewall does it, installs the rules closing the bridge's way to the host
/// (egress is not enabled without them).
async fn start_egress(
    sb: &crate::sandbox::Sandbox,
    cfg: &crate::config::EgressConfig,
    cancel: CancellationToken,
) -> Result<
    (
        invoke::provider::EgressService,
        Option<crate::egress::firewall::HostFirewall>,
    ),
    NodeError,
> {
    let net = crate::egress::network::ensure(sb.docker(), &cfg.network, cfg.subnet.as_deref())
        .await
        .map_err(|e| NodeError::Egress(e.to_string()))?;
    let gateway = net.gateway;
    let mut proxy_cfg = cfg.proxy.clone();
    proxy_cfg.deny.push(gateway.into());
    let proxy_cancel = cancel.child_token();
    let proxy = crate::egress::EgressProxy::start(
        SocketAddr::new(gateway.into(), 0),
        proxy_cfg,
        proxy_cancel.clone(),
    )
    .await
    .map_err(|e| NodeError::Egress(format!("cannot listen on the egress gateway {gateway}: {e}")))?;
    let firewall = match cfg.host_firewall {
        crate::config::HostFirewallMode::Atr => {
            let fw = crate::egress::firewall::HostFirewall::install(
                &cfg.network,
                &net.bridge,
                gateway,
                proxy.addr().port(),
            )
            .await;
            match fw {
                Ok(fw) => Some(fw),
                Err(e) => {
                    proxy_cancel.cancel();
                    return Err(NodeError::Egress(format!(
                        "cannot close the egress bridge `{}` to the host: {e}",
                        net.bridge
                    )));
                }
            }
        }
        crate::config::HostFirewallMode::Operator => {
            warn!(
                bridge = %net.bridge,
                proxy = %proxy.addr(),
                "egress host firewall left to the operator: the host must drop every packet from this bridge except TCP to the proxy"
            );
            None
        }
    };
    info!(network = %cfg.network, proxy = %proxy.addr(), "egress proxy ready");
    Ok((
        invoke::provider::EgressService {
            network: cfg.network.clone(),
            proxy,
        },
        firewall,
    ))
}
