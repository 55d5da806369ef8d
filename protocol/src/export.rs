//! Tool definitions in the formats agents consume.
//!
//! [`export`] turns one [`ToolSpec`] into an OpenAI Chat Completions tool ([`to_openai`]), an
//! OpenAI Responses tool ([`to_openai_responses`]), an Anthropic Messages tool
//! ([`to_anthropic`]), an MCP `Tool` ([`to_mcp`]) or a Gemini `FunctionDeclaration`
//! ([`to_gemini`]), chosen by [`ExportFormat`] and tuned by [`ExportOptions`].
//! [`export_many`] builds a whole `tools` array with unique names. Failures are
//! [`ExportError`]s.
//!
//! The field mapping and every rule applied here come from `shared/notes/tool-formats.md`.
//! The golden files in `protocol/tests/data/exports/`, which the tests below compare the output
//! with, are checked against the vendors' own SDK types by `shared/tools/check_exports.py`:
//! run `protocol/tests/check_exports.sh ../shared/tools/check_exports.py`.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value, json};

use crate::limits::MAX_NAME_LEN;
use crate::spec::{SideEffect, ToolSpec};

/// A tool-definition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExportFormat {
    /// OpenAI Chat Completions `tools[]` entry: `{"type": "function", "function": {...}}`.
    OpenAi,
    /// OpenAI Responses API function tool (flat, `strict` always explicit).
    OpenAiResponses,
    /// Anthropic Messages API `tools[]` entry.
    Anthropic,
    /// MCP `Tool`, as listed by `tools/list`.
    Mcp,
    /// Google Gemini `FunctionDeclaration` (google-genai), with JSON Schema parameters.
    Gemini,
}

impl ExportFormat {
    /// Every format, in a fixed order.
    pub const ALL: [ExportFormat; 5] = [
        Self::OpenAi,
        Self::OpenAiResponses,
        Self::Anthropic,
        Self::Mcp,
        Self::Gemini,
    ];

    /// The name used on command lines and in APIs (`openai`, `openai-responses`, ...).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::OpenAiResponses => "openai-responses",
            Self::Anthropic => "anthropic",
            Self::Mcp => "mcp",
            Self::Gemini => "gemini",
        }
    }

    /// The tool-name rule of this format, as a regular expression.
    pub fn name_rule(&self) -> &'static str {
        match self {
            Self::OpenAi | Self::OpenAiResponses | Self::Anthropic => "^[a-zA-Z0-9_-]{1,64}$",
            Self::Mcp => "^[A-Za-z0-9._-]{1,128}$",
            Self::Gemini => "^[a-zA-Z_][a-zA-Z0-9_.:-]{0,127}$",
        }
    }

    /// Whether `name` follows [`Self::name_rule`].
    pub fn is_valid_name(&self, name: &str) -> bool {
        let b = name.as_bytes();
        let word = |c: &u8| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-';
        match self {
            Self::OpenAi | Self::OpenAiResponses | Self::Anthropic => {
                (1..=64).contains(&b.len()) && b.iter().all(word)
            }
            Self::Mcp => (1..=128).contains(&b.len()) && b.iter().all(|c| word(c) || *c == b'.'),
            Self::Gemini => {
                (1..=128).contains(&b.len())
                    && (b[0].is_ascii_alphabetic() || b[0] == b'_')
                    && b.iter().all(|c| word(c) || *c == b'.' || *c == b':')
            }
        }
    }
}

impl fmt::Display for ExportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An export format name that [`ExportFormat::from_str`] does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown export format `{0}` (expected openai, openai-responses, anthropic, mcp or gemini)")]
pub struct UnknownFormat(pub String);

impl FromStr for ExportFormat {
    type Err = UnknownFormat;
    fn from_str(s: &str) -> Result<Self, UnknownFormat> {
        Self::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| UnknownFormat(s.to_owned()))
    }
}

/// How to export. `ExportOptions::default()` is the plain, non-strict export.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportOptions {
    /// OpenAI formats: emit a Structured Outputs (`strict: true`) schema, see [`to_openai`].
    /// Other formats ignore it.
    pub strict: bool,
    /// Tool name to use instead of the spec's name (e.g. to keep names unique). It must follow
    /// the format's [`ExportFormat::name_rule`].
    pub name: Option<String>,
    /// MCP only: written as the tool's `_meta` (e.g. `{"dev.atr/id": "..."}`) when not empty.
    /// Keys must be valid MCP `_meta` keys outside the prefixes MCP reserves.
    pub meta: Option<Map<String, Value>>,
}

/// Why a spec cannot be exported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The tool name (the spec's or the override) breaks the format's name rule.
    #[error("tool name `{name}` is not valid for {format}: it must match {rule}")]
    InvalidName {
        /// The name.
        name: String,
        /// The target format.
        format: ExportFormat,
        /// The rule it breaks ([`ExportFormat::name_rule`]).
        rule: &'static str,
    },
    /// The input schema's root is not `"type": "object"`, which every format needs.
    #[error("the input schema must have `\"type\": \"object\"` at its root (every agent format requires it)")]
    InputNotObject,
    /// The input schema has a combinator at its root that the format refuses (Anthropic:
    /// `oneOf`, `allOf`, `anyOf`).
    #[error("the input schema has `{keyword}` at its root, which {format} does not accept")]
    RootCombinator {
        /// The keyword.
        keyword: &'static str,
        /// The target format.
        format: ExportFormat,
    },
    /// Strict mode: the schema uses something OpenAI Structured Outputs cannot express.
    #[error(
        "cannot make the input schema strict: {what} at {path} is not supported by OpenAI strict mode; export without strict"
    )]
    StrictUnsupported {
        /// What is unsupported (a keyword such as `` `oneOf` ``, or a construct).
        what: String,
        /// Where, as a JSON Pointer fragment (`#/properties/x`).
        path: String,
    },
    /// Strict mode: an object admits extra properties (`additionalProperties` other than
    /// `false`, or `patternProperties`), and strict mode needs closed objects.
    #[error(
        "cannot make the input schema strict: the object at {path} admits extra properties, but strict mode needs `additionalProperties: false`; export without strict"
    )]
    StrictOpenObject {
        /// Where, as a JSON Pointer fragment.
        path: String,
    },
    /// Strict mode: the schema is over one of OpenAI's size limits.
    #[error(
        "cannot make the input schema strict: {what} is {count}, over OpenAI's strict-mode limit of {max}"
    )]
    StrictLimit {
        /// Which limit.
        what: &'static str,
        /// The schema's value.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A key of [`ExportOptions::meta`] is not a valid MCP `_meta` key, or uses a reserved prefix.
    #[error(
        "`_meta` key `{key}` is not valid for MCP: use an optional reverse-DNS prefix ending in `/` (not one with an `mcp` or `modelcontextprotocol` label), then a name that starts and ends with a letter or digit"
    )]
    InvalidMetaKey {
        /// The key.
        key: String,
    },
}

