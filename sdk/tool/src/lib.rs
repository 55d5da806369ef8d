//! # atr-tool
//!
//! Write an atr tool as a typed Rust function. `#[atr_tool::tool]` derives the tool's input
//! and output JSON Schemas from the function's types and its manifest from the attribute and
//! the doc comment; [`serve!`] gives the binary the runtime contract of an atr tool (one JSON
//! input on stdin, one JSON value on stdout); `atr tool build` packs it into a `FROM scratch`
//! image and writes the manifest to publish.
//!
//! ```
//! /// Add two numbers.
//! #[atr_tool::tool(name = "calculator", tags = ["math"])]
//! fn add(a: i64, b: i64) -> i64 {
//!     a + b
//! }
//! # // `atr_tool::serve![add];` in a binary's main.rs generates `fn main`.
//! # use atr_tool::Tool;
//! # assert_eq!(AddTool.call(serde_json::json!({"a": 1, "b": 2})).unwrap(), serde_json::json!(3));
//! ```
//!
//! and in `src/main.rs`: `atr_tool::serve![add];`.
//!
//! ## The attribute
//!
//! `#[atr_tool::tool(...)]` goes on a free, non-generic function (`async fn` too) whose
//! parameters are plain names with types. Every option is optional:
//!
//! | option | meaning | default |
//! |---|---|---|
//! | `name = "..."` | tool name, `^[a-zA-Z0-9_-]{1,64}$` | the function's name |
//! | `version = "1.2.3"` | the tool's semantic version | the crate's (`CARGO_PKG_VERSION`) |
//! | `description = "..."` | what agents read | the doc comment's first paragraph |
//! | `tags = ["math", ...]` | up to 16 tags, `^[a-z0-9][a-z0-9-]{0,31}$` | none |
//! | `side_effects = ["network", ...]` | `none`, `reads`, `writes`, `deletes`, `network`, `filesystem` | `["none"]` |
//! | `cost = "low"` | `free`, `low`, `medium`, `high` | `free` |
//! | `timeout_ms`, `memory_mb`, `cpus`, `pids`, `max_output_bytes` | the sandbox limits of `[limits]` | the node's defaults |
//! | `homepage = "https://..."`, `license = "MIT"` | | `package.homepage`, `package.license` |
//! | `default(b = 1.0, mode = Mode::X, n)` | defaults of parameters (`n`: `Default::default()`) | none |
//! | `example(input = {"a": 1}, output = 2)` | an `[[examples]]` entry, in `serde_json::json!` syntax (repeatable) | none |
//!
//! ## Parameters and their schema
//!
//! The input schema is a `{"type": "object", "properties": {...}, "required": [...],
//! "additionalProperties": false}` with one property per parameter, named as the parameter:
//!
//! - the property's schema is the type's `schemars::JsonSchema` (so `Vec<T>` has `items`, a
//!   unit-variant enum has `enum`, a struct is a nested object with its own `properties`,
//!   `required` and field docs), with every subschema inlined (recursive types keep `$defs`);
//! - a parameter is **required** unless it is an `Option<T>` (then absent means `None`, and its
//!   schema is `T`'s) or has a `default(...)` (then its schema carries `"default"`);
//! - its **description** comes from a rustdoc `# Arguments` section of the function's doc
//!   comment (Rust allows no doc comments on parameters):
//!
//! ```text
//! /// Combine a and b under a mode.
//! ///
//! /// # Arguments
//! ///
//! /// * `a` - The integer input.
//! /// * `b` - A float multiplier.
//! ```
//!
//! - `oneOf` (how schemars writes enums whose variants have docs or data) becomes `enum` when
//!   every branch is a constant, else `anyOf`: serde accepts the first variant that matches, which
//!   is `anyOf`'s meaning, and OpenAI's strict mode refuses `oneOf`.
//!
//! A parameter type must implement `schemars::JsonSchema` and `serde::de::DeserializeOwned`;
//! references, raw pointers, `impl Trait`, trait objects and function pointers are refused by
//! the macro. Either way the error names the parameter.
//!
//! ## Output and errors
//!
//! The output schema is the return type's (`schemars::JsonSchema + serde::Serialize`), or
//! `T`'s for `Result<T, E>`. An `Err(e)` is a tool error: a [`ToolError`] as it is (build one
//! with [`ToolError::bad_input`] to blame the input), any `std::error::Error` (so `?` works in a
//! function returning `Result<T, ToolError>`), or else anything `Display` (e.g. `String`,
//! `anyhow::Error`), all with code `tool_error`.
//!
//! ## The runtime
//!
//! [`serve!`] (or [`main!`] for one tool) writes `fn main`, which calls [`serve()`]:
//!
//! - reads one JSON value from stdin (at most 1 MiB), validates it against the input schema,
//!   calls the function and writes its output as one JSON line on stdout;
//! - on failure writes nothing on stdout and `{"error": {"code": "...", "message": "..."}}` on
//!   stderr, with exit code **2** when the input is at fault (`invalid_json`,
//!   `input_too_large`, `invalid_input`, usage errors) and **1** otherwise (`tool_error`,
//!   `panic`, `invalid_output`, ...);
//! - `--manifest` prints the tool's manifest as TOML (image `<package>:<version>`, command
//!   `/bin/<binary>`, no digest: `atr tool build` pins it), `--schema` its input schema, `--list`
//!   the tool names, `--help` the usage;
//! - with several tools, the tool is chosen by the first argument (`calc add`) or the `ATR_TOOL`
//!   environment variable, and each manifest's command names it.
//!
//! The [`Tool`] trait is what the macro implements; [`testing`] checks a tool the way a node
//! will (manifest, schemas, examples, exports).
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![deny(missing_docs, rustdoc::broken_intra_doc_links)]

