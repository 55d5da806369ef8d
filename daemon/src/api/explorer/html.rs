//! The explorer's page frame and the helpers every page uses to show hostile text.
//!
//! Every string a publisher or a peer chose (names, descriptions, tags, schemas, examples,
//! addresses, error details) goes through [`text`] or [`json`]: first the project's clean-text
//! rule ([`atr_protocol::text`]: bidi overrides, invisible and control characters become
//! visible escapes), then maud's HTML escaping. Nothing is ever written with
//! `PreEscaped` except the fixed CSS and JavaScript below, so no publisher text can become
//! markup. Links the pages build carry only percent-encoded query values ([`query`]).

use std::borrow::Cow;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

/// The stylesheet, served as `/explorer/static/explorer.css` (no inline style: the CSP
/// allows styles from this origin only).
pub(super) const CSS: &str = r#"
:root { --fg:#1b1f24; --muted:#57606a; --bg:#ffffff; --panel:#f6f8fa; --line:#d0d7de; --accent:#0550ae; --bad:#a40e26; --ok:#116329; --warn:#7d4e00; }
* { box-sizing: border-box; }
body { margin:0; font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; color:var(--fg); background:var(--bg); }
a { color:var(--accent); }
a:focus, button:focus, input:focus, textarea:focus, select:focus, summary:focus { outline:3px solid #f0b400; outline-offset:2px; }
.skip { position:absolute; left:-999px; top:0; background:#fff; padding:.5em; }
.skip:focus { left:.5em; }
header.top { display:flex; flex-wrap:wrap; gap:1.5em; align-items:baseline; padding:.75em 1.5em; border-bottom:1px solid var(--line); background:var(--panel); }
header.top .brand { font-weight:700; font-size:1.2em; text-decoration:none; color:var(--fg); }
header.top nav ul { list-style:none; display:flex; gap:1em; margin:0; padding:0; }
header.top .node { color:var(--muted); font-size:.85em; margin-left:auto; }
main { padding:1em 1.5em 3em; max-width:1100px; }
h1 { font-size:1.6em; margin:.4em 0; }
h2 { font-size:1.25em; margin-top:1.6em; border-bottom:1px solid var(--line); padding-bottom:.2em; }
code, pre, .mono { font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; font-size:.9em; }
.mono { word-break:break-all; }
input.mono { font-size:1em; }
pre { background:var(--panel); border:1px solid var(--line); padding:.75em; overflow:auto; max-height:28em; white-space:pre-wrap; word-break:break-word; }
table { border-collapse:collapse; width:100%; }
th, td { text-align:left; vertical-align:top; padding:.35em .6em; border-bottom:1px solid var(--line); }
th { background:var(--panel); }
form.filters { display:flex; flex-wrap:wrap; gap:.75em; align-items:flex-end; margin:1em 0; }
form.filters div, form.stack div { display:flex; flex-direction:column; }
form.stack { display:flex; flex-direction:column; gap:.75em; max-width:48em; }
label { font-weight:600; font-size:.9em; }
input, textarea, button { font:inherit; padding:.35em .5em; border:1px solid var(--line); border-radius:4px; }
textarea { font-family:ui-monospace,monospace; min-height:8em; }
button { background:var(--accent); color:#fff; border-color:var(--accent); cursor:pointer; }
button.copy { background:#fff; color:var(--accent); font-size:.85em; padding:.15em .6em; }
.tag { display:inline-block; background:#ddf4ff; border-radius:1em; padding:0 .6em; margin:0 .25em .25em 0; font-size:.85em; text-decoration:none; }
.status-active { color:var(--ok); font-weight:600; }
.status-deprecated { color:var(--warn); font-weight:600; }
.status-revoked { color:var(--bad); font-weight:600; }
.error { border:2px solid var(--bad); padding:.75em 1em; background:#ffebe9; }
.ok { border:2px solid var(--ok); padding:.75em 1em; background:#dafbe1; }
.muted { color:var(--muted); }
.pager { display:flex; gap:1em; margin-top:1em; }
dl.facts { display:grid; grid-template-columns:max-content 1fr; gap:.25em 1em; }
dl.facts dt { font-weight:600; }
dl.facts dd { margin:0; }
.export-head { display:flex; gap:1em; align-items:center; }
"#;

/// The copy buttons' script, served as `/explorer/static/explorer.js`. Browsing never needs
/// it: the buttons are `hidden` until it runs, and it only copies text already on the page.
pub(super) const JS: &str = r#"
document.querySelectorAll('button.copy[data-copy]').forEach(function (b) {
  b.hidden = false;
  b.addEventListener('click', function () {
    var el = document.getElementById(b.getAttribute('data-copy'));
    if (!el) { return; }
    var text = el.textContent;
    var done = function () { b.textContent = 'Copied'; setTimeout(function () { b.textContent = 'Copy'; }, 1500); };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(done, function () { fallback(el); done(); });
    } else { fallback(el); done(); }
  });
});
function fallback(el) {
  var r = document.createRange(); r.selectNodeContents(el);
  var s = window.getSelection(); s.removeAllRanges(); s.addRange(r);
  try { document.execCommand('copy'); } catch (e) {}
}
"#;

/// The Content-Security-Policy of every explorer page: nothing from elsewhere, no inline
/// script or style, forms post only to this node, never framed.
const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A publisher's (or peer's) text, cleaned for display: forbidden characters made visible.
pub(super) fn text(s: &str) -> Cow<'_, str> {
    atr_protocol::text::escape(s)
}

/// A JSON value as pretty text, cleaned like [`text`] (as JSON escapes, so it stays the same
/// JSON when copied).
pub(super) fn json(v: &serde_json::Value) -> String {
    let pretty = serde_json::to_string_pretty(v).unwrap_or_else(|_| "null".into());
    atr_protocol::text::escape_json(&pretty).into_owned()
}

/// `key=value&…` with every value percent-encoded (`application/x-www-form-urlencoded`);
/// pairs with an empty value are left out.
pub(super) fn query(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        for b in v.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
                b' ' => out.push('+'),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
    }
    out
}

/// Milliseconds since the epoch as RFC 3339 UTC (`2026-12-07T21:04:05Z`, whole seconds).
pub(super) fn when(ms: u64) -> String {
    i64::try_from(ms / 1000)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| format!("{ms} ms"))
}

/// Which tab of the top navigation a page belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Tab {
    Catalog,
    Peers,
    Receipts,
    None,
}

/// A whole page: the frame (skip link, navigation, this node's id) around `body`.
pub(super) fn page(status: StatusCode, title: &str, tab: Tab, node: &str, body: Markup) -> Response {
    let nav = [
        (Tab::Catalog, "/explorer", "Catalog"),
        (Tab::Peers, "/explorer/peers", "Peers"),
        (Tab::Receipts, "/explorer/receipts", "Receipts"),
    ];
    let doc = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="same-origin";
                title { (text(title)) " · atr explorer" }
                link rel="stylesheet" href="/explorer/static/explorer.css";
            }
            body {
                a class="skip" href="#content" { "Skip to content" }
                header class="top" {
                    a class="brand" href="/explorer" { "atr explorer" }
                    nav aria-label="Main" {
                        ul {
                            @for (t, href, label) in nav {
                                li {
                                    @if t == tab {
                                        a href=(href) aria-current="page" { strong { (label) } }
                                    } @else {
                                        a href=(href) { (label) }
                                    }
                                }
                            }
                        }
                    }
                    span class="node" { "node " span class="mono" { (node) } }
                }
                main id="content" tabindex="-1" { (body) }
                script src="/explorer/static/explorer.js" defer {}
            }
        }
    };
    let mut resp = (status, doc.into_string()).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Not `no-referrer`: with it the browser sends `Origin: null` on the pages' own form
    // posts, which the guard refuses.
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    // Pages answering a token (peers, receipts, invoke results) must not be kept.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// A static asset with its type.
pub(super) fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=300"));
    resp
}

