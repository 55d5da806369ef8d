//! The runner: one fresh, hardened, throw-away Docker container per invocation, used by
//! `atrd` for every invocation and by `atr tool test` for every example.
//!
//! Every container is created from the spec's [`SandboxProfile`] rendered by
//! [`crate::profile`] (no network, memory without swap, CPU, pids, read-only root, a `noexec`
//! tmpfs at `/tmp`, all capabilities dropped, `no-new-privileges`, AppArmor `docker-default`,
//! a non-root numeric user, ulimits on open files and file size, no host mounts, the `none` log
//! driver, the image's healthcheck off and its volumes on tmpfs after
//! [`crate::image_policy`] accepted the image) and labelled as atr's ([`LABEL_SANDBOX`], [`LABEL_NODE`], [`LABEL_INSTANCE`], [`LABEL_INVOCATION`]).
//!
//! The input goes in on stdin; stdout is read up to the spec's output cap and
//! stderr up to [`STDERR_CAP`]; the deadline is ours (cgroups have none), after
//! which the container is killed. The container is force-removed on every
//! path — the attach stream is dropped first (an unread attach stream blocks
//! removal: moby#41827). Every Docker call has a timeout.
//!
//! [`Sandbox::cleanup_leftovers`] removes containers a crashed run of this
//! node left behind (found by label).

mod run;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::{ListContainersOptions, RemoveContainerOptions};
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use crate::confinement::EngineConfinement;
use crate::image_policy::ImagePolicy;
use atr_protocol::sandbox::SandboxProfile;
pub use atr_protocol::sandbox::{MAX_FILE_BYTES, MAX_OPEN_FILES, STDERR_CAP, TMPFS_BYTES};
use atr_protocol::spec::Limits;
pub use run::{RunOutcome, RunRequest, Timings};

use run::{ContainerKey, Prepared};

/// Label present on every sandbox container.
pub const LABEL_SANDBOX: &str = "dev.atr.sandbox";
/// Label holding the owning node's peer id.
pub const LABEL_NODE: &str = "dev.atr.node";
/// Label holding the owning process instance.
pub const LABEL_INSTANCE: &str = "dev.atr.instance";
/// Label holding the invocation id.
pub const LABEL_INVOCATION: &str = "dev.atr.invocation";
/// Timeout of each Docker API call (create, start, inspect, remove).
pub const DOCKER_CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a positive `has_image` answer is trusted.
pub const IMAGE_CACHE_TTL: Duration = Duration::from_secs(10);
/// Pooled containers older than this are replaced (not handed out).
pub const POOL_MAX_AGE: Duration = Duration::from_secs(300);
/// Most distinct tools with a warm pool.
pub const POOL_MAX_KEYS: usize = 16;

/// Why the sandbox could not run something.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// The Docker Engine is not reachable.
    #[error("Docker Engine not reachable: {0} (is dockerd running and is /var/run/docker.sock accessible?)")]
    Unreachable(String),
    /// The pinned image is not on this host.
    #[error("image {0} is not present on this node (images are never pulled: build it locally)")]
    ImageMissing(String),
    /// Every sandbox slot is busy.
    #[error("all {0} sandbox slots are busy")]
    Busy(usize),
    /// A Docker call failed.
    #[error("docker {op}: {detail}")]
    Docker {
        /// Which call.
        op: &'static str,
        /// The engine's message.
        detail: String,
    },
    /// A Docker call did not answer in time.
    #[error("docker {0} timed out")]
    Timeout(&'static str),
    /// The image's own configuration is refused ([`crate::image_policy`]).
    #[error("image {image} is refused: {reason}")]
    ImageRefused {
        /// The image.
        image: String,
        /// Why.
        reason: crate::image_policy::ImageRefusal,
    },
}

/// Sandbox settings.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// Containers running at once; further invocations are answered `busy`.
    pub max_concurrent: usize,
    /// OCI runtime (e.g. `runsc` for gVisor); `None` is the engine default.
    pub runtime: Option<String>,
    /// Pre-started single-use containers kept per tool (0 = no pool). Each
    /// waits on stdin; an invocation takes one, so only stdin → stdout
    /// remains on its critical path, and a new one is started behind it.
    pub warm_pool: usize,
}

impl SandboxOptions {
    /// The profile a tool with `limits` runs under with these options: the spec's limits, the
    /// hardening of [`SandboxProfile::new`] and this [`Self::runtime`].
    pub fn profile(&self, limits: &Limits) -> SandboxProfile {
        SandboxProfile::new(limits).with_runtime(self.runtime.clone())
    }

    /// The profile of a spec's whole `policy` with these options (no egress attachment).
    pub fn profile_for(&self, policy: &atr_protocol::policy::Policy) -> SandboxProfile {
        SandboxProfile::for_policy(policy).with_runtime(self.runtime.clone())
    }
}

