//! Connectivity behind NAT: the rules the network loop applies around
//! libp2p's AutoNAT, circuit relay v2, DCUtR and mDNS behaviours.
//!
//! - [`relay_config`] and [`autonat_config`] turn `[network.nat]` into the
//!   behaviours' limits (relay reservations, circuits, circuit duration and
//!   bytes; AutoNAT dial-backs);
//! - [`mdns_enabled`] decides whether mDNS runs (`auto`: only on a private or
//!   unspecified listen address);
//! - [`MdnsPeers`] is the capped book of peers found by mDNS: only private
//!   addresses are kept (an mDNS answer cannot make this node dial the
//!   Internet), at most `mdns_max_peers` peers;
//! - [`Reservations`] chooses the relays this node reserves a slot on.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId, autonat, relay};

use crate::config::{MdnsMode, NatOptions};

/// The relay v2 hop protocol: a peer offering it can relay for us.
pub const RELAY_HOP_PROTOCOL: &str = "/libp2p/circuit/relay/0.2.0/hop";

/// The relay server's limits from `[network.nat]` (libp2p's per-peer and
/// per-IP rate limiters on reservations and circuits are kept).
pub fn relay_config(o: &NatOptions) -> relay::Config {
    relay::Config {
        max_reservations: o.relay_max_reservations,
        max_reservations_per_peer: o.relay_max_reservations_per_peer,
        reservation_duration: o.relay_reservation_duration,
        max_circuits: o.relay_max_circuits,
        max_circuits_per_peer: o.relay_max_circuits_per_peer,
        max_circuit_duration: o.relay_max_circuit_duration,
        max_circuit_bytes: o.relay_max_circuit_bytes,
        ..relay::Config::default()
    }
}

/// AutoNAT (v1) client and server settings from `[network.nat]`.
pub fn autonat_config(o: &NatOptions) -> autonat::Config {
    autonat::Config {
        timeout: Duration::from_secs(15),
        boot_delay: o.autonat_boot_delay,
        retry_interval: o.autonat_retry_interval,
        refresh_interval: o.autonat_retry_interval.max(Duration::from_secs(60)) * 10,
        throttle_server_period: o.autonat_retry_interval.min(Duration::from_secs(90)),
        only_global_ips: o.autonat_only_global_ips,
        throttle_clients_global_max: o.autonat_dialbacks_per_sec,
        throttle_clients_peer_max: o.autonat_dialbacks_per_peer,
        throttle_clients_period: Duration::from_secs(1),
        max_peer_addresses: 8,
        ..autonat::Config::default()
    }
}

/// The IP address of `addr`, if it starts with one.
fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    match addr.iter().next()? {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    }
}

/// Whether `addr` starts with a loopback IP.
pub fn is_loopback(addr: &Multiaddr) -> bool {
    ip_of(addr).is_some_and(|ip| ip.is_loopback())
}

/// Whether `ip` belongs to a local network: RFC 1918, loopback,
/// link-local, shared (100.64/10) or IPv6 unique-local.
pub fn is_private_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_private() || v4.is_loopback() || v4.is_link_local() || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
    }
}

/// Whether `addr` is an IP address on a local network (see [`is_private_ip`]).
pub fn is_private(addr: &Multiaddr) -> bool {
    ip_of(addr).is_some_and(is_private_ip)
}

/// Whether `addr` goes through a relay.
pub fn is_relayed(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| matches!(p, Protocol::P2pCircuit))
}

/// The relay's peer id in a circuit address (`…/p2p/RELAY/p2p-circuit…`).
fn relay_of(addr: &Multiaddr) -> Option<PeerId> {
    let mut relay = None;
    for p in addr.iter() {
        match p {
            Protocol::P2p(id) => relay = Some(id),
            Protocol::P2pCircuit => return relay,
            _ => {}
        }
    }
    None
}

