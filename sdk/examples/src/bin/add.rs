//! `add`: the sum of two 64-bit signed integers; an overflow is refused (code `overflow`)
//! instead of wrapping.
//!
//! Written with the atr-tool SDK: the input and output schemas and `manifests/add.toml`
//! (`add --manifest`) are derived from this function (`tests/sdk_manifests.rs` checks it).

use atr_tool::ToolError;

/// Add two 64-bit signed integers. An overflow is an error, never a wrapped result.
#[atr_tool::tool(
    version = "1.0.0",
    tags = ["math", "demo"],
    cost = "free",
    homepage = "https://github.com/atr-net/atr",
    timeout_ms = 5000,
    memory_mb = 16,
    cpus = 0.25,
    pids = 4,
    max_output_bytes = 64,
    example(input = {"a": 1, "b": 2}, output = 3),
    example(input = {"a": -7, "b": 4}, output = -3),
)]
fn add(a: i64, b: i64) -> Result<i64, ToolError> {
    a.checked_add(b).ok_or_else(|| {
        ToolError::bad_input(
            "overflow",
            format!("{a} + {b} is outside the 64-bit signed range"),
        )
    })
}

atr_tool::main!(add);

#[cfg(test)]
mod tests {
    use super::*;
    use atr_tool::Tool;
    use serde_json::json;

    #[test]
    fn adds() {
        assert_eq!(AddTool.call(json!({"a": 1, "b": 2})).unwrap(), json!(3));
        assert_eq!(AddTool.call(json!({"a": -5, "b": 2})).unwrap(), json!(-3));
        assert_eq!(add(i64::MIN, i64::MAX).unwrap(), -1);
    }

    #[test]
    fn refuses_overflow_and_non_integers() {
        assert_eq!(add(i64::MAX, 1).unwrap_err().code(), "overflow");
        assert_eq!(add(i64::MIN, -1).unwrap_err().code(), "overflow");
        for bad in [
            json!({"a": 1.5, "b": 1}),
            json!({"a": u64::MAX, "b": 0}),
            json!({"a": "1", "b": 2}),
            json!({"a": 1}),
            json!({"a": 1, "b": 2, "c": 3}),
            json!([1, 2]),
        ] {
            assert_eq!(
                AddTool.call(bad.clone()).unwrap_err().code(),
                "invalid_input",
                "{bad}"
            );
        }
    }

    #[test]
    fn is_a_valid_tool() {
        atr_tool::testing::assert_valid(&AddTool);
    }
}
