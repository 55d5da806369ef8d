//! The schema a table of signatures gets, compared whole; the exports of each in every agent
//! format, checked by the vendors' SDKs (`../shared/tools/check_exports.py`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use atr_protocol::export::{ExportError, ExportFormat, ExportOptions, export};
use atr_tool::{Tool, ToolError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

// ---- the ancestor's sample: sample_tool(a: int, b: float = 1.0, tags: list[str] | None = None,
//      mode: Literal['x','y'] = 'x') -> dict ----

/// `Literal['x', 'y']`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum Mode {
    X,
    Y,
}

/// What `sample_tool` returns.
#[derive(Debug, Serialize, JsonSchema)]
struct Combined {
    /// `a * b`, negated in mode `y`.
    result: f64,
    /// The tags given, sorted.
    tags: Vec<String>,
}

/// Combine a and b under a mode.
///
/// # Arguments
///
/// * `a` - The integer input.
/// * `b` - A float multiplier.
/// * `tags` - Optional list of tags.
/// * `mode` - Either 'x' or 'y'.
#[atr_tool::tool(
    tags = ["demo"],
    cost = "low",
    default(b = 1.0, mode = Mode::X),
    example(input = {"a": 2, "b": 1.5, "mode": "y"}, output = {"result": -3.0, "tags": []}),
)]
fn sample_tool(a: i64, b: f64, tags: Option<Vec<String>>, mode: Mode) -> Combined {
    let mut tags = tags.unwrap_or_default();
    tags.sort();
    let result = a as f64 * b;
    Combined {
        result: if mode == Mode::Y { -result } else { result },
        tags,
    }
}

// ---- the rest of the table ----

/// Add two numbers.
#[atr_tool::tool(name = "calculator", tags = ["math"])]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

/// The current time (no parameters).
#[atr_tool::tool]
fn now() -> String {
    "2026-01-01T00:00:00Z".into()
}

/// A rectangle.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Rect {
    /// Width, in metres.
    width: f64,
    /// Height, in metres.
    height: f64,
    /// A name to show.
    label: Option<String>,
}

/// How to round.
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum Rounding {
    /// Keep every digit.
    #[default]
    Exact,
    /// To the nearest integer.
    Nearest,
}

/// The area of a rectangle.
///
/// # Arguments
///
/// * `shape` - The rectangle.
/// * `rounding` - How to round the area.
#[atr_tool::tool(default(rounding))]
fn area(shape: Rect, rounding: Rounding) -> f64 {
    let _ = shape.label;
    let a = shape.width * shape.height;
    match rounding {
        Rounding::Exact => a,
        Rounding::Nearest => a.round(),
    }
}

/// A geometric shape.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum Shape {
    /// A circle.
    Circle {
        /// Its radius.
        radius: f64,
    },
    /// A square.
    Square {
        /// Its side.
        side: f64,
    },
}

/// The perimeter of a shape.
#[atr_tool::tool]
fn perimeter(shape: Shape) -> f64 {
    match shape {
        Shape::Circle { radius } => 2.0 * std::f64::consts::PI * radius,
        Shape::Square { side } => 4.0 * side,
    }
}

/// Count words.
///
/// # Arguments
///
/// * `counts` - Counts so far, by word.
/// * `text` - The text to count.
/// * `limit` - Stop after this many words.
#[atr_tool::tool(default(limit = 100))]
fn count(counts: BTreeMap<String, u32>, text: String, limit: u8) -> Result<BTreeMap<String, u32>, ToolError> {
    let mut counts = counts;
    for w in text.split_whitespace().take(limit.into()) {
        *counts.entry(w.to_owned()).or_default() += 1;
    }
    Ok(counts)
}

/// A tree of labels.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
struct Node {
    /// The label.
    label: String,
    /// The children.
    children: Vec<Node>,
}

