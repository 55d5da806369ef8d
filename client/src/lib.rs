//! # atr-client
//!
//! The agents' side of atr: a typed async client of the local `atrd` API and
//! an MCP server that serves the network's tools to any MCP client. The `atr`
//! command line (`src/main.rs` and its private `src/cli/`) is built on both.
//!
//! - [`client`]: [`Client`], one async method per API call, each with a deadline
//!   ([`client::Timeouts`]).
//! - [`error`]: [`ClientError`]: every API error code as a typed variant, plus
//!   transport failures, each message one line for the operator.
//! - [`endpoint`]: where the node is and its token (`ATR_API`, `ATR_TOKEN`,
//!   `ATR_DATA_DIR`), as [`Endpoint`].
//! - [`compose`]: client-side composition — pipeline, fallback, parallel — each
//!   step a verified invocation.
//! - [`mcp`]: the MCP server ([`mcp::ToolServer`]) over stdio and streamable HTTP.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![deny(missing_docs)]

pub mod client;
pub mod compose;
pub mod endpoint;
pub mod error;
pub mod image;
pub mod mcp;

pub use client::{Client, Invocation};
pub use endpoint::Endpoint;
pub use error::ClientError;
