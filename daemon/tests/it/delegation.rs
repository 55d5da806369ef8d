//! Who may answer an invocation (issue 14): the publisher, a provider it
//! delegated, or one the caller trusts — never a peer that merely announces
//! the tool's name. Real swarms; the hostile providers are `atrd::attacker`
//! peers that answer with receipts they sign themselves.

use std::sync::atomic::Ordering;
use std::time::Duration;

use atr_protocol::api::{InvokeRequest, ProviderKind};
use atr_protocol::delegation::{DELEGATION_FORMAT, Delegation, DelegationScope};
use atr_protocol::id::ByteBuf;
use atr_protocol::wire::{self, WireObject};
use atr_protocol::{PublicKey, SecretKey, SignedDelegation, SignedSpec};
use atrd::attacker::Attacker;
use atrd::catalog::DelegationRefused;
use atrd::node::ingest::IngestError;
use serde_json::json;

use crate::harness::*;

const T: Duration = Duration::from_secs(30);

fn delegation(
    key: &SecretKey,
    spec: &SignedSpec,
    provider: PublicKey,
    created: u64,
    expires: u64,
) -> SignedDelegation {
    let d = Delegation {
        v: DELEGATION_FORMAT,
        publisher: key.public(),
        provider,
        scope: DelegationScope::Id(spec.id()),
        created_at_ms: created,
        expires_at_ms: expires,
    };
    SignedDelegation::sign(d, key).unwrap()
}

fn add(spec: &SignedSpec) -> InvokeRequest {
    InvokeRequest {
        id: Some(spec.id()),
        name: None,
        version: None,
        publisher: None,
        input: json!({"a": 1, "b": 2}),
    }
}