/// Count the nodes of a tree.
#[atr_tool::tool]
async fn tree_size(tree: Node, r#type: Option<String>) -> u64 {
    fn size(n: &Node) -> u64 {
        1 + n.children.iter().map(size).sum::<u64>()
    }
    let _ = r#type;
    size(&tree)
}

/// Echo any JSON value.
#[atr_tool::tool]
fn echo(value: Value, matrix: Vec<Vec<f32>>, flag: bool) -> Value {
    let _ = (matrix, flag);
    value
}

fn table() -> Vec<&'static dyn Tool> {
    vec![
        &SampleToolTool,
        &AddTool,
        &NowTool,
        &AreaTool,
        &PerimeterTool,
        &CountTool,
        &TreeSizeTool,
        &EchoTool,
    ]
}

const I64: (i64, i64) = (i64::MIN, i64::MAX);

#[test]
fn ancestor_sample_is_exact() {
    let s = SampleToolTool.input_schema();
    assert_eq!(
        s,
        json!({
            "type": "object",
            "properties": {
                "a": {"type": "integer", "description": "The integer input.", "minimum": I64.0, "maximum": I64.1},
                "b": {"type": "number", "description": "A float multiplier.", "default": 1.0},
                "tags": {"type": "array", "items": {"type": "string"}, "description": "Optional list of tags."},
                "mode": {"type": "string", "enum": ["x", "y"], "default": "x", "description": "Either 'x' or 'y'."}
            },
            "required": ["a"],
            "additionalProperties": false
        }),
        "{}",
        serde_json::to_string_pretty(&s).unwrap()
    );
    // What the acceptance names, one by one.
    assert_eq!(s["required"], json!(["a"]));
    assert_eq!(s["properties"]["b"]["type"], "number");
    assert_eq!(s["properties"]["b"]["default"], json!(1.0));
    assert_eq!(s["properties"]["tags"]["items"], json!({"type": "string"}));
    assert_eq!(s["properties"]["mode"]["enum"], json!(["x", "y"]));
    assert_eq!(s["properties"]["mode"]["default"], "x");

    assert_eq!(
        SampleToolTool.output_schema(),
        Some(json!({
            "type": "object",
            "description": "What `sample_tool` returns.",
            "properties": {
                "result": {"type": "number", "description": "`a * b`, negated in mode `y`."},
                "tags": {"type": "array", "items": {"type": "string"}, "description": "The tags given, sorted."}
            },
            "required": ["result", "tags"]
        }))
    );
    let m = SampleToolTool.meta();
    assert_eq!(
        (m.name, m.version, m.description, m.tags, m.cost),
        (
            "sample_tool",
            env!("CARGO_PKG_VERSION"),
            "Combine a and b under a mode.",
            &["demo"][..],
            Some("low")
        )
    );
}

