//! Shared fixtures: a realistic manifest and specs from fixed seeds.

use atr_protocol::{Manifest, SecretKey, SignedSpec, ToolSpec};

pub(crate) const DIGEST: &str = "sha256:3f1a2b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708";
pub(crate) const CREATED: u64 = 1_764_000_000_000;

/// A realistic manifest: about 2 KiB of canonical spec.
pub(crate) const CALCULATOR_TOML: &str = r#"
name = "calculator"
version = "1.2.0"
description = "Evaluate an arithmetic expression safely: + - * / ^ %, parentheses, and the functions sqrt, abs, min, max, round. No variables, no code."
tags = ["math", "Calculator", "math"]
side_effects = ["none"]
cost = "free"
homepage = "https://github.com/atr-net/atr"
license = "MIT"

[input_schema]
type = "object"
additionalProperties = false
required = ["expression"]
[input_schema.properties.expression]
type = "string"
description = "The expression, e.g. `2 * (3 + 4)`."
minLength = 1
maxLength = 1000
[input_schema.properties.precision]
type = "integer"
description = "Digits after the decimal point in the result."
minimum = 0
maximum = 15
default = 6
[input_schema.properties.angle_unit]
type = "string"
description = "Unit of angles for trigonometric functions."
enum = ["radians", "degrees"]
default = "radians"
[input_schema.properties.variables]
type = "object"
description = "Named constants usable in the expression, e.g. {\"x\": 2}. Names are ASCII letters only."
additionalProperties = { type = "number" }
maxProperties = 32
[input_schema.properties.max_steps]
type = "integer"
description = "Evaluation budget; expressions needing more steps are refused instead of running long."
minimum = 1
maximum = 100000
default = 10000

[output_schema]
type = "object"
required = ["result"]
[output_schema.properties.result]
type = "number"
description = "The value of the expression."
[output_schema.properties.steps]
type = "integer"
description = "Evaluation steps used."

[runtime]
image = "atr-example-tools:latest"
command = ["/bin/calculator"]

[limits]
timeout_ms = 5000
memory_mb = 64
cpus = 0.5
pids = 8
max_output_bytes = 65536

[[examples]]
input = { expression = "2 * (3 + 4)" }
output = { result = 14 }

[[examples]]
input = { expression = "sqrt(2)", precision = 3 }
output = { result = 1.414 }

[[examples]]
input = { expression = "x ^ 2 + 1", variables = { x = 3 } }
output = { result = 10 }
"#;

pub(crate) fn key(seed: u8) -> SecretKey {
    SecretKey::from_seed(&[seed; 32])
}

pub(crate) fn manifest() -> Manifest {
    Manifest::from_toml(CALCULATOR_TOML, "calculator.toml").expect("fixture manifest parses")
}

pub(crate) fn spec(seed: u8) -> ToolSpec {
    manifest()
        .to_spec("calculator.toml", key(seed).public(), CREATED, Some(DIGEST))
        .expect("fixture manifest is valid")
}

pub(crate) fn signed(seed: u8) -> SignedSpec {
    SignedSpec::sign(spec(seed), &key(seed)).expect("fixture signs")
}
