//! # atr-cli
//!
//! The `atr` command line (`src/main.rs` only parses and calls [`run`]) and
//! the MCP server it runs:
//!
//! - `cli` (private): the commands — node commands over [`atr_client`],
//!   `atr mcp`, and the tool author's `atr tool new/build/test`.
//! - [`mcp`]: the MCP server ([`mcp::ToolServer`]) over stdio and streamable HTTP, and
//!   what it shares with `atr export`: the trust rule of a selection
//!   ([`mcp::select::pick`]) and lock files ([`mcp::lock::Lock`]).
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![deny(missing_docs)]

mod cli;
pub mod mcp;

pub use cli::{Args, init_logging, run};
