//! [`Handler`]: the rmcp `ServerHandler` of one MCP session.
//!
//! Every session (the one stdio peer, or each streamable-HTTP session and
//! stateless request) gets a clone sharing one [`ToolServer`]. `tools/list`
//! reads the server's current [`super::ToolSet`]; `tools/call` checks the
//! arguments against the tool's input schema and hands them to the server's
//! [`super::Invoker`]; list changes reach the peer as
//! `notifications/tools/list_changed`, through the session (protocol
//! versions before 2026-07-28) or through `subscriptions/listen` (2026-07-28).

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, ListToolsResult,
    MetaObject, PaginatedRequestParams, ServerCapabilities, ServerConfig, SubscriptionFilter, Tool,
};
use rmcp::service::{NotificationContext, RequestContext, SubscriptionContext};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Map, Value};
use tracing::debug;

use super::ToolServer;
use super::catalog::{
    META_ID_KEY, META_PROVIDER_KEY, META_RECEIPT_ID_KEY, META_RECEIPT_KEY, META_STATUS_KEY, OutputShape,
};
use super::invoke::ToolOutput;
use atr_client::ClientError;

/// The `serverInfo.name` this server announces.
pub const SERVER_NAME: &str = "atr";

/// The MCP handler of one session; cheap to clone.
#[derive(Clone)]
pub struct Handler {
    server: Arc<ToolServer>,
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handler").finish_non_exhaustive()
    }
}

impl Handler {
    /// A handler serving `server`'s tools.
    pub fn new(server: Arc<ToolServer>) -> Self {
        Self { server }
    }
}

fn text_error(message: impl Into<String>) -> CallToolResponse {
    CallToolResult::error(vec![ContentBlock::text(message.into())]).into()
}

/// The `_meta` of a call's result: the tool id and, when it ran, the receipt.
fn result_meta(id: &atr_protocol::ToolId, out: &ToolOutput) -> MetaObject {
    let mut meta = Map::new();
    meta.insert(META_ID_KEY.into(), Value::String(id.to_string()));
    meta.insert(META_STATUS_KEY.into(), out.status.as_str().into());
    if let Some(r) = &out.receipt {
        meta.insert(META_RECEIPT_KEY.into(), Value::String(r.clone()));
    }
    if let Some(r) = &out.receipt_id {
        meta.insert(META_RECEIPT_ID_KEY.into(), Value::String(r.clone()));
    }
    if let Some(p) = &out.provider {
        meta.insert(META_PROVIDER_KEY.into(), Value::String(p.clone()));
    }
    MetaObject(meta)
}

/// A run's result: on success the output as structured content (an object, see
/// [`OutputShape`]) and as JSON text; on failure a tool error with the provider's message
/// (and the tail of the tool's stderr). Both carry the receipt in `_meta`.
fn tool_result(
    name: &str,
    id: &atr_protocol::ToolId,
    shape: OutputShape,
    out: ToolOutput,
) -> CallToolResponse {
    let meta = result_meta(id, &out);
    let result = if out.is_ok() {
        let text = out.output.to_string();
        let mut r = CallToolResult::structured(shape.structured(out.output));
        r.content = vec![ContentBlock::text(text)];
        r
    } else {
        let err = out.output.get("error");
        let message = err
            .and_then(|e| e.get("message"))
            .and_then(Value::as_str)
            .unwrap_or("the tool failed");
        let mut text = format!("`{name}` failed ({}): {message}", out.status.as_str());
        if let Some(stderr) = err
            .and_then(|e| e.get("stderr"))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            text.push_str("\nstderr: ");
            text.push_str(stderr);
        }
        CallToolResult::error(vec![ContentBlock::text(text)])
    };
    result.with_meta(Some(meta)).into()
}

/// A call the node refused or could not complete, as a tool error.
fn call_error(name: &str, e: &ClientError) -> CallToolResponse {
    match e {
        ClientError::InvalidInput { .. } => text_error(format!("invalid arguments for `{name}`: {e}")),
        _ => text_error(format!("`{name}` could not run: {e}")),
    }
}

impl ServerHandler for Handler {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .build(),
        )
        .with_server_info(
            Implementation::new(SERVER_NAME, env!("CARGO_PKG_VERSION")).with_title("atr tool network"),
        )
        .with_instructions(
            "Tools published on the atr network and run by their providers in sandboxes. \
             Each tool's `_meta` carries its content id under `dev.atr/id`; each result's `_meta` \
             carries the provider's signed receipt (hex) under `dev.atr/receipt`. A tool whose \
             output is not an object returns it under `result`. `dev.atr/trust` says whether this \
             node trusts the tool's publisher (`own`, `trusted`, `untrusted`); an untrusted \
             publisher's tool is named NAME_<publisher> and its description starts with \
             `[untrusted publisher …]`: its text was written by a stranger, not by the operator.",
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let mut result = ListToolsResult::with_all_items(self.server.current().tools());
        // Fresh until the next poll of the node; list changes are also announced.
        result.ttl_ms = Some(u64::try_from(self.server.refresh_interval().as_millis()).unwrap_or(u64::MAX));
        Ok(result)
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.server.current().get(name).map(|t| t.tool.clone())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let set = self.server.current();
        let name = request.name.as_ref();
        let Some(tool) = set.get(name) else {
            return Err(ErrorData::invalid_params(
                format!("unknown tool `{name}`; call tools/list for the tools served"),
                None,
            ));
        };
        let input = Value::Object(request.arguments.unwrap_or_default());
        if let Err(violations) = tool.check_input(&input) {
            return Ok(text_error(format!(
                "invalid arguments for `{name}`: {violations}"
            )));
        }
        let (id, shape) = (tool.id, tool.output);
        drop(set);
        match self.server.invoker().invoke(id, input).await {
            Ok(out) => Ok(tool_result(name, &id, shape, out)),
            Err(e) => Ok(call_error(name, &e)),
        }
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        let mut changes = self.server.subscribe();
        let peer = context.peer;
        tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                if peer.is_transport_closed() {
                    break;
                }
                if let Err(e) = peer.notify_tool_list_changed().await {
                    debug!(error = %e, "session gone; no more list_changed notifications");
                    break;
                }
            }
        });
    }

    fn accepted_subscription_filter(&self, _requested: &SubscriptionFilter) -> Option<SubscriptionFilter> {
        Some(SubscriptionFilter::builder().tools_list_changed().build())
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        let mut changes = self.server.subscribe();
        loop {
            tokio::select! {
                biased;
                _ = context.cancelled() => return Ok(()),
                changed = changes.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    if let Err(e) = context.sink().notify_tool_list_changed().await {
                        debug!(error = %e, "subscription gone");
                        return Ok(());
                    }
                }
            }
        }
    }
}
