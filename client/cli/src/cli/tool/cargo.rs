//! What `cargo metadata` says about a tool crate.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::cli::Usage;

/// A tool crate, as cargo sees it.
#[derive(Debug, Clone)]
pub(super) struct Crate {
    /// Package name.
    pub(super) name: String,
    /// Package version.
    pub(super) version: String,
    /// Its binaries' names.
    pub(super) bins: Vec<String>,
    /// The workspace root (the crate's own directory for a standalone crate).
    pub(super) workspace_root: PathBuf,
    /// Where manifests go by default: `target/atr` in the crate's workspace root, whatever
    /// `CARGO_TARGET_DIR` says, so `atr publish target/atr/NAME.toml` always works there.
    pub(super) manifest_dir: PathBuf,
}

impl Crate {
    /// Reads the crate at `dir` (a directory with a `Cargo.toml` declaring a package).
    pub(super) fn load(dir: &Path) -> anyhow::Result<Self> {
        let manifest = dir.join("Cargo.toml");
        if !manifest.is_file() {
            return Err(Usage(format!(
                "{} has no Cargo.toml: give the directory of a tool crate (`atr tool new NAME` makes one)",
                dir.display()
            ))
            .into());
        }
        let manifest = manifest
            .canonicalize()
            .with_context(|| format!("reading {}", manifest.display()))?;
        let program = atr_sandbox::cargo::program().to_string_lossy().into_owned();
        let out = atr_sandbox::cargo::command()
            .args([
                "metadata",
                "--format-version",
                "1",
                "--no-deps",
                "--manifest-path",
            ])
            .arg(&manifest)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running `{program} metadata`"))?;
        if !out.status.success() {
            bail!(
                "`cargo metadata` failed on {}: {}",
                manifest.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let meta: Value = serde_json::from_slice(&out.stdout).context("reading `cargo metadata` output")?;
        let package = meta["packages"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["manifest_path"].as_str().map(Path::new) == Some(manifest.as_path()))
            .ok_or_else(|| {
                Usage(format!(
                    "{} declares no package (a virtual workspace?): give the tool crate's own directory",
                    manifest.display()
                ))
            })?;
        let text = |v: &Value, what: &str| -> anyhow::Result<String> {
            v.as_str()
                .map(str::to_owned)
                .with_context(|| format!("`cargo metadata` gave no {what}"))
        };
        let bins = package["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "bin")))
            .filter_map(|t| t["name"].as_str().map(str::to_owned))
            .collect();
        Ok(Self {
            name: text(&package["name"], "package name")?,
            version: text(&package["version"], "package version")?,
            bins,
            workspace_root: PathBuf::from(text(&meta["workspace_root"], "workspace root")?),
            manifest_dir: PathBuf::from(text(&meta["workspace_root"], "workspace root")?)
                .join("target")
                .join("atr"),
        })
    }
}
