//! The provider side of invocation: a peer (or this node's own caller) asks
//! this node to run a tool.
//!
//! Checks, in order, before any container starts: caller allowed,
//! invocation id never seen (replay), tool known, not revoked, provided by
//! this node, pinned image present, input within size and matching the input
//! schema; then a sandbox slot (else `busy`). The output is checked against
//! the output schema after, and the receipt signed either way.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use atr_protocol::SignedSpec;
use atr_protocol::id::{ByteBuf, ContentHash, InvocationId};
use atr_protocol::input::SchemaCheckError;
use atr_protocol::receipt::{InvocationStatus, Receipt, SignedReceipt};
use atr_protocol::sandbox::EgressAttachment;
use atr_protocol::signed::SignError;
use atr_protocol::wire::{self, InvokeResponse, Refusal};
use libp2p::PeerId;
use serde_json::json;
use tracing::{info, warn};

use super::SchemaCache;
use crate::catalog::Status;
use crate::config::InvokeOptions;
use crate::identity::Identity;
use crate::lock;
use crate::network::NetworkHandle;
use crate::repo::{Repo, TaskFailed};
use crate::sandbox::{RunRequest, Sandbox, SandboxError};

/// Invocation ids remembered in memory for replay checks (the receipt table
/// remembers the rest).
pub const RECENT_IDS: usize = 100_000;
/// What a busy provider tells the caller to wait before asking again, ms.
pub const BUSY_RETRY_AFTER_MS: u64 = 200;