/// Exports `spec` in `format`.
pub fn export(spec: &ToolSpec, format: ExportFormat, opts: &ExportOptions) -> Result<Value, ExportError> {
    match format {
        ExportFormat::OpenAi => to_openai(spec, opts),
        ExportFormat::OpenAiResponses => to_openai_responses(spec, opts),
        ExportFormat::Anthropic => to_anthropic(spec, opts),
        ExportFormat::Mcp => to_mcp(spec, opts),
        ExportFormat::Gemini => to_gemini(spec, opts),
    }
}

/// Exports several specs as one JSON array, in input order, with unique names.
///
/// The first tool with a given name keeps it; each later one gets `_2`, `_3`, ... (the first
/// suffix that no other tool uses), its base cut so the result stays within 64 characters.
/// [`ExportOptions::name`], when set, replaces every spec's name before this renaming.
pub fn export_many(
    specs: &[&ToolSpec],
    format: ExportFormat,
    opts: &ExportOptions,
) -> Result<Value, ExportError> {
    let names = unique_names(
        specs
            .iter()
            .map(|s| opts.name.as_deref().unwrap_or(&s.name))
            .collect(),
    );
    let mut one = opts.clone();
    let mut out = Vec::with_capacity(specs.len());
    for (spec, name) in specs.iter().zip(names) {
        one.name = Some(name);
        out.push(export(spec, format, &one)?);
    }
    Ok(Value::Array(out))
}

/// OpenAI Chat Completions: `{"type": "function", "function": {"name", "description",
/// "parameters", "strict"?}}`.
///
/// With [`ExportOptions::strict`] the parameters are rewritten for Structured Outputs and
/// `"strict": true` is set; otherwise `strict` is left out (Chat then stays non-strict).
/// The strict rewrite, at every depth:
///
/// - every object gets `additionalProperties: false` and lists all its properties in
///   `required`;
/// - a property that was optional becomes nullable: `"type": [T, "null"]` for a plain type, or
///   `anyOf` with `{"type": "null"}` (enums, consts, refs, unions), keeping `description`,
///   `title` and `default` outside;
/// - `default: null` is dropped, and so is a `format` strict mode does not know;
/// - a `$ref` with sibling keywords is inlined, as the openai SDK does.
///
/// It fails ([`ExportError`]) on `allOf`, `oneOf`, `not`, `if`/`then`/`else`,
/// `dependentRequired`/`dependentSchemas`, tuple `items`, `anyOf` at the root, open objects
/// and schemas over OpenAI's limits.
///
/// A model in strict mode sends `null` for an optional argument it leaves out, which the
/// spec's own input schema rejects: drop the `null`s of optional properties before invoking.
pub fn to_openai(spec: &ToolSpec, opts: &ExportOptions) -> Result<Value, ExportError> {
    let mut function = Map::new();
    function.insert(
        "name".into(),
        export_name(spec, opts, ExportFormat::OpenAi)?.into(),
    );
    function.insert("description".into(), spec.description.clone().into());
    function.insert("parameters".into(), parameters(spec, opts.strict)?);
    if opts.strict {
        function.insert("strict".into(), true.into());
    }
    Ok(json!({"type": "function", "function": function}))
}

/// OpenAI Responses API: `{"type": "function", "name", "description", "parameters",
/// "strict", "output_schema"?}`.
///
/// `strict` is always written (`false` unless [`ExportOptions::strict`]): when it is left out,
/// the Responses API makes the schema strict itself. Strict parameters are made as in
/// [`to_openai`]. `output_schema` is the spec's output schema, when it has one.
pub fn to_openai_responses(spec: &ToolSpec, opts: &ExportOptions) -> Result<Value, ExportError> {
    let mut tool = Map::new();
    tool.insert("type".into(), "function".into());
    tool.insert(
        "name".into(),
        export_name(spec, opts, ExportFormat::OpenAiResponses)?.into(),
    );
    tool.insert("description".into(), spec.description.clone().into());
    tool.insert("parameters".into(), parameters(spec, opts.strict)?);
    tool.insert("strict".into(), opts.strict.into());
    if let Some(out) = &spec.output_schema {
        tool.insert("output_schema".into(), out.clone());
    }
    Ok(Value::Object(tool))
}

/// Anthropic Messages API: `{"name", "description", "input_schema", "input_examples"?}`.
///
/// `input_examples` lists the inputs of the spec's examples. It is written only when there are
/// some, every one is a JSON object (the API takes objects only) and every one matches the
/// input schema (which a verified spec's examples do, see
/// [`crate::validate::check_examples`]): one bad example would fail the whole request.
/// The API refuses `oneOf`, `allOf` and `anyOf` at the root of `input_schema`
/// ([`ExportError::RootCombinator`]).
pub fn to_anthropic(spec: &ToolSpec, opts: &ExportOptions) -> Result<Value, ExportError> {
    let mut tool = Map::new();
    tool.insert(
        "name".into(),
        export_name(spec, opts, ExportFormat::Anthropic)?.into(),
    );
    tool.insert("description".into(), spec.description.clone().into());
    let schema = parameters(spec, false)?;
    if let Some(keyword) = ["oneOf", "allOf", "anyOf"]
        .into_iter()
        .find(|k| schema.get(k).is_some())
    {
        return Err(ExportError::RootCombinator {
            keyword,
            format: ExportFormat::Anthropic,
        });
    }
    if !spec.examples.is_empty()
        && spec.examples.iter().all(|e| e.input.is_object())
        && let Ok(compiled) = crate::input::CompiledSchema::new(&schema)
        && spec.examples.iter().all(|e| compiled.check(&e.input).is_ok())
    {
        let inputs = spec.examples.iter().map(|e| e.input.clone()).collect();
        tool.insert("input_examples".into(), Value::Array(inputs));
    }
    tool.insert("input_schema".into(), schema);
    Ok(Value::Object(tool))
}

