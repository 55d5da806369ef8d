//! Integration tests of atrd: real libp2p swarms on loopback, real redb files,
//! the real `atrd` binary. One test binary, one module per concern.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api;
mod api_guard;
mod browser;
mod budgets;
mod claims;
mod clean_text;
mod cycles;
mod delegation;
mod deploy;
mod egress;
mod explorer;
mod harness;
mod hostile_image;
mod nat;
mod network;
mod paging;
mod process;
mod provide;
mod quotas;
mod remote;
mod sandbox;
mod seccomp;
mod short_ids;
