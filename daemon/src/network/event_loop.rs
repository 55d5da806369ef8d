//! The task that owns the swarm. Every `select!` arm is one call; nothing in
//! here awaits anything but the swarm and the command channel.

use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use atr_protocol::wire;
use futures::StreamExt;
use libp2p::core::transport::ListenerId;
use libp2p::gossipsub::{self, IdentTopic};
use libp2p::request_response::{self, InboundRequestId, OutboundRequestId};
use libp2p::swarm::SwarmEvent;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::{Multiaddr, PeerId, Swarm, autonat, dcutr, identify, kad, mdns, relay};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, trace, warn};

use super::behaviour::{Behaviour, BehaviourEvent};
use super::budget::{PeerLedger, RequestRates, ResponsePermit};
use super::event::NetworkEvent;
use super::handle::{Command, Lookup, NetworkError, PeerInfo, StatusInfo};
use super::nat::{self, MdnsPeers, MdnsVerdict, Reservations};
use super::proto::Proto;
use crate::config::{NatOptions, ReserveMode};
use crate::metrics::Metrics;

/// How often per-peer tables are trimmed (idle rate buckets, decayed
/// scores, expired bans, expired DHT records).
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(60);
/// Interval of DHT bootstrap (routing table refresh).
const BOOTSTRAP_INTERVAL: Duration = Duration::from_secs(300);
/// First delay before the bootstrap peers are dialed again while the node
/// has no connected peer; it doubles after each attempt.
pub const BOOTSTRAP_RETRY_MIN: Duration = Duration::from_secs(1);
/// Longest delay between two bootstrap retries.
pub const BOOTSTRAP_RETRY_MAX: Duration = Duration::from_secs(30);

type Reply<T> = oneshot::Sender<Result<T, NetworkError>>;
/// A provider lookup in progress: providers so far, how far it goes, who waits.
type ProviderQuery = (HashSet<PeerId>, Lookup, Reply<HashSet<PeerId>>);

/// The loop's state.
pub(crate) struct NetworkLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<NetworkEvent>,
    listen_addrs: Vec<Multiaddr>,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
    topic: IdentTopic,
    providers: HashMap<kad::QueryId, ProviderQuery>,
    fetches: HashMap<OutboundRequestId, (PeerId, Reply<Vec<u8>>)>,
    syncs: HashMap<OutboundRequestId, (PeerId, Reply<Vec<u8>>)>,
    invokes: HashMap<OutboundRequestId, (PeerId, Reply<Vec<u8>>)>,
    indexes: HashMap<OutboundRequestId, (PeerId, Reply<Vec<u8>>)>,
    dials: HashMap<libp2p::swarm::ConnectionId, (String, Reply<()>)>,
    /// Bad messages and bans per peer.
    ledger: PeerLedger,
    /// Request rate per peer and protocol.
    rates: RequestRates,
    /// Budget of responses handed to the swarm, until sent or failed.
    responding: HashMap<InboundRequestId, ResponsePermit>,
    /// The remote address of each open connection, for `atr peers` (removed
    /// when it closes; bounded by the connection limits).
    connections: HashMap<libp2p::swarm::ConnectionId, (PeerId, Multiaddr)>,
    /// Configured bootstrap addresses (each ends in `/p2p/PEERID`).
    bootstrap_addrs: Vec<Multiaddr>,
    /// Fires the next bootstrap retry while `retry_armed`.
    retry: Pin<Box<tokio::time::Sleep>>,
    /// Whether a retry is scheduled (the node has no connected peer).
    retry_armed: bool,
    /// Delay before the retry after the next one (doubles, capped).
    retry_delay: Duration,
    /// What AutoNAT last concluded.
    reachability: autonat::NatStatus,
    /// When to reserve relay slots.
    reserve: ReserveMode,
    /// This node relays for others: its listen addresses are its external
    /// addresses (a relay hands them to the peers that reserve on it).
    relay_server: bool,
    /// Relays: candidates and the reservations held.
    reservations: Reservations,
    /// Peers found by mDNS (capped, private addresses only).
    mdns_peers: MdnsPeers,
    /// The address each peer was last dialed at directly (to reserve on it
    /// if it turns out to be a relay); removed when its connections close.
    dialed: HashMap<PeerId, Multiaddr>,
}

