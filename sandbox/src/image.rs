//! Tool images with no registry: static binaries in `FROM scratch` images,
//! built locally and pinned by id. The one place image-building code lives.
//!
//! - [`build_static`] runs `cargo build --release --target x86_64-unknown-linux-gnu`
//!   with `+crt-static`, giving binaries that run in an empty root, and returns
//!   their paths.
//! - [`build_scratch_image`] packs [`ImageFile`]s into an in-memory build
//!   context with a `FROM scratch` Dockerfile (numeric [`DEFAULT_USER`],
//!   exec-form entrypoint, see [`ScratchImageOptions`]), builds it through the
//!   Engine API and returns its [`ImageId`].
//! - [`connect`] opens a [`Docker`] client that has negotiated the Engine's API
//!   version.
//!
//! Nothing is ever pulled: the image has no base layer, and its files are
//! owned by root and not writable by the numeric user the tool runs as.
//! Errors are [`ImageError`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::query_parameters::BuildImageOptionsBuilder;
use futures::StreamExt;
use tracing::{debug, info};

/// Default time limit of one image build (5 min). A `FROM scratch` build with
/// only `COPY` takes well under a second; the limit stops a wedged Engine from
/// hanging the caller.
pub const BUILD_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Time limit of connecting to the Engine and negotiating its API version (10 s).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The user tools run as: `nobody:nogroup`, numeric because a scratch image
/// has no `/etc/passwd`.
pub const DEFAULT_USER: &str = "65534:65534";
/// The target triple of static builds: the gnu target with `+crt-static` (the
/// musl target is not part of the toolchain here).
pub const STATIC_TARGET: &str = "x86_64-unknown-linux-gnu";
/// `RUSTFLAGS` of static builds; with `--target` given explicitly cargo applies
/// them to the target's units only, not to build scripts or proc macros.
pub const STATIC_RUSTFLAGS: &str = "-C target-feature=+crt-static -C strip=symbols";
/// Largest build context, in bytes (256 MiB): it is held in memory and sent in
/// one request.
pub const MAX_CONTEXT_BYTES: usize = 256 * 1024 * 1024;
/// Longest path of a file in an image.
pub const MAX_PATH_LEN: usize = 1024;
/// Where files are placed in the build context; `COPY rootfs/ /` copies them.
const CONTEXT_ROOT: &str = "rootfs";
/// Modification time of every entry in the build context (the epoch), so the
/// same files give the same context and the Engine's build cache can hit.
const CONTEXT_MTIME: u64 = 0;
/// The default `DOCKER_HOST`, for messages.
const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

