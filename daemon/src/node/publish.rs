//! Publishing and revoking: manifest → spec → sign → store → gossip → DHT.

use atr_protocol::delegation::{Delegation, DelegationScope};
use atr_protocol::id::ByteBuf;
use atr_protocol::manifest::{Manifest, ManifestError};
use atr_protocol::revocation::{Revocation, RevocationKind, RevocationTarget, SignedRevocation};
use atr_protocol::signed::SignError;
use atr_protocol::wire::{self, WireObject};
use atr_protocol::{PublicKey, SignedDelegation, SignedSpec, ToolId};
use tracing::{debug, info, warn};

use super::ingest::{Ingest, IngestError, Ingested};
use crate::announce::Announcer;
use crate::identity::Identity;
use crate::network::NetworkHandle;
use crate::repo::Repo;
use crate::sandbox::Sandbox;
use crate::time::now_ms;

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
    /// The tool of a delegation is unknown or not this node's.
    #[error("{0}")]
    NotDelegable(String),
    /// The image's own configuration is refused (`atr_sandbox::image_policy`).
    #[error("runtime.image: {0}")]
    ImageRefused(String),
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

/// Publishes and revokes this node's specs.
#[derive(Clone)]
pub struct Publisher {
    repo: Repo,
    ingest: Ingest,
    announcer: Announcer,
    net: NetworkHandle,
    identity: Identity,
    sandbox: Option<Sandbox>,
}

impl Publisher {
    /// A publisher signing with `identity`; `sandbox` pins image references.
    pub fn new(
        repo: Repo,
        ingest: Ingest,
        announcer: Announcer,
        net: NetworkHandle,
        identity: Identity,
        sandbox: Option<Sandbox>,
    ) -> Self {
        Self {
            repo,
            ingest,
            announcer,
            net,
            identity,
            sandbox,
        }
    }