#[test]
fn the_table() {
    let cases: Vec<(&dyn Tool, Value)> = vec![
        (
            &AddTool,
            json!({"type": "object", "properties": {
                "a": {"type": "integer", "minimum": I64.0, "maximum": I64.1},
                "b": {"type": "integer", "minimum": I64.0, "maximum": I64.1}
            }, "required": ["a", "b"], "additionalProperties": false}),
        ),
        (&NowTool, json!({"type": "object", "additionalProperties": false})),
        (
            &AreaTool,
            json!({"type": "object", "properties": {
                "shape": {
                    "type": "object",
                    "description": "The rectangle.",
                    "properties": {
                        "width": {"type": "number", "description": "Width, in metres."},
                        "height": {"type": "number", "description": "Height, in metres."},
                        "label": {"type": ["string", "null"], "description": "A name to show."}
                    },
                    "required": ["width", "height"],
                    "additionalProperties": false
                },
                "rounding": {
                    "type": "string",
                    "enum": ["exact", "nearest"],
                    "default": "exact",
                    "description": "How to round the area.\n- `exact`: Keep every digit.\n- `nearest`: To the nearest integer."
                }
            }, "required": ["shape"], "additionalProperties": false}),
        ),
        (
            &PerimeterTool,
            json!({"type": "object", "properties": {
                "shape": {"description": "A geometric shape.", "anyOf": [
                    {"type": "object", "description": "A circle.", "properties": {"circle": {
                        "type": "object", "properties": {"radius": {"type": "number", "description": "Its radius."}},
                        "required": ["radius"]}}, "required": ["circle"], "additionalProperties": false},
                    {"type": "object", "description": "A square.", "properties": {"square": {
                        "type": "object", "properties": {"side": {"type": "number", "description": "Its side."}},
                        "required": ["side"]}}, "required": ["square"], "additionalProperties": false}
                ]}
            }, "required": ["shape"], "additionalProperties": false}),
        ),
        (
            &CountTool,
            json!({"type": "object", "properties": {
                "counts": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0, "maximum": u32::MAX},
                           "description": "Counts so far, by word."},
                "text": {"type": "string", "description": "The text to count."},
                "limit": {"type": "integer", "minimum": 0, "maximum": 255, "default": 100,
                          "description": "Stop after this many words."}
            }, "required": ["counts", "text"], "additionalProperties": false}),
        ),
        (&TreeSizeTool, {
            // A recursive type: inlined once, then by reference.
            let node = json!({"type": "object", "description": "A tree of labels.", "properties": {
                    "label": {"type": "string", "description": "The label."},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}, "description": "The children."}
                }, "required": ["label", "children"]});
            json!({"type": "object", "properties": {"tree": node, "type": {"type": "string"}},
                       "required": ["tree"], "additionalProperties": false, "$defs": {"Node": node}})
        }),
        (
            &EchoTool,
            json!({"type": "object", "properties": {
                "value": {},
                "matrix": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
                "flag": {"type": "boolean"}
            }, "required": ["value", "matrix", "flag"], "additionalProperties": false}),
        ),
    ];
    for (tool, want) in cases {
        let got = tool.input_schema();
        assert_eq!(
            got,
            want,
            "{}: got\n{}",
            tool.name(),
            serde_json::to_string_pretty(&got).unwrap()
        );
    }
    assert_eq!(AddTool.name(), "calculator");
    assert_eq!(AddTool.meta().function, "add");
    assert_eq!(
        AddTool.output_schema(),
        Some(json!({"type": "integer", "minimum": I64.0, "maximum": I64.1}))
    );
    assert_eq!(NowTool.output_schema(), Some(json!({"type": "string"})));
    assert_eq!(EchoTool.output_schema(), None, "any value: no output schema");
    assert_eq!(
        CountTool.output_schema(),
        Some(
            json!({"type": "object", "additionalProperties": {"type": "integer", "minimum": 0, "maximum": u32::MAX}})
        )
    );
}

#[test]
fn every_tool_of_the_table_is_valid() {
    for tool in table() {
        atr_tool::testing::assert_valid(tool);
    }
}

