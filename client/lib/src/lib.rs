//! # atr-client
//!
//! The agents' side of atr: a typed async client of the local `atrd` API that
//! checks every receipt it receives. Its dependencies are HTTP and the
//! protocol crate only; the `atr` command line and MCP server (`atr-cli`) are
//! built on it.
//!
//! - [`client`]: [`Client`], one async method per API call, each with a deadline
//!   ([`client::Timeouts`]).
//! - [`error`]: [`ClientError`]: every API error code as a typed variant, plus
//!   transport failures, each message one line for the operator.
//! - [`endpoint`]: where the node is and its token (`ATR_API`, `ATR_TOKEN`,
//!   `ATR_DATA_DIR`), as [`Endpoint`].
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![deny(missing_docs)]

pub mod client;
pub mod endpoint;
pub mod error;

pub use client::{Client, Invocation};
pub use endpoint::Endpoint;
pub use error::ClientError;
