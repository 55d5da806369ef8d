//! Operator consent to provide another publisher's spec through the API
//! (`POST /v1/provide`, `DELETE /v1/provide/{id}`, `GET /v1/provided`):
//! served with a receipt signed by the consenting node, kept across a
//! restart, dropped on revocation, and refused for hostile requests.

use std::time::Duration;

use atr_protocol::api::{ApiErrorBody, InvokeRequest as ApiInvoke, ProvideResponse, ProvidedResponse};
use atr_protocol::revocation::{RevocationKind, RevocationTarget};
use atr_protocol::{Revocation, SignedRevocation};
use atr_protocol::{SecretKey, ToolId};
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::*;

const T: Duration = Duration::from_secs(20);

struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    fn new(n: &atrd::Node) -> Self {
        Self {
            base: format!("http://{}", n.api_addr()),
            token: n.api_token().to_owned(),
            http: reqwest::Client::new(),
        }
    }
    async fn send(&self, r: reqwest::RequestBuilder) -> (StatusCode, serde_json::Value) {
        let resp = r.send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(serde_json::Value::Null))
    }
    async fn provide(&self, body: &serde_json::Value, token: bool) -> (StatusCode, serde_json::Value) {
        let mut r = self.http.post(format!("{}/v1/provide", self.base)).json(body);
        if token {
            r = r.bearer_auth(&self.token);
        }
        self.send(r).await
    }
    async fn unprovide(&self, id: &str, token: bool) -> (StatusCode, serde_json::Value) {
        let mut r = self.http.delete(format!("{}/v1/provide/{id}", self.base));
        if token {
            r = r.bearer_auth(&self.token);
        }
        self.send(r).await
    }
    async fn provided(&self) -> Vec<ToolId> {
        let (s, v) = self
            .send(
                self.http
                    .get(format!("{}/v1/provided", self.base))
                    .bearer_auth(&self.token),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let r: ProvidedResponse = serde_json::from_value(v).unwrap();
        r.provided.into_iter().map(|p| p.id).collect()
    }
}

fn code(v: &serde_json::Value) -> String {
    serde_json::from_value::<ApiErrorBody>(v.clone())
        .map(|b| b.code.to_string())
        .unwrap_or_default()
}

fn by_id(id: ToolId, input: serde_json::Value) -> ApiInvoke {
    ApiInvoke {
        id: Some(id),
        name: None,
        version: None,
        publisher: None,
        input,
    }
}

fn knows(n: &atrd::Node, id: &ToolId) -> bool {
    n.repo().spec(id).is_some()
}

/// C invokes `id` and B serves it, with a receipt signed by B.
async fn served_by(c: &atrd::Node, b: &atrd::Node, id: ToolId) {
    let r = c
        .services()
        .caller
        .invoke(by_id(id, json!({"hi": 1})))
        .await
        .unwrap();
    assert_eq!(r.output, json!({"hi": 1}));
    assert_eq!(r.provider, b.peer_id().to_string(), "{:?}", r.attempts);
    assert_eq!(r.receipt.provider, b.public_key(), "receipt signed by B");
    assert_eq!(r.provider_kind, Some(atr_protocol::api::ProviderKind::Delegated));
}