/// Why an image or a static binary could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// The Engine could not be reached or refused the version handshake.
    #[error(
        "Docker Engine not reachable at {host} (is dockerd running, and may this user open its socket? set DOCKER_HOST to use another)"
    )]
    Unreachable {
        /// The address tried (`DOCKER_HOST` or the default socket).
        host: String,
        /// The client's error.
        #[source]
        source: bollard::errors::Error,
    },
    /// The Engine did not answer the version handshake in time.
    #[error("Docker Engine not reachable at {host}: no answer within {after:?}")]
    ConnectTimeout {
        /// The address tried.
        host: String,
        /// The time limit.
        after: Duration,
    },
    /// A file to put in the image was refused.
    #[error("image file `{path}`: {reason}")]
    InvalidFile {
        /// The path in the image, truncated.
        path: String,
        /// The rule broken.
        reason: &'static str,
    },
    /// An option was refused.
    #[error("image option `{field}`: {reason}")]
    InvalidOption {
        /// Which option.
        field: &'static str,
        /// The rule broken.
        reason: String,
    },
    /// The files add up to more than [`MAX_CONTEXT_BYTES`].
    #[error("the build context is {len} bytes, over the {max}-byte limit")]
    ContextTooLarge {
        /// Total size of the files.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Writing the in-memory tar failed.
    #[error("could not write the build context")]
    Context(#[source] std::io::Error),
    /// The Engine reported a build error.
    #[error("building image `{tag}` failed: {message}")]
    BuildFailed {
        /// The tag being built.
        tag: String,
        /// The Engine's message.
        message: String,
    },
    /// The build did not finish in time.
    #[error("building image `{tag}` did not finish within {after:?}")]
    BuildTimeout {
        /// The tag being built.
        tag: String,
        /// The time limit.
        after: Duration,
    },
    /// An Engine API call failed.
    #[error("Docker Engine API call `{call}` failed")]
    Docker {
        /// The API call.
        call: &'static str,
        /// The client's error.
        #[source]
        source: bollard::errors::Error,
    },
    /// The built image's id is missing or malformed.
    #[error("the Engine gave no valid image id for `{tag}` (got {got:?})")]
    NoImageId {
        /// The tag built.
        tag: String,
        /// What was returned.
        got: Option<String>,
    },
    /// `cargo` could not be started or its output read.
    #[error("could not run `{program} build`")]
    CargoSpawn {
        /// The cargo executable.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `cargo build` failed; its diagnostics went to stderr.
    #[error(
        "`cargo build --release --target {STATIC_TARGET} -p {package}` failed ({status}); its errors are printed above"
    )]
    CargoFailed {
        /// The package built.
        package: String,
        /// cargo's exit status.
        status: ExitStatus,
    },
    /// `cargo build` succeeded without producing a requested binary.
    #[error("`cargo build` produced no executable `{bin}` for package `{package}`")]
    BinaryMissing {
        /// The package built.
        package: String,
        /// The binary asked for.
        bin: String,
    },
    /// A built binary is dynamically linked, so it cannot run in a scratch image.
    #[error(
        "`{}` is dynamically linked (it has an ELF interpreter) and cannot run in a scratch image; is RUSTFLAGS being overridden?",
        path.display()
    )]
    NotStatic {
        /// The binary.
        path: PathBuf,
    },
    /// A built binary could not be read.
    #[error("could not read `{}`", path.display())]
    ReadBinary {
        /// The binary.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The id of a local image, `sha256:` followed by 64 lowercase hex digits:
/// the content address of its config, which is what a spec pins.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageId(String);

impl ImageId {
    /// The id, `sha256:…`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 12 hex digits, as `docker images` shows them.
    pub fn fmt_short(&self) -> &str {
        let hex = &self.0["sha256:".len()..];
        &hex[..12]
    }
}

impl FromStr for ImageId {
    type Err = ImageError;

    fn from_str(s: &str) -> Result<Self, ImageError> {
        let ok = s.strip_prefix("sha256:").is_some_and(|h| {
            h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(ImageError::NoImageId {
                tag: String::new(),
                got: Some(s.chars().take(80).collect()),
            })
        }
    }
}

impl fmt::Display for ImageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One file of an image.
#[derive(Clone, PartialEq, Eq)]
pub struct ImageFile {
    /// Absolute path in the image, e.g. `/bin/add`.
    pub path_in_image: String,
    /// The contents.
    pub bytes: Vec<u8>,
    /// Permission bits, e.g. `0o555`; set-user-id and set-group-id are refused.
    pub mode: u32,
}

impl ImageFile {
    /// An executable (`0o555`: readable and runnable by all, writable by none).
    pub fn executable(path_in_image: impl Into<String>, bytes: Vec<u8>) -> Self {
        Self {
            path_in_image: path_in_image.into(),
            bytes,
            mode: 0o555,
        }
    }
}

impl fmt::Debug for ImageFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImageFile")
            .field("path_in_image", &self.path_in_image)
            .field("len", &self.bytes.len())
            .field("mode", &format_args!("{:o}", self.mode))
            .finish()
    }
}