/// The addresses of a peer worth putting in the DHT (which hands them to
/// others, who dial them all at once): no loopback address unless
/// `loopback_ok` (the peer itself was reached over loopback), every other
/// direct address, and one circuit address per relay, not on loopback where
/// the relay has another.
///
/// Both filters come from the docker NAT experiment (issue 18), where two
/// NATed nodes never connected:
/// - a peer's `127.0.0.1` address leads to the dialer itself when both
///   listen on the same port (libp2p then reports `WrongPeerId`); libp2p
///   dials up to 8 addresses at once and ends the whole dial at the first
///   address that connects, so this quick self-connection cancelled the
///   relayed attempts every time;
/// - a relay lists each of its own addresses (TCP, QUIC, loopback) in a
///   reservation, so a node behind it advertises one circuit per relay
///   address, all through the same relay connection: dialed together from
///   both sides they opened more circuits than the relay allows per peer
///   and more streams than a relay connection takes.
pub fn dial_candidates(addrs: &[Multiaddr], loopback_ok: bool) -> Vec<Multiaddr> {
    let usable = |a: &&Multiaddr| loopback_ok || !is_loopback(a);
    let mut out: Vec<Multiaddr> = addrs
        .iter()
        .filter(|a| !is_relayed(a))
        .filter(usable)
        .cloned()
        .collect();
    let mut chosen: Vec<(PeerId, Multiaddr)> = Vec::new();
    for a in addrs.iter().filter(|a| is_relayed(a)).filter(usable) {
        let Some(relay) = relay_of(a) else { continue };
        match chosen.iter_mut().find(|(r, _)| *r == relay) {
            None => chosen.push((relay, a.clone())),
            Some((_, held)) => {
                if !is_loopback(a) && is_loopback(held) {
                    *held = a.clone();
                }
            }
        }
    }
    out.extend(chosen.into_iter().map(|(_, a)| a));
    out
}

/// Whether mDNS runs with these listen addresses.
pub fn mdns_enabled(mode: MdnsMode, listen: &[Multiaddr]) -> bool {
    match mode {
        MdnsMode::On => true,
        MdnsMode::Off => false,
        MdnsMode::Auto => listen.iter().any(|a| {
            ip_of(a).is_some_and(|ip| ip.is_unspecified() || (is_private_ip(ip) && !ip.is_loopback()))
        }),
    }
}

/// What [`MdnsPeers::discovered`] decided about one mDNS answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MdnsVerdict {
    /// A new peer, or a new address of a known one: dial it.
    Dial,
    /// Already known.
    Known,
    /// Not a private address: ignored.
    NotPrivate,
    /// The book is full: ignored (counted as a budget refusal).
    Full,
}

/// Most addresses remembered for one mDNS peer.
pub const MDNS_ADDRS_PER_PEER: usize = 8;

/// Peers found by mDNS, capped; see the module docs.
#[derive(Debug)]
pub struct MdnsPeers {
    peers: HashMap<PeerId, Vec<Multiaddr>>,
    cap: usize,
}

impl MdnsPeers {
    /// An empty book of at most `cap` peers.
    pub fn new(cap: usize) -> Self {
        Self {
            peers: HashMap::new(),
            cap,
        }
    }

    /// Records one mDNS answer.
    pub fn discovered(&mut self, peer: PeerId, addr: &Multiaddr) -> MdnsVerdict {
        if !is_private(addr) {
            return MdnsVerdict::NotPrivate;
        }
        if !self.peers.contains_key(&peer) && self.peers.len() >= self.cap {
            return MdnsVerdict::Full;
        }
        let addrs = self.peers.entry(peer).or_default();
        if addrs.contains(addr) {
            MdnsVerdict::Known
        } else if addrs.len() >= MDNS_ADDRS_PER_PEER {
            MdnsVerdict::Full
        } else {
            addrs.push(addr.clone());
            MdnsVerdict::Dial
        }
    }

    /// Forgets an expired answer.
    pub fn expired(&mut self, peer: &PeerId, addr: &Multiaddr) {
        if let Some(addrs) = self.peers.get_mut(peer) {
            addrs.retain(|a| a != addr);
            if addrs.is_empty() {
                self.peers.remove(peer);
            }
        }
    }

    /// Peers in the book.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// Whether the book is empty.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }
}

/// The relays this node reserves a slot on: candidates (configured relays
/// first, then connected peers offering [`RELAY_HOP_PROTOCOL`]) and the
/// circuit listen addresses in use, at most `max` of them.
#[derive(Debug)]
pub struct Reservations {
    /// Configured relays (`…/p2p/PEERID`).
    configured: Vec<(PeerId, Multiaddr)>,
    /// Relays learned from identify, with the address that reached them.
    learned: Vec<(PeerId, Multiaddr)>,
    /// Relays with a circuit listener: relay → its listener.
    pub active: HashMap<PeerId, libp2p::core::transport::ListenerId>,
    max: usize,
}

/// Most relays learned from identify that are remembered.
pub const MAX_LEARNED_RELAYS: usize = 16;

