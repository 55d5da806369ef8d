//! The caller side of invocation: this node's agent asks (`POST
//! /v1/invoke`) for a tool run.
//!
//! Resolve the request to one active spec (names resolve among trusted
//! publishers only), check the input against the input schema, run it here
//! if this node provides the tool, else ask providers in turn, with a fresh
//! invocation id per attempt, and accept only an answer whose receipt
//! verifies ([`verify_answer`]) and whose output matches the output schema.
//!
//! **Who may answer**: the publisher, a provider the publisher delegated
//! (a signed, unexpired delegation held here), or a provider on this
//! node's `trusted_providers` list — ordered by this node's own record of
//! their answers ([`Ranking`]), the publisher first among equals. A peer
//! that merely announces the tool's name in the DHT is a lead, never a
//! provider: it is never sent the input.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use atr_protocol::api::{self, InvokeAttempt, ProviderKind};
use atr_protocol::id::{ByteBuf, InvocationId};
use atr_protocol::input::SchemaCheckError;
use atr_protocol::receipt::{InvocationStatus, SignedReceipt};
use atr_protocol::wire::{self, InvokeResponse, Refusal};
use atr_protocol::{PublicKey, SignedSpec, ToolId};
use libp2p::PeerId;
use tracing::{debug, warn};

use super::SchemaCache;
use super::provider::{Provider, RunError};
use super::ranking::Ranking;
use crate::catalog::{ResolveError, Status};
use crate::network::{self, NetworkHandle, Proto};
use crate::repo::{Repo, TaskFailed};

/// Most providers tried for one invocation.
pub const MAX_ATTEMPTS: usize = 3;
/// First back-off between providers; doubles each time.
pub const BACKOFF: Duration = Duration::from_millis(50);
/// Extra time a caller allows beyond the tool's own limit (container start, transfer).
pub const CALLER_MARGIN: Duration = Duration::from_secs(15);
/// How long the DHT lookup of a tool's other providers may take.
pub const DHT_LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);

/// Why an invocation failed on the caller's side.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InvokeError {
    /// No such tool (by id or name).
    #[error("{0}")]
    NotFound(String),
    /// The name does not resolve to exactly one publisher's tool.
    #[error("{0}")]
    Ambiguous(String),
    /// The tool was revoked by its publisher.
    #[error("tool {0} was revoked by its publisher and is never invoked")]
    Revoked(ToolId),
    /// The input breaks the input schema.
    #[error("input does not match the tool's input schema: {0}")]
    InvalidInput(SchemaCheckError),
    /// The input is not a JSON object or is too large.
    #[error("{0}")]
    BadInput(String),
    /// Every provider failed.
    #[error("no provider answered: {summary}")]
    NoProvider {
        /// What each attempt got.
        summary: String,
        /// Attempts.
        attempts: Vec<InvokeAttempt>,
    },
    /// A provider refused.
    #[error("provider refused: {detail}")]
    Refused {
        /// Why.
        reason: Refusal,
        /// Details.
        detail: String,
    },
    /// Local failure.
    #[error("internal: {0}")]
    Internal(String),
}

impl From<TaskFailed> for InvokeError {
    fn from(e: TaskFailed) -> Self {
        Self::Internal(e.to_string())
    }
}

/// Why a provider's answer was not accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnswerError {
    /// The provider's peer id is not an ed25519 key.
    #[error("provider peer id is not an ed25519 key")]
    ProviderKey,
    /// The receipt does not decode, its signature does not verify, or it does not bind this
    /// invocation, tool, image, limits, input and output (the one check both sides apply).
    #[error(transparent)]
    Receipt(#[from] atr_protocol::receipt::ReceiptError),
    /// The output is not JSON or breaks the tool's output schema.
    #[error("output does not match the tool's output schema: {0}")]
    Output(String),
}

/// Invokes tools for this node's agents.
#[derive(Clone)]
pub struct Caller {
    repo: Repo,
    net: NetworkHandle,
    provider: Provider,
    schemas: Arc<SchemaCache>,
    trusted_providers: Arc<[PublicKey]>,
    ranking: Arc<Ranking>,
}