/// `delay` with equal jitter: half of it plus a random part of the other half,
/// so nodes started together do not retry in step.
fn jittered(delay: Duration) -> Duration {
    let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(ms / 2 + rand::random_range(0..=ms / 2))
}

/// Polls the swarm until each listener reported an address.
pub(crate) async fn wait_for_listeners(
    swarm: &mut Swarm<Behaviour>,
    listeners: &[ListenerId],
    timeout: Duration,
) -> Result<Vec<Multiaddr>, NetworkError> {
    let mut pending: HashSet<ListenerId> = listeners.iter().copied().collect();
    let mut addrs = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while !pending.is_empty() {
        let ev = tokio::time::timeout_at(deadline, swarm.select_next_some())
            .await
            .map_err(|_| NetworkError::Setup("timed out binding listen addresses".into()))?;
        match ev {
            SwarmEvent::NewListenAddr { listener_id, address } => {
                info!(%address, "listening");
                pending.remove(&listener_id);
                addrs.push(address);
            }
            SwarmEvent::ListenerClosed { reason, .. } => {
                return Err(NetworkError::Setup(format!("listener closed: {reason:?}")));
            }
            SwarmEvent::ListenerError { error, .. } => {
                return Err(NetworkError::Setup(format!("listener error: {error}")));
            }
            other => trace!(?other, "event before listeners were bound"),
        }
    }
    Ok(addrs)
}

/// Adds a bootstrap address (`…/p2p/PEERID`) to the DHT and dials it.
pub(crate) fn add_bootstrap(swarm: &mut Swarm<Behaviour>, addr: &Multiaddr) {
    let Some(libp2p::multiaddr::Protocol::P2p(peer)) = addr.iter().last() else {
        warn!(%addr, "bootstrap address without /p2p/PEERID ignored");
        return;
    };
    swarm.behaviour_mut().kad.add_address(&peer, addr.clone());
    if let Err(e) = swarm.dial(addr.clone()) {
        warn!(%addr, error = %e, "cannot dial bootstrap peer");
    }
}

