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

/// Largest output also copied into the result's text block, bytes of JSON.
///
/// A successful output is sent once in full, as `structuredContent`: the value MCP clients
/// validate against the tool's `outputSchema` and hand on. The MCP spec asks (SHOULD) for the
/// same JSON in a text block too, for clients that predate structured content; a host that
/// forwards both to its model would then pay for the output twice. So the text block holds the
/// JSON only up to this size (small answers: the cost is nothing and old clients see them),
/// and above it one line saying the output is in `structuredContent` and how large it is.
pub const TEXT_COPY_MAX_BYTES: usize = 1024;

/// A run's result: on success the output as structured content (an object, see
/// [`OutputShape`]; strings escaped by [`atr_protocol::text::escape_value`]) and, when small,
/// as JSON text ([`TEXT_COPY_MAX_BYTES`]); an output over `max_output_bytes` becomes a tool
/// error holding its first bytes and `… (N bytes more)`. On failure a tool error with the
/// provider's message and the tail of the tool's stderr, each capped and escaped
/// ([`atr_protocol::text::shown`]). All carry the receipt in `_meta`.
fn tool_result(
    name: &str,
    id: &atr_protocol::ToolId,
    shape: OutputShape,
    out: ToolOutput,
    max_output_bytes: usize,
) -> CallToolResponse {
    let meta = result_meta(id, &out);
    let result = if out.is_ok() {
        let mut output = out.output;
        atr_protocol::text::escape_value(&mut output);
        let text = output.to_string();
        if text.len() > max_output_bytes {
            let cut = atr_protocol::text::cap(&text, max_output_bytes);
            CallToolResult::error(vec![ContentBlock::text(format!(
                "`{name}` returned {} bytes of JSON output, over this server's cap of {max_output_bytes} bytes \
                 (atr mcp --max-output-bytes); output truncated:\n{cut}",
                text.len()
            ))])
        } else {
            let copy = if text.len() <= TEXT_COPY_MAX_BYTES {
                text
            } else {
                format!("(output: {} bytes of JSON, in structuredContent)", text.len())
            };
            let mut r = CallToolResult::structured(shape.structured(output));
            r.content = vec![ContentBlock::text(copy)];
            r
        }
    } else {
        let err = out.output.get("error");
        let message = err
            .and_then(|e| e.get("message"))
            .and_then(Value::as_str)
            .unwrap_or("the tool failed");
        let mut text = format!(
            "`{name}` failed ({}): {}",
            out.status.as_str(),
            atr_protocol::text::shown(message)
        );
        if let Some(stderr) = err
            .and_then(|e| e.get("stderr"))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            text.push_str("\nstderr: ");
            text.push_str(&atr_protocol::text::shown(stderr));
        }
        CallToolResult::error(vec![ContentBlock::text(text)])
    };
    result.with_meta(Some(meta)).into()
}

/// A tool definition with every string escaped, when any holds a forbidden character (only a
/// spec stored before validation refused them can; one serialisation per tool otherwise).
fn clean_tool(tool: Tool) -> Tool {
    let Ok(text) = serde_json::to_string(&tool) else {
        return tool;
    };
    if !text.chars().any(atr_protocol::text::is_forbidden) {
        return tool;
    }
    let Ok(mut v) = serde_json::from_str::<Value>(&text) else {
        return tool;
    };
    atr_protocol::text::escape_value(&mut v);
    serde_json::from_value(v).unwrap_or(tool)
}

/// A call the node refused or could not complete, as a tool error.
fn call_error(name: &str, e: &ClientError) -> CallToolResponse {
    match e {
        ClientError::InvalidInput { .. } => text_error(format!("invalid arguments for `{name}`: {e}")),
        _ => text_error(format!(
            "`{name}` could not run: {}",
            atr_protocol::text::shown(&e.to_string())
        )),
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
        let tools = self
            .server
            .current()
            .tools()
            .into_iter()
            .map(clean_tool)
            .collect();
        let mut result = ListToolsResult::with_all_items(tools);
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
            Ok(out) => Ok(tool_result(name, &id, shape, out, self.server.max_output_bytes())),
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
