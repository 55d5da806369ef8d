//! One invocation, in order: create (image by id, hardened host config) →
//! attach (before start, `logs=false`) → start → write stdin and half-close →
//! read stdout/stderr under byte caps and the deadline → wait `not-running`
//! (after EOF: the wait request is lazy, bollard#251) → inspect on 137 for
//! OOM → drop the attach halves → force-remove.

use std::time::{Duration, Instant};

use atr_protocol::receipt::InvocationStatus;
use atr_protocol::spec::Limits;
use bollard::container::LogOutput;
use bollard::query_parameters::{AttachContainerOptions, CreateContainerOptions, WaitContainerOptions};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tracing::{debug, warn};

use super::{Sandbox, SandboxError, timed};
use atr_protocol::policy::{Permissions, Policy};
use atr_protocol::sandbox::EgressAttachment;

use crate::profile::{self, Env, Program};

/// What to run.
#[derive(Debug, Clone)]
pub struct RunRequest<'a> {
    /// Image id, `sha256:…` (never a mutable tag).
    pub image: &'a str,
    /// Command; empty means the image's entrypoint.
    pub command: &'a [String],
    /// Working directory.
    pub workdir: Option<&'a str>,
    /// Limits to apply.
    pub limits: &'a Limits,
    /// JSON input, written to stdin.
    pub input: &'a [u8],
    /// Invocation id (hex), for labels and the container name.
    pub invocation: &'a str,
    /// The spec's declared permissions (scratch, output dir, secret names, egress).
    pub permissions: &'a Permissions,
    /// The node's egress attachment for this run (`None`: no network).
    pub egress: Option<EgressAttachment>,
    /// Secret values for this run, by name (only the names the spec declares are passed).
    pub secrets: Env,
}

/// Where the time went, milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Timings {
    /// create_container.
    pub create_ms: f64,
    /// attach.
    pub attach_ms: f64,
    /// start_container.
    pub start_ms: f64,
    /// stdin written → stdout EOF (or the cut).
    pub run_ms: f64,
    /// wait_container (+ inspect on 137).
    pub wait_ms: f64,
    /// remove_container on the critical path (0 when the process had exited:
    /// then removal runs in the background).
    pub remove_ms: f64,
}

/// What happened.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// How it ended.
    pub status: InvocationStatus,
    /// Stdout, at most the output cap.
    pub stdout: Vec<u8>,
    /// Stderr, at most [`super::STDERR_CAP`] (the profile's stderr cap).
    pub stderr: Vec<u8>,
    /// Exit code, when the process exited.
    pub exit_code: Option<i64>,
    /// Start, ms since the epoch.
    pub started_at_ms: u64,
    /// End, ms since the epoch.
    pub finished_at_ms: u64,
    /// Breakdown.
    pub timings: Timings,
    /// Wall time of the process, milliseconds (input written → exit or kill).
    pub wall_ms: u64,
    /// CPU time and peak memory, from the container's parent cgroup ([`crate::usage`]).
    pub measured: crate::usage::Measured,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// Removes the container when dropped unless it was removed already: covers
/// cancellation (the caller's future dropped mid-run) and panics.
struct RemoveOnDrop {
    sandbox: Sandbox,
    id: Option<String>,
    /// The container's name when it has a parent cgroup to remove after it.
    cgroup: Option<String>,
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            let sb = self.sandbox.clone();
            let cgroup = self.cgroup.take();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    if let Err(e) = sb.remove(&id).await {
                        warn!(container = %id, error = %e, "could not remove sandbox container");
                    }
                    sb.release_cgroup(cgroup.as_deref()).await;
                });
            }
        }
    }
}

impl Sandbox {
    /// Removes the parent cgroup of container `name` (after the container).
    async fn release_cgroup(&self, name: Option<&str>) {
        if let (Some(c), Some(name)) = (&self.cgroups, name) {
            c.release(name).await;
        }
    }

