//! Real processes for the tests: `atrd` nodes in temp dirs, the `atr` binary
//! pointed at them, manifests on disk.
//!
//! `atrd` is built once per test run by `cargo build -p atrd` into the same
//! target dir as `atr` (the client crate does not depend on the daemon crate),
//! or taken from `$ATR_TEST_ATRD` when set.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// A placeholder image digest: nodes run without a sandbox here, so it is never pulled.
pub(crate) const DIGEST: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
/// Longest any single `atr` command may take in a test.
pub(crate) const COMMAND_DEADLINE: Duration = Duration::from_secs(90);

pub(crate) fn atr_bin() -> &'static str {
    env!("CARGO_BIN_EXE_atr")
}

/// The `atrd` binary, built on first use.
pub(crate) fn atrd_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("ATR_TEST_ATRD") {
            return PathBuf::from(p);
        }
        // <target>/<profile>/atr → build atrd into the same <target> and profile.
        let exe_dir = Path::new(atr_bin()).parent().expect("atr has a directory");
        let target = exe_dir.parent().expect("the profile dir has a parent");
        let profile = exe_dir.file_name().and_then(|n| n.to_str()).unwrap_or("debug");
        // Without the inherited CARGO_* variables, which would make this build and the outer
        // one rebuild `ring` and all above it, each undoing the other.
        let mut cmd = atr_sandbox::cargo::command();
        cmd.args(["build", "-p", "atrd", "--bin", "atrd", "--target-dir"])
            .arg(target)
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if profile == "release" {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build -p atrd");
        assert!(status.success(), "cargo build -p atrd failed");
        let bin = target.join(profile).join("atrd");
        assert!(bin.exists(), "{} missing after the build", bin.display());
        bin
    })
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `cond` every 100 ms until it holds; panics with `what` after `deadline`.
pub(crate) fn wait_for(deadline: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `GET path` over plain HTTP/1.0; the status code, if anything answered.
pub(crate) fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut head = String::new();
    BufReader::new(s).read_line(&mut head).ok()?;
    head.split_whitespace().nth(1)?.parse().ok()
}

/// The example tools image, built by `atr-testnet tools-image`.
pub(crate) const TOOLS_IMAGE: &str = "atr-example-tools:latest";

/// Fails the calling test unless a Docker Engine answers. Tests that call it are
/// `#[ignore = "needs a Docker Engine"]`: they run only when asked (`--include-ignored`, as CI
/// does), and then a missing engine is a failure, never a silent pass.
pub(crate) fn require_docker() {
    let ok = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "this test needs a Docker Engine: `docker info` failed");
}

/// Builds [`TOOLS_IMAGE`] once (`cargo run -p atr-testnet -- tools-image`) unless the engine
/// already has it.
pub(crate) fn ensure_tools_image() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let have = Command::new("docker")
            .args(["image", "inspect", TOOLS_IMAGE])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if have {
            return;
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let status = atr_sandbox::cargo::command()
            .args(["run", "-p", "atr-testnet", "--", "tools-image"])
            .current_dir(root)
            .status()
            .expect("run atr-testnet tools-image");
        assert!(status.success(), "building {TOOLS_IMAGE} failed");
    });
}

/// The manifest of an example tool, `sdk/examples/manifests/TOOL.toml` (it has no digest:
/// the node pins the image itself).
pub(crate) fn example_manifest(tool: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../sdk/examples/manifests/{tool}.toml"))
}

/// A running `atrd` with its own data dir; killed on drop.
pub(crate) struct Node {
    child: Child,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) port: u16,
    /// Whether it runs tools (its sandbox is on).
    pub(crate) sandboxed: bool,
}

impl Node {
    /// Starts a node (sandbox disabled, loopback only) and waits until it is healthy.
    pub(crate) fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a node with extra `atrd` flags (e.g. `--bootstrap`).
    pub(crate) fn start_with(extra: &[&str]) -> Self {
        // Discovery-only node: publishing then trusts the manifest's digest instead of asking
        // a Docker Engine, so these tests need none.
        Self::spawn("[sandbox]\nenabled = false\n", extra)
    }

