//! Taking in signed objects from peers (gossip, sync, fetch) and from this
//! node itself: verify fully, then store, then index — or refuse with a
//! reason that says whether the sender is to blame.

use std::sync::Arc;

use atr_protocol::signed::VerifyError;
use atr_protocol::wire::{self, WireObject};
use atr_protocol::{SignedRevocation, SignedSpec, ToolId};
use libp2p::PeerId;
use libp2p::gossipsub::{MessageAcceptance, MessageId};
use tracing::{debug, info, warn};

use super::NodeState;
use crate::catalog::RevocationRejected;
use crate::metrics;
use crate::store::{Put, StoreError};

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    /// Stored for the first time.
    New,
    /// Already known.
    Known,
}

/// Why an object was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// The bytes are not a valid object: the sender is to blame.
    #[error("invalid {kind}: {source}")]
    Invalid {
        /// Object kind.
        kind: &'static str,
        /// Why.
        #[source]
        source: VerifyError,
    },
    /// A revocation not signed by the target's publisher: the sender is to blame.
    #[error("revocation rejected: {0}")]
    Revocation(#[from] RevocationRejected),
    /// The store refused (full, I/O): not the sender's fault.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Internal failure.
    #[error("internal: {0}")]
    Internal(String),
}

impl IngestError {
    /// Whether the peer that sent it should be penalized.
    pub fn blames_sender(&self) -> bool {
        // A forged revocation is provable only against its author (a relayer
        // may not have known the target when it accepted it); a full pending
        // table is this node's own limit.
        matches!(self, Self::Invalid { .. })
    }

    /// Whether the object is provably bad (reject it on gossip), even if
    /// the forwarding peer may be honest.
    pub fn is_bad_object(&self) -> bool {
        matches!(
            self,
            Self::Invalid { .. } | Self::Revocation(RevocationRejected::NotPublisher { .. })
        )
    }
    /// A short reason for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Invalid { .. } => "invalid_object",
            Self::Revocation(_) => "revocation_not_publisher",
            Self::Store(_) => "store",
            Self::Internal(_) => "internal",
        }
    }
}

/// Verifies and stores a spec (blocking: call from `spawn_blocking`).
pub fn spec_blocking(state: &NodeState, envelope: &[u8]) -> Result<(SignedSpec, Ingested), IngestError> {
    let spec =
        SignedSpec::from_bytes(envelope).map_err(|source| IngestError::Invalid { kind: "spec", source })?;
    store_spec_blocking(state, spec)
}

/// Stores and indexes an already verified spec (blocking).
pub fn store_spec_blocking(
    state: &NodeState,
    spec: SignedSpec,
) -> Result<(SignedSpec, Ingested), IngestError> {
    let mut cat = state
        .catalog
        .write()
        .map_err(|_| IngestError::Internal("catalog lock poisoned".into()))?;
    if cat.get(&spec.id()).is_some() {
        return Ok((spec, Ingested::Known));
    }
    let put = state.store.put_spec(&spec)?;
    cat.insert_spec(spec.clone());
    // A pending revocation of this spec signed by someone else is now known
    // to be forged: drop it so sync never offers it again.
    for forged in cat.take_rejected_revocations() {
        warn!(revocation = %hex::encode(forged), "pending revocation was not signed by the publisher; removed");
        state.store.remove_revocation(&forged)?;
    }
    if put == Put::Inserted {
        metrics::SPECS_STORED.inc();
        info!(target: "atr::_events::spec::stored", tool = %spec.id(), name = %spec.value().name, version = %spec.value().version, "spec stored");
    }
    Ok((spec, Ingested::New))
}

/// Verifies, checks against the catalog and stores a revocation (blocking).
pub fn revocation_blocking(
    state: &NodeState,
    envelope: &[u8],
) -> Result<(SignedRevocation, Ingested, Vec<ToolId>), IngestError> {
    let rev = SignedRevocation::from_bytes(envelope).map_err(|source| IngestError::Invalid {
        kind: "revocation",
        source,
    })?;
    store_revocation_blocking(state, rev)
}