    /// CPU time and peak memory of container `name` so far (its process has ended).
    async fn measure(&self, name: Option<&str>) -> crate::usage::Measured {
        match (&self.cgroups, name) {
            (Some(c), Some(name)) => c.measure(name).await,
            _ => crate::usage::Measured::default(),
        }
    }
}

/// A created, attached and started container, blocked reading stdin.
pub(crate) struct Prepared {
    id: String,
    attached: bollard::container::AttachContainerResults,
    guard: RemoveOnDrop,
    timings: Timings,
    /// When it was started (pooled containers expire).
    pub(crate) born: Instant,
}

/// What a container is made from: everything but the input.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ContainerKey {
    pub(crate) image: String,
    pub(crate) command: Vec<String>,
    pub(crate) workdir: Option<String>,
    pub(crate) limits: Limits,
    pub(crate) permissions: Permissions,
    pub(crate) egress: Option<EgressAttachment>,
    pub(crate) secrets: Env,
}

impl ContainerKey {
    pub(crate) fn of(req: &RunRequest<'_>) -> Self {
        Self {
            image: req.image.to_owned(),
            command: req.command.to_vec(),
            workdir: req.workdir.map(str::to_owned),
            limits: *req.limits,
            permissions: req.permissions.clone(),
            egress: req.egress.clone(),
            secrets: req.secrets.clone(),
        }
    }

    /// Whether a pre-started container may serve this key: not when the run carries
    /// per-invocation values (a proxy token, secrets).
    pub(crate) fn poolable(&self) -> bool {
        self.egress.is_none() && self.secrets.0.is_empty()
    }

    pub(crate) fn policy(&self) -> Policy {
        Policy {
            limits: self.limits,
            permissions: self.permissions.clone(),
        }
    }
}

impl Sandbox {
    /// The create body of a container for `key`: the only way this runner makes one.
    pub(crate) fn container_body(
        &self,
        key: &ContainerKey,
        volumes: &[String],
        invocation: &str,
    ) -> bollard::models::ContainerCreateBody {
        let program = Program {
            image: &key.image,
            command: &key.command,
            workdir: key.workdir.as_deref(),
            volumes,
        };
        let profile = self
            .opts
            .profile_for(&key.policy())
            .with_egress(key.egress.clone());
        profile::container_body_with(&profile, program, self.labels(invocation), &key.secrets)
    }
}

/// Create → attach → start. The container then waits for its input.
pub(crate) async fn prepare(
    sb: &Sandbox,
    key: &ContainerKey,
    invocation: &str,
) -> Result<Prepared, SandboxError> {
    let mut t = Timings::default();
    // The image's VOLUMEs become tmpfs mounts; a refused image is never started.
    let policy = sb.image_policy(&key.image).await?;
    let mut body = sb.container_body(key, &policy.volumes, invocation);
    let mut suffix = [0u8; 6];
    rand::fill(&mut suffix);
    let name = format!("atr-{}-{}", &sb.instance[..8], hex::encode(suffix));
    // Its own parent cgroup keeps the run's CPU time and peak memory after the runtime
    // deletes the container's cgroup (`crate::usage`).
    let parent = sb.cgroups.as_ref().and_then(|c| c.parent(&name));
    let cgroup = parent.as_ref().map(|_| name.clone());
    if let Some(host) = body.host_config.as_mut() {
        host.cgroup_parent = parent;
    }
    let opts = CreateContainerOptions {
        name: Some(name),
        ..Default::default()
    };
    let t0 = Instant::now();
    let created = match tokio::time::timeout(
        super::DOCKER_CALL_TIMEOUT,
        sb.docker.create_container(Some(opts), body),
    )
    .await
    {
        Ok(Ok(c)) => c,
        Ok(Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. })) => {
            return Err(SandboxError::ImageMissing(key.image.clone()));
        }
        Ok(Err(e)) => {
            sb.release_cgroup(cgroup.as_deref()).await;
            return Err(SandboxError::Docker {
                op: "create",
                detail: e.to_string(),
            });
        }
        Err(_) => {
            // A create that timed out may still happen: its container is a leftover
            // (`cleanup_leftovers`), its parent cgroup stays.
            return Err(SandboxError::Timeout("create"));
        }
    };
    t.create_ms = ms(t0);
    let id = created.id;
    let guard = RemoveOnDrop {
        sandbox: sb.clone(),
        id: Some(id.clone()),
        cgroup,
    };
    let t0 = Instant::now();
    let attach_opts = AttachContainerOptions {
        stream: true,
        stdin: true,
        stdout: true,
        stderr: true,
        logs: false,
        ..Default::default()
    };
    let attached = timed("attach", sb.docker.attach_container(&id, Some(attach_opts))).await?;
    t.attach_ms = ms(t0);
    let t0 = Instant::now();
    timed("start", sb.docker.start_container(&id, None)).await?;
    t.start_ms = ms(t0);
    Ok(Prepared {
        id,
        attached,
        guard,
        timings: t,
        born: Instant::now(),
    })
}