/// How [`build_scratch_image`] configures the image.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ScratchImageOptions {
    /// `USER`, numeric `uid:gid` or `uid` (default [`DEFAULT_USER`]).
    pub user: String,
    /// Exec-form `ENTRYPOINT`; none when empty (the default), so the container
    /// command is the whole command line.
    pub entrypoint: Vec<String>,
    /// Exec-form `CMD`; none when empty (the default).
    pub cmd: Vec<String>,
    /// Image labels.
    pub labels: BTreeMap<String, String>,
    /// `VOLUME` paths (none by default). atr's sandbox covers each with a tmpfs or refuses
    /// the image ([`crate::image_policy`]); this exists to build such images for tests.
    pub volumes: Vec<String>,
    /// Exec-form `HEALTHCHECK CMD` (none by default; the sandbox switches it off).
    pub healthcheck: Vec<String>,
    /// Time limit of the build (default [`BUILD_TIMEOUT`]).
    pub timeout: Duration,
}

impl Default for ScratchImageOptions {
    fn default() -> Self {
        Self {
            user: DEFAULT_USER.to_owned(),
            entrypoint: Vec::new(),
            cmd: Vec::new(),
            labels: BTreeMap::new(),
            volumes: Vec::new(),
            healthcheck: Vec::new(),
            timeout: BUILD_TIMEOUT,
        }
    }
}

impl ScratchImageOptions {
    /// Sets the numeric user.
    pub fn with_user(mut self, user: impl Into<String>) -> Self {
        self.user = user.into();
        self
    }

    /// Sets the exec-form entrypoint.
    pub fn with_entrypoint<S: Into<String>>(mut self, argv: impl IntoIterator<Item = S>) -> Self {
        self.entrypoint = argv.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the exec-form default command.
    pub fn with_cmd<S: Into<String>>(mut self, argv: impl IntoIterator<Item = S>) -> Self {
        self.cmd = argv.into_iter().map(Into::into).collect();
        self
    }

    /// Adds a label.
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Adds a `VOLUME`.
    pub fn with_volume(mut self, path: impl Into<String>) -> Self {
        self.volumes.push(path.into());
        self
    }

    /// Sets an exec-form `HEALTHCHECK CMD` (run every second).
    pub fn with_healthcheck<S: Into<String>>(mut self, argv: impl IntoIterator<Item = S>) -> Self {
        self.healthcheck = argv.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the build's time limit.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// Connects to the Engine at `DOCKER_HOST` (default the local socket) and
/// negotiates its API version, within [`CONNECT_TIMEOUT`]. Without the
/// negotiation bollard would speak its newest API version, which an older
/// Engine refuses.
pub async fn connect() -> Result<Docker, ImageError> {
    let host = std::env::var("DOCKER_HOST").unwrap_or_else(|_| DEFAULT_DOCKER_HOST.to_owned());
    let docker = Docker::connect_with_defaults().map_err(|source| ImageError::Unreachable {
        host: host.clone(),
        source,
    })?;
    match tokio::time::timeout(CONNECT_TIMEOUT, docker.negotiate_version()).await {
        Ok(Ok(docker)) => Ok(docker),
        Ok(Err(source)) => Err(ImageError::Unreachable { host, source }),
        Err(_) => Err(ImageError::ConnectTimeout {
            host,
            after: CONNECT_TIMEOUT,
        }),
    }
}

/// Builds a `FROM scratch` image holding `files`, tags it `tag`, and returns
/// its id. The build output goes to `tracing` (target `atr::image`, debug).
pub async fn build_scratch_image(
    docker: &Docker,
    tag: &str,
    files: &[ImageFile],
    opts: &ScratchImageOptions,
) -> Result<ImageId, ImageError> {
    check_tag(tag)?;
    let dockerfile = dockerfile(files, opts)?;
    let context = build_context(&dockerfile, files)?;
    let context_len = context.len();
    let labels: HashMap<&str, &str> = opts
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let options = BuildImageOptionsBuilder::default()
        .dockerfile("Dockerfile")
        .t(tag)
        .rm(true)
        .forcerm(true)
        // Nothing in a scratch build needs the network: no RUN, no pull.
        .networkmode("none")
        .labels(&labels)
        .build();
    let started = Instant::now();
    let build = async {
        let mut stream = docker.build_image(options, None, Some(bollard::body_full(context.into())));
        let mut reported_id = None;
        while let Some(item) = stream.next().await {
            let info = match item {
                Ok(info) => info,
                Err(bollard::errors::Error::DockerStreamError { error }) => {
                    return Err(ImageError::BuildFailed {
                        tag: tag.to_owned(),
                        message: error,
                    });
                }
                Err(source) => {
                    return Err(ImageError::Docker {
                        call: "build",
                        source,
                    });
                }
            };
            if let Some(detail) = info.error_detail {
                return Err(ImageError::BuildFailed {
                    tag: tag.to_owned(),
                    message: detail.message.unwrap_or_else(|| "unknown error".to_owned()),
                });
            }
            if let Some(text) = info.stream {
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    debug!(target: "atr::image", tag, "{line}");
                }
            }
            if let Some(id) = info.aux.and_then(|aux| aux.id) {
                reported_id = Some(id);
            }
        }
        let inspected = docker
            .inspect_image(tag)
            .await
            .map_err(|source| ImageError::Docker {
                call: "inspect_image",
                source,
            })?;
        let got = inspected.id.or(reported_id);
        got.as_deref()
            .and_then(|s| s.parse::<ImageId>().ok())
            .ok_or_else(|| ImageError::NoImageId {
                tag: tag.to_owned(),
                got,
            })
    };
    let id = tokio::time::timeout(opts.timeout, build)
        .await
        .map_err(|_| ImageError::BuildTimeout {
            tag: tag.to_owned(),
            after: opts.timeout,
        })??;
    info!(
        target: "atr::image",
        tag,
        id = %id.fmt_short(),
        files = files.len(),
        context_bytes = context_len,
        ms = started.elapsed().as_millis() as u64,
        "image built"
    );
    Ok(id)
}

fn check_tag(tag: &str) -> Result<(), ImageError> {
    let ok = !tag.is_empty()
        && tag.len() <= 255
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':' | b'/'));
    if ok {
        Ok(())
    } else {
        Err(ImageError::InvalidOption {
            field: "tag",
            reason: format!("`{tag}` must be 1-255 characters of a-z, 0-9, `.`, `_`, `-`, `:` or `/`"),
        })
    }
}

