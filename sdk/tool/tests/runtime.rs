//! The runtime contract, through `atr_tool::run` (what the generated `main` calls with the
//! process's arguments and streams).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use atr_protocol::Manifest;
use atr_tool::{Tool, ToolError};
use serde_json::{Value, json};

/// Add two integers.
#[atr_tool::tool(tags = ["math"], example(input = {"a": 1, "b": 2}, output = 3))]
fn add(a: i64, b: i64) -> Result<i64, ToolError> {
    a.checked_add(b)
        .ok_or_else(|| ToolError::bad_input("overflow", "the sum overflows"))
}

/// Read a number from a string, failing like a library does.
#[atr_tool::tool]
fn parse(text: String) -> Result<i64, std::num::ParseIntError> {
    text.trim().parse()
}

/// Fail with a string.
#[atr_tool::tool]
async fn grumpy(why: String) -> Result<(), String> {
    Err(format!("no: {why}"))
}

/// Panic on request.
#[atr_tool::tool]
fn boom(really: bool) -> u8 {
    if really {
        panic!("asked to");
    }
    0
}

/// Return a NaN where a number is due.
#[atr_tool::tool]
fn not_a_number() -> f64 {
    f64::NAN
}

struct Run {
    code: u8,
    stdout: String,
    stderr: String,
}

impl Run {
    fn error(&self) -> Value {
        serde_json::from_str::<Value>(&self.stderr).unwrap()["error"].clone()
    }
}

fn run(tools: &[&dyn Tool], args: &[&str], env: Option<&str>, stdin: &str) -> Run {
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = atr_tool::run(
        tools,
        "mybin",
        &args,
        env,
        &mut stdin.as_bytes(),
        &mut out,
        &mut err,
    );
    Run {
        code,
        stdout: String::from_utf8(out).unwrap(),
        stderr: String::from_utf8(err).unwrap(),
    }
}