/// Applies and stores a verified revocation (blocking); returns the specs it affected.
pub fn store_revocation_blocking(
    state: &NodeState,
    rev: SignedRevocation,
) -> Result<(SignedRevocation, Ingested, Vec<ToolId>), IngestError> {
    let mut cat = state
        .catalog
        .write()
        .map_err(|_| IngestError::Internal("catalog lock poisoned".into()))?;
    if state.store.has_object(&rev.hash())? {
        return Ok((rev, Ingested::Known, Vec::new()));
    }
    // Stored first, so the node never acts on a revocation it did not keep;
    // undone if the catalog refuses it.
    state.store.put_revocation(&rev)?;
    let affected = match cat.apply_revocation(&rev) {
        Ok(a) => a,
        Err(e) => {
            state.store.remove_revocation(&rev.hash())?;
            return Err(e.into());
        }
    };
    let revoked: Vec<ToolId> = affected
        .iter()
        .filter(|id| {
            cat.get(id)
                .is_some_and(|e| matches!(e.status, crate::catalog::Status::Revoked { .. }))
        })
        .copied()
        .collect();
    drop(cat);
    if !revoked.is_empty() {
        super::provide::drop_revoked_blocking(state, &revoked);
    }
    metrics::REVOCATIONS_STORED.inc();
    info!(target: "atr::_events::revocation::stored", revocation = %hex::encode(rev.hash()), affected = affected.len(), "revocation stored");
    Ok((rev, Ingested::New, affected))
}

/// Verifies and stores any wire object (blocking).
pub fn object_blocking(state: &NodeState, obj: &WireObject) -> Result<([u8; 32], Ingested), IngestError> {
    match obj {
        WireObject::Spec(b) => spec_blocking(state, &b.0).map(|(s, i)| (s.hash(), i)),
        WireObject::Revocation(b) => revocation_blocking(state, &b.0).map(|(r, i, _)| (r.hash(), i)),
        _ => Err(IngestError::Internal("unknown object kind".into())),
    }
}

/// Handles one gossip message: decode, verify, store, then report the verdict.
pub async fn on_gossip(
    state: &Arc<NodeState>,
    source: PeerId,
    author: Option<PeerId>,
    message_id: MessageId,
    data: Vec<u8>,
) {
    let obj: WireObject = match wire::decode_message(&data, wire::MAX_GOSSIP_BYTES, "gossip") {
        Ok(o) => o,
        Err(e) => {
            debug!(peer = %source, error = %e, "undecodable gossip");
            reject(state, source, message_id, "undecodable_gossip");
            return;
        }
    };
    let result = state.blocking(move |s| object_blocking(s, &obj)).await;
    match result {
        Ok(Ok((_, ingested))) => {
            metrics::GOSSIP_VERDICTS.with_label("accept").inc();
            if ingested == Ingested::New {
                debug!(peer = %source, "gossip object accepted");
            }
            state.net.verdict(message_id, source, MessageAcceptance::Accept);
        }
        Ok(Err(e)) if e.blames_sender() || (e.is_bad_object() && author == Some(source)) => {
            warn!(peer = %source, error = %e, "gossip object rejected");
            reject(state, source, message_id, e.reason());
        }
        Ok(Err(e)) if e.is_bad_object() => {
            warn!(peer = %source, error = %e, "gossip object rejected (relayed; its author is penalized by scoring)");
            metrics::GOSSIP_VERDICTS.with_label("reject").inc();
            state.net.verdict(message_id, source, MessageAcceptance::Reject);
        }
        Ok(Err(e)) => {
            warn!(peer = %source, error = %e, "gossip object ignored");
            metrics::GOSSIP_VERDICTS.with_label("ignore").inc();
            state.net.verdict(message_id, source, MessageAcceptance::Ignore);
        }
        Err(e) => {
            warn!(error = %e, "gossip task failed");
            state.net.verdict(message_id, source, MessageAcceptance::Ignore);
        }
    }
}

fn reject(state: &NodeState, source: PeerId, message_id: MessageId, reason: &'static str) {
    metrics::GOSSIP_VERDICTS.with_label("reject").inc();
    state.net.verdict(message_id, source, MessageAcceptance::Reject);
    state.net.penalize(source, reason);
}