/// Whom a caller may ask, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Candidate {
    key: PublicKey,
    kind: ProviderKind,
}

impl Caller {
    /// A caller that runs locally through `provider` when it can, resolving
    /// names among the node's trust list (read live from `repo`) and this
    /// node, and accepting answers from publishers, their delegates and
    /// `trusted_providers`.
    pub fn new(
        repo: Repo,
        net: NetworkHandle,
        provider: Provider,
        schemas: Arc<SchemaCache>,
        trusted_providers: Vec<PublicKey>,
    ) -> Self {
        let ranking = Ranking::from_receipts(&repo.receipts(1_000).unwrap_or_default());
        Self {
            repo,
            net,
            provider,
            schemas,
            trusted_providers: trusted_providers.into(),
            ranking: Arc::new(ranking),
        }
    }

    /// Why `key` may answer for `spec`, if it may (`delegated`: the spec's
    /// live delegates).
    fn kind_of(&self, spec: &SignedSpec, delegated: &[PublicKey], key: &PublicKey) -> Option<ProviderKind> {
        if *key == spec.value().publisher {
            Some(ProviderKind::Publisher)
        } else if delegated.contains(key) {
            Some(ProviderKind::Delegated)
        } else if self.trusted_providers.contains(key) {
            Some(ProviderKind::Trusted)
        } else {
            None
        }
    }

    /// The spec's publisher and delegates, best first by this node's record.
    fn first_candidates(
        &self,
        spec: &SignedSpec,
        delegated: &[PublicKey],
        me: &PublicKey,
    ) -> VecDeque<Candidate> {
        let publisher = Candidate {
            key: spec.value().publisher,
            kind: ProviderKind::Publisher,
        };
        let delegates = delegated.iter().map(|&key| Candidate {
            key,
            kind: ProviderKind::Delegated,
        });
        let mut first: Vec<Candidate> = std::iter::once(publisher)
            .chain(delegates)
            .filter(|c| c.key != *me)
            .collect();
        self.ranking.order_by(&mut first, |c| c.key);
        first.into()
    }

    /// Resolves the API request to one active spec.
    fn resolve(&self, req: &api::InvokeRequest) -> Result<SignedSpec, InvokeError> {
        self.repo.read(|cat| self.resolve_in(cat, req))
    }

    fn resolve_in(
        &self,
        cat: &crate::catalog::Catalog,
        req: &api::InvokeRequest,
    ) -> Result<SignedSpec, InvokeError> {
        if let Some(id) = &req.id {
            let e = cat
                .get(id)
                .ok_or_else(|| InvokeError::NotFound(format!("no tool {id} on this node (find it first)")))?;
            if matches!(e.status, Status::Revoked { .. }) {
                return Err(InvokeError::Revoked(*id));
            }
            return e
                .spec
                .signed()
                .map_err(|err| InvokeError::Internal(err.to_string()));
        }
        let name = req
            .name
            .as_deref()
            .ok_or_else(|| InvokeError::BadInput("give a tool `id`, or a `name`".into()))?;
        let vreq = req
            .version
            .as_deref()
            .map(atr_protocol::query::parse_version_req)
            .transpose()
            .map_err(|e| InvokeError::BadInput(e.to_string()))?;
        // The node's one trust list, read live (`atr trust add` applies at once).
        let listed = self.repo.trusted_publishers();
        let trusted: Vec<PublicKey> = match req.publisher {
            Some(p) => vec![p],
            // With no trusted list, a name held by exactly one publisher
            // resolves and a second publisher makes it ambiguous (never a silent
            // capture by a stranger's higher version).
            None if listed.is_empty() => Vec::new(),
            None => {
                let mut t = listed;
                t.push(self.repo.me());
                t
            }
        };
        match cat.resolve(name, vreq.as_ref(), &trusted) {
            Ok(e) => e
                .spec
                .signed()
                .map_err(|err| InvokeError::Internal(err.to_string())),
            Err(ResolveError::Ambiguous { .. }) => Err(InvokeError::Ambiguous(format!(
                "`{name}` is published by several publishers; pass `publisher` or the tool id (names are not global)"
            ))),
            Err(e) => Err(InvokeError::NotFound(e.to_string())),
        }
    }

