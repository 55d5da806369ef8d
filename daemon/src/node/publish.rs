//! Publishing and revoking: manifest → spec → sign → store → gossip → DHT.

use std::sync::Arc;

use atr_protocol::id::ByteBuf;
use atr_protocol::manifest::{Manifest, ManifestError};
use atr_protocol::revocation::{Revocation, RevocationKind, RevocationTarget, SignedRevocation};
use atr_protocol::signed::SignError;
use atr_protocol::wire::{self, WireObject};
use atr_protocol::{SignedSpec, ToolId};
use tracing::{debug, info, warn};

use super::NodeState;
use super::ingest::{self, IngestError, Ingested};
use super::sync::now_ms;
use crate::network;

/// Why a publish or revoke failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The manifest breaks a rule.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// Signing failed.
    #[error("cannot sign: {0}")]
    Sign(#[from] SignError),
    /// This publisher already has a different spec with this name and version.
    #[error("{name}@{version} is already published by this node as {existing}; bump the version")]
    VersionExists {
        /// Name.
        name: String,
        /// Version.
        version: String,
        /// The existing id.
        existing: ToolId,
    },
    /// Storing failed.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// The target of a revocation is unknown or not this node's.
    #[error("{0}")]
    NotRevocable(String),
    /// Internal failure.
    #[error("internal: {0}")]
    Internal(String),
}

/// Outcome of a publish.
#[derive(Debug, Clone)]
pub struct Published {
    /// The signed spec.
    pub spec: SignedSpec,
    /// False when the same spec already existed.
    pub created: bool,
}

/// Publishes a manifest whose schemas are inline.
pub async fn publish(
    state: &Arc<NodeState>,
    manifest: Manifest,
    file: String,
) -> Result<Published, PublishError> {
    let st = state.clone();
    // Pin the image: resolve the reference to the local image id, so the
    // published id always means exactly this code.
    let digest = match (&manifest.runtime.digest, &state.sandbox) {
        (None, Some(sb)) => match sb.resolve_image(&manifest.runtime.image).await {
            Ok(d) => Some(d),
            Err(e) => {
                return Err(PublishError::Manifest(ManifestError::Field {
                    file,
                    field: "runtime.image".into(),
                    rule: format!("cannot pin the image: {e}"),
                }));
            }
        },
        (Some(given), Some(sb)) => match sb.has_image(given).await {
            Ok(true) | Err(_) => None,
            Ok(false) => {
                return Err(PublishError::Manifest(ManifestError::Field {
                    file,
                    field: "runtime.digest".into(),
                    rule: format!(
                        "image {given} is not present on this node, so this node cannot provide it"
                    ),
                }));
            }
        },
        _ => None,
    };
    let res = state
        .blocking(move |s| publish_blocking(s, &manifest, &file, digest.as_deref()))
        .await
        .map_err(|e| PublishError::Internal(e.to_string()))?;
    let published = res?;
    if published.created {
        announce(&st, &published.spec).await;
    }
    Ok(published)
}

fn publish_blocking(
    state: &NodeState,
    manifest: &Manifest,
    file: &str,
    digest: Option<&str>,
) -> Result<Published, PublishError> {
    let me = state.public_key();
    let spec = manifest.to_spec(file, me, now_ms(), digest)?;
    {
        let cat = state
            .catalog
            .read()
            .map_err(|_| PublishError::Internal("catalog lock poisoned".into()))?;
        let q = atr_protocol::query::FindQuery {
            name: Some(spec.name.clone()),
            publisher: Some(me),
            include_revoked: true,
            limit: Some(atr_protocol::query::MAX_FIND_LIMIT),
            ..Default::default()
        };
        for e in cat.find(&q, None) {
            let existing = e.spec.value();
            if existing.version == spec.version {
                let mut same = spec.clone();
                same.created_at_ms = existing.created_at_ms;
                if &same == existing {
                    return Ok(Published {
                        spec: e.spec.clone(),
                        created: false,
                    });
                }
                return Err(PublishError::VersionExists {
                    name: spec.name.clone(),
                    version: spec.version.to_string(),
                    existing: e.spec.id(),
                });
            }
        }
    }
    let signed = SignedSpec::sign(spec, &state.identity.secret)?;
    let (signed, ingested) = ingest::store_spec_blocking(state, signed)?;
    info!(tool = %signed.id(), name = %signed.value().name, version = %signed.value().version, "published");
    Ok(Published {
        spec: signed,
        created: ingested == Ingested::New,
    })
}

/// Gossips a new spec and announces its DHT keys.
pub async fn announce(state: &Arc<NodeState>, spec: &SignedSpec) {
    let obj = WireObject::Spec(ByteBuf(spec.to_bytes()));
    match wire::encode_message(&obj) {
        Ok(bytes) => match state.net.publish(bytes).await {
            Ok(true) => debug!(tool = %spec.id(), "gossiped"),
            Ok(false) => info!(tool = %spec.id(), "no gossip peers yet; the spec will spread by sync"),
            Err(e) => warn!(tool = %spec.id(), error = %e, "gossip failed; the spec will spread by sync"),
        },
        Err(e) => warn!(error = %e, "cannot encode gossip"),
    }
    provide(state, spec).await;
}

