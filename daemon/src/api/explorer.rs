//! The web explorer: server-rendered HTML pages on the API's own address, under `/explorer`.
//!
//! | method | path | token | page |
//! |---|---|---|---|
//! | GET | `/explorer` | – | the catalog: search (`q`), tag and publisher filters, paged by cursor |
//! | GET | `/explorer/tool/{id}` | – | one spec: status, schemas, examples, exports, providers, signed envelope |
//! | GET, POST | `/explorer/peers` | POST | connected peers |
//! | GET, POST | `/explorer/receipts` | POST | receipts this node issued (ran here) or received (invoked), paged |
//! | POST | `/explorer/tool/{id}/invoke` | yes | run the tool; shows the output and the verified receipt |
//! | GET | `/explorer/static/explorer.{css,js}` | – | the stylesheet and the copy buttons' script |
//!
//! The explorer shows what the JSON API shows, under the same rules: every request has passed
//! [`super::guard::Access`] (Host, Origin and `Sec-Fetch-Site`), and what the API hides behind
//! the token (peers, receipts, invoking) the explorer hides behind the same token. A browser
//! cannot set `Authorization` on a plain form, so those pages are forms that POST the token
//! typed by the user; the node never writes the token into a page, sets no cookie and keeps no
//! session, so there is nothing a cross-site page could ride on (and its POST would carry a
//! foreign `Origin`, refused by the guard before any handler runs). Invoking is off unless the
//! operator sets `[explorer] invoke = true`: by default the explorer is read-only.
//!
//! Browsing needs no JavaScript: filters are GET forms, pages are links. The only script
//! un-hides and runs the copy buttons. The pages load nothing from elsewhere (a strict
//! Content-Security-Policy, [`html::page`]), so they work offline.

mod html;
mod tool;

use atr_protocol::page::Cursor;
use atr_protocol::query::FindQuery;
use atr_protocol::{PublicKey, ToolId};
use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{Redirect, Response};
use axum::routing::get;
use maud::{Markup, html};
use serde::Deserialize;

use self::html::{Tab, page, query, text, token_field, when};
use super::{ApiError, AppState};
use crate::catalog::{Entry, ListingKey, SearchKey, Status};

/// Specs on one catalog page.
pub(crate) const PAGE_SIZE: usize = 20;
/// Receipts on one receipts page.
pub(crate) const RECEIPTS_PAGE_SIZE: usize = 25;
/// Longest search text accepted (the catalog's own limit).
const MAX_QUERY_BYTES: usize = crate::catalog::MAX_QUERY_BYTES;

pub(crate) use crate::config::ExplorerOptions;

/// The explorer's routes (none when it is disabled).
pub(super) fn routes(opts: ExplorerOptions) -> Router<AppState> {
    if !opts.enabled {
        return Router::new();
    }
    Router::new()
        .route("/", get(|| async { Redirect::to("/explorer") }))
        .route("/explorer", get(catalog))
        .route("/explorer/", get(|| async { Redirect::to("/explorer") }))
        .route("/explorer/tool/{id}", get(tool::tool_page))
        .route("/explorer/tool/{id}/invoke", axum::routing::post(tool::invoke))
        .route("/explorer/peers", get(peers_form).post(peers))
        .route("/explorer/receipts", get(receipts_form).post(receipts))
        .route(
            "/explorer/static/explorer.css",
            get(|| async { html::asset(html::CSS, "text/css; charset=utf-8") }),
        )
        .route(
            "/explorer/static/explorer.js",
            get(|| async { html::asset(html::JS, "text/javascript; charset=utf-8") }),
        )
}

/// This node's id, for the page frame.
fn me(state: &AppState) -> String {
    state.repo.me().to_string()
}

/// An error as a page: its status, its stable code and its message (cleaned).
fn error_page(state: &AppState, e: ApiError) -> Response {
    crate::metrics::API_REQUESTS
        .with_label(e.code.known_str().unwrap_or("other"))
        .inc();
    let title = e.status.canonical_reason().unwrap_or("Error");
    page(
        e.status,
        title,
        Tab::None,
        &me(state),
        html! {
            h1 { (title) }
            div class="error" role="alert" {
                p { strong { "Refused: " } code { (e.code.to_string()) } }
                p { (text(&atr_protocol::text::cap(&e.message, 2000))) }
            }
            p { a href="/explorer" { "Back to the catalog" } }
        },
    )
}

/// A successful page (counted like the API's `ok` answers).
fn ok_page(state: &AppState, title: &str, tab: Tab, body: Markup) -> Response {
    crate::metrics::API_REQUESTS.with_label("ok").inc();
    page(StatusCode::OK, title, tab, &me(state), body)
}

