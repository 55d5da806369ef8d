//! [`ClientError`]: why a call to the node failed.
//!
//! Every [`ApiErrorBody::code`] the node sends maps to a variant (see
//! [`ClientError::from_api`]); codes this crate does not know yet land in
//! [`ClientError::Api`] with the code kept, so callers can still match on it.
//! Transport failures (node down, deadline passed, garbage answer) have their
//! own variants. Messages are written for the operator: one line, with the
//! next step where there is one.

use std::path::PathBuf;
use std::time::Duration;

use atr_protocol::api::ApiErrorBody;

/// Why a call to the node failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The API address is not a usable `http://` URL.
    #[error("`{url}` is not a valid atrd API address: {message}")]
    InvalidUrl {
        /// What was given.
        url: String,
        /// Why it is refused.
        message: String,
    },
    /// Nothing answers at the API address.
    #[error("cannot reach atrd at {url} — is it running? start it with `atrd`")]
    Unreachable {
        /// The API address.
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The node did not answer before the call's deadline.
    #[error("atrd at {url} did not answer within {} s", after.as_secs_f32())]
    Timeout {
        /// The API address.
        url: String,
        /// The deadline that passed.
        after: Duration,
    },
    /// `unauthorized`: the call needs the node's API token and it was missing or wrong.
    #[error("unauthorized: {message} — {hint}")]
    Unauthorized {
        /// The node's message.
        message: String,
        /// Where this client looked for the token, and what to do.
        hint: String,
    },
    /// `not_found`: no such spec (or endpoint) on this node.
    #[error("{message}")]
    NotFound {
        /// The node's message.
        message: String,
    },
    /// `invalid_manifest`, or a manifest this client could not read or parse.
    #[error("invalid manifest: {message}")]
    InvalidManifest {
        /// The manifest field at fault, when known (`version`, `runtime.digest`, …).
        field: Option<String>,
        /// What is wrong, naming the file and the rule.
        message: String,
    },
    /// `version_exists`: this node already published another spec with this name and version.
    #[error("{message}")]
    VersionExists {
        /// The node's message.
        message: String,
    },
    /// `not_revocable`: the target is unknown or was not published by this node.
    #[error("cannot revoke: {message}")]
    NotRevocable {
        /// The node's message.
        message: String,
    },
    /// `bad_request`, `bad_query`, `malformed_json`: the node refused the request's shape.
    #[error("the node refused the request: {message}")]
    BadRequest {
        /// The input field at fault, when known.
        field: Option<String>,
        /// The node's message.
        message: String,
    },
    /// `store_full`: the node's store is at its spec cap.
    #[error("the node's store is full: {message}")]
    StoreFull {
        /// The node's message.
        message: String,
    },
    /// Any other error answer. `code` is the node's stable code (or `http_<status>` when the
    /// answer had no error body).
    #[error("atrd error ({code}, HTTP {status}): {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Stable machine-readable code.
        code: String,
        /// The node's message.
        message: String,
        /// Structured details the node sent (e.g. schema violations), when any.
        details: Option<serde_json::Value>,
    },
    /// The node answered something this client cannot read (a different atrd version?).
    #[error("unexpected answer from atrd at {url}: {message}")]
    Decode {
        /// The API address.
        url: String,
        /// What could not be read.
        message: String,
    },
    /// A local file (a manifest or a schema) could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Text given as a tool id is neither an id nor the start of one.
    #[error("`{input}` is not a tool id: {message}")]
    InvalidId {
        /// What was given (cut to 80 characters).
        input: String,
        /// Why.
        message: String,
    },
    /// A short id matches several specs.
    #[error("`{prefix}` matches {count} specs; give more characters of the id")]
    AmbiguousId {
        /// The short id given.
        prefix: String,
        /// How many specs start with it.
        count: usize,
    },
    /// The node cannot run tools yet.
    #[error("invocation is not available on this node yet")]
    InvocationUnavailable,
}

