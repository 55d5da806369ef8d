//! # atr-testnet
//!
//! Multi-node experiments (issue 7) and what they need.
//!
//! - [`process`]: [`process::Testnet`], N `atrd` processes on 127.0.0.1 with
//!   generated keys, data dirs and a seeded bootstrap topology; [`state`]: the
//!   `testnet.json` state file and [`state::down`], which removes everything a
//!   testnet made, also after a crash; [`atrd`]: finding the binary;
//!   [`docker`]: docker mode (a `FROM scratch` atrd image, one container per
//!   node on a private network, cuts and link conditions); [`linkem`]: delay,
//!   jitter and loss from user space where the kernel has no netem; [`compose`]: the
//!   same network as a Docker Compose file.
//! - [`scenario`]: the TOML scenario format (groups, roles, conditions,
//!   steps) and the built-in scenarios; [`runner`]: `atr-testnet run`.
//! - [`logs`]: the nodes' structured log events, the source of arrival times;
//!   [`resources`]: RSS and CPU per node from `/proc`, machine facts.
//! - [`report`]: samples, `summary.json`, `summary.md`; [`plot`]: SVG plots.
//! - [`tools_image`]: builds the example tools (`sdk/examples`, package
//!   `atr-example-tools`) as static binaries and packs them into the
//!   `FROM scratch` image [`tools_image::TOOLS_IMAGE`] that sandbox tests and
//!   testnet nodes run.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![deny(missing_docs, rustdoc::broken_intra_doc_links)]

pub mod atrd;
pub mod commands;
pub mod compose;
pub mod demo;
pub mod docker;
pub mod kube;
pub mod linkem;
pub mod logs;
pub mod nat;
pub mod plot;
pub mod process;
pub mod report;
pub mod resources;
pub mod runner;
pub mod scenario;
pub mod state;
pub mod swarm;
pub mod tools_image;