#[test]
fn calls_deserialize_defaults_and_validate() {
    assert_eq!(AddTool.call(json!({"a": 1, "b": 2})).unwrap(), json!(3));
    let out = SampleToolTool.call(json!({"a": 2, "tags": ["z", "a"]})).unwrap();
    assert_eq!(out, json!({"result": 2.0, "tags": ["a", "z"]}));
    assert_eq!(
        SampleToolTool
            .call(json!({"a": 2, "b": 0.5, "mode": "y"}))
            .unwrap()["result"],
        json!(-1.0)
    );
    assert_eq!(
        AreaTool
            .call(json!({"shape": {"width": 1.5, "height": 3}, "rounding": "nearest"}))
            .unwrap(),
        json!(5.0)
    );
    assert_eq!(
        PerimeterTool
            .call(json!({"shape": {"square": {"side": 2}}}))
            .unwrap(),
        json!(8.0)
    );
    let tree =
        json!({"label": "a", "children": [{"label": "b", "children": []}, {"label": "c", "children": []}]});
    assert_eq!(
        TreeSizeTool.call(json!({"tree": tree, "type": "x"})).unwrap(),
        json!(3)
    );
    assert_eq!(
        CountTool
            .call(json!({"counts": {"a": 1}, "text": "a b a c", "limit": 3}))
            .unwrap(),
        json!({"a": 3, "b": 1})
    );
    assert_eq!(
        EchoTool
            .call(json!({"value": [null, 1], "matrix": [[1.5]], "flag": true}))
            .unwrap(),
        json!([null, 1])
    );

    for (tool, bad) in [
        (&AddTool as &dyn Tool, json!({"a": 1})),
        (&AddTool, json!({"a": 1, "b": "2"})),
        (&AddTool, json!({"a": 1, "b": 2, "c": 3})),
        (&AddTool, json!({"a": 1.5, "b": 2})),
        (&AddTool, json!([1, 2])),
        (&SampleToolTool, json!({"a": 1, "mode": "z"})),
        (&SampleToolTool, json!({"a": 1, "tags": [1]})),
        (&SampleToolTool, json!({"a": 1, "tags": null})),
        (&CountTool, json!({"counts": {}, "text": "", "limit": 256})),
        (&AreaTool, json!({"shape": {"width": 1, "height": 1, "depth": 1}})),
    ] {
        let e = tool.call(bad.clone()).unwrap_err();
        assert_eq!((e.code(), e.exit_code()), ("invalid_input", 2), "{bad}: {e}");
    }
}

// ---- exports ----

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every export of every tool of the table: `(format name for the checker, file name, tools)`.
fn exports() -> Vec<(&'static str, &'static str, Vec<Value>)> {
    let plain = ExportOptions::default();
    let strict = ExportOptions {
        strict: true,
        ..ExportOptions::default()
    };
    let specs: Vec<_> = table()
        .into_iter()
        .map(|t| atr_tool::testing::spec(t).unwrap())
        .collect();
    let mut out = Vec::new();
    for (checker, file, format, opts) in [
        ("openai", "openai.json", ExportFormat::OpenAi, &plain),
        ("openai", "openai-strict.json", ExportFormat::OpenAi, &strict),
        (
            "openai-responses",
            "openai-responses.json",
            ExportFormat::OpenAiResponses,
            &plain,
        ),
        (
            "openai-responses",
            "openai-responses-strict.json",
            ExportFormat::OpenAiResponses,
            &strict,
        ),
        ("anthropic", "anthropic.json", ExportFormat::Anthropic, &plain),
        ("mcp", "mcp.json", ExportFormat::Mcp, &plain),
        ("gemini", "gemini.json", ExportFormat::Gemini, &plain),
    ] {
        let mut tools = Vec::new();
        for spec in &specs {
            match export(spec, format, opts) {
                Ok(v) => tools.push(v),
                // A map parameter is an open object, which strict mode cannot express: the
                // exporter says so instead of loosening the schema.
                Err(ExportError::StrictOpenObject { path }) if opts.strict && spec.name == "count" => {
                    assert_eq!(path, "#/properties/counts");
                }
                Err(e) => panic!("{} to {file}: {e}", spec.name),
            }
        }
        out.push((checker, file, tools));
    }
    out
}

