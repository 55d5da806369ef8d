//! [`ToolError`]: why a tool produced no output.

use std::borrow::Cow;
use std::fmt;

use serde_json::{Value, json};

use crate::runtime::{EXIT_BAD_INPUT, EXIT_TOOL_FAILURE};

/// Whose fault a [`ToolError`] is; decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input was refused: exit code [`EXIT_BAD_INPUT`] (2).
    BadInput,
    /// The tool failed on a valid input: exit code [`EXIT_TOOL_FAILURE`] (1).
    Failed,
}

/// Why a tool produced no output: a stable machine-readable `code` and a message for people,
/// written to stderr as `{"error": {"code": ..., "message": ...}}`.
///
/// Any `std::error::Error` converts into one (code `tool_error`, the message its chain of
/// causes), so `?` works in a tool returning `Result<T, ToolError>`. For that reason
/// `ToolError` itself does not implement `std::error::Error` (as `anyhow::Error` does not).
#[derive(Clone, PartialEq, Eq)]
pub struct ToolError {
    kind: ErrorKind,
    code: Cow<'static, str>,
    message: String,
}

impl ToolError {
    /// The input was refused (exit code 2), e.g. `ToolError::bad_input("division_by_zero", "b is 0")`.
    pub fn bad_input(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::BadInput,
            code: code.into(),
            message: message.into(),
        }
    }

    /// The tool failed on a valid input (exit code 1).
    pub fn failed(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Failed,
            code: code.into(),
            message: message.into(),
        }
    }

    /// Whose fault it is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The stable code, e.g. `invalid_input`.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The message for people.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The process exit code: 2 for [`ErrorKind::BadInput`], 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self.kind {
            ErrorKind::BadInput => EXIT_BAD_INPUT,
            ErrorKind::Failed => EXIT_TOOL_FAILURE,
        }
    }

    /// `{"error": {"code": ..., "message": ...}}`, as written to stderr.
    pub fn to_json(&self) -> Value {
        json!({"error": {"code": self.code, "message": self.message}})
    }
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl fmt::Debug for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToolError")
            .field("kind", &self.kind)
            .field("code", &self.code)
            .field("message", &self.message)
            .finish()
    }
}

impl<E: std::error::Error> From<E> for ToolError {
    fn from(e: E) -> Self {
        let mut message = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        Self::failed("tool_error", message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn std_errors_convert_with_their_causes() {
        fn parse(s: &str) -> Result<i64, ToolError> {
            Ok(s.parse::<i64>()?)
        }
        let e = parse("x").unwrap_err();
        assert_eq!(e.code(), "tool_error");
        assert_eq!(e.exit_code(), 1);
        assert_eq!(e.message(), "invalid digit found in string");
        let io = std::io::Error::other("disk on fire");
        assert_eq!(ToolError::from(io).message(), "disk on fire");
    }

    #[test]
    fn shape_and_exit_codes() {
        let e = ToolError::bad_input("division_by_zero", "b is 0");
        assert_eq!(
            e.to_json(),
            json!({"error": {"code": "division_by_zero", "message": "b is 0"}})
        );
        assert_eq!(e.exit_code(), 2);
        assert_eq!(e.to_string(), "division_by_zero: b is 0");
    }
}
