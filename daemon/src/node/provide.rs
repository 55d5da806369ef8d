//! Operator consent to run other publishers' specs (`POST /v1/provide`).
//!
//! A node serves remote invocations only for specs it published itself and
//! for foreign specs its operator explicitly agreed to provide. Consent is
//! kept in the store (table `provided_v1`, at most
//! [`crate::store::MAX_PROVIDED`] rows), mirrored in
//! [`NodeState::provided`], re-announced at start, and dropped when the spec
//! is revoked.

use std::sync::Arc;

use atr_protocol::{SignedSpec, ToolId};
use tracing::{info, warn};

use super::{NodeState, publish};
use crate::catalog::Status;
use crate::store::StoreError;

/// Why a provide or unprovide was refused.
#[derive(Debug, thiserror::Error)]
pub enum ProvideError {
    /// The spec is not in this node's store.
    #[error("unknown tool id {0}: this node does not hold that spec (find or sync it first)")]
    UnknownTool(ToolId),
    /// The spec was revoked by its publisher.
    #[error("{0} was revoked by its publisher and cannot be provided")]
    Revoked(ToolId),
    /// The spec is this node's own; it is provided already.
    #[error("{0} was published by this node, which provides its own specs already")]
    OwnSpec(ToolId),
    /// The Docker sandbox is off, so this node runs no tools.
    #[error("this node cannot provide {0}: its sandbox is off, so it runs no tools")]
    SandboxOff(ToolId),
    /// The pinned image is not on this host.
    #[error("this node cannot provide {id}: it does not hold the pinned image {digest}; pull it first")]
    ImageMissing {
        /// The spec.
        id: ToolId,
        /// The pinned image digest.
        digest: String,
    },
    /// Consent to withdraw was never given.
    #[error("this node does not provide {0}")]
    NotProvided(ToolId),
    /// The consent table is full or unwritable.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Internal failure.
    #[error("internal: {0}")]
    Internal(String),
}

/// Looks up an active foreign spec by id.
fn active_foreign(state: &NodeState, id: &ToolId) -> Result<SignedSpec, ProvideError> {
    let cat = state
        .catalog
        .read()
        .map_err(|_| ProvideError::Internal("catalog lock poisoned".into()))?;
    let e = cat.get(id).ok_or(ProvideError::UnknownTool(*id))?;
    if matches!(e.status, Status::Revoked { .. }) {
        return Err(ProvideError::Revoked(*id));
    }
    if e.spec.value().publisher == state.public_key() {
        return Err(ProvideError::OwnSpec(*id));
    }
    Ok(e.spec.clone())
}

/// Agrees to run the foreign spec `id`: it must be stored, not revoked, and
/// its pinned image must be on this host. Records the consent durably and
/// announces the DHT keys. Returns the spec and whether consent was new.
pub async fn provide(state: &Arc<NodeState>, id: &ToolId) -> Result<(SignedSpec, bool), ProvideError> {
    let spec = active_foreign(state, id)?;
    let digest = spec.value().runtime.image_digest.clone();
    let Some(sb) = &state.sandbox else {
        return Err(ProvideError::SandboxOff(*id));
    };
    let held = match sb.has_image(&digest).await {
        Ok(h) => h,
        Err(e) => {
            warn!(tool = %id, error = %e, "cannot check for the pinned image");
            false
        }
    };
    if !held {
        return Err(ProvideError::ImageMissing { id: *id, digest });
    }
    let id2 = *id;
    let new = state
        .blocking(move |s| s.store.put_provided(&id2))
        .await
        .map_err(|e| ProvideError::Internal(e.to_string()))??;
    if let Ok(mut p) = state.provided.write() {
        p.insert(*id);
    }
    publish::provide(state, &spec).await;
    info!(tool = %id, name = %spec.value().name, new, "providing foreign spec");
    Ok((spec, new))
}

/// Stops announcing the DHT keys of `spec` that no spec this node still
/// serves (its own active ones and the remaining provided ones) shares.
fn stop_announcing(state: &NodeState, spec: &SignedSpec) {
    let mut keys: std::collections::HashSet<Vec<u8>> = publish::dht_keys(state, spec).into_iter().collect();
    let me = state.public_key();
    if let (Ok(cat), Ok(provided)) = (state.catalog.read(), state.provided.read()) {
        for (_, e) in cat.iter() {
            if keys.is_empty() {
                break;
            }
            let v = e.spec.value();
            let serves = e.status.is_active() && (v.publisher == me || provided.contains(&e.spec.id()));
            if serves {
                for k in publish::dht_keys(state, &e.spec) {
                    keys.remove(&k);
                }
            }
        }
    } else {
        return;
    }
    for k in keys {
        state.net.stop_providing(k);
    }
}

