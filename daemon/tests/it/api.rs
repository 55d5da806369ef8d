//! The local API: every error path returns the documented status and code.

use atr_protocol::api::{ApiErrorBody, FindResponse, PublishRequest, PublishResponse, StatusResponse};
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::*;

impl Api {
    async fn post(
        &self,
        path: &str,
        body: &serde_json::Value,
        token: Option<&str>,
    ) -> (StatusCode, serde_json::Value) {
        let mut r = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(serde_json::Value::Null))
    }
    async fn get(&self, path: &str) -> (StatusCode, serde_json::Value) {
        self.get_as(path, None).await
    }
    async fn get_as(&self, path: &str, token: Option<&str>) -> (StatusCode, serde_json::Value) {
        let mut r = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    }
}

fn code(v: &serde_json::Value) -> String {
    serde_json::from_value::<ApiErrorBody>(v.clone())
        .map(|b| b.code.to_string())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_happy_paths_and_every_error() {
    init_tracing();
    let t = start_node(120, vec![]).await;
    let api = Api::new(&t);
    let body = serde_json::to_value(PublishRequest {
        manifest: manifest("adder", "1.0.0", &["math"]),
        file: Some("adder.toml".into()),
    })
    .unwrap();

    // Missing and wrong token.
    let (s, v) = api.post("/v1/publish", &body, None).await;
    assert_eq!((s, code(&v).as_str()), (StatusCode::UNAUTHORIZED, "unauthorized"));
    let (s, v) = api.post("/v1/publish", &body, Some("not-the-token")).await;
    assert_eq!((s, code(&v).as_str()), (StatusCode::UNAUTHORIZED, "unauthorized"));

    // Publish, then the same again (idempotent), then a different spec with the same version.
    let (s, v) = api.post("/v1/publish", &body, Some(&api.token)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let published: PublishResponse = serde_json::from_value(v).unwrap();
    let (s, v) = api.post("/v1/publish", &body, Some(&api.token)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["created"], json!(false));
    let mut other = body.clone();
    other["manifest"]["description"] = json!("Something else entirely.");
    let (s, v) = api.post("/v1/publish", &other, Some(&api.token)).await;
    assert_eq!(
        (s, code(&v).as_str()),
        (StatusCode::CONFLICT, "version_exists"),
        "{v}"
    );

    // Invalid manifest: the error names the field.
    let mut bad = body.clone();
    bad["manifest"]["name"] = json!("bad name!");
    let (s, v) = api.post("/v1/publish", &bad, Some(&api.token)).await;
    assert_eq!(
        (s, code(&v).as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_manifest"),
        "{v}"
    );
    assert_eq!(v["field"], json!("name"));
    let mut bad = body.clone();
    bad["manifest"]["limits"] = json!({"timeout_ms": 999_999_999});
    let (s, v) = api.post("/v1/publish", &bad, Some(&api.token)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["field"], json!("limits.timeout_ms"), "{v}");

    // Malformed JSON and wrong shape.
    let resp = api
        .http
        .post(format!("{}/v1/publish", api.base))
        .bearer_auth(&api.token)
        .header("content-type", "application/json")
        .body("{\"manifest\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(code(&resp.json().await.unwrap()), "malformed_json");
    let (s, v) = api
        .post("/v1/publish", &json!({"manifesto": 1}), Some(&api.token))
        .await;
    assert_eq!(
        (s, code(&v).as_str()),
        (StatusCode::BAD_REQUEST, "malformed_json"),
        "{v}"
    );

    // Oversized body.
    let huge = "x".repeat(atr_protocol::api::MAX_API_BODY_BYTES + 10);
    let resp = api
        .http
        .post(format!("{}/v1/publish", api.base))
        .bearer_auth(&api.token)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // Get by id, unknown id, malformed id.
    let (s, v) = api.get(&format!("/v1/specs/{}", published.id)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["envelope_hex"].as_str().is_some_and(|h| !h.is_empty()));
    let unknown = atr_protocol::ToolId([9; 32]);
    let (s, v) = api.get(&format!("/v1/specs/{unknown}")).await;
    assert_eq!((s, code(&v).as_str()), (StatusCode::NOT_FOUND, "not_found"));
    let (s, v) = api.get("/v1/specs/nope").await;
    assert_eq!((s, code(&v).as_str()), (StatusCode::BAD_REQUEST, "bad_request"));

    // Find, search, status, peers, health, metrics.
    let (s, v) = api.get("/v1/find?tag=math&version=%3E%3D1.0%2C%20%3C2").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let found: FindResponse = serde_json::from_value(v).unwrap();
    assert_eq!(found.results.len(), 1);
    let (s, v) = api.get("/v1/find?version=latest").await;
    assert_eq!(
        (s, code(&v).as_str()),
        (StatusCode::BAD_REQUEST, "bad_request"),
        "{v}"
    );
    let (s, v) = api.get("/v1/find?tag=BAD%20TAG").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = api.get("/v1/find?bogus=1").await;
    assert_eq!(
        (s, code(&v).as_str()),
        (StatusCode::BAD_REQUEST, "bad_query"),
        "{v}"
    );
    let (s, v) = api.get("/v1/search?q=adds%20integers").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["hits"].as_array().map(Vec::len), Some(1), "{v}");
    let (s, v) = api.get_as("/v1/status", Some(&api.token)).await;
    assert_eq!(s, StatusCode::OK);
    let st: StatusResponse = serde_json::from_value(v).unwrap();
    assert_eq!(st.store.specs, 1);
    assert_eq!(st.peer_id, t.node.public_key());
    assert_eq!(api.get("/health").await.0, StatusCode::OK);
    let (s, v) = api.get("/metrics").await;
    assert_eq!(s, StatusCode::OK);
    assert!(v.as_str().unwrap().contains("atr_specs 1"), "{v}");
    assert_eq!(api.get_as("/v1/peers", Some(&api.token)).await.0, StatusCode::OK);
    let (s, _) = api.get("/v1/nothing-here").await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Revoke: bad request, unknown id, then real.
    let (s, v) = api
        .post("/v1/revoke", &json!({"reason": "x"}), Some(&api.token))
        .await;
    assert_eq!(
        (s, code(&v).as_str()),
        (StatusCode::BAD_REQUEST, "bad_request"),
        "{v}"
    );
    let (s, v) = api
        .post(
            "/v1/revoke",
            &json!({"id": unknown, "reason": "x"}),
            Some(&api.token),
        )
        .await;
    assert_eq!(
        (s, code(&v).as_str()),
        (StatusCode::FORBIDDEN, "not_revocable"),
        "{v}"
    );
    let (s, v) = api
        .post("/v1/revoke", &json!({"id": published.id, "reason": "x"}), None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    let (s, v) = api
        .post(
            "/v1/revoke",
            &json!({"id": published.id, "reason": "bug"}),
            Some(&api.token),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, v) = api.get("/v1/find?tag=math").await;
    assert_eq!(v["results"].as_array().map(Vec::len), Some(0));
    let (_, v) = api.get("/v1/find?tag=math&include_revoked=true").await;
    assert_eq!(v["results"][0]["status"]["state"], json!("revoked"), "{v}");
    t.node.shutdown().await.unwrap();
}
