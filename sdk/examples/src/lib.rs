//! # atr-example-tools
//!
//! Example atr tools, each one static binary in `src/bin/` packaged under
//! `/bin/<tool>` in the `FROM scratch` image `atr-example-tools:latest`
//! (`atr-testnet tools-image` builds it). Their manifests are in `manifests/`.
//!
//! `add`, `hash` and `text_stats` are written with the atr-tool SDK
//! (`#[atr_tool::tool]`, `sdk/tool`): their schemas and manifests are derived
//! from their signatures (`tests/sdk_manifests.rs` checks the files). The others
//! take raw JSON, the hostile ones on purpose, and run under the SDK's runtime
//! too ([`run`] is `atr_tool::run_json`); this library adds what they share
//! ([`parse`], [`number`]).
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

use serde::de::DeserializeOwned;
use serde_json::Value;

pub mod http;

pub use atr_tool::run_json as run;
pub use atr_tool::{EXIT_BAD_INPUT, EXIT_TOOL_FAILURE, ErrorKind, MAX_INPUT_BYTES, ToolError, read_input};

/// Largest magnitude below which an integral `f64` is written as a JSON
/// integer (2^53: every integer up to it is exact in an `f64`).
const MAX_EXACT_INTEGER: f64 = 9_007_199_254_740_992.0;

/// Writes `error` as JSON to stderr and returns its exit code (for tools that write their
/// output themselves instead of going through [`run`]).
pub fn report(error: &ToolError) -> std::process::ExitCode {
    use std::io::Write;
    let mut stderr = std::io::stderr().lock();
    // Nothing better can be done if stderr is gone too: the exit code still tells.
    let _ = serde_json::to_writer(&mut stderr, &error.to_json());
    let _ = stderr.write_all(b"\n");
    std::process::ExitCode::from(error.exit_code())
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
    use serde_json::json;

    #[test]
    fn parse_refuses_non_objects_and_wrong_shapes() {
        #[derive(serde::Deserialize, Debug)]
        struct In {
            #[allow(dead_code)]
            a: i64,
        }
        assert_eq!(parse::<In>(json!([1])).unwrap_err().code(), "invalid_input");
        assert_eq!(
            parse::<In>(json!({"a": "x"})).unwrap_err().code(),
            "invalid_input"
        );
        assert_eq!(parse::<In>(json!({"a": 1})).unwrap().a, 1);
    }

    #[test]
    fn numbers_are_integers_when_exact() {
        assert_eq!(number(14.0).unwrap(), json!(14));
        assert_eq!(number(-0.0).unwrap(), json!(0));
        assert_eq!(number(1.5).unwrap(), json!(1.5));
        assert_eq!(number(1e300).unwrap(), json!(1e300));
        assert_eq!(number(f64::INFINITY).unwrap_err().code(), "not_finite");
        assert_eq!(number(f64::NAN).unwrap_err().code(), "not_finite");
        assert_eq!(number(f64::NAN).unwrap_err().exit_code(), EXIT_BAD_INPUT);
    }
}
