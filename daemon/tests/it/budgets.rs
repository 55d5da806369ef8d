//! Each peer budget of `[network.budgets]`, exceeded by hostile peers built
//! from atrd's own network code (`atrd::attacker`) over real libp2p
//! connections: the documented outcome (refused, dropped, penalized, cut),
//! and honest work still done.

use std::time::{Duration, Instant};

use atr_protocol::wire::{self, FetchRequest, IndexRequest, IndexResponse};
use atrd::attacker::Attacker;
use atrd::network::Proto;

use crate::harness::*;

const T: Duration = Duration::from_secs(20);

async fn peers(n: &atrd::Node) -> usize {
    n.net().status().await.map(|s| s.peers.len()).unwrap_or(0)
}

async fn bad_messages(n: &atrd::Node, peer: libp2p::PeerId) -> u64 {
    n.net()
        .status()
        .await
        .ok()
        .and_then(|s| s.peers.into_iter().find(|p| p.peer == peer.to_string()))
        .map(|p| p.bad_messages)
        .unwrap_or(0)
}

/// A fresh attacker, connected to `n`.
async fn attacker_connected_to(n: &atrd::Node) -> Attacker {
    let attacker = Attacker::spawn().await.unwrap();
    attacker.connect(n.dial_addrs()[0].clone()).await.unwrap();
    attacker
}

fn index_request(tag: &str) -> Vec<u8> {
    wire::encode_message(&IndexRequest::Tag(tag.into())).unwrap()
}

async fn publish(n: &atrd::Node, name: &str, tags: &[&str]) -> atr_protocol::SignedSpec {
    n.services()
        .publisher
        .publish(manifest(name, "1.0.0", tags), "test.toml".into())
        .await
        .unwrap()
        .spec
}

/// Twenty strangers dial a node whose budget is 8 connections: 8 get in,
/// the rest are refused and counted; once they leave, an honest peer joins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_stops_at_the_connection_budget() {
    init_tracing();
    let victim = start_node_with(150, vec![], tempfile::tempdir().unwrap(), |c| {
        c.network.budgets.max_connections = 8;
    })
    .await;
    let addr = victim.node.dial_addrs()[0].clone();
    let mut attackers = Vec::new();
    for _ in 0..20 {
        let a = Attacker::spawn().await.unwrap();
        let _ = a.connect(addr.clone()).await;
        attackers.push(a);
    }
    wait_for(T, "12 connections refused", || async {
        victim.node.metrics().budget_exceeded_count("connections") >= 12
    })
    .await;
    let n = peers(&victim.node).await;
    assert!((1..=8).contains(&n), "{n} peers connected with a budget of 8");
    for a in attackers {
        a.shutdown().await;
    }
    wait_for(T, "the strangers' connections closed", || async {
        peers(&victim.node).await == 0
    })
    .await;
    let honest = start_node(151, vec![addr]).await;
    wait_for(T, "an honest peer connects again", || async {
        peers(&victim.node).await >= 1
    })
    .await;
    honest.node.shutdown().await.unwrap();
    victim.node.shutdown().await.unwrap();
}