/// Runs a fresh container: prepare (retried once: the engine occasionally
/// fails a start under load, e.g. "cannot start a stopped process") then execute.
pub(super) async fn run(sb: &Sandbox, req: RunRequest<'_>) -> Result<RunOutcome, SandboxError> {
    let key = ContainerKey::of(&req);
    let prepared = match prepare(sb, &key, req.invocation).await {
        Ok(p) => p,
        Err(SandboxError::Docker { op, detail }) => {
            warn!(op, %detail, "sandbox container failed to start; retrying once with a new one");
            prepare(sb, &key, req.invocation).await?
        }
        Err(e) => return Err(e),
    };
    execute(sb, prepared, &req).await
}

/// Feeds the input to a prepared container, collects the outcome, removes it.
pub(crate) async fn execute(
    sb: &Sandbox,
    prepared: Prepared,
    req: &RunRequest<'_>,
) -> Result<RunOutcome, SandboxError> {
    let started_at_ms = now_ms();
    let Prepared {
        id,
        attached,
        mut guard,
        mut timings,
        ..
    } = prepared;
    let result = drive(sb, &id, attached, req, &mut timings).await;
    guard.id = None;
    let cgroup = guard.cgroup.take();
    let measured;
    let exited = matches!(&result, Ok((s, ..)) if !matches!(s, InvocationStatus::Timeout | InvocationStatus::OutputTooLarge));
    if exited {
        // The process has exited: the container holds no CPU or memory, so
        // its removal leaves the critical path (tracked; `Sandbox::settle`
        // and shutdown wait for it).
        measured = sb.measure(cgroup.as_deref()).await;
        let sb2 = sb.clone();
        let id2 = id.clone();
        sb.removals.spawn(async move {
            if let Err(e) = sb2.remove(&id2).await {
                warn!(container = %id2, error = %e, "could not remove sandbox container");
            }
            sb2.release_cgroup(cgroup.as_deref()).await;
        });
    } else {
        // Still running (killed at its deadline or cut at its output cap):
        // force-remove before the slot is released.
        let t0 = Instant::now();
        if let Err(e) = sb.remove(&id).await {
            warn!(container = %id, error = %e, "could not remove sandbox container");
        }
        timings.remove_ms = ms(t0);
        measured = sb.measure(cgroup.as_deref()).await;
        sb.release_cgroup(cgroup.as_deref()).await;
    }
    let (status, stdout, stderr, exit_code) = result?;
    debug!(?status, exit_code, ?timings, "sandbox run finished");
    let wall_ms = (timings.run_ms + timings.wait_ms).round() as u64;
    Ok(RunOutcome {
        status,
        stdout,
        stderr,
        exit_code,
        started_at_ms,
        finished_at_ms: now_ms(),
        timings,
        wall_ms,
        measured,
    })
}

