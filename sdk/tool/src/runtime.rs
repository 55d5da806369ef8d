//! The runtime contract of an atr tool, behind the generated `main`: [`serve`].

use std::io::{self, Read, Write};
use std::panic::{self, AssertUnwindSafe};
use std::process::ExitCode;

use serde_json::Value;

use crate::{Manifest, Tool, ToolError};

/// Exit code of a tool that failed for a reason other than its input.
pub const EXIT_TOOL_FAILURE: u8 = 1;
/// Exit code of a refused input (and of a usage error).
pub const EXIT_BAD_INPUT: u8 = 2;
/// Largest input read from stdin (1 MiB): the protocol's cap on one invocation's input
/// (`atr_protocol::limits::MAX_INPUT_BYTES`).
pub const MAX_INPUT_BYTES: usize = atr_protocol::limits::MAX_INPUT_BYTES;
/// The environment variable that selects the tool of a binary with several.
pub const TOOL_ENV: &str = "ATR_TOOL";

/// What the command line asked for.
#[derive(Debug, PartialEq)]
enum Mode {
    Run,
    Manifest,
    Schema,
    List,
    Help,
}

/// Runs the tool selected by the command line: what `serve![...]` calls from `main`. `binary`
/// is the binary's name (its path in the image is `/bin/<binary>`).
///
/// Command line: `[TOOL] [--manifest | --schema | --list | --help]`. `TOOL` (or the
/// `ATR_TOOL` environment variable) picks one of several tools; with one tool it may be left
/// out. Without a flag, the tool runs: one JSON input on stdin, one JSON value on stdout, or
/// `{"error": {...}}` on stderr and exit code 2 (the input's fault) or 1 (the tool's).
pub fn serve(tools: &[&dyn Tool], binary: &str) -> ExitCode {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let env_tool = std::env::var(TOOL_ENV).ok().filter(|t| !t.is_empty());
    let code = run(
        tools,
        binary,
        &args,
        env_tool.as_deref(),
        &mut io::stdin().lock(),
        &mut io::stdout().lock(),
        &mut io::stderr().lock(),
    );
    ExitCode::from(code)
}

/// Runs a tool written as a function of raw JSON (no derived schema: its manifest is written by
/// hand, e.g. a tool that accepts any JSON, or a hostile test tool) under the same stdin/stdout
/// contract as [`serve`]: one JSON value in (at most [`MAX_INPUT_BYTES`]), one JSON value and a
/// newline out, or the error as JSON on stderr. Returns the exit code.
pub fn run_json(tool: fn(Value) -> Result<Value, ToolError>) -> ExitCode {
    let output = read_input(&mut io::stdin().lock()).and_then(tool);
    let code = match output.and_then(|v| write_output(&mut io::stdout().lock(), &v)) {
        Ok(()) => 0,
        Err(e) => report(&mut io::stderr().lock(), &e),
    };
    ExitCode::from(code)
}

