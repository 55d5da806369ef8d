//! Operator consent to run other publishers' specs (`POST /v1/provide`).
//!
//! A node runs remote invocations only for specs it published itself and
//! for foreign specs its operator explicitly agreed to provide. Consent is
//! kept by the [`Repo`] (store table `provided_v1`, at most
//! [`crate::store::MAX_PROVIDED`] rows, mirrored in memory), announced at
//! every start ([`crate::announce`]), and dropped when the spec is revoked.
//!
//! "Provide" means this consent only; publishing DHT provider records is
//! "announce".

use atr_protocol::{SignedSpec, ToolId};
use tracing::{info, warn};

use crate::announce::Announcer;
use crate::catalog::Status;
use crate::repo::{Repo, RepoError};
use crate::sandbox::Sandbox;
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
    /// The image's own configuration is refused (`atr_sandbox::image_policy`).
    #[error("this node cannot provide {id}: {reason}")]
    ImageRefused {
        /// The spec.
        id: ToolId,
        /// Why.
        reason: String,
    },
    /// Consent to withdraw was never given.
    #[error("this node does not provide {0}")]
    NotProvided(ToolId),
    /// The consent table is full or unwritable.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The blocking task did not finish.
    #[error(transparent)]
    Task(#[from] crate::repo::TaskFailed),
}

/// Gives and withdraws the operator's consent to run foreign specs.
#[derive(Clone)]
pub struct Consent {
    repo: Repo,
    announcer: Announcer,
    sandbox: Option<Sandbox>,
}

impl Consent {
    /// A consent service; without a sandbox every `provide` is refused.
    pub fn new(repo: Repo, announcer: Announcer, sandbox: Option<Sandbox>) -> Self {
        Self {
            repo,
            announcer,
            sandbox,
        }
    }

    /// Looks up an active foreign spec by id.
    fn active_foreign(&self, id: &ToolId) -> Result<SignedSpec, ProvideError> {
        let (spec, status) = self.repo.spec(id).ok_or(ProvideError::UnknownTool(*id))?;
        if matches!(status, Status::Revoked { .. }) {
            return Err(ProvideError::Revoked(*id));
        }
        if spec.value().publisher == self.repo.me() {
            return Err(ProvideError::OwnSpec(*id));
        }
        Ok(spec)
    }

    /// Agrees to run the foreign spec `id`: it must be stored, not revoked, and
    /// its pinned image must be on this host. Records the consent durably and
    /// announces the DHT keys. Returns the spec and whether consent was new.
    pub async fn provide(&self, id: &ToolId) -> Result<(SignedSpec, bool), ProvideError> {
        let spec = self.active_foreign(id)?;
        let digest = spec.value().runtime.image_digest.clone();
        let Some(sb) = &self.sandbox else {
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
        if let Some(reason) = sb.image_refusal(&digest).await {
            return Err(ProvideError::ImageRefused { id: *id, reason });
        }
        let id2 = *id;
        let new = match self.repo.blocking(move |r| r.add_provided(&id2)).await? {
            Ok(new) => new,
            Err(RepoError::Store(e)) => return Err(e.into()),
            // Revoked between the check above and the write.
            Err(_) => return Err(ProvideError::Revoked(*id)),
        };
        self.announcer.announce(&spec).await;
        info!(tool = %id, name = %spec.value().name, new, "providing foreign spec");
        Ok((spec, new))
    }

    /// Withdraws consent to run `id`: this node stops running invocations of
    /// it at once and stops announcing its DHT keys (unless another spec it
    /// runs shares them); records already on other nodes expire.
    pub async fn unprovide(&self, id: &ToolId) -> Result<(), ProvideError> {
        let id2 = *id;
        let announcer = self.announcer.clone();
        let removed = self
            .repo
            .blocking(move |r| -> Result<bool, RepoError> {
                let removed = r.remove_provided(&id2)?;
                if removed && let Some((spec, _)) = r.spec(&id2) {
                    announcer.withdraw(r, &spec);
                }
                Ok(removed)
            })
            .await?;
        match removed {
            Ok(true) => {}
            Ok(false) => return Err(ProvideError::NotProvided(*id)),
            Err(RepoError::Store(e)) => return Err(e.into()),
            Err(_) => return Err(ProvideError::NotProvided(*id)),
        }
        info!(tool = %id, "stopped providing foreign spec");
        Ok(())
    }

    /// The foreign specs this node provides, with their specs when stored.
    pub fn provided(&self) -> Vec<(ToolId, Option<SignedSpec>)> {
        self.repo.provided()
    }
}
