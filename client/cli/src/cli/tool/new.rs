//! `atr tool new NAME`: a tool crate that builds and passes its own test as created.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::cli::Usage;
use crate::cli::output::outln;

/// Where the SDK is fetched from when no local copy is known.
const SDK_GIT: &str = "https://github.com/atr-net/atr";

/// The SDK crate this `atr` was built with (`sdk/tool` in the same workspace).
fn built_with_sdk() -> PathBuf {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk/tool");
    sdk.canonicalize().unwrap_or(sdk)
}

pub(super) fn new(
    name: &str,
    path: Option<PathBuf>,
    sdk: Option<PathBuf>,
    minimal: bool,
) -> anyhow::Result<()> {
    check_name(name)?;
    let dir = path.unwrap_or_else(|| PathBuf::from(name));
    if dir.exists()
        && std::fs::read_dir(&dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(Usage(format!("{} already exists and is not empty", dir.display())).into());
    }
    let sdk = match sdk {
        Some(p) => Some(
            p.canonicalize()
                .with_context(|| format!("the SDK path {}", p.display()))?,
        ),
        None => Some(built_with_sdk()).filter(|p| p.join("Cargo.toml").is_file()),
    };
    if let Some(p) = &sdk
        && !p.join("Cargo.toml").is_file()
    {
        return Err(Usage(format!(
            "{} has no Cargo.toml: --sdk takes the atr-tool crate's directory",
            p.display()
        ))
        .into());
    }
    let dependency = match &sdk {
        Some(p) => format!("atr-tool = {{ path = {} }}", toml_string(&p.to_string_lossy())),
        None => format!("atr-tool = {{ git = {} }}", toml_string(SDK_GIT)),
    };
    let ident = name.replace('-', "_");
    let files = [
        ("Cargo.toml", cargo_toml(name, &dependency)),
        (
            "src/main.rs",
            if minimal {
                minimal_main_rs(&ident)
            } else {
                main_rs(&ident)
            },
        ),
        (".gitignore", "/target\n".to_owned()),
    ];
    std::fs::create_dir_all(dir.join("src")).with_context(|| format!("creating {}", dir.display()))?;
    for (file, text) in &files {
        let p = dir.join(file);
        std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
    }
    // The SDK's own lock file, so the new crate starts from the versions the SDK is tested with.
    if let Some(lock) = sdk
        .as_deref()
        .and_then(|p| p.ancestors().map(|a| a.join("Cargo.lock")).find(|l| l.is_file()))
    {
        let _ = std::fs::copy(&lock, dir.join("Cargo.lock"));
    }
    let shown = dir.display();
    let what = if minimal {
        "its test and one example"
    } else {
        "its tests and two examples"
    };
    outln!("created {shown}: the tool `{ident}` (src/main.rs), {what}\n")?;
    outln!("  cd {shown}")?;
    outln!("  cargo test          # schemas, manifest and examples are valid")?;
    outln!("  atr tool build      # static binary -> FROM scratch image -> target/atr/{ident}.toml")?;
    outln!("  atr tool test       # the examples, in the sandbox")?;
    outln!("  atr publish target/atr/{ident}.toml")?;
    Ok(())
}

/// A crate name that is also a tool name and, with `-` as `_`, a Rust identifier.
fn check_name(name: &str) -> anyhow::Result<()> {
    let b = name.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-');
    const KEYWORDS: [&str; 8] = ["self", "super", "crate", "test", "main", "fn", "type", "match"];
    if !ok || KEYWORDS.contains(&name) {
        return Err(Usage(format!(
            "`{name}` cannot name a tool crate: use ^[a-z][a-z0-9_-]{{0,63}}$ (not a Rust keyword)"
        ))
        .into());
    }
    Ok(())
}

fn toml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

fn cargo_toml(name: &str, dependency: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[dependencies]
{dependency}
schemars = "1"
serde = {{ version = "1", features = ["derive"] }}

[dev-dependencies]
serde_json = "1"

# A tool crate is a workspace of its own, so it builds wherever it is.
[workspace]
"#
    )
}

fn main_rs(ident: &str) -> String {
    let camel = camel(ident);
    format!(
        r#"//! `{ident}`: an atr tool.
//!
//! - `cargo test` checks it as a node will (schemas, manifest, examples);
//! - `atr tool build` builds it into a `FROM scratch` image and writes `target/atr/{ident}.toml`;
//! - `atr tool test` runs its examples in the sandbox;
//! - `atr publish target/atr/{ident}.toml` publishes it.
//!
//! Run it by hand: `echo '{{"name": "Ada"}}' | cargo run -q`.

use atr_tool::ToolError;
use schemars::JsonSchema;
use serde::{{Deserialize, Serialize}};

/// How to greet.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum Style {{
    /// "Hello, Ada."
    #[default]
    Plain,
    /// "Hello, Ada!"
    Excited,
}}

/// Greet someone by name.
///
/// # Arguments
///
/// * `name` - Who to greet.
/// * `style` - How to greet.
#[atr_tool::tool(
    tags = ["demo"],
    default(style),
    example(input = {{"name": "Ada"}}, output = "Hello, Ada."),
    example(input = {{"name": "Ada", "style": "excited"}}, output = "Hello, Ada!"),
)]
fn {ident}(name: String, style: Style) -> Result<String, ToolError> {{
    let name = name.trim();
    if name.is_empty() {{
        return Err(ToolError::bad_input("empty_name", "the name is empty"));
    }}
    Ok(match style {{
        Style::Plain => format!("Hello, {{name}}."),
        Style::Excited => format!("Hello, {{name}}!"),
    }})
}}

atr_tool::main!({ident});

#[cfg(test)]
mod tests {{
    use super::*;
    use atr_tool::Tool;
    use serde_json::json;

    #[test]
    fn greets() {{
        assert_eq!({ident}("Ada".into(), Style::Excited).unwrap(), "Hello, Ada!");
        assert_eq!({ident}(" ".into(), Style::Plain).unwrap_err().code(), "empty_name");
    }}

    #[test]
    fn refuses_bad_input() {{
        let e = {camel}Tool.call(json!({{"name": "Ada", "style": "shouting"}})).unwrap_err();
        assert_eq!((e.code(), e.exit_code()), ("invalid_input", 2));
    }}

    /// The manifest, the schemas and the examples are what a node accepts.
    #[test]
    fn is_a_valid_tool() {{
        atr_tool::testing::assert_valid(&{camel}Tool);
    }}
}}
"#
    )
}

/// The README's five-line tool (the block under "Write a tool in five lines" is exactly its
/// first lines; the README test checks it), then a test that it is a valid tool.
fn minimal_main_rs(ident: &str) -> String {
    let camel = camel(ident);
    format!(
        r#"/// Add two numbers.
#[atr_tool::tool(tags = ["math"], example(input = {{"a": 2, "b": 3}}, output = 5))]
fn {ident}(a: i64, b: i64) -> i64 {{
    a + b
}}

atr_tool::main!({ident});

#[cfg(test)]
mod tests {{
    /// The manifest, the schemas and the example are what a node accepts.
    #[test]
    fn is_a_valid_tool() {{
        assert_eq!(super::{ident}(2, 3), 5);
        atr_tool::testing::assert_valid(&super::{camel}Tool);
    }}
}}
"#
    )
}

/// `word_count` → `WordCount`: the tool struct `#[atr_tool::tool]` makes is `WordCountTool`.
fn camel(ident: &str) -> String {
    ident
        .split('_')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["greet", "word-count", "a1_b"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "Greet", "1x", "a b", "-x", "self", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