async fn announced_by(caller: &atrd::Node, name: &str, peer: libp2p::PeerId) -> bool {
    for k in atrd::network::all_shard_keys("name", name) {
        if caller
            .net()
            .get_providers(k, atrd::network::Lookup::Complete)
            .await
            .is_ok_and(|p| p.contains(&peer))
        {
            return true;
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_publisher_its_delegates_or_trusted_providers_get_the_input() {
    init_tracing();
    let p = start_node(190, vec![]).await;
    let c = start_node(191, p.node.dial_addrs()).await;
    let spec = p
        .node
        .services()
        .publisher
        .publish(manifest("adder", "1.0.0", &["math"]), "adder.toml".into())
        .await
        .unwrap()
        .spec;
    wait_for(T, "the caller holds the spec", || async {
        c.node.repo().spec(&spec.id()).is_some()
    })
    .await;
    let p_key = SecretKey::from_seed(&[190; 32]);
    assert_eq!(p_key.public(), p.node.public_key());
    p.node.shutdown().await.unwrap();

    // A stranger announces the tool's name and would answer anything.
    let mut stranger = Attacker::spawn().await.unwrap();
    let asked = stranger.serve_invoke(spec.clone(), json!(3));
    stranger.connect(c.node.dial_addrs()[0].clone()).await.unwrap();
    for k in atrd::network::all_shard_keys("name", "adder") {
        stranger.net().announce(k).await.unwrap();
    }
    wait_for(T, "the caller's DHT lists the stranger", || {
        announced_by(&c.node, "adder", stranger.peer_id())
    })
    .await;
    let e = c.node.services().caller.invoke(add(&spec)).await.unwrap_err();
    let msg = e.to_string();
    assert!(msg.starts_with("no provider answered"), "{msg}");
    assert!(msg.contains("were not asked"), "{msg}");
    assert_eq!(
        asked.load(Ordering::Relaxed),
        0,
        "the stranger never saw the input"
    );

    // Delegations that must not count: forged (signed by the stranger for
    // the publisher's tool), expired, or for a spec nobody holds.
    let ingest = &c.node.services().ingest;
    let now = atrd::time::now_ms();
    let forged = delegation(
        &SecretKey::from_seed(&[77; 32]),
        &spec,
        stranger.public_key(),
        now,
        now + 60_000,
    );
    assert!(matches!(
        ingest.delegation(&forged.to_bytes()),
        Err(IngestError::Delegation(DelegationRefused::NotPublisher { .. }))
    ));
    let expired = delegation(
        &p_key,
        &spec,
        stranger.public_key(),
        now - 7_200_000,
        now - 3_600_000,
    );
    assert!(matches!(
        ingest.delegation(&expired.to_bytes()),
        Err(IngestError::Delegation(DelegationRefused::Expired))
    ));
    let other = foreign_spec(78, "elsewhere", &["x"]);
    let unheld = delegation(
        &SecretKey::from_seed(&[78; 32]),
        &other,
        stranger.public_key(),
        now,
        now + 60_000,
    );
    assert!(matches!(
        ingest.delegation(&unheld.to_bytes()),
        Err(IngestError::Delegation(DelegationRefused::Unheld))
    ));
    let mut tampered = delegation(&p_key, &spec, stranger.public_key(), now, now + 60_000).to_bytes();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(matches!(
        ingest.delegation(&tampered),
        Err(IngestError::Invalid { .. })
    ));
    assert_eq!(c.node.repo().counts().unwrap().delegations, 0);
    c.node.services().caller.invoke(add(&spec)).await.unwrap_err();
    assert_eq!(asked.load(Ordering::Relaxed), 0);

    // The publisher's genuine delegation, relayed by anyone (here the
    // stranger itself, over gossip): now it may answer, and its receipt verifies.
    let genuine = delegation(&p_key, &spec, stranger.public_key(), now, now + 3_600_000);
    let msg = wire::encode_message(&WireObject::Delegation(ByteBuf(genuine.to_bytes()))).unwrap();
    wait_for(T, "the delegation reaches the caller by gossip", || async {
        let _ = stranger.net().publish(msg.clone()).await;
        c.node.repo().counts().unwrap().delegations == 1
    })
    .await;
    let r = c.node.services().caller.invoke(add(&spec)).await.unwrap();
    assert_eq!(r.output, json!(3));
    assert_eq!(r.provider_kind, Some(ProviderKind::Delegated));
    assert_eq!(r.receipt.provider, stranger.public_key());
    assert_eq!(asked.load(Ordering::Relaxed), 1);

    // A delegated provider whose output breaks the output schema: refused,
    // even with a receipt that verifies.
    let mut liar = Attacker::spawn().await.unwrap();
    let liar_asked = liar.serve_invoke(spec.clone(), json!("three"));
    liar.connect(c.node.dial_addrs()[0].clone()).await.unwrap();
    let d = delegation(&p_key, &spec, liar.public_key(), now, now + 3_600_000);
    ingest.delegation(&d.to_bytes()).unwrap();
    stranger.shutdown().await;
    let e = c.node.services().caller.invoke(add(&spec)).await.unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("output does not match the tool's output schema"),
        "{msg}"
    );
    assert_eq!(liar_asked.load(Ordering::Relaxed), 1);
    liar.shutdown().await;
    c.node.shutdown().await.unwrap();
}

/// A provider on the caller's own `trusted_providers` list may answer any
/// tool, without a delegation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_provider_answers_without_a_delegation() {
    init_tracing();
    let p = start_node(193, vec![]).await;
    let mut trusted = Attacker::spawn().await.unwrap();
    let key = trusted.public_key();
    let c = start_node_with(
        194,
        p.node.dial_addrs(),
        tempfile::tempdir().unwrap(),
        move |cfg| {
            cfg.trusted_providers = vec![key];
        },
    )
    .await;
    let spec = p
        .node
        .services()
        .publisher
        .publish(manifest("adder", "1.0.0", &["math"]), "adder.toml".into())
        .await
        .unwrap()
        .spec;
    wait_for(T, "the caller holds the spec", || async {
        c.node.repo().spec(&spec.id()).is_some()
    })
    .await;
    p.node.shutdown().await.unwrap();
    let asked = trusted.serve_invoke(spec.clone(), json!(3));
    trusted.connect(c.node.dial_addrs()[0].clone()).await.unwrap();
    for k in atrd::network::all_shard_keys("name", "adder") {
        trusted.net().announce(k).await.unwrap();
    }
    wait_for(T, "the caller's DHT lists the trusted provider", || {
        announced_by(&c.node, "adder", trusted.peer_id())
    })
    .await;
    let r = c.node.services().caller.invoke(add(&spec)).await.unwrap();
    assert_eq!(r.provider_kind, Some(ProviderKind::Trusted));
    assert_eq!(r.receipt.provider, key);
    assert_eq!(asked.load(Ordering::Relaxed), 1);
    trusted.shutdown().await;
    c.node.shutdown().await.unwrap();
}
