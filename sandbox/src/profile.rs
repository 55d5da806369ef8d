//! The one place a [`SandboxProfile`] becomes Docker Engine configuration.
//!
//! [`host_config`] renders the limits and hardening; [`container_body`] adds what to run and
//! how it is attached (stdin open once, no TTY, empty environment). The runner
//! ([`crate::runner`]), used by both `atrd` and `atr tool test`, creates every container from
//! these two functions, so a tool behaves under `atr tool test` as it does on a node.
//!
//! What the image itself asks for is not trusted: its `HEALTHCHECK` is switched off on every
//! container, and each of its `VOLUME`s (checked by [`crate::image_policy`]) gets a
//! `noexec,nosuid,nodev` tmpfs that shares the `/tmp` scratch budget, so the engine never
//! creates a disk-backed anonymous volume.
//!
//! Confinement is named, not left to the engine's mood: `no-new-privileges`,
//! `apparmor=docker-default` (the engine ignores it on a host without AppArmor) and atr's own
//! seccomp allowlist ([`crate::seccomp`]), sent inline with every container; and
//! [`crate::runner::Sandbox::connect`] warns when `docker info` reports neither seccomp nor
//! AppArmor (an engine without seccomp support cannot apply the profile). What this cannot do: check that the engine honours the configuration (a daemon
//! with `--userns-remap`, a custom default seccomp profile or an old kernel may apply less).

use std::collections::HashMap;

use atr_protocol::sandbox::{SandboxProfile, TMPFS_OPTIONS, TMPFS_PATH};
use bollard::models::{ContainerCreateBody, HealthConfig, HostConfig, HostConfigLogConfig, ResourcesUlimits};

/// The resolver a container with egress is given: its own loopback, where nothing listens, so
/// that names are resolved by the proxy only (the engine's embedded resolver forwards to it).
pub const NO_DNS: &str = "127.0.0.1";

/// The AppArmor profile every container is confined by where the host has AppArmor.
pub const APPARMOR_PROFILE: &str = "docker-default";

/// Environment values of one run (secret values, the proxy URL): never printed. `Debug`
/// shows the names only.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Env(pub Vec<(String, String)>);

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.iter().map(|(k, _)| k)).finish()
    }
}

/// The environment of a container under `profile`: the proxy variables when it has egress
/// (`NO_PROXY` empty: everything goes through the proxy), then `secrets` (only the names the
/// profile lists; others are dropped).
pub fn environment(profile: &SandboxProfile, secrets: &Env) -> Vec<String> {
    let mut env = Vec::new();
    if let Some(e) = &profile.egress {
        for k in [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "http_proxy",
            "https_proxy",
            "ALL_PROXY",
        ] {
            env.push(format!("{k}={}", e.proxy_url));
        }
        env.push("NO_PROXY=".to_owned());
        env.push("no_proxy=".to_owned());
    }
    for (k, v) in &secrets.0 {
        if profile.secrets.contains(k) {
            env.push(format!("{k}={v}"));
        }
    }
    env
}

/// What to run in a container: the image (by id) and its command.
#[derive(Debug, Clone, Copy)]
pub struct Program<'a> {
    /// Image id, `sha256:…` (never a mutable tag).
    pub image: &'a str,
    /// Entrypoint; empty means the image's own.
    pub command: &'a [String],
    /// Working directory; `None` means the image's.
    pub workdir: Option<&'a str>,
    /// The image's `VOLUME` paths ([`crate::image_policy::ImagePolicy::volumes`]); each is
    /// covered by a tmpfs from the scratch budget.
    pub volumes: &'a [String],
}