/// MCP `Tool`: `{"name", "description", "inputSchema", "outputSchema"?, "annotations",
/// "_meta"?}`.
///
/// - `outputSchema` is written only when the spec's output schema has `"type": "object"` at
///   its root: MCP 2025-06-18 and 2025-11-25 accept nothing else (2026-07-28 would), and a
///   tool with an `outputSchema` must return matching `structuredContent`.
/// - `annotations` derive from the side effects, every hint explicit (MCP's defaults assume
///   the worst):
///   - `readOnlyHint`: the side effects are only `none` or `reads`;
///   - `destructiveHint`: they include `deletes` (always `false` when read-only, where MCP
///     ignores it);
///   - `idempotentHint`: the tool is read-only (nothing else is known to be idempotent);
///   - `openWorldHint`: they include `network`.
/// - `_meta` is [`ExportOptions::meta`], when it is set and not empty.
/// - No `title`: a spec has none, and clients then show the name.
pub fn to_mcp(spec: &ToolSpec, opts: &ExportOptions) -> Result<Value, ExportError> {
    let mut tool = Map::new();
    tool.insert("name".into(), export_name(spec, opts, ExportFormat::Mcp)?.into());
    tool.insert("description".into(), spec.description.clone().into());
    tool.insert("inputSchema".into(), parameters(spec, false)?);
    if let Some(out) = &spec.output_schema
        && out.get("type").and_then(Value::as_str) == Some("object")
    {
        tool.insert("outputSchema".into(), out.clone());
    }
    let read_only = spec.is_read_only();
    let has = |e: SideEffect| spec.side_effects.contains(&e);
    tool.insert(
        "annotations".into(),
        json!({
            "readOnlyHint": read_only,
            "destructiveHint": !read_only && has(SideEffect::Deletes),
            "idempotentHint": read_only,
            "openWorldHint": has(SideEffect::Network),
        }),
    );
    if let Some(meta) = opts.meta.as_ref().filter(|m| !m.is_empty()) {
        if let Some(bad) = meta.keys().find(|k| !is_valid_meta_key(k)) {
            return Err(ExportError::InvalidMetaKey { key: bad.clone() });
        }
        tool.insert("_meta".into(), Value::Object(meta.clone()));
    }
    Ok(Value::Object(tool))
}

/// Gemini `FunctionDeclaration`: `{"name", "description", "parametersJsonSchema",
/// "responseJsonSchema"?}`.
///
/// The schemas go as JSON Schema (not the lossy OpenAPI-subset `parameters`), unchanged but
/// for one rewrite: Gemini lets a subschema with `$ref` carry only `$`-keywords, so
/// `{"$ref": R, "description": D}` becomes the equivalent `{"anyOf": [{"$ref": R}],
/// "description": D}`. Gemini names must start with a letter or `_`, so a spec named `1abc`
/// fails with [`ExportError::InvalidName`]; rename it with [`ExportOptions::name`].
pub fn to_gemini(spec: &ToolSpec, opts: &ExportOptions) -> Result<Value, ExportError> {
    let mut decl = Map::new();
    decl.insert(
        "name".into(),
        export_name(spec, opts, ExportFormat::Gemini)?.into(),
    );
    decl.insert("description".into(), spec.description.clone().into());
    let mut params = parameters(spec, false)?;
    for_each_subschema(&mut params, &mut isolate_ref);
    decl.insert("parametersJsonSchema".into(), params);
    if let Some(out) = &spec.output_schema {
        let mut out = out.clone();
        for_each_subschema(&mut out, &mut isolate_ref);
        decl.insert("responseJsonSchema".into(), out);
    }
    Ok(Value::Object(decl))
}

/// Moves a `$ref` that has non-`$` siblings into a one-branch `anyOf` (same meaning). Left as is
/// when the node already has an `anyOf`.
fn isolate_ref(obj: &mut Map<String, Value>) {
    if !obj.contains_key("anyOf")
        && obj.keys().any(|k| !k.starts_with('$'))
        && let Some(r) = obj.remove("$ref")
    {
        obj.insert("anyOf".into(), json!([{"$ref": r}]));
    }
}

/// Calls `f` on every subschema object reachable through the JSON Schema applicators (not
/// through `$ref`), parents before children.
fn for_each_subschema(node: &mut Value, f: &mut impl FnMut(&mut Map<String, Value>)) {
    let Value::Object(obj) = node else { return };
    f(obj);
    for_each_child_subschema(obj, |s| for_each_subschema(s, f));
}

/// Calls `f` on each direct subschema of the schema object `obj`: the values of every JSON
/// Schema applicator keyword (`properties`, `anyOf`, `items`, `not`, …), not `$ref` targets.
/// The one list of applicators that every schema rewrite (this exporter, the SDK's schema
/// normaliser) walks.
pub fn for_each_child_subschema(obj: &mut Map<String, Value>, mut f: impl FnMut(&mut Value)) {
    for (kw, child) in obj.iter_mut() {
        match (kw.as_str(), child) {
            (
                "properties" | "patternProperties" | "$defs" | "definitions" | "dependentSchemas",
                Value::Object(m),
            ) => m.values_mut().for_each(&mut f),
            ("anyOf" | "oneOf" | "allOf" | "prefixItems" | "items", Value::Array(list)) => {
                list.iter_mut().for_each(&mut f);
            }
            (
                "items"
                | "additionalProperties"
                | "not"
                | "if"
                | "then"
                | "else"
                | "contains"
                | "propertyNames"
                | "unevaluatedProperties"
                | "unevaluatedItems"
                | "additionalItems",
                sub,
            ) => f(sub),
            _ => {}
        }
    }
}

fn export_name(spec: &ToolSpec, opts: &ExportOptions, format: ExportFormat) -> Result<String, ExportError> {
    let name = opts.name.as_deref().unwrap_or(&spec.name);
    if format.is_valid_name(name) {
        Ok(name.to_owned())
    } else {
        Err(ExportError::InvalidName {
            name: name.chars().take(140).collect(),
            format,
            rule: format.name_rule(),
        })
    }
}

