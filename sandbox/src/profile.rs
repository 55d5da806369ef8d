//! The one place a [`SandboxProfile`] becomes Docker Engine configuration.
//!
//! [`host_config`] renders the limits and hardening; [`container_body`] adds what to run and
//! how it is attached (stdin open once, no TTY, empty environment). The runner
//! ([`crate::runner`]), used by both `atrd` and `atr tool test`, creates every container from
//! these two functions, so a tool behaves under `atr tool test` as it does on a node.
//!
//! What this cannot do: check that the engine honours the configuration (a daemon with
//! `--userns-remap` or an old kernel may apply less); seccomp and AppArmor stay the engine's
//! defaults.

use std::collections::HashMap;

use atr_protocol::sandbox::{SandboxProfile, TMPFS_OPTIONS, TMPFS_PATH};
use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig, ResourcesUlimits};

/// What to run in a container: the image (by id) and its command.
#[derive(Debug, Clone, Copy)]
pub struct Program<'a> {
    /// Image id, `sha256:…` (never a mutable tag).
    pub image: &'a str,
    /// Entrypoint; empty means the image's own.
    pub command: &'a [String],
    /// Working directory; `None` means the image's.
    pub workdir: Option<&'a str>,
}

/// The engine's host configuration for `profile`.
pub fn host_config(profile: &SandboxProfile) -> HostConfig {
    let mem = i64::try_from(profile.memory_bytes).unwrap_or(i64::MAX);
    let rlimit = |name: &str, value: u64| {
        let value = i64::try_from(value).unwrap_or(i64::MAX);
        ResourcesUlimits {
            name: Some(name.to_owned()),
            soft: Some(value),
            hard: Some(value),
        }
    };
    HostConfig {
        // With a network, the engine's default mode; no profile asks for one today.
        network_mode: (!profile.network).then(|| "none".into()),
        memory: Some(mem),
        memory_swap: Some(mem),
        nano_cpus: Some(i64::from(profile.cpu_millis) * 1_000_000),
        pids_limit: Some(i64::from(profile.pids)),
        readonly_rootfs: Some(profile.read_only_root),
        tmpfs: Some(HashMap::from([(
            TMPFS_PATH.to_owned(),
            format!("{TMPFS_OPTIONS},size={}", profile.tmpfs_bytes),
        )])),
        cap_drop: profile.drop_all_capabilities.then(|| vec!["ALL".into()]),
        security_opt: profile
            .no_new_privileges
            .then(|| vec!["no-new-privileges".into()]),
        ulimits: Some(vec![
            rlimit("nofile", profile.max_open_files),
            rlimit("fsize", profile.max_file_bytes),
        ]),
        log_config: (!profile.keep_logs).then(|| HostConfigLogConfig {
            typ: Some("none".into()),
            config: None,
        }),
        privileged: Some(false),
        init: Some(false),
        runtime: profile.runtime.clone(),
        ..Default::default()
    }
}

/// The container create body: `program` under `profile`, stdin open for the input, labelled
/// with `labels`.
pub fn container_body(
    profile: &SandboxProfile,
    program: Program<'_>,
    labels: HashMap<String, String>,
) -> ContainerCreateBody {
    let cmd = program.command;
    ContainerCreateBody {
        image: Some(program.image.to_owned()),
        entrypoint: (!cmd.is_empty()).then(|| cmd.to_vec()),
        cmd: (!cmd.is_empty()).then(Vec::new),
        user: Some(profile.user.clone()),
        working_dir: program.workdir.map(str::to_owned),
        attach_stdin: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        open_stdin: Some(true),
        stdin_once: Some(true),
        tty: Some(false),
        network_disabled: Some(!profile.network),
        env: Some(vec![]),
        labels: Some(labels),
        host_config: Some(host_config(profile)),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use atr_protocol::spec::Limits;

    use super::*;

    /// The rendering the daemon and the CLI had each written by hand before this module.
    #[test]
    fn renders_the_hardening_both_copies_applied() {
        let limits = Limits::default();
        let hc = host_config(&SandboxProfile::new(&limits));
        let mem = i64::try_from(limits.memory_bytes).unwrap();
        assert_eq!(hc.network_mode.as_deref(), Some("none"));
        assert_eq!((hc.memory, hc.memory_swap), (Some(mem), Some(mem)));
        assert_eq!(hc.nano_cpus, Some(i64::from(limits.cpu_millis) * 1_000_000));
        assert_eq!(hc.pids_limit, Some(i64::from(limits.pids)));
        assert_eq!(hc.readonly_rootfs, Some(true));
        assert_eq!(hc.tmpfs.unwrap()["/tmp"], "rw,noexec,nosuid,nodev,size=16777216");
        assert_eq!(hc.cap_drop, Some(vec!["ALL".to_owned()]));
        assert_eq!(hc.security_opt, Some(vec!["no-new-privileges".to_owned()]));
        let ulimits: Vec<_> = hc
            .ulimits
            .unwrap()
            .into_iter()
            .map(|u| (u.name.unwrap(), u.soft.unwrap(), u.hard.unwrap()))
            .collect();
        assert_eq!(
            ulimits,
            vec![
                ("nofile".to_owned(), 64, 64),
                ("fsize".to_owned(), 8 << 20, 8 << 20)
            ]
        );
        assert_eq!(hc.log_config.unwrap().typ.as_deref(), Some("none"));
        assert_eq!(
            (hc.privileged, hc.init, hc.runtime),
            (Some(false), Some(false), None)
        );
    }

    #[test]
    fn body_runs_the_program_as_nobody_without_network() {
        let command = vec!["/tool".to_owned(), "add".to_owned()];
        let program = Program {
            image: "sha256:ab",
            command: &command,
            workdir: None,
        };
        let body = container_body(&SandboxProfile::new(&Limits::default()), program, HashMap::new());
        assert_eq!(body.entrypoint, Some(command));
        assert_eq!(body.cmd, Some(vec![]));
        assert_eq!(body.user.as_deref(), Some("65534:65534"));
        assert_eq!(body.network_disabled, Some(true));
        assert_eq!(body.env, Some(vec![]));
        assert_eq!(
            (body.open_stdin, body.stdin_once, body.tty),
            (Some(true), Some(true), Some(false))
        );
    }

    /// The expected rendering both `atrd` (`config::tests`) and `atr tool test`
    /// (`tool::sandbox::tests`) compare their own path to.
    #[test]
    fn matches_the_shared_fixture() {
        let limits = Limits {
            timeout_ms: 2_000,
            memory_bytes: 96 << 20,
            cpu_millis: 500,
            pids: 16,
            max_output_bytes: 10_000,
        };
        let rendered = serde_json::to_value(host_config(&SandboxProfile::new(&limits))).unwrap();
        if std::env::var_os("ATR_WRITE_FIXTURE").is_some() {
            let text = serde_json::to_string_pretty(&rendered).unwrap() + "\n";
            std::fs::write(
                concat!(env!("CARGO_MANIFEST_DIR"), "/tests/host_config.json"),
                text,
            )
            .unwrap();
        }
        let expected: serde_json::Value =
            serde_json::from_str(include_str!("../tests/host_config.json")).unwrap();
        assert_eq!(rendered, expected);
    }
}
