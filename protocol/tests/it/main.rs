//! Integration tests of atr-protocol: one binary, one module per concern.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod clean_text;
mod fixtures;
mod items;
mod manifest;
mod permissions;
mod props;
mod receipt;
mod rfc_vectors;
mod signed;
mod vectors;
mod wire;
