//! The web explorer (`/explorer`): plain HTTP checks of its rules (escaping, the token, the
//! guard, read-only by default), and a real headless Chromium against a real node with real
//! specs and a real Docker tool (ignored by default; CI runs it with `--include-ignored`).

use std::collections::BTreeSet;
use std::time::Duration;

use atr_protocol::{Manifest, SecretKey, SignedSpec};
use reqwest::StatusCode;
use serde_json::Value;

use crate::browser::Browser;
use crate::harness::{
    DIGEST, TestNode, foreign_spec, init_tracing, start_node, start_node_with, tool_manifest, wait_for,
};

/// A spec whose description and tag try to become markup and to reorder text.
fn hostile_spec(seed: u8) -> SignedSpec {
    let src = format!(
        r#"
name = "zz-hostile"
version = "1.0.0"
description = "<img src=x onerror=\"window.pwned=1\"><script>window.pwned=2</script></td></tr></table> & \"quoted\""
tags = ["evil"]
input_schema = {{ type = "object", properties = {{ "<b>x</b>" = {{ type = "string", description = "<script>window.pwned=3</script>" }} }} }}
[runtime]
image = "evil:latest"
digest = "{DIGEST}"
"#
    );
    let m = Manifest::from_toml(&src, "evil.toml").unwrap();
    let key = SecretKey::from_seed(&[seed; 32]);
    let spec = m
        .to_spec("evil.toml", key.public(), 1_764_000_000_000, None)
        .unwrap();
    SignedSpec::sign(spec, &key).unwrap()
}

