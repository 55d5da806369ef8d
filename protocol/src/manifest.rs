//! The tool manifest: what an operator writes, in TOML.
//!
//! ```toml
//! name = "add"
//! version = "1.0.0"
//! description = "Add two integers."
//! tags = ["math"]
//! side_effects = ["none"]
//! cost = "free"
//! input_schema = { type = "object", properties = { a = { type = "integer" }, b = { type = "integer" } }, required = ["a", "b"] }
//! output_schema = "schemas/add.out.json"   # or a path to a .json file
//!
//! [runtime]
//! image = "atr-example-tools:latest"
//! command = ["/bin/add"]
//!
//! [limits]
//! timeout_ms = 5000
//! memory_mb = 64
//!
//! [[examples]]
//! input = { a = 1, b = 2 }
//! output = 3
//! ```
//!
//! [`Manifest::from_toml`] parses, [`Manifest::resolve_schemas`] loads schema
//! files through a caller-supplied reader (this crate does no I/O), and
//! [`Manifest::to_spec`] normalizes and validates into a [`ToolSpec`]. Every
//! error names the file, the field and the rule.

use serde::{Deserialize, Serialize};

use crate::key::PublicKey;
use crate::limits::{
    MAX_EGRESS_RULES, MAX_SCHEMA_BYTES, MAX_SCRATCH_BYTES, MAX_SECRETS, MAX_TAGS, MIN_SCRATCH_BYTES,
};
use crate::policy::{EgressRule, Permissions};
use crate::spec::{Cost, Example, Limits, Runtime, RuntimeKind, SPEC_FORMAT, SideEffect, ToolSpec};
use crate::validate::{self, ValidationError};

/// Largest manifest file accepted.
pub const MAX_MANIFEST_BYTES: usize = 256 * 1024;

/// Why a manifest was refused. Every variant names the file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The file is too large to be a manifest.
    #[error("{file}: {len} bytes is over the {max}-byte manifest limit")]
    TooLarge {
        /// File name.
        file: String,
        /// Size.
        len: usize,
        /// Cap.
        max: usize,
    },
    /// TOML syntax or shape error (unknown field, wrong type).
    #[error("{file}: {message}")]
    Syntax {
        /// File name.
        file: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A field breaks a rule.
    #[error("{file}: field `{field}`: {rule}")]
    Field {
        /// File name.
        file: String,
        /// Field path.
        field: String,
        /// The rule broken.
        rule: String,
    },
    /// A schema file could not be read or parsed.
    #[error("{file}: field `{field}`: schema file `{path}`: {detail}")]
    SchemaFile {
        /// Manifest file name.
        file: String,
        /// `input_schema` or `output_schema`.
        field: &'static str,
        /// The path given.
        path: String,
        /// Why.
        detail: String,
    },
}

impl ManifestError {
    /// The field at fault, when one is known.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Field { field, .. } => Some(field),
            Self::SchemaFile { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// A JSON Schema given inline or as a path to a `.json` file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SchemaSource {
    /// A path, relative to the manifest file.
    Path(String),
    /// The schema itself.
    Inline(serde_json::Value),
}

/// `[runtime]` of a manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestRuntime {
    /// Runtime kind; only `docker` today (the default).
    #[serde(default = "default_kind")]
    pub kind: String,
    /// Local image reference, e.g. `atr-example-tools:latest`.
    pub image: String,
    /// The image id (`sha256:…`) if already known; the node resolves it otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Command and arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

fn default_kind() -> String {
    "docker".into()
}

/// `[limits]` of a manifest; every field is optional with a safe default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestLimits {
    /// Wall-clock limit in milliseconds (default 10 000, max 120 000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Memory in MiB (default 128, max 2048).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u64>,
    /// CPU cores, fractional (default 0.5, max 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// Process limit (default 32, max 512).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<u32>,
    /// Output cap in bytes (default 1 MiB, max 8 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_bytes: Option<u64>,
}

/// `[permissions]` of a manifest; everything is off by default.
///
/// ```toml
/// side_effects = ["network", "reads"]
/// [permissions]
/// egress = ["api.example.com:443", "*.example.org:443"]
/// secrets = ["API_TOKEN"]
/// scratch_mb = 32
/// output_dir = "/out"
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestPermissions {
    /// `host:port` entries the tool may reach through the node's egress proxy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub egress: Vec<String>,
    /// Names of the secrets the tool needs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// Scratch space in MiB (default 16, max 256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scratch_mb: Option<u64>,
    /// An extra writable directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_dir: Option<String>,
}

