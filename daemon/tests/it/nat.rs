//! Connectivity behind NAT with real swarms on loopback: a node without a
//! listen address (reachable only through a relay) reserves a slot on a
//! relay, advertises the relayed address and is reached through it; hole
//! punching upgrades a relayed connection; AutoNAT finds a listening node
//! reachable; mDNS finds peers on the local network. Every relay and AutoNAT
//! budget is exceeded once.

use std::time::{Duration, Instant};

use atr_protocol::wire::{self, IndexRequest, IndexResponse};
use atrd::config::{Config, MdnsMode, ReserveMode};
use atrd::network::Proto;
use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;

use crate::harness::*;

const T: Duration = Duration::from_secs(30);

/// NAT features off except what the test turns on (no mDNS cross-talk
/// between tests, no AutoNAT probes unless asked for).
fn quiet(c: &mut Config) {
    c.network.nat.mdns = MdnsMode::Off;
    c.network.nat.autonat = false;
    c.network.nat.hole_punching = false;
    c.network.nat.reserve = ReserveMode::Never;
}

/// A relay: serves reservations and circuits with `tune`'s limits.
async fn relay(seed: u8, tune: impl FnOnce(&mut Config)) -> TestNode {
    start_node_with(seed, vec![], tempfile::tempdir().unwrap(), |c| {
        quiet(c);
        c.network.nat.relay_server = true;
        tune(c);
    })
    .await
}

/// A node with no listen address (so reachable only through a relay) that
/// reserves a slot on the relays it learns from its bootstrap peers.
async fn hidden(seed: u8, relay: &TestNode) -> TestNode {
    start_node_with(seed, relay.node.dial_addrs(), tempfile::tempdir().unwrap(), |c| {
        quiet(c);
        c.network.listen = vec![];
        c.network.nat.reserve = ReserveMode::Always;
    })
    .await
}

/// A plain node bootstrapping from `relay`, once connected to it.
async fn plain(seed: u8, relay: &TestNode) -> TestNode {
    let n = start_node_with(seed, relay.node.dial_addrs(), tempfile::tempdir().unwrap(), quiet).await;
    connected_to(&n, relay).await;
    n
}

/// Waits until `n` is connected to `other`.
async fn connected_to(n: &TestNode, other: &TestNode) {
    let p = other.node.peer_id().to_string();
    wait_for(T, "connected to the relay", || async {
        n.node
            .net()
            .status()
            .await
            .unwrap()
            .peers
            .iter()
            .any(|x| x.peer == p)
    })
    .await;
}

/// The circuit address of `target` through `relay`.
fn circuit(relay: &TestNode, target: &TestNode) -> Multiaddr {
    relay.node.dial_addrs()[0]
        .clone()
        .with(Protocol::P2pCircuit)
        .with(Protocol::P2p(target.node.peer_id()))
}

/// Waits until `n` advertises a relayed listen address.
async fn wait_relayed_addr(n: &TestNode) {
    wait_for(T, "a relayed listen address", || async {
        n.node
            .net()
            .status()
            .await
            .unwrap()
            .listen_addrs
            .iter()
            .any(|a| a.contains("/p2p-circuit"))
    })
    .await;
}

