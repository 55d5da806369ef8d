//! Host firewall rules that close the egress network's way to the host itself.
//!
//! An internal Docker network has no route *out*, but a packet from a tool to any of the
//! host's own addresses (the gateway of any bridge, the LAN address) is delivered locally,
//! through the host's `INPUT` chain, which Docker does not filter: a service on the host
//! bound to `0.0.0.0` would be reachable around the proxy. [`HostFirewall::install`] puts
//! the node's own chain in front of `INPUT` for packets arriving on the egress bridge:
//!
//! ```text
//! -I INPUT 1 -i <bridge> -j ATR-EG-<hash of the network name>
//! -A ATR-EG-… -d <gateway> -p tcp --dport <proxy port> -j RETURN
//! -A ATR-EG-… -j DROP                      (every other packet: tcp, udp, icmp, …)
//! ```
//!
//! and the same chain without the proxy exception in `ip6tables` (the proxy listens on IPv4
//! only; the bridge's IPv6 link-local address would otherwise reach services bound to `::`).
//! Installing is idempotent: the chain is named after the network, flushed and refilled, and
//! every older jump to it (a node killed before it could clean up, a recreated bridge) is
//! removed first. Hence one node per egress network: a second node on the same network
//! would replace the first's proxy port (two nodes on one host use distinct networks). [`HostFirewall::remove`] undoes it at shutdown. Every `iptables` call runs
//! under [`CALL_TIMEOUT`] and waits at most [`LOCK_WAIT_SECS`] for the xtables lock.

use std::net::Ipv4Addr;
use std::time::Duration;

use tracing::{debug, info, warn};

/// Time for one `iptables` call.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// Seconds one `iptables` call waits for the xtables lock (`-w`).
const LOCK_WAIT_SECS: &str = "5";

/// Why the rules could not be installed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FirewallError {
    /// The program could not be started (not installed?).
    #[error(
        "cannot run `{cmd}`: {source} (install iptables, or set `[egress] host_firewall = \"operator\"` once your own firewall drops traffic from the egress bridge to the host)"
    )]
    Spawn {
        /// The command line.
        cmd: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The program did not finish in time.
    #[error("`{cmd}` did not finish within {}s", CALL_TIMEOUT.as_secs())]
    Timeout {
        /// The command line.
        cmd: String,
    },
    /// The program failed.
    #[error(
        "`{cmd}` failed: {stderr} (atrd needs CAP_NET_ADMIN to install its egress rules, or set `[egress] host_firewall = \"operator\"` once your own firewall drops traffic from the egress bridge to the host)"
    )]
    Failed {
        /// The command line.
        cmd: String,
        /// What it printed on stderr.
        stderr: String,
    },
}

/// The installed rules of one egress network; [`HostFirewall::remove`] takes them away.
#[derive(Debug)]
#[must_use = "the rules stay installed until `remove` is called"]
pub struct HostFirewall {
    chain: String,
    v6: bool,
    programs: [&'static str; 2],
}

/// The chain name for network `network` (≤ 28 characters, the iptables limit).
pub fn chain_for(network: &str) -> String {
    let h = blake3::hash(network.as_bytes());
    format!("ATR-EG-{}", &h.to_hex()[..12])
}

impl HostFirewall {
    /// Installs (or replaces) the rules for network `network` whose bridge interface is
    /// `bridge`: from that bridge, only TCP to `gateway:proxy_port` reaches the host.
    pub async fn install(
        network: &str,
        bridge: &str,
        gateway: Ipv4Addr,
        proxy_port: u16,
    ) -> Result<Self, FirewallError> {
        Self::install_with(["iptables", "ip6tables"], network, bridge, gateway, proxy_port).await
    }