/// [`serve`] with its command line (without the program name), `ATR_TOOL` and streams given:
/// returns the exit code. For tests.
pub fn run(
    tools: &[&dyn Tool],
    binary: &str,
    args: &[String],
    env_tool: Option<&str>,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> u8 {
    match dispatch(tools, binary, args, env_tool, stdin, stdout) {
        Ok(()) => 0,
        Err(e) => report(stderr, &e),
    }
}

fn dispatch(
    tools: &[&dyn Tool],
    binary: &str,
    args: &[String],
    env_tool: Option<&str>,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
) -> Result<(), ToolError> {
    let mut mode = Mode::Run;
    let mut named: Option<&str> = None;
    for a in args {
        let m = match a.as_str() {
            "--manifest" => Mode::Manifest,
            "--schema" => Mode::Schema,
            "--list" => Mode::List,
            "--help" | "-h" => Mode::Help,
            flag if flag.starts_with('-') => {
                return Err(usage(format!("unknown option `{flag}`; try --help")));
            }
            name => {
                if named.is_some() {
                    return Err(usage(format!("unexpected argument `{name}`; try --help")));
                }
                named = Some(name);
                continue;
            }
        };
        if mode != Mode::Run {
            return Err(usage("give at most one of --manifest, --schema, --list, --help"));
        }
        mode = m;
    }
    let multi = tools.len() > 1;
    match mode {
        Mode::Help => {
            return print(stdout, &help(tools, binary));
        }
        Mode::List => {
            let names: Vec<&str> = tools.iter().map(|t| t.name()).collect();
            return print(stdout, &format!("{}\n", names.join("\n")));
        }
        _ => {}
    }
    let selected = select(tools, named.or(env_tool))?;
    match (mode, selected) {
        (Mode::Manifest, Some(t)) => print(stdout, &manifest_toml(&manifest_of(t, binary, multi))?),
        (Mode::Manifest, None) => {
            let mut out = String::new();
            for t in tools {
                out.push_str(&format!("# ---- tool `{}`\n", t.name()));
                out.push_str(&manifest_toml(&manifest_of(*t, binary, multi))?);
                out.push('\n');
            }
            print(stdout, &out)
        }
        (Mode::Schema, Some(t)) => {
            let text = serde_json::to_string_pretty(&t.input_schema()).unwrap_or_default();
            print(stdout, &format!("{text}\n"))
        }
        (_, None) => {
            let names: Vec<&str> = tools.iter().map(|t| t.name()).collect();
            Err(usage(format!(
                "this binary has several tools ({}): name one as the first argument or in ${TOOL_ENV}",
                names.join(", ")
            )))
        }
        (_, Some(t)) => {
            let input = read_input(stdin)?;
            let output = call_catching_panics(t, input)?;
            write_output(stdout, &output)
        }
    }
}

fn select<'a>(tools: &[&'a dyn Tool], name: Option<&str>) -> Result<Option<&'a dyn Tool>, ToolError> {
    match name {
        Some(n) => tools
            .iter()
            .find(|t| t.name() == n)
            .copied()
            .map(Some)
            .ok_or_else(|| {
                let names: Vec<&str> = tools.iter().map(|t| t.name()).collect();
                usage(format!("no tool `{n}` here (tools: {})", names.join(", ")))
            }),
        None if tools.len() == 1 => Ok(tools.first().copied()),
        None => Ok(None),
    }
}

/// The manifest of `tool` as served by `binary`: command `/bin/<binary>`, plus the tool's name
/// when the binary has several.
pub fn manifest_of(tool: &dyn Tool, binary: &str, multi: bool) -> Manifest {
    let mut m = tool.manifest();
    m.runtime.command = vec![format!("/bin/{binary}")];
    if multi {
        m.runtime.command.push(tool.name().to_owned());
    }
    m
}

/// The manifest as TOML.
pub(crate) fn manifest_toml(m: &Manifest) -> Result<String, ToolError> {
    toml::to_string(m).map_err(|e| {
        ToolError::failed(
            "manifest_failed",
            format!("the manifest cannot be written as TOML: {e}"),
        )
    })
}

fn help(tools: &[&dyn Tool], binary: &str) -> String {
    let mut s = format!(
        "{binary}: atr tool{} (atr-tool {})\n\n\
         Usage: {binary}{} [--manifest | --schema | --list | --help] < input.json\n\n\
         Without an option, reads one JSON input on stdin and writes one JSON value on stdout;\n\
         on failure writes {{\"error\": {{\"code\", \"message\"}}}} on stderr and exits 2 (bad input)\n\
         or 1 (tool failure).\n\n\
         --manifest  print the tool manifest (TOML)\n\
         --schema    print the input JSON Schema\n\
         --list      print the tool names\n\n\
         Tools:\n",
        if tools.len() > 1 { "s" } else { "" },
        env!("CARGO_PKG_VERSION"),
        if tools.len() > 1 { " TOOL" } else { "" },
    );
    for t in tools {
        s.push_str(&format!("  {:<20} {}\n", t.name(), t.meta().description));
    }
    if tools.len() > 1 {
        s.push_str(&format!("\nTOOL may also be given in ${TOOL_ENV}.\n"));
    }
    s
}

fn usage(message: impl Into<String>) -> ToolError {
    ToolError::bad_input("usage", message)
}

fn print(out: &mut dyn Write, s: &str) -> Result<(), ToolError> {
    out.write_all(s.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| ToolError::failed("stdout_failed", format!("could not write to stdout: {e}")))
}