type Driven = (InvocationStatus, Vec<u8>, Vec<u8>, Option<i64>);

async fn drive(
    sb: &Sandbox,
    id: &str,
    attached: bollard::container::AttachContainerResults,
    req: &RunRequest<'_>,
    t: &mut Timings,
) -> Result<Driven, SandboxError> {
    let t0 = Instant::now();
    let profile = sb.opts.profile(req.limits);
    let deadline = Duration::from_millis(profile.timeout_ms);
    let max_out = usize::try_from(profile.max_output_bytes).unwrap_or(usize::MAX);
    let max_err = profile.max_stderr_bytes;
    let mut input = attached.input;
    let mut output = attached.output;
    let payload = req.input.to_vec();
    // Written from its own task: a tool that never reads stdin must not
    // block the reader; write errors are the tool's business.
    let writer = tokio::spawn(async move {
        let _ = input.write_all(&payload).await;
        let _ = input.shutdown().await;
        input
    });
    let reader = async {
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let mut too_large = false;
        while let Some(item) = output.next().await {
            match item {
                Ok(LogOutput::StdOut { message }) | Ok(LogOutput::Console { message }) => {
                    if stdout.len() + message.len() > max_out {
                        too_large = true;
                        break;
                    }
                    stdout.extend_from_slice(&message);
                }
                Ok(LogOutput::StdErr { message }) => {
                    let room = max_err.saturating_sub(stderr.len());
                    stderr.extend_from_slice(&message[..message.len().min(room)]);
                }
                Ok(_) => {}
                Err(e) => {
                    debug!(error = %e, "attach stream ended with an error");
                    break;
                }
            }
        }
        (stdout, stderr, too_large)
    };
    let timed_out;
    let (stdout, stderr, too_large) = match tokio::time::timeout(deadline, reader).await {
        Ok(r) => {
            timed_out = false;
            r
        }
        Err(_) => {
            timed_out = true;
            (Vec::new(), Vec::new(), false)
        }
    };
    writer.abort();
    // Dropping the attach halves before kill/remove: dockerd writes to
    // attached clients synchronously (moby#41827).
    drop(output);
    t.run_ms = ms(t0);
    if timed_out {
        return Ok((InvocationStatus::Timeout, Vec::new(), stderr, None));
    }
    if too_large {
        return Ok((InvocationStatus::OutputTooLarge, Vec::new(), stderr, None));
    }

    let t0 = Instant::now();
    let exit_code = wait_exit(sb, id).await?;
    let mut status = if exit_code == Some(0) {
        InvocationStatus::Ok
    } else {
        InvocationStatus::ToolError
    };
    if exit_code == Some(137) {
        let info = timed("inspect", sb.docker.inspect_container(id, None)).await?;
        if info.state.and_then(|s| s.oom_killed).unwrap_or(false) {
            status = InvocationStatus::OutOfMemory;
        }
    }
    t.wait_ms = ms(t0);
    Ok((status, stdout, stderr, exit_code))
}

/// Waits for the container to stop after its output ended.
async fn wait_exit(sb: &Sandbox, id: &str) -> Result<Option<i64>, SandboxError> {
    let opts = WaitContainerOptions {
        condition: "not-running".into(),
    };
    let mut stream = sb.docker.wait_container(id, Some(opts));
    match tokio::time::timeout(Duration::from_secs(10), stream.next()).await {
        Ok(Some(Ok(r))) => Ok(Some(r.status_code)),
        Ok(Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. }))) => Ok(Some(code)),
        Ok(Some(Err(e))) => Err(SandboxError::Docker {
            op: "wait",
            detail: e.to_string(),
        }),
        Ok(None) => Ok(None),
        Err(_) => Err(SandboxError::Timeout("wait")),
    }
}