/// A node over its memory budget (`max_memory_mib` 1, far below any process's memory) takes
/// no new connection, in either direction: each is refused and counted as `memory`, and the
/// node keeps serving its local API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_over_its_memory_budget_takes_no_new_connection() {
    init_tracing();
    let victim = start_node_with(153, vec![], tempfile::tempdir().unwrap(), |c| {
        c.network.budgets.max_memory_mib = Some(1);
    })
    .await;
    let addr = victim.node.dial_addrs()[0].clone();
    let stranger = Attacker::spawn().await.unwrap();
    for _ in 0..3 {
        // Refused during the upgrade: the dial fails, or the connection is closed at once.
        let _ = stranger.connect(addr.clone()).await;
    }
    wait_for(T, "inbound connections refused for memory", || async {
        victim.node.metrics().budget_exceeded_count("memory") >= 1
    })
    .await;
    assert_eq!(
        peers(&victim.node).await,
        0,
        "a connection got past the memory budget"
    );
    // Outbound too: the victim's own dial is refused before it is made.
    let refused = victim.node.metrics().budget_exceeded_count("memory");
    let honest = start_node(154, vec![]).await;
    let dialed = victim.node.net().dial(honest.node.dial_addrs()[0].clone()).await;
    assert!(
        dialed.is_err(),
        "an outbound connection got past the memory budget"
    );
    assert!(victim.node.metrics().budget_exceeded_count("memory") > refused);
    assert_eq!(victim.node.metrics().budget_exceeded_count("connections"), 0);
    // Still serving: a local publish works.
    publish(&victim.node, "still_here", &["memory"]).await;
    stranger.shutdown().await;
    honest.node.shutdown().await.unwrap();
    victim.node.shutdown().await.unwrap();
}

/// One peer delivers 400 gossip messages to a node allowing 10/s with a burst of 20: what is
/// over the rate is ignored before it is decoded (counted `peer_gossip`, never checked,
/// stored or forwarded), and the sender is not penalized (it may be relaying).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gossip_flood_is_cut_at_the_peer_gossip_rate() {
    init_tracing();
    let victim = start_node_with(155, vec![], tempfile::tempdir().unwrap(), |c| {
        c.network.budgets.peer_gossip_per_sec = 10;
        c.network.budgets.peer_gossip_burst = 20;
        c.network.sync_interval = Duration::from_secs(3600);
    })
    .await;
    let attacker = attacker_connected_to(&victim.node).await;
    let checked = || victim.node.metrics().store_refused_count("unheld_gossip");
    let cut = || victim.node.metrics().budget_exceeded_count("peer_gossip");
    wait_for(T, "the attacker's gossip reaches the victim", || async {
        let _ = attacker.flood_revocations(1).await;
        checked() >= 1
    })
    .await;
    let (checked_before, cut_before) = (checked(), cut());
    let started = Instant::now();
    let sent = attacker.flood_revocations(400).await;
    assert_eq!(sent, 400);
    wait_for(T, "the flood is cut at the rate", || async {
        checked() + cut() >= checked_before + cut_before + 400
    })
    .await;
    let secs = started.elapsed().as_secs_f64();
    let passed = checked() - checked_before;
    // The burst, the refill while the flood lasted, and the tokens left from the warm-up.
    let allowed = 20 + (10.0 * secs).ceil() as u64;
    assert!(
        passed <= allowed,
        "{passed} of 400 gossip messages checked in {secs:.1} s with a rate of 10/s and a burst of 20"
    );
    assert!(cut() - cut_before >= 400 - allowed);
    assert_eq!(bad_messages(&victim.node, attacker.peer_id()).await, 0);
    attacker.shutdown().await;
    victim.node.shutdown().await.unwrap();
}

/// A flood of valid gossip specs beyond the verification queue (`gossip_spec_queue` 1 here,
/// with 2 × cores verifying): the rest are ignored before any signature check (counted
/// `gossip_spec_queue`, not stored, not forwarded), the node keeps working, and the sender
/// is not penalized (the specs are valid).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_specs_beyond_the_verification_queue_are_ignored() {
    init_tracing();
    let victim = start_node_with(156, vec![], tempfile::tempdir().unwrap(), |c| {
        c.network.budgets.gossip_spec_queue = 1;
        c.network.sync_interval = Duration::from_secs(3600);
    })
    .await;
    let attacker = attacker_connected_to(&victim.node).await;
    wait_for(T, "the attacker's gossip reaches the victim", || async {
        let _ = attacker.flood_revocations(1).await;
        victim.node.metrics().store_refused_count("unheld_gossip") >= 1
    })
    .await;
    let sent = attacker.flood_specs(10, 40, 0).await;
    assert_eq!(sent, 400);
    let ignored = || victim.node.metrics().budget_exceeded_count("gossip_spec_queue");
    wait_for(T, "specs beyond the queue ignored", || async { ignored() >= 1 }).await;
    // Everything sent was either stored or ignored at the queue (bounded wait for the rest).
    wait_for(T, "the flood handled", || async {
        victim.node.repo().counts().unwrap().specs + ignored() >= 400
    })
    .await;
    let stored = victim.node.repo().counts().unwrap().specs;
    assert!(stored < 400, "{stored} stored: the queue was never full");
    assert_eq!(bad_messages(&victim.node, attacker.peer_id()).await, 0);
    publish(&victim.node, "still_here", &["queue"]).await;
    attacker.shutdown().await;
    victim.node.shutdown().await.unwrap();
}

