//! # atrd
//!
//! The atr node: publishes, gossips, discovers and syncs signed tool specs.
//!
//! Map of the crate:
//!
//! - [`config`]: the config file, environment and flags, resolved into [`config::Config`].
//! - [`egress`]: the filtering egress proxy and internal network for tools that declare egress.
//! - [`identity`]: the node's ed25519 key (its peer id and publisher identity).
//! - [`store`]: the redb store: signed specs, revocations, receipts, peers.
//! - [`catalog`]: the in-memory index that answers find and search.
//! - [`secrets`]: the operator's secret values (read per invocation, never logged).
//! - [`repo`]: [`Repo`], the one owner and writer of store, catalog and
//!   provided set.
//! - [`network`]: the libp2p swarm, its event loop and handle.
//! - [`announce`]: the DHT provider records of the specs this node runs.
//! - [`node`]: the running [`Node`] and its services (ingest, respond, sync,
//!   publish, provide, discover, invoke).
//! - [`sandbox`]: hardened throw-away Docker containers (bollard).
//! - [`api`]: the local HTTP API.
//! - [`metrics`]: every counter, in one registry per node.
//! - [`attacker`]: hostile peers speaking the real protocols, for tests and
//!   the testnet's attacker role.
//!
//! Modules depend on each other top-down only (`tests/it/cycles.rs` fails on
//! an import cycle); locks follow one poisoning policy (`lock`).
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![deny(missing_docs, rustdoc::broken_intra_doc_links)]

pub mod announce;
pub mod api;
pub mod attacker;
pub mod catalog;
pub mod claims;
pub mod config;
pub mod egress;
pub mod identity;
mod lock;
pub mod metrics;
pub mod network;
pub mod node;
pub mod repo;
pub mod sandbox;
pub mod secrets;
pub mod store;
pub mod time;

pub use config::Config;
pub use node::Node;
pub use repo::Repo;
