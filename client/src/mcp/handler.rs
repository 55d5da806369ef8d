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
use super::catalog::META_RECEIPT_KEY;
use super::invoke::ToolOutput;

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

fn tool_result(out: ToolOutput) -> CallToolResponse {
    let mut result = if out.output.is_object() {
        CallToolResult::structured(out.output)
    } else {
        // MCP before 2026-07-28 only takes objects as structured content: send text alone.
        CallToolResult::success(vec![ContentBlock::text(out.output.to_string())])
    };
    if let Some(r) = out.receipt {
        let mut meta = Map::new();
        meta.insert(META_RECEIPT_KEY.into(), Value::String(r));
        result = result.with_meta(Some(MetaObject(meta)));
    }
    result.into()
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
             Each tool's `_meta` carries its content id under `dev.atr/id`.",
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
        let id = tool.id;
        drop(set);
        match self.server.invoker().invoke(id, input).await {
            Ok(out) => Ok(tool_result(out)),
            Err(e) => Ok(text_error(e.to_string())),
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
