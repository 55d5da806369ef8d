//! The tool spec: what a publisher signs and every node verifies.
//!
//! A [`ToolSpec`] is a normalized [`crate::Manifest`] plus the publisher key,
//! the creation time and the pinned image digest. Its canonical CBOR bytes
//! are hashed into its [`crate::ToolId`] and signed into a [`SignedSpec`].
//! Sets (tags, side effects) are sorted and unique, so two equal specs have
//! one encoding.

use serde::{Deserialize, Serialize};

use crate::key::PublicKey;
use crate::limits;
use crate::signed::{Signed, SignedBody};
use crate::validate::{self, ValidationError};

/// The spec format this crate writes and reads.
pub const SPEC_FORMAT: u64 = 1;

/// Domain separation prefix of spec signatures.
pub const SPEC_SIGNING_PREFIX: &[u8] = b"atr-spec-v1";

/// A signed, verified tool spec. Its [`Signed::hash`] is the [`crate::ToolId`].
pub type SignedSpec = Signed<ToolSpec>;

/// A tool, as published. Immutable: a new version is a new spec with a new id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolSpec {
    /// Format version, [`SPEC_FORMAT`].
    pub v: u64,
    /// Tool name, `^[a-zA-Z0-9_-]{1,64}$` (a legal OpenAI/Anthropic name).
    pub name: String,
    /// Semantic version.
    pub version: semver::Version,
    /// What the tool does, for agents and people.
    pub description: String,
    /// Sorted, unique tags, each `^[a-z0-9][a-z0-9-]{0,31}$`.
    pub tags: Vec<String>,
    /// JSON Schema (draft 2020-12) of the input; its root is `type: object`.
    pub input_schema: serde_json::Value,
    /// JSON Schema of the output, if declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<serde_json::Value>,
    /// How to run it.
    pub runtime: Runtime,
    /// Resource limits applied to every invocation.
    pub limits: Limits,
    /// Sorted, unique side effects; `[none]` alone when it has none.
    pub side_effects: Vec<SideEffect>,
    /// Declared permissions (egress, secrets, scratch, output dir); with [`Self::limits`]
    /// they are the enforced [`crate::policy::Policy`]. Skipped when empty, so specs from
    /// before permissions keep their encoding and id.
    #[serde(default, skip_serializing_if = "crate::policy::Permissions::is_empty")]
    pub permissions: crate::policy::Permissions,
    /// Cost hint.
    pub cost: Cost,
    /// Project homepage (http or https URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
    /// SPDX license expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// Example calls with their expected output.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<Example>,
    /// The publisher: the signing node's ed25519 key.
    pub publisher: PublicKey,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at_ms: u64,
}

impl ToolSpec {
    /// `name@version`, for messages.
    pub fn label(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// Whether the tool has no side effects beyond reading.
    pub fn is_read_only(&self) -> bool {
        self.side_effects
            .iter()
            .all(|s| matches!(s, SideEffect::None | SideEffect::Reads))
    }
}

impl SignedBody for ToolSpec {
    const KIND: &'static str = "tool spec";
    const SIGNING_PREFIX: &'static [u8] = SPEC_SIGNING_PREFIX;
    const MAX_BODY_BYTES: usize = limits::MAX_SPEC_BYTES;
    const FORMAT: u64 = SPEC_FORMAT;

    fn format(&self) -> u64 {
        self.v
    }
    fn signer(&self) -> &PublicKey {
        &self.publisher
    }

    fn check(&self) -> Result<(), ValidationError> {
        validate::check_spec(self)
    }
}

/// The kind of runtime. Only Docker exists today; the field lets others come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum RuntimeKind {
    /// A local Docker image, run in a hardened throw-away container.
    Docker,
}

/// How a provider runs the tool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runtime {
    /// The runtime kind.
    pub kind: RuntimeKind,
    /// The image reference the publisher used (informative).
    pub image: String,
    /// The pinned image id, `sha256:` + 64 hex: the code this id always means.
    pub image_digest: String,
    /// Command and arguments; empty means the image's entrypoint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Working directory inside the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
}