    /// Resolves, runs locally if this node provides the tool, else
    /// asks providers in turn (publisher first, then DHT providers), verifying
    /// the receipt of the answer.
    pub async fn invoke(&self, req: api::InvokeRequest) -> Result<api::InvokeResponse, InvokeError> {
        let input = serde_json::to_vec(&req.input).map_err(|e| InvokeError::BadInput(e.to_string()))?;
        if !req.input.is_object() {
            return Err(InvokeError::BadInput("`input` must be a JSON object".into()));
        }
        if input.len() > atr_protocol::limits::MAX_INPUT_BYTES {
            return Err(InvokeError::BadInput(format!(
                "input is {} bytes, over the {}-byte limit",
                input.len(),
                atr_protocol::limits::MAX_INPUT_BYTES
            )));
        }
        let me = self.clone();
        let r2 = req.clone();
        let spec = self.repo.blocking(move |_| me.resolve(&r2)).await??;
        // Fail fast on a bad input, before any network or container work.
        let value = req.input.clone();
        let spec_owned = spec.clone();
        let schemas = self.schemas.clone();
        self.repo
            .blocking(move |_| schemas.get(&spec_owned).and_then(|p| p.input.check(&value)))
            .await?
            .map_err(InvokeError::InvalidInput)?;

        let invocation = fresh_invocation_id();
        let mut attempts = Vec::new();

        if self.provider.runs_here(&spec).await {
            self.provider.mark_seen(invocation);
            let me = self.net.local_peer_id().to_string();
            match self.provider.run_local(&spec, invocation, &input).await {
                Ok((output, receipt)) => {
                    return finish(&spec, &me, ProviderKind::Local, output, receipt, attempts);
                }
                Err(e) => {
                    attempts.push(InvokeAttempt {
                        provider: me,
                        outcome: format!("refused: {e}"),
                    });
                    if let RunError::InputNotJson(_) | RunError::InvalidInput(_) = e {
                        return Err(InvokeError::Refused {
                            reason: Refusal::InvalidInput,
                            detail: e.to_string(),
                        });
                    }
                }
            }
        }

        // The publisher and its delegates first; the DHT is asked only if
        // none of them answers, and what it lists is only a lead: a peer
        // is asked only if it is one of those or a trusted provider.
        let me_key = self.repo.me();
        let spec_id = spec.id();
        let delegated = self
            .repo
            .read(|c| c.delegated_providers(&spec_id, crate::time::now_ms()));
        let mut candidates = self.first_candidates(&spec, &delegated, &me_key);
        let mut asked_dht = false;
        let mut skipped_leads = 0usize;
        let mut tried: Vec<PublicKey> = Vec::new();
        let deadline = Duration::from_millis(spec.value().limits.timeout_ms) + CALLER_MARGIN;
        for n in 0..MAX_ATTEMPTS {
            if candidates.is_empty() && !asked_dht {
                asked_dht = true;
                let mut allowed = Vec::new();
                for p in self.dht_providers(&spec).await {
                    let Some(key) = peer_key(&p) else { continue };
                    if key == me_key || tried.contains(&key) || candidates.iter().any(|c| c.key == key) {
                        continue;
                    }
                    match self.kind_of(&spec, &delegated, &key) {
                        Some(kind) => allowed.push(Candidate { key, kind }),
                        None => skipped_leads += 1,
                    }
                }
                self.ranking.order_by(&mut allowed, |c| c.key);
                candidates.extend(allowed);
            }
            let Some(candidate) = candidates.pop_front() else {
                break;
            };
            let Some(peer) = key_peer(&candidate.key) else {
                continue;
            };
            tried.push(candidate.key);
            if n > 0 {
                tokio::time::sleep(BACKOFF * 2u32.pow(n as u32 - 1)).await;
            }
            // A fresh invocation id per attempt: a hostile provider that forwards
            // our request to the next one cannot make that attempt a `replay`.
            let invocation = if n == 0 { invocation } else { fresh_invocation_id() };
            let asked_at = std::time::Instant::now();
            match self.ask(&spec, peer, invocation, &input, deadline).await {
                Ok((output, receipt)) => {
                    self.ranking.succeeded(&candidate.key, asked_at.elapsed());
                    let r2 = receipt.clone();
                    let _ = self.repo.blocking(move |r| r.put_receipt(&r2)).await;
                    return finish(
                        &spec,
                        &peer.to_string(),
                        candidate.kind,
                        output,
                        receipt,
                        attempts,
                    );
                }
                Err(outcome) => {
                    self.ranking.failed(&candidate.key);
                    attempts.push(InvokeAttempt {
                        provider: peer.to_string(),
                        outcome,
                    });
                }
            }
        }
        let mut summary = if attempts.is_empty() {
            "no provider of this tool answered (the publisher is unreachable, and no provider it \
             delegated or this node trusts is known)"
                .to_owned()
        } else {
            attempts
                .iter()
                .map(|a| format!("{}: {}", a.provider, a.outcome))
                .collect::<Vec<_>>()
                .join("; ")
        };
        if skipped_leads > 0 {
            summary.push_str(&format!(
                "; {skipped_leads} other peer(s) announce this tool but were not asked: neither delegated by \
                 its publisher nor in this node's `trusted_providers`"
            ));
        }
        Err(InvokeError::NoProvider { summary, attempts })
    }

