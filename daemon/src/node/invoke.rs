//! Invocation, in two roles:
//!
//! - [`caller`]: this node's agent asks for a tool run: resolve the request
//!   to one active spec, run it here if this node provides it, else ask
//!   providers in turn (publisher first, then DHT providers) and verify the
//!   receipt of the answer;
//! - [`provider`]: a peer asks this node to run a tool: check, run in the
//!   sandbox, sign a receipt.
//!
//! Both check inputs against the spec's compiled schemas ([`SchemaCache`]).
//! The API's request is `atr_protocol::api::InvokeRequest`, the peer's is
//! `atr_protocol::wire::InvokeRequest`; this crate always names them by
//! their module (`api::`, `wire::`).

pub mod caller;
pub mod provider;
pub mod ranking;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use atr_protocol::input::{CompiledSchema, SchemaCheckError};
use atr_protocol::{SignedSpec, ToolId};

use crate::lock;

/// Most tools whose schemas stay compiled.
pub const SCHEMA_CACHE_SIZE: usize = 512;

/// A spec's compiled input and output schemas.
pub struct CompiledPair {
    /// Input schema.
    pub input: CompiledSchema,
    /// Output schema, if declared.
    pub output: Option<CompiledSchema>,
}

/// Compiled schemas per tool id, so repeated invocations do not recompile
/// (compiling costs far more than checking). Bounded: cleared when full.
#[derive(Default)]
pub struct SchemaCache {
    map: Mutex<HashMap<ToolId, Arc<CompiledPair>>>,
}

impl SchemaCache {
    /// The compiled schemas of `spec`, compiling them on first use.
    pub fn get(&self, spec: &SignedSpec) -> Result<Arc<CompiledPair>, SchemaCheckError> {
        let id = spec.id();
        if let Some(p) = lock::lock(&self.map).get(&id) {
            return Ok(p.clone());
        }
        let v = spec.value();
        let pair = Arc::new(CompiledPair {
            input: CompiledSchema::new(&v.input_schema)?,
            output: v.output_schema.as_ref().map(CompiledSchema::new).transpose()?,
        });
        let mut m = lock::lock(&self.map);
        if m.len() >= SCHEMA_CACHE_SIZE {
            m.clear();
        }
        m.insert(id, pair.clone());
        Ok(pair)
    }
}