/// A flood of valid padded specs from one established key fills the
/// victim's verification queue; an honest publisher's spec arriving behind
/// it is verified ahead of them (the fair queue), not after the whole flood:
/// fewer junk specs are stored between its publish and its arrival than
/// were queued when it was published (first come first served stores all of
/// those first).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_honest_spec_is_verified_ahead_of_a_queued_spec_flood() {
    init_tracing();
    let victim = start_node_with(170, vec![], tempfile::tempdir().unwrap(), |c| {
        c.network.sync_interval = Duration::from_secs(3600);
    })
    .await;
    let honest = start_node(171, vec![victim.node.dial_addrs()[0].clone()]).await;
    // Both publishers established on the victim: a spec of each held there
    // (published again until gossip between the two is up).
    let tries = std::sync::atomic::AtomicUsize::new(0);
    wait_for(T, "the honest publisher's first spec", || async {
        let i = tries.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let first = publish(&honest.node, &format!("honest_first{i}"), &["fair"]).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        victim.node.repo().spec(&first.id()).is_some()
    })
    .await;
    let attacker = attacker_connected_to(&victim.node).await;
    let mut seed = [7u8; 32];
    seed[0] = 0xEE; // no node's key
    let key = atr_protocol::SecretKey::from_seed(&seed);
    let specs: Vec<_> = (0..401)
        .filter_map(|i| atrd::attacker::junk_spec(&key, i, atrd::attacker::JUNK_MAX_PAD))
        .collect();
    let junk0 = specs[0].id();
    let junk: Vec<_> = specs
        .iter()
        .map(|s| wire::WireObject::Spec(atr_protocol::id::ByteBuf(s.to_bytes())))
        .collect();
    wait_for(T, "the junk publisher's first spec", || async {
        attacker.publish_until(&junk[..1], None).await;
        victim.node.repo().spec(&junk0).is_some()
    })
    .await;
    let ingest = victim.node.services().ingest.clone();
    let flood = {
        let junk = junk[1..].to_vec();
        let attacker_net = attacker.net().clone();
        tokio::spawn(async move {
            for o in &junk {
                let _ = attacker_net.publish(wire::encode_message(o).unwrap()).await;
            }
        })
    };
    wait_for(T, "60 junk specs waiting", || async {
        ingest.specs_waiting() >= 60
    })
    .await;
    let before = victim.node.repo().counts().unwrap().specs;
    let queued = ingest.specs_waiting() as u64;
    let spec = publish(&honest.node, "honest_second", &["fair"]).await;
    wait_for(T, "the honest spec on the victim", || async {
        victim.node.repo().spec(&spec.id()).is_some()
    })
    .await;
    let between = victim.node.repo().counts().unwrap().specs - before;
    // First come first served stores every one of the `queued` first.
    assert!(
        between < queued,
        "{between} specs stored between the honest publish and its arrival, {queued} were queued"
    );
    flood.abort();
    attacker.shutdown().await;
    honest.node.shutdown().await.unwrap();
    victim.node.shutdown().await.unwrap();
}