    /// [`Self::install`] with the two programs named (tests).
    async fn install_with(
        [prog4, prog6]: [&'static str; 2],
        network: &str,
        bridge: &str,
        gateway: Ipv4Addr,
        proxy_port: u16,
    ) -> Result<Self, FirewallError> {
        let chain = chain_for(network);
        let (c, port, gw) = (chain.as_str(), proxy_port.to_string(), gateway.to_string());
        let proxy_rule = ["-A", c, "-d", &gw, "-p", "tcp", "--dport", &port, "-j", "RETURN"];
        let drop_rule = ["-A", c, "-j", "DROP"];
        fill(prog4, c, bridge, &[&proxy_rule, &drop_rule]).await?;
        let v6 = match fill(prog6, c, bridge, &[&drop_rule]).await {
            Ok(()) => true,
            // A host without IPv6 has no IPv6 path to close.
            Err(e) if !ipv6_enabled() => {
                debug!(error = %e, "no IPv6 on this host; no ip6tables rules");
                false
            }
            Err(e) => {
                remove_chain(prog4, &chain).await;
                return Err(e);
            }
        };
        info!(%chain, %bridge, proxy = %format!("{gateway}:{proxy_port}"), "egress host firewall installed");
        Ok(Self {
            chain,
            v6,
            programs: [prog4, prog6],
        })
    }

    /// The chain's name.
    pub fn chain(&self) -> &str {
        &self.chain
    }

    /// Removes the rules (shutdown); failures are logged.
    pub async fn remove(self) {
        let [prog4, prog6] = self.programs;
        remove_chain(prog4, &self.chain).await;
        if self.v6 {
            remove_chain(prog6, &self.chain).await;
        }
        info!(chain = %self.chain, "egress host firewall removed");
    }
}

/// Whether the kernel has IPv6 (an interface list exists).
fn ipv6_enabled() -> bool {
    std::path::Path::new("/proc/net/if_inet6").exists()
}

/// Creates or flushes `chain` in `prog`, appends `rules`, and makes it the first rule of
/// `INPUT` for packets from `bridge` (older jumps to it removed).
async fn fill(prog: &str, chain: &str, bridge: &str, rules: &[&[&str]]) -> Result<(), FirewallError> {
    drop_jumps(prog, chain).await?;
    if run(prog, &["-N", chain]).await.is_err() {
        // It exists (a previous run): start it afresh.
        run(prog, &["-F", chain]).await?;
    }
    for r in rules {
        run(prog, r).await?;
    }
    run(prog, &["-I", "INPUT", "1", "-i", bridge, "-j", chain]).await?;
    Ok(())
}

/// Deletes every `INPUT` rule jumping to `chain`.
async fn drop_jumps(prog: &str, chain: &str) -> Result<(), FirewallError> {
    let listing = run(prog, &["-S", "INPUT"]).await?;
    for line in listing.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let jumps = words.windows(2).any(|w| w[0] == "-j" && w[1] == chain);
        if jumps && words.first() == Some(&"-A") {
            let mut args = vec!["-D"];
            args.extend_from_slice(&words[1..]);
            run(prog, &args).await?;
        }
    }
    Ok(())
}

/// Removes `chain` and the jumps to it, logging failures.
async fn remove_chain(prog: &str, chain: &str) {
    let res = async {
        drop_jumps(prog, chain).await?;
        run(prog, &["-F", chain]).await?;
        run(prog, &["-X", chain]).await
    }
    .await;
    if let Err(e) = res {
        warn!(error = %e, "could not remove the egress host firewall rules");
    }
}

/// Runs `prog -w <secs> args…`; returns stdout.
async fn run(prog: &str, args: &[&str]) -> Result<String, FirewallError> {
    let cmd = format!("{prog} {}", args.join(" "));
    let child = tokio::process::Command::new(prog)
        .arg("-w")
        .arg(LOCK_WAIT_SECS)
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(CALL_TIMEOUT, child)
        .await
        .map_err(|_| FirewallError::Timeout { cmd: cmd.clone() })?
        .map_err(|source| FirewallError::Spawn {
            cmd: cmd.clone(),
            source,
        })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        return Err(FirewallError::Failed { cmd, stderr });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_names_fit_iptables_and_differ_per_network() {
        let a = chain_for("atr-egress");
        let b = chain_for("atr-egress-2");
        assert!(a.len() <= 28, "{a}");
        assert_ne!(a, b);
        assert_eq!(a, chain_for("atr-egress"));
    }

    /// Egress is not enabled without the rules: a missing or failing `iptables` is an error
    /// naming the way out (`node::start_egress` turns it into a start failure).
    #[tokio::test]
    async fn without_iptables_installing_fails_with_a_clear_error() {
        let gw = Ipv4Addr::new(172, 31, 0, 1);
        let e = HostFirewall::install_with(
            ["/nonexistent/iptables", "/nonexistent/ip6tables"],
            "n",
            "br-x",
            gw,
            1,
        )
        .await
        .unwrap_err();
        assert!(matches!(e, FirewallError::Spawn { .. }), "{e}");
        assert!(e.to_string().contains("host_firewall = \"operator\""), "{e}");
        let e = HostFirewall::install_with(["false", "false"], "n", "br-x", gw, 1)
            .await
            .unwrap_err();
        assert!(matches!(e, FirewallError::Failed { .. }), "{e}");
    }
}
