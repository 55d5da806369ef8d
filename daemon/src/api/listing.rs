//! The listings: `GET /v1/find`, `GET /v1/search` and `GET /v1/receipts`, a page at a time.
//!
//! Each answer carries `next_cursor` when more follow; the next request passes it back as
//! `cursor` ([`atr_protocol::page`]). find and search answer full specs
//! ([`atr_protocol::api::SpecView`], from the prepared JSON of [`super::render::SpecJson`]) or,
//! with `view=compact`, [`atr_protocol::api::CompactView`]s built from the catalog's
//! indexed fields without decoding anything. Answers are written to the connection in
//! chunks as they are serialized ([`stream_list`]), not built as one buffer first.

use atr_protocol::api::{
    DEFAULT_RECEIPTS_LIMIT, DEFAULT_SEARCH_LIMIT, ErrorCode, MAX_RECEIPTS_LIMIT, MAX_SEARCH_LIMIT, SearchHit,
};
use atr_protocol::page::{Cursor, CursorError, View};
use atr_protocol::query::{FindQuery, parse_version_req};
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::render::SpecViewOut;
use super::{ApiError, AppState, authorize};
use crate::catalog::{Entry, ListingKey, SearchKey};
use crate::metrics;
use crate::network::Lookup;

/// Size of the chunks a listing is written in: a compact page of 1000 specs is one chunk,
/// a full page a few.
const CHUNK_BYTES: usize = 512 * 1024;

/// Query string of `GET /v1/find`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FindParams {
    tag: Option<String>,
    name: Option<String>,
    version: Option<String>,
    publisher: Option<String>,
    side_effects: Option<String>,
    max_cost: Option<String>,
    #[serde(default)]
    include_revoked: bool,
    #[serde(default)]
    network: NetworkParam,
    limit: Option<usize>,
    cursor: Option<String>,
    #[serde(default)]
    view: View,
}

/// `network=`: `false` (default), `true` (each shard's DHT lookup stops at
/// its first answer naming a provider) or `complete` (every lookup runs until
/// it converges).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
enum NetworkParam {
    #[default]
    False,
    True,
    Complete,
}

impl NetworkParam {
    fn lookup(self) -> Option<Lookup> {
        match self {
            Self::False => None,
            Self::True => Some(Lookup::First),
            Self::Complete => Some(Lookup::Complete),
        }
    }
}

fn cursor_error(e: CursorError) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidCursor, e.to_string()).with_field("cursor")
}

/// Decodes the `cursor` parameter of the `kind` listing.
fn cursor(text: Option<&str>, kind: &'static str) -> Result<Option<Cursor>, ApiError> {
    text.map(|t| Cursor::decode(t, kind).map_err(cursor_error))
        .transpose()
}

