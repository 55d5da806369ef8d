//! The local HTTP API (axum, JSON, `/v1`), bound to loopback by default.
//!
//! | method | path | auth | what |
//! |---|---|---|---|
//! | GET | `/health` | – | 200 when ready |
//! | GET | `/metrics` | – | Prometheus text, series prefixed `atr_` |
//! | GET | `/v1/status` | token | peer id, listen addresses, peers, store counts |
//! | POST | `/v1/publish` | token | publish a manifest |
//! | GET | `/v1/specs/{id}` | – | one spec |
//! | GET | `/v1/ids?prefix=` | – | ids of stored specs starting with a short id (≥ 12 characters) |
//! | GET | `/v1/find` | – (token with `network=true`) | find by tag, name, version, publisher, … (`network=true` asks peers); paged, `view=compact` |
//! | GET | `/v1/search?q=` | – | ranked full-text search; paged, `view=compact` |
//! | POST | `/v1/revoke` | token | revoke or deprecate |
//! | GET | `/v1/peers` | token | connected peers |
//! | POST | `/v1/invoke` | token | run a tool (locally or on a provider), with a verified receipt |
//! | GET | `/v1/receipts` | token | receipts this node issued or received; paged |
//! | POST | `/v1/provide` | token | agree to run another publisher's spec (`{"id"}`) |
//! | DELETE | `/v1/provide/{id}` | token | withdraw that consent |
//! | GET | `/v1/provided` | token | foreign specs this node provides |
//! | GET | `/v1/trust` | – | this node's key and the publishers it trusts (`api/trust.rs`) |
//! | POST | `/v1/trust` | token | trust a publisher (`{"publisher", "label"?}`) |
//! | DELETE | `/v1/trust/{publisher}` | token | stop trusting it |
//!
//! Every request first passes [`guard::Access`]: a `Host` or `Origin` that is not this
//! node's is refused (`403 forbidden_origin`). Calls that change something, make the node
//! do network work or reveal its history and peers need `Authorization: Bearer <token>`,
//! where the token is the content of `<data-dir>/api.token` (mode 0600); what any
//! local process may read without it is public anyway (specs, local find and search,
//! health, metrics counts). Errors are [`ApiError`]s.

pub mod error;
mod explorer;
pub mod guard;
mod listing;
pub mod render;
mod trust;

use std::sync::Arc;
use std::time::Duration;

use atr_protocol::ToolId;
use atr_protocol::api::ErrorCode;
use atr_protocol::api::{
    DEFAULT_DELEGATION_SECS, DelegateRequest, DelegateResponse, MAX_API_BODY_BYTES, PeerView, PeersResponse,
    ProvideRequest, ProvideResponse, ProvidedResponse, ProvidedView, PublishRequest, PublishResponse,
    RevokeRequest, RevokeResponse, SpecStatus, SpecView, StatusResponse, StoreCountsView,
};
use atr_protocol::delegation::{DelegationScope, MAX_DELEGATION_MS};
use atr_protocol::revocation::{RevocationKind, RevocationTarget};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use error::ApiError;

use crate::catalog::{Entry, Status};
use crate::metrics::{self, Metrics, Snapshot};
use crate::network::NetworkHandle;
use crate::node::discover::Discovery;
use crate::node::invoke::caller::{Caller, InvokeError};
use crate::node::provide::{Consent, ProvideError};
use crate::node::publish::Publisher;
use crate::repo::Repo;

/// Deadline of one API request: the longest tool time limit plus container
/// start and transfer (a network find ends far sooner on its own deadlines).
pub const REQUEST_TIMEOUT: Duration = Duration::from_millis(atr_protocol::limits::MAX_TIMEOUT_MS + 30_000);

/// What the API handlers use.
#[derive(Clone)]
pub struct ApiContext {
    /// Reads (find, search, specs, counts, receipts).
    pub repo: Repo,
    /// Status and peers.
    pub net: NetworkHandle,
    /// This node's metrics (`/metrics`, request counts).
    pub metrics: Arc<Metrics>,
    /// The bearer token mutating calls need.
    pub token: String,
    /// `POST /v1/publish`, `POST /v1/revoke`.
    pub publisher: Publisher,
    /// `/v1/provide`, `/v1/provided`.
    pub consent: Consent,
    /// `GET /v1/find?network=true`.
    pub discovery: Discovery,
    /// `POST /v1/invoke`.
    pub caller: Caller,
    /// The Host and Origin allowlists.
    pub access: guard::Access,
    /// Shown in `/v1/status` (e.g. the sandbox's engine runs tools unconfined).
    pub warnings: Vec<String>,
    /// Publishers' domain claims.
    pub claims: Arc<crate::claims::DomainClaims>,
    /// The JSON of recently listed specs, rendered once ([`render::SpecJson`]).
    pub spec_json: Arc<render::SpecJson>,
    /// What the web explorer may do ([`explorer`]).
    pub explorer: crate::config::ExplorerOptions,
}

