//! # atr-example-tools
//!
//! Example atr tools, each one static binary in `src/bin/` packaged under
//! `/bin/<tool>` in the `FROM scratch` image `atr-example-tools:latest`
//! (`atr-testnet tools-image` builds it). Their manifests are in `manifests/`.
//!
//! `add`, `hash` and `text_stats` are written with the atr-tool SDK
//! (`#[atr_tool::tool]`, `sdk/tool`): their schemas and manifests are derived
//! from their signatures (`tests/sdk_manifests.rs` checks the files). The others
//! take raw JSON, the hostile ones on purpose; this library is what they share:
//! the stdin/stdout contract of an atr tool, implemented by [`run`] (the same
//! contract the SDK's runtime implements).
//!
//! - **stdin**: one JSON value, the input, at most [`MAX_INPUT_BYTES`].
//! - **stdout**: one JSON value, the output, followed by a newline.
//! - **failure**: nothing on stdout; `{"error": {"code": "...", "message": "..."}}` on
//!   stderr and exit code [`EXIT_BAD_INPUT`] when the input is at fault,
//!   [`EXIT_TOOL_FAILURE`] otherwise ([`ToolError`]).
//!
//! Tools come in two kinds. The safe ones (`calculator`, `datetime`,
//! `json_query`, `text_stats`, `hash`, `echo`, `add`) bound every loop and
//! allocation by their input. The hostile ones (`fork_bomb`, `memory_hog`,
//! `disk_filler`, `output_flood`, `network_probe`, `sleeper`) exist to test the
//! sandbox: each attacks one limit and stops itself after a bound, so it is
//! harmless outside a sandbox only in that sense.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![deny(missing_docs, rustdoc::broken_intra_doc_links)]

use std::fmt;
use std::io::{self, Read, Write};
use std::process::ExitCode;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// Largest input read from stdin, in bytes (1 MiB): the protocol's cap on one
/// invocation's input (`atr_protocol::limits::MAX_INPUT_BYTES`), so a tool
/// never reads more than a node would accept.
pub const MAX_INPUT_BYTES: usize = 1024 * 1024;

/// Exit code of a tool that failed for a reason other than its input.
pub const EXIT_TOOL_FAILURE: u8 = 1;

/// Exit code of a tool that refused its input.
pub const EXIT_BAD_INPUT: u8 = 2;

/// Largest magnitude below which an integral `f64` is written as a JSON
/// integer (2^53: every integer up to it is exact in an `f64`).
const MAX_EXACT_INTEGER: f64 = 9_007_199_254_740_992.0;

/// Whose fault a [`ToolError`] is; decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input was refused: exit code [`EXIT_BAD_INPUT`].
    BadInput,
    /// The tool failed on a valid input: exit code [`EXIT_TOOL_FAILURE`].
    Failed,
}

/// Why a tool produced no output: a stable machine-readable `code` plus a
/// message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolError {
    kind: ErrorKind,
    code: &'static str,
    message: String,
}

impl ToolError {
    /// The input was refused (exit code [`EXIT_BAD_INPUT`]).
    pub fn bad_input(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::BadInput,
            code,
            message: message.into(),
        }
    }

    /// The tool failed on a valid input (exit code [`EXIT_TOOL_FAILURE`]).
    pub fn failed(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Failed,
            code,
            message: message.into(),
        }
    }

    /// Whose fault it is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The stable error code, e.g. `division_by_zero`.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The message for people.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self.kind {
            ErrorKind::BadInput => EXIT_BAD_INPUT,
            ErrorKind::Failed => EXIT_TOOL_FAILURE,
        }
    }

    /// The JSON object written to stderr: `{"error": {"code": ..., "message": ...}}`.
    pub fn to_json(&self) -> Value {
        json!({ "error": { "code": self.code, "message": self.message } })
    }
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ToolError {}

/// Runs `tool` under the stdin/stdout contract: reads and parses stdin, calls
/// `tool`, writes its output to stdout or its error to stderr, and returns the
/// exit code. A binary's `main` is `run(my_tool)`.
pub fn run(tool: fn(Value) -> Result<Value, ToolError>) -> ExitCode {
    let output = read_input(&mut io::stdin().lock()).and_then(tool);
    match output.and_then(|v| write_output(&mut io::stdout().lock(), &v)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(&e),
    }
}

