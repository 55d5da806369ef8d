//! `atr tool build [PATH]`: static binaries → `FROM scratch` image → pinned manifests.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow, bail};
use atr_protocol::{Manifest, SecretKey};
use atr_sandbox::image::{self, ImageFile, ScratchImageOptions};
use serde_json::json;

use super::cargo::Crate;
use crate::cli::output::{outln, print_json};

/// How long a tool binary may take to print its names or manifest.
const QUERY_TIMEOUT: Duration = Duration::from_secs(20);

/// One tool found in a binary.
struct Found {
    binary: String,
    manifest: Manifest,
}

pub(super) async fn build(
    path: &Path,
    out: Option<PathBuf>,
    tag: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let krate = Crate::load(path)?;
    if krate.bins.is_empty() {
        bail!(
            "package `{}` has no binary: a tool crate's src/main.rs calls `atr_tool::serve![...]`",
            krate.name
        );
    }
    // Connect first: no point compiling for minutes if there is no Engine.
    let docker = image::connect().await?;
    if !json {
        eprintln!(
            "building {} {} statically ({})",
            krate.name,
            krate.version,
            image::STATIC_TARGET
        );
    }
    let (name, root) = (krate.name.clone(), krate.workspace_root.clone());
    let paths = tokio::task::spawn_blocking(move || image::build_static(&name, &[], &root))
        .await
        .context("the static build task panicked")??;

    let mut files = Vec::with_capacity(paths.len());
    let mut found: Vec<Found> = Vec::new();
    for p in &paths {
        let binary = p
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("binary path `{}` has no file name", p.display()))?
            .to_owned();
        let bytes = tokio::fs::read(p)
            .await
            .with_context(|| format!("reading {}", p.display()))?;
        files.push(ImageFile::executable(format!("/bin/{binary}"), bytes));
        let names = match query(p, &["--list"]).await {
            Ok(text) => text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect(),
            Err(e) => {
                eprintln!("note: `{binary}` serves no atr tool ({e}); it is packed but gets no manifest");
                Vec::new()
            }
        };
        for tool in names {
            let text = query(p, &[&tool, "--manifest"]).await?;
            let manifest = Manifest::from_toml(&text, &format!("{binary} {tool} --manifest"))?;
            found.push(Found {
                binary: binary.clone(),
                manifest,
            });
        }
    }
    let Some(first) = found.first() else {
        bail!(
            "no binary of `{}` serves an atr tool (`<binary> --list` printed none): does src/main.rs call `atr_tool::serve![...]`?",
            krate.name
        );
    };
    let tag = tag.unwrap_or_else(|| first.manifest.runtime.image.clone());
    let opts = ScratchImageOptions::default()
        .with_cmd(first.manifest.runtime.command.clone())
        .with_label("org.opencontainers.image.title", krate.name.clone())
        .with_label("org.opencontainers.image.version", krate.version.clone())
        .with_label(
            "dev.atr.tools",
            found
                .iter()
                .map(|f| f.manifest.name.as_str())
                .collect::<Vec<_>>()
                .join(","),
        );
    if !json {
        eprintln!("packing {} binaries into FROM scratch image {tag}", files.len());
    }
    let id = image::build_scratch_image(&docker, &tag, &files, &opts).await?;

    let out = out.unwrap_or_else(|| krate.manifest_dir.clone());
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    // A throw-away key: `to_spec` checks the manifest as the node will, signing nothing.
    let key = SecretKey::from_seed(&[1; 32]).public();
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(1);
    let mut written = Vec::new();
    for f in &mut found {
        let m = &mut f.manifest;
        m.runtime.image = tag.clone();
        m.runtime.digest = Some(id.to_string());
        let file = out.join(format!("{}.toml", m.name));
        let label = file.display().to_string();
        m.to_spec(&label, key, now_ms, None)
            .map_err(|e| anyhow!("the manifest of `{}` would be refused: {e}", m.name))?;
        let body = toml::to_string(m).with_context(|| format!("writing the manifest of `{}`", m.name))?;
        let text = format!(
            "{} (binary `{}`); publish with `atr publish {label}`.\n{body}",
            written_by(&krate.name, &krate.version),
            f.binary
        );
        std::fs::write(&file, text).with_context(|| format!("writing {label}"))?;
        written.push((m.name.clone(), file));
    }

    if json {
        let manifests: Vec<_> = written
            .iter()
            .map(|(n, p)| json!({"tool": n, "manifest": p}))
            .collect();
        return print_json(&json!({"image": tag, "id": id.as_str(), "manifests": manifests}));
    }
    outln!("image {tag}  {id}  (user {}, FROM scratch)", image::DEFAULT_USER)?;
    for (name, file) in &written {
        outln!("  {name}: {}", file.display())?;
    }
    outln!("\npublish with:")?;
    for (_, file) in &written {
        outln!("  atr publish {}", file.display())?;
    }
    Ok(())
}

/// The start of the first line of a manifest `atr tool build` wrote for `package` `version`.
fn written_by(package: &str, version: &str) -> String {
    format!("# Written by `atr tool build` from {package} {version}")
}

/// Whether `atr tool build` wrote this manifest text for `package` `version`.
pub(super) fn written_for(manifest: &str, package: &str, version: &str) -> bool {
    manifest
        .lines()
        .next()
        .and_then(|l| l.strip_prefix(&written_by(package, version)))
        .is_some_and(|rest| rest.starts_with(" ("))
}

/// Runs a built tool binary with `args` (stdin closed) and returns its stdout.
async fn query(binary: &Path, args: &[&str]) -> anyhow::Result<String> {
    let run = tokio::process::Command::new(binary)
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(QUERY_TIMEOUT, run)
        .await
        .map_err(|_| {
            anyhow!(
                "`{} {}` did not finish within {QUERY_TIMEOUT:?}",
                binary.display(),
                args.join(" ")
            )
        })?
        .with_context(|| format!("running {}", binary.display()))?;
    if !out.status.success() {
        bail!(
            "`{} {}` failed ({}): {}",
            binary.display(),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    String::from_utf8(out.stdout).context("the output is not UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_are_told_apart_by_package_and_version() {
        let text = format!(
            "{} (binary `sum`); publish with …\nname = \"sum\"\n",
            written_by("sum", "0.1.0")
        );
        assert!(written_for(&text, "sum", "0.1.0"));
        assert!(!written_for(&text, "sum", "0.2.0"));
        assert!(!written_for(&text, "su", "0.1.0"));
        assert!(!written_for("name = \"sum\"\n", "sum", "0.1.0"));
    }
}
