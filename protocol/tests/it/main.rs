//! Integration tests of atr-protocol: one binary, one module per concern.

mod fixtures;
mod manifest;
mod props;
mod rfc_vectors;
mod signed;
mod vectors;
