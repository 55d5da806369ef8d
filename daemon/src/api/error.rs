//! The API's one error type: an HTTP status, a stable code and a message,
//! rendered as [`ApiErrorBody`] JSON.

use atr_protocol::api::{ApiErrorBody, ErrorCode};
use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::metrics;
use crate::node::publish::PublishError;

/// An API error.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code.
    pub code: ErrorCode,
    /// Message for people.
    pub message: String,
    /// Field at fault.
    pub field: Option<String>,
    /// Structured details.
    pub details: Option<serde_json::Value>,
}

impl ApiError {
    /// A new error.
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            details: None,
        }
    }
    /// 400 `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, message)
    }
    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, message)
    }
    /// 500 `internal`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, message)
    }
    /// Sets the field.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // The node only builds codes it knows; an unknown one would be counted as `other`.
        metrics::API_REQUESTS
            .with_label(self.code.known_str().unwrap_or("other"))
            .inc();
        let body = ApiErrorBody {
            code: self.code,
            message: self.message,
            field: self.field,
            details: self.details,
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::BytesRejection(_) => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::BodyTooLarge,
                format!(
                    "request body over the {}-byte limit",
                    atr_protocol::api::MAX_API_BODY_BYTES
                ),
            ),
            JsonRejection::MissingJsonContentType(_) => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
                "send JSON with `Content-Type: application/json`",
            ),
            other => Self::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::MalformedJson,
                other.body_text(),
            ),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::BadQuery, r.body_text())
    }
}

impl From<PublishError> for ApiError {
    fn from(e: PublishError) -> Self {
        match &e {
            PublishError::Manifest(m) => {
                let field = m.field().map(str::to_owned);
                let mut err = Self::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    ErrorCode::InvalidManifest,
                    e.to_string(),
                );
                err.field = field;
                err
            }
            PublishError::VersionExists { .. } => {
                Self::new(StatusCode::CONFLICT, ErrorCode::VersionExists, e.to_string())
            }
            PublishError::ImageRefused(_) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::ImageRefused,
                e.to_string(),
            )
            .with_field("runtime.image"),
            PublishError::NotRevocable(_) => {
                Self::new(StatusCode::FORBIDDEN, ErrorCode::NotRevocable, e.to_string())
            }
            PublishError::NotDelegable(_) => {
                Self::new(StatusCode::FORBIDDEN, ErrorCode::NotDelegable, e.to_string())
            }
            PublishError::Ingest(crate::node::ingest::IngestError::Store(
                crate::store::StoreError::Full { .. },
            )) => Self::new(
                StatusCode::INSUFFICIENT_STORAGE,
                ErrorCode::StoreFull,
                e.to_string(),
            ),
            PublishError::Sign(_) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidManifest,
                e.to_string(),
            ),
            _ => Self::internal(e.to_string()),
        }
    }
}
