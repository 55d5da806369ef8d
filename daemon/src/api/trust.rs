//! `/v1/trust`: the node's one trust list ([`crate::repo::Repo::trust_list`]).
//!
//! | method | path | auth | what |
//! |---|---|---|---|
//! | GET | `/v1/trust` | – | this node's key and the trusted publishers ([`TrustList`]) |
//! | POST | `/v1/trust` | token | `{"publisher", "label"?}`: trust a publisher, or relabel it |
//! | DELETE | `/v1/trust/{publisher}` | token | stop trusting it |
//!
//! The body's key is parsed here (not by serde), so a malformed key is `400 bad_request`
//! on `publisher`, like every other field, rather than a `malformed_json`.

use atr_protocol::PublicKey;
use atr_protocol::api::ErrorCode;
use atr_protocol::trust::{MAX_TRUST_LABEL_CHARS, TrustResponse};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;

use super::{ApiError, AppState, authorize, ok};
use crate::repo::TrustError;

/// Body of `POST /v1/trust`, before its key is parsed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TrustBody {
    publisher: String,
    #[serde(default)]
    label: Option<String>,
}

fn parse_key(text: &str) -> Result<PublicKey, ApiError> {
    text.parse::<PublicKey>().map_err(|e| {
        let shown: String = text.chars().take(80).flat_map(char::escape_default).collect();
        ApiError::bad_request(format!("publisher `{shown}`: {e}")).with_field("publisher")
    })
}

/// A refused trust change as an API error.
fn refused(e: TrustError) -> ApiError {
    {
        let msg = e.to_string();
        match e {
            TrustError::Label(_) => ApiError::bad_request(msg).with_field("label"),
            TrustError::OwnKey(_) => ApiError::bad_request(msg).with_field("publisher"),
            TrustError::Full { .. } => ApiError::new(StatusCode::CONFLICT, ErrorCode::TrustListFull, msg),
            TrustError::InConfig(_) => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::TrustedInConfig, msg).with_field("publisher")
            }
            _ => ApiError::internal(msg),
        }
    }
}

pub(super) async fn list(State(state): State<AppState>) -> axum::response::Response {
    ok(state.repo.trust_list())
}

pub(super) async fn add(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<TrustBody>, axum::extract::rejection::JsonRejection>,
) -> Result<axum::response::Response, ApiError> {
    authorize(&state, &headers)?;
    let Json(b) = body?;
    let publisher = parse_key(&b.publisher)?;
    // Cheap bound before the label is looked at further (the body limit is 1 MiB).
    if let Some(l) = &b.label
        && l.len() > 4 * MAX_TRUST_LABEL_CHARS
    {
        return Err(ApiError::bad_request(format!(
            "a trust label is at most {MAX_TRUST_LABEL_CHARS} characters, this one has {} bytes",
            l.len()
        ))
        .with_field("label"));
    }
    let changed = state
        .repo
        .blocking(move |r| r.add_trusted(publisher, b.label))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(refused)?;
    Ok(ok(TrustResponse {
        publisher,
        trusted: true,
        changed,
    }))
}

pub(super) async fn remove(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(publisher): Path<String>,
) -> Result<axum::response::Response, ApiError> {
    authorize(&state, &headers)?;
    let publisher = parse_key(&publisher)?;
    let changed = state
        .repo
        .blocking(move |r| r.remove_trusted(&publisher))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(refused)?;
    Ok(ok(TrustResponse {
        publisher,
        trusted: false,
        changed,
    }))
}