impl NetworkLoop {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        swarm: Swarm<Behaviour>,
        rates: RequestRates,
        commands: mpsc::Receiver<Command>,
        events: mpsc::Sender<NetworkEvent>,
        listen_addrs: Vec<Multiaddr>,
        bootstrap_addrs: Vec<Multiaddr>,
        nat_opts: &NatOptions,
        metrics: Arc<Metrics>,
        cancel: CancellationToken,
    ) -> Self {
        // Armed from the start: the first check comes after BOOTSTRAP_RETRY_MIN
        // and does nothing if the initial dials connected.
        let retry_armed = !bootstrap_addrs.is_empty();
        let mut swarm = swarm;
        if nat_opts.relay_server {
            for a in &listen_addrs {
                swarm.add_external_address(a.clone());
            }
        }
        Self {
            swarm,
            commands,
            events,
            listen_addrs,
            metrics,
            cancel,
            topic: IdentTopic::new(wire::GOSSIP_TOPIC),
            providers: HashMap::new(),
            fetches: HashMap::new(),
            syncs: HashMap::new(),
            invokes: HashMap::new(),
            indexes: HashMap::new(),
            dials: HashMap::new(),
            ledger: PeerLedger::default(),
            rates,
            responding: HashMap::new(),
            connections: HashMap::new(),
            bootstrap_addrs,
            retry: Box::pin(tokio::time::sleep(jittered(BOOTSTRAP_RETRY_MIN))),
            retry_armed,
            retry_delay: BOOTSTRAP_RETRY_MIN,
            reachability: autonat::NatStatus::Unknown,
            reserve: nat_opts.reserve,
            relay_server: nat_opts.relay_server,
            reservations: Reservations::new(&nat_opts.relays, nat_opts.max_relays),
            mdns_peers: MdnsPeers::new(nat_opts.mdns_max_peers),
            dialed: HashMap::new(),
        }
    }

    /// Runs until cancelled or every handle is dropped.
    pub(crate) async fn run(mut self) {
        let mut bootstrap = tokio::time::interval(BOOTSTRAP_INTERVAL);
        let mut housekeeping = tokio::time::interval(HOUSEKEEPING_INTERVAL);
        loop {
            tokio::select! {
                biased;
                _ = self.cancel.cancelled() => break,
                cmd = self.commands.recv() => match cmd {
                    Some(c) => self.on_command(c),
                    None => break,
                },
                ev = self.swarm.select_next_some() => self.on_swarm_event(ev),
                _ = &mut self.retry, if self.retry_armed => self.retry_bootstrap(),
                _ = bootstrap.tick() => self.bootstrap(),
                _ = housekeeping.tick() => self.housekeeping(),
            }
        }
        info!("network loop stopped");
    }

    fn housekeeping(&mut self) {
        let now = Instant::now();
        self.rates.forget_idle();
        for peer in self.ledger.expire(now) {
            info!(%peer, "ban lifted");
            self.swarm
                .behaviour_mut()
                .gossipsub
                .remove_blacklisted_peer(&peer);
        }
        let expired = self.swarm.behaviour_mut().kad.store_mut().sweep_expired(now);
        if expired > 0 {
            debug!(expired, "expired DHT provider records dropped");
        }
        self.update_reservations();
    }

    /// Whether this node should hold relay reservations now.
    fn wants_reservations(&self) -> bool {
        match self.reserve {
            ReserveMode::Always => true,
            ReserveMode::Never => false,
            ReserveMode::Auto => matches!(self.reachability, autonat::NatStatus::Private),
        }
    }

    /// Listens on `<relay>/p2p-circuit` for the wanted relays, or closes
    /// every circuit listener when reservations are no longer wanted.
    fn update_reservations(&mut self) {
        if !self.wants_reservations() {
            let active: Vec<_> = self.reservations.active.drain().collect();
            for (relay, id) in active {
                info!(%relay, "reachable: relay reservation dropped");
                self.swarm.remove_listener(id);
            }
            return;
        }
        for (relay, addr) in self.reservations.wanted() {
            match self.swarm.listen_on(addr.clone()) {
                Ok(id) => {
                    info!(%relay, %addr, "reserving a slot on a relay");
                    self.reservations.active.insert(relay, id);
                }
                Err(e) => {
                    warn!(%addr, error = %e, "cannot listen through relay");
                    self.reservations.forget(&relay);
                }
            }
        }
    }

    fn bootstrap(&mut self) {
        if let Err(e) = self.swarm.behaviour_mut().kad.bootstrap() {
            debug!(error = %e, "DHT bootstrap skipped");
        }
    }

    /// Schedules a bootstrap retry in about `delay`.
    fn arm_retry(&mut self, delay: Duration) {
        self.retry_armed = true;
        self.retry
            .as_mut()
            .reset(tokio::time::Instant::now() + jittered(delay));
    }

    /// While no peer is connected, dials every bootstrap peer not already
    /// being dialed and schedules the next retry (1 s doubling to 30 s).
    fn retry_bootstrap(&mut self) {
        if self.swarm.connected_peers().next().is_some() {
            self.retry_armed = false;
            self.retry_delay = BOOTSTRAP_RETRY_MIN;
            return;
        }
        if self.retry_delay == BOOTSTRAP_RETRY_MIN {
            info!(
                peers = self.bootstrap_addrs.len(),
                "no connected peers: dialing the bootstrap peers again"
            );
        } else {
            debug!(next_in = ?self.retry_delay, "bootstrap retry");
        }
        for addr in &self.bootstrap_addrs {
            let Some(libp2p::multiaddr::Protocol::P2p(peer)) = addr.iter().last() else {
                continue;
            };
            // A failed dial may have removed the address from the routing table.
            self.swarm.behaviour_mut().kad.add_address(&peer, addr.clone());
            let opts = DialOpts::peer_id(peer)
                .addresses(vec![addr.clone()])
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            if let Err(e) = self.swarm.dial(opts) {
                debug!(%addr, error = %e, "bootstrap retry dial not started");
            }
        }
        self.retry_delay = (self.retry_delay * 2).min(BOOTSTRAP_RETRY_MAX);
        let next = self.retry_delay;
        self.arm_retry(next);
    }

    fn emit(&mut self, ev: NetworkEvent) {
        if let Err(e) = self.events.try_send(ev) {
            self.metrics.events_dropped.inc();
            warn!(error = %e, "node is not keeping up; network event dropped");
        }
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Publish { data, reply } => {
                let r = match self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .publish(self.topic.clone(), data)
                {
                    Ok(_) => Ok(true),
                    Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => Ok(false),
                    Err(gossipsub::PublishError::Duplicate) => Ok(true),
                    Err(e) => Err(NetworkError::Publish(e.to_string())),
                };
                let _ = reply.send(r);
            }
            Command::Verdict {
                message_id,
                source,
                acceptance,
            } => {
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&message_id, &source, acceptance);
            }
            Command::Penalize { peer, reason } => self.penalize(peer, reason),
            Command::Announce { key, reply } => {
                let r = self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .start_providing(kad::RecordKey::new(&key))
                    .map(|_| ())
                    .map_err(|e| NetworkError::Dht(e.to_string()));
                let _ = reply.send(r);
            }
            Command::Withdraw { key } => {
                self.swarm
                    .behaviour_mut()
                    .kad
                    .stop_providing(&kad::RecordKey::new(&key));
            }
            Command::GetProviders { key, lookup, reply } => {
                let id = self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .get_providers(kad::RecordKey::new(&key));
                self.providers.insert(id, (HashSet::new(), lookup, reply));
            }
            Command::Request {
                proto,
                peer,
                bytes,
                reply,
            } => {
                let b = self.swarm.behaviour_mut();
                match proto {
                    Proto::Fetch => {
                        let id = b.fetch.send_request(&peer, bytes);
                        self.fetches.insert(id, (peer, reply));
                    }
                    Proto::Sync => {
                        let id = b.sync.send_request(&peer, bytes);
                        self.syncs.insert(id, (peer, reply));
                    }
                    Proto::Invoke => {
                        let id = b.invoke.send_request(&peer, bytes);
                        self.invokes.insert(id, (peer, reply));
                    }
                    Proto::Index => {
                        let id = b.index.send_request(&peer, bytes);
                        self.indexes.insert(id, (peer, reply));
                    }
                }
            }
            Command::Respond {
                proto,
                request_id,
                channel,
                bytes,
                permit,
            } => {
                let b = self.swarm.behaviour_mut();
                let r = match proto {
                    Proto::Fetch => b.fetch.send_response(channel, bytes),
                    Proto::Sync => b.sync.send_response(channel, bytes),
                    Proto::Invoke => b.invoke.send_response(channel, bytes),
                    Proto::Index => b.index.send_response(channel, bytes),
                };
                if r.is_err() {
                    debug!(?proto, "response dropped: the requester went away");
                } else {
                    self.responding.insert(request_id, permit);
                }
            }
            Command::Dial { addr, reply } => {
                let opts = libp2p::swarm::dial_opts::DialOpts::unknown_peer_id()
                    .address(addr.clone())
                    .build();
                let id = opts.connection_id();
                match self.swarm.dial(opts) {
                    Ok(()) => {
                        self.dials.insert(id, (addr.to_string(), reply));
                    }
                    Err(e) => {
                        // Refused by a budget before the dial started (no event follows).
                        if let libp2p::swarm::DialError::Denied { cause } = &e {
                            self.metrics.budget_exceeded(denial_budget(cause));
                        }
                        let _ = reply.send(Err(NetworkError::Dial {
                            addr: addr.to_string(),
                            detail: e.to_string(),
                        }));
                    }
                }
            }
            Command::Status { reply } => {
                let _ = reply.send(self.status());
            }
        }
    }

    fn status(&mut self) -> StatusInfo {
        let mut listen: Vec<String> = self.swarm.listeners().map(|a| a.to_string()).collect();
        if listen.is_empty() {
            listen = self.listen_addrs.iter().map(|a| a.to_string()).collect();
        }
        let connected: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        let gs = &self.swarm.behaviour().gossipsub;
        let peers = connected
            .iter()
            .map(|p| PeerInfo {
                peer: p.to_string(),
                addrs: {
                    let mut a: Vec<String> = self
                        .connections
                        .values()
                        .filter(|(peer, _)| peer == p)
                        .map(|(_, addr)| addr.to_string())
                        .collect();
                    a.sort();
                    a.dedup();
                    a
                },
                score: gs.peer_score(p),
                bad_messages: self.ledger.bad_messages(p),
            })
            .collect();
        StatusInfo {
            listen_addrs: listen,
            peers,
            mesh_peers: gs.mesh_peers(&self.topic.hash()).count(),
            reachability: match &self.reachability {
                autonat::NatStatus::Public(_) => "public",
                autonat::NatStatus::Private => "private",
                autonat::NatStatus::Unknown => "unknown",
            }
            .into(),
            relays: self.reservations.active.keys().map(|p| p.to_string()).collect(),
        }
    }

    fn penalize(&mut self, peer: PeerId, reason: &'static str) {
        self.metrics.bad_message(reason);
        let p = self.ledger.penalize(peer, Instant::now());
        warn!(%peer, reason, count = p.total, "bad message from peer");
        if p.banned {
            warn!(%peer, "peer exceeded the bad-message limit: disconnected and banned");
            self.swarm.behaviour_mut().gossipsub.blacklist_peer(&peer);
            let _ = self.swarm.disconnect_peer_id(peer);
        }
    }

    fn on_swarm_event(&mut self, ev: SwarmEvent<super::behaviour::BehaviourEvent>) {
        match ev {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(e)) => self.on_gossip(e),
            SwarmEvent::Behaviour(BehaviourEvent::Kad(e)) => self.on_kad(e),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(e)) => self.on_identify(e),
            SwarmEvent::Behaviour(BehaviourEvent::Fetch(e)) => self.on_request_response(Proto::Fetch, e),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(e)) => self.on_request_response(Proto::Sync, e),
            SwarmEvent::Behaviour(BehaviourEvent::Invoke(e)) => self.on_request_response(Proto::Invoke, e),
            SwarmEvent::Behaviour(BehaviourEvent::Index(e)) => self.on_request_response(Proto::Index, e),
            SwarmEvent::Behaviour(BehaviourEvent::RelayClient(e)) => self.on_relay_client(e),
            SwarmEvent::Behaviour(BehaviourEvent::Relay(e)) => self.on_relay_server(e),
            SwarmEvent::Behaviour(BehaviourEvent::Autonat(e)) => self.on_autonat(e),
            SwarmEvent::Behaviour(BehaviourEvent::Dcutr(e)) => self.on_dcutr(e),
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(e)) => self.on_mdns(e),
            SwarmEvent::NewListenAddr { address, .. } => {
                info!(%address, "listening");
                if nat::is_relayed(&address) {
                    // Advertised through identify (listen addresses) and kad.
                    self.metrics.nat_event("relay_address");
                } else if self.relay_server {
                    self.swarm.add_external_address(address.clone());
                }
                self.listen_addrs.push(address);
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.listen_addrs.retain(|a| a != &address);
            }
            SwarmEvent::ListenerClosed {
                listener_id, reason, ..
            } => {
                let relay = self
                    .reservations
                    .active
                    .iter()
                    .find(|(_, id)| **id == listener_id)
                    .map(|(p, _)| *p);
                if let Some(relay) = relay {
                    self.reservations.active.remove(&relay);
                    self.reservations.forget(&relay);
                    warn!(%relay, ?reason, "relay reservation ended");
                    self.metrics.nat_event("reservation_lost");
                }
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                num_established,
                endpoint,
                ..
            } => {
                if self.ledger.is_banned(&peer_id, Instant::now()) {
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return;
                }
                if let Some((_, reply)) = self.dials.remove(&connection_id) {
                    let _ = reply.send(Ok(()));
                }
                let relayed = endpoint.is_relayed();
                self.metrics
                    .connection_established(if relayed { "relayed" } else { "direct" });
                if endpoint.is_dialer() && !relayed {
                    self.dialed.insert(peer_id, endpoint.get_remote_address().clone());
                }
                self.connections
                    .insert(connection_id, (peer_id, endpoint.get_remote_address().clone()));
                if endpoint.is_dialer() {
                    self.swarm
                        .behaviour_mut()
                        .kad
                        .add_address(&peer_id, endpoint.get_remote_address().clone());
                }
                if num_established.get() == 1 {
                    debug!(peer = %peer_id, "connected");
                    self.emit(NetworkEvent::PeerConnected { peer: peer_id });
                }
                if self.retry_armed {
                    self.retry_armed = false;
                    if self.retry_delay > BOOTSTRAP_RETRY_MIN {
                        // Isolated until a retry: refresh the routing table now
                        // rather than at the next BOOTSTRAP_INTERVAL.
                        info!(peer = %peer_id, "connected after bootstrap retries");
                        self.bootstrap();
                    }
                    self.retry_delay = BOOTSTRAP_RETRY_MIN;
                }
            }
            SwarmEvent::IncomingConnectionError {
                error: libp2p::swarm::ListenError::Denied { cause },
                ..
            } => {
                self.metrics.budget_exceeded(denial_budget(&cause));
                debug!(%cause, "inbound connection refused");
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id, error, ..
            } => {
                if let libp2p::swarm::DialError::Denied { cause } = &error {
                    self.metrics.budget_exceeded(denial_budget(cause));
                }
                if let Some((addr, reply)) = self.dials.remove(&connection_id) {
                    let _ = reply.send(Err(NetworkError::Dial {
                        addr,
                        detail: error.to_string(),
                    }));
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                ..
            } => {
                self.connections.remove(&connection_id);
                if num_established > 0 {
                    return;
                }
                self.dialed.remove(&peer_id);
                debug!(peer = %peer_id, "disconnected");
                let isolated = self.swarm.connected_peers().next().is_none();
                if isolated && !self.bootstrap_addrs.is_empty() && !self.retry_armed {
                    warn!("lost every peer: retrying the bootstrap peers");
                    self.retry_delay = BOOTSTRAP_RETRY_MIN;
                    self.arm_retry(BOOTSTRAP_RETRY_MIN);
                }
            }
            other => trace!(?other, "swarm event"),
        }
    }

    fn on_gossip(&mut self, e: gossipsub::Event) {
        match e {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => {
                self.metrics.gossip_received.inc();
                if !self.rates.allow_gossip(&propagation_source) {
                    self.metrics.budget_exceeded("peer_gossip");
                    self.swarm
                        .behaviour_mut()
                        .gossipsub
                        .report_message_validation_result(
                            &message_id,
                            &propagation_source,
                            gossipsub::MessageAcceptance::Ignore,
                        );
                    return;
                }
                self.emit(NetworkEvent::Gossip {
                    source: propagation_source,
                    author: message.source,
                    message_id,
                    data: message.data,
                });
            }
            other => trace!(?other, "gossipsub event"),
        }
    }

    fn on_kad(&mut self, e: kad::Event) {
        match e {
            kad::Event::OutboundQueryProgressed { id, result, step, .. } => match result {
                kad::QueryResult::GetProviders(Ok(kad::GetProvidersOk::FoundProviders {
                    providers, ..
                })) => {
                    let first = match self.providers.get_mut(&id) {
                        Some((set, lookup, _)) => {
                            set.extend(providers);
                            *lookup == Lookup::First && !set.is_empty()
                        }
                        None => false,
                    };
                    if first && !step.last {
                        // Enough: the rest of the lookup would cost more round trips.
                        if let Some(mut q) = self.swarm.behaviour_mut().kad.query_mut(&id) {
                            q.finish();
                        }
                    }
                    if step.last || first {
                        self.finish_providers(id);
                    }
                }
                kad::QueryResult::GetProviders(Ok(kad::GetProvidersOk::FinishedWithNoAdditionalRecord {
                    ..
                })) => {
                    self.finish_providers(id);
                }
                kad::QueryResult::GetProviders(Err(e)) => {
                    // A timeout still returns what was found so far.
                    debug!(error = %e, "get_providers ended with an error");
                    self.finish_providers(id);
                }
                other => trace!(?other, "kad query progressed"),
            },
            kad::Event::RoutingUpdated { peer, .. } => trace!(%peer, "routing updated"),
            other => trace!(?other, "kad event"),
        }
    }

    fn finish_providers(&mut self, id: kad::QueryId) {
        if let Some((set, _, reply)) = self.providers.remove(&id) {
            let _ = reply.send(Ok(set));
        }
    }

    fn on_identify(&mut self, e: identify::Event) {
        if let identify::Event::Received {
            peer_id,
            info,
            connection_id,
        } = e
        {
            let speaks_kad = info.protocols.iter().any(|p| p.as_ref() == wire::KAD_PROTOCOL);
            let relays = info
                .protocols
                .iter()
                .any(|p| p.as_ref() == nat::RELAY_HOP_PROTOCOL);
            if relays {
                let addr = self.dialed.get(&peer_id).cloned().or_else(|| {
                    info.listen_addrs
                        .iter()
                        .find(|a| {
                            !nat::is_relayed(a)
                                && !a.iter().any(|p| {
                                    p == libp2p::multiaddr::Protocol::Ip4(std::net::Ipv4Addr::UNSPECIFIED)
                                })
                        })
                        .cloned()
                });
                if let Some(addr) = addr {
                    self.reservations.learn(peer_id, addr);
                    self.update_reservations();
                }
            }
            if speaks_kad {
                // A peer's loopback addresses are its own business unless
                // this node reached it over loopback (every node on one host).
                let loopback_ok = self
                    .connections
                    .get(&connection_id)
                    .is_some_and(|(_, a)| nat::is_loopback(a));
                for a in nat::dial_candidates(&info.listen_addrs, loopback_ok) {
                    self.swarm.behaviour_mut().kad.add_address(&peer_id, a);
                }
            }
            self.emit(NetworkEvent::PeerIdentified {
                peer: peer_id,
                addrs: info.listen_addrs,
            });
        }
    }

    fn on_autonat(&mut self, e: autonat::Event) {
        match e {
            autonat::Event::StatusChanged { old, new } => {
                info!(?old, ?new, "reachability changed");
                self.metrics.set_reachability(match &new {
                    autonat::NatStatus::Public(_) => "public",
                    autonat::NatStatus::Private => "private",
                    autonat::NatStatus::Unknown => "unknown",
                });
                self.reachability = new;
                self.update_reservations();
            }
            autonat::Event::InboundProbe(autonat::InboundProbeEvent::Error { peer, error, .. }) => {
                if matches!(
                    error,
                    autonat::InboundProbeError::Response(autonat::ResponseError::DialRefused)
                ) {
                    self.metrics.budget_exceeded("autonat_dialbacks");
                }
                debug!(%peer, ?error, "inbound AutoNAT probe refused");
            }
            other => trace!(?other, "autonat event"),
        }
    }

    fn on_relay_client(&mut self, e: relay::client::Event) {
        match e {
            relay::client::Event::ReservationReqAccepted {
                relay_peer_id,
                renewal,
                ..
            } => {
                if !renewal {
                    info!(relay = %relay_peer_id, "relay reservation accepted");
                }
                self.metrics.nat_event("reservation_accepted");
            }
            relay::client::Event::OutboundCircuitEstablished { relay_peer_id, .. } => {
                debug!(relay = %relay_peer_id, "outbound relayed circuit");
                self.metrics.nat_event("circuit_outbound");
            }
            relay::client::Event::InboundCircuitEstablished { src_peer_id, .. } => {
                debug!(peer = %src_peer_id, "inbound relayed circuit");
                self.metrics.nat_event("circuit_inbound");
            }
        }
    }

    #[allow(deprecated)]
    fn on_relay_server(&mut self, e: relay::Event) {
        match e {
            relay::Event::ReservationReqAccepted { src_peer_id, renewed } => {
                debug!(peer = %src_peer_id, renewed, "relaying for a peer");
                self.metrics.relay_served("reservation_accepted");
            }
            relay::Event::ReservationReqDenied { src_peer_id, status } => {
                debug!(peer = %src_peer_id, ?status, "relay reservation denied");
                self.metrics.relay_served("reservation_denied");
                self.metrics.budget_exceeded("relay_reservations");
            }
            relay::Event::ReservationTimedOut { .. } => self.metrics.relay_served("reservation_expired"),
            relay::Event::CircuitReqAccepted { .. } => self.metrics.relay_served("circuit_accepted"),
            relay::Event::CircuitReqDenied {
                src_peer_id,
                dst_peer_id,
                status,
            } => {
                debug!(src = %src_peer_id, dst = %dst_peer_id, ?status, "relayed circuit denied");
                self.metrics.relay_served("circuit_denied");
                self.metrics.budget_exceeded("relay_circuits");
            }
            relay::Event::CircuitClosed { error, .. } => {
                self.metrics.relay_served("circuit_closed");
                if error.is_some() {
                    self.metrics.relay_served("circuit_failed");
                }
            }
            other => trace!(?other, "relay server event"),
        }
    }

    fn on_dcutr(&mut self, e: dcutr::Event) {
        match e.result {
            Ok(_) => {
                info!(peer = %e.remote_peer_id, "hole punched: direct connection");
                self.metrics.hole_punch("success");
            }
            Err(err) => {
                debug!(peer = %e.remote_peer_id, error = %err, "hole punching failed");
                self.metrics.hole_punch("failure");
            }
        }
    }

    fn on_mdns(&mut self, e: mdns::Event) {
        match e {
            mdns::Event::Discovered(list) => {
                for (peer, addr) in list {
                    if peer == *self.swarm.local_peer_id() {
                        continue;
                    }
                    match self.mdns_peers.discovered(peer, &addr) {
                        MdnsVerdict::Dial => {
                            debug!(%peer, %addr, "found on the local network");
                            self.metrics.nat_event("mdns_discovered");
                            self.swarm.behaviour_mut().kad.add_address(&peer, addr.clone());
                            let opts = DialOpts::peer_id(peer)
                                .addresses(vec![addr])
                                .condition(PeerCondition::DisconnectedAndNotDialing)
                                .build();
                            if let Err(e) = self.swarm.dial(opts) {
                                trace!(%peer, error = %e, "mDNS dial not started");
                            }
                        }
                        MdnsVerdict::Known => {}
                        MdnsVerdict::NotPrivate => {
                            trace!(%peer, %addr, "mDNS answer with a public address ignored");
                            self.metrics.nat_event("mdns_not_private");
                        }
                        MdnsVerdict::Full => self.metrics.budget_exceeded("mdns_peers"),
                    }
                }
            }
            mdns::Event::Expired(list) => {
                for (peer, addr) in list {
                    self.mdns_peers.expired(&peer, &addr);
                }
            }
        }
    }

    fn on_request_response(&mut self, proto: Proto, e: request_response::Event<Vec<u8>, Vec<u8>>) {
        let pending = match proto {
            Proto::Fetch => &mut self.fetches,
            Proto::Sync => &mut self.syncs,
            Proto::Invoke => &mut self.invokes,
            Proto::Index => &mut self.indexes,
        };
        match e {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request_id,
                    request,
                    channel,
                } => {
                    if self.ledger.is_banned(&peer, Instant::now()) {
                        return;
                    }
                    if !self.rates.allow(proto, &peer) {
                        // Dropping the channel answers nothing; the peer's request fails.
                        self.metrics.budget_exceeded("peer_requests");
                        trace!(%peer, ?proto, "request over the peer's rate dropped");
                        return;
                    }
                    self.emit(NetworkEvent::InboundRequest {
                        proto,
                        peer,
                        request_id,
                        request,
                        channel,
                    });
                }
                request_response::Message::Response { request_id, response } => {
                    if let Some((_, reply)) = pending.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                request_id,
                error,
                peer,
                ..
            } => {
                if let Some((_, reply)) = pending.remove(&request_id) {
                    let e = match error {
                        request_response::OutboundFailure::UnsupportedProtocols => {
                            NetworkError::Unsupported { peer }
                        }
                        other => NetworkError::Request {
                            peer,
                            detail: other.to_string(),
                        },
                    };
                    let _ = reply.send(Err(e));
                }
            }
            request_response::Event::ResponseSent { request_id, .. } => {
                self.responding.remove(&request_id);
            }
            request_response::Event::InboundFailure {
                peer,
                error,
                request_id,
                ..
            } => {
                self.responding.remove(&request_id);
                debug!(%peer, ?proto, %error, "inbound request failed");
                if matches!(error, request_response::InboundFailure::Io(_)) {
                    self.penalize(peer, "malformed_request");
                }
            }
        }
    }
}

/// The budget a refused connection ran into: `memory` when the process used more than
/// `max_memory_percent`/`max_memory_mib`, else `connections` (counts).
fn denial_budget(cause: &libp2p::swarm::ConnectionDenied) -> &'static str {
    if cause
        .downcast_ref::<libp2p::memory_connection_limits::MemoryUsageLimitExceeded>()
        .is_some()
    {
        "memory"
    } else {
        "connections"
    }
}
