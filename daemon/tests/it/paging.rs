//! Issue 15 item 5 with the real `atrd` binary: find and search answer page by page with a
//! cursor, every spec held when the listing began comes exactly once while new specs are
//! published between the pages, and a cursor the node did not issue is a typed 400.

use std::collections::{BTreeMap, BTreeSet};

use atr_protocol::api::{ApiErrorBody, FindResponse, PublishRequest, SearchResponse};
use atr_protocol::{SecretKey, SignedSpec, ToolId};
use atrd::store::{Store, StoreOptions};
use serde_json::Value;

use crate::harness::*;
use crate::process::{free_port, spawn_atrd, wait_healthy};

/// Specs of the one tag held before the listing starts.
const HELD: usize = 5_000;

/// `HELD` specs tagged `page` from 50 publishers, few names (so ties on name and version
/// are common), written straight into the node's store before it starts.
fn fill(dir: &std::path::Path) -> BTreeSet<ToolId> {
    let specs: Vec<SignedSpec> = (0..HELD)
        .map(|i| {
            let k = SecretKey::from_seed(&[(i % 50) as u8 + 1; 32]);
            let s = manifest(
                &format!("page{}", i % 400),
                &format!("1.{}.0", i / 400),
                &["page"],
            )
            .to_spec("test.toml", k.public(), 1_764_000_000_000 + i as u64, None)
            .unwrap();
            SignedSpec::sign(s, &k).unwrap()
        })
        .collect();
    let store = Store::open(&dir.join(atrd::node::STORE_FILE), StoreOptions::default()).unwrap();
    for batch in specs.chunks(1_000) {
        store.put_specs(batch).unwrap();
    }
    specs.iter().map(|s| s.id()).collect()
}

struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn get(&self, path: &str) -> (reqwest::StatusCode, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        (r.status(), r.json().await.unwrap())
    }

    /// Publishes a spec tagged `page` through the API (it arrives between pages).
    async fn publish(&self, name: &str, version: &str) {
        let r = self
            .http
            .post(format!("{}/v1/publish", self.base))
            .bearer_auth(&self.token)
            .json(&PublishRequest {
                manifest: manifest(name, version, &["page"]),
                file: None,
            })
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::CREATED);
    }
}