fn check_file(f: &ImageFile) -> Result<(), ImageError> {
    let err = |reason| ImageError::InvalidFile {
        path: f.path_in_image.chars().take(80).collect(),
        reason,
    };
    let p = &f.path_in_image;
    if p.len() > MAX_PATH_LEN {
        return Err(err("the path is too long"));
    }
    let Some(rest) = p.strip_prefix('/') else {
        return Err(err("the path must be absolute"));
    };
    if rest.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        return Err(err("the path must not have empty, `.` or `..` components"));
    }
    if !p
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-' | b'+' | b'@'))
    {
        return Err(err("the path may only hold a-z, A-Z, 0-9 and `/._-+@`"));
    }
    if f.mode & !0o7777 != 0 {
        return Err(err("the mode has bits beyond 0o7777"));
    }
    if f.mode & 0o6000 != 0 {
        return Err(err("set-user-id and set-group-id files are refused"));
    }
    Ok(())
}

fn check_argv(field: &'static str, argv: &[String]) -> Result<(), ImageError> {
    if argv.iter().any(|a| a.contains('\0')) {
        return Err(ImageError::InvalidOption {
            field,
            reason: "arguments must not contain NUL".to_owned(),
        });
    }
    Ok(())
}

/// The Dockerfile, after every input is checked. Exec-form arrays are JSON, so
/// no argument can break out of its line (serde_json escapes newlines).
fn dockerfile(files: &[ImageFile], opts: &ScratchImageOptions) -> Result<String, ImageError> {
    if files.is_empty() {
        return Err(ImageError::InvalidOption {
            field: "files",
            reason: "an image needs at least one file".to_owned(),
        });
    }
    let mut seen = BTreeSet::new();
    for f in files {
        check_file(f)?;
        if !seen.insert(f.path_in_image.as_str()) {
            return Err(ImageError::InvalidFile {
                path: f.path_in_image.clone(),
                reason: "the path is given twice",
            });
        }
    }
    let (uid, gid) = opts.user.split_once(':').unwrap_or((opts.user.as_str(), "0"));
    let numeric = |s: &str| !s.is_empty() && s.len() <= 10 && s.bytes().all(|b| b.is_ascii_digit());
    if !numeric(uid) || !numeric(gid) {
        return Err(ImageError::InvalidOption {
            field: "user",
            reason: format!(
                "`{}` must be a numeric `uid:gid` or `uid` (a scratch image has no /etc/passwd)",
                opts.user
            ),
        });
    }
    check_argv("entrypoint", &opts.entrypoint)?;
    check_argv("cmd", &opts.cmd)?;
    check_argv("healthcheck", &opts.healthcheck)?;
    for v in &opts.volumes {
        let plain = v.starts_with('/')
            && v.len() <= MAX_PATH_LEN
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-'));
        if !plain {
            return Err(ImageError::InvalidOption {
                field: "volumes",
                reason: format!("`{v}` must be an absolute path of a-z, A-Z, 0-9 and `/._-`"),
            });
        }
    }
    if opts.labels.keys().any(|k| k.is_empty()) {
        return Err(ImageError::InvalidOption {
            field: "labels",
            reason: "label keys must not be empty".to_owned(),
        });
    }
    let json = |argv: &[String]| serde_json::to_string(argv).expect("a list of strings always serializes");
    let mut d = format!("FROM scratch\nCOPY {CONTEXT_ROOT}/ /\nUSER {}\n", opts.user);
    if !opts.entrypoint.is_empty() {
        d.push_str(&format!("ENTRYPOINT {}\n", json(&opts.entrypoint)));
    }
    if !opts.cmd.is_empty() {
        d.push_str(&format!("CMD {}\n", json(&opts.cmd)));
    }
    if !opts.volumes.is_empty() {
        d.push_str(&format!("VOLUME {}\n", json(&opts.volumes)));
    }
    if !opts.healthcheck.is_empty() {
        d.push_str(&format!(
            "HEALTHCHECK --interval=1s --timeout=1s CMD {}\n",
            json(&opts.healthcheck)
        ));
    }
    Ok(d)
}

