//! Real swarms on loopback: publish, propagate, discover, revoke, sync, and
//! hostile peers.

use std::time::{Duration, Instant};

use atr_protocol::id::ByteBuf;
use atr_protocol::query::{FindQuery, parse_version_req};
use atr_protocol::revocation::{Revocation, RevocationKind, RevocationTarget, SignedRevocation};
use atr_protocol::wire::{self, WireObject};
use atr_protocol::{SecretKey, SignedSpec};

use crate::harness::*;

const T: Duration = Duration::from_secs(20);

async fn publish_on(n: &atrd::Node, name: &str, version: &str, tags: &[&str]) -> SignedSpec {
    n.services()
        .publisher
        .publish(manifest(name, version, tags), "test.toml".into())
        .await
        .unwrap()
        .spec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_on_a_is_found_by_tag_and_name_on_e_then_revoke_hides_it_everywhere() {
    init_tracing();
    let nodes = start_network(5, 10).await;
    let a = &nodes[0].node;
    let e = &nodes[4].node;
    let s1 = publish_on(a, "adder", "1.2.0", &["math", "demo"]).await;
    let s2 = publish_on(a, "adder", "2.0.0", &["math"]).await;
    wait_for(T, "E finds both by tag", || async {
        find_local(e, by_tag("math")).len() == 2
    })
    .await;
    let req = parse_version_req(">=1.2, <2").unwrap();
    let q = FindQuery {
        name: Some("adder".into()),
        ..Default::default()
    };
    let hits: Vec<_> = {
        e.repo().read(|cat| {
            cat.find(&q, Some(&req))
                .into_iter()
                .map(|x| x.spec.id())
                .collect()
        })
    };
    assert_eq!(hits, vec![s1.id()], "the range keeps its upper bound");

    a.services()
        .publisher
        .revoke(
            RevocationTarget::Id(s1.id()),
            RevocationKind::Revoke,
            "bug".into(),
            None,
        )
        .await
        .unwrap();
    for (i, t) in nodes.iter().enumerate() {
        wait_for(T, &format!("node {i} hides the revoked spec"), || async {
            find_local(&t.node, by_tag("math")) == vec![s2.id()]
        })
        .await;
        let mut all = by_tag("math");
        all.include_revoked = true;
        assert_eq!(
            find_local(&t.node, all).len(),
            2,
            "node {i} still knows it, as revoked"
        );
    }
    for t in nodes {
        t.node.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_started_late_catches_up_by_sync() {
    init_tracing();
    let nodes = start_network(3, 30).await;
    let a = &nodes[0].node;
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(
            publish_on(a, &format!("tool-{i}"), "1.0.0", &["batch"])
                .await
                .id(),
        );
    }
    a.services()
        .publisher
        .revoke(
            RevocationTarget::Id(ids[0]),
            RevocationKind::Revoke,
            "old".into(),
            None,
        )
        .await
        .unwrap();
    // D joins after everything was gossiped: only anti-entropy can tell it.
    let late = start_node(40, nodes[2].node.dial_addrs()).await;
    wait_for(T, "late node has 19 active + 1 revoked", || async {
        let mut q = by_tag("batch");
        q.include_revoked = true;
        find_local(&late.node, by_tag("batch")).len() == 19 && find_local(&late.node, q).len() == 20
    })
    .await;
    late.node.shutdown().await.unwrap();
    for t in nodes {
        t.node.shutdown().await.unwrap();
    }
}

/// Issue 15: a joining node catches up past one sync answer
/// ([`atr_protocol::wire::MAX_SYNC_REFS`]) in rounds that follow each other
/// at once: the periodic round is an hour away, so only catch-up chaining
/// can fetch the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_node_catches_up_past_one_sync_answer_without_waiting() {
    use rayon::prelude::*;
    init_tracing();
    let n = atr_protocol::wire::MAX_SYNC_REFS + 1_500;
    let slow_sync = |c: &mut atrd::config::Config| {
        c.network.sync_interval = Duration::from_secs(3600);
        c.store.max_specs = 40_000;
    };
    let a = start_node_with(70, vec![], tempfile::tempdir().unwrap(), slow_sync).await;
    // 100 specs per publisher (within the default quota), signed on every core.
    let specs: Vec<SignedSpec> = (0..n)
        .into_par_iter()
        .map(|i| {
            let mut seed = [9u8; 32];
            seed[..4].copy_from_slice(&((i / 100) as u32).to_le_bytes());
            let key = SecretKey::from_seed(&seed);
            let spec = manifest(&format!("c{i}"), "1.0.0", &["catchup"])
                .to_spec("t.toml", key.public(), 1_764_000_000_000, None)
                .unwrap();
            SignedSpec::sign(spec, &key).unwrap()
        })
        .collect();
    let ingest = a.node.services().ingest.clone();
    tokio::task::spawn_blocking(move || {
        for chunk in specs.chunks(1000) {
            assert!(ingest.store_specs(chunk).iter().all(|r| r.is_ok()));
        }
    })
    .await
    .unwrap();
    let b = start_node_with(71, a.node.dial_addrs(), tempfile::tempdir().unwrap(), slow_sync).await;
    wait_for(Duration::from_secs(300), "B holds every spec of A", || async {
        b.node.repo().read(|c| c.len()) == n
    })
    .await;
    // Every one came by sync.
    assert_eq!(b.node.services().ingest.metrics().sync_objects.get(), n as u64);
    b.node.shutdown().await.unwrap();
    a.node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_publishers_of_one_tag_are_all_found_by_a_fresh_node() {
    init_tracing();
    let nodes = start_network(3, 50).await;
    // 300 distinct publishers (keys), their specs held by the network.
    let specs: Vec<SignedSpec> = (0..300u16)
        .map(|i| {
            let seed = [
                (i % 251) as u8,
                (i / 251) as u8 + 1,
                7,
                7,
                7,
                7,
                7,
                7,
                7,
                7,
                7,
                7,
                7,
                7,
                7,
                7,
                7,
                7,
                7,
                7,
                7,
                7,
                7,
                7,
                7,
                7,
                7,
                7,
                7,
                7,
                7,
                7,
            ];
            let key = SecretKey::from_seed(&seed);
            let spec = manifest(&format!("t{i}"), "1.0.0", &["popular"])
                .to_spec("t.toml", key.public(), 1_764_000_000_000, None)
                .unwrap();
            SignedSpec::sign(spec, &key).unwrap()
        })
        .collect();
    for (i, s) in specs.iter().enumerate() {
        let holder = &nodes[i % 3].node;
        holder.services().ingest.store_spec(s.clone()).unwrap();
    }
    let fresh = start_node(60, nodes[1].node.dial_addrs()).await;
    wait_for(Duration::from_secs(60), "fresh node finds all 300", || async {
        find_local(&fresh.node, by_tag("popular")).len() == 300
    })
    .await;
    fresh.node.shutdown().await.unwrap();
    for t in nodes {
        t.node.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dht_finds_every_provider_of_a_tag_across_shards() {
    init_tracing();
    let nodes = start_network(6, 70).await;
    for (i, t) in nodes.iter().enumerate().take(5) {
        publish_on(&t.node, &format!("svc{i}"), "1.0.0", &["shared"]).await;
    }
    let asker = &nodes[5].node;
    let expected: std::collections::HashSet<_> = nodes.iter().take(5).map(|t| t.node.peer_id()).collect();
    wait_for(T, "all 5 providers found in the DHT", || async {
        let mut found = std::collections::HashSet::new();
        for k in atrd::network::all_shard_keys("tag", "shared") {
            if let Ok(p) = asker
                .net()
                .get_providers(k, atrd::network::Lookup::Complete)
                .await
            {
                found.extend(p);
            }
        }
        expected.is_subset(&found)
    })
    .await;
    let n = asker
        .services()
        .discovery
        .from_network(Some("shared"), None, atrd::network::Lookup::Complete)
        .await;
    assert!(
        find_local(asker, by_tag("shared")).len() == 5,
        "{n:?}, found all five"
    );
    for t in nodes {
        t.node.shutdown().await.unwrap();
    }
}

/// Issue 15 item 6: shard lookups that each stop at their first answer naming a provider
/// (`Lookup::First`, the API's `network=true`) still name every provider of a tag: a key's
/// provider records live on the same closest nodes, so the first of them to answer names
/// them all. Checked against complete lookups, then through a whole network find.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_answer_lookups_name_every_provider_of_a_tag() {
    use atrd::network::{Lookup, all_shard_keys};
    init_tracing();
    let nodes = start_network(8, 76).await;
    for (i, t) in nodes.iter().enumerate().take(6) {
        publish_on(&t.node, &format!("first{i}"), "1.0.0", &["first"]).await;
    }
    let asker = &nodes[7].node;
    let expected: std::collections::HashSet<_> = nodes.iter().take(6).map(|t| t.node.peer_id()).collect();
    let union = |lookup: Lookup| async move {
        let mut found = std::collections::HashSet::new();
        for k in all_shard_keys("tag", "first") {
            if let Ok(p) = asker.net().get_providers(k, lookup).await {
                found.extend(p);
            }
        }
        found
    };
    wait_for(T, "all 6 providers announced", || async {
        expected.is_subset(&union(Lookup::Complete).await)
    })
    .await;
    let started = Instant::now();
    let first = union(Lookup::First).await;
    let first_took = started.elapsed();
    let started = Instant::now();
    let complete = union(Lookup::Complete).await;
    let complete_took = started.elapsed();
    eprintln!("16 shard lookups one after another: first answer {first_took:?}, complete {complete_took:?}");
    assert_eq!(first, complete, "a first answer left providers out");
    assert!(expected.is_subset(&first));
    let stats = asker
        .services()
        .discovery
        .from_network(Some("first"), None, Lookup::First)
        .await;
    assert_eq!(stats.providers, 6, "{stats:?}");
    // Every provider holds all six (gossip) and lists them.
    assert_eq!(stats.listed, 6 * 6, "{stats:?}");
    for t in nodes {
        t.node.shutdown().await.unwrap();
    }
}

async fn bad_count(n: &atrd::Node, rogue: libp2p::PeerId) -> u64 {
    n.net()
        .status()
        .await
        .map(|s| {
            s.peers
                .iter()
                .find(|p| p.peer == rogue.to_string())
                .map(|p| p.bad_messages)
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_tampered_and_oversized_gossip_is_rejected_and_counted() {
    init_tracing();
    let nodes = start_network(2, 80).await;
    let honest = &nodes[0].node;
    let rogue = &nodes[1].node;
    wait_for(T, "gossip mesh formed", || async {
        rogue
            .net()
            .status()
            .await
            .map(|s| s.mesh_peers > 0)
            .unwrap_or(false)
    })
    .await;
    let good = foreign_spec(90, "victim", &["x"]);

    // Tampered: one byte of the body changed after signing.
    let mut tampered = good.to_bytes();
    let n = tampered.len();
    tampered[n / 2] ^= 0x20;
    // Forged: claims publisher A, signed by B.
    let mut forged_spec = good.value().clone();
    forged_spec.publisher = SecretKey::from_seed(&[91; 32]).public();
    let body = atr_protocol::cbor::to_canonical(&forged_spec).unwrap();
    let sig =
        SecretKey::from_seed(&[90; 32]).sign(&atr_protocol::signed::signing_message(b"atr-spec-v1", &body));
    let forged = [
        vec![0x82, 0x59],
        (body.len() as u16).to_be_bytes().to_vec(),
        body,
        vec![0x58, 64],
        sig.0.to_vec(),
    ]
    .concat();
    // Oversized: over atr's gossip cap (still under gossipsub's transmit size,
    // so it reaches the validator instead of being dropped by the transport).
    let oversized = vec![0xa1u8; wire::MAX_GOSSIP_BYTES + 500];

    let msgs = vec![
        wire::encode_message(&WireObject::Spec(ByteBuf(tampered))).unwrap(),
        wire::encode_message(&WireObject::Spec(ByteBuf(forged))).unwrap(),
        oversized,
        b"\xff\xfe not cbor at all".to_vec(),
    ];
    let before = honest.repo().counts().unwrap().specs;
    for m in msgs {
        rogue.net().publish(m).await.unwrap();
    }
    wait_for(T, "4 bad messages counted against the rogue", || async {
        bad_count(honest, rogue.peer_id()).await >= 4
    })
    .await;
    assert_eq!(
        honest.repo().counts().unwrap().specs,
        before,
        "nothing reached the store"
    );
    assert!(honest.repo().spec(&good.id()).is_none());
    // The honest node still works: a valid spec from the same peer is accepted.
    let ok = publish_on(rogue, "fine", "1.0.0", &["x"]).await;
    wait_for(T, "valid spec still accepted", || async {
        honest.repo().spec(&ok.id()).is_some()
    })
    .await;
    for t in nodes {
        t.node.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_signed_by_a_non_publisher_is_rejected() {
    init_tracing();
    let nodes = start_network(3, 100).await;
    let a = &nodes[0].node;
    let b = &nodes[1].node;
    let spec = publish_on(a, "mine", "1.0.0", &["own"]).await;
    for t in &nodes {
        wait_for(T, "spec everywhere", || async {
            find_local(&t.node, by_tag("own")).len() == 1
        })
        .await;
    }
    wait_for(T, "B in mesh", || async {
        b.net().status().await.map(|s| s.mesh_peers > 0).unwrap_or(false)
    })
    .await;
    let rev = Revocation {
        v: 1,
        kind: RevocationKind::Revoke,
        target: RevocationTarget::Id(spec.id()),
        publisher: b.public_key(),
        reason: "hostile takeover".into(),
        successor: None,
        created_at_ms: 1_900_000_000_000,
    };
    let signed = SignedRevocation::sign(rev, &b.identity().secret).unwrap();
    // B's own API refuses it.
    assert!(
        b.services()
            .publisher
            .revoke(
                RevocationTarget::Id(spec.id()),
                RevocationKind::Revoke,
                "x".into(),
                None
            )
            .await
            .is_err()
    );
    // Sent raw over gossip, it is rejected and counted.
    let bytes = wire::encode_message(&WireObject::Revocation(ByteBuf(signed.to_bytes()))).unwrap();
    b.net().publish(bytes).await.unwrap();
    wait_for(T, "rejection counted against B", || async {
        bad_count(a, b.peer_id()).await >= 1
    })
    .await;
    for (i, t) in nodes.iter().enumerate() {
        assert_eq!(
            find_local(&t.node, by_tag("own")),
            vec![spec.id()],
            "node {i}: still active"
        );
    }
    for t in nodes {
        t.node.shutdown().await.unwrap();
    }
}

/// Parses Prometheus text (format 0.0.4) strictly enough to catch a broken
/// exposition: every sample is `name[{labels}] value` with a valid name and a
/// numeric value, every family has one `# TYPE` line. Returns the unlabeled
/// samples by name.
fn parse_metrics(text: &str) -> std::collections::HashMap<String, f64> {
    let mut types = std::collections::HashSet::new();
    let mut plain = std::collections::HashMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let family = rest.split(' ').next().unwrap();
            assert!(types.insert(family.to_owned()), "two TYPE lines for {family}");
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let name = series.split('{').next().unwrap();
        assert!(
            !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line:?}"
        );
        if series == name {
            plain.insert(name.to_owned(), value);
        }
    }
    plain
}

/// Four nodes, each connected to the three others: gossipsub's mesh
/// (`mesh_n` = 6, `mesh_n_low` = 5) then holds all three peers on every node.
/// When A publishes, B, C and D each get the message from A (flood publish),
/// and after validating it each forwards it to its mesh peers except A and
/// those it already received it from. For any two of them, X and Y, at least
/// one forwards before the other's copy arrives, and that copy reaches a node
/// that already has the message: at least one duplicate per pair, 3 in all.
/// (IDONTWANT, which could suppress them, is sent only for messages over
/// gossipsub's 1000-byte threshold; the message here is smaller, asserted.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_duplicates_are_counted_in_a_full_mesh() {
    init_tracing();
    let nodes = start_full_mesh(4, 110).await;
    for (i, t) in nodes.iter().enumerate() {
        wait_for(T, &format!("node {i} has 3 peers, all in its mesh"), || async {
            t.node
                .net()
                .status()
                .await
                .map(|s| s.peers.len() == 3 && s.mesh_peers == 3)
                .unwrap_or(false)
        })
        .await;
    }
    let a = &nodes[0].node;
    let spec = publish_on(a, "dup", "1.0.0", &["dup"]).await;
    let gossip = wire::encode_message(&WireObject::Spec(ByteBuf(spec.to_bytes()))).unwrap();
    assert!(
        gossip.len() + 250 < 1000,
        "{} bytes: IDONTWANT would apply",
        gossip.len()
    );
    let receivers = &nodes[1..];
    wait_for(
        T,
        "B, C and D each got the message once, and 3 duplicates in all",
        || async {
            let counts: Vec<_> = receivers.iter().map(|t| t.node.net().gossip_counts()).collect();
            counts.iter().all(|c| c.unique == 1) && counts.iter().map(|c| c.duplicates()).sum::<u64>() >= 3
        },
    )
    .await;
    for t in receivers {
        let before = t.node.net().gossip_counts().duplicates() as f64;
        let url = format!("http://{}/metrics", t.node.api_addr());
        let text = reqwest::get(&url).await.unwrap().text().await.unwrap();
        let after = t.node.net().gossip_counts().duplicates() as f64;
        let m = parse_metrics(&text);
        assert_eq!(m.get("atr_gossip_messages_received_total"), Some(&1.0), "{text}");
        let dups = m["atr_gossip_duplicates_received_total"];
        assert!(before <= dups && dups <= after, "{before} <= {dups} <= {after}");
    }
    for t in nodes {
        t.node.shutdown().await.unwrap();
    }
}

/// A network find lists ids first and fetches only the bodies this node
/// lacks, each once: D holds A's and B's specs (gossip) but not X, which A
/// and B hold without having gossiped it (stored directly) and D cannot sync
/// (its periodic round is an hour away and it is already connected to
/// everyone, so no connect round runs). The first find fetches exactly X,
/// from one of the two providers listing it; the second fetches nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_find_fetches_only_the_bodies_it_lacks() {
    init_tracing();
    let mut nodes = start_full_mesh(3, 120).await;
    let boot = nodes
        .iter()
        .flat_map(|t| t.node.dial_addrs().into_iter().take(1))
        .collect();
    let d = start_node_with(123, boot, tempfile::tempdir().unwrap(), |c| {
        c.network.sync_interval = Duration::from_secs(3600);
    })
    .await;
    wait_for(T, "D connected to all three", || async {
        d.node
            .net()
            .status()
            .await
            .map(|s| s.peers.len() == 3)
            .unwrap_or(false)
    })
    .await;
    let (a, b) = (&nodes[0].node, &nodes[1].node);
    let s1 = publish_on(a, "held-a", "1.0.0", &["held"]).await;
    let s2 = publish_on(b, "held-b", "1.0.0", &["held"]).await;
    wait_for(T, "D has both by gossip", || async {
        find_local(&d.node, by_tag("held")).len() == 2
    })
    .await;
    let x = foreign_spec(124, "held-x", &["held"]);
    for n in [a, b] {
        n.services().ingest.store_spec(x.clone()).unwrap();
    }
    let providers: std::collections::HashSet<_> = [a.peer_id(), b.peer_id()].into();
    wait_for(T, "A and B found in the DHT", || async {
        let mut found = std::collections::HashSet::new();
        for k in atrd::network::all_shard_keys("tag", "held") {
            if let Ok(p) = d
                .node
                .net()
                .get_providers(k, atrd::network::Lookup::Complete)
                .await
            {
                found.extend(p);
            }
        }
        providers.is_subset(&found)
    })
    .await;
    assert!(
        find_local(&d.node, by_tag("held")).len() == 2,
        "D must still lack X"
    );

    let first = d
        .node
        .services()
        .discovery
        .from_network(Some("held"), None, atrd::network::Lookup::Complete)
        .await;
    assert!(first.providers >= 2, "{first:?}");
    assert!(first.listed >= 6, "A and B list 3 ids each: {first:?}");
    assert_eq!(
        (first.missing, first.fetched, first.stored),
        (1, 1, 1),
        "only X, once: {first:?}"
    );
    let mut want = vec![s1.id(), s2.id(), x.id()];
    want.sort();
    let mut got = find_local(&d.node, by_tag("held"));
    got.sort();
    assert_eq!(got, want);

    let again = d
        .node
        .services()
        .discovery
        .from_network(Some("held"), None, atrd::network::Lookup::Complete)
        .await;
    assert!(again.listed >= 6, "{again:?}");
    assert_eq!(
        (again.missing, again.fetched, again.stored),
        (0, 0, 0),
        "a node holding every spec fetches no body: {again:?}"
    );
    d.node.shutdown().await.unwrap();
    for t in nodes.drain(..) {
        t.node.shutdown().await.unwrap();
    }
}

/// B starts with A as its bootstrap peer while nothing listens at A's
/// address; A starts there afterwards and publishes. B's first dial failed,
/// and A does not know B: only B's bootstrap retry can connect them. Then B
/// finds A's spec (the connect-time sync or a network find, whichever first).
/// When A stops, B retries again and reconnects once A is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_started_before_its_bootstrap_peer_connects_when_it_comes_up() {
    init_tracing();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let a_id = atrd::identity::Identity::from_seed([140; 32]).peer_id();
    let a_listen: libp2p::Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap();
    let a_addr = a_listen.clone().with(libp2p::multiaddr::Protocol::P2p(a_id));
    let b = start_node(141, vec![a_addr]).await;
    let peers = |n: &atrd::Node| {
        let net = n.net().clone();
        async move { net.status().await.map(|s| s.peers.len()).unwrap_or(0) }
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(peers(&b.node).await, 0, "nothing listens at A's address yet");

    let a_listen2 = a_listen.clone();
    let a = start_node_with(140, vec![], tempfile::tempdir().unwrap(), |c| {
        c.network.listen = vec![a_listen];
    })
    .await;
    assert_eq!(a.node.peer_id(), a_id);
    let spec = publish_on(&a.node, "early", "1.0.0", &["late-boot"]).await;
    wait_for(T, "B connects to A by retrying", || async {
        b.node
            .net()
            .status()
            .await
            .map(|s| s.peers.iter().any(|p| p.peer == a_id.to_string()))
            .unwrap_or(false)
    })
    .await;
    wait_for(T, "B finds A's spec", || async {
        b.node
            .services()
            .discovery
            .from_network(Some("late-boot"), None, atrd::network::Lookup::Complete)
            .await;
        find_local(&b.node, by_tag("late-boot")) == vec![spec.id()]
    })
    .await;

    // A goes away: B, left with no peer, resumes retrying and reconnects
    // when A is back (with a fresh data dir, so A does not dial B itself).
    a.node.shutdown().await.unwrap();
    wait_for(T, "B notices it lost A", || async { peers(&b.node).await == 0 }).await;
    let a = start_node_with(140, vec![], tempfile::tempdir().unwrap(), |c| {
        c.network.listen = vec![a_listen2];
    })
    .await;
    wait_for(T, "B reconnects to A by retrying", || async {
        peers(&b.node).await == 1
    })
    .await;
    b.node.shutdown().await.unwrap();
    a.node.shutdown().await.unwrap();
}
