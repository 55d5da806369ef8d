//! Integration tests of atrd: real libp2p swarms on loopback, real redb files,
//! the real `atrd` binary. One test binary, one module per concern.

mod api;
mod harness;
mod network;
mod process;