/// The build context: `Dockerfile` plus `rootfs/<path>` for every file, with
/// every parent directory (`0o755`), all owned by root, all with the same
/// mtime. Files must already be checked.
fn build_context(dockerfile: &str, files: &[ImageFile]) -> Result<Vec<u8>, ImageError> {
    let len: usize = files.iter().map(|f| f.bytes.len()).sum::<usize>() + dockerfile.len();
    if len > MAX_CONTEXT_BYTES {
        return Err(ImageError::ContextTooLarge {
            len,
            max: MAX_CONTEXT_BYTES,
        });
    }
    let mut dirs = BTreeSet::new();
    for f in files {
        let mut p = Path::new(&f.path_in_image);
        while let Some(parent) = p.parent() {
            dirs.insert(parent.to_owned());
            p = parent;
        }
    }
    let mut tar = tar::Builder::new(Vec::with_capacity(len + 64 * 1024));
    let mut append = |path: &str, mode: u32, kind: tar::EntryType, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(CONTEXT_MTIME);
        h.set_size(data.len() as u64);
        tar.append_data(&mut h, path, data).map_err(ImageError::Context)
    };
    append(
        "Dockerfile",
        0o644,
        tar::EntryType::Regular,
        dockerfile.as_bytes(),
    )?;
    // BTreeSet order puts every directory before its children.
    for dir in &dirs {
        let rel = dir.to_string_lossy();
        append(
            &format!("{CONTEXT_ROOT}{rel}"),
            0o755,
            tar::EntryType::Directory,
            &[],
        )?;
    }
    for f in files {
        append(
            &format!("{CONTEXT_ROOT}{}", f.path_in_image),
            f.mode,
            tar::EntryType::Regular,
            &f.bytes,
        )?;
    }
    tar.into_inner().map_err(ImageError::Context)
}

