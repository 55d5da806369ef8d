//! `add`: the sum of two 64-bit signed integers. Input `{"a": int, "b": int}`,
//! output the integer `a + b`; an overflow is refused (code `overflow`)
//! instead of wrapping.

use std::process::ExitCode;

use atr_example_tools::{ToolError, parse, run};
use serde::Deserialize;
use serde_json::Value;

fn main() -> ExitCode {
    run(add)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    a: i64,
    b: i64,
}

fn add(input: Value) -> Result<Value, ToolError> {
    let Input { a, b } = parse(input)?;
    a.checked_add(b).map(Value::from).ok_or_else(|| {
        ToolError::bad_input(
            "overflow",
            format!("{a} + {b} is outside the 64-bit signed range"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn adds() {
        assert_eq!(add(json!({"a": 1, "b": 2})).unwrap(), json!(3));
        assert_eq!(add(json!({"a": -5, "b": 2})).unwrap(), json!(-3));
        assert_eq!(add(json!({"a": i64::MIN, "b": i64::MAX})).unwrap(), json!(-1));
    }

    #[test]
    fn refuses_overflow_and_non_integers() {
        assert_eq!(
            add(json!({"a": i64::MAX, "b": 1})).unwrap_err().code(),
            "overflow"
        );
        assert_eq!(
            add(json!({"a": i64::MIN, "b": -1})).unwrap_err().code(),
            "overflow"
        );
        for bad in [
            json!({"a": 1.5, "b": 1}),
            json!({"a": u64::MAX, "b": 0}),
            json!({"a": "1", "b": 2}),
            json!({"a": 1}),
            json!({"a": 1, "b": 2, "c": 3}),
            json!([1, 2]),
        ] {
            assert_eq!(add(bad.clone()).unwrap_err().code(), "invalid_input", "{bad}");
        }
    }
}