fn with_cursor(path: &str, cursor: Option<&str>) -> String {
    match cursor {
        Some(c) => format!("{path}&cursor={c}"),
        None => path.to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_15_pages_return_every_spec_once_while_specs_arrive() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("atrd.toml"), "[sandbox]\nenabled = false\n").unwrap();
    let held = fill(dir.path());
    let port = free_port();
    let api = Api {
        http: reqwest::Client::new(),
        base: format!("http://127.0.0.1:{port}"),
        token: String::new(),
    };
    let mut child = spawn_atrd(dir.path(), port);
    wait_healthy(&api.http, &api.base).await;
    let api = Api {
        token: std::fs::read_to_string(dir.path().join("api.token"))
            .unwrap()
            .trim()
            .to_owned(),
        ..api
    };

    // Full views, 300 a page; between pages three specs arrive: one sorting before every
    // held name, one after, one among them (a held name with a higher version).
    let mut seen: BTreeMap<ToolId, usize> = BTreeMap::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let (status, body) = api
            .get(&with_cursor("/v1/find?tag=page&limit=300", cursor.as_deref()))
            .await;
        assert_eq!(status, 200, "{body}");
        let page: FindResponse = serde_json::from_value(body).unwrap();
        assert!(page.results.len() <= 300);
        for v in &page.results {
            assert!(v.spec.tags.contains(&"page".to_owned()));
            *seen.entry(v.id).or_default() += 1;
        }
        pages += 1;
        cursor = page.next_cursor;
        let Some(c) = &cursor else { break };
        assert!(c.len() <= atr_protocol::page::MAX_CURSOR_LEN);
        api.publish(&format!("a-late{pages}"), "1.0.0").await;
        api.publish(&format!("z-late{pages}"), "1.0.0").await;
        api.publish(&format!("page{}", pages * 7 % 400), &format!("9.{pages}.0"))
            .await;
    }
    assert!(pages >= HELD / 300, "{pages} pages");
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "specs listed twice: {twice:?}");
    let missing = held.iter().filter(|id| !seen.contains_key(id)).count();
    assert_eq!(missing, 0, "held specs never listed");
    let published = 3 * (pages - 1);

    // The same listing in the compact view: no schemas, every held spec once.
    let mut compact: BTreeSet<ToolId> = BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let (status, body) = api
            .get(&with_cursor(
                "/v1/find?tag=page&limit=1000&view=compact",
                cursor.as_deref(),
            ))
            .await;
        assert_eq!(status, 200, "{body}");
        for v in body["results"].as_array().unwrap() {
            assert!(v.get("spec").is_none() && v.get("input_schema").is_none(), "{v}");
            assert!(v["name"].is_string() && v["description"].is_string() && v["tags"].is_array());
            assert!(compact.insert(v["id"].as_str().unwrap().parse().unwrap()));
        }
        cursor = body["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(compact.len(), HELD + published);

    // A full view from a listing is the spec `GET /v1/specs/{id}` answers.
    let one = *held.iter().next().unwrap();
    let (_, listed) = api
        .get(&format!("/v1/find?tag=page&name={}&limit=1000", "page0"))
        .await;
    let listed = listed["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == one.to_string())
        .cloned();
    if let Some(listed) = listed {
        let (_, single) = api.get(&format!("/v1/specs/{one}")).await;
        assert_eq!(listed["spec"], single["spec"]);
    }

    // Search pages: every hit once, in the order of one long first page.
    let mut hits: Vec<ToolId> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let (status, body) = api
            .get(&with_cursor("/v1/search?q=page&limit=200", cursor.as_deref()))
            .await;
        assert_eq!(status, 200, "{body}");
        let page: SearchResponse = serde_json::from_value(body).unwrap();
        hits.extend(page.hits.iter().map(|h| h.view.id));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
        api.publish(&format!("page-search{}", hits.len()), "1.0.0").await;
    }
    let unique: BTreeSet<ToolId> = hits.iter().copied().collect();
    assert_eq!(unique.len(), hits.len(), "a search hit came twice");
    assert!(held.is_subset(&unique));

    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_15_hostile_cursors_are_typed_400s() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("atrd.toml"), "[sandbox]\nenabled = false\n").unwrap();
    let port = free_port();
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = spawn_atrd(dir.path(), port);
    wait_healthy(&http, &base).await;
    let token = std::fs::read_to_string(dir.path().join("api.token")).unwrap();
    let api = Api {
        http,
        base,
        token: token.trim().to_owned(),
    };
    for i in 0..3 {
        api.publish(&format!("c{i}"), "1.0.0").await;
    }
    // Real cursors of each listing, to hand to the others.
    let (_, find) = api.get("/v1/find?tag=page&limit=1").await;
    let find_cursor = find["next_cursor"].as_str().unwrap().to_owned();
    let (_, search) = api.get("/v1/search?q=test&limit=1").await;
    let search_cursor = search["next_cursor"].as_str().unwrap().to_owned();
    let long = "A".repeat(10_000);
    let forged_search = {
        // A search position over more documents than the node holds.
        let c = atr_protocol::page::Cursor::Search {
            docs: u32::MAX,
            score: 1.0,
            id: ToolId([1; 32]),
        };
        c.encode()
    };
    for path in [
        "/v1/find?tag=page&cursor=!!!".to_owned(),
        "/v1/find?tag=page&cursor=".to_owned(),
        format!("/v1/find?tag=page&cursor={long}"),
        format!("/v1/find?tag=page&cursor={search_cursor}"),
        format!("/v1/search?q=test&cursor={find_cursor}"),
        format!("/v1/search?q=test&cursor={forged_search}"),
        "/v1/search?q=test&cursor=AQID".to_owned(),
        format!("/v1/receipts?cursor={find_cursor}"),
        "/v1/receipts?cursor=%00zz".to_owned(),
    ] {
        let (status, body) = api.get(&path).await;
        assert_eq!(status, 400, "{}: {body}", &path[..path.len().min(80)]);
        let err: ApiErrorBody = serde_json::from_value(body).unwrap();
        assert_eq!(err.code, "invalid_cursor", "{path:.80}");
        assert_eq!(err.field.as_deref(), Some("cursor"));
        assert!(err.message.len() < 300, "{}", err.message);
    }
    // An unknown view is a bad query; page sizes are clamped, not trusted.
    let (status, _) = api.get("/v1/find?tag=page&view=everything").await;
    assert_eq!(status, 400);
    let (status, body) = api.get("/v1/find?tag=page&limit=0").await;
    assert_eq!(status, 200);
    assert_eq!(body["results"].as_array().unwrap().len(), 1);
    let (status, body) = api.get("/v1/find?tag=page&limit=999999999").await;
    assert_eq!(status, 200);
    assert_eq!(body["results"].as_array().unwrap().len(), 3);
    assert!(body.get("next_cursor").is_none());
    // A receipts listing with nothing stored has no next page.
    let (status, body) = api.get("/v1/receipts?limit=5").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("next_cursor").is_none());
    child.kill().unwrap();
    child.wait().unwrap();
}