/// Query string of `GET /explorer`. Empty fields (as a GET form sends them) mean "not given".
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CatalogParams {
    #[serde(default)]
    q: String,
    #[serde(default)]
    tag: String,
    #[serde(default)]
    publisher: String,
    #[serde(default)]
    cursor: String,
}

/// One row of the catalog table.
struct Row {
    id: ToolId,
    name: String,
    version: String,
    description: String,
    tags: Vec<String>,
    publisher: PublicKey,
    status: &'static str,
}

impl Row {
    fn of(e: &Entry) -> Self {
        let s = e.spec.value();
        Self {
            id: e.spec.id(),
            name: s.name.clone(),
            version: s.version.to_string(),
            description: atr_protocol::text::cap(&s.description, 240).into_owned(),
            tags: s.tags.clone(),
            publisher: s.publisher,
            status: e.status.as_str(),
        }
    }
}

async fn catalog(
    State(state): State<AppState>,
    params: Result<Query<CatalogParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    match catalog_page(&state, params.map(|Query(p)| p)) {
        Ok(r) => r,
        Err(e) => error_page(&state, e),
    }
}

fn catalog_page(
    state: &AppState,
    params: Result<CatalogParams, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let p = params?;
    let (q, tag, publisher) = (p.q.trim(), p.tag.trim(), p.publisher.trim());
    if q.len() > MAX_QUERY_BYTES {
        return Err(
            ApiError::bad_request(format!("search text over {MAX_QUERY_BYTES} bytes")).with_field("q"),
        );
    }
    if !tag.is_empty() {
        atr_protocol::validate::check_tag(tag)
            .map_err(|e| ApiError::bad_request(format!("tag: {e}")).with_field("tag"))?;
    }
    let publisher_key: Option<PublicKey> = (!publisher.is_empty())
        .then(|| publisher.parse())
        .transpose()
        .map_err(|e| ApiError::bad_request(format!("publisher: {e}")).with_field("publisher"))?;
    let cursor = (!p.cursor.is_empty())
        .then(|| Cursor::decode(&p.cursor, if q.is_empty() { "find" } else { "search" }))
        .transpose()
        .map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                atr_protocol::api::ErrorCode::InvalidCursor,
                e.to_string(),
            )
            .with_field("cursor")
        })?;
    let (rows, next, total) = state
        .repo
        .read(|cat| {
            let total = cat.len();
            if q.is_empty() {
                let after = match &cursor {
                    Some(Cursor::Find { name, version, id }) => Some(ListingKey {
                        name: name.clone(),
                        version: version.clone(),
                        id: *id,
                    }),
                    _ => None,
                };
                let fq = FindQuery {
                    tag: (!tag.is_empty()).then(|| tag.to_owned()),
                    publisher: publisher_key,
                    include_revoked: true,
                    limit: Some(PAGE_SIZE),
                    ..Default::default()
                };
                let page = cat.find_page(&fq, None, after.as_ref());
                let next = page
                    .more
                    .then(|| {
                        page.results.last().map(|e| {
                            let k = ListingKey::of(e);
                            Cursor::Find {
                                name: k.name,
                                version: k.version,
                                id: k.id,
                            }
                            .encode()
                        })
                    })
                    .flatten();
                Some((
                    page.results.into_iter().map(Row::of).collect::<Vec<_>>(),
                    next,
                    total,
                ))
            } else {
                let after = match &cursor {
                    Some(Cursor::Search { docs, score, id }) => Some(SearchKey {
                        docs: *docs,
                        score: *score,
                        id: *id,
                    }),
                    _ => None,
                };
                // Filters narrow a search's page; the cursor still follows the search order.
                let page = cat.search_page(q, PAGE_SIZE, after.as_ref())?;
                let next = super::listing::next_search(&page);
                let rows = page
                    .results
                    .into_iter()
                    .map(|(_, e)| e)
                    .filter(|e| tag.is_empty() || e.spec.value().tags.iter().any(|t| t == tag))
                    .filter(|e| publisher_key.is_none_or(|k| e.spec.value().publisher == k))
                    .map(Row::of)
                    .collect();
                Some((rows, next, total))
            }
        })
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                atr_protocol::api::ErrorCode::InvalidCursor,
                "the cursor names a position this node's index does not hold",
            )
            .with_field("cursor")
        })?;
    let first_page = cursor.is_none();
    let filtering = !(q.is_empty() && tag.is_empty() && publisher.is_empty());
    let body = html! {
        h1 { "Catalog" }
        p class="muted" { (total) " specs held by this node. Every spec shown was verified (signature, id, limits) before it was stored." }
        form class="filters" method="get" action="/explorer" role="search" aria-label="Search and filter the catalog" {
            div {
                label for="q" { "Search" }
                input type="search" id="q" name="q" value=(q) maxlength=(MAX_QUERY_BYTES) placeholder="name, tag or description words";
            }
            div {
                label for="tag" { "Tag" }
                input type="text" id="tag" name="tag" value=(tag) maxlength="32" placeholder="e.g. math";
            }
            div {
                label for="publisher" { "Publisher" }
                input type="text" id="publisher" name="publisher" value=(publisher) maxlength="64" placeholder="publisher key" class="mono";
            }
            div { button type="submit" { "Apply" } }
            @if filtering { div { a href="/explorer" { "Clear" } } }
        }
        @if rows.is_empty() {
            p role="status" { "No spec matches." }
        } @else {
            table {
                caption class="muted" {
                    @if q.is_empty() { "Sorted by name, newest version first." } @else { "Best match first." }
                }
                thead { tr { th scope="col" { "Tool" } th scope="col" { "Description" } th scope="col" { "Tags" } th scope="col" { "Publisher" } th scope="col" { "Status" } } }
                tbody {
                    @for r in &rows {
                        tr {
                            td { a href={ "/explorer/tool/" (r.id) } { (text(&r.name)) } " " span class="muted" { (text(&r.version)) } }
                            td { (text(&r.description)) }
                            td { @for t in &r.tags { a class="tag" href={ "/explorer?" (query(&[("tag", t)])) } { (text(t)) } } }
                            td { a class="mono" href={ "/explorer?" (query(&[("publisher", &r.publisher.to_string())])) } title=(r.publisher.to_string()) { (r.publisher.fmt_short()) } }
                            td { span class={ "status-" (r.status) } { (r.status) } }
                        }
                    }
                }
            }
        }
        nav class="pager" aria-label="Pages" {
            @if !first_page { a href={ "/explorer?" (query(&[("q", q), ("tag", tag), ("publisher", publisher)])) } { "First page" } }
            @if let Some(c) = &next {
                a rel="next" href={ "/explorer?" (query(&[("q", q), ("tag", tag), ("publisher", publisher), ("cursor", c)])) } { "Next page →" }
            }
        }
    };
    Ok(ok_page(state, "Catalog", Tab::Catalog, body))
}

