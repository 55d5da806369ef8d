//! Checking a tool the way a node will, from the tool crate's own tests:
//!
//! ```
//! /// Add two numbers.
//! #[atr_tool::tool(example(input = {"a": 1, "b": 2}, output = 3))]
//! fn add(a: i64, b: i64) -> i64 {
//!     a + b
//! }
//!
//! atr_tool::testing::assert_valid(&AddTool);
//! ```

use atr_protocol::export::{ExportFormat, ExportOptions, export};
use atr_protocol::{Manifest, SecretKey, ToolSpec};

use crate::Tool;

/// The image id put in the spec of [`spec`] (a tool not yet built has none).
pub const PLACEHOLDER_DIGEST: &str =
    "sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// The signed spec a node would make of this tool's manifest, with a throw-away publisher key
/// and [`PLACEHOLDER_DIGEST`]; what `atr_protocol::export` takes.
pub fn spec(tool: &dyn Tool) -> Result<ToolSpec, String> {
    spec_of_manifest(&tool.manifest())
}

fn spec_of_manifest(m: &Manifest) -> Result<ToolSpec, String> {
    let publisher = SecretKey::from_seed(&[1; 32]).public();
    m.to_spec(
        &format!("{}.toml", m.name),
        publisher,
        1,
        Some(PLACEHOLDER_DIGEST),
    )
    .map_err(|e| e.to_string())
}

/// Checks everything a node and an agent will: the manifest survives TOML and is a valid spec
/// (name, tags, limits, both schemas valid JSON Schema 2020-12, examples matching them), every
/// example gives its output when called, and the tool exports to every agent format. Returns
/// every problem found, one per line.
pub fn check(tool: &dyn Tool) -> Result<(), String> {
    let mut problems = Vec::new();
    let manifest = tool.manifest();
    match crate::runtime::manifest_toml(&manifest) {
        Ok(text) => match Manifest::from_toml(&text, "manifest.toml") {
            Ok(back) if back == manifest => {}
            Ok(_) => problems.push("the manifest changes when written as TOML and read back".to_owned()),
            Err(e) => problems.push(format!("the manifest's TOML does not parse: {e}")),
        },
        Err(e) => problems.push(e.to_string()),
    }
    match spec_of_manifest(&manifest) {
        Ok(spec) => {
            for f in ExportFormat::ALL {
                if let Err(e) = export(&spec, f, &ExportOptions::default()) {
                    problems.push(format!("export to {f}: {e}"));
                }
            }
        }
        Err(e) => problems.push(format!("not a valid spec: {e}")),
    }
    for (i, ex) in tool.examples().into_iter().enumerate() {
        match tool.call(ex.input) {
            Ok(out) if json_eq(&out, &ex.output) => {}
            Ok(out) => problems.push(format!(
                "example {i}: the output is {out}, the example says {}",
                ex.output
            )),
            Err(e) => problems.push(format!("example {i}: {e}")),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// [`check`], panicking with the problems.
#[track_caller]
pub fn assert_valid(tool: &dyn Tool) {
    if let Err(problems) = check(tool) {
        panic!("tool `{}` is not valid:\n{problems}", tool.name());
    }
}

pub use atr_protocol::spec::json_eq;
