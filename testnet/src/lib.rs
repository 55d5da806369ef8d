//! # atr-testnet
//!
//! Multi-node experiments (issue 7) and what they need. For now:
//!
//! - [`tools_image`]: builds the example tools (`testnet/tools`, package
//!   `atr-example-tools`) as static binaries and packs them into the
//!   `FROM scratch` image [`tools_image::TOOLS_IMAGE`] that sandbox tests and
//!   testnet nodes run.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![deny(missing_docs, rustdoc::broken_intra_doc_links)]

pub mod tools_image;