/// The token of a form that needs it; an empty field is "no token".
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TokenForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    cursor: String,
}

/// Checks a form's token like [`super::authorize`] checks the bearer header.
fn check_token(state: &AppState, given: &str) -> Result<(), ApiError> {
    if given.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            atr_protocol::api::ErrorCode::Unauthorized,
            "this page needs the API token; it is in <data-dir>/api.token",
        ));
    }
    if super::token_matches(&state.token, given) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            atr_protocol::api::ErrorCode::Unauthorized,
            "wrong API token",
        ))
    }
}

fn token_page(state: &AppState, title: &str, tab: Tab, action: &str, why: &str) -> Response {
    ok_page(
        state,
        title,
        tab,
        html! {
            h1 { (title) }
            p { (why) }
            form class="stack" method="post" action=(action) {
                (token_field())
                div { button type="submit" { "Show " (title.to_lowercase()) } }
            }
        },
    )
}

async fn peers_form(State(state): State<AppState>) -> Response {
    token_page(
        &state,
        "Peers",
        Tab::Peers,
        "/explorer/peers",
        "Who this node is connected to is private to its operator, as in the API: give the API token to see them.",
    )
}

async fn peers(
    State(state): State<AppState>,
    form: Result<Form<TokenForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let res = async {
        let Form(f) = form.map_err(form_error)?;
        check_token(&state, &f.token)?;
        state
            .net
            .status()
            .await
            .map_err(|e| ApiError::internal(e.to_string()))
    }
    .await;
    let s = match res {
        Ok(s) => s,
        Err(e) => return error_page(&state, e),
    };
    ok_page(
        &state,
        "Peers",
        Tab::Peers,
        html! {
            h1 { "Peers" }
            p { (s.peers.len()) " connected; " (s.mesh_peers) " in the gossip mesh." }
            h2 { "Listening on" }
            ul { @for a in &s.listen_addrs { li class="mono" { (text(a)) } } }
            h2 { "Connected peers" }
            @if s.peers.is_empty() { p { "None." } } @else {
                table {
                    thead { tr { th scope="col" { "Peer" } th scope="col" { "Addresses" } th scope="col" { "Gossip score" } th scope="col" { "Bad messages" } } }
                    tbody {
                        @for p in &s.peers {
                            tr {
                                td class="mono" {
                                    @if let Ok(k) = p.peer.parse::<PublicKey>() {
                                        a href={ "/explorer?" (query(&[("publisher", &k.to_string())])) } title="Specs this peer published" { (text(&p.peer)) }
                                    } @else { (text(&p.peer)) }
                                }
                                td class="mono" { @for a in p.addrs.iter().take(8) { (text(a)) br; } }
                                td { @if let Some(sc) = p.score { (format!("{sc:.2}")) } @else { "–" } }
                                td { (p.bad_messages) }
                            }
                        }
                    }
                }
            }
        },
    )
}

