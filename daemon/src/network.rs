//! The peer-to-peer network: one libp2p swarm owned by one task.
//!
//! Who talks to whom:
//!
//! - [`spawn`] builds the swarm, binds every listen address, dials the
//!   bootstrap peers and starts the [`event_loop`] task, returning a
//!   [`NetworkHandle`] and a receiver of [`NetworkEvent`]s. While the node
//!   has no connected peer, the loop dials the bootstrap peers again with
//!   exponential backoff (1 s doubling to 30 s, jittered).
//! - The handle (cloneable) sends [`handle::Command`]s over a bounded channel;
//!   each command that needs an answer carries a oneshot sender.
//! - The loop turns swarm events into [`NetworkEvent`]s (gossip received,
//!   inbound requests, peers connected) on a bounded channel; the node's
//!   services verify and store outside the loop, then answer through the
//!   handle (gossip verdicts, responses). The loop never awaits slow work.
//! - The loop ends when its cancellation token fires or every handle is dropped.

pub mod behaviour;
pub mod budget;
pub mod codec;
pub mod dht_store;
pub mod event;
pub mod event_loop;
pub mod handle;
pub mod keys;
pub mod nat;
pub mod proto;

use std::sync::Arc;
use std::time::Duration;

use libp2p::{SwarmBuilder, noise, tcp, yamux};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

pub use event::NetworkEvent;
pub use handle::{Lookup, NetworkError, NetworkHandle, PeerInfo, StatusInfo};
pub use keys::{TAG_SHARDS, all_shard_keys, name_key, tag_key};
pub use proto::Proto;

use crate::config::NetworkOptions;
use crate::identity::Identity;

/// Capacity of the command channel (handle → loop).
pub const COMMAND_CAPACITY: usize = 1024;
/// Capacity of the event channel (loop → node). Events that do not fit are
/// dropped and counted; gossip then times out unvalidated and is not forwarded.
pub const EVENT_CAPACITY: usize = 4096;
/// How long [`spawn`] waits for every listener to bind.
pub const BIND_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds the swarm, binds the listeners and starts the event loop.
pub async fn spawn(
    identity: &Identity,
    opts: &NetworkOptions,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) -> Result<
    (
        NetworkHandle,
        mpsc::Receiver<NetworkEvent>,
        tokio::task::JoinHandle<()>,
    ),
    NetworkError,
> {
    let idle = opts.idle_timeout;
    let mut swarm = SwarmBuilder::with_existing_identity(identity.keypair.clone())
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| NetworkError::Setup(e.to_string()))?
        .with_quic()
        // `/dns4/…` and `/dns/…` addresses (bootstrap by name: Swarm services,
        // Kubernetes pods), resolved with the system's resolver configuration.
        .with_dns()
        .map_err(|e| NetworkError::Setup(format!("cannot read the system DNS configuration: {e}")))?
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(|e| NetworkError::Setup(e.to_string()))?
        .with_behaviour(|key, relay_client| {
            metrics.gossip().with_registry(|registry| {
                behaviour::Behaviour::new(key, opts, registry, metrics.budget_counter(), relay_client)
                    .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
            })
        })
        .map_err(|e| NetworkError::Setup(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(idle))
        .build();
    let mut listeners = Vec::new();
    for addr in &opts.listen {
        let id = swarm
            .listen_on(addr.clone())
            .map_err(|e| NetworkError::Setup(format!("cannot listen on {addr}: {e}")))?;
        listeners.push(id);
    }
    let listen_addrs = event_loop::wait_for_listeners(&mut swarm, &listeners, BIND_TIMEOUT).await?;
    for addr in &opts.bootstrap {
        event_loop::add_bootstrap(&mut swarm, addr);
    }
    let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_CAPACITY);
    let (ev_tx, ev_rx) = mpsc::channel(EVENT_CAPACITY);
    let responses = budget::ResponseBudget::new(opts.budgets.response_bytes_in_flight);
    let handle = NetworkHandle::new(
        cmd_tx,
        *swarm.local_peer_id(),
        metrics.gossip().clone(),
        responses,
    );
    let lp = event_loop::NetworkLoop::new(
        swarm,
        budget::RequestRates::new(&opts.budgets),
        cmd_rx,
        ev_tx,
        listen_addrs,
        opts.bootstrap.clone(),
        &opts.nat,
        metrics,
        cancel,
    );
    let join = tokio::spawn(lp.run());
    Ok((handle, ev_rx, join))
}