thread_local! {
    /// `Some` while this thread runs a tool: the message of a panic, once one happened.
    static PANIC_SLOT: std::cell::RefCell<Option<Option<String>>> = const { std::cell::RefCell::new(None) };
}

/// Installs, once per process, the panic hook that records a panic's message for the thread
/// running a tool (and writes nothing: stderr carries only the JSON error). Panics of other
/// threads go to the hook that was there before. One hook for the process, with per-thread
/// slots, so that tools called at the same time on several threads (a host, or tests) each
/// get their own message.
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".to_owned());
            let text = match info.location() {
                Some(l) => format!("the tool panicked at {}:{}: {msg}", l.file(), l.line()),
                None => format!("the tool panicked: {msg}"),
            };
            let recorded = PANIC_SLOT
                .try_with(|slot| match slot.try_borrow_mut() {
                    Ok(mut s) if s.is_some() => {
                        *s = Some(Some(text.clone()));
                        true
                    }
                    _ => false,
                })
                .unwrap_or(false);
            if !recorded {
                previous(info);
            } else if cfg!(panic = "abort") {
                // Also right away: with `panic = "abort"` nothing after this runs.
                let _ = report(&mut io::stderr().lock(), &ToolError::failed("panic", text));
            }
        }));
    });
}

/// Calls the tool; a panic becomes a `panic` error whose message says where.
fn call_catching_panics(tool: &dyn Tool, input: Value) -> Result<Value, ToolError> {
    install_panic_hook();
    PANIC_SLOT.with(|s| *s.borrow_mut() = Some(None));
    let result = panic::catch_unwind(AssertUnwindSafe(|| tool.call(input)));
    let caught = PANIC_SLOT.with(|s| s.borrow_mut().take()).flatten();
    result.unwrap_or_else(|_| {
        Err(ToolError::failed(
            "panic",
            caught.unwrap_or_else(|| "the tool panicked".to_owned()),
        ))
    })
}

/// Reads one JSON value of at most [`MAX_INPUT_BYTES`]; the size is checked before parsing.
/// Public for tools that stream their output themselves instead of returning it.
pub fn read_input(r: &mut dyn Read) -> Result<Value, ToolError> {
    let mut buf = Vec::new();
    r.take(MAX_INPUT_BYTES as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| ToolError::failed("stdin_failed", format!("could not read stdin: {e}")))?;
    if buf.len() > MAX_INPUT_BYTES {
        return Err(ToolError::bad_input(
            "input_too_large",
            format!("the input is over the {MAX_INPUT_BYTES}-byte limit"),
        ));
    }
    serde_json::from_slice(&buf)
        .map_err(|e| ToolError::bad_input("invalid_json", format!("the input is not one JSON value: {e}")))
}

/// Writes `value` and a newline, and flushes.
pub(crate) fn write_output(w: &mut dyn Write, value: &Value) -> Result<(), ToolError> {
    let mut write = || -> io::Result<()> {
        serde_json::to_writer(&mut *w, value)?;
        w.write_all(b"\n")?;
        w.flush()
    };
    write().map_err(|e| ToolError::failed("stdout_failed", format!("could not write the output: {e}")))
}

/// Writes `error` as one JSON line on stderr and returns its exit code.
fn report(stderr: &mut dyn Write, error: &ToolError) -> u8 {
    let _ = serde_json::to_writer(&mut *stderr, &error.to_json());
    let _ = stderr.write_all(b"\n");
    let _ = stderr.flush();
    error.exit_code()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn input_is_capped_and_must_be_one_value() {
        assert_eq!(read_input(&mut &b" {\"a\": 1}\n"[..]).unwrap(), json!({"a": 1}));
        let big = vec![b' '; MAX_INPUT_BYTES + 1];
        let e = read_input(&mut &big[..]).unwrap_err();
        assert_eq!((e.code(), e.exit_code()), ("input_too_large", 2));
        for bad in [&b""[..], b"{", b"1 2"] {
            assert_eq!(read_input(&mut &bad[..]).unwrap_err().code(), "invalid_json");
        }
    }

    #[test]
    fn output_is_one_line() {
        let mut out = Vec::new();
        write_output(&mut out, &json!({"r": 3})).unwrap();
        assert_eq!(out, b"{\"r\":3}\n");
    }
}
