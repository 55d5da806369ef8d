//! Peer-to-peer messages: gossip, fetch, anti-entropy sync and invoke.
//!
//! Every message is canonical CBOR of the serde types below, decoded with
//! [`decode_message`] under a per-message cap before anything else looks at
//! it. Protocol names carry the version (`/atr/fetch/1`); enums are
//! `#[non_exhaustive]` so variants can be added under a new protocol version,
//! and an unknown variant from a peer is a decode error, counted against it.
//!
//! Signed objects travel as their envelope bytes ([`crate::Signed::to_bytes`])
//! and are verified by the receiver; the wire layer never trusts them.

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::cbor::{self, DecodeError, EncodeError};
use crate::id::{ByteBuf, InvocationId, ToolId};
use crate::limits::{MAX_ENVELOPE_BYTES, MAX_INPUT_BYTES, MAX_OUTPUT_BYTES, MAX_RECEIPT_BYTES};

/// Gossipsub topic of spec and revocation announcements.
pub const GOSSIP_TOPIC: &str = "atr/objects/1";
/// Kademlia protocol name (never the IPFS DHT's).
pub const KAD_PROTOCOL: &str = "/atr/kad/1.0.0";
/// Request-response protocol for fetching objects by hash.
pub const FETCH_PROTOCOL: &str = "/atr/fetch/1";
/// Request-response protocol for anti-entropy summaries.
pub const SYNC_PROTOCOL: &str = "/atr/sync/1";
/// Request-response protocol for invocations.
pub const INVOKE_PROTOCOL: &str = "/atr/invoke/1";
/// Request-response protocol for listing the ids of the specs a peer holds
/// with a tag or name (network find asks this first, then fetches by id
/// only the bodies it lacks).
pub const INDEX_PROTOCOL: &str = "/atr/index/1";

/// Cap of one gossip message: one envelope and its tag.
pub const MAX_GOSSIP_BYTES: usize = MAX_ENVELOPE_BYTES + 64;
/// Most ids in one fetch request (as many as one response may carry, so
/// a catching-up node needs few requests).
pub const MAX_FETCH_IDS: usize = MAX_FETCH_OBJECTS;
/// Cap of a fetch request.
pub const MAX_FETCH_REQUEST_BYTES: usize = MAX_FETCH_IDS * 40 + 64;
/// Most objects in one fetch response.
pub const MAX_FETCH_OBJECTS: usize = 512;
/// Cap of a fetch response; a responder stops adding objects before it.
pub const MAX_FETCH_RESPONSE_BYTES: usize = 4 * 1024 * 1024;
/// Number of anti-entropy buckets (first byte of the object hash).
pub const SYNC_BUCKETS: usize = 256;
/// Cap of a sync request: 256 digests of 32 bytes plus framing.
pub const MAX_SYNC_REQUEST_BYTES: usize = SYNC_BUCKETS * 40 + 64;
/// Most object refs in one sync response (≈ 40 buckets' worth at 100 000
/// objects); the rest wait for the next round.
pub const MAX_SYNC_REFS: usize = 16_384;
/// Cap of a sync response.
pub const MAX_SYNC_RESPONSE_BYTES: usize = MAX_SYNC_REFS * 40 + 64;
/// Most ids in one index response (a responder lists at most
/// [`crate::query::MAX_FIND_LIMIT`]).
pub const MAX_INDEX_IDS: usize = 1024;
/// Cap of an index request: the longest tag or name plus framing.
pub const MAX_INDEX_REQUEST_BYTES: usize = 128;
/// Cap of an index response.
pub const MAX_INDEX_RESPONSE_BYTES: usize = MAX_INDEX_IDS * 40 + 64;
/// Cap of an invoke request: the input plus ids.
pub const MAX_INVOKE_REQUEST_BYTES: usize = MAX_INPUT_BYTES + 256;
/// Cap of an invoke response: the output plus a receipt.
pub const MAX_INVOKE_RESPONSE_BYTES: usize = MAX_OUTPUT_BYTES as usize + MAX_RECEIPT_BYTES + 1024;

/// Why a peer message was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Bytes could not be decoded into the expected message.
    #[error("bad {what} message: {source}")]
    Decode {
        /// Message kind.
        what: &'static str,
        /// Decoder's finding.
        #[source]
        source: DecodeError,
    },
    /// The message breaks a count limit.
    #[error("bad {what} message: {detail}")]
    Limit {
        /// Message kind.
        what: &'static str,
        /// Which limit.
        detail: String,
    },
}