type AppState = Arc<ApiContext>;

/// The router, for serving and for in-process tests.
pub fn router(ctx: ApiContext) -> Router {
    let metrics = ctx.metrics.clone();
    let access = Arc::new(ctx.access.clone());
    let explorer = explorer::routes(ctx.explorer);
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/metrics", get(metrics_text))
        .route("/v1/status", get(status))
        .route("/v1/publish", post(publish_spec))
        .route("/v1/specs/{id}", get(get_spec))
        .route("/v1/ids", get(ids_with_prefix))
        .route("/v1/find", get(listing::find))
        .route("/v1/search", get(listing::search))
        .route("/v1/revoke", post(revoke))
        .route("/v1/delegations", post(delegate))
        .route("/v1/peers", get(peers))
        .route("/v1/invoke", post(invoke))
        .route("/v1/receipts", get(listing::receipts))
        .route("/v1/provide", post(provide_spec))
        .route("/v1/provide/{id}", axum::routing::delete(unprovide_spec))
        .route("/v1/provided", get(provided))
        .route("/v1/trust", get(trust::list).post(trust::add))
        .route("/v1/trust/{publisher}", axum::routing::delete(trust::remove))
        .merge(explorer)
        .fallback(|| async { ApiError::not_found("no such endpoint; see docs/architecture.md for the API") })
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                guard::guard(access.clone(), req, next)
            },
        ))
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                metrics::scope_api(metrics.clone(), next.run(req))
            },
        ))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_API_BODY_BYTES))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .with_state(Arc::new(ctx))
}

/// Runs the API on `listener` until `cancel` fires, then drains in-flight requests.
pub async fn run(listener: tokio::net::TcpListener, ctx: ApiContext, cancel: CancellationToken) {
    use axum::serve::ListenerExt;
    let app = router(ctx);
    // No Nagle: a listing's last small chunk would otherwise wait for the client's delayed ACK.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            warn!(error = %e, "TCP_NODELAY not set on an API connection");
        }
    });
    let res = axum::serve(listener, app)
        .with_graceful_shutdown(async move { cancel.cancelled().await })
        .await;
    match res {
        Ok(()) => info!("local API stopped"),
        Err(e) => warn!(error = %e, "local API failed"),
    }
}

fn authorize(state: &ApiContext, headers: &HeaderMap) -> Result<(), ApiError> {
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthorized,
                "this call needs `Authorization: Bearer <token>`; the token is in <data-dir>/api.token",
            )
        })?;
    if token_matches(&state.token, given) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "wrong API token",
        ))
    }
}