/// Resource limits of one invocation. Every field has a safe default and a
/// hard maximum in [`crate::limits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Wall-clock limit, milliseconds.
    pub timeout_ms: u64,
    /// Memory limit (swap equal: none), bytes.
    pub memory_bytes: u64,
    /// CPU share, thousandths of a core.
    pub cpu_millis: u32,
    /// Maximum number of processes.
    pub pids: u32,
    /// Maximum size of the JSON output, bytes.
    pub max_output_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout_ms: limits::DEFAULT_TIMEOUT_MS,
            memory_bytes: limits::DEFAULT_MEMORY_BYTES,
            cpu_millis: limits::DEFAULT_CPU_MILLIS,
            pids: limits::DEFAULT_PIDS,
            max_output_bytes: limits::DEFAULT_MAX_OUTPUT_BYTES,
        }
    }
}

/// What a tool may do besides computing its output (the ancestor's
/// `side_effects`; MCP's tool annotations derive from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum SideEffect {
    /// Pure computation.
    None,
    /// Reads external state.
    Reads,
    /// Creates or updates external state.
    Writes,
    /// Deletes external state.
    Deletes,
    /// Talks to the network.
    Network,
    /// Touches a filesystem outside its sandbox.
    Filesystem,
}

impl SideEffect {
    /// Every spelling a manifest (and `#[atr_tool::tool(side_effects = ...)]`) accepts, in the
    /// order error messages list them: each variant's name, then its singular alias.
    pub const ACCEPTED: &'static [&'static str] = &[
        "none",
        "reads",
        "read",
        "writes",
        "write",
        "deletes",
        "delete",
        "network",
        "filesystem",
    ];

    /// The lowercase name used in manifests and APIs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Reads => "reads",
            Self::Writes => "writes",
            Self::Deletes => "deletes",
            Self::Network => "network",
            Self::Filesystem => "filesystem",
        }
    }
}

impl std::str::FromStr for SideEffect {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "none" => Self::None,
            "reads" | "read" => Self::Reads,
            "writes" | "write" => Self::Writes,
            "deletes" | "delete" => Self::Deletes,
            "network" => Self::Network,
            "filesystem" => Self::Filesystem,
            other => {
                return Err(format!(
                    "unknown side effect `{other}` (expected none, reads, writes, deletes, network or filesystem)"
                ));
            }
        })
    }
}

/// Cost hint (the ancestor's `cost`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Cost {
    /// No cost.
    #[default]
    Free,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
}

impl Cost {
    /// Every name a manifest (and `#[atr_tool::tool(cost = ...)]`) accepts, cheapest first.
    pub const ACCEPTED: &'static [&'static str] = &["free", "low", "medium", "high"];

    /// The lowercase name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Free => "free",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }
}

impl std::str::FromStr for Cost {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "free" => Self::Free,
            "low" => Self::Low,
            "medium" => Self::Medium,
            "high" => Self::High,
            other => {
                return Err(format!(
                    "unknown cost `{other}` (expected free, low, medium or high)"
                ));
            }
        })
    }
}

/// One example call: an input and the output it must produce.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Example {
    /// The input object.
    pub input: serde_json::Value,
    /// The expected output.
    pub output: serde_json::Value,
}

/// JSON equality where numbers compare by value (`3` equals `3.0`): how an [`Example`]'s
/// expected output is compared with what the tool wrote, by every side that checks examples
/// (the SDK's `testing`, `atr tool test`).
pub fn json_eq(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
            (Some(i), Some(j), _, _) => i == j,
            (_, _, Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_outputs_compare_numbers_by_value() {
        use serde_json::json;
        assert!(json_eq(&json!({"a": [3, 1.5]}), &json!({"a": [3.0, 1.5]})));
        assert!(!json_eq(&json!({"a": 3}), &json!({"a": 4})));
        assert!(!json_eq(&json!({"a": 3}), &json!({"a": 3, "b": 1})));
        assert!(!json_eq(&json!(u64::MAX), &json!(-1)));
        assert!(!json_eq(&json!("3"), &json!(3)));
    }

    /// The accepted lists (which the tool SDK's macro checks against) are exactly what
    /// `FromStr` takes, and every variant's own name is in them.
    #[test]
    fn accepted_names_are_what_parses() {
        for name in SideEffect::ACCEPTED {
            let v: SideEffect = name.parse().unwrap();
            assert!(SideEffect::ACCEPTED.contains(&v.as_str()));
        }
        for name in Cost::ACCEPTED {
            assert_eq!(name.parse::<Cost>().unwrap().as_str(), *name);
        }
        for bad in ["", "None", "nuke", "cheap", "reading"] {
            assert!(
                bad.parse::<SideEffect>().is_err() && bad.parse::<Cost>().is_err(),
                "{bad}"
            );
        }
    }
}