/// One stranger sends 300 index requests at once to a node allowing 10/s
/// with a burst of 20: at most the burst plus the refill is answered, the
/// rest is dropped unanswered and counted, and an honest peer is still answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_flood_is_cut_at_the_peer_rate_and_honest_peers_are_still_answered() {
    init_tracing();
    let victim = start_node_with(152, vec![], tempfile::tempdir().unwrap(), |c| {
        c.network.budgets.peer_requests_per_sec = 10;
        c.network.budgets.peer_request_burst = 20;
    })
    .await;
    let spec = publish(&victim.node, "counted", &["flood"]).await;
    let addr = victim.node.dial_addrs()[0].clone();
    let attacker = attacker_connected_to(&victim.node).await;
    let started = Instant::now();
    let flood = attacker
        .flood_requests(
            victim.node.peer_id(),
            Proto::Index,
            index_request("flood"),
            300,
            32,
        )
        .await;
    let secs = started.elapsed().as_secs_f64();
    let most = 20 + (10.0 * secs).ceil() as usize + 1;
    assert!(
        flood.answered >= 20 && flood.answered <= most,
        "{flood:?} in {secs:.1}s: the burst (20) plus 10/s"
    );
    assert_eq!(flood.answered + flood.failed, 300);
    let refused = victim.node.metrics().budget_exceeded_count("peer_requests");
    assert!(refused as usize >= 300 - most, "{refused} counted");

    let honest = start_node(153, vec![addr]).await;
    wait_for(T, "honest peer connected", || async {
        peers(&honest.node).await >= 1
    })
    .await;
    let raw = honest
        .node
        .net()
        .request(Proto::Index, victim.node.peer_id(), index_request("flood"))
        .await
        .unwrap();
    let resp: IndexResponse = wire::decode_message(&raw, wire::MAX_INDEX_RESPONSE_BYTES, "index").unwrap();
    assert_eq!(resp.ids, vec![spec.id()]);
    attacker.shutdown().await;
    honest.node.shutdown().await.unwrap();
    victim.node.shutdown().await.unwrap();
}

/// With a response budget of one full fetch response, 40 concurrent fetches
/// by tag from one stranger cannot all be held in memory at once: the
/// overflow is dropped and counted, and every reserved byte comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_fetches_beyond_the_response_byte_budget_are_dropped() {
    init_tracing();
    let victim = start_node_with(154, vec![], tempfile::tempdir().unwrap(), |c| {
        c.network.budgets.response_bytes_in_flight = wire::MAX_FETCH_RESPONSE_BYTES;
    })
    .await;
    for i in 0..20 {
        publish(&victim.node, &format!("tool{i}"), &["popular"]).await;
    }
    let attacker = attacker_connected_to(&victim.node).await;
    let req = wire::encode_message(&FetchRequest::Tag("popular".into())).unwrap();
    let flood = attacker
        .flood_requests(victim.node.peer_id(), Proto::Fetch, req, 40, 40)
        .await;
    assert!(flood.answered >= 1, "{flood:?}");
    let shed = victim.node.metrics().budget_exceeded_count("response_bytes");
    assert!(shed >= 1, "{flood:?}: nothing was shed");
    assert_eq!(flood.failed as u64, shed, "{flood:?}");
    wait_for(T, "every reserved byte given back", || async {
        victim.node.net().responses_in_flight() == 0
    })
    .await;
    attacker.shutdown().await;
    victim.node.shutdown().await.unwrap();
}