impl Reservations {
    /// From the configured relay addresses (each ends in `/p2p/PEERID`).
    pub fn new(configured: &[Multiaddr], max: usize) -> Self {
        let configured = configured
            .iter()
            .filter_map(|a| match a.iter().last() {
                Some(Protocol::P2p(p)) => Some((p, a.clone())),
                _ => None,
            })
            .collect();
        Self {
            configured,
            learned: Vec::new(),
            active: HashMap::new(),
            max,
        }
    }

    /// A connected peer offers the relay protocol at `addr` (direct addresses only).
    pub fn learn(&mut self, peer: PeerId, addr: Multiaddr) {
        if is_relayed(&addr)
            || self.learned.len() >= MAX_LEARNED_RELAYS
            || self.learned.iter().any(|(p, _)| *p == peer)
            || self.configured.iter().any(|(p, _)| *p == peer)
        {
            return;
        }
        let addr = match addr.iter().last() {
            Some(Protocol::P2p(_)) => addr,
            _ => addr.with(Protocol::P2p(peer)),
        };
        self.learned.push((peer, addr));
    }

    /// Forgets a learned relay (it went away or refused us).
    pub fn forget(&mut self, peer: &PeerId) {
        self.learned.retain(|(p, _)| p != peer);
    }

    /// Circuit addresses (`<relay>/p2p-circuit`) to listen on now, so that at
    /// most `max` relays hold a reservation.
    pub fn wanted(&self) -> Vec<(PeerId, Multiaddr)> {
        let room = self.max.saturating_sub(self.active.len());
        self.configured
            .iter()
            .chain(self.learned.iter())
            .filter(|(p, _)| !self.active.contains_key(p))
            .take(room)
            .map(|(p, a)| (*p, a.clone().with(Protocol::P2pCircuit)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    #[test]
    fn private_public_and_relayed_addresses() {
        for a in [
            "/ip4/10.1.2.3/tcp/1",
            "/ip4/192.168.0.9/udp/1/quic-v1",
            "/ip4/172.20.0.2/tcp/1",
            "/ip4/127.0.0.1/tcp/1",
            "/ip4/169.254.1.1/tcp/1",
            "/ip4/100.64.0.1/tcp/1",
            "/ip6/fd00::2/tcp/1",
            "/ip6/fe80::1/tcp/1",
        ] {
            assert!(is_private(&addr(a)), "{a}");
        }
        for a in [
            "/ip4/8.8.8.8/tcp/1",
            "/ip6/2001:db8::1/tcp/1",
            "/dns4/example.org/tcp/1",
        ] {
            assert!(!is_private(&addr(a)), "{a}");
        }
        let relay = PeerId::random();
        let circuit = addr("/ip4/1.2.3.4/tcp/1")
            .with(Protocol::P2p(relay))
            .with(Protocol::P2pCircuit);
        assert!(is_relayed(&circuit) && !is_relayed(&addr("/ip4/1.2.3.4/tcp/1")));
    }

    #[test]
    fn one_circuit_address_per_relay_preferring_a_routable_one() {
        let (r1, r2, me) = (PeerId::random(), PeerId::random(), PeerId::random());
        let via = |s: &str, r: PeerId| {
            addr(s)
                .with(Protocol::P2p(r))
                .with(Protocol::P2pCircuit)
                .with(Protocol::P2p(me))
        };
        let direct = addr("/ip4/10.214.0.10/tcp/4077");
        let all = vec![
            direct.clone(),
            via("/ip4/127.0.0.1/tcp/1", r1),
            via("/ip4/10.213.0.10/tcp/1", r1),
            via("/ip4/10.213.0.10/udp/1/quic-v1", r1),
            via("/ip4/127.0.0.1/udp/1/quic-v1", r2),
        ];
        let kept = dial_candidates(&all, true);
        assert_eq!(
            kept,
            vec![
                direct.clone(),
                via("/ip4/10.213.0.10/tcp/1", r1),
                via("/ip4/127.0.0.1/udp/1/quic-v1", r2)
            ]
        );
        let mut remote = all.clone();
        remote.push(addr("/ip4/127.0.0.1/tcp/4077"));
        assert_eq!(
            dial_candidates(&remote, false),
            vec![direct, via("/ip4/10.213.0.10/tcp/1", r1)],
            "no loopback address of a peer reached from elsewhere"
        );
        assert_eq!(relay_of(&kept[1]), Some(r1));
        assert_eq!(relay_of(&addr("/ip4/1.2.3.4/tcp/1")), None);
    }

    #[test]
    fn mdns_auto_runs_on_private_or_unspecified_listeners_only() {
        let l = |s: &[&str]| s.iter().map(|a| addr(a)).collect::<Vec<_>>();
        assert!(mdns_enabled(MdnsMode::Auto, &l(&["/ip4/0.0.0.0/tcp/4077"])));
        assert!(mdns_enabled(MdnsMode::Auto, &l(&["/ip4/192.168.1.4/tcp/4077"])));
        assert!(!mdns_enabled(MdnsMode::Auto, &l(&["/ip4/127.0.0.1/tcp/0"])));
        assert!(!mdns_enabled(MdnsMode::Auto, &l(&["/ip4/8.8.8.8/tcp/4077"])));
        assert!(mdns_enabled(MdnsMode::On, &l(&["/ip4/127.0.0.1/tcp/0"])));
        assert!(!mdns_enabled(MdnsMode::Off, &l(&["/ip4/0.0.0.0/tcp/4077"])));
    }

    /// A stranger on the LAN answering mDNS with many peer ids and
    /// addresses fills the book up to its cap and no further; public
    /// addresses are never kept.
    #[test]
    fn the_mdns_book_is_capped_and_keeps_private_addresses_only() {
        let mut book = MdnsPeers::new(4);
        let a = PeerId::random();
        assert_eq!(
            book.discovered(a, &addr("/ip4/8.8.8.8/tcp/1")),
            MdnsVerdict::NotPrivate
        );
        assert_eq!(
            book.discovered(a, &addr("/ip4/10.0.0.1/tcp/1")),
            MdnsVerdict::Dial
        );
        assert_eq!(
            book.discovered(a, &addr("/ip4/10.0.0.1/tcp/1")),
            MdnsVerdict::Known
        );
        let verdicts: Vec<_> = (0..100)
            .map(|i| book.discovered(PeerId::random(), &addr(&format!("/ip4/10.0.0.2/tcp/{i}"))))
            .collect();
        assert_eq!(verdicts.iter().filter(|v| **v == MdnsVerdict::Dial).count(), 3);
        assert_eq!(verdicts.iter().filter(|v| **v == MdnsVerdict::Full).count(), 97);
        assert_eq!(book.len(), 4);
        let many: Vec<_> = (0..50)
            .map(|i| book.discovered(a, &addr(&format!("/ip4/10.0.0.1/tcp/{}", i + 2))))
            .collect();
        assert_eq!(
            many.iter().filter(|v| **v == MdnsVerdict::Dial).count(),
            MDNS_ADDRS_PER_PEER - 1
        );
        book.expired(&a, &addr("/ip4/10.0.0.1/tcp/1"));
        for i in 0..MDNS_ADDRS_PER_PEER - 1 {
            book.expired(&a, &addr(&format!("/ip4/10.0.0.1/tcp/{}", i + 2)));
        }
        assert_eq!(book.len(), 3, "a peer whose answers all expired is forgotten");
        assert_eq!(
            book.discovered(PeerId::random(), &addr("/ip4/10.0.0.3/tcp/1")),
            MdnsVerdict::Dial
        );
    }

    #[test]
    fn reservations_prefer_configured_relays_and_stop_at_max() {
        let (c, l1, l2) = (PeerId::random(), PeerId::random(), PeerId::random());
        let configured = addr("/ip4/10.0.0.1/tcp/1").with(Protocol::P2p(c));
        let mut r = Reservations::new(std::slice::from_ref(&configured), 2);
        r.learn(l1, addr("/ip4/10.0.0.2/tcp/1"));
        r.learn(l2, addr("/ip4/10.0.0.3/tcp/1"));
        r.learn(c, addr("/ip4/10.0.0.9/tcp/1"));
        let w = r.wanted();
        assert_eq!(w.len(), 2);
        assert_eq!(w[0], (c, configured.with(Protocol::P2pCircuit)));
        assert_eq!(w[1].0, l1);
        assert!(w[1].1.to_string().ends_with(&format!("/p2p/{l1}/p2p-circuit")));
        r.active.insert(c, libp2p::core::transport::ListenerId::next());
        r.forget(&l1);
        assert_eq!(r.wanted().iter().map(|x| x.0).collect::<Vec<_>>(), vec![l2]);
        r.active.insert(l2, libp2p::core::transport::ListenerId::next());
        assert!(r.wanted().is_empty(), "max relays reached");
    }
}