    /// Starts a node (sandbox disabled) whose config file begins with `top` (top-level keys,
    /// e.g. `trusted_publishers = [...]`).
    pub(crate) fn start_configured(top: &str, extra: &[&str]) -> Self {
        Self::spawn(&format!("{top}\n[sandbox]\nenabled = false\n"), extra)
    }

    /// Starts a node that runs tools (sandbox on, [`TOOLS_IMAGE`] built if missing); fails
    /// without a Docker Engine.
    pub(crate) fn start_sandboxed() -> Self {
        Self::start_sandboxed_with(&[])
    }

    /// [`Self::start_sandboxed`] with extra `atrd` flags (e.g. `--bootstrap`).
    pub(crate) fn start_sandboxed_with(extra: &[&str]) -> Self {
        require_docker();
        ensure_tools_image();
        let mut node = Self::spawn("[sandbox]\nenabled = true\n", extra);
        node.sandboxed = true;
        node
    }

    /// Publishes an example tool's manifest (see [`example_manifest`]); returns the id.
    pub(crate) fn publish_example(&self, tool: &str) -> String {
        let m = example_manifest(tool);
        let out = run(&mut self.atr(&["--json", "publish", m.to_str().unwrap()])).success();
        out.json()["id"].as_str().unwrap().to_owned()
    }