/// The input schema, checked for an object root, made strict on demand.
fn parameters(spec: &ToolSpec, strict: bool) -> Result<Value, ExportError> {
    if spec.input_schema.get("type").and_then(Value::as_str) != Some("object") {
        return Err(ExportError::InputNotObject);
    }
    if strict {
        strict_schema(&spec.input_schema)
    } else {
        Ok(spec.input_schema.clone())
    }
}

/// Renames later duplicates `name_2`, `name_3`, ... (see [`export_many`]): every original
/// name is reserved first, so a renamed tool never takes the name of a later one.
pub fn unique_names(names: Vec<&str>) -> Vec<String> {
    // Reserve every original name, so a renamed tool never takes the name of a later one.
    let mut taken: HashSet<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let mut kept: HashSet<&str> = HashSet::new();
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        if kept.insert(name) {
            out.push(name.to_owned());
            continue;
        }
        let mut k = 2u64;
        loop {
            let suffix = format!("_{k}");
            let mut cut = name.len().min(MAX_NAME_LEN.saturating_sub(suffix.len()));
            while !name.is_char_boundary(cut) {
                cut -= 1;
            }
            let candidate = format!("{}{suffix}", &name[..cut]);
            if taken.insert(candidate.clone()) {
                out.push(candidate);
                break;
            }
            k += 1;
        }
    }
    out
}

/// `_meta` key: optional `label(.label)*/` prefix, then a name that is empty or starts and ends
/// with a letter or digit (MCP `basic/index.mdx`, "_meta"). Reserved for MCP, and refused: a
/// prefix with `mcp` or `modelcontextprotocol` as any label but the last (2025-06-18, e.g.
/// `mcp.dev/`) or as its second label (2025-11-25 on, e.g. `io.modelcontextprotocol/`).
fn is_valid_meta_key(key: &str) -> bool {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let name_ok = name.is_empty()
        || (name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
            && name.bytes().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && name.bytes().last().is_some_and(|c| c.is_ascii_alphanumeric()));
    let Some(prefix) = prefix else { return name_ok };
    let labels: Vec<&str> = prefix.split('.').collect();
    let label_ok = |l: &str| {
        l.bytes().next().is_some_and(|c| c.is_ascii_alphabetic())
            && l.bytes().last().is_some_and(|c| c.is_ascii_alphanumeric())
            && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
    };
    let mcp = |l: &&str| *l == "mcp" || *l == "modelcontextprotocol";
    let reserved = labels[..labels.len() - 1].iter().any(mcp) || labels.get(1).is_some_and(mcp);
    name_ok && labels.iter().all(|l| label_ok(l)) && !reserved
}

// ---- OpenAI strict mode ------------------------------------------------------------------------

/// Keywords OpenAI strict mode rejects ("Supported schemas" in the Structured Outputs guide;
/// `oneOf` fails with "'oneOf' is not permitted").
const STRICT_REJECTED: [&str; 8] = [
    "allOf",
    "oneOf",
    "not",
    "if",
    "then",
    "else",
    "dependentRequired",
    "dependentSchemas",
];

/// The only string formats strict mode accepts; others are dropped (a looser hint, not a
/// different meaning: the tool still validates its input).
const STRICT_FORMATS: [&str; 9] = [
    "date-time",
    "time",
    "date",
    "duration",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "uuid",
];

/// OpenAI: at most 10 levels of object nesting.
const STRICT_MAX_DEPTH: usize = 10;
/// OpenAI: at most 5000 object properties in total.
const STRICT_MAX_PROPERTIES: usize = 5000;
/// OpenAI: at most 1000 enum values in total.
const STRICT_MAX_ENUM_VALUES: usize = 1000;
/// OpenAI: at most 120,000 characters of property names, definition names, enum and const values.
const STRICT_MAX_CHARS: usize = 120_000;
/// OpenAI: a string enum with more than 250 values ...
const STRICT_BIG_ENUM: usize = 250;
/// ... may total at most 15,000 characters.
const STRICT_BIG_ENUM_CHARS: usize = 15_000;

/// The strict (Structured Outputs) form of an input schema; see [`to_openai`].
fn strict_schema(schema: &Value) -> Result<Value, ExportError> {
    if schema.get("anyOf").is_some() {
        return Err(ExportError::StrictUnsupported {
            what: "`anyOf`".into(),
            path: "#".into(),
        });
    }
    let mut walker = Strict {
        root: schema,
        path: Vec::new(),
        properties: 0,
        enum_values: 0,
        chars: 0,
    };
    let mut out = schema.clone();
    walker.visit(&mut out, 0)?;
    let totals = [
        (
            "the number of object properties",
            walker.properties,
            STRICT_MAX_PROPERTIES,
        ),
        (
            "the number of enum values",
            walker.enum_values,
            STRICT_MAX_ENUM_VALUES,
        ),
        (
            "the length of all names and enum/const values",
            walker.chars,
            STRICT_MAX_CHARS,
        ),
    ];
    for (what, count, max) in totals {
        if count > max {
            return Err(ExportError::StrictLimit { what, count, max });
        }
    }
    Ok(out)
}

struct Strict<'a> {
    /// The original schema, which `$ref`s resolve against.
    root: &'a Value,
    /// JSON Pointer segments of the node being visited.
    path: Vec<String>,
    properties: usize,
    enum_values: usize,
    chars: usize,
}