/// Whether `given` is the API token. Constant-time: the token guards mutations and
/// private reads.
fn token_matches(token: &str, given: &str) -> bool {
    given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// `None` when the kept envelope no longer decodes (logged by the catalog's reader).
fn view(e: &Entry, with_envelope: bool, claims: &crate::claims::DomainClaims) -> Option<SpecView> {
    let spec = e.spec.tool_spec().ok()?;
    Some(SpecView {
        domain: claims.cached(spec.homepage.as_deref(), &spec.publisher),
        id: e.spec.id(),
        status: match &e.status {
            Status::Active => SpecStatus::Active,
            Status::Deprecated { successor, .. } => SpecStatus::Deprecated {
                successor: *successor,
            },
            Status::Revoked { .. } => SpecStatus::Revoked,
        },
        spec,
        envelope_hex: with_envelope.then(|| hex::encode(e.spec.envelope())),
    })
}

fn ok<T: serde::Serialize>(v: T) -> axum::response::Response {
    metrics::API_REQUESTS.with_label("ok").inc();
    Json(v).into_response()
}

async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    let counts = state
        .repo
        .blocking(|r| r.counts())
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let peers = state.net.status().await.map(|s| s.peers.len()).unwrap_or(0);
    let text = state.metrics.render(Snapshot {
        specs: counts.specs,
        revocations: counts.revocations,
        connected_peers: peers,
    });
    ([(axum::http::header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text)
}

async fn status(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<axum::response::Response, ApiError> {
    // It lists the connected peers and listen addresses.
    authorize(&state, &headers)?;
    let net = state
        .net
        .status()
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let counts = state
        .repo
        .blocking(|r| r.counts())
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(ok(StatusResponse {
        peer_id: state.repo.me(),
        version: env!("CARGO_PKG_VERSION").into(),
        listen_addrs: net.listen_addrs,
        connected_peers: net.peers.into_iter().map(|p| p.peer).collect(),
        store: StoreCountsView {
            specs: counts.specs,
            revocations: counts.revocations,
            receipts: counts.receipts,
            peers: counts.peers,
        },
        warnings: state.warnings.clone(),
    }))
}

async fn publish_spec(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<PublishRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<axum::response::Response, ApiError> {
    authorize(&state, &headers)?;
    let Json(req) = body?;
    let file = req.file.unwrap_or_else(|| "manifest".into());
    let p = state.publisher.publish(req.manifest, file).await?;
    let status = if p.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    metrics::API_REQUESTS.with_label("ok").inc();
    Ok((
        status,
        Json(PublishResponse {
            id: p.spec.id(),
            created: p.created,
            spec: p.spec.value().clone(),
        }),
    )
        .into_response())
}

fn parse_id(id: &str) -> Result<ToolId, ApiError> {
    id.parse::<ToolId>().map_err(|e| {
        ApiError::bad_request(format!("`{}`: {e}", id.chars().take(80).collect::<String>())).with_field("id")
    })
}

async fn get_spec(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::response::Response, ApiError> {
    let id = parse_id(&id)?;
    let mut v = state
        .repo
        .read(|cat| cat.get(&id).and_then(|e| view(e, true, &state.claims)))
        .ok_or_else(|| ApiError::not_found(format!("no spec {id} on this node (try `find --network`)")))?;
    // One spec asked for: its publisher's domain claim is checked now (cached).
    v.domain = state
        .claims
        .verify(v.spec.homepage.as_deref(), &v.spec.publisher)
        .await;
    Ok(ok(v))
}

/// Query string of `GET /v1/ids`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdsParams {
    prefix: String,
}

/// `GET /v1/ids?prefix=`: the short-id lookup, a range scan of the store's id-ordered specs
/// table over every spec held (revoked included), so a prefix resolves however many specs
/// the node holds. Public like `/v1/specs/{id}`: it reveals only which ids are held.
async fn ids_with_prefix(
    State(state): State<AppState>,
    params: Result<Query<IdsParams>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::response::Response, ApiError> {
    let Query(p) = params?;
    let prefix: atr_protocol::id::ToolIdPrefix = p.prefix.parse().map_err(|e| {
        ApiError::bad_request(format!(
            "`{}`: {e}",
            atr_protocol::text::escape(&p.prefix.chars().take(80).collect::<String>())
        ))
        .with_field("prefix")
    })?;
    let (ids, more) = state
        .repo
        .blocking(move |r| r.spec_ids_with_prefix(&prefix, atr_protocol::api::MAX_PREFIX_MATCHES))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(ok(atr_protocol::api::IdsResponse { ids, more }))
}

async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<RevokeRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<axum::response::Response, ApiError> {
    authorize(&state, &headers)?;
    let Json(r) = body?;
    let target = match (r.id, r.name) {
        (Some(id), None) => RevocationTarget::Id(id),
        (None, Some(n)) => RevocationTarget::Name(n),
        _ => return Err(ApiError::bad_request("give exactly one of `id` or `name`").with_field("id")),
    };
    let kind = r.kind.unwrap_or(RevocationKind::Revoke);
    let (rev, affected) = state
        .publisher
        .revoke(target, kind, r.reason, r.successor)
        .await?;
    Ok(ok(RevokeResponse {
        revocation: hex::encode(rev.hash()),
        affected,
    }))
}

async fn delegate(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<DelegateRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<axum::response::Response, ApiError> {
    authorize(&state, &headers)?;
    let Json(r) = body?;
    let scope = match (r.id, r.name) {
        (Some(id), None) => DelegationScope::Id(id),
        (None, Some(n)) => DelegationScope::Name(n),
        _ => return Err(ApiError::bad_request("give exactly one of `id` or `name`").with_field("id")),
    };
    let secs = r.valid_for_secs.unwrap_or(DEFAULT_DELEGATION_SECS);
    if secs == 0 || secs.saturating_mul(1000) > MAX_DELEGATION_MS {
        return Err(
            ApiError::bad_request("`valid_for_secs` must be 1 s to 366 days").with_field("valid_for_secs")
        );
    }
    let d = state
        .publisher
        .delegate(scope, r.provider, std::time::Duration::from_secs(secs))
        .await?;
    Ok(ok(DelegateResponse {
        delegation: hex::encode(d.hash()),
        provider: d.value().provider,
        expires_at_ms: d.value().expires_at_ms,
    }))
}

async fn peers(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<axum::response::Response, ApiError> {
    authorize(&state, &headers)?;
    let s = state
        .net
        .status()
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(ok(PeersResponse {
        peers: s
            .peers
            .into_iter()
            .map(|p| PeerView {
                peer_id: p.peer,
                addrs: p.addrs,
                score: p.score,
                bad_messages: p.bad_messages,
            })
            .collect(),
    }))
}

impl From<InvokeError> for ApiError {
    fn from(e: InvokeError) -> Self {
        let msg = e.to_string();
        match e {
            InvokeError::NotFound(_) => ApiError::not_found(msg),
            InvokeError::Ambiguous(_) => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::AmbiguousName, msg).with_field("name")
            }
            InvokeError::Revoked(_) => ApiError::new(StatusCode::GONE, ErrorCode::Revoked, msg),
            InvokeError::InvalidInput(v) => {
                let mut err = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidInput, msg)
                    .with_field("input");
                err.details = serde_json::to_value(&v).ok();
                err
            }
            InvokeError::BadInput(_) => ApiError::bad_request(msg).with_field("input"),
            InvokeError::NoProvider { attempts, .. } => {
                let mut err = ApiError::new(StatusCode::BAD_GATEWAY, ErrorCode::NoProvider, msg);
                err.details = serde_json::to_value(&attempts).ok();
                err
            }
            InvokeError::Refused { reason, .. } => {
                let code = match reason {
                    atr_protocol::wire::Refusal::InvalidInput => ErrorCode::InvalidInput,
                    atr_protocol::wire::Refusal::Revoked => ErrorCode::Revoked,
                    atr_protocol::wire::Refusal::Denied => ErrorCode::Denied,
                    _ => ErrorCode::Refused,
                };
                ApiError::new(StatusCode::BAD_GATEWAY, code, msg)
            }
            _ => ApiError::internal(msg),
        }
    }
}

async fn invoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<atr_protocol::api::InvokeRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<axum::response::Response, ApiError> {
    authorize(&state, &headers)?;
    let Json(req) = body?;
    let resp = state.caller.invoke(req).await?;
    Ok(ok(resp))
}

impl From<ProvideError> for ApiError {
    fn from(e: ProvideError) -> Self {
        let msg = e.to_string();
        match e {
            ProvideError::UnknownTool(_) => ApiError::not_found(msg).with_field("id"),
            ProvideError::NotProvided(_) => {
                ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotProvided, msg).with_field("id")
            }
            ProvideError::Revoked(_) => {
                ApiError::new(StatusCode::GONE, ErrorCode::Revoked, msg).with_field("id")
            }
            ProvideError::OwnSpec(_) => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::OwnSpec, msg).with_field("id")
            }
            ProvideError::SandboxOff(_) => ApiError::new(StatusCode::CONFLICT, ErrorCode::SandboxOff, msg),
            ProvideError::ImageMissing { .. } => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::ImageMissing, msg)
            }
            ProvideError::ImageRefused { .. } => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::ImageRefused, msg)
            }
            ProvideError::Store(crate::store::StoreError::Full { .. }) => {
                ApiError::new(StatusCode::INSUFFICIENT_STORAGE, ErrorCode::StoreFull, msg)
            }
            _ => ApiError::internal(msg),
        }
    }
}

