//! `atr tool test [PATH]`: every `[[examples]]` entry, run in the sandbox.

use atr_protocol::spec::json_eq;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow, bail};
use atr_protocol::input::validate_input;
use atr_protocol::receipt::InvocationStatus;
use atr_protocol::{Manifest, SecretKey, ToolSpec};
use atr_sandbox::image;
use serde_json::{Value, json};

use super::cargo::Crate;
use super::sandbox::{self, Outcome};
use crate::cli::Usage;
use crate::cli::output::{Table, out, outln, print_json};

pub(super) async fn test(path: &Path, manifests: &[PathBuf], json: bool) -> anyhow::Result<()> {
    let files = if manifests.is_empty() {
        let krate = Crate::load(path)?;
        let dir = &krate.manifest_dir;
        let none = || {
            Usage(format!(
                "no manifests of {} {} in {}: run `atr tool build` first",
                krate.name,
                krate.version,
                dir.display()
            ))
        };
        // The directory is shared by every crate built into this target dir: test only what
        // `atr tool build` wrote for this crate and version.
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|_| none())?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .filter(|p| {
                std::fs::read_to_string(p)
                    .is_ok_and(|text| super::build::written_for(&text, &krate.name, &krate.version))
            })
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(none().into());
        }
        files
    } else {
        manifests.to_vec()
    };
    let specs = files
        .iter()
        .map(|f| load(f))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let sandbox = sandbox::sandbox(image::connect().await?);

    let mut results = Vec::new();
    let (mut passed, mut failed) = (0usize, 0usize);
    for spec in &specs {
        if spec.examples.is_empty() {
            eprintln!(
                "note: `{}` has no [[examples]] to run (add `example(input = ..., output = ...)` to its #[tool])",
                spec.name
            );
        }
        for (i, ex) in spec.examples.iter().enumerate() {
            let input = serde_json::to_vec(&ex.input)?;
            let invocation = format!("{}-example-{}", spec.name, i + 1);
            let outcome = sandbox::run_once(
                &sandbox,
                &spec.runtime.image_digest,
                &spec.runtime.command,
                spec.runtime.workdir.as_deref(),
                &atr_protocol::policy::Policy::of(spec),
                &input,
                &invocation,
            )
            .await
            .with_context(|| format!("running example {} of `{}`", i + 1, spec.name));
            let outcome = match outcome {
                Ok(o) => o,
                Err(e) => {
                    sandbox.settle().await;
                    return Err(e);
                }
            };
            let verdict = judge(spec, &ex.output, &outcome);
            match &verdict {
                Ok(_) => passed += 1,
                Err(_) => failed += 1,
            }
            results.push((spec.name.clone(), i + 1, outcome, verdict));
        }
    }

    // Exited containers are removed in the background: wait for them before exiting.
    sandbox.settle().await;

    if json {
        let list: Vec<Value> = results
            .iter()
            .map(|(tool, n, o, v)| {
                json!({
                    "tool": tool,
                    "example": n,
                    "ok": v.is_ok(),
                    "output": v.as_ref().ok(),
                    "problem": v.as_ref().err(),
                    "exit_code": o.exit_code,
                    "ms": o.elapsed.as_millis() as u64,
                })
            })
            .collect();
        print_json(&json!({"passed": passed, "failed": failed, "results": list}))?;
    } else {
        let mut t = Table::new(&["", "tool", "example", "ms", "output / problem"]);
        for (tool, n, o, v) in &results {
            let (mark, text) = match v {
                Ok(out) => ("ok", out.to_string()),
                Err(p) => ("FAIL", p.clone()),
            };
            t.row(vec![
                mark.into(),
                tool.clone(),
                n.to_string(),
                o.elapsed.as_millis().to_string(),
                text,
            ]);
        }
        out!("{}", t.render())?;
        outln!("{passed} passed, {failed} failed (in the sandbox: user 65534, no network, read-only root)")?;
    }
    if failed > 0 {
        bail!("{failed} of {} examples failed", passed + failed);
    }
    Ok(())
}

/// Reads a manifest and makes the spec a node would (a throw-away key signs nothing).
fn load(file: &Path) -> anyhow::Result<ToolSpec> {
    let label = file.display().to_string();
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {label}"))?;
    let mut m = Manifest::from_toml(&text, &label)?;
    let base = file.parent().unwrap_or(Path::new("."));
    m.resolve_schemas(&label, |p| {
        std::fs::read_to_string(base.join(p)).map_err(|e| e.to_string())
    })?;
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(1);
    m.to_spec(&label, SecretKey::from_seed(&[1; 32]).public(), now_ms, None)
        .map_err(|e| anyhow!("{e} (`atr tool build` pins the image)"))
}

/// The output when the run matches the example, else what went wrong.
fn judge(spec: &ToolSpec, expected: &Value, o: &Outcome) -> Result<Value, String> {
    match o.status {
        InvocationStatus::Timeout => {
            return Err(format!("timed out after {} ms", spec.limits.timeout_ms));
        }
        InvocationStatus::OutputTooLarge => {
            return Err(format!("wrote more than {} bytes", spec.limits.max_output_bytes));
        }
        InvocationStatus::OutOfMemory => {
            return Err(format!(
                "ran out of memory (limit {} bytes)",
                spec.limits.memory_bytes
            ));
        }
        _ => {}
    }
    let stderr = String::from_utf8_lossy(&o.stderr);
    if o.exit_code != Some(0) {
        return Err(format!(
            "exit code {}: {}",
            o.exit_code
                .map_or_else(|| "unknown".to_owned(), |c| c.to_string()),
            stderr.trim()
        ));
    }
    let out: Value =
        serde_json::from_slice(&o.stdout).map_err(|e| format!("stdout is not one JSON value: {e}"))?;
    if let Some(schema) = &spec.output_schema
        && let Err(e) = validate_input(schema, &out)
    {
        return Err(format!("the output {out} does not match the output schema: {e}"));
    }
    if !json_eq(&out, expected) {
        return Err(format!("got {out}, expected {expected}"));
    }
    Ok(out)
}