impl Default for SandboxOptions {
    fn default() -> Self {
        Self {
            max_concurrent: 4,
            runtime: None,
            warm_pool: 0,
        }
    }
}

/// A connection to the Docker Engine plus this node's sandbox policy.
#[derive(Clone)]
pub struct Sandbox {
    docker: Docker,
    node: String,
    instance: String,
    slots: Arc<Semaphore>,
    opts: SandboxOptions,
    pool: Arc<std::sync::Mutex<HashMap<ContainerKey, Vec<Prepared>>>>,
    removals: tokio_util::task::TaskTracker,
    images: Arc<std::sync::Mutex<HashMap<String, std::time::Instant>>>,
    policies: Arc<std::sync::Mutex<HashMap<String, Arc<ImagePolicy>>>>,
    confinement: Option<EngineConfinement>,
    /// Where CPU time and peak memory are read (`None`: not measured here).
    cgroups: Option<Arc<crate::usage::Cgroups>>,
}

/// Most image policies cached (an image id names its config, so an entry never goes stale).
pub const POLICY_CACHE_MAX: usize = 1024;

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sandbox(node={}, instance={})", self.node, self.instance)
    }
}

pub(crate) async fn timed<T, E: std::fmt::Display>(
    op: &'static str,
    fut: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, SandboxError> {
    match tokio::time::timeout(DOCKER_CALL_TIMEOUT, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(SandboxError::Docker {
            op,
            detail: e.to_string(),
        }),
        Err(_) => Err(SandboxError::Timeout(op)),
    }
}

impl Sandbox {
    /// Connects to the local Docker Engine (negotiating the API version) and
    /// checks it answers. `node` labels this node's containers.
    pub async fn connect(node: &str, opts: SandboxOptions) -> Result<Self, SandboxError> {
        let docker =
            Docker::connect_with_local_defaults().map_err(|e| SandboxError::Unreachable(e.to_string()))?;
        let docker = match tokio::time::timeout(Duration::from_secs(5), docker.negotiate_version()).await {
            Ok(Ok(d)) => d,
            Ok(Err(e)) => return Err(SandboxError::Unreachable(e.to_string())),
            Err(_) => return Err(SandboxError::Unreachable("no answer within 5 s".into())),
        };
        match tokio::time::timeout(Duration::from_secs(5), docker.ping()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(SandboxError::Unreachable(e.to_string())),
            Err(_) => return Err(SandboxError::Unreachable("ping timed out".into())),
        }
        let confinement = crate::confinement::warn_if_unconfined(&docker).await;
        let cgroups = crate::usage::Cgroups::discover(&docker).await.map(Arc::new);
        let mut sb = Self::with_docker(docker, node, opts);
        sb.confinement = confinement;
        sb.cgroups = cgroups;
        Ok(sb)
    }

    /// A sandbox on an Engine connection made elsewhere (e.g. one honouring `DOCKER_HOST`, as
    /// `atr tool test` makes). `node` labels the containers; [`Self::cleanup_leftovers`]
    /// only touches containers with the same `node`.
    pub fn with_docker(docker: Docker, node: &str, opts: SandboxOptions) -> Self {
        let mut b = [0u8; 8];
        rand::fill(&mut b);
        Self {
            docker,
            node: node.to_owned(),
            instance: hex::encode(b),
            slots: Arc::new(Semaphore::new(opts.max_concurrent.max(1))),
            opts,
            pool: Arc::new(std::sync::Mutex::new(HashMap::new())),
            removals: tokio_util::task::TaskTracker::new(),
            images: Arc::new(std::sync::Mutex::new(HashMap::new())),
            policies: Arc::new(std::sync::Mutex::new(HashMap::new())),
            confinement: None,
            cgroups: None,
        }
    }

    /// What `docker info` said about seccomp and AppArmor at [`Self::connect`] (`None`: not
    /// asked, or no answer).
    pub fn confinement(&self) -> Option<EngineConfinement> {
        self.confinement
    }

    /// What the image `image` (an id or a local reference) may ask of its containers
    /// ([`crate::image_policy::check`]), or `ImageRefused`. Answers for image ids are cached:
    /// an id is the hash of the config it names.
    pub async fn image_policy(&self, image: &str) -> Result<Arc<ImagePolicy>, SandboxError> {
        if let Ok(c) = self.policies.lock()
            && let Some(p) = c.get(image)
        {
            return Ok(p.clone());
        }
        let inspected =
            match tokio::time::timeout(DOCKER_CALL_TIMEOUT, self.docker.inspect_image(image)).await {
                Ok(Ok(img)) => img,
                Ok(Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. })) => {
                    return Err(SandboxError::ImageMissing(image.into()));
                }
                Ok(Err(e)) => {
                    return Err(SandboxError::Docker {
                        op: "inspect image",
                        detail: e.to_string(),
                    });
                }
                Err(_) => return Err(SandboxError::Timeout("inspect image")),
            };
        let policy = crate::image_policy::check(inspected.config.as_ref())
            .map(Arc::new)
            .map_err(|reason| SandboxError::ImageRefused {
                image: image.to_owned(),
                reason,
            })?;
        if policy.healthcheck {
            debug!(image, "the image's HEALTHCHECK is switched off in its containers");
        }
        if inspected.id.as_deref() == Some(image)
            && let Ok(mut c) = self.policies.lock()
        {
            if c.len() >= POLICY_CACHE_MAX {
                c.clear();
            }
            c.insert(image.to_owned(), policy.clone());
        }
        Ok(policy)
    }

    /// For the checks at publish and at provide: `Some(why)` when the image's own
    /// configuration is refused ([`Sandbox::image_policy`]); `None` when it is accepted or
    /// could not be checked now (logged; it is checked again before every run).
    pub async fn image_refusal(&self, image: &str) -> Option<String> {
        match self.image_policy(image).await {
            Ok(_) => None,
            Err(e @ SandboxError::ImageRefused { .. }) => Some(e.to_string()),
            Err(e) => {
                warn!(image, error = %e, "cannot check the image's configuration");
                None
            }
        }
    }

    /// The Docker client.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// Slots free right now.
    pub fn free_slots(&self) -> usize {
        self.slots.available_permits()
    }

    /// The image id (`sha256:…`) of a local image reference, or `ImageMissing`.
    pub async fn resolve_image(&self, reference: &str) -> Result<String, SandboxError> {
        match tokio::time::timeout(DOCKER_CALL_TIMEOUT, self.docker.inspect_image(reference)).await {
            Ok(Ok(img)) => img.id.ok_or_else(|| SandboxError::ImageMissing(reference.into())),
            Ok(Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. })) => {
                Err(SandboxError::ImageMissing(reference.into()))
            }
            Ok(Err(e)) => Err(SandboxError::Docker {
                op: "inspect image",
                detail: e.to_string(),
            }),
            Err(_) => Err(SandboxError::Timeout("inspect image")),
        }
    }

    /// Whether this host holds exactly the pinned image.
    /// Positive answers are cached for [`IMAGE_CACHE_TTL`] (one Docker call
    /// less per invocation); a removed image is noticed after that, and a run
    /// of a missing image still fails with `ImageMissing` at create.
    pub async fn has_image(&self, digest: &str) -> Result<bool, SandboxError> {
        if let Ok(c) = self.images.lock()
            && c.get(digest).is_some_and(|t| t.elapsed() < IMAGE_CACHE_TTL)
        {
            return Ok(true);
        }
        match self.resolve_image(digest).await {
            Ok(id) => {
                let ok = id == digest;
                if ok && let Ok(mut c) = self.images.lock() {
                    if c.len() > 1024 {
                        c.clear();
                    }
                    c.insert(digest.to_owned(), std::time::Instant::now());
                }
                Ok(ok)
            }
            Err(SandboxError::ImageMissing(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Waits until background container removals have finished.
    pub async fn settle(&self) {
        self.removals.close();
        self.removals.wait().await;
        self.removals.reopen();
    }

    /// Runs one invocation in a fresh container. Returns `Busy` at once when
    /// every slot is taken.
    pub async fn run(&self, req: RunRequest<'_>) -> Result<RunOutcome, SandboxError> {
        let permit = self
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| SandboxError::Busy(self.opts.max_concurrent))?;
        let key = ContainerKey::of(&req);
        let out = if self.opts.warm_pool > 0 && key.poolable() {
            let warm = self.take_warm(&key);
            self.refill(key);
            match warm {
                Some(p) => run::execute(self, p, &req).await,
                None => run::run(self, req).await,
            }
        } else {
            run::run(self, req).await
        };
        drop(permit);
        out
    }

    /// A pre-started container for `key`, if one is ready and fresh.
    fn take_warm(&self, key: &ContainerKey) -> Option<Prepared> {
        let mut pool = self.pool.lock().ok()?;
        let list = pool.get_mut(key)?;
        while let Some(p) = list.pop() {
            if p.born.elapsed() < POOL_MAX_AGE {
                return Some(p);
            }
            // Expired: dropping it removes the container.
        }
        None
    }

    /// Starts containers in the background until `key`'s pool is full.
    fn refill(&self, key: ContainerKey) {
        let want = {
            let Ok(mut pool) = self.pool.lock() else { return };
            if !pool.contains_key(&key) && pool.len() >= POOL_MAX_KEYS {
                return;
            }
            let have = pool.entry(key.clone()).or_default().len();
            self.opts.warm_pool.saturating_sub(have)
        };
        for _ in 0..want {
            let sb = self.clone();
            let key = key.clone();
            tokio::spawn(async move {
                match run::prepare(&sb, &key, "pool").await {
                    Ok(p) => {
                        if let Ok(mut pool) = sb.pool.lock() {
                            let list = pool.entry(key).or_default();
                            if list.len() < sb.opts.warm_pool {
                                list.push(p);
                            }
                        }
                    }
                    Err(e) => debug!(error = %e, "could not pre-start a pooled container"),
                }
            });
        }
    }

    /// Drops every pooled container (they are removed in the background).
    pub fn drain_pool(&self) {
        if let Ok(mut pool) = self.pool.lock() {
            pool.clear();
        }
    }

    fn labels(&self, invocation: &str) -> HashMap<String, String> {
        HashMap::from([
            (LABEL_SANDBOX.to_owned(), "1".to_owned()),
            (LABEL_NODE.to_owned(), self.node.clone()),
            (LABEL_INSTANCE.to_owned(), self.instance.clone()),
            (LABEL_INVOCATION.to_owned(), invocation.to_owned()),
        ])
    }

    /// This node's sandbox containers (any instance), found by label.
    async fn own_containers(&self) -> Result<Vec<bollard::models::ContainerSummary>, SandboxError> {
        let filters = HashMap::from([(
            "label".to_owned(),
            vec![
                format!("{LABEL_SANDBOX}=1"),
                format!("{LABEL_NODE}={}", self.node),
            ],
        )]);
        let opts = ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        timed("list containers", self.docker.list_containers(Some(opts))).await
    }

    /// Lists this node's sandbox containers (any instance).
    pub async fn list_own(&self) -> Result<Vec<String>, SandboxError> {
        Ok(self
            .own_containers()
            .await?
            .into_iter()
            .filter_map(|c| c.id)
            .collect())
    }

    /// Removes every container of this node, including this run's (shutdown).
    pub async fn remove_all_own(&self) -> Result<usize, SandboxError> {
        self.settle().await;
        let mut removed = 0;
        for id in self.list_own().await? {
            if self.remove(&id).await.is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Removes containers of this node left by an earlier (crashed) run.
    pub async fn cleanup_leftovers(&self) -> Result<usize, SandboxError> {
        let list = self.own_containers().await?;
        let mut removed = 0;
        for c in list {
            let mine_now = c
                .labels
                .as_ref()
                .and_then(|l| l.get(LABEL_INSTANCE))
                .is_some_and(|i| *i == self.instance);
            if mine_now {
                continue;
            }
            if let Some(id) = c.id {
                match self.remove(&id).await {
                    Ok(()) => removed += 1,
                    Err(e) => warn!(container = %id, error = %e, "could not remove leftover container"),
                }
            }
        }
        if removed > 0 {
            info!(removed, "removed sandbox containers left by an earlier run");
        }
        self.sweep_cgroups().await;
        Ok(removed)
    }

    /// Removes the parent cgroups ([`crate::usage`]) of sandbox containers that no longer
    /// exist (a crashed run, or containers removed by [`Self::remove_all_own`]). A parent
    /// whose container still exists is kept; one still holding a cgroup cannot be removed.
    async fn sweep_cgroups(&self) {
        let Some(c) = &self.cgroups else { return };
        let opts = ListContainersOptions {
            all: true,
            filters: Some(HashMap::from([(
                "label".to_owned(),
                vec![format!("{LABEL_SANDBOX}=1")],
            )])),
            ..Default::default()
        };
        match timed("list containers", self.docker.list_containers(Some(opts))).await {
            Ok(all) => {
                let live: std::collections::HashSet<String> = all
                    .into_iter()
                    .flat_map(|c| c.names.unwrap_or_default())
                    .map(|n| n.trim_start_matches('/').to_owned())
                    .collect();
                c.sweep(&live).await;
            }
            Err(e) => debug!(error = %e, "cannot list containers; sandbox parent cgroups not swept"),
        }
    }

    pub(crate) async fn remove(&self, id: &str) -> Result<(), SandboxError> {
        let opts = RemoveContainerOptions {
            force: true,
            v: true,
            ..Default::default()
        };
        match tokio::time::timeout(DOCKER_CALL_TIMEOUT, self.docker.remove_container(id, Some(opts))).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. })) => Ok(()),
            Ok(Err(e)) => Err(SandboxError::Docker {
                op: "remove",
                detail: e.to_string(),
            }),
            Err(_) => Err(SandboxError::Timeout("remove")),
        }
    }
}
