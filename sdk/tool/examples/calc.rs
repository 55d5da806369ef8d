//! Two tools in one binary: `calc add` and `calc div` (or `ATR_TOOL=div calc`).
//!
//! ```sh
//! echo '{"a": 1, "b": 2}' | cargo run -q -p atr-tool --example calc -- add      # 3
//! echo '{"a": 1, "b": 0}' | cargo run -q -p atr-tool --example calc -- div      # exit 2
//! cargo run -q -p atr-tool --example calc -- div --manifest
//! ```

use atr_tool::ToolError;

/// Add two integers; an overflow is an error, never a wrapped result.
///
/// # Arguments
///
/// * `a` - The first addend.
/// * `b` - The second addend.
#[atr_tool::tool(tags = ["math"], example(input = {"a": 1, "b": 2}, output = 3))]
fn add(a: i64, b: i64) -> Result<i64, ToolError> {
    a.checked_add(b)
        .ok_or_else(|| ToolError::bad_input("overflow", format!("{a} + {b} overflows 64 bits")))
}

/// Divide two numbers.
///
/// # Arguments
///
/// * `a` - The dividend.
/// * `b` - The divisor, not zero.
#[atr_tool::tool(tags = ["math"], timeout_ms = 2000, memory_mb = 16)]
async fn div(a: f64, b: f64) -> Result<f64, ToolError> {
    if b == 0.0 {
        return Err(ToolError::bad_input("division_by_zero", "b must not be 0"));
    }
    Ok(a / b)
}

atr_tool::serve![add, div];
