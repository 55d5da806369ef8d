//! The README's walkthrough and "Write a tool in five lines", run **from the README text**:
//! every fenced `sh` block of those two sections, line by line, in order, in one `bash -e`
//! against a real `atrd` (and Docker for the invocations), failing on the first line that
//! fails. The README and this test cannot drift apart: change a line there and this runs it.
//!
//! Conventions a README line may carry, readable by humans too:
//!
//! - `# keep it running` — a long-running command (the foreground `atrd`): started in the
//!   background, then the script waits until `atr status` answers; stopped at the end.
//! - `# → TEXT` — the line's output (stdout and stderr) must contain `TEXT`.
//!
//! The environment stands in for a fresh machine: `HOME` is a scratch directory (so the node's
//! data and token are in `~/.local/share/atr` there), `PATH` starts with the installed
//! binaries (`atrd` and `atr` built once by one nested cargo, `atr-testnet` this test's own), and
//! the node's fixed ports come from `ATR_API_ADDR` / `ATR_LISTEN` / `ATR_API` so the test never
//! collides with a node already running here. The walkthrough runs in the clone (it publishes
//! `sdk/examples/manifests/…`), the five-line tool in the scratch directory (it creates a crate).
//! Its tool build uses a target dir kept between runs (`<target>/readme-tool`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::TestResult;

/// Marker of a line that runs in the background.
const KEEP_RUNNING: &str = "# keep it running";
/// Marker of a line's expected output.
const EXPECT: &str = "# → ";
/// The sections run, in this order.
const SECTIONS: [&str; 2] = ["## Walkthrough", "## Write a tool in five lines"];
/// Lines of the walkthrough that are not run: the experiments (minutes each, covered by
/// `scenarios.rs` and `docker.rs`).
const NOT_RUN_PREFIX: &str = "atr-testnet run ";

fn readme() -> Result<String, Box<dyn std::error::Error>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    Ok(std::fs::read_to_string(path)?)
}

/// The text of the section starting with `heading`, up to the next `## `.
fn section<'a>(text: &'a str, heading: &str) -> Option<&'a str> {
    let start = text.find(&format!("\n{heading}\n"))? + 1;
    let rest = &text[start + heading.len()..];
    let end = rest.find("\n## ").map_or(rest.len(), |e| e + 1);
    Some(&rest[..end])
}

/// The fenced blocks of `lang` in `text`, in order.
fn blocks(text: &str, lang: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match &mut current {
            None if line.trim_end() == format!("```{lang}") => current = Some(String::new()),
            Some(b) if line.trim_end() == "```" => {
                out.push(std::mem::take(b));
                current = None;
            }
            Some(b) => {
                b.push_str(line);
                b.push('\n');
            }
            None => {}
        }
    }
    out
}

/// `'…'` for bash.
fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The bash script of one README line.
fn script_line(line: &str, log_dir: &Path) -> Option<String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') || line.starts_with(NOT_RUN_PREFIX) {
        return None;
    }
    let shown = format!("echo {} >&2\n", quoted(&format!("▶ {line}")));
    if let Some(cmd) = line.strip_suffix_marker(KEEP_RUNNING) {
        let log = log_dir.join("background.log");
        return Some(format!(
            "{shown}{cmd} >>{log} 2>&1 &\necho $! >>{pids}\n\
             for _ in $(seq 300); do atr status >/dev/null 2>&1 && break; sleep 0.2; done\n\
             atr status >/dev/null || {{ cat {log} >&2; echo 'not up after 60 s: {esc}' >&2; exit 1; }}\n",
            log = log.display(),
            pids = log_dir.join("background.pids").display(),
            esc = cmd.replace('\'', ""),
        ));
    }
    if let Some((cmd, expected)) = line.split_once(EXPECT) {
        let cmd = cmd.trim_end();
        let expected = expected.trim();
        return Some(format!(
            "{shown}out=$({cmd} 2>&1) || {{ echo \"$out\" >&2; exit 1; }}\necho \"$out\"\n\
             grep -qF -- {exp} <<<\"$out\" || {{ echo 'expected the output to contain '{exp} >&2; exit 1; }}\n",
            exp = quoted(expected),
        ));
    }
    Some(format!("{shown}{line}\n"))
}

/// `str::strip_suffix` for a trailing comment marker, ignoring the spaces before it.
trait StripMarker {
    fn strip_suffix_marker(&self, marker: &str) -> Option<&str>;
}

impl StripMarker for str {
    fn strip_suffix_marker(&self, marker: &str) -> Option<&str> {
        let i = self.find(marker)?;
        Some(self[..i].trim_end())
    }
}

/// Background processes started by the script, killed when the test ends (also on failure).
struct Background(PathBuf);