impl ClientError {
    /// Maps an error answer of the node to its variant by its stable code (never its message).
    ///
    /// `unauthorized_hint` is what to tell the operator about the token when the code is
    /// `unauthorized`.
    pub fn from_api(status: u16, body: ApiErrorBody, unauthorized_hint: &str) -> Self {
        let ApiErrorBody {
            code,
            message,
            field,
            details,
        } = body;
        match code.as_str() {
            "unauthorized" => Self::Unauthorized {
                message,
                hint: unauthorized_hint.to_owned(),
            },
            "not_found" => Self::NotFound { message },
            "invalid_manifest" => Self::InvalidManifest { field, message },
            "version_exists" => Self::VersionExists { message },
            "not_revocable" => Self::NotRevocable { message },
            "bad_request" | "bad_query" | "malformed_json" => Self::BadRequest { field, message },
            "store_full" => Self::StoreFull { message },
            _ => Self::Api {
                status,
                code,
                message,
                details,
            },
        }
    }

    /// A stable code for this error: the node's code for answers from the node (`not_found`,
    /// `invalid_manifest`, …), and `unreachable`, `timeout`, `decode`, `io`, `invalid_url`,
    /// `invalid_id`, `ambiguous_id` or `invocation_unavailable` for failures on this side.
    pub fn code(&self) -> &str {
        match self {
            Self::InvalidUrl { .. } => "invalid_url",
            Self::Unreachable { .. } => "unreachable",
            Self::Timeout { .. } => "timeout",
            Self::Unauthorized { .. } => "unauthorized",
            Self::NotFound { .. } => "not_found",
            Self::InvalidManifest { .. } => "invalid_manifest",
            Self::VersionExists { .. } => "version_exists",
            Self::NotRevocable { .. } => "not_revocable",
            Self::BadRequest { .. } => "bad_request",
            Self::StoreFull { .. } => "store_full",
            Self::Api { code, .. } => code,
            Self::Decode { .. } => "decode",
            Self::Io { .. } => "io",
            Self::InvalidId { .. } => "invalid_id",
            Self::AmbiguousId { .. } => "ambiguous_id",
            Self::InvocationUnavailable => "invocation_unavailable",
        }
    }

    /// The input field at fault, when one is known.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::InvalidManifest { field, .. } | Self::BadRequest { field, .. } => field.as_deref(),
            _ => None,
        }
    }

    /// Whether the failure is the node not answering (down or too slow), as opposed to the
    /// node refusing the call.
    pub fn is_connection(&self) -> bool {
        matches!(self, Self::Unreachable { .. } | Self::Timeout { .. })
    }
}

impl From<atr_protocol::manifest::ManifestError> for ClientError {
    fn from(e: atr_protocol::manifest::ManifestError) -> Self {
        Self::InvalidManifest {
            field: e.field().map(str::to_owned),
            message: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(code: &str, field: Option<&str>) -> ApiErrorBody {
        ApiErrorBody {
            code: code.into(),
            message: "m".into(),
            field: field.map(str::to_owned),
            details: None,
        }
    }

    #[test]
    fn every_known_code_has_its_variant() {
        let hint = "h";
        assert!(matches!(
            ClientError::from_api(401, body("unauthorized", None), hint),
            ClientError::Unauthorized { .. }
        ));
        assert!(matches!(
            ClientError::from_api(404, body("not_found", None), hint),
            ClientError::NotFound { .. }
        ));
        let e = ClientError::from_api(422, body("invalid_manifest", Some("version")), hint);
        assert!(matches!(e, ClientError::InvalidManifest { .. }));
        assert_eq!(e.field(), Some("version"));
        assert!(matches!(
            ClientError::from_api(409, body("version_exists", None), hint),
            ClientError::VersionExists { .. }
        ));
        assert!(matches!(
            ClientError::from_api(403, body("not_revocable", None), hint),
            ClientError::NotRevocable { .. }
        ));
        for code in ["bad_request", "bad_query", "malformed_json"] {
            assert!(matches!(
                ClientError::from_api(400, body(code, Some("tag")), hint),
                ClientError::BadRequest { .. }
            ));
        }
        assert!(matches!(
            ClientError::from_api(507, body("store_full", None), hint),
            ClientError::StoreFull { .. }
        ));
        let e = ClientError::from_api(500, body("something_new", None), hint);
        assert_eq!(e.code(), "something_new");
    }

    #[test]
    fn messages_are_one_line_with_the_next_step() {
        let e = ClientError::from_api(401, body("unauthorized", None), "set ATR_TOKEN");
        assert_eq!(e.to_string(), "unauthorized: m — set ATR_TOKEN");
        assert!(!e.to_string().contains('\n'));
    }
}
