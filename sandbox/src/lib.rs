//! # atr-sandbox
//!
//! The Docker side of atr that more than one program needs, written once:
//!
//! - [`image`]: tool images with no registry — static binaries packed into
//!   `FROM scratch` images, built through the Engine API (used by `atr tool
//!   build`, `atr tool test` and the testnet's example tools image).
//! - [`cargo`]: a nested `cargo` command that does not undo the outer build.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![deny(missing_docs)]

pub mod cargo;
pub mod image;
