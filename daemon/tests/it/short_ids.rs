//! Issue 14 item 7: a short id resolves on the node over every id it holds (`GET /v1/ids`,
//! one range scan of the id-keyed specs table), not over the first page of a listing; a
//! prefix under `MIN_SHORT_ID_LEN` characters is refused.

use atr_protocol::api::{ApiErrorBody, IdsResponse};
use atr_protocol::id::MIN_SHORT_ID_LEN;
use atr_protocol::query::{FindQuery, MAX_FIND_LIMIT};
use atr_protocol::{SignedSpec, ToolId};
use reqwest::StatusCode;

use crate::harness::*;

/// More specs than one find can list ([`MAX_FIND_LIMIT`]).
const SPECS: usize = MAX_FIND_LIMIT + 100;

async fn ids(api: &Api, prefix: &str) -> (StatusCode, serde_json::Value) {
    let resp = api
        .http
        .get(format!("{}/v1/ids", api.base))
        .query(&[("prefix", prefix)])
        .send()
        .await
        .unwrap();
    (resp.status(), resp.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_14_short_ids_resolve_over_more_than_a_thousand_specs() {
    init_tracing();
    let t = start_node(220, vec![]).await;
    let node = &t.node;
    // Stored directly through the repository (the node's own key: no per-publisher quota).
    let key = node.identity().secret.clone();
    let me = node.public_key();
    let repo = node.repo().clone();
    let mut all: Vec<ToolId> = tokio::task::spawn_blocking(move || {
        (0..SPECS)
            .map(|i| {
                let spec = manifest(&format!("many{i}"), "1.0.0", &["many"])
                    .to_spec("test.toml", me, 1_764_000_000_000 + i as u64, None)
                    .unwrap();
                let signed = SignedSpec::sign(spec, &key).unwrap();
                repo.insert_spec(&signed).unwrap();
                signed.id()
            })
            .collect()
    })
    .await
    .unwrap();
    all.sort();
    // What the old client-side resolver saw: the first page of a find.
    let listed: Vec<ToolId> = node.repo().read(|c| {
        c.find(
            &FindQuery {
                include_revoked: true,
                limit: Some(MAX_FIND_LIMIT),
                ..FindQuery::default()
            },
            None,
        )
        .iter()
        .map(|e| e.spec.id())
        .collect()
    });
    assert_eq!(listed.len(), MAX_FIND_LIMIT);
    let unlisted: Vec<ToolId> = all.iter().copied().filter(|id| !listed.contains(id)).collect();
    assert_eq!(unlisted.len(), SPECS - MAX_FIND_LIMIT);

    let api = Api::new(&t);
    // Every id outside the first page, and the first and last in id order, resolve from
    // their first 12 characters (with and without `atr_`), alone.
    for id in unlisted.iter().chain([&all[0], &all[SPECS - 1]]) {
        let text = id.to_string();
        for prefix in [
            &text[..4 + MIN_SHORT_ID_LEN],
            &text[4..4 + MIN_SHORT_ID_LEN],
            &text[4..30],
        ] {
            let (s, v) = ids(&api, prefix).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            let r: IdsResponse = serde_json::from_value(v).unwrap();
            assert_eq!(
                r,
                IdsResponse {
                    ids: vec![*id],
                    more: false
                },
                "{prefix}"
            );
        }
    }
    // Nothing held starts like an id the node never saw.
    let absent = ToolId::of(b"never published").to_string();
    let (s, v) = ids(&api, &absent[..16]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["ids"], serde_json::json!([]));

    // Too short (11 characters: 55 bits, groundable), not base32, too long: 400 on `prefix`.
    let first = all[0].to_string();
    for bad in [
        &first[4..4 + MIN_SHORT_ID_LEN - 1],
        "abcd",
        "ABCDEFGHIJKLMNOP",
        "abcdefghijk1",
        &"a".repeat(53),
    ] {
        let (s, v) = ids(&api, bad).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
        let e: ApiErrorBody = serde_json::from_value(v).unwrap();
        assert_eq!(e.field.as_deref(), Some("prefix"), "{bad}");
    }
    let (s, v) = ids(&api, &first[4..4 + MIN_SHORT_ID_LEN - 1]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        v["message"].as_str().unwrap().contains("at least 12 characters"),
        "{v}"
    );
    t.node.shutdown().await.unwrap();
}