/// The token field of a form that needs the API token. The user types it (or a password
/// manager fills it); the node never writes the token into a page.
pub(super) fn token_field() -> Markup {
    html! {
        div {
            label for="token" { "API token" }
            input type="password" id="token" name="token" autocomplete="current-password"
                aria-describedby="token-help" spellcheck="false";
            small id="token-help" class="muted" {
                "The content of " code { "<data-dir>/api.token" } " on this node. It is sent with this form only and never stored by the page."
            }
        }
    }
}

/// A `pre` block with a copy button (the button shows only when the script runs).
pub(super) fn copyable(id: &str, label: &str, body: &str) -> Markup {
    html! {
        div class="export-head" {
            h3 id={ (id) "-h" } { (label) }
            button type="button" class="copy" data-copy=(id) hidden aria-label={ "Copy " (label) } { "Copy" }
        }
        pre aria-labelledby={ (id) "-h" } { code id=(id) { (body) } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_is_inert_markup() {
        let evil = "<script>alert(1)</script>\u{202e}gnp.exe\"'&";
        let m = html! { p { (text(evil)) } }.into_string();
        assert!(!m.contains("<script>"), "{m}");
        assert!(m.contains("&lt;script&gt;"), "{m}");
        assert!(!m.contains('\u{202e}'), "{m}");
        assert!(m.contains("\\u{202e}"), "{m}");
        assert!(m.contains("&quot;") && m.contains("&amp;"), "{m}");
        let v = serde_json::json!({"k": "</pre><b>x\u{2066}"});
        let j = html! { pre { (json(&v)) } }.into_string();
        assert!(!j.contains("</pre><b>") && j.contains("\\u2066"), "{j}");
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            query(&[("q", "a b&c=d\"<"), ("tag", ""), ("cursor", "AbC-_")]),
            "q=a+b%26c%3Dd%22%3C&cursor=AbC-_"
        );
    }

    #[test]
    fn times_are_utc() {
        assert_eq!(when(1_764_000_000_000), "2025-11-24T16:00:00Z");
        assert_eq!(when(u64::MAX), format!("{} ms", u64::MAX));
    }
}
