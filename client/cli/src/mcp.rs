//! The MCP server: the network's tools for any MCP client, over stdio or
//! streamable HTTP, built on the official Rust SDK (`rmcp`).
//!
//! - [`ToolServer`] holds what every session shares: the node's [`Client`], the
//!   [`Selection`] of tools, the current [`ToolSet`] and the [`Invoker`]. Its
//!   refresher ([`ToolServer::spawn_refresher`]) polls the node and, when the set
//!   of selected ids changes, swaps the tool set and wakes every session.
//! - [`Handler`] is the per-session rmcp handler (`tools/list`, `tools/call`,
//!   `notifications/tools/list_changed`). A call runs through the [`Invoker`]
//!   ([`NodeInvoker`]: through the node, receipts verified); its output comes
//!   back once in full, as structured content (an object: see [`OutputShape`]),
//!   copied as text only when small ([`TEXT_COPY_MAX_BYTES`]) and capped at
//!   [`McpOptions::max_output_bytes`], with the receipt under `_meta`
//!   ([`META_RECEIPT_KEY`], …); a failed run or a refused call is a tool error
//!   (`isError: true`), never a protocol error. Remote text is escaped with
//!   `atr_protocol::text`.
//! - [`http_auth`]: the bearer token of the HTTP transport off loopback.
//! - [`ToolServer::serve_stdio`] and [`ToolServer::serve_http`] run it.
//!
//! Who stops whom: the caller's `CancellationToken` stops the refresher and
//! the transports; the stdio server also ends when its peer closes stdin.

mod catalog;
mod handler;
pub mod http_auth;
mod invoke;
pub mod lock;
pub mod select;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rmcp::ServiceExt;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use catalog::{
    META_ID_KEY, META_PROVIDER_KEY, META_RECEIPT_ID_KEY, META_RECEIPT_KEY, META_STATUS_KEY, META_WRAPPED_KEY,
    OutputShape, RESULT_FIELD, Selection, ServedTool, ToolSet, newest_per_tool, stable_order,
    wrapped_output_schema,
};
pub use handler::{Handler, SERVER_NAME, TEXT_COPY_MAX_BYTES};
pub use invoke::{Invoker, NodeInvoker, NotAvailable, ToolOutput};

use atr_client::Client;
use atr_client::ClientError;

/// How often the selection is re-checked by default. Defaults to 5 s: new versions show up
/// within seconds, at the cost of one local find per tag or name each time.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(5);
/// Shortest refresh interval accepted, so a typo cannot turn polling into a busy loop.
pub const MIN_REFRESH: Duration = Duration::from_millis(100);
/// Path of the MCP endpoint of [`ToolServer::serve_http`].
pub const HTTP_PATH: &str = "/mcp";
/// Default cap on the output one `tools/call` hands a model, bytes of JSON
/// ([`McpOptions::max_output_bytes`]): 64 KiB is about 16 000 tokens, a large answer already;
/// a tool may legitimately write up to 8 MiB, which would flood a model's context.
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 64 * 1024;
/// Smallest output cap accepted: below this even an error message is cut.
pub const MIN_MAX_OUTPUT_BYTES: usize = 256;

/// Why the MCP server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum McpServeError {
    /// The lock file cannot be read, or the selection breaks it (a changed definition).
    #[error(transparent)]
    Lock(#[from] lock::LockError),
    /// No tag, name or id was selected.
    #[error(
        "select the tools to serve with --tag, --name or --id: atr mcp never serves the whole network by accident"
    )]
    EmptySelection,
    /// The node could not be asked for the selection.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The HTTP address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The MCP transport failed.
    #[error("MCP transport: {0}")]
    Transport(String),
}

/// Settings of a [`ToolServer`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct McpOptions {
    /// How often to re-check the selection ([`DEFAULT_REFRESH`]; at least [`MIN_REFRESH`]).
    pub refresh: Duration,
    /// Extra `Host` header values the HTTP server accepts, besides `localhost`, `127.0.0.1`,
    /// `::1` and the address it is bound to (a guard against DNS rebinding). A browser
    /// `Origin` is accepted only for these hosts and loopback; any other is refused (403).
    pub allowed_hosts: Vec<String>,
    /// The bearer token every HTTP request must carry (`Authorization: Bearer …`), `None` for
    /// none. `atr mcp` sets it whenever the bound address is not loopback (see [`http_auth`]).
    pub http_token: Option<String>,
    /// Most bytes of output JSON one call hands the client ([`DEFAULT_MAX_OUTPUT_BYTES`], at
    /// least [`MIN_MAX_OUTPUT_BYTES`]); a larger output becomes a tool error holding its
    /// first bytes and a marker.
    pub max_output_bytes: usize,
}