/// The tmpfs mounts of a container: `/tmp` and each of `volumes`, all with
/// [`TMPFS_OPTIONS`], sharing [`SandboxProfile::tmpfs_bytes`] evenly (with no volume, `/tmp`
/// has all of it).
pub fn scratch_mounts(profile: &SandboxProfile, volumes: &[String]) -> HashMap<String, String> {
    let mut paths = vec![TMPFS_PATH.to_owned()];
    for v in profile.output_dir.iter().chain(volumes) {
        if !paths.contains(v) {
            paths.push(v.clone());
        }
    }
    let each = profile.tmpfs_bytes / paths.len() as u64;
    paths
        .into_iter()
        .map(|p| (p, format!("{TMPFS_OPTIONS},size={each}")))
        .collect()
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
        // Without egress: no network at all. With egress: only the node's internal network,
        // whose one reachable address is the proxy; DNS goes nowhere (the proxy resolves).
        network_mode: Some(
            profile
                .egress
                .as_ref()
                .map_or_else(|| "none".to_owned(), |e| e.network.clone()),
        ),
        dns: profile.egress.as_ref().map(|_| vec![NO_DNS.to_owned()]),
        memory: Some(mem),
        memory_swap: Some(mem),
        nano_cpus: Some(i64::from(profile.cpu_millis) * 1_000_000),
        pids_limit: Some(i64::from(profile.pids)),
        readonly_rootfs: Some(profile.read_only_root),
        tmpfs: Some(scratch_mounts(profile, &[])),
        cap_drop: profile.drop_all_capabilities.then(|| vec!["ALL".into()]),
        security_opt: Some(
            profile
                .no_new_privileges
                .then(|| "no-new-privileges".to_owned())
                .into_iter()
                .chain([
                    format!("apparmor={APPARMOR_PROFILE}"),
                    crate::seccomp::security_opt().to_owned(),
                ])
                .collect(),
        ),
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
/// with `labels`, the image's healthcheck off and its volumes on tmpfs.
pub fn container_body(
    profile: &SandboxProfile,
    program: Program<'_>,
    labels: HashMap<String, String>,
) -> ContainerCreateBody {
    container_body_with(profile, program, labels, &Env::default())
}

/// [`container_body`] with the run's secret values (`secrets`, filtered by the profile's names).
pub fn container_body_with(
    profile: &SandboxProfile,
    program: Program<'_>,
    labels: HashMap<String, String>,
    secrets: &Env,
) -> ContainerCreateBody {
    let cmd = program.command;
    let mut host = host_config(profile);
    host.tmpfs = Some(scratch_mounts(profile, program.volumes));
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
        network_disabled: Some(profile.egress.is_none()),
        env: Some(environment(profile, secrets)),
        labels: Some(labels),
        // An image's HEALTHCHECK would run extra processes in the container, on the engine's
        // schedule; `NONE` switches it off.
        healthcheck: Some(HealthConfig {
            test: Some(vec!["NONE".into()]),
            ..Default::default()
        }),
        host_config: Some(host),
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
        assert_eq!(
            hc.security_opt,
            Some(vec![
                "no-new-privileges".to_owned(),
                "apparmor=docker-default".to_owned(),
                crate::seccomp::security_opt().to_owned(),
            ])
        );
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
            volumes: &[],
        };
        let body = container_body(&SandboxProfile::new(&Limits::default()), program, HashMap::new());
        assert_eq!(
            body.healthcheck.and_then(|h| h.test),
            Some(vec!["NONE".to_owned()])
        );
        assert_eq!(body.host_config.unwrap().tmpfs.unwrap().len(), 1);
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

    /// Image volumes become tmpfs mounts that split the one scratch budget with `/tmp`.
    #[test]
    fn volumes_share_the_scratch_budget() {
        let profile = SandboxProfile::new(&Limits::default());
        let volumes = vec!["/data".to_owned(), "/tmp".to_owned(), "/var/cache".to_owned()];
        let program = Program {
            image: "sha256:ab",
            command: &[],
            workdir: None,
            volumes: &volumes,
        };
        let tmpfs = container_body(&profile, program, HashMap::new())
            .host_config
            .unwrap()
            .tmpfs
            .unwrap();
        let each = profile.tmpfs_bytes / 3;
        assert_eq!(tmpfs.len(), 3);
        for p in ["/tmp", "/data", "/var/cache"] {
            assert_eq!(tmpfs[p], format!("rw,noexec,nosuid,nodev,size={each}"), "{p}");
        }
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

#[cfg(test)]
mod policy_tests {
    use atr_protocol::policy::{EgressRule, Permissions, Policy};
    use atr_protocol::sandbox::EgressAttachment;
    use atr_protocol::spec::Limits;

    use super::*;

    fn policy() -> Policy {
        Policy {
            limits: Limits::default(),
            permissions: Permissions {
                egress: vec![EgressRule::parse("web.test:80").unwrap()],
                secrets: vec!["API_TOKEN".into()],
                scratch_bytes: Some(8 << 20),
                output_dir: Some("/out".into()),
            },
        }
    }

    /// Egress, scratch, output dir and secrets are rendered from the policy alone, plus the
    /// node's attachment.
    #[test]
    fn a_policy_with_egress_and_secrets_renders_once() {
        let attach = EgressAttachment {
            network: "atr-egress-x".into(),
            proxy_url: "http://atr:t0k@172.30.0.1:3128".into(),
        };
        let profile = SandboxProfile::for_policy(&policy()).with_egress(Some(attach));
        let secrets = Env(vec![
            ("API_TOKEN".into(), "s3cret".into()),
            ("NOT_DECLARED".into(), "x".into()),
        ]);
        let program = Program {
            image: "sha256:ab",
            command: &[],
            workdir: None,
            volumes: &[],
        };
        let body = container_body_with(&profile, program, HashMap::new(), &secrets);
        let hc = body.host_config.clone().unwrap();
        assert_eq!(hc.network_mode.as_deref(), Some("atr-egress-x"));
        assert_eq!(hc.dns, Some(vec![NO_DNS.to_owned()]));
        assert_eq!(body.network_disabled, Some(false));
        let tmpfs = hc.tmpfs.unwrap();
        assert_eq!(tmpfs["/tmp"], format!("rw,noexec,nosuid,nodev,size={}", 4 << 20));
        assert_eq!(tmpfs["/out"], tmpfs["/tmp"]);
        let env = body.env.unwrap();
        assert!(env.contains(&"HTTPS_PROXY=http://atr:t0k@172.30.0.1:3128".to_owned()));
        assert!(env.contains(&"API_TOKEN=s3cret".to_owned()));
        assert!(!env.iter().any(|e| e.starts_with("NOT_DECLARED")));
        assert!(!format!("{profile:?} {secrets:?}").contains("s3cret"));
        assert!(!format!("{profile:?}").contains("t0k"));
    }

    /// Without the node's attachment, a policy with egress still gets no network at all.
    #[test]
    fn egress_without_an_attachment_has_no_network() {
        let hc = host_config(&SandboxProfile::for_policy(&policy()));
        assert_eq!(hc.network_mode.as_deref(), Some("none"));
        assert_eq!(hc.dns, None);
    }
}
