//! # atrd
//!
//! The atr node: publishes, gossips, discovers and syncs signed tool specs.
//!
//! Map of the crate:
//!
//! - [`config`]: the config file, environment and flags, resolved into [`config::Config`].
//! - [`identity`]: the node's ed25519 key (its peer id and publisher identity).
//! - [`store`]: the redb store: signed specs, revocations, receipts, peers.
//! - [`catalog`]: the in-memory index that serves find and search.
//! - [`network`]: the libp2p swarm, its event loop and handle.
//! - [`node`]: the running node and its services (ingest, serve, sync, publish, discover).
//! - [`sandbox`]: hardened throw-away Docker containers (bollard).
//! - [`api`]: the local HTTP API.
//! - [`metrics`]: every counter, rendered for Prometheus.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![deny(missing_docs, rustdoc::broken_intra_doc_links)]

pub mod api;
pub mod catalog;
pub mod config;
pub mod identity;
pub mod metrics;
pub mod network;
pub mod node;
pub mod sandbox;
pub mod store;

pub use config::Config;
pub use node::Node;
