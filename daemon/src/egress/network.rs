//! The internal Docker network tools with egress are attached to.
//!
//! Created once per node as a bridge with `internal: true` (the engine installs no route or
//! masquerade out of it) and inter-container traffic off (`enable_icc=false`: two tools
//! running at once cannot talk to each other). The host keeps the bridge's gateway address;
//! the egress proxy listens there and nowhere else on that network, and the node's host
//! firewall chain ([`super::firewall`]) drops every other packet from the bridge to the host,
//! so the one thing a tool on it can reach is the proxy.

use std::collections::HashMap;
use std::net::Ipv4Addr;
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
    /// The network's host interface could not be told (no id, no bridge name).
    #[error("network `{0}` has no bridge interface name")]
    NoBridge(String),
}

/// Docker's option naming a bridge network's host interface.
const BRIDGE_NAME_OPTION: &str = "com.docker.network.bridge.name";

/// The egress network as the host sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressNetwork {
    /// Its IPv4 gateway: the host's address on it, where the proxy listens.
    pub gateway: Ipv4Addr,
    /// The host's bridge interface (`br-<12 hex of the id>` unless named by the creator).
    pub bridge: String,
}

/// Creates (or finds) the internal network `name`, with subnet `subnet` when given; returns
/// its gateway address and bridge interface (on the host).
pub async fn ensure(
    docker: &Docker,
    name: &str,
    subnet: Option<&str>,
) -> Result<EgressNetwork, EgressNetworkError> {
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
    let bridge = info
        .options
        .as_ref()
        .and_then(|o| o.get(BRIDGE_NAME_OPTION).cloned())
        .or_else(|| Some(format!("br-{}", info.id.as_deref()?.get(..12)?)))
        .ok_or_else(|| EgressNetworkError::NoBridge(name.to_owned()))?;
    let gateway = info
        .ipam
        .and_then(|i| i.config)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| c.gateway?.parse::<Ipv4Addr>().ok())
        .next()
        .ok_or_else(|| EgressNetworkError::NoGateway(name.to_owned()))?;
    Ok(EgressNetwork { gateway, bridge })
}

/// Removes network `name` (tests; a node keeps its network across restarts).
pub async fn remove(docker: &Docker, name: &str) {
    let _ = tokio::time::timeout(CALL_TIMEOUT, docker.remove_network(name)).await;
}