impl Drop for Background {
    fn drop(&mut self) {
        let pids = std::fs::read_to_string(&self.0).unwrap_or_default();
        for pid in pids.split_whitespace() {
            let _ = Command::new("kill").args(["-TERM", pid]).status();
        }
        std::thread::sleep(std::time::Duration::from_secs(2));
        for pid in pids.split_whitespace() {
            let _ = Command::new("kill")
                .args(["-KILL", pid])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// `atrd` and `atr` as the README's install line makes them, in one nested cargo build (debug
/// profile, this test's target dir, inherited `CARGO_*` removed so nothing is rebuilt twice).
fn installed_bin_dir(scratch: &Path) -> Result<PathBuf, Box<dyn std::error::Error>> {
    let testnet = Path::new(env!("CARGO_BIN_EXE_atr-testnet"));
    let profile_dir = testnet.parent().ok_or("atr-testnet has no directory")?;
    let target = profile_dir.parent().ok_or("no target dir")?;
    let mut cmd = atr_sandbox::cargo::command();
    cmd.args(["build", "-p", "atrd", "-p", "atr-cli", "--target-dir"])
        .arg(target)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."));
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let status = cmd.status()?;
    assert!(status.success(), "cargo build -p atrd -p atr-cli failed");
    let bin = scratch.join("bin");
    std::fs::create_dir_all(&bin)?;
    // Copied at once: another build into the same target dir may replace them meanwhile.
    for name in ["atrd", "atr", "atr-testnet"] {
        let exe = profile_dir.join(name);
        assert!(exe.is_file(), "{} missing", exe.display());
        std::fs::copy(&exe, bin.join(name))?;
    }
    Ok(bin)
}

fn free_port() -> Result<u16, std::io::Error> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

#[test]
fn the_readme_blocks_are_what_the_code_extracts() -> TestResult {
    let text = readme()?;
    let walk = section(&text, SECTIONS[0]).ok_or("no walkthrough section")?;
    let five = section(&text, SECTIONS[1]).ok_or("no five-line section")?;
    let walk_sh = blocks(walk, "sh");
    let five_sh = blocks(five, "sh");
    assert!(walk_sh.len() >= 3, "{walk_sh:?}");
    assert!(
        walk_sh[0].contains(KEEP_RUNNING),
        "the first block starts the node: {walk_sh:?}"
    );
    assert_eq!(five_sh.len(), 1, "{five_sh:?}");
    assert!(five_sh[0].contains("atr invoke"), "{five_sh:?}");
    let rust = blocks(five, "rust");
    assert_eq!(rust.len(), 1, "the five lines");
    let dir = Path::new("/tmp/x");
    assert_eq!(script_line("# a comment", dir), None);
    assert_eq!(script_line("atr-testnet run propagation --out /tmp/p", dir), None);
    let expect = script_line("atr invoke x --input '{}'   # → 14", dir).ok_or("no line")?;
    assert!(
        expect.contains("out=$(atr invoke x --input '{}' 2>&1)"),
        "{expect}"
    );
    assert!(expect.contains("grep -qF -- '14'"), "{expect}");
    let bg = script_line("atrd   # keep it running; go on", dir).ok_or("no line")?;
    assert!(bg.contains("atrd >>/tmp/x/background.log 2>&1 &"), "{bg}");
    Ok(())
}

#[test]
#[ignore = "needs a Docker Engine"]
fn the_readme_walkthrough_and_five_line_tool_run_as_written() -> TestResult {
    let docker = Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(
        docker.is_ok_and(|s| s.success()),
        "this test needs a Docker Engine: `docker info` failed"
    );

    let text = readme()?;
    let scratch = tempfile::tempdir()?;
    let home = scratch.path().join("home");
    let work = scratch.path().join("work");
    std::fs::create_dir_all(&home)?;
    std::fs::create_dir_all(&work)?;
    let bin = installed_bin_dir(scratch.path())?;
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize()?;
    let tool_target = Path::new(env!("CARGO_BIN_EXE_atr-testnet"))
        .parent()
        .and_then(Path::parent)
        .ok_or("no target dir")?
        .join("readme-tool");

    let mut script = String::from("set -eu -o pipefail\n");
    script.push_str(&format!("cd {}\n", quoted(&repo.to_string_lossy())));
    for (i, heading) in SECTIONS.iter().enumerate() {
        let body = section(&text, heading).ok_or_else(|| format!("README has no `{heading}`"))?;
        if i == 1 {
            // A crate of one's own goes anywhere but the clone.
            script.push_str(&format!("cd {}\n", quoted(&work.to_string_lossy())));
            script.push_str(&format!(
                "export CARGO_TARGET_DIR={}\n",
                quoted(&tool_target.to_string_lossy())
            ));
        }
        for block in blocks(body, "sh") {
            for line in block.lines() {
                if let Some(s) = script_line(line, scratch.path()) {
                    script.push_str(&s);
                }
            }
        }
    }
    let _background = Background(scratch.path().join("background.pids"));

    let api_port = free_port()?;
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let mut cmd = Command::new("bash");
    cmd.arg("-c").arg(&script);
    for (name, _) in std::env::vars_os() {
        let name_s = name.to_string_lossy();
        if atr_sandbox::cargo::is_stripped(&name_s) || name_s.starts_with("ATR_") || name_s == "RUST_LOG" {
            cmd.env_remove(&name);
        }
    }
    cmd.env("HOME", &home)
        .env_remove("XDG_DATA_HOME")
        .env("PATH", path)
        .env("ATR_API_ADDR", format!("127.0.0.1:{api_port}"))
        .env("ATR_LISTEN", "/ip4/127.0.0.1/tcp/0")
        .env("ATR_API", format!("http://127.0.0.1:{api_port}"))
        .stdin(Stdio::null());
    let child: Child = cmd.spawn()?;
    let out = child.wait_with_output()?;
    assert!(
        out.status.success(),
        "a README line failed (the last `▶` line above); script:\n{script}"
    );

    // `atr tool new --minimal` made exactly the README's five lines.
    let five = section(&text, SECTIONS[1]).ok_or("no five-line section")?;
    let rust = blocks(five, "rust").into_iter().next().ok_or("no rust block")?;
    let made = std::fs::read_to_string(work.join("sum/src/main.rs"))?;
    assert!(
        made.starts_with(&rust),
        "`atr tool new sum --minimal` does not start with the README's block:\n{made}"
    );
    let _ = Command::new("docker")
        .args(["image", "rm", "-f", "sum:0.1.0"])
        .output();
    Ok(())
}