    /// Asks one provider; its output and verified receipt, or what happened instead.
    async fn ask(
        &self,
        spec: &SignedSpec,
        peer: PeerId,
        invocation: InvocationId,
        input: &[u8],
        deadline: Duration,
    ) -> Result<(Vec<u8>, SignedReceipt), String> {
        let wire_req = wire::InvokeRequest {
            invocation,
            tool: spec.id(),
            input: ByteBuf(input.to_vec()),
        };
        let bytes = wire::encode_message(&wire_req).map_err(|e| format!("internal: {e}"))?;
        let raw = match tokio::time::timeout(deadline, self.net.request(Proto::Invoke, peer, bytes)).await {
            Ok(Ok(raw)) => raw,
            Ok(Err(e)) => {
                debug!(%peer, error = %e, "provider unreachable");
                return Err(format!("unreachable: {e}"));
            }
            Err(_) => return Err("timeout".into()),
        };
        let resp: InvokeResponse =
            wire::decode_message(&raw, wire::MAX_INVOKE_RESPONSE_BYTES, "invoke response").map_err(|e| {
                self.net.penalize(peer, "bad_invoke_response");
                format!("bad response: {e}")
            })?;
        match resp {
            InvokeResponse::Done { output, receipt } => {
                // A run that did not end `ok` answers an error object, not the tool's output.
                let checked = match verify_answer(spec, invocation, input, &output.0, &receipt.0, &peer) {
                    Ok(receipt) if receipt.value().status == InvocationStatus::Ok => {
                        self.check_output(spec, &output.0).await.map(|()| receipt)
                    }
                    other => other,
                };
                checked.map(|receipt| (output.0, receipt)).map_err(|e| {
                    warn!(%peer, error = %e, "provider's answer refused");
                    self.net.penalize(peer, "bad_answer");
                    format!("bad answer: {e}")
                })
            }
            InvokeResponse::Busy { .. } => Err("busy".into()),
            InvokeResponse::Refused { reason, detail } => {
                // One provider's refusal proves nothing; try the next.
                debug!(%peer, ?reason, "provider refused");
                Err(format!("refused: {detail}"))
            }
            _ => Err("unknown answer".into()),
        }
    }

