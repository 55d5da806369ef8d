//! The sandbox profile: how hard a tool's container is locked down, as plain data.
//!
//! [`SandboxProfile`] is derived from a spec's [`Limits`] plus the node's settings (the OCI
//! runtime). It is the one statement of the container hardening: `atrd` and `atr tool test`
//! both render it to the Docker Engine's container configuration through
//! `atr_sandbox::profile` (this crate has no I/O and does not know Docker's types).
//!
//! [`SandboxProfile::for_policy`] renders a spec's whole [`Policy`]: its limits, its scratch
//! size and output dir, the names of the secrets it receives, and whether it has egress. A tool
//! with egress is attached to the node's internal egress network (no route out) and reaches
//! the outside only through the node's filtering proxy ([`EgressAttachment`]); every other tool
//! has no network at all.
//!
//! What a profile cannot say: anything about the host (the renderer names AppArmor's
//! `docker-default`; seccomp is the engine's default profile), or secret values (only names:
//! values are handed to the renderer separately and never sit in a profile).

use crate::policy::{Permissions, Policy};
use crate::spec::Limits;

/// The user tools run as: `nobody:nogroup`, numeric so that it needs no `/etc/passwd` in the
/// image (tool images are `FROM scratch`).
pub const SANDBOX_USER: &str = "65534:65534";
/// Where the only writable filesystem is mounted.
pub const TMPFS_PATH: &str = "/tmp";
/// Mount options of the `/tmp` tmpfs before its size: nothing written there can be executed,
/// be setuid or be a device.
pub const TMPFS_OPTIONS: &str = "rw,noexec,nosuid,nodev";
/// Size of the `/tmp` tmpfs, bytes (16 MiB): scratch space, counted against the host's memory,
/// not the container's.
pub const TMPFS_BYTES: u64 = 16 * 1024 * 1024;
/// `RLIMIT_FSIZE`: the largest file a tool may write, bytes (8 MiB), below the tmpfs size so
/// that one file cannot fill it.
pub const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;
/// `RLIMIT_NOFILE`: open files per process. Tools read stdin and write stdout; 64 leaves room
/// for a runtime's own descriptors without letting a tool exhaust the host's.
pub const MAX_OPEN_FILES: u64 = 64;
/// Cap on captured stderr, bytes (64 KiB): enough for a panic message and a backtrace; the
/// rest is dropped, never buffered.
pub const STDERR_CAP: usize = 64 * 1024;

/// Everything the sandbox applies to one tool's container.
///
/// Build it with [`SandboxProfile::new`], which sets every hardening flag; the fields are public
/// so that a renderer can read them and a test can state them, not so that a caller loosens them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct SandboxProfile {
    /// Memory limit, bytes; swap is set to the same value, so the container has none.
    pub memory_bytes: u64,
    /// CPU quota, thousandths of a core.
    pub cpu_millis: u32,
    /// Most processes (and threads) at once.
    pub pids: u32,
    /// Wall-clock limit from start to exit, milliseconds; enforced by the runner (cgroups have
    /// no wall-clock limit), which then kills the container.
    pub timeout_ms: u64,
    /// Most stdout bytes read; past it the run ends as "output too large".
    pub max_output_bytes: u64,
    /// Most stderr bytes kept; the rest is dropped.
    pub max_stderr_bytes: usize,
    /// `user[:group]` the process runs as.
    pub user: String,
    /// The egress attachment: `None` is network mode `none` (no interfaces but loopback);
    /// `Some` attaches the container to the node's internal egress network, with the proxy in
    /// its environment. Set by the node for a spec that declares egress.
    pub egress: Option<EgressAttachment>,
    /// An extra writable tmpfs (the spec's output dir), sharing the scratch budget.
    pub output_dir: Option<String>,
    /// Names of the secrets the container receives as environment variables.
    pub secrets: Vec<String>,
    /// Whether the root filesystem is read-only.
    pub read_only_root: bool,
    /// Size of the tmpfs at [`TMPFS_PATH`], bytes (mounted with [`TMPFS_OPTIONS`]).
    pub tmpfs_bytes: u64,
    /// Whether every Linux capability is dropped.
    pub drop_all_capabilities: bool,
    /// Whether `no-new-privileges` is set (setuid binaries gain nothing).
    pub no_new_privileges: bool,
    /// `RLIMIT_NOFILE`, soft and hard.
    pub max_open_files: u64,
    /// `RLIMIT_FSIZE`, bytes, soft and hard.
    pub max_file_bytes: u64,
    /// Whether the engine keeps the container's logs (`false`: the `none` log driver; the
    /// default `json-file` driver has no size cap, and the runner reads the output itself).
    pub keep_logs: bool,
    /// OCI runtime (e.g. `runsc` for gVisor); `None` is the engine's default. A node setting.
    pub runtime: Option<String>,
}