#[test]
fn one_input_one_output() {
    let r = run(&[&AddTool], &[], None, r#"{"a": 40, "b": 2}"#);
    assert_eq!((r.code, r.stdout.as_str(), r.stderr.as_str()), (0, "42\n", ""));
}

#[test]
fn errors_are_json_on_stderr_with_distinct_exit_codes() {
    let cases: Vec<(&dyn Tool, &str, u8, &str)> = vec![
        (&AddTool, "{", 2, "invalid_json"),
        (&AddTool, r#"{"a": 1}"#, 2, "invalid_input"),
        (&AddTool, r#"{"a": "1", "b": 2}"#, 2, "invalid_input"),
        (&AddTool, r#"{"a": 9223372036854775807, "b": 1}"#, 2, "overflow"),
        (&ParseTool, r#"{"text": "x"}"#, 1, "tool_error"),
        (&GrumpyTool, r#"{"why": "because"}"#, 1, "tool_error"),
        (&BoomTool, r#"{"really": true}"#, 1, "panic"),
        (&NotANumberTool, "{}", 1, "invalid_output"),
    ];
    for (tool, input, code, err) in cases {
        let r = run(&[tool], &[], None, input);
        assert_eq!(r.stdout, "", "{input}");
        assert_eq!(
            (r.code, r.error()["code"].as_str()),
            (code, Some(err)),
            "{input}: {}",
            r.stderr
        );
        assert_eq!(r.stderr.matches('\n').count(), 1, "one line: {}", r.stderr);
    }
    let r = run(&[&GrumpyTool], &[], None, r#"{"why": "because"}"#);
    assert_eq!(r.error()["message"], "no: because");
    let r = run(&[&ParseTool], &[], None, r#"{"text": "x"}"#);
    assert_eq!(r.error()["message"], "invalid digit found in string");
    let r = run(&[&BoomTool], &[], None, r#"{"really": true}"#);
    let msg = r.error()["message"].as_str().unwrap().to_owned();
    assert!(msg.contains("runtime.rs") && msg.ends_with("asked to"), "{msg}");
    let big = format!("\"{}\"", "x".repeat(atr_tool::MAX_INPUT_BYTES));
    let r = run(&[&AddTool], &[], None, &big);
    assert_eq!((r.code, r.error()["code"].as_str()), (2, Some("input_too_large")));
}

#[test]
fn several_tools_dispatch_by_argument_or_env() {
    let tools: [&dyn Tool; 2] = [&AddTool, &ParseTool];
    let r = run(&tools, &["parse"], None, r#"{"text": " 7 "}"#);
    assert_eq!((r.code, r.stdout.as_str()), (0, "7\n"));
    let r = run(&tools, &[], Some("add"), r#"{"a": 1, "b": 1}"#);
    assert_eq!((r.code, r.stdout.as_str()), (0, "2\n"));
    // The argument wins over the environment.
    let r = run(&tools, &["add"], Some("parse"), r#"{"a": 1, "b": 1}"#);
    assert_eq!(r.stdout, "2\n");
    for (args, env) in [
        (&[][..], None),
        (&["nope"][..], None),
        (&[][..], Some("nope")),
        (&["add", "x"][..], None),
    ] {
        let r = run(&tools, args, env, "{}");
        assert_eq!(
            (r.code, r.error()["code"].as_str()),
            (2, Some("usage")),
            "{args:?} {env:?}"
        );
    }
    let r = run(&tools, &["--list"], None, "");
    assert_eq!(r.stdout, "add\nparse\n");
    let r = run(&tools, &["--bogus"], None, "");
    assert_eq!(r.code, 2);
}

#[test]
fn manifest_is_toml_that_atr_publish_reads() {
    let r = run(&[&AddTool], &["--manifest"], None, "");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = Manifest::from_toml(&r.stdout, "add.toml").unwrap();
    assert_eq!(m.name, "add");
    assert_eq!(m.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(m.description, "Add two integers.");
    assert_eq!(m.tags, ["math"]);
    assert_eq!(m.side_effects, ["none"]);
    assert_eq!(m.runtime.image, format!("atr-tool:{}", env!("CARGO_PKG_VERSION")));
    assert_eq!(m.runtime.command, ["/bin/mybin"]);
    assert_eq!(m.runtime.digest, None);
    assert_eq!(m.examples.len(), 1);
    assert_eq!(m, atr_tool::manifest_of(&AddTool, "mybin", false));

    // With several tools, the command names the tool.
    let tools: [&dyn Tool; 2] = [&AddTool, &ParseTool];
    let r = run(&tools, &["parse", "--manifest"], None, "");
    let m = Manifest::from_toml(&r.stdout, "parse.toml").unwrap();
    assert_eq!(m.runtime.command, ["/bin/mybin", "parse"]);
    let r = run(&tools, &["--manifest"], None, "");
    assert_eq!(r.stdout.matches("# ---- tool `").count(), 2);

    let r = run(&[&AddTool], &["--schema"], None, "");
    assert_eq!(
        serde_json::from_str::<Value>(&r.stdout).unwrap(),
        AddTool.input_schema()
    );
    let r = run(&[&AddTool], &["--help"], None, "");
    assert!(r.stdout.contains("--manifest") && r.stdout.contains("Add two integers."));
    assert_eq!(AddTool.call(json!({"a": 1, "b": 2})).unwrap(), json!(3));
}

/// Tools called at the same time on several threads (a host running many, or tests) each
/// report their own panic's message: the panic hook is one per process, the slots per thread.
#[test]
fn concurrent_panics_each_report_their_own_message() {
    let threads: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(|| {
                for _ in 0..50 {
                    let r = run(&[&BoomTool], &[], None, r#"{"really": true}"#);
                    assert_eq!(r.code, 1);
                    let msg = r.error()["message"].as_str().unwrap().to_owned();
                    assert!(msg.contains("runtime.rs") && msg.ends_with("asked to"), "{msg}");
                    // A call that does not panic in between leaves nothing behind.
                    let ok = run(&[&BoomTool], &[], None, r#"{"really": false}"#);
                    assert_eq!((ok.code, ok.stdout.as_str()), (0, "0\n"));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}