/// Why this node did not run a tool it was asked to run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The Docker sandbox is off or was unreachable at start.
    #[error("this node has no sandbox (Docker Engine not reachable at start)")]
    NoSandbox,
    /// The pinned image is not on this host.
    #[error("this provider does not hold image {0}")]
    ImageMissing(String),
    /// The spec declares a permission this provider cannot grant (egress without an egress
    /// proxy, a secret it does not hold); the tool is not run under a narrower policy.
    #[error("this provider cannot enforce the spec's policy: {0}")]
    PolicyUnavailable(String),
    /// The input is not JSON.
    #[error("input is not JSON: {0}")]
    InputNotJson(#[source] serde_json::Error),
    /// The input breaks the input schema.
    #[error("{0}")]
    InvalidInput(SchemaCheckError),
    /// The spec's own schemas do not compile.
    #[error("the spec's schemas do not compile: {0}")]
    Schema(SchemaCheckError),
    /// Every sandbox slot is taken.
    #[error("busy: {0} slots taken")]
    Busy(usize),
    /// The sandbox failed.
    #[error(transparent)]
    Sandbox(SandboxError),
    /// The output could not be encoded.
    #[error("cannot encode the output: {0}")]
    Encode(#[source] serde_json::Error),
    /// The receipt could not be signed.
    #[error("cannot sign the receipt: {0}")]
    Sign(#[from] SignError),
    /// A blocking task did not finish.
    #[error(transparent)]
    Task(#[from] TaskFailed),
}

impl RunError {
    /// The refusal sent to a peer for this error (`None`: answer `Busy`).
    pub fn refusal(&self) -> Option<Refusal> {
        match self {
            Self::Busy(_) => None,
            Self::ImageMissing(_) => Some(Refusal::ImageMissing),
            Self::PolicyUnavailable(_) => Some(Refusal::Denied),
            Self::InputNotJson(_) | Self::InvalidInput(_) => Some(Refusal::InvalidInput),
            _ => Some(Refusal::Internal),
        }
    }
}

impl From<SandboxError> for RunError {
    fn from(e: SandboxError) -> Self {
        match e {
            SandboxError::Busy(n) => Self::Busy(n),
            SandboxError::ImageMissing(d) => Self::ImageMissing(d),
            e => Self::Sandbox(e),
        }
    }
}

/// Replay protection: invocation ids being run or recently run.
#[derive(Debug, Default)]
pub struct SeenInvocations {
    ids: Mutex<(HashSet<InvocationId>, VecDeque<InvocationId>)>,
}

impl SeenInvocations {
    /// Records `id`; false if it was already seen.
    pub fn insert(&self, id: InvocationId) -> bool {
        let mut g = lock::lock(&self.ids);
        if !g.0.insert(id) {
            return false;
        }
        g.1.push_back(id);
        if g.1.len() > RECENT_IDS
            && let Some(old) = g.1.pop_front()
        {
            g.0.remove(&old);
        }
        true
    }
}

/// This provider's egress: the internal network tools with egress join and the proxy.
#[derive(Clone)]
pub struct EgressService {
    /// Docker network name.
    pub network: String,
    /// The filtering proxy.
    pub proxy: crate::egress::EgressProxy,
}

/// Runs tools for peers and for this node's caller.
#[derive(Clone)]
pub struct Provider {
    repo: Repo,
    sandbox: Option<Sandbox>,
    egress: Option<EgressService>,
    secrets_dir: Option<std::path::PathBuf>,
    identity: Identity,
    access: InvokeOptions,
    seen: Arc<SeenInvocations>,
    schemas: Arc<SchemaCache>,
}

impl Provider {
    /// A provider signing receipts with `identity`, answering the peers `access` allows.
    pub fn new(
        repo: Repo,
        sandbox: Option<Sandbox>,
        identity: Identity,
        access: InvokeOptions,
        schemas: Arc<SchemaCache>,
    ) -> Self {
        Self {
            repo,
            sandbox,
            egress: None,
            secrets_dir: None,
            identity,
            access,
            seen: Arc::default(),
            schemas,
        }
    }

    /// The same provider running tools with egress through `egress`.
    #[must_use]
    pub fn with_egress(mut self, egress: Option<EgressService>) -> Self {
        self.egress = egress;
        self
    }

    /// The same provider reading secret values from `dir`.
    #[must_use]
    pub fn with_secrets_dir(mut self, dir: std::path::PathBuf) -> Self {
        self.secrets_dir = Some(dir);
        self
    }

    /// Whether this node can run `spec` here: it provides it and holds its image.
    pub async fn runs_here(&self, spec: &SignedSpec) -> bool {
        match &self.sandbox {
            Some(sb) if self.repo.provides(spec) => sb
                .has_image(&spec.value().runtime.image_digest)
                .await
                .unwrap_or(false),
            _ => false,
        }
    }

    /// Records an invocation id this node's own caller is about to use.
    pub fn mark_seen(&self, invocation: InvocationId) {
        self.seen.insert(invocation);
    }

    /// Answers one invoke request from `peer` (penalized through `net` if malformed).
    pub async fn answer(&self, net: &NetworkHandle, peer: PeerId, request: &[u8]) -> InvokeResponse {
        let refuse = |reason: Refusal, detail: String| InvokeResponse::Refused { reason, detail };
        let req = match wire::InvokeRequest::decode(request) {
            Ok(r) => r,
            Err(e) => {
                net.penalize(peer, "bad_invoke_request");
                return refuse(Refusal::InvalidInput, e.to_string());
            }
        };
        if !self.access.allows(&peer) {
            return refuse(Refusal::Denied, "this provider does not serve you".into());
        }
        let inv = req.invocation;
        let replayed = !self.seen.insert(inv)
            || self
                .repo
                .blocking(move |r| r.has_receipt(&inv).unwrap_or(false))
                .await
                .unwrap_or(true);
        if replayed {
            return refuse(
                Refusal::Replay,
                format!("invocation {} was already used", req.invocation),
            );
        }
        let spec = match self.repo.spec(&req.tool) {
            None => return refuse(Refusal::UnknownTool, format!("unknown tool {}", req.tool)),
            Some((_, Status::Revoked { .. })) => {
                return refuse(
                    Refusal::Revoked,
                    format!("{} was revoked by its publisher", req.tool),
                );
            }
            Some((spec, _)) => spec,
        };
        if !self.repo.provides(&spec) {
            return refuse(
                Refusal::UnknownTool,
                format!(
                    "this node does not provide {} (it runs only its own and explicitly provided specs)",
                    req.tool
                ),
            );
        }
        if let Some(sb) = &self.sandbox
            && sb.free_slots() == 0
        {
            return InvokeResponse::Busy {
                retry_after_ms: BUSY_RETRY_AFTER_MS,
            };
        }
        match self.run_local(&spec, req.invocation, &req.input.0).await {
            Ok((output, receipt)) => InvokeResponse::Done {
                output: ByteBuf(output),
                receipt: ByteBuf(receipt.to_bytes()),
            },
            Err(e) => match e.refusal() {
                None => InvokeResponse::Busy {
                    retry_after_ms: BUSY_RETRY_AFTER_MS,
                },
                Some(reason) => refuse(reason, e.to_string()),
            },
        }
    }

    /// Runs a verified spec in the local sandbox and signs the receipt.
    /// `input` is the exact byte string the receipt's input hash covers.
    pub async fn run_local(
        &self,
        spec: &SignedSpec,
        invocation: InvocationId,
        input: &[u8],
    ) -> Result<(Vec<u8>, SignedReceipt), RunError> {
        let sandbox = self.sandbox.as_ref().ok_or(RunError::NoSandbox)?;
        let v = spec.value();
        // A spec's policy is enforced exactly or not at all: running an egress tool without
        // network, or a secret-needing tool without its secret, would sign a receipt for a
        // policy that did not run.
        let grant = if v.permissions.egress.is_empty() {
            None
        } else {
            let e = self.egress.as_ref().ok_or_else(|| {
                RunError::PolicyUnavailable(
                    "it declares network egress and this provider runs no egress tools".into(),
                )
            })?;
            Some((e.network.clone(), e.proxy.grant(&v.permissions)))
        };
        let secrets = if v.permissions.secrets.is_empty() {
            atr_sandbox::profile::Env::default()
        } else {
            let dir = self
                .secrets_dir
                .clone()
                .ok_or_else(|| RunError::PolicyUnavailable("this provider holds no secrets".into()))?;
            let names = v.permissions.secrets.clone();
            tokio::task::spawn_blocking(move || crate::secrets::load(&dir, &names))
                .await
                .map_err(|_| RunError::PolicyUnavailable("reading secrets failed".into()))?
                .map_err(|e| RunError::PolicyUnavailable(e.to_string()))?
        };
        if !sandbox.has_image(&v.runtime.image_digest).await? {
            return Err(RunError::ImageMissing(v.runtime.image_digest.clone()));
        }
        let input_owned = input.to_vec();
        let spec_owned = spec.clone();
        let schemas = self.schemas.clone();
        let pair = self
            .repo
            .blocking(move |_| -> Result<_, RunError> {
                let parsed: serde_json::Value =
                    serde_json::from_slice(&input_owned).map_err(RunError::InputNotJson)?;
                let pair = schemas.get(&spec_owned).map_err(RunError::Schema)?;
                pair.input.check(&parsed).map_err(RunError::InvalidInput)?;
                Ok(pair)
            })
            .await??;
        let output_schema = pair.output.as_ref();
        let inv_hex = invocation.to_string();
        let outcome = sandbox
            .run(RunRequest {
                image: &v.runtime.image_digest,
                command: &v.runtime.command,
                workdir: v.runtime.workdir.as_deref(),
                limits: &v.limits,
                input,
                invocation: &inv_hex,
                permissions: &v.permissions,
                egress: grant.as_ref().map(|(network, g)| EgressAttachment {
                    network: network.clone(),
                    proxy_url: g.proxy_url(),
                }),
                secrets,
            })
            .await?;
        let mut status = outcome.status;
        let output_value = match status {
            InvocationStatus::Ok => match serde_json::from_slice::<serde_json::Value>(&outcome.stdout) {
                Ok(v) => match &output_schema {
                    Some(s) => match s.check(&v) {
                        Ok(()) => v,
                        Err(e) => {
                            status = InvocationStatus::OutputInvalid;
                            error_output(
                                status,
                                &format!("output does not match the output schema: {e}"),
                                &outcome.stderr,
                            )
                        }
                    },
                    None => v,
                },
                Err(e) => {
                    status = InvocationStatus::ToolError;
                    error_output(
                        status,
                        &format!("the tool's stdout is not one JSON value: {e}"),
                        &outcome.stderr,
                    )
                }
            },
            InvocationStatus::ToolError => error_output(
                status,
                &format!("the tool exited with code {}", outcome.exit_code.unwrap_or(-1)),
                &outcome.stderr,
            ),
            InvocationStatus::Timeout => error_output(
                status,
                &format!("killed at its {} ms time limit", v.limits.timeout_ms),
                &outcome.stderr,
            ),
            InvocationStatus::OutOfMemory => error_output(
                status,
                &format!("killed at its {} byte memory limit", v.limits.memory_bytes),
                &outcome.stderr,
            ),
            InvocationStatus::OutputTooLarge => error_output(
                status,
                &format!(
                    "output exceeded the {} byte cap and was cut",
                    v.limits.max_output_bytes
                ),
                &outcome.stderr,
            ),
            _ => error_output(status, "failed", &outcome.stderr),
        };
        let output = serde_json::to_vec(&output_value).map_err(RunError::Encode)?;
        // The container is gone: its token is revoked as the grant drops, and its byte counts
        // are final.
        let egress = grant.map(|(_, g)| g.usage()).unwrap_or_default();
        let receipt = Receipt {
            v: atr_protocol::receipt::RECEIPT_FORMAT,
            invocation,
            tool: spec.id(),
            image_digest: v.runtime.image_digest.clone(),
            input_hash: ContentHash::of(input),
            output_hash: ContentHash::of(&output),
            output_bytes: output.len() as u64,
            status,
            exit_code: outcome.exit_code,
            started_at_ms: outcome.started_at_ms,
            finished_at_ms: outcome.finished_at_ms.max(outcome.started_at_ms),
            limits: v.limits,
            provider: self.repo.me(),
            policy_hash: Some(atr_protocol::policy::Policy::of(v).hash()),
            usage: Some(atr_protocol::receipt::Usage {
                wall_ms: outcome.wall_ms,
                cpu_ms: outcome.measured.cpu_ms,
                peak_memory_bytes: outcome.measured.peak_memory_bytes,
                egress_out_bytes: egress.out_bytes,
                egress_in_bytes: egress.in_bytes,
            }),
        };
        let signed = SignedReceipt::sign(receipt, &self.identity.secret)?;
        let s2 = signed.clone();
        if let Ok(Err(e)) = self.repo.blocking(move |r| r.put_receipt(&s2)).await {
            warn!(error = %e, "could not store receipt");
        }
        info!(
            target: "atr::_events::invoke::ran",
            tool = %spec.id(),
            invocation = %invocation,
            status = status.as_str(),
            create_ms = outcome.timings.create_ms,
            start_ms = outcome.timings.start_ms,
            run_ms = outcome.timings.run_ms,
            remove_ms = outcome.timings.remove_ms,
            "invocation ran"
        );
        Ok((output, signed))
    }
}

fn error_output(status: InvocationStatus, message: &str, stderr: &[u8]) -> serde_json::Value {
    let tail = String::from_utf8_lossy(&stderr[stderr.len().saturating_sub(2048)..]).into_owned();
    json!({"error": {"status": status.as_str(), "message": message, "stderr": tail}})
}
