//! # atr-client
//!
//! A typed async client of the local `atrd` API (work in progress: see issue 6).
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![deny(missing_docs)]