fn find_query(p: &FindParams) -> Result<FindQuery, ApiError> {
    let publisher = p
        .publisher
        .as_deref()
        .map(|s| {
            s.parse()
                .map_err(|e| ApiError::bad_request(format!("publisher: {e}")).with_field("publisher"))
        })
        .transpose()?;
    let allowed_side_effects = p
        .side_effects
        .as_deref()
        .map(|s| {
            s.split(',')
                .map(|x| {
                    x.trim()
                        .parse()
                        .map_err(|e: String| ApiError::bad_request(e).with_field("side_effects"))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let max_cost = p
        .max_cost
        .as_deref()
        .map(|c| {
            c.parse()
                .map_err(|e: String| ApiError::bad_request(e).with_field("max_cost"))
        })
        .transpose()?;
    if let Some(t) = &p.tag {
        atr_protocol::validate::check_tag(t)
            .map_err(|e| ApiError::bad_request(e.to_string()).with_field("tag"))?;
    }
    if let Some(n) = &p.name {
        atr_protocol::validate::check_name(n)
            .map_err(|e| ApiError::bad_request(e.to_string()).with_field("name"))?;
    }
    Ok(FindQuery {
        tag: p.tag.clone(),
        name: p.name.clone(),
        version: p.version.clone(),
        publisher,
        allowed_side_effects,
        max_cost,
        include_revoked: p.include_revoked,
        network: p.network != NetworkParam::False,
        limit: p.limit,
    })
}

/// Writes `{<open>[item,item,…]<close>}` in chunks of about [`CHUNK_BYTES`], serializing
/// items as the connection takes them; an answer that fits in one chunk is sent whole, with
/// its length.
fn stream_list<T: Serialize + Send + 'static>(open: &str, items: Vec<T>, close: String) -> Response {
    metrics::API_REQUESTS.with_label("ok").inc();
    let mut chunks = Chunks {
        head: Some(format!("{{{open}[").into_bytes()),
        tail: Some(format!("]{close}}}").into_bytes()),
        items: items.into_iter(),
        first: true,
    };
    let body = match chunks.next() {
        Some(Ok(first)) if chunks.tail.is_none() => Body::from(first),
        first => Body::from_stream(futures::stream::iter(first.into_iter().chain(chunks))),
    };
    let mut resp = body.into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// The chunks of a listing ([`stream_list`]).
struct Chunks<T> {
    head: Option<Vec<u8>>,
    tail: Option<Vec<u8>>,
    items: std::vec::IntoIter<T>,
    first: bool,
}

impl<T: Serialize> Iterator for Chunks<T> {
    type Item = Result<Bytes, std::io::Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut buf = self.head.take().unwrap_or_default();
        while buf.len() < CHUNK_BYTES {
            match self.items.next() {
                Some(item) => {
                    if !self.first {
                        buf.push(b',');
                    }
                    self.first = false;
                    if let Err(e) = serde_json::to_writer(&mut buf, &item) {
                        return Some(Err(std::io::Error::other(e)));
                    }
                }
                None => {
                    buf.extend(self.tail.take().unwrap_or_default());
                    break;
                }
            }
        }
        (!buf.is_empty()).then(|| Ok(Bytes::from(buf)))
    }
}

/// `,"name":value` for the end of a listing, or nothing when `value` is `None`.
fn field<T: Serialize>(name: &str, value: Option<&T>) -> String {
    value
        .and_then(|v| serde_json::to_string(v).ok())
        .map(|v| format!(",\"{name}\":{v}"))
        .unwrap_or_default()
}

pub(super) async fn find(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<FindParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(p) = params?;
    let q = find_query(&p)?;
    let after = match cursor(p.cursor.as_deref(), "find")? {
        Some(Cursor::Find { name, version, id }) => Some(ListingKey { name, version, id }),
        _ => None,
    };
    if q.network {
        // Asking peers costs this node connections, requests and store writes.
        authorize(&state, &headers)?;
    }
    let req = q
        .version
        .as_deref()
        .map(parse_version_req)
        .transpose()
        .map_err(|e| ApiError::bad_request(e.to_string()).with_field("version"))?;
    // A later page reads only this node's catalog: the network was asked for the first.
    let fetched = match p.network.lookup() {
        Some(lookup) if after.is_none() => {
            state
                .discovery
                .from_network(q.tag.as_deref(), q.name.as_deref(), lookup)
                .await
                .stored
        }
        _ => 0,
    };
    let out = state.repo.read(|cat| {
        let page = cat.find_page(&q, req.as_ref(), after.as_ref());
        let next = page
            .more
            .then(|| page.results.last().map(|e| next_find(e)))
            .flatten();
        let body = match p.view {
            View::Compact => Listing::Compact(
                state
                    .spec_json
                    .compact_all(page.results.into_iter().map(|e| ((), e)).collect())
                    .into_iter()
                    .map(|(_, v)| v)
                    .collect(),
            ),
            _ => Listing::Full(
                full(&state, page.results.into_iter().map(|e| ((), e)).collect())
                    .into_iter()
                    .map(|(_, v)| v)
                    .collect(),
            ),
        };
        (body, next)
    });
    let (body, next) = out;
    let close = format!(
        ",\"fetched_from_network\":{fetched}{}",
        field("next_cursor", next.as_ref())
    );
    Ok(match body {
        Listing::Full(v) => stream_list("\"results\":", v, close),
        Listing::Compact(v) => stream_list("\"results\":", v, close),
    })
}

enum Listing<F, C> {
    Full(Vec<F>),
    Compact(Vec<C>),
}

/// The cursor after a search page, when more results follow (the JSON listing and the
/// explorer page the same way).
pub(super) fn next_search(page: &crate::catalog::SearchPage<'_>) -> Option<String> {
    page.more
        .then(|| {
            page.results.last().map(|(score, e)| {
                Cursor::Search {
                    docs: page.docs,
                    score: *score,
                    id: e.spec.id(),
                }
                .encode()
            })
        })
        .flatten()
}

fn next_find(e: &Entry) -> String {
    let k = ListingKey::of(e);
    Cursor::Find {
        name: k.name,
        version: k.version,
        id: k.id,
    }
    .encode()
}

/// The full views of `entries` with their tags, from prepared JSON.
fn full<T>(state: &AppState, entries: Vec<(T, &Entry)>) -> Vec<(T, SpecViewOut)> {
    state
        .spec_json
        .render_all(entries)
        .into_iter()
        .map(|(t, e, r)| (t, SpecViewOut::new(e, r, &state.claims)))
        .collect()
}

/// Query string of `GET /v1/search`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SearchParams {
    q: String,
    limit: Option<usize>,
    cursor: Option<String>,
    #[serde(default)]
    view: View,
}

pub(super) async fn search(
    State(state): State<AppState>,
    params: Result<Query<SearchParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(p) = params?;
    if p.q.len() > crate::catalog::MAX_QUERY_BYTES {
        return Err(ApiError::bad_request("query over 256 bytes").with_field("q"));
    }
    let after = match cursor(p.cursor.as_deref(), "search")? {
        Some(Cursor::Search { docs, score, id }) => Some(SearchKey { docs, score, id }),
        _ => None,
    };
    let limit = p.limit.unwrap_or(DEFAULT_SEARCH_LIMIT).clamp(1, MAX_SEARCH_LIMIT);
    let out = state.repo.read(|cat| {
        let page = cat.search_page(&p.q, limit, after.as_ref())?;
        let next = next_search(&page);
        let body = match p.view {
            View::Compact => Listing::Compact(
                state
                    .spec_json
                    .compact_all(page.results)
                    .into_iter()
                    .map(|(score, view)| SearchHit { score, view })
                    .collect(),
            ),
            _ => Listing::Full(
                full(&state, page.results)
                    .into_iter()
                    .map(|(score, view)| SearchHit { score, view })
                    .collect(),
            ),
        };
        Some((body, next))
    });
    let (body, next) = out.ok_or_else(|| {
        cursor_error(CursorError::Malformed(
            "it names a position this node's index does not hold",
        ))
    })?;
    let close = field("next_cursor", next.as_ref());
    Ok(match body {
        Listing::Full(v) => stream_list("\"hits\":", v, close),
        Listing::Compact(v) => stream_list("\"hits\":", v, close),
    })
}

/// Query string of `GET /v1/receipts`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReceiptParams {
    limit: Option<usize>,
    cursor: Option<String>,
}

pub(super) async fn receipts(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<ReceiptParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let Query(p) = params?;
    let before = match cursor(p.cursor.as_deref(), "receipts")? {
        Some(Cursor::Receipts { before }) => Some(before),
        _ => None,
    };
    let limit = p
        .limit
        .unwrap_or(DEFAULT_RECEIPTS_LIMIT)
        .clamp(1, MAX_RECEIPTS_LIMIT);
    let (list, more) = state
        .repo
        .blocking(move |r| r.receipts_page(before, limit))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let next_cursor = more
        .then(|| {
            list.last()
                .map(|(seq, _)| Cursor::Receipts { before: *seq }.encode())
        })
        .flatten();
    Ok(super::ok(atr_protocol::api::ReceiptsResponse {
        receipts: list.into_iter().map(|(_, r)| r.value().clone()).collect(),
        next_cursor,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(items: Vec<String>) -> Chunks<String> {
        Chunks {
            head: Some(b"{\"results\":[".to_vec()),
            tail: Some(b"],\"n\":1}".to_vec()),
            items: items.into_iter(),
            first: true,
        }
    }

    #[test]
    fn chunks_join_to_the_listing_json() -> Result<(), Box<dyn std::error::Error>> {
        let items: Vec<String> = (0..100_000).map(|i| format!("item {i}")).collect();
        let parts: Vec<Bytes> = chunks(items.clone()).collect::<Result<_, _>>()?;
        assert!(parts.len() > 2, "{} chunks", parts.len());
        assert!(parts.iter().all(|p| p.len() < CHUNK_BYTES + 64));
        let all: Vec<u8> = parts.concat();
        let v: serde_json::Value = serde_json::from_slice(&all)?;
        assert_eq!(v, serde_json::json!({"results": items, "n": 1}));
        let empty: Vec<Bytes> = chunks(Vec::new()).collect::<Result<_, _>>()?;
        assert_eq!(empty.concat(), b"{\"results\":[],\"n\":1}");
        Ok(())
    }
}
