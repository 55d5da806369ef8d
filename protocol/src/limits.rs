//! Every limit of the protocol, named, with the reason for its value.
//!
//! Decoders check these *before* allocating or parsing.

/// Largest canonical encoding of one tool spec body. Specs travel whole in
/// gossip messages, so they must stay well below gossipsub's transmit cap.
pub const MAX_SPEC_BYTES: usize = 64 * 1024;
/// Largest signed envelope of any object: the body cap plus room for the
/// 64-byte signature and the envelope's own framing.
pub const MAX_ENVELOPE_BYTES: usize = MAX_SPEC_BYTES + 256;
/// Largest revocation body: a name, a reason and a few ids.
pub const MAX_REVOCATION_BYTES: usize = 2 * 1024;
/// Largest delegation body: two keys, a name or id and two times.
pub const MAX_DELEGATION_BYTES: usize = 1024;
/// Largest receipt body: hashes, times and limits, no payloads.
pub const MAX_RECEIPT_BYTES: usize = 2 * 1024;
/// Deepest nesting of CBOR arrays and maps accepted by the decoder. JSON
/// Schemas nest objects; 32 levels is far beyond any real tool schema and
/// keeps recursion bounded.
pub const MAX_DEPTH: usize = 32;
/// Longest tool name: the OpenAI and Anthropic function-name limit.
pub const MAX_NAME_LEN: usize = 64;
/// Longest description, in bytes. Agents read it on every call, so it stays short.
pub const MAX_DESCRIPTION_LEN: usize = 4 * 1024;
/// Most tags on one tool: each tag is a DHT provider key the node announces.
pub const MAX_TAGS: usize = 16;
/// Longest tag.
pub const MAX_TAG_LEN: usize = 32;
/// Largest JSON encoding of one schema (input or output).
pub const MAX_SCHEMA_BYTES: usize = 24 * 1024;
/// Most JSON items (values of any kind: objects, arrays, strings, numbers,
/// booleans, nulls) in a spec's schemas and examples together. Bytes alone
/// do not bound the memory of a parsed value: an array of zeros costs ~32
/// bytes of RAM per byte of CBOR. A real tool schema has tens to a few
/// hundred items; 4096 leaves ample room and bounds a parsed spec to a few
/// hundred KiB.
pub const MAX_SPEC_JSON_ITEMS: usize = 4096;
/// Most `[[examples]]` entries.
pub const MAX_EXAMPLES: usize = 8;
/// Largest JSON encoding of one example (input and output together).
pub const MAX_EXAMPLE_BYTES: usize = 4 * 1024;
/// Longest image reference, command argument, working dir, homepage or license.
pub const MAX_SHORT_TEXT: usize = 256;
/// Most command arguments.
pub const MAX_COMMAND_ARGS: usize = 32;
/// Longest revocation or deprecation reason.
pub const MAX_REASON_LEN: usize = 512;
/// Largest JSON input accepted for one invocation.
pub const MAX_INPUT_BYTES: usize = 1024 * 1024;
/// Most schema violations reported for one input; the rest are counted.
pub const MAX_REPORTED_VIOLATIONS: usize = 32;

/// Default wall-clock limit of one invocation, in milliseconds (10 s).
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// Hard maximum wall-clock limit, in milliseconds (120 s).
pub const MAX_TIMEOUT_MS: u64 = 120_000;
/// Default memory limit, in bytes (128 MiB); swap is set equal (no swap).
pub const DEFAULT_MEMORY_BYTES: u64 = 128 * 1024 * 1024;
/// Hard maximum memory limit, in bytes (2 GiB).
pub const MAX_MEMORY_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// Smallest memory limit Docker accepts, in bytes (6 MiB).
pub const MIN_MEMORY_BYTES: u64 = 6 * 1024 * 1024;
/// Default CPU share, in thousandths of a core (0.5 core).
pub const DEFAULT_CPU_MILLIS: u32 = 500;
/// Hard maximum CPU share, in thousandths of a core (2 cores).
pub const MAX_CPU_MILLIS: u32 = 2_000;
/// Default process limit inside the sandbox (stops fork bombs).
pub const DEFAULT_PIDS: u32 = 32;
/// Hard maximum process limit.
pub const MAX_PIDS: u32 = 512;
/// Default cap on a tool's JSON output, in bytes (1 MiB).
pub const DEFAULT_MAX_OUTPUT_BYTES: u64 = 1024 * 1024;
/// Hard maximum output cap, in bytes (8 MiB): the invoke response must fit
/// one request-response message.
pub const MAX_OUTPUT_BYTES: u64 = 8 * 1024 * 1024;

/// Most egress entries in one spec: each is checked on every proxied connection.
pub const MAX_EGRESS_RULES: usize = 32;
/// Longest egress host (a DNS name is at most 253 characters).
pub const MAX_HOST_LEN: usize = 253;
/// Most secrets one tool may need.
pub const MAX_SECRETS: usize = 16;
/// Longest secret name.
pub const MAX_SECRET_NAME_LEN: usize = 64;
/// Smallest scratch space, bytes (1 MiB).
pub const MIN_SCRATCH_BYTES: u64 = 1024 * 1024;
/// Largest scratch space, bytes (256 MiB): tmpfs pages count against the host's memory.
pub const MAX_SCRATCH_BYTES: u64 = 256 * 1024 * 1024;
