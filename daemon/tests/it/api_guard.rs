//! The local API's doors, over real HTTP against a real node: a foreign `Host` or `Origin`
//! is refused before any handler runs (DNS rebinding, drive-by pages), and the calls that
//! make the node do network work or reveal its history need the token.

use atr_protocol::api::ApiErrorBody;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};

use crate::harness::*;

impl Api {
    async fn get_with(
        &self,
        path: &str,
        headers: &[(&'static str, &str)],
        token: bool,
    ) -> (StatusCode, String) {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        let mut r = self.http.get(format!("{}{path}", self.base)).headers(h);
        if token {
            r = r.bearer_auth(&self.token);
        }
        let resp = r.send().await.unwrap();
        (resp.status(), resp.text().await.unwrap())
    }

    async fn post_publish(&self, headers: &[(&'static str, &str)]) -> (StatusCode, String) {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        let resp = self
            .http
            .post(format!("{}/v1/publish", self.base))
            .headers(h)
            .bearer_auth(&self.token)
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        (resp.status(), resp.text().await.unwrap())
    }
}

fn code(body: &str) -> String {
    serde_json::from_str::<ApiErrorBody>(body)
        .map(|b| b.code.to_string())
        .unwrap_or_else(|_| format!("<not an error body: {body}>"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_host_and_origin_are_refused_loopback_ones_pass() {
    init_tracing();
    let t = start_node(150, vec![]).await;
    let api = Api::new(&t);
    let port = t.node.api_addr().port();

    // Loopback names, with and without a port, and the bound address.
    for host in [
        format!("localhost:{port}"),
        "localhost".to_owned(),
        format!("127.0.0.1:{port}"),
        "[::1]".to_owned(),
        format!("[::1]:{port}"),
    ] {
        let (s, body) = api.get_with("/v1/specs/nope", &[("host", &host)], false).await;
        // Past the guard: the handler answers (a bad id).
        assert_eq!(
            (s, code(&body).as_str()),
            (StatusCode::BAD_REQUEST, "bad_request"),
            "Host {host}: {body}"
        );
    }

    // A rebinding page's requests carry the attacker's name; every route is closed to it,
    // including the open ones and the unknown ones.
    for path in ["/health", "/metrics", "/v1/find?tag=x", "/v1/status", "/no-such"] {
        for host in [
            "evil.example",
            "evil.example:7878",
            "localhost.evil.example",
            "10.9.8.7",
        ] {
            let (s, body) = api.get_with(path, &[("host", host)], true).await;
            assert_eq!(
                (s, code(&body).as_str()),
                (StatusCode::FORBIDDEN, "forbidden_origin"),
                "{path} with Host {host}: {body}"
            );
        }
    }

    // A foreign Origin (a page of another site), on a read and on a token-bearing POST.
    for origin in ["http://evil.example", "null", "https://127.0.0.1.evil.example"] {
        let (s, body) = api.get_with("/health", &[("origin", origin)], false).await;
        assert_eq!(
            (s, code(&body).as_str()),
            (StatusCode::FORBIDDEN, "forbidden_origin"),
            "Origin {origin}: {body}"
        );
        let (s, body) = api.post_publish(&[("origin", origin)]).await;
        assert_eq!(
            (s, code(&body).as_str()),
            (StatusCode::FORBIDDEN, "forbidden_origin"),
            "POST with Origin {origin}: {body}"
        );
    }
    // A cross-site fetch without an Origin (an <img> GET) is refused too.
    let (s, body) = api
        .get_with("/health", &[("sec-fetch-site", "cross-site")], false)
        .await;
    assert_eq!(
        (s, code(&body).as_str()),
        (StatusCode::FORBIDDEN, "forbidden_origin"),
        "{body}"
    );

    // Loopback origins pass (a local tool's page).
    for origin in [
        format!("http://127.0.0.1:{port}"),
        "http://localhost:3000".to_owned(),
    ] {
        let (s, body) = api.get_with("/health", &[("origin", &origin)], false).await;
        assert_eq!((s, body.as_str()), (StatusCode::OK, "ok"), "Origin {origin}");
        // Past the guard, the POST fails on its (empty) manifest, not on its origin.
        let (s, body) = api.post_publish(&[("origin", &origin)]).await;
        assert_ne!(code(&body), "forbidden_origin", "{s} {body}");
    }
    t.node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_reads_and_network_finds_need_the_token() {
    init_tracing();
    let t = start_node(151, vec![]).await;
    let api = Api::new(&t);
    let metric = |text: &str, outcome: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("atr_api_requests_total{{outcome=\"{outcome}\"}}")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let before = metric(&api.get_with("/metrics", &[], false).await.1, "unauthorized");

    let gated = [
        "/v1/find?tag=math&network=true",
        "/v1/receipts",
        "/v1/peers",
        "/v1/provided",
        "/v1/status",
    ];
    for path in gated {
        let (s, body) = api.get_with(path, &[], false).await;
        assert_eq!(
            (s, code(&body).as_str()),
            (StatusCode::UNAUTHORIZED, "unauthorized"),
            "{path} without the token: {body}"
        );
        let (s, body) = api.get_with(path, &[], true).await;
        assert_eq!(s, StatusCode::OK, "{path} with the token: {body}");
    }
    // Each refusal was counted as `unauthorized` (the handler returned before any work).
    let after = metric(&api.get_with("/metrics", &[], false).await.1, "unauthorized");
    assert_eq!(after - before, gated.len() as u64);

    // What is public anyway stays open: local find, search, a spec, health, and the trust
    // list (publisher keys the selection paths read; writing it needs the token).
    for path in ["/v1/find?tag=math", "/v1/search?q=adds", "/health", "/v1/trust"] {
        let (s, body) = api.get_with(path, &[], false).await;
        assert_eq!(s, StatusCode::OK, "{path}: {body}");
    }

    t.node.shutdown().await.unwrap();
}
