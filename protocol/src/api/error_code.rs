//! [`ErrorCode`]: the stable codes of the local API's error answers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident => $wire:literal,)*) => {
        /// The stable, machine-readable code of an API error ([`super::ApiErrorBody::code`]).
        ///
        /// On the wire it is a snake_case string; clients match on it, never on the message.
        /// A code this build does not know (sent by a newer node) parses to
        /// [`ErrorCode::Unknown`] with the text kept, so it never fails a decode.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)*
            /// A code this build does not know, as sent.
            Unknown(String),
        }

        impl ErrorCode {
            /// Every code this build knows (not [`ErrorCode::Unknown`]).
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code's wire text when this build knows it (for `'static` labels, e.g. a
            /// metric's); `None` for [`ErrorCode::Unknown`].
            pub fn known_str(&self) -> Option<&'static str> {
                match self {
                    $(ErrorCode::$variant => Some($wire),)*
                    ErrorCode::Unknown(_) => None,
                }
            }

            /// The code as it is written on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $(ErrorCode::$variant => $wire,)*
                    ErrorCode::Unknown(s) => s,
                }
            }
        }

        impl FromStr for ErrorCode {
            type Err = std::convert::Infallible;

            /// Never fails: an unknown code is [`ErrorCode::Unknown`].
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ok(match s {
                    $($wire => ErrorCode::$variant,)*
                    other => ErrorCode::Unknown(other.to_owned()),
                })
            }
        }
    };
}

error_codes! {
    /// 400: the request's shape or a value in it is refused.
    BadRequest => "bad_request",
    /// 400: the query string does not parse.
    BadQuery => "bad_query",
    /// 400: the `cursor` of a listing is not one this node issued (or belongs to another listing).
    InvalidCursor => "invalid_cursor",
    /// 400: the body is not the expected JSON.
    MalformedJson => "malformed_json",
    /// 413: the body is over the API's body limit.
    BodyTooLarge => "body_too_large",
    /// 415: the body was not sent as `application/json`.
    UnsupportedMediaType => "unsupported_media_type",
    /// 401: the call needs the API token, and it was missing or wrong.
    Unauthorized => "unauthorized",
    /// 403: the request's `Host` or `Origin` is not this node's (DNS rebinding, a web page).
    ForbiddenOrigin => "forbidden_origin",
    /// 404: no such spec or endpoint.
    NotFound => "not_found",
    /// 422: the manifest breaks a rule.
    InvalidManifest => "invalid_manifest",
    /// 409: this node already published another spec with this name and version.
    VersionExists => "version_exists",
    /// 403: the target is unknown or was not published by this node.
    NotRevocable => "not_revocable",
    /// 403: the tool to delegate is unknown or was not published by this node.
    NotDelegable => "not_delegable",
    /// 507: the store is at its spec cap.
    StoreFull => "store_full",
    /// 409: a name that several publishers use.
    AmbiguousName => "ambiguous_name",
    /// 410: the tool was revoked by its publisher.
    Revoked => "revoked",
    /// 422 (or 502 from a provider): the input breaks the tool's input schema.
    InvalidInput => "invalid_input",
    /// 502: no provider could run the tool.
    NoProvider => "no_provider",
    /// 502: the provider does not allow this node to invoke.
    Denied => "denied",
    /// 502: the provider refused for another reason.
    Refused => "refused",
    /// 404: this node does not provide that spec.
    NotProvided => "not_provided",
    /// 409: the operation does not apply to this node's own spec.
    OwnSpec => "own_spec",
    /// 409: the sandbox is switched off on this node.
    SandboxOff => "sandbox_off",
    /// 409: the image the spec pins is not on this node.
    ImageMissing => "image_missing",
    /// 409 (422 at publish): the image's own configuration is refused (e.g. too many volumes).
    ImageRefused => "image_refused",
    /// 409: the trust list holds [`crate::trust::MAX_TRUSTED`] publishers already.
    TrustListFull => "trust_list_full",
    /// 409: the publisher is trusted by the config file, which the API does not edit.
    TrustedInConfig => "trusted_in_config",
    /// 500: a fault inside the node.
    Internal => "internal",
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for ErrorCode {
    fn from(s: &str) -> Self {
        match s.parse() {
            Ok(c) => c,
            Err(never) => match never {},
        }
    }
}

impl PartialEq<str> for ErrorCode {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(ErrorCode::from(s.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_as_text_and_json() {
        for code in ErrorCode::ALL {
            let text = code.as_str();
            assert!(
                text.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{text}"
            );
            assert_eq!(text.parse::<ErrorCode>().unwrap(), *code);
            assert_eq!(code.to_string(), text);
            assert_eq!(code.known_str(), Some(text));
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(json, format!("\"{text}\""));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), *code);
        }
        let mut seen: Vec<&str> = ErrorCode::ALL.iter().map(ErrorCode::as_str).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), ErrorCode::ALL.len(), "two variants share a code");
    }

    /// Wire strings clients already match on; changing one breaks them.
    #[test]
    fn guard_and_image_codes_are_stable() {
        assert_eq!(ErrorCode::ForbiddenOrigin.as_str(), "forbidden_origin");
        assert_eq!(ErrorCode::ImageRefused.as_str(), "image_refused");
        assert_eq!(
            serde_json::from_str::<ErrorCode>("\"forbidden_origin\"").unwrap(),
            ErrorCode::ForbiddenOrigin
        );
    }

    #[test]
    fn an_unknown_code_from_a_newer_node_is_kept() {
        let code: ErrorCode = serde_json::from_str("\"quota_exceeded\"").unwrap();
        assert_eq!(code, ErrorCode::Unknown("quota_exceeded".into()));
        assert_eq!(code.as_str(), "quota_exceeded");
        assert_eq!(code.known_str(), None);
        assert_eq!(serde_json::to_string(&code).unwrap(), "\"quota_exceeded\"");
    }
}