    /// Publishes a manifest whose schemas are inline.
    pub async fn publish(&self, manifest: Manifest, file: String) -> Result<Published, PublishError> {
        // Pin the image: resolve the reference to the local image id, so the
        // published id always means exactly this code.
        let digest = match (&manifest.runtime.digest, &self.sandbox) {
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
        if let Some(sb) = &self.sandbox {
            let image = digest.as_deref().or(manifest.runtime.digest.as_deref());
            if let Some(image) = image
                && let Some(why) = sb.image_refusal(image).await
            {
                return Err(PublishError::ImageRefused(why));
            }
        }
        let me = self.clone();
        let published = self
            .repo
            .blocking(move |_| me.publish_blocking(&manifest, &file, digest.as_deref()))
            .await
            .map_err(|e| PublishError::Internal(e.to_string()))??;
        if published.created {
            self.gossip_and_announce(&published.spec).await;
        }
        Ok(published)
    }

    fn publish_blocking(
        &self,
        manifest: &Manifest,
        file: &str,
        digest: Option<&str>,
    ) -> Result<Published, PublishError> {
        let me = self.repo.me();
        let spec = manifest.to_spec(file, me, now_ms(), digest)?;
        let q = atr_protocol::query::FindQuery {
            name: Some(spec.name.clone()),
            publisher: Some(me),
            include_revoked: true,
            limit: Some(atr_protocol::query::MAX_FIND_LIMIT),
            ..Default::default()
        };
        // Only specs of the same version are decoded whole.
        let existing: Vec<crate::catalog::SpecRef> = self.repo.read(|cat| {
            cat.find(&q, None)
                .into_iter()
                .filter(|e| e.spec.value().version == spec.version)
                .map(|e| e.spec.clone())
                .collect()
        });
        for r in existing {
            let Ok(e) = r.signed() else { continue };
            let old = e.value();
            if old.version == spec.version {
                let mut same = spec.clone();
                same.created_at_ms = old.created_at_ms;
                if &same == old {
                    return Ok(Published {
                        spec: e.clone(),
                        created: false,
                    });
                }
                return Err(PublishError::VersionExists {
                    name: spec.name.clone(),
                    version: spec.version.to_string(),
                    existing: e.id(),
                });
            }
        }
        let signed = SignedSpec::sign(spec, &self.identity.secret)?;
        let (signed, ingested) = self.ingest.store_spec(signed)?;
        info!(tool = %signed.id(), name = %signed.value().name, version = %signed.value().version, "published");
        Ok(Published {
            spec: signed,
            created: ingested == Ingested::New,
        })
    }

    /// Gossips a new spec and announces its DHT keys.
    async fn gossip_and_announce(&self, spec: &SignedSpec) {
        let obj = WireObject::Spec(ByteBuf(spec.to_bytes()));
        match wire::encode_message(&obj) {
            Ok(bytes) => match self.net.publish(bytes).await {
                Ok(true) => debug!(tool = %spec.id(), "gossiped"),
                Ok(false) => info!(tool = %spec.id(), "no gossip peers yet; the spec will spread by sync"),
                Err(e) => warn!(tool = %spec.id(), error = %e, "gossip failed; the spec will spread by sync"),
            },
            Err(e) => warn!(error = %e, "cannot encode gossip"),
        }
        self.announcer.announce(spec).await;
    }

    /// Revokes (or deprecates) one id or every version of a name this node published.
    pub async fn revoke(
        &self,
        target: RevocationTarget,
        kind: RevocationKind,
        reason: String,
        successor: Option<ToolId>,
    ) -> Result<(SignedRevocation, Vec<ToolId>), PublishError> {
        let me = self.repo.me();
        match &target {
            RevocationTarget::Id(id) => self.check_own(Some(id), None),
            RevocationTarget::Name(n) => self.check_own(None, Some(n)),
            _ => Err("unsupported target".into()),
        }
        .map_err(PublishError::NotRevocable)?;
        let rev = Revocation {
            v: atr_protocol::revocation::REVOCATION_FORMAT,
            kind,
            target,
            publisher: me,
            reason,
            successor,
            created_at_ms: now_ms(),
        };
        let signed = SignedRevocation::sign(rev, &self.identity.secret)?;
        let ingest = self.ingest.clone();
        let (signed, _, affected) = self
            .repo
            .blocking(move |_| ingest.store_revocation(signed))
            .await
            .map_err(|e| PublishError::Internal(e.to_string()))??;
        let obj = WireObject::Revocation(ByteBuf(signed.to_bytes()));
        if let Ok(bytes) = wire::encode_message(&obj)
            && let Err(e) = self.net.publish(bytes).await
        {
            warn!(error = %e, "gossip of revocation failed; it will spread by sync");
        }
        info!(revocation = %hex::encode(signed.hash()), affected = affected.len(), "revoked");
        Ok((signed, affected))
    }

    /// Whether this node published the spec `id`, or a spec named `name`;
    /// if not, why (for the caller's error).
    fn check_own(&self, id: Option<&ToolId>, name: Option<&str>) -> Result<(), String> {
        let me = self.repo.me();
        self.repo.read(|cat| {
            if let Some(id) = id {
                return match cat.get(id) {
                    None => Err(format!("unknown tool id {id}")),
                    Some(e) if e.spec.value().publisher != me => Err(format!(
                        "{id} was published by {}, not this node: only its publisher can do this",
                        e.spec.value().publisher
                    )),
                    Some(_) => Ok(()),
                };
            }
            let q = atr_protocol::query::FindQuery {
                name: name.map(str::to_owned),
                publisher: Some(me),
                include_revoked: true,
                ..Default::default()
            };
            match name {
                Some(n) if cat.find(&q, None).is_empty() => {
                    Err(format!("this node published no tool named `{n}`"))
                }
                Some(_) => Ok(()),
                None => Err("give a tool id or name".into()),
            }
        })
    }

    /// Signs, keeps and gossips a delegation of this node's tool (`scope`)
    /// to `provider`, valid for `valid_for`.
    pub async fn delegate(
        &self,
        scope: DelegationScope,
        provider: PublicKey,
        valid_for: std::time::Duration,
    ) -> Result<SignedDelegation, PublishError> {
        match &scope {
            DelegationScope::Id(id) => self.check_own(Some(id), None),
            DelegationScope::Name(n) => self.check_own(None, Some(n)),
            _ => Err("unsupported scope".into()),
        }
        .map_err(PublishError::NotDelegable)?;
        let created_at_ms = now_ms();
        let d = Delegation {
            v: atr_protocol::delegation::DELEGATION_FORMAT,
            publisher: self.repo.me(),
            provider,
            scope,
            created_at_ms,
            expires_at_ms: created_at_ms
                .saturating_add(u64::try_from(valid_for.as_millis()).unwrap_or(u64::MAX)),
        };
        let signed = SignedDelegation::sign(d, &self.identity.secret)?;
        let ingest = self.ingest.clone();
        let bytes = signed.to_bytes();
        self.repo
            .blocking(move |_| ingest.delegation(&bytes))
            .await
            .map_err(|e| PublishError::Internal(e.to_string()))??;
        let obj = WireObject::Delegation(ByteBuf(signed.to_bytes()));
        if let Ok(bytes) = wire::encode_message(&obj)
            && let Err(e) = self.net.publish(bytes).await
        {
            warn!(error = %e, "gossip of delegation failed; it will spread by sync");
        }
        info!(delegation = %hex::encode(signed.hash()), provider = %provider, "delegated");
        Ok(signed)
    }
}