async fn explorer_node(invoke: bool) -> TestNode {
    let dir = tempfile::tempdir().unwrap();
    start_node_with(171, vec![], dir, |c| c.explorer.invoke = invoke).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explorer_pages_escape_publisher_text_and_private_pages_need_the_token() {
    init_tracing();
    let t = explorer_node(false).await;
    let repo = t.node.repo();
    let evil = hostile_spec(90);
    repo.insert_spec(&evil).unwrap();
    for i in 0..3u8 {
        repo.insert_spec(&foreign_spec(100 + i, &format!("tool{i}"), &["math"]))
            .unwrap();
    }
    let base = format!("http://{}", t.node.api_addr());
    let http = reqwest::Client::new();

    // The catalog: HTML, a strict CSP, the hostile text as inert text.
    let r = http.get(format!("{base}/explorer")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("form-action 'self'"),
        "{csp}"
    );
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = r.text().await.unwrap();
    assert!(page.contains("zz-hostile") && page.contains("tool2"), "{page}");
    assert!(
        !page.contains("<script>window") && !page.contains("<img src=x"),
        "{page}"
    );
    assert!(page.contains("&lt;img src=x onerror="), "{page}");
    // The tool page escapes schema keys and descriptions too.
    let page = http
        .get(format!("{base}/explorer/tool/{}", evil.id()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("&lt;b&gt;x&lt;/b&gt;"), "{page}");
    assert!(
        !page.contains("<script>window") && !page.contains("<b>x</b>"),
        "{page}"
    );
    // Exports in every format.
    for f in atr_protocol::export::ExportFormat::ALL {
        assert!(
            page.contains(&format!("id=\"export-{}\"", f.as_str())),
            "{}",
            f.as_str()
        );
    }
    // Read-only by default: no invoke form, and a forged POST is refused.
    assert!(!page.contains("/invoke\""), "{page}");
    let r = http
        .post(format!("{base}/explorer/tool/{}/invoke", evil.id()))
        .form(&[("token", t.node.api_token()), ("input", "{}")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // Filters and bad input answer pages, not panics.
    let page = http
        .get(format!("{base}/explorer?tag=math"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("tool0") && !page.contains("zz-hostile"), "{page}");
    for bad in [
        "tag=NOT%20A%20TAG",
        "publisher=xyz",
        "cursor=!!!",
        "q=a&cursor=AAAA",
        "nope=1",
    ] {
        let r = http.get(format!("{base}/explorer?{bad}")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert!(r.text().await.unwrap().contains("Refused"), "{bad}");
    }
    let long = "a".repeat(300);
    let r = http
        .get(format!("{base}/explorer?q={long}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // Peers and receipts need the token, as in the API; the token never comes back.
    for path in ["peers", "receipts"] {
        let r = http.get(format!("{base}/explorer/{path}")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let form = r.text().await.unwrap();
        assert!(form.contains("type=\"password\"") && !form.contains(t.node.api_token()));
        for (token, want) in [
            ("", StatusCode::UNAUTHORIZED),
            ("wrong", StatusCode::UNAUTHORIZED),
            (t.node.api_token(), StatusCode::OK),
        ] {
            let r = http
                .post(format!("{base}/explorer/{path}"))
                .form(&[("token", token)])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), want, "{path} with {token:?}");
            assert!(!r.text().await.unwrap().contains(t.node.api_token()));
        }
        // A page of another site posting the token (or not) is refused by the guard.
        let r = http
            .post(format!("{base}/explorer/{path}"))
            .header("origin", "http://evil.example")
            .form(&[("token", t.node.api_token())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
        let r = http
            .get(format!("{base}/explorer"))
            .header("host", "evil.example")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
    }
    // A body over the API's limit is refused before it is read whole.
    let big = "x".repeat(atr_protocol::api::MAX_API_BODY_BYTES + 1);
    let r = http
        .post(format!("{base}/explorer/receipts"))
        .form(&[("token", big.as_str())])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_explorer_is_not_served() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let t = start_node_with(172, vec![], dir, |c| c.explorer.enabled = false).await;
    let r = reqwest::get(format!("http://{}/explorer", t.node.api_addr()))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

/// Where the browser test writes its screenshots (`docs/images` when refreshing them).
fn screenshot_dir() -> Option<std::path::PathBuf> {
    std::env::var_os("ATR_EXPLORER_SCREENSHOTS").map(Into::into)
}

async fn snap(b: &mut Browser, name: &str, max_height: u32) -> anyhow::Result<()> {
    let png = b.screenshot(max_height).await?;
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    if let Some(dir) = screenshot_dir() {
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(format!("{name}.png")), png)?;
    }
    Ok(())
}

/// Names in the catalog table of the page shown.
async fn row_names(b: &mut Browser) -> anyhow::Result<Vec<String>> {
    let v = b
        .eval(
            "Array.from(document.querySelectorAll('main tbody tr td:first-child a')).map(a => a.textContent)",
        )
        .await?;
    Ok(v.as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect())
        .unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium and a Docker Engine"]
async fn chromium_browses_the_catalog_and_invokes_a_tool_with_the_token() -> anyhow::Result<()> {
    init_tracing();
    crate::harness::ensure_tools_image();
    // A provider with the sandbox and the invoke form, and a peer so the peers page has one.
    let dir = tempfile::tempdir()?;
    let node = start_node_with(173, vec![], dir, |c| {
        c.sandbox.enabled = true;
        c.explorer.invoke = true;
    })
    .await;
    assert!(node.node.sandbox().is_some(), "a Docker Engine is required");
    let peer = start_node(174, node.node.dial_addrs()).await;
    let publisher = &node.node.services().publisher;
    let mut add = None;
    for tool in [
        "add",
        "calculator",
        "echo",
        "hash",
        "text_stats",
        "datetime",
        "json_query",
    ] {
        let p = publisher
            .publish(tool_manifest(tool), format!("{tool}.toml"))
            .await?;
        if tool == "add" {
            add = Some(p.spec.id());
        }
    }
    let add = add.expect("add published");
    // Enough other publishers' specs for three pages.
    let repo = node.node.repo();
    for i in 0..40u8 {
        repo.insert_spec(&foreign_spec(
            120 + i % 4,
            &format!("util-{i:02}"),
            if i % 2 == 0 {
                &["text", "demo"]
            } else {
                &["records"]
            },
        ))?;
    }
    repo.insert_spec(&hostile_spec(91))?;
    let total = repo.read(|c| c.len());
    assert_eq!(total, 48);
    wait_for(Duration::from_secs(20), "the peer connects", || async {
        node.node.net().status().await.is_ok_and(|s| !s.peers.is_empty())
    })
    .await;
    let base = format!("http://{}", node.node.api_addr());
    let token = node.node.api_token().to_owned();

    let mut b = Browser::start().await?;

    // The catalog lists and pages: every spec exactly once over the pages.
    b.open(&format!("{base}/explorer")).await?;
    let first = row_names(&mut b).await?;
    assert_eq!(first.len(), 20, "{first:?}");
    snap(&mut b, "explorer-catalog", 1400).await?;
    let mut seen: Vec<String> = first;
    loop {
        let next = b
            .eval("(document.querySelector('a[rel=next]') || {}).href || ''")
            .await?;
        let next = next.as_str().unwrap_or_default().to_owned();
        if next.is_empty() {
            break;
        }
        b.open(&next).await?;
        let rows = row_names(&mut b).await?;
        assert!(!rows.is_empty() && rows.len() <= 20);
        seen.extend(rows);
        assert!(seen.len() <= total, "pages repeat specs");
    }
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!((seen.len(), unique.len()), (total, total), "{seen:?}");
    // Hostile text stayed text: no script ran, the markup shows as characters.
    assert_eq!(b.eval("typeof window.pwned").await?, Value::from("undefined"));
    assert!(b.text().await?.contains("<img src=x onerror="));

    // Search through the form (keyboard-reachable, labelled).
    b.open(&format!("{base}/explorer")).await?;
    assert_eq!(
        b.eval("document.querySelector('label[for=q]').textContent")
            .await?,
        Value::from("Search")
    );
    b.eval("document.getElementById('q').value = 'add'; document.querySelector('form.filters').requestSubmit(); true")
        .await?;
    b.wait_until("location.search.includes('q=add') && document.readyState === 'complete'")
        .await?;
    let hits = row_names(&mut b).await?;
    assert_eq!(hits.first().map(String::as_str), Some("add"), "{hits:?}");
    snap(&mut b, "explorer-search", 900).await?;
    // A tag filter from a tag link.
    b.open(&format!("{base}/explorer?tag=records")).await?;
    let rows = row_names(&mut b).await?;
    assert_eq!(rows.len(), 20);
    assert!(rows.iter().all(|n| n.starts_with("util-")), "{rows:?}");

    // The tool page: its schema, an export with a working copy button, its status.
    b.open(&format!("{base}/explorer/tool/{add}")).await?;
    let text = b.text().await?;
    assert!(
        text.contains("not revoked") && text.contains("Input schema"),
        "{text}"
    );
    let fields = b
        .eval("Array.from(document.querySelectorAll('table[aria-label=\"input fields\"] tbody td:first-child')).map(td => td.textContent)")
        .await?;
    assert_eq!(fields, serde_json::json!(["a", "b"]));
    let openai: Value = serde_json::from_str(
        b.eval("document.getElementById('export-openai').textContent")
            .await?
            .as_str()
            .unwrap_or_default(),
    )?;
    assert_eq!(openai["function"]["name"], "add");
    assert_eq!(
        openai["function"]["parameters"]["required"],
        serde_json::json!(["a", "b"])
    );
    assert_eq!(
        b.eval("document.querySelector('button.copy[data-copy=export-openai]').hidden")
            .await?,
        Value::from(false),
        "the script un-hides the copy buttons"
    );
    snap(&mut b, "explorer-tool", 2200).await?;

    // Invoking without the token is refused, and nothing runs.
    b.eval("document.getElementById('invoke-input').value = '{\"a\": 2, \"b\": 40}'; document.querySelector('form[action$=\"/invoke\"]').requestSubmit(); true")
        .await?;
    b.wait_until("location.pathname.endsWith('/invoke') && document.readyState === 'complete'")
        .await?;
    let text = b.text().await?;
    assert!(
        text.contains("Unauthorized") && text.contains("needs the API token"),
        "{text}"
    );
    assert_eq!(repo.counts()?.receipts, 0);

    // With the token the tool runs in Docker and the page shows the verified receipt.
    b.open(&format!("{base}/explorer/tool/{add}")).await?;
    b.eval(&format!(
        "document.getElementById('invoke-input').value = '{{\"a\": 2, \"b\": 40}}'; document.getElementById('token').value = {}; document.querySelector('form[action$=\"/invoke\"]').requestSubmit(); true",
        serde_json::json!(token)
    ))
    .await?;
    b.wait_until("location.pathname.endsWith('/invoke') && document.readyState === 'complete'")
        .await?;
    let text = b.text().await?;
    assert!(
        text.contains("Result: ok") && text.contains("Verified receipt"),
        "{text}"
    );
    assert_eq!(
        b.eval("document.getElementById('result-output').textContent")
            .await?,
        Value::from("42")
    );
    assert!(
        !b.eval("document.documentElement.outerHTML")
            .await?
            .as_str()
            .unwrap_or_default()
            .contains(&token)
    );
    assert_eq!(repo.counts()?.receipts, 1);
    let receipt = repo.receipts(1)?.remove(0);
    assert_eq!(receipt.value().tool, add);
    assert!(text.contains(&receipt.value().invocation.to_string()), "{text}");
    snap(&mut b, "explorer-invoke", 1300).await?;

    // Receipts and peers behind the token.
    b.open(&format!("{base}/explorer/receipts")).await?;
    b.eval(&format!(
        "document.getElementById('token').value = {}; document.querySelector('main form').requestSubmit(); true",
        serde_json::json!(token)
    ))
    .await?;
    b.wait_until("document.querySelector('main tbody tr') !== null")
        .await?;
    let text = b.text().await?;
    assert!(text.contains("add@1.0.0") && text.contains("ran here"), "{text}");
    snap(&mut b, "explorer-receipts", 900).await?;
    b.open(&format!("{base}/explorer/peers")).await?;
    b.eval(&format!(
        "document.getElementById('token').value = {}; document.querySelector('main form').requestSubmit(); true",
        serde_json::json!(token)
    ))
    .await?;
    b.wait_until("document.querySelector('main tbody tr') !== null")
        .await?;
    assert!(b.text().await?.contains(&peer.node.peer_id().to_string()));
    snap(&mut b, "explorer-peers", 900).await?;

    b.close().await;
    Ok(())
}