impl Strict<'_> {
    fn pointer(&self) -> String {
        let mut p = String::from("#");
        for s in &self.path {
            p.push('/');
            p.push_str(&s.replace('~', "~0").replace('/', "~1"));
        }
        p
    }

    fn unsupported(&self, what: impl Into<String>) -> ExportError {
        ExportError::StrictUnsupported {
            what: what.into(),
            path: self.pointer(),
        }
    }

    fn visit_child(&mut self, node: &mut Value, segments: &[&str], depth: usize) -> Result<(), ExportError> {
        let n = self.path.len();
        self.path.extend(segments.iter().map(|s| (*s).to_owned()));
        let r = self.visit(node, depth);
        self.path.truncate(n);
        r
    }

    /// Makes one subschema strict; `depth` counts the objects around it.
    fn visit(&mut self, node: &mut Value, depth: usize) -> Result<(), ExportError> {
        let obj = match node {
            Value::Object(o) => o,
            Value::Bool(true) => return Ok(()),
            _ => return Err(self.unsupported("a schema that is not an object or `true`")),
        };
        if let Some(kw) = STRICT_REJECTED.iter().find(|k| obj.contains_key(**k)) {
            return Err(self.unsupported(format!("`{kw}`")));
        }
        // A `$ref` with siblings is inlined (openai `_ensure_strict_json_schema` does the same).
        if let Some(r) = obj.get("$ref") {
            let target = r
                .as_str()
                .and_then(|r| r.strip_prefix('#'))
                .and_then(|p| self.root.pointer(p));
            let Some(target) = target else {
                return Err(self.unsupported(format!("a `$ref` that does not resolve in the schema ({r})")));
            };
            if obj.len() > 1 {
                let Value::Object(target) = target else {
                    return Err(self.unsupported("a `$ref` with siblings to a non-object schema"));
                };
                obj.remove("$ref");
                for (k, v) in target {
                    obj.entry(k.clone()).or_insert_with(|| v.clone());
                }
                if let Some(kw) = STRICT_REJECTED.iter().find(|k| obj.contains_key(**k)) {
                    return Err(self.unsupported(format!("`{kw}`")));
                }
            }
        }
        if obj.get("default") == Some(&Value::Null) {
            obj.remove("default");
        }
        if obj
            .get("format")
            .and_then(Value::as_str)
            .is_some_and(|f| !STRICT_FORMATS.contains(&f))
        {
            obj.remove("format");
        }
        if let Some(Value::Array(values)) = obj.get("enum") {
            self.enum_values += values.len();
            let chars: usize = values.iter().filter_map(Value::as_str).map(str::len).sum();
            self.chars += chars;
            if values.len() > STRICT_BIG_ENUM && chars > STRICT_BIG_ENUM_CHARS {
                return Err(ExportError::StrictLimit {
                    what: "the length of a string enum with more than 250 values",
                    count: chars,
                    max: STRICT_BIG_ENUM_CHARS,
                });
            }
        }
        if let Some(Value::String(c)) = obj.get("const") {
            self.chars += c.len();
        }

        let mut depth = depth;
        if has_type(obj, "object") || obj.contains_key("properties") {
            depth += 1;
            if depth > STRICT_MAX_DEPTH {
                return Err(ExportError::StrictLimit {
                    what: "the object nesting depth",
                    count: depth,
                    max: STRICT_MAX_DEPTH,
                });
            }
            match obj.get("additionalProperties") {
                None => {
                    obj.insert("additionalProperties".into(), false.into());
                }
                Some(Value::Bool(false)) => {}
                Some(_) => return Err(ExportError::StrictOpenObject { path: self.pointer() }),
            }
            if obj
                .get("patternProperties")
                .and_then(Value::as_object)
                .is_some_and(|p| !p.is_empty())
            {
                return Err(ExportError::StrictOpenObject { path: self.pointer() });
            }
            let was_required: HashSet<String> = obj
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default();
            if let Some(Value::Object(props)) = obj.get_mut("properties") {
                self.properties += props.len();
                let mut required = Vec::with_capacity(props.len());
                for (key, sub) in props.iter_mut() {
                    self.chars += key.len();
                    self.visit_child(sub, &["properties", key], depth)?;
                    if !was_required.contains(key) {
                        make_nullable(sub);
                    }
                    required.push(Value::String(key.clone()));
                }
                obj.insert("required".into(), Value::Array(required));
            }
        }
        match obj.get_mut("items") {
            Some(Value::Array(_)) => {
                self.path.push("items".into());
                let e = self.unsupported("tuple-form `items`");
                self.path.pop();
                return Err(e);
            }
            Some(items) => self.visit_child(items, &["items"], depth)?,
            None => {}
        }
        for kw in ["anyOf", "prefixItems"] {
            if let Some(Value::Array(branches)) = obj.get_mut(kw) {
                for (i, b) in branches.iter_mut().enumerate() {
                    self.visit_child(b, &[kw, &i.to_string()], depth)?;
                }
            }
        }
        for kw in ["$defs", "definitions"] {
            if let Some(Value::Object(defs)) = obj.get_mut(kw) {
                for (name, def) in defs.iter_mut() {
                    self.chars += name.len();
                    self.visit_child(def, &[kw, name], depth)?;
                }
            }
        }
        Ok(())
    }
}

fn has_type(obj: &Map<String, Value>, t: &str) -> bool {
    match obj.get("type") {
        Some(Value::String(s)) => s == t,
        Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(t)),
        _ => false,
    }
}

/// Whether the schema already admits `null`.
fn admits_null(schema: &Value) -> bool {
    let Value::Object(obj) = schema else {
        return schema == &Value::Bool(true);
    };
    let enum_ok = obj
        .get("enum")
        .and_then(Value::as_array)
        .is_none_or(|e| e.contains(&Value::Null));
    let const_ok = obj.get("const").is_none_or(Value::is_null);
    if !(enum_ok && const_ok) || obj.contains_key("$ref") {
        return false;
    }
    match (obj.get("type"), obj.get("anyOf")) {
        (Some(_), None) => has_type(obj, "null"),
        (None, Some(Value::Array(branches))) => branches.iter().any(admits_null),
        _ => false,
    }
}

