//! `network_probe` (HOSTILE, for sandbox tests): tries a TCP connection, with a
//! 1 s timeout, to each of `targets` and reports which were reachable. In a
//! sandbox without network every target should be unreachable.
//!
//! Targets are `IP:port` socket addresses (no host names, so no DNS lookups)
//! and must be **loopback** addresses (127.0.0.0/8 or ::1): the probe never
//! sends a packet off the machine, even when run outside a sandbox. Private
//! and public addresses are refused. At most [`MAX_TARGETS`] targets, so it
//! stops within [`MAX_TARGETS`] seconds.
//!
//! Input `{"targets"?: ["127.0.0.1:7878", ...]}` (default
//! [`DEFAULT_TARGETS`]: the local atrd API), output
//! `{"results": [{"target": "...", "reachable": bool, "error"?: "..."}]}`.

use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

use atr_example_tools::{ToolError, parse, run};
use serde::Deserialize;
use serde_json::{Value, json};

/// Timeout of one connection attempt.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Most targets in one input.
const MAX_TARGETS: usize = 16;
/// Probed when no targets are given: the default local API of atrd on the
/// host, which a sandboxed tool must not reach.
const DEFAULT_TARGETS: &[&str] = &["127.0.0.1:7878", "[::1]:7878"];

fn main() -> ExitCode {
    run(network_probe)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    #[serde(default)]
    targets: Option<Vec<String>>,
}

fn network_probe(input: Value) -> Result<Value, ToolError> {
    let input: Input = parse(input)?;
    let targets = input
        .targets
        .unwrap_or_else(|| DEFAULT_TARGETS.iter().map(|s| (*s).to_owned()).collect());
    if targets.len() > MAX_TARGETS {
        return Err(ToolError::bad_input(
            "invalid_input",
            format!("{} targets is more than the {MAX_TARGETS} allowed", targets.len()),
        ));
    }
    // Validate every target before probing any.
    let addrs = targets
        .iter()
        .map(|t| parse_target(t))
        .collect::<Result<Vec<_>, _>>()?;
    let results: Vec<Value> = targets
        .iter()
        .zip(addrs)
        .map(
            |(t, addr)| match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
                Ok(_) => json!({ "target": t, "reachable": true }),
                Err(e) => json!({ "target": t, "reachable": false, "error": e.to_string() }),
            },
        )
        .collect();
    Ok(json!({ "results": results }))
}

fn parse_target(t: &str) -> Result<SocketAddr, ToolError> {
    let addr: SocketAddr = t.parse().map_err(|_| {
        ToolError::bad_input(
            "invalid_target",
            format!(
                "target `{}` must be an IP:port socket address such as 127.0.0.1:7878 (no host names)",
                t.chars().take(64).collect::<String>()
            ),
        )
    })?;
    if !addr.ip().is_loopback() {
        return Err(ToolError::bad_input(
            "target_not_allowed",
            format!("target `{t}` is not a loopback address; only 127.0.0.0/8 and ::1 are probed"),
        ));
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_non_loopback_targets() {
        for t in [
            "10.0.2.2:80",
            "172.17.0.1:7878",
            "192.168.1.1:80",
            "8.8.8.8:53",
            "[::ffff:127.0.0.1]:80",
        ] {
            let e = network_probe(json!({"targets": [t]})).unwrap_err();
            assert_eq!(e.code(), "target_not_allowed", "{t}");
        }
        for t in ["localhost:80", "127.0.0.1", "http://127.0.0.1/"] {
            assert_eq!(
                network_probe(json!({"targets": [t]})).unwrap_err().code(),
                "invalid_target"
            );
        }
        let many: Vec<String> = (0..17).map(|i| format!("127.0.0.1:{}", 1000 + i)).collect();
        assert_eq!(
            network_probe(json!({"targets": many})).unwrap_err().code(),
            "invalid_input"
        );
    }

    #[test]
    fn probes_loopback() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open = listener.local_addr().unwrap().to_string();
        let out = network_probe(json!({"targets": [open.clone()]})).unwrap();
        assert_eq!(out, json!({"results": [{"target": open, "reachable": true}]}));
        drop(listener);
        let out = network_probe(json!({"targets": [open]})).unwrap();
        assert_eq!(out["results"][0]["reachable"], false);
    }
}