mod error;
mod runtime;
mod schema;
pub mod testing;

#[doc(hidden)]
pub mod __private;

use atr_protocol::manifest::{ManifestLimits, ManifestRuntime, SchemaSource};
use serde_json::Value;

pub use atr_protocol::Manifest;
pub use atr_protocol::spec::Example;
pub use atr_tool_macros::{main, serve, tool};
pub use error::{ErrorKind, ToolError};
pub use runtime::{
    EXIT_BAD_INPUT, EXIT_TOOL_FAILURE, MAX_INPUT_BYTES, TOOL_ENV, manifest_of, read_input, run, run_json,
    serve,
};
pub use schema::normalize;
pub use {schemars, serde, serde_json};

/// What `#[tool]` knows about a tool besides its schemas: its attribute, doc comment and crate.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolMeta {
    /// Tool name.
    pub name: &'static str,
    /// The function's name.
    pub function: &'static str,
    /// The crate's name (`CARGO_PKG_NAME`).
    pub package: &'static str,
    /// The crate's version (`CARGO_PKG_VERSION`): with `package`, the image tag.
    pub package_version: &'static str,
    /// The tool's version: `version = "..."`, else the crate's (`CARGO_PKG_VERSION`).
    pub version: &'static str,
    /// Description.
    pub description: &'static str,
    /// Tags.
    pub tags: &'static [&'static str],
    /// Side effects; empty means `none`.
    pub side_effects: &'static [&'static str],
    /// Cost hint; `None` means `free`.
    pub cost: Option<&'static str>,
    /// `[limits] timeout_ms`.
    pub timeout_ms: Option<u64>,
    /// `[limits] memory_mb`.
    pub memory_mb: Option<u64>,
    /// `[limits] cpus`.
    pub cpus: Option<f64>,
    /// `[limits] pids`.
    pub pids: Option<u32>,
    /// `[limits] max_output_bytes`.
    pub max_output_bytes: Option<u64>,
    /// Homepage; empty for none.
    pub homepage: &'static str,
    /// License; empty for none.
    pub license: &'static str,
}

/// An atr tool: what `#[atr_tool::tool]` implements for the struct it generates (`AddTool` for
/// `fn add`).
pub trait Tool {
    /// Name, description, tags and the rest of the manifest's metadata.
    fn meta(&self) -> &'static ToolMeta;

    /// The input JSON Schema (draft 2020-12), `type: object` at its root.
    fn input_schema(&self) -> Value;

    /// The output JSON Schema; `None` when the output can be any JSON value.
    fn output_schema(&self) -> Option<Value>;

    /// The examples given with `example(...)`.
    fn examples(&self) -> Vec<Example>;

    /// Deserializes the arguments from `input` and calls the function, without checking
    /// `input` against the schema first. Use [`Tool::call`].
    #[doc(hidden)]
    fn call_unchecked(&self, input: Value) -> Result<Value, ToolError>;

    /// The tool's name.
    fn name(&self) -> &'static str {
        self.meta().name
    }

    /// Checks `input` against [`Tool::input_schema`] (`invalid_input` when it does not match),
    /// calls the function, and checks its output against [`Tool::output_schema`]
    /// (`invalid_output`, e.g. a NaN where a number is due).
    fn call(&self, input: Value) -> Result<Value, ToolError> {
        schema::check(&self.input_schema(), &input).map_err(|e| {
            ToolError::bad_input(
                "invalid_input",
                format!("the input does not match the schema: {e}"),
            )
        })?;
        let output = self.call_unchecked(input)?;
        if let Some(out) = self.output_schema() {
            schema::check(&out, &output).map_err(|e| {
                ToolError::failed(
                    "invalid_output",
                    format!("the tool's output does not match its output schema: {e}"),
                )
            })?;
        }
        Ok(output)
    }

    /// The manifest, as `atr publish` reads it: `runtime.image` is `<package>:<crate version>`,
    /// `runtime.command` `["/bin/<package>"]` ([`serve()`] puts the real binary name), and no
    /// digest (`atr tool build` pins it).
    fn manifest(&self) -> Manifest {
        let m = self.meta();
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        Manifest {
            name: m.name.to_owned(),
            version: m.version.to_owned(),
            description: m.description.to_owned(),
            tags: m.tags.iter().map(|t| (*t).to_owned()).collect(),
            input_schema: SchemaSource::Inline(self.input_schema()),
            output_schema: self.output_schema().map(SchemaSource::Inline),
            runtime: ManifestRuntime {
                kind: "docker".to_owned(),
                image: image_tag(m.package, m.package_version),
                digest: None,
                command: vec![format!("/bin/{}", m.package)],
                workdir: None,
            },
            limits: ManifestLimits {
                timeout_ms: m.timeout_ms,
                memory_mb: m.memory_mb,
                cpus: m.cpus,
                pids: m.pids,
                max_output_bytes: m.max_output_bytes,
            },
            side_effects: if m.side_effects.is_empty() {
                vec!["none".to_owned()]
            } else {
                m.side_effects.iter().map(|s| (*s).to_owned()).collect()
            },
            cost: m.cost.map(str::to_owned),
            homepage: non_empty(m.homepage),
            license: non_empty(m.license),
            examples: self.examples(),
            permissions: Default::default(),
        }
    }
}

/// The image tag of a tool crate: `<package>:<version>`, lowercased, with `+` (not allowed in
/// a tag) as `_`.
pub fn image_tag(package: &str, version: &str) -> String {
    format!("{}:{}", package.to_ascii_lowercase(), version.replace('+', "_"))
}