async fn receipts_form(State(state): State<AppState>) -> Response {
    token_page(
        &state,
        "Receipts",
        Tab::Receipts,
        "/explorer/receipts",
        "The receipts of this node's invocations (the ones it ran and the ones it asked others to run) are private to its operator, as in the API: give the API token to see them.",
    )
}

async fn receipts(
    State(state): State<AppState>,
    form: Result<Form<TokenForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let res = async {
        let Form(f) = form.map_err(form_error)?;
        check_token(&state, &f.token)?;
        let before = match (!f.cursor.is_empty())
            .then(|| Cursor::decode(&f.cursor, "receipts"))
            .transpose()
            .map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    atr_protocol::api::ErrorCode::InvalidCursor,
                    e.to_string(),
                )
                .with_field("cursor")
            })? {
            Some(Cursor::Receipts { before }) => Some(before),
            _ => None,
        };
        let (list, more) = state
            .repo
            .blocking(move |r| r.receipts_page(before, RECEIPTS_PAGE_SIZE))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let next = more
            .then(|| {
                list.last()
                    .map(|(seq, _)| Cursor::Receipts { before: *seq }.encode())
            })
            .flatten();
        Ok::<_, ApiError>((list, next, before.is_some()))
    }
    .await;
    let (list, next, later) = match res {
        Ok(v) => v,
        Err(e) => return error_page(&state, e),
    };
    let me = state.repo.me();
    let names: Vec<Option<String>> = state.repo.read(|cat| {
        list.iter()
            .map(|(_, r)| cat.get(&r.value().tool).map(|e| e.spec.value().label()))
            .collect()
    });
    ok_page(
        &state,
        "Receipts",
        Tab::Receipts,
        html! {
            h1 { "Receipts" }
            p { "Signed receipts this node holds, newest first: " strong { "ran here" } " when this node was the provider, " strong { "invoked" } " when it asked a provider. Usage is what the receipt binds: run time, output size and the limits applied." }
            @if list.is_empty() { p role="status" { @if later { "No older receipts." } @else { "No receipts yet." } } } @else {
                table {
                    thead { tr {
                        th scope="col" { "Finished" } th scope="col" { "Role" } th scope="col" { "Tool" } th scope="col" { "Status" }
                        th scope="col" { "Run time" } th scope="col" { "Output" } th scope="col" { "Limits" } th scope="col" { "Provider" } th scope="col" { "Invocation" }
                    } }
                    tbody {
                        @for ((_, signed), name) in list.iter().zip(&names) {
                            @let r = signed.value();
                            tr {
                                td { (when(r.finished_at_ms)) }
                                td { @if r.provider == me { "ran here" } @else { "invoked" } }
                                td { a href={ "/explorer/tool/" (r.tool) } { @if let Some(n) = name { (text(n)) } @else { span class="mono" { (r.tool.fmt_short()) } } } }
                                td { (r.status.as_str()) @if let Some(c) = r.exit_code { " (exit " (c) ")" } }
                                td { (r.finished_at_ms.saturating_sub(r.started_at_ms)) " ms" }
                                td { (r.output_bytes) " B" }
                                td { (limits(&r.limits)) }
                                td class="mono" { @if r.provider == me { "this node" } @else { (r.provider.fmt_short()) } }
                                td class="mono" { (r.invocation.to_string()) }
                            }
                        }
                    }
                }
            }
            @if let Some(c) = &next {
                h2 { "Older receipts" }
                form class="stack" method="post" action="/explorer/receipts" {
                    input type="hidden" name="cursor" value=(c);
                    (token_field())
                    div { button type="submit" { "Next page →" } }
                }
            }
        },
    )
}

/// A form body that does not parse.
fn form_error(r: axum::extract::rejection::FormRejection) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        atr_protocol::api::ErrorCode::BadRequest,
        r.body_text(),
    )
}

/// The status words of an entry, for the tool page.
fn status_words(s: &Status) -> (&'static str, Option<ToolId>) {
    match s {
        Status::Active => ("active", None),
        Status::Deprecated { successor, .. } => ("deprecated", *successor),
        Status::Revoked { .. } => ("revoked", None),
    }
}

/// Limits in words: `5000 ms, 16 MiB, 0.25 CPU, 4 pids, 64 B out`.
fn limits(l: &atr_protocol::spec::Limits) -> String {
    format!(
        "{} ms, {} MiB, {} CPU, {} pids, {} B out",
        l.timeout_ms,
        l.memory_bytes / (1024 * 1024),
        f64::from(l.cpu_millis) / 1000.0,
        l.pids,
        l.max_output_bytes
    )
}
