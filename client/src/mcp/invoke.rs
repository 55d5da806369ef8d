//! The call path of `tools/call`: an [`Invoker`] runs a tool by id.
//!
//! The MCP server only knows this trait. Today the node cannot invoke, so
//! [`NotAvailable`] answers every call with
//! [`ClientError::InvocationUnavailable`]; once the node's API can run tools,
//! an `Invoker` over `Client::invoke` plugs in here without touching the
//! server.

use atr_protocol::ToolId;
use futures::future::BoxFuture;
use serde_json::Value;

use crate::error::ClientError;

/// What a successful invocation returned.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ToolOutput {
    /// The tool's JSON output.
    pub output: Value,
    /// The id of the provider's signed receipt, when there is one.
    pub receipt: Option<String>,
}

impl ToolOutput {
    /// An output with its receipt id.
    pub fn new(output: Value, receipt: Option<String>) -> Self {
        Self { output, receipt }
    }
}

/// Runs tools for the MCP server.
pub trait Invoker: Send + Sync + 'static {
    /// Invokes tool `id` with `input` (already checked against the tool's input schema).
    /// An `Err` becomes an MCP tool error (`isError: true`) carrying its message.
    fn invoke(&self, id: ToolId, input: Value) -> BoxFuture<'static, Result<ToolOutput, ClientError>>;
}

/// The invoker of a node that cannot run tools yet: every call fails with
/// [`ClientError::InvocationUnavailable`].
#[derive(Debug, Clone, Copy, Default)]
pub struct NotAvailable;

impl Invoker for NotAvailable {
    fn invoke(&self, _id: ToolId, _input: Value) -> BoxFuture<'static, Result<ToolOutput, ClientError>> {
        Box::pin(async { Err(ClientError::InvocationUnavailable) })
    }
}
