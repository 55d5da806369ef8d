//! A real headless Chromium driven over the DevTools protocol, for the explorer's tests.
//!
//! Chromium is started with `--remote-debugging-pipe`: it reads protocol messages from file
//! descriptor 3 and writes answers to descriptor 4, each a JSON object ended by a NUL byte.
//! `sh` wires them to the child's stdin and stdout, so no socket, no port and no extra crate
//! is involved. [`Browser`] offers what the tests need: open a page, evaluate JavaScript,
//! wait for a condition (bounded polling with a deadline), take a screenshot.

use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};

/// Deadline of one protocol call.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The Chromium binary: `$ATR_CHROMIUM`, else the first of the Debian names on `PATH`.
pub(crate) fn chromium_binary() -> Option<String> {
    if let Ok(p) = std::env::var("ATR_CHROMIUM") {
        return Some(p);
    }
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find_map(|n| {
            std::process::Command::new("sh")
                .args(["-c", &format!("command -v {n}")])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        })
}

/// One headless Chromium with one page attached.
pub(crate) struct Browser {
    child: Child,
    to: ChildStdin,
    from: BufReader<ChildStdout>,
    next: u64,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts Chromium (a missing binary is an error: the tests that use it are ignored by
    /// default and must fail, not pass, when CI runs them without it).
    pub(crate) async fn start() -> anyhow::Result<Self> {
        let bin = chromium_binary().context("Chromium is not installed (apt-get install chromium)")?;
        let profile = tempfile::tempdir()?;
        let mut child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(r#"exec "$0" "$@" 3<&0 4>&1 >/dev/null 2>/dev/null"#)
            .arg(&bin)
            .args([
                "--headless",
                "--remote-debugging-pipe",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--font-render-hinting=none",
                "--window-size=1280,900",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("start {bin}"))?;
        let to = child.stdin.take().context("stdin")?;
        let from = BufReader::new(child.stdout.take().context("stdout")?);
        let mut b = Self {
            child,
            to,
            from,
            next: 0,
            session: String::new(),
            _profile: profile,
        };
        let target = b
            .call(None, "Target.createTarget", json!({"url": "about:blank"}))
            .await?;
        let target_id = target["targetId"].as_str().context("targetId")?.to_owned();
        let attached = b
            .call(
                None,
                "Target.attachToTarget",
                json!({"targetId": target_id, "flatten": true}),
            )
            .await?;
        b.session = attached["sessionId"].as_str().context("sessionId")?.to_owned();
        b.page("Page.enable", json!({})).await?;
        b.page("Runtime.enable", json!({})).await?;
        b.page(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": false}),
        )
        .await?;
        Ok(b)
    }

    async fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> anyhow::Result<Value> {
        self.next += 1;
        let id = self.next;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg)?;
        bytes.push(0);
        self.to.write_all(&bytes).await?;
        self.to.flush().await?;
        let deadline = tokio::time::Instant::now() + CALL_TIMEOUT;
        loop {
            let mut buf = Vec::new();
            let n = tokio::time::timeout_at(deadline, self.from.read_until(0, &mut buf))
                .await
                .with_context(|| format!("{method}: no answer in {CALL_TIMEOUT:?}"))??;
            if n == 0 {
                bail!("{method}: Chromium closed the pipe");
            }
            if buf.last() == Some(&0) {
                buf.pop();
            }
            let v: Value = serde_json::from_slice(&buf)?;
            if v["id"].as_u64() != Some(id) {
                continue; // an event, or an answer to nothing we wait for
            }
            if let Some(e) = v.get("error") {
                bail!("{method}: {e}");
            }
            return Ok(v["result"].clone());
        }
    }

    async fn page(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        let s = self.session.clone();
        self.call(Some(&s), method, params).await
    }

    /// Opens `url` and waits until the document has loaded.
    pub(crate) async fn open(&mut self, url: &str) -> anyhow::Result<()> {
        let r = self.page("Page.navigate", json!({"url": url})).await?;
        if let Some(e) = r.get("errorText") {
            bail!("navigate {url}: {e}");
        }
        self.wait_until(&format!(
            "location.href === {} && document.readyState === 'complete'",
            json!(url)
        ))
        .await
    }

    /// The value of a JavaScript expression (awaiting a promise).
    pub(crate) async fn eval(&mut self, expr: &str) -> anyhow::Result<Value> {
        let r = self
            .page(
                "Runtime.evaluate",
                json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
            )
            .await?;
        if let Some(e) = r.get("exceptionDetails") {
            bail!("`{expr}` threw: {e}");
        }
        Ok(r["result"]["value"].clone())
    }

    /// Polls `cond` (a JavaScript boolean expression) until it holds, at most 30 s.
    pub(crate) async fn wait_until(&mut self, cond: &str) -> anyhow::Result<()> {
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            // Between two documents the evaluation may fail: that is "not yet".
            if let Ok(Value::Bool(true)) = self.eval(cond).await {
                return Ok(());
            }
            if Instant::now() > end {
                let url = self.eval("location.href").await.unwrap_or_default();
                return Err(anyhow!("`{cond}` never held (at {url})"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `document.body.innerText`.
    pub(crate) async fn text(&mut self) -> anyhow::Result<String> {
        Ok(self
            .eval("document.body.innerText")
            .await?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// A PNG of the page, at most `max_height` CSS pixels tall.
    pub(crate) async fn screenshot(&mut self, max_height: u32) -> anyhow::Result<Vec<u8>> {
        let m = self.page("Page.getLayoutMetrics", json!({})).await?;
        let h = m["cssContentSize"]["height"]
            .as_f64()
            .unwrap_or(900.0)
            .min(f64::from(max_height));
        let r = self
            .page(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true,
                       "clip": {"x": 0, "y": 0, "width": 1280, "height": h, "scale": 1}}),
            )
            .await?;
        let data = r["data"].as_str().context("screenshot data")?;
        Ok(data_encoding::BASE64.decode(data.as_bytes())?)
    }

    /// Closes Chromium.
    pub(crate) async fn close(mut self) {
        let _ = self.call(None, "Browser.close", json!({})).await;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}
