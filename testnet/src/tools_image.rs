//! The example tools image: every binary of the `atr-example-tools` package,
//! built statically and placed at `/bin/<tool>` in a `FROM scratch` image
//! tagged [`TOOLS_IMAGE`]. Each tool's manifest runs it with
//! `command = ["/bin/<tool>"]`; the image has no entrypoint, so the command is
//! the whole command line.
//!
//! [`build`] does it all and returns a [`ToolsImage`] with the image id and
//! what it cost. The building blocks are in [`atr_sandbox::image`].

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use atr_sandbox::image::{self, ImageFile, ImageId, ScratchImageOptions};

/// The package holding the example tools.
pub const TOOLS_PACKAGE: &str = "atr-example-tools";
/// The tag of the example tools image, as the manifests name it.
pub const TOOLS_IMAGE: &str = "atr-example-tools:latest";
/// Where the tools go in the image.
pub const TOOLS_DIR: &str = "/bin";

/// What [`build`] produced, and what it cost.
#[derive(Debug, Clone)]
pub struct ToolsImage {
    /// The image id (`sha256:…`).
    pub id: ImageId,
    /// The tag it carries.
    pub tag: String,
    /// Tool names, in the order packed.
    pub tools: Vec<String>,
    /// Total size of the binaries, bytes.
    pub binaries_bytes: u64,
    /// Size of the image as the Engine reports it, bytes.
    pub image_bytes: Option<u64>,
    /// Wall time of the static `cargo build`.
    pub static_build: Duration,
    /// Wall time of the image build (context, build, inspect).
    pub image_build: Duration,
}

/// The workspace root this crate was built in (`testnet/..`).
pub fn default_workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Builds every example tool statically from `workspace_root` and packs them
/// into a scratch image tagged `tag`.
pub async fn build(workspace_root: &Path, tag: &str) -> anyhow::Result<ToolsImage> {
    // Connect first: no point compiling for minutes if there is no Engine.
    let docker = image::connect().await?;

    let started = Instant::now();
    let root = workspace_root.to_path_buf();
    let paths = tokio::task::spawn_blocking(move || image::build_static(TOOLS_PACKAGE, &[], &root))
        .await
        .context("the static build task panicked")??;
    let static_build = started.elapsed();

    let mut files = Vec::with_capacity(paths.len());
    let mut tools = Vec::with_capacity(paths.len());
    for p in &paths {
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("binary path `{}` has no file name", p.display()))?
            .to_owned();
        let bytes = tokio::fs::read(p)
            .await
            .with_context(|| format!("reading {}", p.display()))?;
        files.push(ImageFile::executable(format!("{TOOLS_DIR}/{name}"), bytes));
        tools.push(name);
    }
    let binaries_bytes = files.iter().map(|f| f.bytes.len() as u64).sum();

    let opts = ScratchImageOptions::default()
        .with_cmd([format!("{TOOLS_DIR}/echo")])
        .with_label("org.opencontainers.image.title", TOOLS_PACKAGE)
        .with_label("org.opencontainers.image.version", env!("CARGO_PKG_VERSION"))
        .with_label("atr.tools", tools.join(","));
    let started = Instant::now();
    let id = image::build_scratch_image(&docker, tag, &files, &opts).await?;
    let image_build = started.elapsed();

    let image_bytes = docker
        .inspect_image(id.as_str())
        .await
        .ok()
        .and_then(|i| i.size)
        .and_then(|s| u64::try_from(s).ok());
    Ok(ToolsImage {
        id,
        tag: tag.to_owned(),
        tools,
        binaries_bytes,
        image_bytes,
        static_build,
        image_build,
    })
}