    fn spawn(config: &str, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("atrd.toml"), config).unwrap();
        let port = free_port();
        let child = Command::new(atrd_bin())
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--api", &format!("127.0.0.1:{port}")])
            .args(["--listen", "/ip4/127.0.0.1/tcp/0"])
            .args(extra)
            .env_remove("ATR_CONFIG")
            .env_remove("ATR_DATA_DIR")
            .env_remove("ATR_API_ADDR")
            .env_remove("ATR_LISTEN")
            .env_remove("ATR_BOOTSTRAP")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut node = Self {
            child,
            dir,
            port,
            sandboxed: false,
        };
        let start = Instant::now();
        while http_status(port, "/health") != Some(200) {
            if let Ok(Some(status)) = node.child.try_wait() {
                panic!("atrd exited during start: {status}");
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "atrd not healthy after 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        node
    }

    pub(crate) fn api(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `atr ARGS` against this node, with a clean environment.
    pub(crate) fn atr(&self, args: &[&str]) -> Command {
        let mut cmd = atr_cmd(args);
        cmd.env("ATR_API", self.api())
            .env("ATR_DATA_DIR", self.dir.path());
        cmd
    }

    /// The node's peer id.
    pub(crate) fn peer_id(&self) -> String {
        let s = run(&mut self.atr(&["--json", "status"])).success().json();
        s["peer_id"].as_str().unwrap().to_owned()
    }

    /// A multiaddr others can bootstrap from.
    pub(crate) fn bootstrap_addr(&self) -> String {
        let s = run(&mut self.atr(&["--json", "status"])).success().json();
        let peer = s["peer_id"].as_str().unwrap();
        let addr = s["listen_addrs"][0].as_str().unwrap();
        format!("{addr}/p2p/{peer}")
    }

    /// Publishes a test manifest through `atr --json publish`; returns the id. On a sandboxed
    /// node the placeholder digest is left out, so the node pins the example image.
    pub(crate) fn publish(&self, dir: &Path, name: &str, version: &str, tags: &[&str]) -> String {
        let m = manifest(dir, name, version, tags);
        if self.sandboxed {
            let text = std::fs::read_to_string(&m).unwrap();
            std::fs::write(&m, text.replace(&format!("digest = \"{DIGEST}\"\n"), "")).unwrap();
        }
        let out = run(&mut self.atr(&["--json", "publish", m.to_str().unwrap()])).success();
        out.json()["id"].as_str().unwrap().to_owned()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `atr ARGS` with every atr variable of the test's own environment removed.
pub(crate) fn atr_cmd(args: &[&str]) -> Command {
    let mut cmd = Command::new(atr_bin());
    cmd.args(args)
        .env_remove("ATR_API")
        .env_remove("ATR_TOKEN")
        .env_remove("ATR_DATA_DIR")
        .env_remove("RUST_LOG")
        .env("XDG_DATA_HOME", "/nonexistent/atr-test-xdg");
    cmd
}

/// What a finished command printed.
#[derive(Debug)]
pub(crate) struct Out {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Out {
    #[track_caller]
    pub(crate) fn success(self) -> Self {
        assert_eq!(self.code, 0, "command failed: {self:#?}");
        self
    }

    #[track_caller]
    pub(crate) fn failure(self, code: i32) -> Self {
        assert_eq!(self.code, code, "wrong exit code: {self:#?}");
        self
    }

    #[track_caller]
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {self:#?}"))
    }

    /// The single `error: …` line on stderr (asserting there is exactly one line).
    #[track_caller]
    pub(crate) fn error_line(&self) -> &str {
        let lines: Vec<&str> = self.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "expected one error line: {self:#?}");
        assert!(lines[0].starts_with("error: "), "{self:#?}");
        lines[0]
    }
}

/// Runs `cmd` to completion (killing it after [`COMMAND_DEADLINE`]).
pub(crate) fn run(cmd: &mut Command) -> Out {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out_pipe = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        out_pipe.read_to_string(&mut s).unwrap();
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        err_pipe.read_to_string(&mut s).unwrap();
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > COMMAND_DEADLINE {
            let _ = child.kill();
            panic!("command did not finish in {COMMAND_DEADLINE:?}: {cmd:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Out {
        code: status.code().unwrap_or(-1),
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    }
}

/// Writes a manifest whose input schema lives in a separate file (paths are relative to
/// the manifest), and returns its path.
pub(crate) fn manifest(dir: &Path, name: &str, version: &str, tags: &[&str]) -> PathBuf {
    let schemas = dir.join("schemas");
    std::fs::create_dir_all(&schemas).unwrap();
    std::fs::write(
        schemas.join(format!("{name}.in.json")),
        r#"{"type": "object", "additionalProperties": false, "required": ["a", "b"],
            "properties": {"a": {"type": "integer", "description": "first"},
                           "b": {"type": "integer", "description": "second"}}}"#,
    )
    .unwrap();
    let tags = tags
        .iter()
        .map(|t| format!("\"{t}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let path = dir.join(format!("{name}-{version}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"name = "{name}"
version = "{version}"
description = "Test tool {name}: adds two integers."
tags = [{tags}]
side_effects = ["none"]
input_schema = "schemas/{name}.in.json"
output_schema = {{ type = "object", properties = {{ sum = {{ type = "integer" }} }}, required = ["sum"] }}

[runtime]
image = "atr-example-tools:latest"
digest = "{DIGEST}"
command = ["/bin/add"]

[[examples]]
input = {{ a = 1, b = 2 }}
output = {{ sum = 3 }}
"#
        ),
    )
    .unwrap();
    path
}

/// A child process whose stdout lines arrive on a channel.
pub(crate) struct LineChild {
    pub(crate) child: Child,
    pub(crate) lines: mpsc::Receiver<String>,
}

impl LineChild {
    pub(crate) fn spawn(cmd: &mut Command) -> Self {
        Self::spawn_reading(cmd, false)
    }

    /// Like [`Self::spawn`], but the lines come from stderr (stdout is collected instead).
    pub(crate) fn spawn_stderr_lines(cmd: &mut Command) -> Self {
        Self::spawn_reading(cmd, true)
    }

    fn spawn_reading(cmd: &mut Command, stderr_lines: bool) -> Self {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        let (line_src, rest): (Box<dyn Read + Send>, Box<dyn Read + Send>) = if stderr_lines {
            (Box::new(err), Box::new(out))
        } else {
            (Box::new(out), Box::new(err))
        };
        std::thread::spawn(move || {
            for l in BufReader::new(line_src).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        // Drain the other stream so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut rest = rest;
            let _ = std::io::copy(&mut rest, &mut std::io::sink());
        });
        Self { child, lines }
    }

    /// The next line that satisfies `pred`, within `deadline`.
    pub(crate) fn line_where(&self, deadline: Duration, pred: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + deadline;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if pred(&l) => return l,
                Ok(_) => continue,
                Err(e) => panic!("no matching line within {deadline:?}: {e}"),
            }
        }
    }
}

impl Drop for LineChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
