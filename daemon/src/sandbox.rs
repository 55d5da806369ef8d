//! The sandbox a node runs tools in: [`atr_sandbox::runner`], shared with `atr tool test` so
//! that a tool author tests exactly what a node runs. Re-exported here so that the node's
//! modules name it `crate::sandbox`.

pub use atr_sandbox::runner::*;
