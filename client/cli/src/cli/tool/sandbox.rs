//! One run of a tool in a hardened throw-away container, as a node runs it: the image by id,
//! user 65534, no network, a read-only root with a `noexec` tmpfs at `/tmp`, all capabilities
//! dropped, `no-new-privileges`, memory (no swap), CPU, process, open-file and file-size
//! limits, no log driver; the container is always removed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use atr_protocol::spec::Limits;
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig, ResourcesUlimits};
use bollard::query_parameters::{
    AttachContainerOptions, CreateContainerOptions, RemoveContainerOptions, WaitContainerOptions,
};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

/// Size of the `/tmp` tmpfs (the node's).
const TMPFS_BYTES: u64 = 16 * 1024 * 1024;
/// Largest file a tool may write (the node's).
const MAX_FILE_BYTES: i64 = 8 * 1024 * 1024;
/// Most open files (the node's).
const MAX_OPEN_FILES: i64 = 64;
/// Most stderr kept.
const STDERR_CAP: usize = 64 * 1024;
/// Time limit of each Engine call.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// The user tools run as.
const USER: &str = "65534:65534";

/// How a run ended.
#[derive(Debug)]
pub(super) struct Outcome {
    /// Exit code, when it exited in time.
    pub(super) exit_code: Option<i64>,
    /// Stdout, at most the output cap.
    pub(super) stdout: Vec<u8>,
    /// Stderr, at most [`STDERR_CAP`].
    pub(super) stderr: Vec<u8>,
    /// It ran past `timeout_ms` and was killed.
    pub(super) timed_out: bool,
    /// It wrote more than `max_output_bytes`.
    pub(super) too_large: bool,
    /// Wall time from start to exit.
    pub(super) elapsed: Duration,
}

fn host_config(limits: &Limits) -> HostConfig {
    let mem = i64::try_from(limits.memory_bytes).unwrap_or(i64::MAX);
    HostConfig {
        network_mode: Some("none".into()),
        memory: Some(mem),
        memory_swap: Some(mem),
        nano_cpus: Some(i64::from(limits.cpu_millis) * 1_000_000),
        pids_limit: Some(i64::from(limits.pids)),
        readonly_rootfs: Some(true),
        tmpfs: Some(HashMap::from([(
            "/tmp".to_owned(),
            format!("rw,noexec,nosuid,nodev,size={TMPFS_BYTES}"),
        )])),
        cap_drop: Some(vec!["ALL".into()]),
        security_opt: Some(vec!["no-new-privileges".into()]),
        ulimits: Some(vec![
            ResourcesUlimits {
                name: Some("nofile".into()),
                soft: Some(MAX_OPEN_FILES),
                hard: Some(MAX_OPEN_FILES),
            },
            ResourcesUlimits {
                name: Some("fsize".into()),
                soft: Some(MAX_FILE_BYTES),
                hard: Some(MAX_FILE_BYTES),
            },
        ]),
        log_config: Some(HostConfigLogConfig {
            typ: Some("none".into()),
            config: None,
        }),
        privileged: Some(false),
        init: Some(false),
        ..Default::default()
    }
}

async fn timed<T, E: std::fmt::Display>(
    what: &str,
    f: impl std::future::Future<Output = Result<T, E>>,
) -> anyhow::Result<T> {
    tokio::time::timeout(CALL_TIMEOUT, f)
        .await
        .map_err(|_| anyhow!("Docker Engine call `{what}` did not answer within {CALL_TIMEOUT:?}"))?
        .map_err(|e| anyhow!("Docker Engine call `{what}` failed: {e}"))
}

/// Runs `command` of image `image` (an id) once with `input` on stdin.
pub(super) async fn run_once(
    docker: &Docker,
    image: &str,
    command: &[String],
    workdir: Option<&str>,
    limits: &Limits,
    input: &[u8],
) -> anyhow::Result<Outcome> {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "atr-tool-test-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    );
    let body = ContainerCreateBody {
        image: Some(image.to_owned()),
        entrypoint: (!command.is_empty()).then(|| command.to_vec()),
        cmd: (!command.is_empty()).then(Vec::new),
        user: Some(USER.into()),
        working_dir: workdir.map(str::to_owned),
        attach_stdin: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        open_stdin: Some(true),
        stdin_once: Some(true),
        tty: Some(false),
        network_disabled: Some(true),
        env: Some(vec![]),
        labels: Some(HashMap::from([("dev.atr.tool-test".to_owned(), "1".to_owned())])),
        host_config: Some(host_config(limits)),
        ..Default::default()
    };
    let opts = CreateContainerOptions {
        name: Some(name),
        ..Default::default()
    };
    let created = timed("create", docker.create_container(Some(opts), body))
        .await
        .with_context(|| format!("is image {image} present? (`atr tool build` makes it)"))?;
    let id = created.id;
    let result = drive(docker, &id, limits, input).await;
    let remove = RemoveContainerOptions {
        force: true,
        v: true,
        ..Default::default()
    };
    if let Err(e) = timed("remove", docker.remove_container(&id, Some(remove))).await {
        eprintln!("warning: could not remove container {id}: {e}");
    }
    result
}

async fn drive(docker: &Docker, id: &str, limits: &Limits, input: &[u8]) -> anyhow::Result<Outcome> {
    let attach = AttachContainerOptions {
        stream: true,
        stdin: true,
        stdout: true,
        stderr: true,
        logs: false,
        ..Default::default()
    };
    let attached = timed("attach", docker.attach_container(id, Some(attach))).await?;
    timed("start", docker.start_container(id, None)).await?;
    let started = Instant::now();
    let mut stdin = attached.input;
    let mut output = attached.output;
    let payload = input.to_vec();
    // From its own task: a tool that never reads stdin must not block the reader.
    let writer = tokio::spawn(async move {
        let _ = stdin.write_all(&payload).await;
        let _ = stdin.shutdown().await;
        stdin
    });
    let max_out = usize::try_from(limits.max_output_bytes).unwrap_or(usize::MAX);
    let reader = async {
        let (mut stdout, mut stderr, mut too_large) = (Vec::new(), Vec::new(), false);
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
                    let room = STDERR_CAP.saturating_sub(stderr.len());
                    stderr.extend_from_slice(&message[..message.len().min(room)]);
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        (stdout, stderr, too_large)
    };
    let deadline = Duration::from_millis(limits.timeout_ms);
    let read = tokio::time::timeout(deadline, reader).await;
    writer.abort();
    drop(output);
    let Ok((stdout, stderr, too_large)) = read else {
        return Ok(Outcome {
            exit_code: None,
            stdout: Vec::new(),
            stderr: Vec::new(),
            timed_out: true,
            too_large: false,
            elapsed: started.elapsed(),
        });
    };
    if too_large {
        return Ok(Outcome {
            exit_code: None,
            stdout: Vec::new(),
            stderr,
            timed_out: false,
            too_large: true,
            elapsed: started.elapsed(),
        });
    }
    let wait = WaitContainerOptions {
        condition: "not-running".into(),
    };
    let mut stream = docker.wait_container(id, Some(wait));
    let exit_code = match tokio::time::timeout(Duration::from_secs(10), stream.next()).await {
        Ok(Some(Ok(r))) => Some(r.status_code),
        Ok(Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. }))) => Some(code),
        _ => None,
    };
    Ok(Outcome {
        exit_code,
        stdout,
        stderr,
        timed_out: false,
        too_large: false,
        elapsed: started.elapsed(),
    })
}
