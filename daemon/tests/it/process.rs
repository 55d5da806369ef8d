//! The real `atrd` binary: publish through the API, SIGKILL, restart, find again.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use atr_protocol::api::{FindResponse, PublishRequest, PublishResponse};

use crate::harness::*;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn_atrd(dir: &std::path::Path, api_port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_atrd"))
        .args(["--data-dir", dir.to_str().unwrap()])
        .args(["--api", &format!("127.0.0.1:{api_port}")])
        .args(["--listen", "/ip4/127.0.0.1/tcp/0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn wait_healthy(http: &reqwest::Client, base: &str) {
    wait_for(Duration::from_secs(30), "atrd healthy", || async {
        http.get(format!("{base}/health"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_spec_survives_sigkill_and_restart() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    // The manifests use a made-up image digest: run as a discovery-only node.
    std::fs::write(dir.path().join("atrd.toml"), "[sandbox]\nenabled = false\n").unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut child = spawn_atrd(dir.path(), port);
    wait_healthy(&http, &base).await;
    let token = std::fs::read_to_string(dir.path().join("api.token")).unwrap();
    let mut ids = Vec::new();
    for i in 0..5 {
        let req = PublishRequest {
            manifest: manifest(&format!("durable{i}"), "1.0.0", &["durable"]),
            file: None,
        };
        let resp = http
            .post(format!("{base}/v1/publish"))
            .bearer_auth(token.trim())
            .json(&req)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), reqwest::StatusCode::CREATED);
        ids.push(resp.json::<PublishResponse>().await.unwrap().id);
    }
    child.kill().unwrap(); // SIGKILL: no shutdown code runs.
    child.wait().unwrap();

    let mut child = spawn_atrd(dir.path(), port);
    wait_healthy(&http, &base).await;
    let found: FindResponse = http
        .get(format!("{base}/v1/find?tag=durable"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut got: Vec<_> = found.results.iter().map(|r| r.id).collect();
    got.sort();
    ids.sort();
    assert_eq!(got, ids, "every committed spec is back after kill -9");
    // Same identity after restart.
    let key_before = std::fs::read(dir.path().join("identity.key")).unwrap();
    assert_eq!(key_before.len(), 32);
    // SIGTERM shuts down gracefully.
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "graceful exit on SIGTERM: {status:?}");
}