/// Six strangers that list ids in sync and then deliver nothing, each answer
/// a second late: they get at most the node's two sync slots, each is
/// penalized for listing what it does not deliver, and gossip from an honest
/// publisher arrives meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_empty_sync_peers_use_only_the_sync_slots_and_are_penalized() {
    init_tracing();
    let victim = start_node_with(155, vec![], tempfile::tempdir().unwrap(), |c| {
        c.network.budgets.sync_rounds = 2;
        c.network.budgets.sync_round_deadline = Duration::from_secs(5);
        c.network.sync_interval = Duration::from_secs(3600);
    })
    .await;
    let addr = victim.node.dial_addrs()[0].clone();
    let mut attackers = Vec::new();
    for _ in 0..6 {
        let mut a = Attacker::spawn().await.unwrap();
        let served = a.serve_slow_sync(Duration::from_secs(1), 100);
        a.connect(addr.clone()).await.unwrap();
        attackers.push((a, served));
    }
    let honest = start_node(156, vec![addr]).await;
    wait_for(T, "honest publisher in the victim's gossip mesh", || async {
        honest.node.net().status().await.is_ok_and(|s| s.mesh_peers >= 1)
    })
    .await;
    let started = Instant::now();
    let spec = publish(&honest.node, "fresh", &["meanwhile"]).await;
    wait_for(T, "honest gossip arrives during the attack", || async {
        victim.node.repo().spec(&spec.id()).is_some()
    })
    .await;
    // Without sync slots, these peers held dispatcher permits for 10 s timeouts
    // each; the bound is loose for shared CI machines running tests in parallel.
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "gossip waited {:?}",
        started.elapsed()
    );
    let skipped = victim.node.metrics().budget_exceeded_count("sync_rounds");
    assert!(
        skipped >= 4,
        "only {skipped} rounds skipped with 2 slots and 7 peers"
    );
    wait_for(
        T,
        "strangers that listed and did not deliver are penalized",
        || async {
            let mut n = 0;
            for (a, _) in &attackers {
                n += bad_messages(&victim.node, a.peer_id()).await;
            }
            n >= 2
        },
    )
    .await;
    for (a, served) in attackers {
        a.shutdown().await;
        let _ = served.await;
    }
    honest.node.shutdown().await.unwrap();
    victim.node.shutdown().await.unwrap();
}

/// A stranger answering sync after 3 s meets a round deadline of 1 s: the
/// round is cut and counted, and the slot is free again for the next round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_round_is_cut_at_its_deadline() {
    init_tracing();
    let victim = start_node_with(157, vec![], tempfile::tempdir().unwrap(), |c| {
        c.network.budgets.sync_rounds = 1;
        c.network.budgets.sync_round_deadline = Duration::from_secs(1);
        c.network.sync_interval = Duration::from_secs(3600);
    })
    .await;
    let mut a = Attacker::spawn().await.unwrap();
    let served = a.serve_slow_sync(Duration::from_secs(3), 100);
    a.connect(victim.node.dial_addrs()[0].clone()).await.unwrap();
    wait_for(T, "round cut at its deadline", || async {
        victim.node.metrics().budget_exceeded_count("sync_deadline") == 1
    })
    .await;
    // The slot is free again: the round with an honest peer that connects
    // later runs and fetches what it published before (gossip cannot carry it).
    let honest = start_node(158, vec![]).await;
    let spec = publish(&honest.node, "kept", &["x"]).await;
    honest
        .node
        .net()
        .dial(victim.node.dial_addrs()[0].clone())
        .await
        .unwrap();
    wait_for(T, "the victim synced from the honest peer", || async {
        victim.node.repo().spec(&spec.id()).is_some()
    })
    .await;
    assert_eq!(victim.node.metrics().budget_exceeded_count("sync_deadline"), 1);
    a.shutdown().await;
    let _ = served.await;
    honest.node.shutdown().await.unwrap();
    victim.node.shutdown().await.unwrap();
}