impl Default for McpOptions {
    fn default() -> Self {
        Self {
            refresh: DEFAULT_REFRESH,
            allowed_hosts: Vec::new(),
            http_token: None,
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
        }
    }
}

/// What every MCP session shares. See the [module docs](self).
pub struct ToolServer {
    client: Client,
    selection: Selection,
    invoker: Arc<dyn Invoker>,
    options: McpOptions,
    current: RwLock<Arc<Loaded>>,
    changes: watch::Sender<u64>,
}

/// A tool set and what it was built from (some may not have been exportable).
struct Loaded {
    set: Arc<ToolSet>,
    key: Vec<(String, atr_protocol::ToolId, atr_protocol::trust::Standing)>,
}

impl std::fmt::Debug for ToolServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolServer")
            .field("api", &self.client.api_url())
            .field("selection", &self.selection)
            .field("tools", &self.current().len())
            .finish_non_exhaustive()
    }
}

impl ToolServer {
    /// Loads the selection through the node (asking the network first when
    /// [`Selection::network`] is set), checks it against its lock file, and returns the
    /// server, ready to serve, with what the selection hid (untrusted publishers' tools).
    pub async fn start(
        client: Client,
        mut selection: Selection,
        invoker: Arc<dyn Invoker>,
        mut options: McpOptions,
    ) -> Result<(Arc<Self>, Option<String>), McpServeError> {
        selection.add_lock_names(&client).await?;
        if selection.is_empty() {
            return Err(McpServeError::EmptySelection);
        }
        options.refresh = options.refresh.max(MIN_REFRESH);
        options.max_output_bytes = options.max_output_bytes.max(MIN_MAX_OUTPUT_BYTES);
        let picked = selection.load(&client, selection.network).await?;
        if let Some(lock) = &selection.lock {
            lock.check(&picked)?;
        }
        let note = picked.hidden_note();
        let loaded = build(picked).await;
        let (changes, _) = watch::channel(0);
        let server = Arc::new(Self {
            client,
            selection,
            invoker,
            options,
            current: RwLock::new(Arc::new(loaded)),
            changes,
        });
        Ok((server, note))
    }

    /// The tools served now.
    pub fn current(&self) -> Arc<ToolSet> {
        match self.current.read() {
            Ok(l) => l.set.clone(),
            Err(poisoned) => poisoned.into_inner().set.clone(),
        }
    }

    /// The refresh interval.
    pub fn refresh_interval(&self) -> Duration {
        self.options.refresh
    }

    /// The cap on the output of one call, bytes of JSON.
    pub fn max_output_bytes(&self) -> usize {
        self.options.max_output_bytes
    }

    /// The invoker behind `tools/call`.
    pub fn invoker(&self) -> &Arc<dyn Invoker> {
        &self.invoker
    }

    /// A receiver that changes whenever the served tool list does.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Re-checks the selection (the node's store and trust list only); when what it serves
    /// changed (a tool, a name, a publisher's trust), swaps the tool set, wakes every session
    /// and returns `true`. A change that breaks the lock file is not applied: the last list
    /// stays, with a warning.
    pub async fn refresh(&self) -> Result<bool, ClientError> {
        let picked = self.selection.load(&self.client, false).await?;
        let key = picked_key(&picked);
        let old_key = match self.current.read() {
            Ok(l) => l.key.clone(),
            Err(poisoned) => poisoned.into_inner().key.clone(),
        };
        if key == old_key {
            return Ok(false);
        }
        if let Some(lock) = &self.selection.lock
            && let Err(e) = lock.check(&picked)
        {
            warn!(error = %e, "the selection no longer matches the lock file; serving the last list");
            return Ok(false);
        }
        let loaded = Arc::new(build(picked).await);
        info!(tools = loaded.set.len(), "selection changed; tool list updated");
        match self.current.write() {
            Ok(mut l) => *l = loaded,
            Err(poisoned) => *poisoned.into_inner() = loaded,
        }
        self.changes.send_modify(|generation| *generation += 1);
        Ok(true)
    }