/// Offers to run another publisher's spec (see [`super::provide::provide`]):
/// allowed only when the spec is stored, active, and this node holds exactly
/// the pinned image. Records the consent and announces the DHT keys.
pub async fn provide_foreign(state: &Arc<NodeState>, spec: &SignedSpec) -> Result<(), PublishError> {
    super::provide::provide(state, &spec.id())
        .await
        .map(|_| ())
        .map_err(|e| PublishError::NotRevocable(e.to_string()))
}

/// The DHT keys (tag shards and name shard) this node announces for a spec.
pub fn dht_keys(state: &NodeState, spec: &SignedSpec) -> Vec<Vec<u8>> {
    let v = spec.value();
    let me = state.public_key();
    let mut keys: Vec<Vec<u8>> = v.tags.iter().map(|t| network::tag_key(t, &me)).collect();
    keys.push(network::name_key(&v.name, &me));
    keys
}

/// Announces the DHT keys (tag shards and name shard) of a spec.
pub async fn provide(state: &Arc<NodeState>, spec: &SignedSpec) {
    for k in dht_keys(state, spec) {
        if let Err(e) = state.net.start_providing(k).await {
            warn!(error = %e, "DHT provide failed");
        }
    }
}

/// At start, re-announce the DHT keys of every active spec this node published
/// (provider records live in memory and must be renewed after a restart).
pub async fn reprovide_own(state: Arc<NodeState>) {
    let me = state.public_key();
    let specs: Vec<SignedSpec> = match state.catalog.read() {
        Ok(cat) => cat
            .iter()
            .filter(|(_, e)| e.spec.value().publisher == me && e.status.is_active())
            .map(|(_, e)| e.spec.clone())
            .collect(),
        Err(_) => return,
    };
    let mut seen = std::collections::HashSet::new();
    for s in &specs {
        if state.cancel.is_cancelled() {
            return;
        }
        let v = s.value();
        for k in v
            .tags
            .iter()
            .map(|t| network::tag_key(t, &me))
            .chain(std::iter::once(network::name_key(&v.name, &me)))
        {
            if seen.insert(k.clone())
                && let Err(e) = state.net.start_providing(k).await
            {
                warn!(error = %e, "DHT provide failed");
            }
        }
    }
}

/// Revokes (or deprecates) one id or every version of a name this node published.
pub async fn revoke(
    state: &Arc<NodeState>,
    target: RevocationTarget,
    kind: RevocationKind,
    reason: String,
    successor: Option<ToolId>,
) -> Result<(SignedRevocation, Vec<ToolId>), PublishError> {
    let me = state.public_key();
    {
        let cat = state
            .catalog
            .read()
            .map_err(|_| PublishError::Internal("catalog lock poisoned".into()))?;
        match &target {
            RevocationTarget::Id(id) => match cat.get(id) {
                None => return Err(PublishError::NotRevocable(format!("unknown tool id {id}"))),
                Some(e) if e.spec.value().publisher != me => {
                    return Err(PublishError::NotRevocable(format!(
                        "{id} was published by {}, not this node: only its publisher can revoke it",
                        e.spec.value().publisher
                    )));
                }
                Some(_) => {}
            },
            RevocationTarget::Name(n) => {
                let q = atr_protocol::query::FindQuery {
                    name: Some(n.clone()),
                    publisher: Some(me),
                    include_revoked: true,
                    ..Default::default()
                };
                if cat.find(&q, None).is_empty() {
                    return Err(PublishError::NotRevocable(format!(
                        "this node published no tool named `{n}`"
                    )));
                }
            }
            _ => return Err(PublishError::NotRevocable("unsupported target".into())),
        }
    }
    let rev = Revocation {
        v: atr_protocol::revocation::REVOCATION_FORMAT,
        kind,
        target,
        publisher: me,
        reason,
        successor,
        created_at_ms: now_ms(),
    };
    let signed = SignedRevocation::sign(rev, &state.identity.secret)?;
    let s2 = signed.clone();
    let (signed, _, affected) = state
        .blocking(move |s| ingest::store_revocation_blocking(s, s2))
        .await
        .map_err(|e| PublishError::Internal(e.to_string()))??;
    let obj = WireObject::Revocation(ByteBuf(signed.to_bytes()));
    if let Ok(bytes) = wire::encode_message(&obj)
        && let Err(e) = state.net.publish(bytes).await
    {
        warn!(error = %e, "gossip of revocation failed; it will spread by sync");
    }
    info!(revocation = %hex::encode(signed.hash()), affected = affected.len(), "revoked");
    Ok((signed, affected))
}