/// A signed object in transit (gossip or fetch): its envelope bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum WireObject {
    /// A [`crate::SignedSpec`] envelope.
    Spec(ByteBuf),
    /// A [`crate::SignedRevocation`] envelope.
    Revocation(ByteBuf),
    /// A [`crate::SignedDelegation`] envelope.
    Delegation(ByteBuf),
}

impl WireObject {
    /// The kind, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Spec(_) => "spec",
            Self::Revocation(_) => "revocation",
            Self::Delegation(_) => "delegation",
        }
    }
    /// The envelope bytes.
    pub fn envelope(&self) -> &[u8] {
        match self {
            Self::Spec(b) | Self::Revocation(b) | Self::Delegation(b) => &b.0,
        }
    }
}

/// A gossip announcement: one signed object, whole (specs are capped well
/// below gossipsub's transmit size, so no second round trip is needed).
pub type GossipMessage = WireObject;

/// Ask a peer for objects: by hash (a spec's hash is its [`ToolId`]), or
/// every active spec it holds with a tag or a name (DHT discovery: the
/// providers of a tag key are asked which specs they have).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum FetchRequest {
    /// Up to [`MAX_FETCH_IDS`] hashes.
    Ids(Vec<ToolId>),
    /// Specs with this tag.
    Tag(String),
    /// Specs with this name.
    Name(String),
}

/// The objects a peer has among those asked for; missing ones are left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchResponse {
    /// Envelopes, at most [`MAX_FETCH_RESPONSE_BYTES`] in all.
    pub objects: Vec<WireObject>,
}

/// Ask a peer which active specs it holds with a tag or a name: ids only,
/// so the asker fetches ([`FetchRequest::Ids`]) just the bodies it lacks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum IndexRequest {
    /// Specs with this tag.
    Tag(String),
    /// Specs with this name.
    Name(String),
}

/// The ids of the responder's active specs with the tag or name asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexResponse {
    /// Spec ids, at most [`MAX_INDEX_IDS`].
    pub ids: Vec<ToolId>,
    /// True when the responder may hold more than it listed.
    pub truncated: bool,
}

/// One side's anti-entropy summary: for each of the [`SYNC_BUCKETS`] buckets
/// (objects grouped by the first byte of their hash), blake3 of `atr-sync-bucket-v1` followed by the
/// sorted hashes
/// it holds. Equal digests mean (with overwhelming probability) equal sets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    /// Exactly [`SYNC_BUCKETS`] digests of 32 bytes.
    pub digests: Vec<ByteBuf>,
}

/// The responder's objects in the buckets whose digests differ.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncResponse {
    /// Hashes of the responder's objects in differing buckets.
    pub ids: Vec<ToolId>,
    /// True when more refs were left out; the requester asks again next round.
    pub truncated: bool,
}

/// Ask a provider to run a tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvokeRequest {
    /// Caller-chosen random id; providers refuse a replayed id.
    pub invocation: InvocationId,
    /// The tool.
    pub tool: ToolId,
    /// The input, JSON bytes (one object).
    pub input: ByteBuf,
}

/// Why a provider refused an invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Refusal {
    /// The provider does not know the tool id.
    UnknownTool,
    /// The publisher revoked the tool.
    Revoked,
    /// The provider does not hold the pinned image.
    ImageMissing,
    /// The input does not match the input schema.
    InvalidInput,
    /// The caller is not allowed.
    Denied,
    /// The invocation id was already used.
    Replay,
    /// The provider failed before running the tool.
    Internal,
}

/// A provider's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum InvokeResponse {
    /// The tool ran (successfully or not): the output bytes and the signed receipt.
    Done {
        /// Output JSON bytes (an error object when the tool failed).
        output: ByteBuf,
        /// [`crate::SignedReceipt`] envelope.
        receipt: ByteBuf,
    },
    /// All sandbox slots are taken; try another provider.
    Busy {
        /// Suggested wait, milliseconds.
        retry_after_ms: u64,
    },
    /// Refused before running.
    Refused {
        /// Why.
        reason: Refusal,
        /// Details for people.
        detail: String,
    },
}

/// Encodes a message canonically.
pub fn encode_message<T: Serialize>(msg: &T) -> Result<Vec<u8>, EncodeError> {
    cbor::to_canonical(msg)
}

/// Decodes a message of kind `what` under the cap `max`.
pub fn decode_message<T: DeserializeOwned>(
    bytes: &[u8],
    max: usize,
    what: &'static str,
) -> Result<T, WireError> {
    cbor::from_canonical(bytes, max).map_err(|source| WireError::Decode { what, source })
}