/// Reads one JSON value of at most [`MAX_INPUT_BYTES`] from `r`. The size is
/// checked before parsing; serde_json bounds the nesting (128 levels).
pub fn read_input(r: &mut impl Read) -> Result<Value, ToolError> {
    let mut buf = Vec::new();
    r.take(MAX_INPUT_BYTES as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| ToolError::failed("stdin_failed", format!("could not read stdin: {e}")))?;
    if buf.len() > MAX_INPUT_BYTES {
        return Err(ToolError::bad_input(
            "input_too_large",
            format!("the input is over the {MAX_INPUT_BYTES}-byte limit"),
        ));
    }
    serde_json::from_slice(&buf)
        .map_err(|e| ToolError::bad_input("invalid_json", format!("the input is not one JSON value: {e}")))
}

/// Writes `value` and a newline to `w` and flushes it.
pub fn write_output(w: &mut impl Write, value: &Value) -> Result<(), ToolError> {
    let write = |w: &mut dyn Write| -> io::Result<()> {
        serde_json::to_writer(&mut *w, value)?;
        w.write_all(b"\n")?;
        w.flush()
    };
    write(w).map_err(|e| ToolError::failed("stdout_failed", format!("could not write the output: {e}")))
}

/// Writes `error` as JSON to stderr and returns its exit code.
pub fn report(error: &ToolError) -> ExitCode {
    let mut stderr = io::stderr().lock();
    // Nothing better can be done if stderr is gone too: the exit code still tells.
    let _ = serde_json::to_writer(&mut stderr, &error.to_json());
    let _ = stderr.write_all(b"\n");
    ExitCode::from(error.exit_code())
}

/// Deserializes a tool's typed input, refusing it with code `invalid_input`
/// and serde's message (which names the field) when it has the wrong shape.
/// The input must be a JSON object, as every atr input schema says (serde
/// alone would also accept an array for a struct).
pub fn parse<T: DeserializeOwned>(input: Value) -> Result<T, ToolError> {
    if !input.is_object() {
        return Err(ToolError::bad_input(
            "invalid_input",
            "the input must be a JSON object",
        ));
    }
    serde_json::from_value(input).map_err(|e| ToolError::bad_input("invalid_input", e.to_string()))
}

/// A JSON number for `x`: an integer when `x` is integral and exact (so `14.0`
/// is written `14`), a float otherwise. JSON has no NaN or infinity, so those
/// fail with code `not_finite`.
pub fn number(x: f64) -> Result<Value, ToolError> {
    if !x.is_finite() {
        return Err(ToolError::bad_input(
            "not_finite",
            format!("the result {x} is not a finite number"),
        ));
    }
    if x.fract() == 0.0 && x.abs() < MAX_EXACT_INTEGER {
        // Exact: |x| < 2^53 and integral.
        return Ok(Value::from(x as i64));
    }
    Ok(Value::from(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_one_value() {
        assert_eq!(read_input(&mut &b" {\"a\": 1}\n"[..]).unwrap(), json!({"a": 1}));
    }

    #[test]
    fn refuses_oversized_input_before_parsing() {
        let big = vec![b' '; MAX_INPUT_BYTES + 1];
        let e = read_input(&mut &big[..]).unwrap_err();
        assert_eq!(e.code(), "input_too_large");
        assert_eq!(e.exit_code(), EXIT_BAD_INPUT);
    }

    #[test]
    fn refuses_bad_json_and_trailing_values() {
        for bad in [&b""[..], b"{", b"1 2", b"nul"] {
            assert_eq!(read_input(&mut &bad[..]).unwrap_err().code(), "invalid_json");
        }
    }

    #[test]
    fn refuses_nesting_past_serde_limit() {
        let deep = "[".repeat(10_000);
        assert_eq!(
            read_input(&mut deep.as_bytes()).unwrap_err().code(),
            "invalid_json"
        );
    }

    #[test]
    fn error_json_shape_and_exit_codes() {
        let e = ToolError::failed("x", "y");
        assert_eq!(e.to_json(), json!({"error": {"code": "x", "message": "y"}}));
        assert_eq!(e.exit_code(), EXIT_TOOL_FAILURE);
    }

    #[test]
    fn numbers_are_integers_when_exact() {
        assert_eq!(number(14.0).unwrap(), json!(14));
        assert_eq!(number(-0.0).unwrap(), json!(0));
        assert_eq!(number(1.5).unwrap(), json!(1.5));
        assert_eq!(number(1e300).unwrap(), json!(1e300));
        assert_eq!(number(f64::INFINITY).unwrap_err().code(), "not_finite");
        assert_eq!(number(f64::NAN).unwrap_err().code(), "not_finite");
    }

    #[test]
    fn output_is_one_line() {
        let mut out = Vec::new();
        write_output(&mut out, &json!({"result": 3})).unwrap();
        assert_eq!(out, b"{\"result\":3}\n");
    }
}
