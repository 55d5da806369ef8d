//! Integration tests of `atr-cli`: the real `atr` binary and MCP server
//! against real `atrd` processes, one module per concern.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod clean_text;
mod cli;
mod first_run;
mod harness;
mod mcp;
mod paging;
mod trust;