/// Lets an optional property be `null` (strict mode makes every property required).
fn make_nullable(schema: &mut Value) {
    if admits_null(schema) {
        return;
    }
    let Value::Object(obj) = schema else { return };
    let null_schema = json!({"type": "null"});
    let plain = !["enum", "const", "anyOf", "$ref"]
        .iter()
        .any(|k| obj.contains_key(*k));
    match obj.get_mut("type") {
        Some(Value::String(t)) if plain => {
            let t = std::mem::take(t);
            obj.insert("type".into(), json!([t, "null"]));
            return;
        }
        Some(Value::Array(types)) if plain => {
            types.push("null".into());
            return;
        }
        _ => {}
    }
    const OUTSIDE: [&str; 3] = ["description", "title", "default"];
    if obj.keys().all(|k| k == "anyOf" || OUTSIDE.contains(&k.as_str()))
        && let Some(Value::Array(branches)) = obj.get_mut("anyOf")
    {
        branches.push(null_schema);
        return;
    }
    let mut outer = Map::new();
    for k in OUTSIDE {
        if let Some(v) = obj.remove(k) {
            outer.insert(k.into(), v);
        }
    }
    let inner = std::mem::take(obj);
    outer.insert("anyOf".into(), json!([inner, null_schema]));
    *obj = outer;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::SecretKey;
    use crate::spec::{Cost, Example, Limits, Runtime, RuntimeKind, SPEC_FORMAT};

    /// The ancestor's `sample_tool(a: int, b: float = 1.0, tags: list[str] | None = None,
    /// mode: Literal['x','y'] = 'x') -> dict`, as an atr spec.
    fn sample() -> ToolSpec {
        ToolSpec {
            v: SPEC_FORMAT,
            name: "sample_tool".into(),
            version: semver::Version::new(1, 2, 3),
            description: "Combine a and b under a mode.\n\nArgs:\n    a: The integer input.\n    b: A float multiplier.\n    tags: Optional list of tags.\n    mode: Either 'x' or 'y'.\n\nReturns:\n    A dict with the result.".into(),
            tags: vec!["demo".into()],
            input_schema: json!({
                "type": "object",
                "properties": {
                    "a": {"type": "integer", "description": "The integer input."},
                    "b": {"type": "number", "description": "A float multiplier.", "default": 1.0},
                    "tags": {"type": "array", "items": {"type": "string"}, "description": "Optional list of tags."},
                    "mode": {"type": "string", "enum": ["x", "y"], "default": "x", "description": "Either 'x' or 'y'."}
                },
                "required": ["a"]
            }),
            output_schema: Some(json!({
                "type": "object",
                "properties": {"result": {"type": "number"}},
                "required": ["result"]
            })),
            runtime: Runtime {
                kind: RuntimeKind::Docker,
                image: "atr/sample-tool:1.2.3".into(),
                image_digest: format!("sha256:{}", "0123456789abcdef".repeat(4)),
                command: vec![],
                workdir: None,
            },
            limits: Limits::default(),
            side_effects: vec![SideEffect::None],
            permissions: Default::default(),
            cost: Cost::Low,
            homepage: None,
            license: None,
            examples: vec![Example {
                input: json!({"a": 2, "b": 1.5, "mode": "y"}),
                output: json!({"result": 3.0}),
            }],
            publisher: SecretKey::from_seed(&[7; 32]).public(),
            created_at_ms: 1_700_000_000_000,
        }
    }

    fn golden(text: &str) -> Value {
        serde_json::from_str(text).expect("golden file is JSON")
    }

    fn mcp_opts() -> ExportOptions {
        let mut meta = Map::new();
        meta.insert("dev.atr/id".into(), "atr1sampletoolid".into());
        ExportOptions {
            meta: Some(meta),
            ..ExportOptions::default()
        }
    }

    fn strict() -> ExportOptions {
        ExportOptions {
            strict: true,
            ..ExportOptions::default()
        }
    }

    fn strict_params(schema: Value) -> Result<Value, ExportError> {
        let mut spec = sample();
        spec.input_schema = schema;
        Ok(to_openai(&spec, &strict())?["function"]["parameters"].clone())
    }

    #[test]
    fn sample_is_a_valid_spec() {
        crate::validate::check_spec(&sample()).expect("valid");
    }

    #[test]
    fn golden_files() -> Result<(), ExportError> {
        let spec = sample();
        let plain = ExportOptions::default();
        let cases = [
            (
                to_openai(&spec, &plain)?,
                include_str!("../tests/data/exports/openai.json"),
            ),
            (
                to_openai(&spec, &strict())?,
                include_str!("../tests/data/exports/openai-strict.json"),
            ),
            (
                to_openai_responses(&spec, &plain)?,
                include_str!("../tests/data/exports/openai-responses.json"),
            ),
            (
                to_anthropic(&spec, &plain)?,
                include_str!("../tests/data/exports/anthropic.json"),
            ),
            (
                to_mcp(&spec, &mcp_opts())?,
                include_str!("../tests/data/exports/mcp.json"),
            ),
            (
                to_gemini(&spec, &plain)?,
                include_str!("../tests/data/exports/gemini.json"),
            ),
        ];
        for (i, (got, want)) in cases.into_iter().enumerate() {
            assert_eq!(
                got,
                golden(want),
                "case {i}: got\n{}",
                serde_json::to_string_pretty(&got).unwrap_or_default()
            );
        }
        Ok(())
    }

    #[test]
    fn dispatcher_matches_functions() -> Result<(), ExportError> {
        let spec = sample();
        let o = mcp_opts();
        assert_eq!(export(&spec, ExportFormat::OpenAi, &o)?, to_openai(&spec, &o)?);
        assert_eq!(
            export(&spec, ExportFormat::OpenAiResponses, &o)?,
            to_openai_responses(&spec, &o)?
        );
        assert_eq!(
            export(&spec, ExportFormat::Anthropic, &o)?,
            to_anthropic(&spec, &o)?
        );
        assert_eq!(export(&spec, ExportFormat::Mcp, &o)?, to_mcp(&spec, &o)?);
        assert_eq!(export(&spec, ExportFormat::Gemini, &o)?, to_gemini(&spec, &o)?);
        Ok(())
    }

    #[test]
    fn format_names_round_trip() {
        for f in ExportFormat::ALL {
            assert_eq!(f.to_string().parse::<ExportFormat>(), Ok(f));
        }
        assert_eq!(
            "claude".parse::<ExportFormat>(),
            Err(UnknownFormat("claude".into()))
        );
        assert!("OpenAI".parse::<ExportFormat>().is_err());
    }

    #[test]
    fn responses_strict_matches_chat_strict() -> Result<(), ExportError> {
        let spec = sample();
        let chat = to_openai(&spec, &strict())?;
        let resp = to_openai_responses(&spec, &strict())?;
        assert_eq!(resp["strict"], json!(true));
        assert_eq!(resp["parameters"], chat["function"]["parameters"]);
        assert_eq!(
            to_openai_responses(&spec, &ExportOptions::default())?["strict"],
            json!(false)
        );
        assert!(
            to_openai(&spec, &ExportOptions::default())?["function"]
                .get("strict")
                .is_none()
        );
        Ok(())
    }

    #[test]
    fn strict_sample_accepts_nulls_and_the_example() -> Result<(), ExportError> {
        let params = to_openai(&sample(), &strict())?["function"]["parameters"].clone();
        let ok = |v: Value| crate::input::validate_input(&params, &v).is_ok();
        assert!(ok(json!({"a": 1, "b": null, "tags": null, "mode": null})));
        assert!(ok(json!({"a": 2, "b": 1.5, "tags": ["t"], "mode": "y"})));
        assert!(!ok(json!({"a": 2, "b": 1.5, "tags": null, "mode": "z"})));
        assert!(!ok(json!({"a": null, "b": null, "tags": null, "mode": null})));
        assert!(!ok(
            json!({"a": 1, "b": null, "tags": null, "mode": null, "extra": 1})
        ));
        Ok(())
    }

    #[test]
    fn strict_rewrites_nested_objects_refs_and_unions() -> Result<(), ExportError> {
        let got = strict_params(json!({
            "type": "object",
            "$defs": {"Point": {"type": "object", "properties": {"x": {"type": "number"}}}},
            "properties": {
                "p": {"$ref": "#/$defs/Point"},
                "q": {"$ref": "#/$defs/Point", "description": "Inlined."},
                "u": {"anyOf": [{"type": "string"}, {"type": "integer"}], "description": "Union."},
                "n": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": null},
                "k": {"const": "fixed"},
                "t": {"type": "string", "format": "uri"},
                "list": {"type": "array", "items": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}}
            },
            "required": ["q", "list"]
        }))?;
        let point = json!({"type": "object", "properties": {"x": {"type": ["number", "null"]}},
                           "required": ["x"], "additionalProperties": false});
        let want = json!({
            "type": "object",
            "additionalProperties": false,
            "$defs": {"Point": point},
            "properties": {
                "p": {"anyOf": [{"$ref": "#/$defs/Point"}, {"type": "null"}]},
                "q": {"description": "Inlined.", "type": "object", "properties": {"x": {"type": ["number", "null"]}},
                      "required": ["x"], "additionalProperties": false},
                "u": {"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}], "description": "Union."},
                "n": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                "k": {"anyOf": [{"const": "fixed"}, {"type": "null"}]},
                "t": {"type": ["string", "null"]},
                "list": {"type": "array", "items": {"type": "object", "properties": {"id": {"type": "string"}},
                         "required": ["id"], "additionalProperties": false}}
            },
            "required": ["k", "list", "n", "p", "q", "t", "u"]
        });
        assert_eq!(
            got,
            want,
            "{}",
            serde_json::to_string_pretty(&got).unwrap_or_default()
        );
        Ok(())
    }

    #[test]
    fn strict_is_idempotent() -> Result<(), ExportError> {
        let once = to_openai(&sample(), &strict())?["function"]["parameters"].clone();
        assert_eq!(strict_params(once.clone())?, once);
        Ok(())
    }

    #[test]
    fn strict_rejects_what_it_cannot_express() {
        let nested = |sub: Value| json!({"type": "object", "properties": {"outer": {"type": "object", "properties": {"x": sub}}}});
        for kw in ["allOf", "oneOf", "not", "if"] {
            assert_eq!(
                strict_params(nested(json!({kw: [{"type": "string"}]}))),
                Err(ExportError::StrictUnsupported {
                    what: format!("`{kw}`"),
                    path: "#/properties/outer/properties/x".into()
                })
            );
        }
        let open = strict_params(nested(
            json!({"type": "object", "additionalProperties": {"type": "string"}}),
        ));
        assert_eq!(
            open,
            Err(ExportError::StrictOpenObject {
                path: "#/properties/outer/properties/x".into()
            })
        );
        let root_any = strict_params(json!({"type": "object", "anyOf": [{"required": ["a"]}]}));
        assert!(matches!(root_any, Err(ExportError::StrictUnsupported { .. })));
        let tuple = strict_params(nested(json!({"type": "array", "items": [{"type": "string"}]})));
        assert!(matches!(tuple, Err(ExportError::StrictUnsupported { .. })));
        let dangling = strict_params(nested(json!({"$ref": "#/$defs/Nope"})));
        assert!(matches!(dangling, Err(ExportError::StrictUnsupported { .. })));
        let mut deep = json!({"type": "string"});
        for _ in 0..11 {
            deep = json!({"type": "object", "properties": {"n": deep}, "required": ["n"]});
        }
        assert!(matches!(
            strict_params(deep),
            Err(ExportError::StrictLimit { max: 10, .. })
        ));
        // Without strict, the same schema exports as is.
        let mut spec = sample();
        spec.input_schema = nested(json!({"oneOf": [{"type": "string"}]}));
        assert!(to_openai(&spec, &ExportOptions::default()).is_ok());
    }

    #[test]
    fn mcp_annotations_follow_side_effects() -> Result<(), ExportError> {
        let ann = |effects: Vec<SideEffect>| -> Result<Value, ExportError> {
            let mut spec = sample();
            spec.side_effects = effects;
            Ok(to_mcp(&spec, &ExportOptions::default())?["annotations"].clone())
        };
        let hints = |r: bool, d: bool, i: bool, o: bool| json!({"readOnlyHint": r, "destructiveHint": d, "idempotentHint": i, "openWorldHint": o});
        assert_eq!(ann(vec![SideEffect::None])?, hints(true, false, true, false));
        assert_eq!(ann(vec![SideEffect::Reads])?, hints(true, false, true, false));
        assert_eq!(
            ann(vec![SideEffect::Reads, SideEffect::Network])?,
            hints(false, false, false, true)
        );
        assert_eq!(ann(vec![SideEffect::Writes])?, hints(false, false, false, false));
        assert_eq!(
            ann(vec![SideEffect::Deletes, SideEffect::Network])?,
            hints(false, true, false, true)
        );
        Ok(())
    }

    #[test]
    fn mcp_output_schema_only_with_object_root() -> Result<(), ExportError> {
        let mut spec = sample();
        spec.output_schema = Some(json!({"type": "array", "items": {"type": "number"}}));
        let tool = to_mcp(&spec, &ExportOptions::default())?;
        assert!(tool.get("outputSchema").is_none());
        assert!(tool.get("_meta").is_none());
        // Other formats keep it.
        assert_eq!(
            to_gemini(&spec, &ExportOptions::default())?["responseJsonSchema"]["type"],
            "array"
        );
        spec.output_schema = None;
        assert!(
            to_openai_responses(&spec, &ExportOptions::default())?
                .get("output_schema")
                .is_none()
        );
        Ok(())
    }

    #[test]
    fn mcp_meta_keys_are_checked() {
        for good in ["dev.atr/id", "id", "a.b-c/x_y.z", "dev.atr/", "com.example.mcp/x"] {
            assert!(is_valid_meta_key(good), "{good}");
        }
        for bad in [
            "io.modelcontextprotocol/x",
            "dev.mcp/x",
            "mcp.dev/x",
            "mcp.dev.atr/x",
            "-x",
            "x-",
            "1dev/x",
            "dev..atr/x",
            "a/b/c",
        ] {
            assert!(!is_valid_meta_key(bad), "{bad}");
        }
        let mut meta = Map::new();
        meta.insert("io.modelcontextprotocol/id".into(), "x".into());
        let opts = ExportOptions {
            meta: Some(meta),
            ..ExportOptions::default()
        };
        assert!(matches!(
            to_mcp(&sample(), &opts),
            Err(ExportError::InvalidMetaKey { .. })
        ));
    }

    #[test]
    fn anthropic_refuses_root_combinators_and_bad_examples() -> Result<(), ExportError> {
        let mut spec = sample();
        spec.input_schema["anyOf"] = json!([{"required": ["a"]}, {"required": ["b"]}]);
        assert_eq!(
            to_anthropic(&spec, &ExportOptions::default()),
            Err(ExportError::RootCombinator {
                keyword: "anyOf",
                format: ExportFormat::Anthropic
            })
        );
        let mut spec = sample();
        spec.examples.push(Example {
            input: json!({"a": "not an integer"}),
            output: json!({"result": 1}),
        });
        assert!(
            to_anthropic(&spec, &ExportOptions::default())?
                .get("input_examples")
                .is_none()
        );
        Ok(())
    }

    #[test]
    fn gemini_isolates_refs_with_siblings() -> Result<(), ExportError> {
        let mut spec = sample();
        spec.input_schema = json!({
            "type": "object",
            "$defs": {"P": {"type": "object", "properties": {"next": {"$ref": "#/$defs/P", "description": "Next."}}}},
            "properties": {
                "p": {"$ref": "#/$defs/P", "description": "A point."},
                "q": {"$ref": "#/$defs/P"},
                "r": {"type": "array", "items": {"$ref": "#/$defs/P", "title": "R"}}
            }
        });
        let got = to_gemini(&spec, &ExportOptions::default())?["parametersJsonSchema"].clone();
        let want = json!({
            "type": "object",
            "$defs": {"P": {"type": "object", "properties": {"next": {"anyOf": [{"$ref": "#/$defs/P"}], "description": "Next."}}}},
            "properties": {
                "p": {"anyOf": [{"$ref": "#/$defs/P"}], "description": "A point."},
                "q": {"$ref": "#/$defs/P"},
                "r": {"type": "array", "items": {"anyOf": [{"$ref": "#/$defs/P"}], "title": "R"}}
            }
        });
        assert_eq!(got, want);
        Ok(())
    }

    #[test]
    fn anthropic_examples_only_when_all_objects() -> Result<(), ExportError> {
        let mut spec = sample();
        spec.examples.push(Example {
            input: json!([1]),
            output: json!(null),
        });
        assert!(
            to_anthropic(&spec, &ExportOptions::default())?
                .get("input_examples")
                .is_none()
        );
        spec.examples.clear();
        assert!(
            to_anthropic(&spec, &ExportOptions::default())?
                .get("input_examples")
                .is_none()
        );
        Ok(())
    }

    #[test]
    fn names_are_checked_per_format() -> Result<(), ExportError> {
        let mut spec = sample();
        spec.name = "1tool".into();
        assert!(to_openai(&spec, &ExportOptions::default()).is_ok());
        assert!(matches!(
            to_gemini(&spec, &ExportOptions::default()),
            Err(ExportError::InvalidName {
                format: ExportFormat::Gemini,
                ..
            })
        ));
        let renamed = ExportOptions {
            name: Some("tool_1".into()),
            ..ExportOptions::default()
        };
        assert_eq!(to_gemini(&spec, &renamed)?["name"], "tool_1");
        let dotted = ExportOptions {
            name: Some("sample.tool".into()),
            ..ExportOptions::default()
        };
        assert_eq!(to_mcp(&spec, &dotted)?["name"], "sample.tool");
        assert!(matches!(
            to_anthropic(&spec, &dotted),
            Err(ExportError::InvalidName { .. })
        ));
        let mut no_object = sample();
        no_object.input_schema = json!({"type": "string"});
        assert_eq!(
            to_anthropic(&no_object, &ExportOptions::default()),
            Err(ExportError::InputNotObject)
        );
        Ok(())
    }

    #[test]
    fn export_many_makes_names_unique() -> Result<(), ExportError> {
        let named = |n: &str| {
            let mut s = sample();
            s.name = n.into();
            s
        };
        let long = "x".repeat(64);
        let specs = [
            named("a"),
            named("a"),
            named("a_2"),
            named("a"),
            named(&long),
            named(&long),
        ];
        let refs: Vec<&ToolSpec> = specs.iter().collect();
        let out = export_many(&refs, ExportFormat::OpenAi, &ExportOptions::default())?;
        let names: Vec<&str> = out
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["function"]["name"].as_str())
            .collect();
        let long_2 = format!("{}_2", "x".repeat(62));
        assert_eq!(names, ["a", "a_3", "a_2", "a_4", long.as_str(), long_2.as_str()]);
        let mcp = export_many(&refs[..2], ExportFormat::Mcp, &ExportOptions::default())?;
        assert_eq!(mcp[1]["name"], "a_2");
        assert_eq!(
            export_many(&[], ExportFormat::Gemini, &ExportOptions::default())?,
            json!([])
        );
        Ok(())
    }
}
