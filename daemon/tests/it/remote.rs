//! Remote invocation across real swarms: caller → provider with a verified
//! receipt; tampering, revocation, denial, replay, busy and failover.

use std::time::Duration;

use atr_protocol::api::InvokeRequest as ApiInvoke;
use atr_protocol::id::{ByteBuf, InvocationId};
use atr_protocol::receipt::{InvocationStatus, SignedReceipt};
use atr_protocol::revocation::{RevocationKind, RevocationTarget};
use atr_protocol::wire::{self, InvokeRequest, InvokeResponse, Refusal};
use atrd::network::Proto;
use atrd::node::invoke::caller;
use serde_json::json;

use crate::harness::*;

const T: Duration = Duration::from_secs(20);

fn by_id(id: atr_protocol::ToolId, input: serde_json::Value) -> ApiInvoke {
    ApiInvoke {
        id: Some(id),
        name: None,
        version: None,
        publisher: None,
        input,
    }
}

async fn raw_invoke(from: &atrd::Node, to: libp2p::PeerId, req: &InvokeRequest) -> InvokeResponse {
    let bytes = wire::encode_message(req).unwrap();
    let raw = from.net().request(Proto::Invoke, to, bytes).await.unwrap();
    wire::decode_message(&raw, wire::MAX_INVOKE_RESPONSE_BYTES, "invoke response").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Docker Engine"]
async fn remote_invocation_returns_a_verified_receipt_and_hostile_answers_are_rejected() {
    init_tracing();
    let provider = start_provider(150, vec![], 2).await;
    let bystander = start_node(151, provider.node.dial_addrs()).await;
    let caller = start_node(152, bystander.node.dial_addrs()).await; // no sandbox: must go remote
    let spec = provider
        .node
        .services()
        .publisher
        .publish(tool_manifest("add"), "add.toml".into())
        .await
        .unwrap()
        .spec;
    wait_for(T, "caller knows the spec", || async {
        caller.node.repo().spec(&spec.id()).is_some()
    })
    .await;

    let r = caller
        .node
        .services()
        .caller
        .invoke(by_id(spec.id(), json!({"a": 2, "b": 40})))
        .await
        .unwrap();
    assert_eq!(r.output, json!(42));
    assert_eq!(r.status, InvocationStatus::Ok);
    assert_eq!(r.provider, provider.node.peer_id().to_string());
    assert_eq!(r.receipt.provider, provider.node.public_key());
    let signed = SignedReceipt::from_bytes(&hex::decode(&r.receipt_hex).unwrap()).unwrap();
    assert_eq!(signed.value().tool, spec.id());
    assert_eq!(
        caller.node.repo().counts().unwrap().receipts,
        1,
        "caller keeps the receipt"
    );

    // The caller's verification rejects tampered outputs and receipts.
    let inv = InvocationId([3; 16]);
    let input = br#"{"a":1,"b":1}"#;
    let req = InvokeRequest {
        invocation: inv,
        tool: spec.id(),
        input: ByteBuf(input.to_vec()),
    };
    let InvokeResponse::Done { output, receipt } =
        raw_invoke(&caller.node, provider.node.peer_id(), &req).await
    else {
        panic!("expected an answer")
    };
    let p = provider.node.peer_id();
    assert!(caller::verify_answer(&spec, inv, input, &output.0, &receipt.0, &p).is_ok());
    assert!(
        caller::verify_answer(&spec, inv, input, b"3", &receipt.0, &p).is_err(),
        "tampered output"
    );
    let mut bad = receipt.0.clone();
    let n = bad.len();
    bad[n - 80] ^= 1;
    assert!(
        caller::verify_answer(&spec, inv, input, &output.0, &bad, &p).is_err(),
        "tampered receipt"
    );
    assert!(
        caller::verify_answer(&spec, inv, br#"{"a":9,"b":1}"#, &output.0, &receipt.0, &p).is_err(),
        "other input"
    );
    assert!(
        caller::verify_answer(&spec, inv, input, &output.0, &receipt.0, &caller.node.peer_id()).is_err(),
        "signed by someone else than the provider asked"
    );

    // Replay of the same invocation id is refused.
    let again = raw_invoke(&caller.node, provider.node.peer_id(), &req).await;
    assert!(
        matches!(
            again,
            InvokeResponse::Refused {
                reason: Refusal::Replay,
                ..
            }
        ),
        "{again:?}"
    );

    // Revoked: the provider refuses even when asked directly.
    provider
        .node
        .services()
        .publisher
        .revoke(
            RevocationTarget::Id(spec.id()),
            RevocationKind::Revoke,
            "bug".into(),
            None,
        )
        .await
        .unwrap();
    let req = InvokeRequest {
        invocation: InvocationId([4; 16]),
        tool: spec.id(),
        input: ByteBuf(input.to_vec()),
    };
    let resp = raw_invoke(&caller.node, provider.node.peer_id(), &req).await;
    assert!(
        matches!(
            resp,
            InvokeResponse::Refused {
                reason: Refusal::Revoked,
                ..
            }
        ),
        "{resp:?}"
    );
    wait_for(T, "caller learns the revocation", || async {
        matches!(
            caller
                .node
                .services()
                .caller
                .invoke(by_id(spec.id(), json!({"a": 1, "b": 1})))
                .await,
            Err(caller::InvokeError::Revoked(_))
        )
    })
    .await;
    for t in [caller, bystander, provider] {
        t.node.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Docker Engine"]
async fn a_denied_peer_is_refused() {
    init_tracing();
    ensure_tools_image();
    let caller = start_node(161, vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = test_config(dir.path());
    c.sandbox.enabled = true;
    c.invoke.deny = vec![caller.node.peer_id()];
    c.network.bootstrap = caller.node.dial_addrs();
    let provider = atrd::Node::bind_with_identity(c, Some(atrd::identity::Identity::from_seed([160; 32])))
        .await
        .unwrap();
    let spec = provider
        .services()
        .publisher
        .publish(tool_manifest("echo"), "echo.toml".into())
        .await
        .unwrap()
        .spec;
    wait_for(T, "caller knows the spec", || async {
        caller.node.repo().spec(&spec.id()).is_some()
    })
    .await;
    let e = caller
        .node
        .services()
        .caller
        .invoke(by_id(spec.id(), json!({"x": 1})))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("does not serve you"), "{e}");
    provider.shutdown().await.unwrap();
    caller.node.shutdown().await.unwrap();
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Docker Engine"]
async fn a_busy_provider_answers_busy_and_the_caller_fails_over() {
    init_tracing();
    let a = start_provider(170, vec![], 1).await;
    let b = start_provider(171, a.node.dial_addrs(), 2).await;
    let caller = start_node(172, b.node.dial_addrs()).await;
    let sleeper = a
        .node
        .services()
        .publisher
        .publish(tool_manifest("sleeper"), "sleeper.toml".into())
        .await
        .unwrap()
        .spec;
    let echo = a
        .node
        .services()
        .publisher
        .publish(tool_manifest("echo"), "echo.toml".into())
        .await
        .unwrap()
        .spec;
    for s in [&sleeper, &echo] {
        wait_for(T, "everyone knows the specs", || async {
            caller.node.repo().spec(&s.id()).is_some() && b.node.repo().spec(&s.id()).is_some()
        })
        .await;
    }
    // B holds the same image, so it may provide A's echo too, as A's delegate.
    b.node.services().consent.provide(&echo.id()).await.unwrap();
    a.node
        .services()
        .publisher
        .delegate(
            atr_protocol::delegation::DelegationScope::Id(echo.id()),
            b.node.public_key(),
            Duration::from_secs(3600),
        )
        .await
        .unwrap();
    wait_for(T, "the caller holds the delegation", || async {
        caller.node.repo().counts().unwrap().delegations == 1
    })
    .await;
    wait_for(T, "B is a DHT provider of echo", || async {
        let mut found = std::collections::HashSet::new();
        for k in atrd::network::all_shard_keys("name", "echo") {
            if let Ok(p) = caller
                .node
                .net()
                .get_providers(k, atrd::network::Lookup::Complete)
                .await
            {
                found.extend(p);
            }
        }
        found.contains(&b.node.peer_id())
    })
    .await;
    // Occupy A's only slot.
    let st = caller.node.services().caller.clone();
    let sid = sleeper.id();
    let busy = tokio::spawn(async move { st.invoke(by_id(sid, json!({"seconds": 4}))).await });
    wait_for(T, "A's slot is taken", || async {
        a.node.sandbox().unwrap().free_slots() == 0
    })
    .await;
    let r = caller
        .node
        .services()
        .caller
        .invoke(by_id(echo.id(), json!({"hi": 1})))
        .await
        .unwrap();
    assert_eq!(r.output, json!({"hi": 1}));
    assert_eq!(r.provider, b.node.peer_id().to_string(), "{:?}", r.attempts);
    assert_eq!(r.attempts[0].outcome, "busy", "{:?}", r.attempts);
    let slept = busy.await.unwrap().unwrap();
    assert_eq!(slept.provider, a.node.peer_id().to_string());
    for t in [caller, b, a] {
        t.node.shutdown().await.unwrap();
    }
}
