//! `echo`: returns its input unchanged. The smallest tool, for round-trip and
//! latency tests of the sandbox.

use std::process::ExitCode;

use atr_example_tools::{ToolError, run};
use serde_json::Value;

fn main() -> ExitCode {
    run(echo)
}

fn echo(input: Value) -> Result<Value, ToolError> {
    Ok(input)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn returns_input() {
        let v = json!({"message": "hi", "n": [1, 2.5, null]});
        assert_eq!(echo(v.clone()).unwrap(), v);
    }
}
