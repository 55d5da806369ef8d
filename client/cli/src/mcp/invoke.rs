//! The call path of `tools/call`: an [`Invoker`] runs a tool by id.
//!
//! The MCP server only knows this trait. [`NodeInvoker`] is the real one: it
//! invokes through the node ([`Client::invoke_verified`]), so every output the
//! server returns has a receipt that verified on this side. [`NotAvailable`]
//! answers every call with [`ClientError::InvocationUnavailable`] (a server
//! that only lists tools).

use atr_protocol::ToolId;
use atr_protocol::api::InvokeRequest;
use atr_protocol::receipt::InvocationStatus;
use futures::future::BoxFuture;
use serde_json::Value;

use atr_client::ClientError;
use atr_client::client::{Client, Invocation};

/// What an invocation returned: the tool's output and, when it ran through a node, the
/// verified receipt.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ToolOutput {
    /// The tool's JSON output (an error object when `status` is not `ok`).
    pub output: Value,
    /// How the run ended.
    pub status: InvocationStatus,
    /// The provider's signed receipt, hex (its envelope, for independent checking).
    pub receipt: Option<String>,
    /// The receipt's id: hex blake3 of its signed body.
    pub receipt_id: Option<String>,
    /// The provider that ran it (a peer id, or `local`).
    pub provider: Option<String>,
}

impl ToolOutput {
    /// A successful output with its receipt (hex), if any.
    pub fn new(output: Value, receipt: Option<String>) -> Self {
        Self {
            output,
            status: InvocationStatus::Ok,
            receipt,
            receipt_id: None,
            provider: None,
        }
    }

    /// Whether the tool succeeded.
    pub fn is_ok(&self) -> bool {
        self.status == InvocationStatus::Ok
    }
}

impl From<Invocation> for ToolOutput {
    fn from(inv: Invocation) -> Self {
        let receipt_id = inv.receipt_id();
        let r = inv.response;
        Self {
            output: r.output,
            status: r.status,
            receipt: Some(r.receipt_hex),
            receipt_id: Some(receipt_id),
            provider: Some(r.provider),
        }
    }
}

/// Runs tools for the MCP server.
pub trait Invoker: Send + Sync + 'static {
    /// Invokes tool `id` with `input` (already checked against the tool's input schema).
    /// An `Err`, or an output whose status is not `ok`, becomes an MCP tool error
    /// (`isError: true`) carrying its message.
    fn invoke(&self, id: ToolId, input: Value) -> BoxFuture<'static, Result<ToolOutput, ClientError>>;
}

/// The invoker of a node that cannot run tools: every call fails with
/// [`ClientError::InvocationUnavailable`].
#[derive(Debug, Clone, Copy, Default)]
pub struct NotAvailable;

impl Invoker for NotAvailable {
    fn invoke(&self, _id: ToolId, _input: Value) -> BoxFuture<'static, Result<ToolOutput, ClientError>> {
        Box::pin(async { Err(ClientError::InvocationUnavailable) })
    }
}

/// Invokes through the node's API, verifying each receipt ([`Client::invoke_verified`]).
#[derive(Debug, Clone)]
pub struct NodeInvoker {
    client: Client,
}

impl NodeInvoker {
    /// An invoker over `client` (it needs the node's API token).
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

impl Invoker for NodeInvoker {
    fn invoke(&self, id: ToolId, input: Value) -> BoxFuture<'static, Result<ToolOutput, ClientError>> {
        let client = self.client.clone();
        Box::pin(async move {
            let req = InvokeRequest {
                id: Some(id),
                name: None,
                version: None,
                publisher: None,
                input,
            };
            Ok(client.invoke_verified(&req).await?.into())
        })
    }
}
