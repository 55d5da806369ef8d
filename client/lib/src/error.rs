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

use atr_protocol::api::{ApiErrorBody, ErrorCode, InvokeAttempt};
use atr_protocol::input::Violation;

/// Most provider attempts a `no_provider` error keeps (the node tries at most a few).
pub const MAX_ATTEMPTS_SHOWN: usize = 16;

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
    #[error(
        "`{prefix}` matches {}{} specs ({}{}); give more characters of the id",
        matches.len(),
        if *more { "+" } else { "" },
        matches.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
        if *more { ", …" } else { "" }
    )]
    AmbiguousId {
        /// The short id given.
        prefix: String,
        /// Some of the ids that start with it (at most
        /// [`atr_protocol::api::MAX_PREFIX_MATCHES`]).
        matches: Vec<atr_protocol::ToolId>,
        /// Whether more ids match than are listed.
        more: bool,
    },
    /// The node cannot run tools yet.
    #[error("invocation is not available on this node yet")]
    InvocationUnavailable,
    /// `invalid_input`: the input breaks the tool's input schema (checked by the node before
    /// any container starts, or by the provider).
    #[error("{message}")]
    InvalidInput {
        /// The node's message (one line, naming every reported violation).
        message: String,
        /// Each violation with its JSON pointer into the input (empty when the provider,
        /// not this node, refused the input).
        violations: Vec<Violation>,
        /// How many violations there were in all (`violations` holds at most 32).
        total: usize,
    },
    /// `revoked`: the tool was revoked by its publisher and is never invoked.
    #[error("{message}")]
    Revoked {
        /// The node's message.
        message: String,
    },
    /// `ambiguous_name`: the name is published by several publishers.
    #[error("{message} — pass --publisher or the tool id")]
    AmbiguousName {
        /// The node's message.
        message: String,
    },
    /// `no_provider`: no provider could run the tool (each attempt is listed).
    #[error("{message}")]
    NoProvider {
        /// The node's message, summarizing the attempts.
        message: String,
        /// What each provider tried answered, in order.
        attempts: Vec<InvokeAttempt>,
    },
    /// The invocation's receipt does not prove the answer: it does not decode or verify, or it
    /// does not bind the tool, input, output or provider the node reported.
    #[error("the receipt does not verify: {message}")]
    BadReceipt {
        /// What does not match.
        message: String,
    },
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
        // The message may carry a provider's refusal detail or a tool's text: capped at
        // `MAX_SHOWN_REMOTE_TEXT` and made inert here, once, for every caller.
        let message = atr_protocol::text::shown(&message);
        let field = field.map(|f| atr_protocol::text::shown(&f));
        match code {
            ErrorCode::Unauthorized => Self::Unauthorized {
                message,
                hint: unauthorized_hint.to_owned(),
            },
            ErrorCode::NotFound => Self::NotFound { message },
            ErrorCode::InvalidManifest => Self::InvalidManifest { field, message },
            ErrorCode::VersionExists => Self::VersionExists { message },
            ErrorCode::NotRevocable => Self::NotRevocable { message },
            ErrorCode::BadRequest | ErrorCode::BadQuery | ErrorCode::MalformedJson => {
                Self::BadRequest { field, message }
            }
            ErrorCode::StoreFull => Self::StoreFull { message },
            ErrorCode::InvalidInput => {
                let (violations, total) = details.as_ref().map(violations_of).unwrap_or_default();
                Self::InvalidInput {
                    message,
                    violations,
                    total,
                }
            }
            ErrorCode::Revoked => Self::Revoked { message },
            ErrorCode::AmbiguousName => Self::AmbiguousName { message },
            ErrorCode::NoProvider => Self::NoProvider {
                message,
                attempts: details
                    .and_then(|d| serde_json::from_value::<Vec<InvokeAttempt>>(d).ok())
                    .unwrap_or_default()
                    .into_iter()
                    .take(MAX_ATTEMPTS_SHOWN)
                    .map(|a| InvokeAttempt {
                        provider: atr_protocol::text::shown(&a.provider),
                        outcome: atr_protocol::text::shown(&a.outcome),
                    })
                    .collect(),
            },
            code => Self::Api {
                status,
                code: code.to_string(),
                message,
                details,
            },
        }
    }

    /// A stable code for this error: the node's code for answers from the node (`not_found`,
    /// `invalid_manifest`, …), and `unreachable`, `timeout`, `decode`, `io`, `invalid_url`,
    /// `invalid_id`, `ambiguous_id`, `bad_receipt` or `invocation_unavailable` for failures on
    /// this side.
    pub fn code(&self) -> &str {
        match self {
            Self::InvalidUrl { .. } => "invalid_url",
            Self::Unreachable { .. } => "unreachable",
            Self::Timeout { .. } => "timeout",
            Self::Unauthorized { .. } => ErrorCode::Unauthorized.as_str(),
            Self::NotFound { .. } => ErrorCode::NotFound.as_str(),
            Self::InvalidManifest { .. } => ErrorCode::InvalidManifest.as_str(),
            Self::VersionExists { .. } => ErrorCode::VersionExists.as_str(),
            Self::NotRevocable { .. } => ErrorCode::NotRevocable.as_str(),
            Self::BadRequest { .. } => ErrorCode::BadRequest.as_str(),
            Self::StoreFull { .. } => ErrorCode::StoreFull.as_str(),
            Self::Api { code, .. } => code,
            Self::Decode { .. } => "decode",
            Self::Io { .. } => "io",
            Self::InvalidId { .. } => "invalid_id",
            Self::AmbiguousId { .. } => "ambiguous_id",
            Self::InvocationUnavailable => "invocation_unavailable",
            Self::InvalidInput { .. } => ErrorCode::InvalidInput.as_str(),
            Self::Revoked { .. } => ErrorCode::Revoked.as_str(),
            Self::AmbiguousName { .. } => ErrorCode::AmbiguousName.as_str(),
            Self::NoProvider { .. } => ErrorCode::NoProvider.as_str(),
            Self::BadReceipt { .. } => "bad_receipt",
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

/// The violations in an `invalid_input` answer's details: the node sends its schema check
/// error, `{"Violations": {"violations": [...], "total": n}}`; a bare list is accepted too.
fn violations_of(details: &serde_json::Value) -> (Vec<Violation>, usize) {
    let inner = details.get("Violations").unwrap_or(details);
    let list = inner.get("violations").unwrap_or(inner);
    let violations: Vec<Violation> = serde_json::from_value(list.clone()).unwrap_or_default();
    let total = inner
        .get("total")
        .and_then(serde_json::Value::as_u64)
        .map_or(violations.len(), |t| usize::try_from(t).unwrap_or(usize::MAX));
    let total = total.max(violations.len());
    (violations, total)
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
            code: ErrorCode::from(code),
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
        assert!(matches!(
            ClientError::from_api(410, body("revoked", None), hint),
            ClientError::Revoked { .. }
        ));
        assert!(matches!(
            ClientError::from_api(409, body("ambiguous_name", Some("name")), hint),
            ClientError::AmbiguousName { .. }
        ));
    }

    /// Every code the protocol defines keeps its text through the client (only the two
    /// request-shape codes fold into `bad_request`), and an unknown one is kept as sent.
    #[test]
    fn every_protocol_code_is_kept() {
        for code in ErrorCode::ALL {
            let e = ClientError::from_api(400, body(code.as_str(), None), "h");
            let expected = match code {
                ErrorCode::BadQuery | ErrorCode::MalformedJson => "bad_request",
                other => other.as_str(),
            };
            assert_eq!(e.code(), expected, "{code}");
        }
    }

    #[test]
    fn invocation_errors_keep_their_details() {
        // As the node sends them: the schema check error, serialized.
        let schema_error = atr_protocol::input::SchemaCheckError::Violations {
            violations: vec![Violation {
                pointer: "/a".into(),
                message: "\"x\" is not of type \"integer\"".into(),
            }],
            total: 40,
        };
        let mut b = body("invalid_input", Some("input"));
        b.details = serde_json::to_value(&schema_error).ok();
        let ClientError::InvalidInput {
            violations, total, ..
        } = ClientError::from_api(422, b, "h")
        else {
            panic!("not InvalidInput")
        };
        assert_eq!(violations[0].pointer, "/a");
        assert_eq!(total, 40);
        // A provider's refusal carries no details.
        let e = ClientError::from_api(502, body("invalid_input", None), "h");
        assert!(
            matches!(&e, ClientError::InvalidInput { violations, total: 0, .. } if violations.is_empty())
        );

        let mut b = body("no_provider", None);
        b.details = Some(serde_json::json!([
            {"provider": "12D3KooWself", "outcome": "refused: busy"},
            {"provider": "12D3KooWabc", "outcome": "timeout"}
        ]));
        let ClientError::NoProvider { attempts, .. } = ClientError::from_api(502, b, "h") else {
            panic!("not NoProvider")
        };
        assert_eq!(attempts.len(), 2);
        assert_eq!(attempts[1].outcome, "timeout");
    }

    #[test]
    fn messages_are_one_line_with_the_next_step() {
        let e = ClientError::from_api(401, body("unauthorized", None), "set ATR_TOKEN");
        assert_eq!(e.to_string(), "unauthorized: m — set ATR_TOKEN");
        assert!(!e.to_string().contains('\n'));
    }
}