/// Whether `from` is connected to `to` through a relay only.
async fn relayed_only(from: &TestNode, to: &TestNode) -> Option<bool> {
    let s = from.node.net().status().await.unwrap();
    let peer = s.peers.iter().find(|p| p.peer == to.node.peer_id().to_string())?;
    Some(peer.addrs.iter().all(|a| a.contains("/p2p-circuit")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_a_listen_address_is_reached_through_its_relay_and_answers() {
    init_tracing();
    let r = relay(101, |_| {}).await;
    let b = hidden(102, &r).await;
    wait_relayed_addr(&b).await;
    let st = b.node.net().status().await.unwrap();
    assert_eq!(st.relays, vec![r.node.peer_id().to_string()]);
    assert!(b.node.metrics().nat_event_count("reservation_accepted") >= 1);
    b.node
        .services()
        .publisher
        .publish(manifest("behind-nat", "1.0.0", &["natted"]), "t.toml".into())
        .await
        .unwrap();

    let c = plain(103, &r).await;
    c.node.net().dial(circuit(&r, &b)).await.unwrap();
    assert_eq!(relayed_only(&c, &b).await, Some(true), "no direct path exists");
    // A real request and answer over the circuit.
    let req = wire::encode_message(&IndexRequest::Tag("natted".into())).unwrap();
    let raw = c
        .node
        .net()
        .request(Proto::Index, b.node.peer_id(), req)
        .await
        .unwrap();
    assert_eq!(IndexResponse::decode(&raw).unwrap().ids.len(), 1);
    assert!(c.node.metrics().connections_count("relayed") >= 1);
    assert!(r.node.metrics().relay_served_count("circuit_accepted") >= 1);
    // Discovery across the relay: the DHT and gossip reach the hidden node.
    wait_for(T, "C finds the hidden node's tool", || async {
        find_local(&c.node, by_tag("natted")).len() == 1
    })
    .await;
    for n in [c, b, r] {
        n.node.shutdown().await.unwrap();
    }
}

/// Issue 18 regression (the docker NAT experiment's NATed nodes never
/// connected to each other): a node behind a relay gets its relayed address
/// only after the relay identified it, so the relay must learn that address
/// from an identify push. Then a third node that only knows the relay finds
/// the hidden node through the DHT and reaches it through the relay, without
/// being told the circuit address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_behind_a_relay_is_reached_without_being_told_its_relayed_address() {
    init_tracing();
    let r = relay(111, |_| {}).await;
    let b = hidden(112, &r).await;
    wait_relayed_addr(&b).await;
    b.node
        .services()
        .publisher
        .publish(
            manifest("found-behind-nat", "1.0.0", &["natted-dht"]),
            "t.toml".into(),
        )
        .await
        .unwrap();
    let c = plain(113, &r).await;
    let req = wire::encode_message(&IndexRequest::Tag("natted-dht".into())).unwrap();
    let mut answer = None;
    let deadline = Instant::now() + T;
    while answer.is_none() && Instant::now() < deadline {
        match c
            .node
            .net()
            .request(Proto::Index, b.node.peer_id(), req.clone())
            .await
        {
            Ok(raw) => answer = Some(raw),
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
    let raw = answer.expect("C reached the hidden node (its relayed address came from the DHT)");
    assert_eq!(IndexResponse::decode(&raw).unwrap().ids.len(), 1);
    assert_eq!(relayed_only(&c, &b).await, Some(true), "through the relay");
    assert!(c.node.metrics().connections_count("relayed") >= 1);
    for n in [c, b, r] {
        n.node.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_reservations_beyond_the_budget_are_denied() {
    init_tracing();
    let r = relay(111, |c| c.network.nat.relay_max_reservations = 1).await;
    let b1 = hidden(112, &r).await;
    let b2 = hidden(113, &r).await;
    wait_for(T, "one reservation accepted and one denied", || async {
        r.node.metrics().budget_exceeded_count("relay_reservations") >= 1
            && r.node.metrics().relay_served_count("reservation_accepted") >= 1
    })
    .await;
    let mut relayed = 0;
    for b in [&b1, &b2] {
        let st = b.node.net().status().await.unwrap();
        relayed += usize::from(st.listen_addrs.iter().any(|a| a.contains("/p2p-circuit")));
    }
    assert_eq!(relayed, 1, "only one node holds a relayed address");
    for n in [b1, b2, r] {
        n.node.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relayed_circuit_is_closed_at_its_duration_limit() {
    init_tracing();
    let r = relay(121, |c| {
        c.network.nat.relay_max_circuit_duration = Duration::from_secs(2)
    })
    .await;
    let b = hidden(122, &r).await;
    wait_relayed_addr(&b).await;
    let c = plain(123, &r).await;
    let started = Instant::now();
    c.node.net().dial(circuit(&r, &b)).await.unwrap();
    assert_eq!(relayed_only(&c, &b).await, Some(true));
    wait_for(T, "the relay closes the circuit", || async {
        relayed_only(&c, &b).await.is_none()
    })
    .await;
    let lived = started.elapsed();
    assert!(lived >= Duration::from_millis(1500), "closed after {lived:?}");
    assert!(r.node.metrics().relay_served_count("circuit_closed") >= 1);
    for n in [c, b, r] {
        n.node.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relayed_circuit_is_cut_at_its_byte_limit() {
    init_tracing();
    let r = relay(131, |c| c.network.nat.relay_max_circuit_bytes = 64 << 10).await;
    let b = hidden(132, &r).await;
    wait_relayed_addr(&b).await;
    let c = plain(133, &r).await;
    c.node.net().dial(circuit(&r, &b)).await.unwrap();
    assert_eq!(relayed_only(&c, &b).await, Some(true));
    // Small requests fit in the budget …
    let req = wire::encode_message(&IndexRequest::Tag("none".into())).unwrap();
    c.node
        .net()
        .request(Proto::Index, b.node.peer_id(), req)
        .await
        .unwrap();
    // … a request of twice the circuit's bytes does not: the relay cuts it.
    let big = vec![0u8; 128 << 10];
    let e = c.node.net().request(Proto::Invoke, b.node.peer_id(), big).await;
    assert!(e.is_err(), "a request beyond the circuit's bytes cannot arrive");
    wait_for(T, "the relay closes the circuit", || async {
        relayed_only(&c, &b).await.is_none()
    })
    .await;
    assert!(r.node.metrics().relay_served_count("circuit_closed") >= 1);
    for n in [c, b, r] {
        n.node.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circuits_beyond_the_budget_are_denied() {
    init_tracing();
    let r = relay(141, |c| c.network.nat.relay_max_circuits = 1).await;
    let b = hidden(142, &r).await;
    wait_relayed_addr(&b).await;
    let c1 = plain(143, &r).await;
    let c2 = plain(144, &r).await;
    // The DHT may already have made the one circuit (the relay hands out
    // B's relayed address): of two more, at least one is refused.
    let first = c1.node.net().dial(circuit(&r, &b)).await;
    let second = c2.node.net().dial(circuit(&r, &b)).await;
    assert!(
        first.is_err() || second.is_err(),
        "the relay holds one circuit at most"
    );
    assert!(r.node.metrics().budget_exceeded_count("relay_circuits") >= 1);
    for n in [c1, c2, b, r] {
        n.node.shutdown().await.unwrap();
    }
}

/// Every node listens on QUIC (whose observed address is the listen port,
/// so the hole punch has an address to aim at); the callee reserves on the
/// relay, the caller dials the relayed address and DCUtR upgrades it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hole_punching_upgrades_a_relayed_connection_to_a_direct_one() {
    init_tracing();
    let quic = |c: &mut Config| {
        quiet(c);
        c.network.listen = vec!["/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap()];
        c.network.nat.hole_punching = true;
        // Kademlia may dial the callee directly too (its listen address is
        // on loopback): leave room for that, the relayed connection and the
        // punched one.
        c.network.budgets.max_connections_per_peer = 4;
    };
    let r = start_node_with(151, vec![], tempfile::tempdir().unwrap(), |c| {
        quic(c);
        c.network.nat.relay_server = true;
    })
    .await;
    let b = start_node_with(152, r.node.dial_addrs(), tempfile::tempdir().unwrap(), |c| {
        quic(c);
        c.network.nat.reserve = ReserveMode::Always;
    })
    .await;
    wait_relayed_addr(&b).await;
    let c = start_node_with(153, r.node.dial_addrs(), tempfile::tempdir().unwrap(), quic).await;
    connected_to(&c, &r).await;
    c.node.net().dial(circuit(&r, &b)).await.unwrap();
    wait_for(T, "DCUtR reports the upgrade", || async {
        b.node.metrics().hole_punch_count("success") + c.node.metrics().hole_punch_count("success") >= 1
    })
    .await;
    assert_eq!(relayed_only(&c, &b).await, Some(false), "a direct connection");
    assert!(
        c.node.metrics().connections_count("relayed") >= 1,
        "it began relayed"
    );
    for n in [c, b, r] {
        n.node.shutdown().await.unwrap();
    }
}

/// mDNS: two nodes with no bootstrap peers find each other on the local
/// network (multicast on the host's non-loopback interface; the answers carry
/// their loopback listen addresses, which are private).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs multicast on a non-loopback interface"]
async fn mdns_finds_a_peer_on_the_local_network() {
    init_tracing();
    let on = |c: &mut Config| {
        quiet(c);
        c.network.nat.mdns = MdnsMode::On;
        // Every interface: mDNS announces each bound address (the loopback
        // one is private, so it is taken).
        c.network.listen = vec!["/ip4/0.0.0.0/tcp/0".parse().unwrap()];
    };
    let a = start_node_with(171, vec![], tempfile::tempdir().unwrap(), on).await;
    let b = start_node_with(172, vec![], tempfile::tempdir().unwrap(), on).await;
    let (pa, pb) = (a.node.peer_id().to_string(), b.node.peer_id().to_string());
    wait_for(T, "A and B connect through mDNS", || async {
        a.node
            .net()
            .status()
            .await
            .unwrap()
            .peers
            .iter()
            .any(|p| p.peer == pb)
    })
    .await;
    assert!(
        a.node.metrics().nat_event_count("mdns_discovered")
            + b.node.metrics().nat_event_count("mdns_discovered")
            >= 1
    );
    assert!(
        b.node
            .net()
            .status()
            .await
            .unwrap()
            .peers
            .iter()
            .any(|p| p.peer == pa)
    );
    for n in [a, b] {
        n.node.shutdown().await.unwrap();
    }
}

/// Bootstrap by name (`/dns4/…`, as Swarm services and Kubernetes pods are
/// addressed): `localhost` resolves through the system resolver's hosts file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bootstrap_peer_is_dialed_by_dns_name() {
    init_tracing();
    let a = start_node_with(181, vec![], tempfile::tempdir().unwrap(), quiet).await;
    let port = a.node.dial_addrs()[0]
        .iter()
        .find_map(|p| match p {
            Protocol::Tcp(port) => Some(port),
            _ => None,
        })
        .unwrap();
    let by_name: Multiaddr = format!("/dns4/localhost/tcp/{port}/p2p/{}", a.node.peer_id())
        .parse()
        .unwrap();
    let b = start_node_with(182, vec![by_name], tempfile::tempdir().unwrap(), quiet).await;
    let pa = a.node.peer_id().to_string();
    wait_for(T, "B connects to A by name", || async {
        b.node
            .net()
            .status()
            .await
            .unwrap()
            .peers
            .iter()
            .any(|p| p.peer == pa)
    })
    .await;
    for n in [a, b] {
        n.node.shutdown().await.unwrap();
    }
}