    /// Polls the node every [`McpOptions::refresh`] until `cancel` fires. A failed poll is
    /// logged and the last list kept.
    pub fn spawn_refresher(self: &Arc<Self>, cancel: CancellationToken) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(me.options.refresh);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            let mut failing = false;
            loop {
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => break,
                    _ = tick.tick() => {}
                }
                match me.refresh().await {
                    Ok(_) => failing = false,
                    Err(e) if !failing => {
                        warn!(error = %e, "cannot refresh the tool list; serving the last one");
                        failing = true;
                    }
                    Err(_) => {}
                }
            }
        })
    }

    /// A session handler.
    pub fn handler(self: &Arc<Self>) -> Handler {
        Handler::new(self.clone())
    }

    /// Serves MCP on stdin/stdout until the peer closes stdin or `cancel` fires.
    pub async fn serve_stdio(self: &Arc<Self>, cancel: CancellationToken) -> Result<(), McpServeError> {
        let running = match self
            .handler()
            .serve_with_ct(rmcp::transport::stdio_pipes(), cancel.child_token())
            .await
        {
            Ok(r) => r,
            // Stopped (Ctrl-C, SIGTERM) before a client said hello: a clean exit.
            Err(_) if cancel.is_cancelled() => return Ok(()),
            Err(e) => return Err(McpServeError::Transport(e.to_string())),
        };
        running
            .waiting()
            .await
            .map_err(|e| McpServeError::Transport(e.to_string()))?;
        Ok(())
    }

    /// Binds `addr` for [`Self::serve_http`].
    pub async fn bind_http(addr: SocketAddr) -> Result<tokio::net::TcpListener, McpServeError> {
        tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| McpServeError::Bind { addr, source })
    }

    /// Serves MCP over streamable HTTP at [`HTTP_PATH`] on `listener` until `cancel` fires.
    pub async fn serve_http(
        self: &Arc<Self>,
        listener: tokio::net::TcpListener,
        cancel: CancellationToken,
    ) -> Result<(), McpServeError> {
        let local = listener
            .local_addr()
            .map_err(|e| McpServeError::Transport(e.to_string()))?;
        let mut hosts: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
        // The bound address (also another loopback one, e.g. 127.0.0.2).
        if !local.ip().is_unspecified() && !hosts.contains(&local.ip().to_string()) {
            hosts.push(local.ip().to_string());
        }
        hosts.extend(self.options.allowed_hosts.iter().cloned());
        // Origin validation on: a browser page may call only from loopback or an allowed host
        // (any port); a request without `Origin` (not a browser) passes to the token check.
        let origins: Vec<String> = hosts
            .iter()
            .flat_map(|h| {
                let h = origin_host(h);
                [format!("http://{h}:*"), format!("https://{h}:*")]
            })
            .collect();
        let config = StreamableHttpServerConfig::default()
            .with_allowed_hosts(hosts)
            .with_allowed_origins(origins)
            .enforce_origin_validation()
            .with_cancellation_token(cancel.child_token());
        let handler = self.handler();
        let service = StreamableHttpService::new(
            move || Ok(handler.clone()),
            Arc::new(LocalSessionManager::default()),
            config,
        );
        let mut router = axum::Router::new().route_service(HTTP_PATH, service);
        if let Some(token) = self.options.http_token.clone() {
            let token: Arc<str> = token.into();
            router = router.layer(axum::middleware::from_fn(
                move |req: axum::extract::Request, next: axum::middleware::Next| {
                    http_auth::require(token.clone(), req, next)
                },
            ));
        }
        axum::serve(listener, router)
            .with_graceful_shutdown(async move { cancel.cancelled().await })
            .await
            .map_err(|e| McpServeError::Transport(e.to_string()))
    }
}

/// What identifies a selection's result: each tool's name, id and standing.
fn picked_key(p: &select::Picked) -> Vec<(String, atr_protocol::ToolId, atr_protocol::trust::Standing)> {
    p.tools
        .iter()
        .map(|c| (c.name.clone(), c.view.id, c.standing))
        .collect()
}

/// An allowed `Host` value as the host of an origin: without its port, IPv6 in brackets.
fn origin_host(h: &str) -> String {
    if let Ok(sa) = h.parse::<SocketAddr>() {
        return match sa.ip() {
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
    }
    if let Ok(std::net::IpAddr::V6(ip)) = h.parse::<std::net::IpAddr>() {
        return format!("[{ip}]");
    }
    match h.rsplit_once(':') {
        Some((name, port)) if port.parse::<u16>().is_ok() => name.to_owned(),
        _ => h.to_owned(),
    }
}

/// Builds the tool set off the runtime (schemas are compiled).
async fn build(picked: select::Picked) -> Loaded {
    let key = picked_key(&picked);
    let set = match tokio::task::spawn_blocking(move || ToolSet::build(picked.tools)).await {
        Ok(set) => set,
        Err(e) => {
            warn!(error = %e, "building the tool list failed");
            ToolSet::default()
        }
    };
    Loaded {
        set: Arc::new(set),
        key,
    }
}