/// How a container with egress is attached: the node's internal network and its proxy.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EgressAttachment {
    /// Docker network name (created `internal`: no route out, no inter-container traffic).
    pub network: String,
    /// Proxy URL set as `HTTP_PROXY`/`HTTPS_PROXY`, e.g. `http://atr:<token>@172.30.0.1:3128`;
    /// the token names this invocation to the proxy.
    pub proxy_url: String,
}

impl std::fmt::Debug for EgressAttachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL holds the invocation's proxy token: not for logs.
        f.debug_struct("EgressAttachment")
            .field("network", &self.network)
            .finish_non_exhaustive()
    }
}

impl SandboxProfile {
    /// The hardened profile for a spec's `limits` with no permissions, on the engine's default
    /// runtime.
    pub fn new(limits: &Limits) -> Self {
        Self::for_policy(&Policy {
            limits: *limits,
            permissions: Permissions::EMPTY,
        })
    }

    /// The hardened profile for a spec's whole policy (no egress attachment yet: the node
    /// adds it with [`Self::with_egress`] when it has set up the proxy).
    pub fn for_policy(policy: &Policy) -> Self {
        let limits = &policy.limits;
        let p = &policy.permissions;
        Self {
            memory_bytes: limits.memory_bytes,
            cpu_millis: limits.cpu_millis,
            pids: limits.pids,
            timeout_ms: limits.timeout_ms,
            max_output_bytes: limits.max_output_bytes,
            max_stderr_bytes: STDERR_CAP,
            user: SANDBOX_USER.to_owned(),
            egress: None,
            output_dir: p.output_dir.clone(),
            secrets: p.secrets.clone(),
            read_only_root: true,
            tmpfs_bytes: p.scratch(),
            drop_all_capabilities: true,
            no_new_privileges: true,
            max_open_files: MAX_OPEN_FILES,
            max_file_bytes: MAX_FILE_BYTES.min(p.scratch() / 2),
            keep_logs: false,
            runtime: None,
        }
    }

    /// The same profile attached to egress network and proxy `egress`.
    #[must_use]
    pub fn with_egress(mut self, egress: Option<EgressAttachment>) -> Self {
        self.egress = egress;
        self
    }

    /// The same profile on OCI runtime `runtime` (`None`: the engine's default).
    #[must_use]
    pub fn with_runtime(mut self, runtime: Option<String>) -> Self {
        self.runtime = runtime;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_is_hardened_and_carries_the_limits() {
        let limits = Limits {
            timeout_ms: 1_500,
            memory_bytes: 64 << 20,
            cpu_millis: 250,
            pids: 8,
            max_output_bytes: 4096,
        };
        let p = SandboxProfile::new(&limits).with_runtime(Some("runsc".into()));
        assert_eq!(p.memory_bytes, 64 << 20);
        assert_eq!(
            (p.cpu_millis, p.pids, p.timeout_ms, p.max_output_bytes),
            (250, 8, 1_500, 4096)
        );
        assert!(p.egress.is_none() && p.read_only_root && p.drop_all_capabilities && p.no_new_privileges);
        assert!(!p.keep_logs);
        assert_eq!(p.user, SANDBOX_USER);
        assert_eq!(p.runtime.as_deref(), Some("runsc"));
        assert!(p.max_file_bytes < p.tmpfs_bytes);
    }

    #[test]
    fn for_policy_carries_the_permissions() {
        let policy = Policy {
            limits: Limits::default(),
            permissions: Permissions {
                egress: vec![crate::policy::EgressRule::parse("a.example:443").unwrap()],
                secrets: vec!["TOKEN".into()],
                scratch_bytes: Some(4 << 20),
                output_dir: Some("/out".into()),
            },
        };
        let p = SandboxProfile::for_policy(&policy);
        assert_eq!(p.tmpfs_bytes, 4 << 20);
        assert_eq!(p.output_dir.as_deref(), Some("/out"));
        assert_eq!(p.secrets, ["TOKEN"]);
        // Egress needs the node's attachment; the policy alone gives none.
        assert!(p.egress.is_none());
        assert_eq!(SandboxProfile::new(&Limits::default()).tmpfs_bytes, TMPFS_BYTES);
    }
}