/// Builds binaries of `package` that run in an empty root: `cargo build
/// --release --target` [`STATIC_TARGET`] with [`STATIC_RUSTFLAGS`], in
/// `workspace_root`. Builds the binaries named in `bins`, or all of the
/// package's when `bins` is empty, and returns their paths in that order
/// (cargo's own report of each executable, so `CARGO_TARGET_DIR` and
/// `build.target-dir` are respected). Blocking; cargo's diagnostics go to
/// stderr. Each binary is checked to have no ELF interpreter.
pub fn build_static(package: &str, bins: &[&str], workspace_root: &Path) -> Result<Vec<PathBuf>, ImageError> {
    let program = crate::cargo::program().to_string_lossy().into_owned();
    let mut cmd = crate::cargo::command();
    cmd.current_dir(workspace_root)
        .args(["build", "--release", "--target", STATIC_TARGET, "-p", package])
        .arg("--message-format=json-render-diagnostics")
        .env("RUSTFLAGS", STATIC_RUSTFLAGS)
        // Would take precedence over RUSTFLAGS.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if bins.is_empty() {
        cmd.arg("--bins");
    }
    for b in bins {
        cmd.args(["--bin", b]);
    }
    debug!(target: "atr::image", ?cmd, "static build");
    let spawn_err = |source| ImageError::CargoSpawn {
        program: program.clone(),
        source,
    };
    let mut child = cmd.spawn().map_err(spawn_err)?;
    let mut built: BTreeMap<String, PathBuf> = BTreeMap::new();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line.map_err(spawn_err)?;
            if let Some((name, path)) = executable_of(&line) {
                built.insert(name, path);
            }
        }
    }
    let status = child.wait().map_err(spawn_err)?;
    if !status.success() {
        return Err(ImageError::CargoFailed {
            package: package.to_owned(),
            status,
        });
    }
    let paths: Vec<PathBuf> = if bins.is_empty() {
        built.into_values().collect()
    } else {
        bins.iter()
            .map(|b| {
                built.get(*b).cloned().ok_or_else(|| ImageError::BinaryMissing {
                    package: package.to_owned(),
                    bin: (*b).to_owned(),
                })
            })
            .collect::<Result<_, _>>()?
    };
    if paths.is_empty() {
        return Err(ImageError::BinaryMissing {
            package: package.to_owned(),
            bin: "(any)".to_owned(),
        });
    }
    for p in &paths {
        let bytes = std::fs::read(p).map_err(|source| ImageError::ReadBinary {
            path: p.clone(),
            source,
        })?;
        if has_elf_interpreter(&bytes) {
            return Err(ImageError::NotStatic { path: p.clone() });
        }
    }
    Ok(paths)
}

/// `(name, path)` when a cargo JSON message reports a built binary.
fn executable_of(line: &str) -> Option<(String, PathBuf)> {
    let msg: serde_json::Value = serde_json::from_str(line).ok()?;
    if msg.get("reason")?.as_str()? != "compiler-artifact" {
        return None;
    }
    let target = msg.get("target")?;
    let is_bin = target.get("kind")?.as_array()?.iter().any(|k| k == "bin");
    if !is_bin {
        return None;
    }
    let name = target.get("name")?.as_str()?.to_owned();
    let path = PathBuf::from(msg.get("executable")?.as_str()?);
    Some((name, path))
}

