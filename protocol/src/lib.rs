//! # atr-protocol
//!
//! The pure definition of atr's data: what a tool spec is, how it is encoded,
//! named, signed and checked, and what nodes say to each other. No I/O, no
//! async runtime: every other crate builds on these types.
//!
//! Map of the crate:
//!
//! - [`api`]: bodies of the node's local HTTP API.
//! - [`cbor`]: the canonical (deterministic) CBOR encoder and the strict, bounded decoder.
//! - [`limits`]: every size and count limit, each a named constant with its reason.
//! - [`id`]: content ids ([`ToolId`], [`ContentHash`]) and [`InvocationId`].
//! - [`key`]: publisher identity ([`PublicKey`], [`SecretKey`], [`Signature`]).
//! - [`manifest`]: the TOML manifest an operator writes ([`Manifest`]).
//! - [`spec`]: the normalized, signable [`ToolSpec`] and its parts.
//! - [`validate`]: the rules a spec must satisfy ([`ValidationError`]).
//! - [`signed`]: the signed envelope ([`Signed`]) and verification ([`VerifyError`]).
//! - [`revocation`], [`receipt`]: the other signed objects.
//! - [`wire`]: versioned peer-to-peer messages and their caps.
//! - [`input`]: checking a JSON input against a spec's input schema.
//! - [`local`]: conventions of a local node: data dir, token file, API address, env vars.
//! - [`export`]: tool definitions for OpenAI, Anthropic, MCP and Gemini.
//! - [`policy`]: declared permissions ([`policy::Permissions`]) and the enforced [`policy::Policy`] and its hash.
//! - [`query`]: find filters and semver requirements shared by node and clients.
//! - [`page`]: the cursors and page sizes of the API's listings.
//! - [`sandbox`]: the container hardening every tool run gets ([`sandbox::SandboxProfile`]).
//! - [`trust`]: the node's trust list and the one rule every selection path applies ([`trust::Standing`]).
//! - [`text`]: the characters remote text may not hold, and the one sanitiser for showing it.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![deny(missing_docs, rustdoc::broken_intra_doc_links)]

pub mod api;
pub mod cbor;
pub mod claim;
pub mod delegation;
pub mod export;
pub mod id;
pub mod input;
pub mod key;
pub mod limits;
pub mod local;
pub mod manifest;
pub mod page;
pub mod policy;
pub mod query;
pub mod receipt;
pub mod revocation;
pub mod sandbox;
pub mod signed;
pub mod spec;
pub mod text;
pub mod trust;
pub mod validate;
pub mod wire;

pub use delegation::{Delegation, SignedDelegation};
pub use id::{ContentHash, InvocationId, ToolId};
pub use key::{PublicKey, SecretKey, Signature};
pub use manifest::Manifest;
pub use receipt::{Receipt, SignedReceipt};
pub use revocation::{Revocation, SignedRevocation};
pub use signed::{Signed, VerifyError};
pub use spec::{SignedSpec, ToolSpec};
pub use validate::ValidationError;
