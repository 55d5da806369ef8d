//! # atr-sandbox
//!
//! The Docker side of atr that more than one program needs, written once:
//!
//! - [`profile`]: the one rendering of a [`atr_protocol::sandbox::SandboxProfile`] (the
//!   container hardening) to the Engine's container configuration.
//! - [`runner`]: running a tool in a fresh hardened container ([`Sandbox`]): create, attach,
//!   start, feed stdin, read under caps and the deadline, wait, remove. Used by `atrd` for
//!   every invocation and by `atr tool test`, so a tool is tested as a node runs it.
//! - [`image`]: tool images with no registry — static binaries packed into
//!   `FROM scratch` images, built through the Engine API (used by `atr tool
//!   build`, `atr tool test` and the testnet's example tools image).
//! - [`image_policy`]: what an image's own config (`VOLUME`, `HEALTHCHECK`) may ask of its
//!   containers: neutralised or refused, at publish, provide and run.
//! - [`confinement`]: what `docker info` says about seccomp and AppArmor, and the warning
//!   when neither confines tools.
//! - [`usage`]: CPU time and peak memory of a run, from its parent cgroup.
//! - [`cargo`]: a nested `cargo` command that does not undo the outer build.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![deny(missing_docs)]

pub mod cargo;
pub mod confinement;
pub mod image;
pub mod image_policy;
pub mod profile;
pub mod runner;
pub mod seccomp;
pub mod usage;

pub use runner::{RunOutcome, RunRequest, Sandbox, SandboxError, SandboxOptions, Timings};
