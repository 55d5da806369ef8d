//! `atr mcp`: serve the selected tools over stdio or streamable HTTP until the
//! peer leaves (stdio), or Ctrl-C / SIGTERM.

use std::sync::Arc;
use std::time::Duration;

use crate::mcp::lock::Lock;
use crate::mcp::{HTTP_PATH, McpOptions, McpServeError, NodeInvoker, Selection, ToolServer};
use tokio_util::sync::CancellationToken;

use super::Usage;
use super::args::McpArgs;
use super::commands::Ctx;
use super::output::with_spinner;

pub(crate) async fn mcp(ctx: &Ctx, a: McpArgs) -> anyhow::Result<()> {
    if a.tags.is_empty() && a.names.is_empty() && a.ids.is_empty() && a.lock.is_none() {
        return Err(Usage(McpServeError::EmptySelection.to_string()).into());
    }
    let lock = a.lock.as_deref().map(|p| Lock::read(p, false)).transpose()?;
    check_node(ctx).await?;
    let mut selection = Selection {
        tags: a.tags,
        names: a.names,
        network: a.network,
        any_publisher: a.any_publisher,
        lock,
        ..Selection::default()
    };
    for text in &a.ids {
        selection.ids.push(ctx.resolve(text).await?);
    }
    // Over a network, anyone who reaches the port would run tools through this node: a token.
    let http_token = match a.http {
        Some(addr) if needs_token(addr, a.require_token) => Some(mcp_token()?),
        _ => None,
    };
    let options = McpOptions {
        refresh: Duration::from_millis(a.refresh_ms),
        allowed_hosts: a.allow_hosts,
        http_token,
        max_output_bytes: a.max_output_bytes,
    };
    // Calls run through the node; every output's receipt is verified here first.
    let invoker = Arc::new(NodeInvoker::new(ctx.client.clone()));
    let what = if selection.network {
        "asking the network for the selected tools"
    } else {
        "loading the selected tools"
    };
    let (server, hidden) = match with_spinner(
        what,
        ToolServer::start(ctx.client.clone(), selection, invoker, options),
    )
    .await
    {
        Ok(started) => started,
        Err(McpServeError::EmptySelection) => {
            return Err(Usage(McpServeError::EmptySelection.to_string()).into());
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(note) = hidden {
        eprintln!("atr mcp: note: {note}");
    }
    let count = server.current().len();
    if count == 0 {
        eprintln!(
            "atr mcp: warning: no tool matches the selection yet; serving an empty list until one does"
        );
    }
    let cancel = CancellationToken::new();
    let refresher = server.spawn_refresher(cancel.clone());
    let signals = tokio::spawn({
        let cancel = cancel.clone();
        async move {
            shutdown_signal().await;
            cancel.cancel();
        }
    });
    let served = match a.http {
        Some(addr) => {
            let listener = ToolServer::bind_http(addr).await?;
            let local = listener.local_addr()?;
            eprintln!("atr mcp: serving {count} tool(s) at http://{local}{HTTP_PATH} (Ctrl-C to stop)");
            if !local.ip().is_loopback() {
                eprintln!(
                    "atr mcp: only Host headers localhost, 127.0.0.1, ::1 and the bound address are accepted; add others with --allow-host"
                );
            }
            server.serve_http(listener, cancel.clone()).await
        }
        None => {
            eprintln!("atr mcp: serving {count} tool(s) over stdio");
            server.serve_stdio(cancel.clone()).await
        }
    };
    cancel.cancel();
    signals.abort();
    let _ = refresher.await;
    Ok(served?)
}

/// Whether an HTTP server bound to `addr` requires the bearer token: always off loopback
/// (`0.0.0.0`, `::`, a LAN address), on loopback when asked (`--require-token`).
fn needs_token(addr: std::net::SocketAddr, require: bool) -> bool {
    require || !addr.ip().is_loopback()
}

/// The bearer token of `--http` from the node's data dir (`ATR_DATA_DIR`, else the default),
/// created on first need and then printed, once.
fn mcp_token() -> anyhow::Result<String> {
    let dir = std::env::var_os(atr_protocol::local::ENV_DATA_DIR)
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(atr_client::endpoint::default_data_dir);
    let (token, created) = crate::mcp::http_auth::load_or_create(&dir)?;
    let path = dir.join(atr_protocol::local::MCP_TOKEN_FILE);
    if created {
        eprintln!(
            "atr mcp: created the bearer token {token} in {} (shown once); clients send `Authorization: Bearer <token>`",
            path.display()
        );
    } else {
        eprintln!(
            "atr mcp: clients must send `Authorization: Bearer <token>`, the token in {}",
            path.display()
        );
    }
    Ok(token)
}

/// Fails now, with the fix, rather than on every call later: the node must answer and the
/// API token (which every tool call needs) must be found and accepted.
async fn check_node(ctx: &Ctx) -> anyhow::Result<()> {
    // `/health` needs no token (status does: it lists peers), so an unreachable
    // node and a missing token are told apart.
    with_spinner("asking the node", ctx.client.health()).await?;
    let endpoint = ctx.client.endpoint();
    let fix = "set ATR_TOKEN, or ATR_DATA_DIR to the node's data dir (an MCP client's config sets \
               them in \"env\", e.g. \"env\": {\"ATR_DATA_DIR\": \"/home/me/.local/share/atr\"})";
    let Some(token) = &endpoint.token else {
        return Err(Usage(format!(
            "no API token ({}), so every tool call would fail as unauthorized: {fix}",
            endpoint.token_source
        ))
        .into());
    };
    // A token-checked call that changes nothing: the node checks the token before the body,
    // so an empty invocation is refused as unauthorized (wrong token) or as malformed (right one).
    let probe = reqwest::Client::new()
        .post(format!("{}/v1/invoke", endpoint.api))
        .bearer_auth(token)
        .json(&serde_json::json!({}))
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    if let Ok(r) = probe
        && r.status() == reqwest::StatusCode::UNAUTHORIZED
    {
        return Err(Usage(format!(
            "the node at {} refuses the API token from {}, so every tool call would fail: {fix}",
            endpoint.api, endpoint.token_source
        ))
        .into());
    }
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_needed_off_loopback() {
        let at = |s: &str| s.parse::<std::net::SocketAddr>().unwrap();
        assert!(needs_token(at("0.0.0.0:8787"), false));
        assert!(needs_token(at("[::]:8787"), false));
        assert!(needs_token(at("192.168.1.20:8787"), false));
        assert!(!needs_token(at("127.0.0.1:8787"), false));
        assert!(!needs_token(at("127.0.0.2:8787"), false));
        assert!(!needs_token(at("[::1]:8787"), false));
        assert!(needs_token(at("127.0.0.1:8787"), true));
    }
}