async fn provide_spec(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<ProvideRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<axum::response::Response, ApiError> {
    authorize(&state, &headers)?;
    let Json(r) = body?;
    let (_, changed) = state.consent.provide(&r.id).await?;
    let me = state.repo.me();
    let delegated_until_ms = state
        .repo
        .read(|c| c.delegated_until(&r.id, &me, crate::time::now_ms()));
    Ok(ok(ProvideResponse {
        id: r.id,
        provided: true,
        changed,
        delegated_until_ms,
    }))
}

async fn unprovide_spec(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<axum::response::Response, ApiError> {
    authorize(&state, &headers)?;
    let id = parse_id(&id)?;
    state.consent.unprovide(&id).await?;
    Ok(ok(ProvideResponse {
        id,
        provided: false,
        changed: true,
        delegated_until_ms: None,
    }))
}

async fn provided(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<axum::response::Response, ApiError> {
    authorize(&state, &headers)?;
    let list = state.consent.provided();
    let (me, now) = (state.repo.me(), crate::time::now_ms());
    // One catalog read for every entry's delegation.
    let until: Vec<Option<u64>> = state.repo.read(|c| {
        list.iter()
            .map(|(id, _)| c.delegated_until(id, &me, now))
            .collect()
    });
    Ok(ok(ProvidedResponse {
        provided: list
            .into_iter()
            .zip(until)
            .map(|((id, spec), delegated_until_ms)| {
                let v = spec.as_ref().map(|s| s.value());
                ProvidedView {
                    id,
                    name: v.map(|v| v.name.clone()),
                    version: v.map(|v| v.version.to_string()),
                    publisher: v.map(|v| v.publisher),
                    delegated_until_ms,
                }
            })
            .collect(),
    }))
}
