//! Checking a JSON value against a spec's schema, with every violation
//! reported by its JSON pointer.
//!
//! Used for tool inputs (before any container starts), tool outputs (after)
//! and manifest examples.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::limits::MAX_REPORTED_VIOLATIONS;

/// One way an instance breaks its schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// JSON pointer to the offending part of the instance (`""` is the root).
    pub pointer: String,
    /// What is wrong there.
    pub message: String,
}

/// Why an instance does not match its schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SchemaCheckError {
    /// The schema itself does not compile (should not happen for verified specs).
    #[error("schema does not compile: {0}")]
    BadSchema(String),
    /// The instance breaks the schema.
    #[error("{} violation(s): {}", .total, .violations.iter().map(|v| format!("{} {}", if v.pointer.is_empty() { "(root)" } else { &v.pointer }, v.message)).collect::<Vec<_>>().join("; "))]
    Violations {
        /// Up to [`MAX_REPORTED_VIOLATIONS`] of them.
        violations: Vec<Violation>,
        /// How many there were in all.
        total: usize,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.pointer, self.message)
    }
}

/// A compiled schema, reusable across many instances.
pub struct CompiledSchema(jsonschema::Validator);

impl CompiledSchema {
    /// Compiles a draft 2020-12 schema. External references are not fetched.
    pub fn new(schema: &serde_json::Value) -> Result<Self, SchemaCheckError> {
        jsonschema::draft202012::new(schema)
            .map(Self)
            .map_err(|e| SchemaCheckError::BadSchema(e.to_string()))
    }

    /// Checks `instance`, collecting every violation.
    pub fn check(&self, instance: &serde_json::Value) -> Result<(), SchemaCheckError> {
        let mut violations = Vec::new();
        let mut total = 0;
        for e in self.0.iter_errors(instance) {
            total += 1;
            if violations.len() < MAX_REPORTED_VIOLATIONS {
                violations.push(Violation {
                    pointer: e.instance_path().to_string(),
                    message: e.to_string(),
                });
            }
        }
        if total == 0 {
            Ok(())
        } else {
            Err(SchemaCheckError::Violations { violations, total })
        }
    }
}

/// Compiles `schema` and checks `instance` against it.
pub fn validate_input(
    schema: &serde_json::Value,
    instance: &serde_json::Value,
) -> Result<(), SchemaCheckError> {
    CompiledSchema::new(schema)?.check(instance)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reports_every_violation_with_pointer() {
        let schema = json!({"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"string"}},"required":["a","b"],"additionalProperties":false});
        assert!(validate_input(&schema, &json!({"a":1,"b":"x"})).is_ok());
        let Err(SchemaCheckError::Violations { violations, total }) =
            validate_input(&schema, &json!({"a":"one","c":true}))
        else {
            panic!("expected violations")
        };
        assert_eq!(total, 3, "{violations:?}");
        assert!(violations.iter().any(|v| v.pointer == "/a"));
        assert!(violations.iter().any(|v| v.pointer.is_empty()));
    }
}
