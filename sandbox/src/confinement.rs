//! What the Docker Engine itself confines tools with: `docker info`'s `SecurityOptions`, read
//! once when a [`crate::Sandbox`] connects, and the warning an operator gets when tools would
//! run with neither seccomp nor AppArmor.

use std::time::Duration;

use bollard::Docker;
use tracing::{info, warn};

/// What `docker info` says about the engine's confinement.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineConfinement {
    /// The engine applies seccomp (`name=seccomp` in `SecurityOptions`).
    pub seccomp: bool,
    /// The engine applies AppArmor (`name=apparmor`).
    pub apparmor: bool,
    /// The engine's default seccomp profile is `unconfined`.
    pub seccomp_unconfined: bool,
}

impl EngineConfinement {
    /// Reads `docker info`'s `SecurityOptions` (`name=seccomp,profile=default`, …).
    pub fn from_security_options<S: AsRef<str>>(options: &[S]) -> Self {
        let mut c = Self::default();
        for o in options {
            let mut name = "";
            let mut profile = "";
            for kv in o.as_ref().split(',') {
                match kv.split_once('=') {
                    Some(("name", v)) => name = v,
                    Some(("profile", v)) => profile = v,
                    _ => {}
                }
            }
            match name {
                "seccomp" => {
                    c.seccomp = true;
                    c.seccomp_unconfined = profile == "unconfined";
                }
                "apparmor" => c.apparmor = true,
                _ => {}
            }
        }
        c
    }

    /// A warning for the operator, when tools run with neither seccomp nor AppArmor.
    pub fn warning(&self) -> Option<&'static str> {
        let seccomp = self.seccomp && !self.seccomp_unconfined;
        (!seccomp && !self.apparmor).then_some(
            "the Docker Engine reports neither seccomp nor AppArmor: tools run with only capabilities, no-new-privileges and cgroups between them and the kernel",
        )
    }
}

/// The engine's confinement, as `docker info` reports it (`None` when it does not answer).
pub async fn engine_confinement(docker: &Docker) -> Option<EngineConfinement> {
    match tokio::time::timeout(Duration::from_secs(5), docker.info()).await {
        Ok(Ok(info)) => Some(EngineConfinement::from_security_options(
            info.security_options.as_deref().unwrap_or_default(),
        )),
        _ => None,
    }
}

pub(crate) async fn warn_if_unconfined(docker: &Docker) -> Option<EngineConfinement> {
    let c = engine_confinement(docker).await;
    match c {
        Some(c) => match c.warning() {
            Some(w) => warn!(?c, "{w}"),
            None => info!(seccomp = c.seccomp, apparmor = c.apparmor, "sandbox confinement"),
        },
        None => warn!("could not read `docker info`: cannot tell whether seccomp or AppArmor confine tools"),
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confinement_is_read_from_docker_info() {
        let c = EngineConfinement::from_security_options(&["name=seccomp,profile=default", "name=cgroupns"]);
        assert!(c.seccomp && !c.apparmor && !c.seccomp_unconfined);
        assert_eq!(c.warning(), None);
        let c = EngineConfinement::from_security_options(&["name=apparmor", "name=seccomp,profile=builtin"]);
        assert!(c.seccomp && c.apparmor);
        let c = EngineConfinement::from_security_options(&["name=seccomp,profile=unconfined"]);
        assert!(c.warning().is_some());
        let c = EngineConfinement::from_security_options(&["name=rootless"]);
        assert!(c.warning().is_some());
        let none: [&str; 0] = [];
        assert!(
            EngineConfinement::from_security_options(&none)
                .warning()
                .is_some()
        );
    }
}
