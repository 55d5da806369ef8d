//! One run of a tool as a node runs it: through [`atr_sandbox::runner`], the runner `atrd`
//! uses, with the same profile ([`atr_protocol::sandbox::SandboxProfile`]: user 65534, no
//! network, a read-only root with a `noexec` tmpfs at `/tmp`, all capabilities dropped,
//! `no-new-privileges`, memory (no swap), CPU, process, open-file and file-size limits, no
//! log driver); the container is always removed.
//!
//! What differs from a node: the engine's default OCI runtime (a node may set `runtime`),
//! no warm pool, and the containers are labelled with [`NODE_LABEL`] instead of a peer id.

use std::time::Duration;

use anyhow::Context;
use atr_protocol::receipt::InvocationStatus;
use atr_sandbox::{RunRequest, Sandbox, SandboxError, SandboxOptions};
use bollard::Docker;

/// The `dev.atr.node` label of `atr tool test` containers (a node labels its own with its
/// peer id, so a node's leftover cleanup never touches them).
pub(super) const NODE_LABEL: &str = "tool-test";

/// How a run ended.
#[derive(Debug)]
pub(super) struct Outcome {
    /// How the runner classified it.
    pub(super) status: InvocationStatus,
    /// Exit code, when it exited in time.
    pub(super) exit_code: Option<i64>,
    /// Stdout, at most the output cap.
    pub(super) stdout: Vec<u8>,
    /// Stderr, at most the profile's stderr cap.
    pub(super) stderr: Vec<u8>,
    /// Wall time from start to exit.
    pub(super) elapsed: Duration,
}

/// The options `atr tool test` runs with: one container at a time, no pool, the engine's
/// default runtime.
pub(super) fn options() -> SandboxOptions {
    SandboxOptions {
        max_concurrent: 1,
        runtime: None,
        warm_pool: 0,
    }
}

/// The runner on `docker`. Call [`Sandbox::settle`] before exiting: removals of exited
/// containers finish in the background.
pub(super) fn sandbox(docker: Docker) -> Sandbox {
    Sandbox::with_docker(docker, NODE_LABEL, options())
}

/// Runs `command` of image `image` (an id) once with `input` on stdin.
pub(super) async fn run_once(
    sandbox: &Sandbox,
    image: &str,
    command: &[String],
    workdir: Option<&str>,
    policy: &atr_protocol::policy::Policy,
    input: &[u8],
    invocation: &str,
) -> anyhow::Result<Outcome> {
    // `atr tool test` has no egress proxy and no secrets: a tool that declares them runs with
    // no network and without the values (its examples cannot need the outside world).
    let req = RunRequest {
        image,
        command,
        workdir,
        limits: &policy.limits,
        input,
        invocation,
        permissions: &policy.permissions,
        egress: None,
        secrets: Default::default(),
    };
    let out = match sandbox.run(req).await {
        Ok(out) => out,
        Err(e @ SandboxError::ImageMissing(_)) => {
            return Err(e).with_context(|| format!("is image {image} present? (`atr tool build` makes it)"));
        }
        Err(e) => return Err(e.into()),
    };
    let t = out.timings;
    Ok(Outcome {
        status: out.status,
        exit_code: out.exit_code,
        stdout: out.stdout,
        stderr: out.stderr,
        elapsed: Duration::from_secs_f64((t.run_ms + t.wait_ms).max(0.0) / 1000.0),
    })
}

#[cfg(test)]
mod tests {
    use atr_protocol::spec::Limits;
    use atr_sandbox::profile::host_config;

    use super::*;

    /// `atr tool test` renders the same host config as `atrd` with its default settings
    /// (`atrd`'s side of this check is `config::tests::sandbox_profile_is_the_tool_tests`).
    #[test]
    fn tool_test_profile_is_the_nodes() {
        let limits = Limits {
            timeout_ms: 2_000,
            memory_bytes: 96 << 20,
            cpu_millis: 500,
            pids: 16,
            max_output_bytes: 10_000,
        };
        // The profile `run_once` runs under: `sandbox()`'s options applied to the limits.
        let rendered = serde_json::to_value(host_config(&options().profile(&limits))).unwrap();
        let expected: serde_json::Value =
            serde_json::from_str(include_str!("../../../../../sandbox/tests/host_config.json")).unwrap();
        assert_eq!(rendered, expected);
    }
}
