//! The internal Docker network tools with egress are attached to.
//!
//! Created once per node as a bridge with `internal: true` (the engine installs no route or
//! masquerade out of it) and inter-container traffic off (`enable_icc=false`: two tools
//! running at once cannot talk to each other). The host keeps the bridge's gateway address;
//! the egress proxy listens there and nowhere else on that network, so the one thing a tool on
//! it can reach is the proxy.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{Ipam, IpamConfig, NetworkCreateRequest};

/// Label marking networks atr made.
pub const LABEL: &str = "atr.egress";
/// Time for one network call.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the egress network could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EgressNetworkError {
    /// The engine refused or failed.
    #[error("Docker could not {op} the egress network `{name}`: {detail}")]
    Docker {
        /// What was attempted.
        op: &'static str,
        /// The network.
        name: String,
        /// The engine's message.
        detail: String,
    },
    /// The network exists but is not internal (someone else's, or tampered with).
    #[error("network `{0}` exists but is not an internal network; refusing to attach tools to it")]
    NotInternal(String),
    /// The network has no IPv4 gateway to listen on.
    #[error("network `{0}` has no IPv4 gateway address")]
    NoGateway(String),
}

/// Creates (or finds) the internal network `name`, with subnet `subnet` when given; returns
/// its gateway address (on the host).
pub async fn ensure(docker: &Docker, name: &str, subnet: Option<&str>) -> Result<IpAddr, EgressNetworkError> {
    let err = |op, e: String| EgressNetworkError::Docker {
        op,
        name: name.to_owned(),
        detail: e,
    };
    let inspect = tokio::time::timeout(CALL_TIMEOUT, docker.inspect_network(name, None)).await;
    let info = match inspect {
        Ok(Ok(info)) => info,
        Ok(Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. })) => {
            let req = NetworkCreateRequest {
                name: name.to_owned(),
                driver: Some("bridge".into()),
                internal: Some(true),
                attachable: Some(false),
                ipam: subnet.map(|s| Ipam {
                    config: Some(vec![IpamConfig {
                        subnet: Some(s.to_owned()),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
                options: Some(HashMap::from([(
                    "com.docker.network.bridge.enable_icc".to_owned(),
                    "false".to_owned(),
                )])),
                labels: Some(HashMap::from([(LABEL.to_owned(), "1".to_owned())])),
                ..Default::default()
            };
            tokio::time::timeout(CALL_TIMEOUT, docker.create_network(req))
                .await
                .map_err(|_| err("create", "timed out".into()))?
                .map_err(|e| err("create", e.to_string()))?;
            tokio::time::timeout(CALL_TIMEOUT, docker.inspect_network(name, None))
                .await
                .map_err(|_| err("inspect", "timed out".into()))?
                .map_err(|e| err("inspect", e.to_string()))?
        }
        Ok(Err(e)) => return Err(err("inspect", e.to_string())),
        Err(_) => return Err(err("inspect", "timed out".into())),
    };
    if info.internal != Some(true) {
        return Err(EgressNetworkError::NotInternal(name.to_owned()));
    }
    info.ipam
        .and_then(|i| i.config)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| c.gateway?.parse::<IpAddr>().ok())
        .find(IpAddr::is_ipv4)
        .ok_or_else(|| EgressNetworkError::NoGateway(name.to_owned()))
}

/// Removes network `name` (tests; a node keeps its network across restarts).
pub async fn remove(docker: &Docker, name: &str) {
    let _ = tokio::time::timeout(CALL_TIMEOUT, docker.remove_network(name)).await;
}