#[test]
fn exports_keep_the_exact_schema() {
    let all = exports();
    let find = |file: &str| all.iter().find(|e| e.1 == file).map(|e| e.2.clone()).unwrap();
    let openai = &find("openai.json")[0];
    assert_eq!(openai["function"]["parameters"], SampleToolTool.input_schema());
    let strict = &find("openai-strict.json")[0]["function"];
    assert_eq!(strict["strict"], true);
    assert_eq!(
        strict["parameters"]["required"],
        json!(["a", "b", "mode", "tags"])
    );
    assert_eq!(
        strict["parameters"]["properties"]["tags"]["type"],
        json!(["array", "null"])
    );
    assert_eq!(
        strict["parameters"]["properties"]["tags"]["items"],
        json!({"type": "string"})
    );
    let anthropic = &find("anthropic.json")[0];
    assert_eq!(
        anthropic["input_schema"]["properties"]["mode"]["enum"],
        json!(["x", "y"])
    );
    assert_eq!(
        anthropic["input_examples"],
        json!([{"a": 2, "b": 1.5, "mode": "y"}])
    );
    let mcp = &find("mcp.json")[0];
    assert_eq!(mcp["inputSchema"]["properties"]["b"]["default"], json!(1.0));
    assert_eq!(mcp["annotations"]["readOnlyHint"], true);
    let gemini = &find("gemini.json")[0];
    assert_eq!(
        gemini["parametersJsonSchema"]["properties"]["tags"]["items"],
        json!({"type": "string"})
    );
    // The strict export of the whole table leaves out only the map tool.
    assert_eq!(find("openai-strict.json").len(), table().len() - 1);
}

/// Writes every export of the table, one file per format, into `$ATR_SDK_EXPORTS_DIR` (a temp
/// dir when unset). `.ci/run` sets it and then checks the files with the vendors' own SDK types
/// (`protocol/tests/check_exports.sh`), so `cargo test` itself needs nothing outside the repo.
#[test]
fn exports_are_written_for_the_vendor_sdk_checker() {
    let temp = tempfile::tempdir().unwrap();
    let dir =
        std::env::var_os("ATR_SDK_EXPORTS_DIR").map_or_else(|| temp.path().to_path_buf(), PathBuf::from);
    std::fs::create_dir_all(&dir).unwrap();
    for (format, file, tools) in exports() {
        assert!(!tools.is_empty(), "{format}: no tools exported");
        let path = dir.join(file);
        std::fs::write(&path, serde_json::to_vec_pretty(&tools).unwrap()).unwrap();
        let back: Vec<Value> = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(back.len(), tools.len(), "{format} {file}");
    }
}

// ---- docs/sdk.md shows real output ----

/// Each ```json block after a `<!-- sdk-output: KEY -->` line of `docs/sdk.md` is the output
/// of this code for KEY.
#[test]
fn docs_show_real_output() {
    let path = workspace_root().join("docs/sdk.md");
    let Ok(doc) = std::fs::read_to_string(&path) else {
        panic!("{} is missing", path.display());
    };
    let strict = ExportOptions {
        strict: true,
        ..ExportOptions::default()
    };
    let sample = atr_tool::testing::spec(&SampleToolTool).unwrap();
    let outputs: Vec<(&str, Value)> = vec![
        ("add.input_schema", AddTool.input_schema()),
        (
            "sample_tool.output_schema",
            SampleToolTool.output_schema().unwrap(),
        ),
        (
            "sample_tool.openai",
            export(&sample, ExportFormat::OpenAi, &ExportOptions::default()).unwrap(),
        ),
        (
            "sample_tool.openai_strict",
            export(&sample, ExportFormat::OpenAi, &strict).unwrap(),
        ),
    ];
    let mut missing = Vec::new();
    for (key, want) in &outputs {
        let marker = format!("<!-- sdk-output: {key} -->");
        let Some(at) = doc.find(&marker) else {
            missing.push(format!(
                "{marker} (then a ```json block):\n{}",
                serde_json::to_string_pretty(want).unwrap()
            ));
            continue;
        };
        let rest = &doc[at + marker.len()..];
        let start = rest.find("```json\n").map(|i| i + "```json\n".len()).unwrap();
        let end = start + rest[start..].find("```").unwrap();
        let shown: Value = serde_json::from_str(&rest[start..end]).unwrap();
        if &shown != want {
            missing.push(format!(
                "{key} differs; it is now:\n{}",
                serde_json::to_string_pretty(want).unwrap()
            ));
        }
    }
    assert!(
        missing.is_empty(),
        "docs/sdk.md is out of date:\n{}",
        missing.join("\n\n")
    );
}