    /// Checks an answer's output against the spec's output schema (off the
    /// async workers: schemas may be large).
    async fn check_output(&self, spec: &SignedSpec, output: &[u8]) -> Result<(), AnswerError> {
        let value: serde_json::Value =
            serde_json::from_slice(output).map_err(|e| AnswerError::Output(format!("not JSON: {e}")))?;
        let (spec, schemas) = (spec.clone(), self.schemas.clone());
        self.repo
            .blocking(move |_| {
                let pair = schemas
                    .get(&spec)
                    .map_err(|e| AnswerError::Output(e.to_string()))?;
                match &pair.output {
                    Some(schema) => schema
                        .check(&value)
                        .map_err(|e| AnswerError::Output(e.to_string())),
                    None => Ok(()),
                }
            })
            .await
            .map_err(|e| AnswerError::Output(e.to_string()))?
    }

    /// Other providers of the spec's name from the DHT (every shard), this node excluded.
    async fn dht_providers(&self, spec: &SignedSpec) -> Vec<PeerId> {
        let me = self.net.local_peer_id();
        let mut out: Vec<PeerId> = Vec::new();
        let lookups = network::all_shard_keys("name", &spec.value().name)
            .into_iter()
            .map(|k| {
                let net = self.net.clone();
                async move {
                    tokio::time::timeout(
                        DHT_LOOKUP_TIMEOUT,
                        net.get_providers(k, crate::network::Lookup::Complete),
                    )
                    .await
                }
            });
        let mut found: Vec<PeerId> = futures::future::join_all(lookups)
            .await
            .into_iter()
            .flatten()
            .flatten()
            .flatten()
            .filter(|p| *p != me && !out.contains(p))
            .collect();
        found.sort();
        found.dedup();
        // Not in peer-id order: ids are free to grind.
        rand::seq::SliceRandom::shuffle(found.as_mut_slice(), &mut rand::rng());
        out.extend(found);
        out
    }
}

fn peer_key(peer: &PeerId) -> Option<PublicKey> {
    PublicKey::from_peer_id_bytes(&peer.to_bytes()).ok()
}

fn key_peer(key: &PublicKey) -> Option<PeerId> {
    PeerId::from_bytes(&key.peer_id_bytes()).ok()
}

fn fresh_invocation_id() -> InvocationId {
    let mut b = [0u8; 16];
    rand::fill(&mut b);
    InvocationId(b)
}

/// Checks a provider's answer: the receipt verifies, is signed by that
/// provider, and binds this invocation, tool, image, input and output.
pub fn verify_answer(
    spec: &SignedSpec,
    invocation: InvocationId,
    input: &[u8],
    output: &[u8],
    receipt: &[u8],
    peer: &PeerId,
) -> Result<SignedReceipt, AnswerError> {
    let provider = peer_key(peer).ok_or(AnswerError::ProviderKey)?;
    let tool = spec.id();
    let expected = atr_protocol::receipt::Expected {
        invocation: Some(&invocation),
        tool: &tool,
        provider: &provider,
        input,
        output,
        status: None,
        spec: Some(spec),
    };
    Ok(atr_protocol::receipt::verify_receipt_bytes(receipt, &expected)?)
}

fn finish(
    spec: &SignedSpec,
    provider: &str,
    kind: ProviderKind,
    output: Vec<u8>,
    receipt: SignedReceipt,
    mut attempts: Vec<InvokeAttempt>,
) -> Result<api::InvokeResponse, InvokeError> {
    let value: serde_json::Value = serde_json::from_slice(&output)
        .map_err(|e| InvokeError::Internal(format!("output is not JSON: {e}")))?;
    attempts.push(InvokeAttempt {
        provider: provider.to_owned(),
        outcome: "ok".into(),
    });
    Ok(api::InvokeResponse {
        id: spec.id(),
        output: value,
        status: receipt.value().status,
        provider: provider.to_owned(),
        provider_kind: Some(kind),
        receipt: receipt.value().clone(),
        receipt_hex: hex::encode(receipt.to_bytes()),
        attempts,
    })
}