impl ManifestPermissions {
    /// Normalizes into sorted, unique [`Permissions`]; errors name the field.
    pub fn to_permissions(&self) -> Result<Permissions, ValidationError> {
        let mut egress = Vec::with_capacity(self.egress.len().min(MAX_EGRESS_RULES + 1));
        for e in self.egress.iter().take(MAX_EGRESS_RULES + 1) {
            egress.push(EgressRule::parse(e.trim())?);
        }
        egress.sort();
        egress.dedup();
        let mut secrets: Vec<String> = self
            .secrets
            .iter()
            .take(MAX_SECRETS + 1)
            .map(|s| s.trim().to_owned())
            .collect();
        secrets.sort();
        secrets.dedup();
        let scratch_bytes = match self.scratch_mb {
            Some(mb) => Some(
                mb.checked_mul(1024 * 1024)
                    .ok_or(ValidationError::LimitOutOfRange {
                        field: "scratch_bytes",
                        value: u64::MAX,
                        min: MIN_SCRATCH_BYTES,
                        max: MAX_SCRATCH_BYTES,
                    })?,
            ),
            None => None,
        };
        Ok(Permissions {
            egress,
            secrets,
            scratch_bytes,
            output_dir: self.output_dir.clone(),
        })
    }
}

/// A tool manifest as written by an operator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Tool name.
    pub name: String,
    /// Semantic version.
    pub version: String,
    /// Description.
    pub description: String,
    /// Tags (lowercased, sorted, deduplicated in the spec).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Input schema.
    pub input_schema: SchemaSource,
    /// Output schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<SchemaSource>,
    /// How to run it.
    pub runtime: ManifestRuntime,
    /// Limits.
    #[serde(default)]
    pub limits: ManifestLimits,
    /// Side effects; default `["none"]`.
    #[serde(default)]
    pub side_effects: Vec<String>,
    /// Declared permissions; default none.
    #[serde(default, skip_serializing_if = "is_default")]
    pub permissions: ManifestPermissions,
    /// Cost hint; default `free`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<String>,
    /// Homepage URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
    /// License.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// Examples.
    #[serde(default)]
    pub examples: Vec<Example>,
}