fn sandboxed(c: &mut atrd::config::Config) {
    c.sandbox.enabled = true;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Docker Engine"]
async fn a_node_provides_a_foreign_spec_via_the_api_and_keeps_it_across_a_restart() {
    init_tracing();
    ensure_tools_image();
    // C calls without a sandbox; A publishes but denies C; B provides A's spec.
    let c = start_node(182, vec![]).await;
    let c_peer = c.node.peer_id();
    let a = start_node_with(
        180,
        c.node.dial_addrs(),
        tempfile::tempdir().unwrap(),
        move |cfg| {
            cfg.sandbox.enabled = true;
            cfg.invoke.deny = vec![c_peer];
        },
    )
    .await;
    let mut boot = c.node.dial_addrs();
    boot.extend(a.node.dial_addrs());
    let b = start_node_with(181, boot.clone(), tempfile::tempdir().unwrap(), sandboxed).await;
    assert!(b.node.sandbox().is_some(), "a Docker Engine is required");
    let echo = a
        .node
        .services()
        .publisher
        .publish(tool_manifest("echo"), "echo.toml".into())
        .await
        .unwrap()
        .spec;
    wait_for(T, "B and C know the spec", || async {
        knows(&b.node, &echo.id()) && knows(&c.node, &echo.id())
    })
    .await;

    // Before consent, nobody serves C.
    let e = c
        .node
        .services()
        .caller
        .invoke(by_id(echo.id(), json!({"hi": 1})))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("does not serve you"), "{e}");

    // The publisher delegates echo to B: without it, C would never send B its input.
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
    wait_for(T, "B and C hold the delegation", || async {
        [&b.node, &c.node]
            .iter()
            .all(|n| n.repo().counts().unwrap().delegations == 1)
    })
    .await;
    let api = Api::new(&b.node);
    let body = json!({"id": echo.id().to_string()});
    let (s, v) = api.provide(&body, false).await;
    assert_eq!(
        (s, code(&v).as_str()),
        (StatusCode::UNAUTHORIZED, "unauthorized"),
        "{v}"
    );
    let (s, v) = api.provide(&body, true).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let r: ProvideResponse = serde_json::from_value(v).unwrap();
    assert!(r.provided && r.changed);
    assert!(r.delegated_until_ms.is_some(), "B is told it holds a delegation");
    let (s, v) = api.provide(&body, true).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["changed"], json!(false), "idempotent");
    assert_eq!(api.provided().await, vec![echo.id()]);

    wait_for(T, "B is a DHT provider of echo", || async {
        let mut found = std::collections::HashSet::new();
        for k in atrd::network::all_shard_keys("name", "echo") {
            if let Ok(p) = c
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
    served_by(&c.node, &b.node, echo.id()).await;

    // Restart B on the same data directory: consent survives.
    let TestNode { node, _dir } = b;
    node.shutdown().await.unwrap();
    let b = start_node_with(181, boot, _dir, sandboxed).await;
    let api = Api::new(&b.node);
    assert_eq!(
        api.provided().await,
        vec![echo.id()],
        "consent survives a restart"
    );
    wait_for(T, "C reconnects to B", || async {
        c.node
            .net()
            .status()
            .await
            .is_ok_and(|s| s.peers.iter().any(|p| p.peer == b.node.peer_id().to_string()))
    })
    .await;
    served_by(&c.node, &b.node, echo.id()).await;

    // Withdraw: B refuses, then withdrawing again is a typed 404.
    let (s, v) = api.unprovide(&echo.id().to_string(), false).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    let (s, v) = api.unprovide(&echo.id().to_string(), true).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(api.provided().await.is_empty());
    let e = c
        .node
        .services()
        .caller
        .invoke(by_id(echo.id(), json!({"hi": 1})))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("does not provide"), "{e}");
    let (s, v) = api.unprovide(&echo.id().to_string(), true).await;
    assert_eq!(
        (s, code(&v).as_str()),
        (StatusCode::NOT_FOUND, "not_provided"),
        "{v}"
    );

    // Consent is dropped when the publisher revokes the spec.
    let (s, v) = api.provide(&body, true).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    a.node
        .services()
        .publisher
        .revoke(
            RevocationTarget::Id(echo.id()),
            RevocationKind::Revoke,
            "gone".into(),
            None,
        )
        .await
        .unwrap();
    wait_for(T, "B drops consent on revocation", || async {
        api.provided().await.is_empty()
    })
    .await;
    assert!(b.node.repo().provided().is_empty());
    let (s, v) = api.provide(&body, true).await;
    assert_eq!((s, code(&v).as_str()), (StatusCode::GONE, "revoked"), "{v}");

    for t in [c, b, a] {
        t.node.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Docker Engine"]
async fn provide_refuses_unknown_revoked_own_imageless_and_malformed_requests() {
    init_tracing();
    ensure_tools_image();
    let b = start_node_with(185, vec![], tempfile::tempdir().unwrap(), sandboxed).await;
    assert!(b.node.sandbox().is_some(), "a Docker Engine is required");
    let api = Api::new(&b.node);

    // Unknown id.
    let unknown = ToolId([7; 32]);
    let (s, v) = api.provide(&json!({"id": unknown.to_string()}), true).await;
    assert_eq!(
        (s, code(&v).as_str()),
        (StatusCode::NOT_FOUND, "not_found"),
        "{v}"
    );

    // A foreign spec whose pinned image is not on this host.
    let imageless = foreign_spec(90, "imageless", &["t"]);
    b.node.services().ingest.store_spec(imageless.clone()).unwrap();
    let (s, v) = api
        .provide(&json!({"id": imageless.id().to_string()}), true)
        .await;
    assert_eq!(
        (s, code(&v).as_str()),
        (StatusCode::CONFLICT, "image_missing"),
        "{v}"
    );
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("does not hold the pinned image"),
        "{v}"
    );

    // A revoked foreign spec.
    let key = SecretKey::from_seed(&[91; 32]);
    let gone = foreign_spec(91, "gone", &["t"]);
    b.node.services().ingest.store_spec(gone.clone()).unwrap();
    let rev = Revocation {
        v: atr_protocol::revocation::REVOCATION_FORMAT,
        kind: RevocationKind::Revoke,
        target: RevocationTarget::Id(gone.id()),
        publisher: key.public(),
        reason: "x".into(),
        successor: None,
        created_at_ms: 1_764_000_000_500,
    };
    let rev = SignedRevocation::sign(rev, &key).unwrap();
    b.node.services().ingest.store_revocation(rev).unwrap();
    let (s, v) = api.provide(&json!({"id": gone.id().to_string()}), true).await;
    assert_eq!((s, code(&v).as_str()), (StatusCode::GONE, "revoked"), "{v}");

    // Its own spec.
    let own = b
        .node
        .services()
        .publisher
        .publish(tool_manifest("echo"), "echo.toml".into())
        .await
        .unwrap()
        .spec;
    let (s, v) = api.provide(&json!({"id": own.id().to_string()}), true).await;
    assert_eq!((s, code(&v).as_str()), (StatusCode::CONFLICT, "own_spec"), "{v}");

    // Malformed bodies and ids, and no token.
    for bad in [json!({"id": "atr_nope"}), json!({"tool": "x"}), json!([1])] {
        let (s, v) = api.provide(&bad, true).await;
        assert_eq!(
            (s, code(&v).as_str()),
            (StatusCode::BAD_REQUEST, "malformed_json"),
            "{bad}: {v}"
        );
    }
    let (s, v) = api.provide(&json!({"id": unknown.to_string()}), false).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    let (s, v) = api.unprovide("not-an-id", true).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = api.unprovide(&unknown.to_string(), true).await;
    assert_eq!(
        (s, code(&v).as_str()),
        (StatusCode::NOT_FOUND, "not_provided"),
        "{v}"
    );
    assert!(api.provided().await.is_empty());
    b.node.shutdown().await.unwrap();
}