/// Withdraws consent to run `id`: this node stops serving invocations of it
/// at once and stops announcing its DHT keys (unless another spec it serves
/// shares them); records already on other nodes expire.
pub async fn unprovide(state: &Arc<NodeState>, id: &ToolId) -> Result<(), ProvideError> {
    let id2 = *id;
    let stored = state
        .blocking(move |s| s.store.remove_provided(&id2))
        .await
        .map_err(|e| ProvideError::Internal(e.to_string()))??;
    let in_memory = state.provided.write().map(|mut p| p.remove(id)).unwrap_or(false);
    if !stored && !in_memory {
        return Err(ProvideError::NotProvided(*id));
    }
    stop_announcing_id(state, id);
    info!(tool = %id, "stopped providing foreign spec");
    Ok(())
}

/// Stops announcing the stored spec `id` (nothing when it is not stored).
fn stop_announcing_id(state: &NodeState, id: &ToolId) {
    let spec = state
        .catalog
        .read()
        .ok()
        .and_then(|cat| cat.get(id).map(|e| e.spec.clone()));
    if let Some(spec) = spec {
        stop_announcing(state, &spec);
    }
}

/// The foreign specs this node provides, with their specs when stored.
pub fn provided(state: &NodeState) -> Result<Vec<(ToolId, Option<SignedSpec>)>, ProvideError> {
    let mut ids: Vec<ToolId> = state
        .provided
        .read()
        .map_err(|_| ProvideError::Internal("provided lock poisoned".into()))?
        .iter()
        .copied()
        .collect();
    ids.sort_by_key(|id| id.0);
    let cat = state
        .catalog
        .read()
        .map_err(|_| ProvideError::Internal("catalog lock poisoned".into()))?;
    Ok(ids
        .into_iter()
        .map(|id| {
            let spec = cat.get(&id).map(|e| e.spec.clone());
            (id, spec)
        })
        .collect())
}

/// Drops consent for specs a revocation just revoked (blocking; called with
/// the ids the revocation affected).
pub fn drop_revoked_blocking(state: &NodeState, revoked: &[ToolId]) {
    for id in revoked {
        let in_memory = state.provided.write().map(|mut p| p.remove(id)).unwrap_or(false);
        match state.store.remove_provided(id) {
            Ok(stored) if stored || in_memory => {
                stop_announcing_id(state, id);
                info!(tool = %id, "spec revoked; stopped providing it");
            }
            Ok(_) => {}
            Err(e) => warn!(tool = %id, error = %e, "cannot drop consent for a revoked spec"),
        }
    }
}

/// At start: loads the stored consent into memory (dropping consent for
/// specs revoked meanwhile) and re-announces the DHT keys of the provided
/// specs, like [`publish::reprovide_own`].
pub async fn reprovide_foreign(state: Arc<NodeState>) {
    let ids = match state.blocking(|s| s.store.provided_ids()).await {
        Ok(Ok(ids)) => ids,
        Ok(Err(e)) => {
            warn!(error = %e, "cannot load provided specs");
            return;
        }
        Err(e) => {
            warn!(error = %e, "cannot load provided specs");
            return;
        }
    };
    let mut specs = Vec::new();
    let mut revoked = Vec::new();
    if let Ok(cat) = state.catalog.read() {
        for id in &ids {
            match cat.get(id) {
                Some(e) if matches!(e.status, Status::Revoked { .. }) => revoked.push(*id),
                Some(e) => specs.push(e.spec.clone()),
                None => {}
            }
        }
    }
    if let Ok(mut p) = state.provided.write() {
        p.extend(ids.iter().copied().filter(|id| !revoked.contains(id)));
    }
    if !revoked.is_empty() {
        let _ = state
            .blocking(move |s| {
                drop_revoked_blocking(s, &revoked);
            })
            .await;
    }
    info!(count = specs.len(), "re-announcing provided foreign specs");
    for s in &specs {
        if state.cancel.is_cancelled() {
            return;
        }
        publish::provide(&state, s).await;
    }
}