impl Manifest {
    /// Parses TOML text; `file` names it in errors.
    pub fn from_toml(src: &str, file: &str) -> Result<Self, ManifestError> {
        if src.len() > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge {
                file: file.into(),
                len: src.len(),
                max: MAX_MANIFEST_BYTES,
            });
        }
        toml::from_str(src).map_err(|e| {
            let message = match e.span() {
                Some(span) => {
                    let line = src[..span.start.min(src.len())].matches('\n').count() + 1;
                    format!("line {line}: {}", e.message())
                }
                None => e.message().to_owned(),
            };
            ManifestError::Syntax {
                file: file.into(),
                message,
            }
        })
    }

    /// Replaces schema paths by their parsed contents. `read` receives the
    /// path as written and returns the file's text.
    pub fn resolve_schemas(
        &mut self,
        file: &str,
        mut read: impl FnMut(&str) -> Result<String, String>,
    ) -> Result<(), ManifestError> {
        let mut load = |field: &'static str, src: &mut SchemaSource| -> Result<(), ManifestError> {
            if let SchemaSource::Path(p) = src {
                let err = |detail: String| ManifestError::SchemaFile {
                    file: file.into(),
                    field,
                    path: p.clone(),
                    detail,
                };
                let text = read(p).map_err(err)?;
                if text.len() > MAX_SCHEMA_BYTES {
                    return Err(err(format!("over the {MAX_SCHEMA_BYTES}-byte schema limit")));
                }
                let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| err(e.to_string()))?;
                *src = SchemaSource::Inline(v);
            }
            Ok(())
        };
        load("input_schema", &mut self.input_schema)?;
        if let Some(o) = &mut self.output_schema {
            load("output_schema", o)?;
        }
        Ok(())
    }

    /// Normalizes and validates into a spec. `image_digest` overrides the
    /// manifest's `runtime.digest` (the node resolves it from Docker).
    pub fn to_spec(
        &self,
        file: &str,
        publisher: PublicKey,
        created_at_ms: u64,
        image_digest: Option<&str>,
    ) -> Result<ToolSpec, ManifestError> {
        let field_err = |field: &str, rule: String| ManifestError::Field {
            file: file.into(),
            field: field.into(),
            rule,
        };
        let from_rule = |e: ValidationError| field_err(e.field(), e.to_string());

        validate::check_name(&self.name).map_err(from_rule)?;
        let version = semver::Version::parse(&self.version).map_err(|e| {
            field_err(
                "version",
                format!("`{}` is not a semantic version: {e}", self.version),
            )
        })?;
        let mut tags: Vec<String> = self.tags.iter().map(|t| t.trim().to_lowercase()).collect();
        tags.sort();
        tags.dedup();
        if tags.len() > MAX_TAGS {
            return Err(from_rule(ValidationError::TooManyTags {
                count: tags.len(),
                max: MAX_TAGS,
            }));
        }
        for t in &tags {
            validate::check_tag(t).map_err(from_rule)?;
        }
        let schema = |field: &'static str, s: &SchemaSource| match s {
            SchemaSource::Inline(v) => Ok(v.clone()),
            SchemaSource::Path(p) => Err(field_err(
                field,
                format!("schema path `{p}` was not resolved (call resolve_schemas first)"),
            )),
        };
        let input_schema = schema("input_schema", &self.input_schema)?;
        let output_schema = self
            .output_schema
            .as_ref()
            .map(|s| schema("output_schema", s))
            .transpose()?;
        if self.runtime.kind != "docker" {
            return Err(field_err(
                "runtime.kind",
                format!(
                    "unknown runtime `{}` (only `docker` is supported)",
                    self.runtime.kind
                ),
            ));
        }
        let digest = image_digest
            .map(str::to_owned)
            .or_else(|| self.runtime.digest.clone())
            .ok_or_else(|| {
                field_err(
                    "runtime.digest",
                    "the image digest is unknown: give `digest = \"sha256:…\"` or publish through a node with Docker, which resolves it".into(),
                )
            })?;
        let mut side_effects = Vec::new();
        for s in &self.side_effects {
            side_effects.push(
                s.parse::<SideEffect>()
                    .map_err(|e| field_err("side_effects", e))?,
            );
        }
        side_effects.sort();
        side_effects.dedup();
        if side_effects.is_empty() {
            side_effects.push(SideEffect::None);
        }
        let cost = match &self.cost {
            Some(c) => c.parse::<Cost>().map_err(|e| field_err("cost", e))?,
            None => Cost::Free,
        };
        let limits = self.limits_spec().map_err(|(f, r)| field_err(f, r))?;
        let permissions = self.permissions.to_permissions().map_err(from_rule)?;
        let spec = ToolSpec {
            v: SPEC_FORMAT,
            name: self.name.clone(),
            version,
            description: self.description.trim().to_owned(),
            tags,
            input_schema,
            output_schema,
            runtime: Runtime {
                kind: RuntimeKind::Docker,
                image: self.runtime.image.clone(),
                image_digest: digest,
                command: self.runtime.command.clone(),
                workdir: self.runtime.workdir.clone(),
            },
            limits,
            side_effects,
            permissions,
            cost,
            homepage: self.homepage.clone(),
            license: self.license.clone(),
            examples: self.examples.clone(),
            publisher,
            created_at_ms,
        };
        validate::check_spec(&spec).map_err(from_rule)?;
        validate::check_examples(&spec).map_err(from_rule)?;
        Ok(spec)
    }

    fn limits_spec(&self) -> Result<Limits, (&'static str, String)> {
        let d = Limits::default();
        let l = &self.limits;
        let memory_bytes = match l.memory_mb {
            Some(mb) => mb
                .checked_mul(1024 * 1024)
                .ok_or(("limits.memory_mb", format!("{mb} MiB is too large")))?,
            None => d.memory_bytes,
        };
        let cpu_millis = match l.cpus {
            Some(c) if c.is_finite() && c > 0.0 && c <= 1000.0 => (c * 1000.0).round() as u32,
            Some(c) => return Err(("limits.cpus", format!("{c} is not a positive number of cores"))),
            None => d.cpu_millis,
        };
        let out = Limits {
            timeout_ms: l.timeout_ms.unwrap_or(d.timeout_ms),
            memory_bytes,
            cpu_millis,
            pids: l.pids.unwrap_or(d.pids),
            max_output_bytes: l.max_output_bytes.unwrap_or(d.max_output_bytes),
        };
        validate::check_limits(&out).map_err(|e| match e {
            ValidationError::LimitOutOfRange { field, .. } => (
                match field {
                    "timeout_ms" => "limits.timeout_ms",
                    "memory_bytes" => "limits.memory_mb",
                    "cpu_millis" => "limits.cpus",
                    "pids" => "limits.pids",
                    _ => "limits.max_output_bytes",
                },
                e.to_string(),
            ),
            other => ("limits", other.to_string()),
        })?;
        Ok(out)
    }
}