/// A stranger announces 300 made-up keys to a node keeping 50 records per
/// other peer: 250 are refused and counted; the node still announces its
/// own tools and another peer finds it through the DHT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dht_provider_flood_stops_at_the_per_peer_budget_and_own_keys_still_work() {
    init_tracing();
    let victim = start_node_with(159, vec![], tempfile::tempdir().unwrap(), |c| {
        c.network.budgets.dht_records_per_peer = 50;
        c.network.budgets.dht_foreign_records = 100;
    })
    .await;
    let addr = victim.node.dial_addrs()[0].clone();
    let attacker = attacker_connected_to(&victim.node).await;
    assert_eq!(attacker.flood_providers(300).await, 300);
    wait_for(T, "250 foreign records refused", || async {
        victim
            .node
            .metrics()
            .budget_exceeded_count("dht_records_per_peer")
            >= 250
    })
    .await;
    let spec = publish(&victim.node, "mine", &["own"]).await;
    let honest = start_node(160, vec![addr]).await;
    wait_for(T, "honest peer connected", || async {
        peers(&honest.node).await >= 1
    })
    .await;
    let key = atrd::network::tag_key("own", &spec.value().publisher);
    wait_for(T, "the victim's own record is found through the DHT", || async {
        honest
            .node
            .net()
            .get_providers(key.clone(), atrd::network::Lookup::Complete)
            .await
            .is_ok_and(|p| p.contains(&victim.node.peer_id()))
    })
    .await;
    attacker.shutdown().await;
    honest.node.shutdown().await.unwrap();
    victim.node.shutdown().await.unwrap();
}

/// A stranger's valid revocations of names nobody holds cost the node it
/// sends them to a check each: not stored, not forwarded (sync is off here so
/// that nothing else could carry them); a genuine revocation of a held spec
/// still reaches every node by gossip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_of_unheld_specs_stop_at_the_first_hop() {
    use atr_protocol::revocation::{RevocationKind, RevocationTarget};
    init_tracing();
    let no_sync = |c: &mut atrd::Config| c.network.sync_interval = Duration::from_secs(3600);
    let a = start_node_with(161, vec![], tempfile::tempdir().unwrap(), no_sync).await;
    let b = start_node_with(162, a.node.dial_addrs(), tempfile::tempdir().unwrap(), no_sync).await;
    let c = start_node_with(163, b.node.dial_addrs(), tempfile::tempdir().unwrap(), no_sync).await;
    for n in [&a, &b, &c] {
        wait_for(T, "gossip mesh formed", || async {
            n.node.net().status().await.is_ok_and(|s| s.mesh_peers >= 1)
        })
        .await;
    }
    let nodes = vec![a, b, c];
    let (a, b, c) = (&nodes[0].node, &nodes[1].node, &nodes[2].node);
    let attacker = attacker_connected_to(b).await;
    let refused = || b.metrics().store_refused_count("unheld_gossip");
    wait_for(T, "the attacker's gossip reaches B", || async {
        let _ = attacker.flood_revocations(1).await;
        refused() >= 1
    })
    .await;
    let before = refused();
    attacker.flood_revocations(50).await;
    wait_for(T, "B checks and drops the flood", || async {
        refused() >= before + 50
    })
    .await;
    // Give gossip time to (not) carry them on.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for n in [a, b, c] {
        assert_eq!(n.repo().counts().unwrap().revocations, 0, "none stored anywhere");
    }

    let spec = publish(a, "held", &["x"]).await;
    for n in [b, c] {
        wait_for(T, "spec everywhere", || async {
            n.repo().spec(&spec.id()).is_some()
        })
        .await;
    }
    a.services()
        .publisher
        .revoke(
            RevocationTarget::Id(spec.id()),
            RevocationKind::Revoke,
            "bug".into(),
            None,
        )
        .await
        .unwrap();
    for n in [b, c] {
        // Loose for CI; `attacks_leave_honest_work_intact_at_ci_size` asserts the 2 s goal.
        wait_for(
            Duration::from_secs(10),
            "the genuine revocation everywhere",
            || async { n.repo().spec(&spec.id()).is_some_and(|(_, st)| !st.is_active()) },
        )
        .await;
    }
    attacker.shutdown().await;
    for t in nodes {
        t.node.shutdown().await.unwrap();
    }
}