impl FetchRequest {
    /// Decodes and checks the id count.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let r: Self = decode_message(bytes, MAX_FETCH_REQUEST_BYTES, "fetch request")?;
        let bad = |detail: String| WireError::Limit {
            what: "fetch request",
            detail,
        };
        match &r {
            Self::Ids(ids) if ids.len() > MAX_FETCH_IDS => {
                return Err(bad(format!("{} ids, more than {MAX_FETCH_IDS}", ids.len())));
            }
            Self::Tag(t) => crate::validate::check_tag(t).map_err(|e| bad(e.to_string()))?,
            Self::Name(n) => crate::validate::check_name(n).map_err(|e| bad(e.to_string()))?,
            _ => {}
        }
        Ok(r)
    }
}

impl IndexRequest {
    /// Decodes and checks the tag or name syntax.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let r: Self = decode_message(bytes, MAX_INDEX_REQUEST_BYTES, "index request")?;
        let bad = |detail: String| WireError::Limit {
            what: "index request",
            detail,
        };
        match &r {
            Self::Tag(t) => crate::validate::check_tag(t).map_err(|e| bad(e.to_string()))?,
            Self::Name(n) => crate::validate::check_name(n).map_err(|e| bad(e.to_string()))?,
        }
        Ok(r)
    }
}

impl IndexResponse {
    /// Decodes and checks the id count.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let r: Self = decode_message(bytes, MAX_INDEX_RESPONSE_BYTES, "index response")?;
        if r.ids.len() > MAX_INDEX_IDS {
            return Err(WireError::Limit {
                what: "index response",
                detail: format!("{} ids, more than {MAX_INDEX_IDS}", r.ids.len()),
            });
        }
        Ok(r)
    }
}

impl SyncRequest {
    /// Decodes and checks the digest count and sizes.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let r: Self = decode_message(bytes, MAX_SYNC_REQUEST_BYTES, "sync request")?;
        if r.digests.len() != SYNC_BUCKETS || r.digests.iter().any(|d| d.0.len() != 32) {
            return Err(WireError::Limit {
                what: "sync request",
                detail: format!("expected {SYNC_BUCKETS} digests of 32 bytes"),
            });
        }
        Ok(r)
    }
}

impl SyncResponse {
    /// Decodes and checks the ref count.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let r: Self = decode_message(bytes, MAX_SYNC_RESPONSE_BYTES, "sync response")?;
        if r.ids.len() > MAX_SYNC_REFS {
            return Err(WireError::Limit {
                what: "sync response",
                detail: format!("{} refs, more than {MAX_SYNC_REFS}", r.ids.len()),
            });
        }
        Ok(r)
    }
}

impl InvokeRequest {
    /// Decodes an invoke request under its cap.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        decode_message(bytes, MAX_INVOKE_REQUEST_BYTES, "invoke request")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_canonically() {
        let m = FetchRequest::Ids(vec![ToolId([1; 32]), ToolId([2; 32])]);
        let b = encode_message(&m).unwrap();
        assert_eq!(FetchRequest::decode(&b).unwrap(), m);
        let g = WireObject::Spec(ByteBuf(vec![1, 2, 3]));
        let b = encode_message(&g).unwrap();
        assert_eq!(hex::encode(&b), "a16473706563".to_owned() + "43010203");
        let back: WireObject = decode_message(&b, MAX_GOSSIP_BYTES, "gossip").unwrap();
        assert_eq!(back, g);
    }

    #[test]
    fn hostile_messages_are_refused() {
        let too_many = FetchRequest::Ids(vec![ToolId([0; 32]); MAX_FETCH_IDS + 1]);
        let b = encode_message(&too_many).unwrap();
        assert!(FetchRequest::decode(&b).is_err());
        let bad_tag = encode_message(&FetchRequest::Tag("NOT A TAG".into())).unwrap();
        assert!(FetchRequest::decode(&bad_tag).is_err());
        // unknown variant
        let unknown = cbor::to_canonical(&std::collections::BTreeMap::from([("worm", 1)])).unwrap();
        assert!(matches!(
            decode_message::<WireObject>(&unknown, MAX_GOSSIP_BYTES, "gossip"),
            Err(WireError::Decode { .. })
        ));
        // oversized
        let big = vec![0u8; MAX_GOSSIP_BYTES + 1];
        assert!(matches!(
            decode_message::<WireObject>(&big, MAX_GOSSIP_BYTES, "gossip"),
            Err(WireError::Decode {
                source: DecodeError::TooLarge { .. },
                ..
            })
        ));
        let short = SyncRequest {
            digests: vec![ByteBuf(vec![0; 32]); 3],
        };
        assert!(SyncRequest::decode(&encode_message(&short).unwrap()).is_err());
    }
}