/// Whether an ELF64 little-endian file has a `PT_INTERP` program header, i.e.
/// needs a dynamic loader that a scratch image does not have. Anything that is
/// not such an ELF file gives `false`.
fn has_elf_interpreter(elf: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    let u16_at = |o: usize| elf.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |o: usize| {
        elf.get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |o: usize| {
        elf.get(o..o + 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_le_bytes)
    };
    if elf.get(..6) != Some(&[0x7f, b'E', b'L', b'F', 2, 1][..]) {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38)) else {
        return false;
    };
    (0..usize::from(phnum)).any(|i| {
        usize::try_from(phoff)
            .ok()
            .and_then(|off| off.checked_add(i * usize::from(phentsize)))
            .and_then(u32_at)
            == Some(PT_INTERP)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str) -> ImageFile {
        ImageFile::executable(path, b"#!bin".to_vec())
    }

    #[test]
    fn dockerfile_is_scratch_numeric_user_exec_form() {
        let opts = ScratchImageOptions::default()
            .with_entrypoint(["/bin/tool", "a \"b\"\nUSER 0"])
            .with_cmd(["--x"]);
        let d = dockerfile(&[file("/bin/tool")], &opts).unwrap();
        assert_eq!(
            d,
            "FROM scratch\nCOPY rootfs/ /\nUSER 65534:65534\nENTRYPOINT [\"/bin/tool\",\"a \\\"b\\\"\\nUSER 0\"]\nCMD [\"--x\"]\n"
        );
        let d = dockerfile(&[file("/bin/tool")], &ScratchImageOptions::default()).unwrap();
        assert_eq!(d, "FROM scratch\nCOPY rootfs/ /\nUSER 65534:65534\n");
    }

    #[test]
    fn volumes_and_healthcheck_are_exec_form_lines() {
        let opts = ScratchImageOptions::default()
            .with_volume("/data")
            .with_healthcheck(["/bin/tool", "--probe"]);
        let d = dockerfile(&[file("/bin/tool")], &opts).unwrap();
        assert!(
            d.ends_with(
                "VOLUME [\"/data\"]\nHEALTHCHECK --interval=1s --timeout=1s CMD [\"/bin/tool\",\"--probe\"]\n"
            ),
            "{d}"
        );
        let bad = ScratchImageOptions::default().with_volume("/x\nUSER 0");
        assert!(dockerfile(&[file("/bin/tool")], &bad).is_err());
    }

    #[test]
    fn refuses_bad_files_and_options() {
        let d = ScratchImageOptions::default();
        for bad in [
            "bin/x",
            "/bin/../x",
            "/bin//x",
            "/bin/./x",
            "/",
            "/bin/x y",
            "/bin/x\n",
        ] {
            let e = dockerfile(&[file(bad)], &d).unwrap_err();
            assert!(matches!(e, ImageError::InvalidFile { .. }), "{bad}: {e}");
        }
        let mut setuid = file("/bin/x");
        setuid.mode = 0o4755;
        assert!(matches!(
            dockerfile(&[setuid], &d),
            Err(ImageError::InvalidFile { .. })
        ));
        assert!(matches!(
            dockerfile(&[file("/a"), file("/a")], &d),
            Err(ImageError::InvalidFile { .. })
        ));
        assert!(matches!(
            dockerfile(&[], &d),
            Err(ImageError::InvalidOption { .. })
        ));
        for user in ["nobody", "0:root", "", ":1", "1:"] {
            let e = dockerfile(&[file("/a")], &d.clone().with_user(user)).unwrap_err();
            assert!(
                matches!(e, ImageError::InvalidOption { field: "user", .. }),
                "{user}"
            );
        }
        assert!(dockerfile(&[file("/a")], &d.clone().with_user("1000")).is_ok());
        assert!(check_tag("atr-example-tools:latest").is_ok());
        assert!(check_tag("bad tag").is_err());
        assert!(check_tag("").is_err());
    }

    #[test]
    fn context_has_dockerfile_dirs_and_files_owned_by_root() {
        let files = [file("/bin/a"), ImageFile::executable("/usr/lib/x/b", vec![7; 3])];
        let ctx = build_context("FROM scratch\n", &files).unwrap();
        let mut archive = tar::Archive::new(&ctx[..]);
        let entries: Vec<(String, u32, u64, u64)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    h.size().unwrap(),
                )
            })
            .collect();
        let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "Dockerfile",
                "rootfs/",
                "rootfs/bin",
                "rootfs/usr",
                "rootfs/usr/lib",
                "rootfs/usr/lib/x",
                "rootfs/bin/a",
                "rootfs/usr/lib/x/b"
            ]
        );
        assert!(entries.iter().all(|e| e.2 == 0));
        assert_eq!(entries[6].1, 0o555);
        assert_eq!(entries[7].3, 3);
        // Same files, same bytes: the build cache can hit.
        assert_eq!(ctx, build_context("FROM scratch\n", &files).unwrap());
    }

    #[test]
    fn image_ids_are_checked() {
        let id: ImageId = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
        assert_eq!(id.fmt_short(), "abababababab");
        assert!("sha256:AB".parse::<ImageId>().is_err());
        assert!(format!("sha512:{}", "ab".repeat(32)).parse::<ImageId>().is_err());
    }

    #[test]
    fn cargo_messages_name_executables() {
        let line =
            r#"{"reason":"compiler-artifact","target":{"kind":["bin"],"name":"add"},"executable":"/t/add"}"#;
        assert_eq!(executable_of(line), Some(("add".into(), "/t/add".into())));
        let lib = r#"{"reason":"compiler-artifact","target":{"kind":["lib"],"name":"x"},"executable":null}"#;
        assert_eq!(executable_of(lib), None);
        assert_eq!(executable_of("not json"), None);
    }

    #[test]
    fn unreachable_engine_message_names_the_address() {
        let e = ImageError::Unreachable {
            host: "unix:///nowhere.sock".into(),
            source: bollard::errors::Error::SocketNotFoundError("/nowhere.sock".into()),
        };
        let msg = e.to_string();
        assert!(
            msg.starts_with("Docker Engine not reachable at unix:///nowhere.sock ("),
            "{msg}"
        );
        assert!(std::error::Error::source(&e).is_some());
    }

    /// Against the real Engine (CI has one): build, inspect, remove.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn builds_a_scratch_image() {
        use bollard::query_parameters::RemoveImageOptionsBuilder;

        let docker = connect().await.unwrap();
        let tag = format!("atr-image-test:{}", std::process::id());
        let files = [
            ImageFile::executable("/bin/x", b"not really a program".to_vec()),
            ImageFile {
                path_in_image: "/etc/atr/data.txt".into(),
                bytes: b"hello".to_vec(),
                mode: 0o444,
            },
        ];
        let opts = ScratchImageOptions::default()
            .with_cmd(["/bin/x", "--flag"])
            .with_label("atr.test", "1");
        let id = build_scratch_image(&docker, &tag, &files, &opts).await.unwrap();
        let inspected = docker.inspect_image(&tag).await.unwrap();
        assert_eq!(inspected.id.as_deref(), Some(id.as_str()));
        let config = inspected.config.unwrap();
        assert_eq!(config.user.as_deref(), Some(DEFAULT_USER));
        assert_eq!(config.cmd, Some(vec!["/bin/x".to_owned(), "--flag".to_owned()]));
        assert!(config.entrypoint.unwrap_or_default().is_empty());
        assert_eq!(
            config.labels.unwrap().get("atr.test").map(String::as_str),
            Some("1")
        );
        // The same inputs hit the build cache and give the same id.
        let again = build_scratch_image(&docker, &tag, &files, &opts).await.unwrap();
        assert_eq!(again, id);
        docker
            .remove_image(
                &tag,
                Some(RemoveImageOptionsBuilder::new().force(true).build()),
                None,
            )
            .await
            .unwrap();
    }

    #[test]
    fn detects_dynamic_executables() {
        // This test binary is dynamically linked (no +crt-static in test builds).
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(has_elf_interpreter(&me));
        assert!(!has_elf_interpreter(b"\x7fELF"));
        assert!(!has_elf_interpreter(b""));
    }
}
