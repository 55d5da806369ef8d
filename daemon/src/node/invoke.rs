//! Invocation: the provider side (check, run in the sandbox, sign a receipt)
//! and the caller side (resolve, pick providers, fail over, verify the receipt).
//!
//! Provider checks, in order, before any container starts: caller allowed,
//! invocation id never seen (replay), tool known, not revoked, pinned image
//! present, input within size and matching the input schema; then a sandbox
//! slot (else `busy`). The output is checked against the output schema after.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atr_protocol::api::{
    InvokeAttempt, InvokeRequest as ApiInvokeRequest, InvokeResponse as ApiInvokeResponse,
};
use atr_protocol::id::{ByteBuf, ContentHash, InvocationId};
use atr_protocol::input::{CompiledSchema, SchemaCheckError};
use atr_protocol::receipt::{InvocationStatus, Receipt, SignedReceipt};
use atr_protocol::wire::{self, InvokeRequest, InvokeResponse, Refusal};
use atr_protocol::{PublicKey, SignedSpec, ToolId};
use libp2p::PeerId;
use serde_json::json;
use tracing::{debug, info, warn};

use super::NodeState;
use crate::catalog::Status;
use crate::network::{self, Proto};
use crate::sandbox::{RunRequest, SandboxError};

/// Most providers tried for one invocation.
pub const MAX_ATTEMPTS: usize = 3;
/// First back-off between providers; doubles each time.
pub const BACKOFF: Duration = Duration::from_millis(50);
/// Extra time a caller allows beyond the tool's own limit (container start, transfer).
pub const CALLER_MARGIN: Duration = Duration::from_secs(15);
/// Invocation ids remembered in memory for replay checks (the receipt table
/// remembers the rest).
pub const RECENT_IDS: usize = 100_000;

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

/// A spec's compiled input and output schemas.
pub struct CompiledPair {
    /// Input schema.
    pub input: CompiledSchema,
    /// Output schema, if declared.
    pub output: Option<CompiledSchema>,
}

/// Compiled schemas per tool id, so repeated invocations do not recompile
/// (compiling costs far more than checking). Bounded: cleared when full.
#[derive(Default)]
pub struct SchemaCache {
    map: Mutex<std::collections::HashMap<ToolId, Arc<CompiledPair>>>,
}

/// Most tools whose schemas stay compiled.
pub const SCHEMA_CACHE_SIZE: usize = 512;

impl SchemaCache {
    /// The compiled schemas of `spec`, compiling them on first use.
    pub fn get(&self, spec: &SignedSpec) -> Result<Arc<CompiledPair>, SchemaCheckError> {
        let id = spec.id();
        if let Ok(m) = self.map.lock()
            && let Some(p) = m.get(&id)
        {
            return Ok(p.clone());
        }
        let v = spec.value();
        let pair = Arc::new(CompiledPair {
            input: CompiledSchema::new(&v.input_schema)?,
            output: v.output_schema.as_ref().map(CompiledSchema::new).transpose()?,
        });
        if let Ok(mut m) = self.map.lock() {
            if m.len() >= SCHEMA_CACHE_SIZE {
                m.clear();
            }
            m.insert(id, pair.clone());
        }
        Ok(pair)
    }
}

/// Replay protection: invocation ids being run or recently run.
#[derive(Debug, Default)]
pub struct SeenInvocations {
    ids: Mutex<(HashSet<InvocationId>, std::collections::VecDeque<InvocationId>)>,
}

impl SeenInvocations {
    /// Records `id`; false if it was already seen.
    pub fn insert(&self, id: InvocationId) -> bool {
        let Ok(mut g) = self.ids.lock() else { return false };
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

fn error_output(status: InvocationStatus, message: &str, stderr: &[u8]) -> serde_json::Value {
    let tail = String::from_utf8_lossy(&stderr[stderr.len().saturating_sub(2048)..]).into_owned();
    json!({"error": {"status": status.as_str(), "message": message, "stderr": tail}})
}

/// Runs a verified spec in the local sandbox and signs the receipt.
/// `input` is the exact byte string the receipt's input hash covers.
pub async fn run_local(
    state: &Arc<NodeState>,
    spec: &SignedSpec,
    invocation: InvocationId,
    input: &[u8],
) -> Result<(Vec<u8>, SignedReceipt), (Refusal, String)> {
    let sandbox = state.sandbox.as_ref().ok_or((
        Refusal::Internal,
        "this node has no sandbox (Docker Engine not reachable at start)".to_owned(),
    ))?;
    let v = spec.value();
    match sandbox.has_image(&v.runtime.image_digest).await {
        Ok(true) => {}
        Ok(false) => {
            return Err((
                Refusal::ImageMissing,
                format!("this provider does not hold image {}", v.runtime.image_digest),
            ));
        }
        Err(e) => return Err((Refusal::Internal, e.to_string())),
    }
    let input_owned = input.to_vec();
    let spec_owned = spec.clone();
    let checked = state
        .blocking(move |s| -> Result<Arc<CompiledPair>, (Refusal, String)> {
            let parsed: serde_json::Value = serde_json::from_slice(&input_owned)
                .map_err(|e| (Refusal::InvalidInput, format!("input is not JSON: {e}")))?;
            let pair = s
                .schemas
                .get(&spec_owned)
                .map_err(|e| (Refusal::Internal, e.to_string()))?;
            pair.input
                .check(&parsed)
                .map_err(|e| (Refusal::InvalidInput, e.to_string()))?;
            Ok(pair)
        })
        .await
        .map_err(|e| (Refusal::Internal, e.to_string()))?;
    let pair = checked?;
    let output_schema = pair.output.as_ref();
    let inv_hex = invocation.to_string();
    let run = sandbox
        .run(RunRequest {
            image: &v.runtime.image_digest,
            command: &v.runtime.command,
            workdir: v.runtime.workdir.as_deref(),
            limits: &v.limits,
            input,
            invocation: &inv_hex,
        })
        .await;
    let outcome = match run {
        Ok(o) => o,
        Err(SandboxError::Busy(n)) => return Err((Refusal::Internal, format!("busy: {n} slots taken"))),
        Err(SandboxError::ImageMissing(d)) => return Err((Refusal::ImageMissing, d)),
        Err(e) => return Err((Refusal::Internal, e.to_string())),
    };
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
    let output = serde_json::to_vec(&output_value).map_err(|e| (Refusal::Internal, e.to_string()))?;
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
        provider: state.public_key(),
    };
    let signed = SignedReceipt::sign(receipt, &state.identity.secret)
        .map_err(|e| (Refusal::Internal, e.to_string()))?;
    let s2 = signed.clone();
    if let Ok(Err(e)) = state.blocking(move |s| s.store.put_receipt(&s2)).await {
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

/// Provider side: answers one invoke request from `peer`.
pub async fn serve(state: &Arc<NodeState>, peer: PeerId, request: &[u8]) -> InvokeResponse {
    let refuse = |reason: Refusal, detail: String| InvokeResponse::Refused { reason, detail };
    let req = match InvokeRequest::decode(request) {
        Ok(r) => r,
        Err(e) => {
            state.net.penalize(peer, "bad_invoke_request");
            return refuse(Refusal::InvalidInput, e.to_string());
        }
    };
    if !state.config.invoke.allows(&peer) {
        return refuse(Refusal::Denied, "this provider does not serve you".into());
    }
    let inv = req.invocation;
    let replayed = !state.seen.insert(inv)
        || state
            .blocking(move |s| s.store.has_receipt(&inv).unwrap_or(false))
            .await
            .unwrap_or(true);
    if replayed {
        return refuse(
            Refusal::Replay,
            format!("invocation {} was already used", req.invocation),
        );
    }
    let spec = {
        let Ok(cat) = state.catalog.read() else {
            return refuse(Refusal::Internal, "catalog unavailable".into());
        };
        match cat.get(&req.tool) {
            None => return refuse(Refusal::UnknownTool, format!("unknown tool {}", req.tool)),
            Some(e) if matches!(e.status, Status::Revoked { .. }) => {
                return refuse(
                    Refusal::Revoked,
                    format!("{} was revoked by its publisher", req.tool),
                );
            }
            Some(e) => e.spec.clone(),
        }
    };
    if !state.provides(&spec) {
        return refuse(
            Refusal::UnknownTool,
            format!(
                "this node does not provide {} (it runs only its own and explicitly provided specs)",
                req.tool
            ),
        );
    }
    if let Some(sb) = &state.sandbox
        && sb.free_slots() == 0
    {
        return InvokeResponse::Busy { retry_after_ms: 200 };
    }
    match run_local(state, &spec, req.invocation, &req.input.0).await {
        Ok((output, receipt)) => InvokeResponse::Done {
            output: ByteBuf(output),
            receipt: ByteBuf(receipt.to_bytes()),
        },
        Err((Refusal::Internal, d)) if d.starts_with("busy") => InvokeResponse::Busy { retry_after_ms: 200 },
        Err((reason, detail)) => refuse(reason, detail),
    }
}

/// Resolves the API request to one active spec.
fn resolve(state: &NodeState, req: &ApiInvokeRequest) -> Result<SignedSpec, InvokeError> {
    let cat = state
        .catalog
        .read()
        .map_err(|_| InvokeError::Internal("catalog lock poisoned".into()))?;
    if let Some(id) = &req.id {
        let e = cat
            .get(id)
            .ok_or_else(|| InvokeError::NotFound(format!("no tool {id} on this node (find it first)")))?;
        if matches!(e.status, Status::Revoked { .. }) {
            return Err(InvokeError::Revoked(*id));
        }
        return Ok(e.spec.clone());
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
    let trusted: Vec<PublicKey> = match req.publisher {
        Some(p) => vec![p],
        // With no trusted list, a name held by exactly one publisher
        // resolves and a second publisher makes it ambiguous (never a silent
        // capture by a stranger's higher version).
        None if state.config.trusted_publishers.is_empty() => Vec::new(),
        None => {
            let mut t = state.config.trusted_publishers.clone();
            t.push(state.public_key());
            t
        }
    };
    match cat.resolve(name, vreq.as_ref(), &trusted) {
        Ok(e) => Ok(e.spec.clone()),
        Err(crate::catalog::ResolveError::Ambiguous { .. }) => Err(InvokeError::Ambiguous(format!(
            "`{name}` is published by several publishers; pass `publisher` or the tool id (names are not global)"
        ))),
        Err(e) => Err(InvokeError::NotFound(e.to_string())),
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

/// Caller side: resolves, runs locally if this node provides the tool, else
/// asks providers in turn (publisher first, then DHT providers), verifying
/// the receipt of the answer.
pub async fn invoke(state: &Arc<NodeState>, req: ApiInvokeRequest) -> Result<ApiInvokeResponse, InvokeError> {
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
    let r2 = req.clone();
    let spec = state
        .blocking(move |s| resolve(s, &r2))
        .await
        .map_err(|e| InvokeError::Internal(e.to_string()))??;
    // Fail fast on a bad input, before any network or container work.
    let value = req.input.clone();
    let spec_owned = spec.clone();
    state
        .blocking(move |s| s.schemas.get(&spec_owned).and_then(|p| p.input.check(&value)))
        .await
        .map_err(|e| InvokeError::Internal(e.to_string()))?
        .map_err(InvokeError::InvalidInput)?;

    let invocation = fresh_invocation_id();
    let mut attempts = Vec::new();

    let local = match &state.sandbox {
        Some(sb) if state.provides(&spec) => sb
            .has_image(&spec.value().runtime.image_digest)
            .await
            .unwrap_or(false),
        _ => false,
    };
    if local {
        state.seen.insert(invocation);
        match run_local(state, &spec, invocation, &input).await {
            Ok((output, receipt)) => {
                let me = state.net.local_peer_id().to_string();
                return finish(&spec, &me, output, receipt, attempts);
            }
            Err((reason, detail)) => {
                attempts.push(InvokeAttempt {
                    provider: state.net.local_peer_id().to_string(),
                    outcome: format!("refused: {detail}"),
                });
                if reason == Refusal::InvalidInput {
                    return Err(InvokeError::Refused { reason, detail });
                }
            }
        }
    }

    // The publisher first; the DHT is asked only if it cannot answer, so the
    // common case costs no lookup.
    let me = state.net.local_peer_id();
    let mut candidates: std::collections::VecDeque<PeerId> = key_peer(&spec.value().publisher)
        .filter(|p| *p != me)
        .into_iter()
        .collect();
    let mut asked_dht = false;
    let mut tried: Vec<PeerId> = Vec::new();
    let deadline = Duration::from_millis(spec.value().limits.timeout_ms) + CALLER_MARGIN;
    for n in 0..MAX_ATTEMPTS {
        if candidates.is_empty() && !asked_dht {
            asked_dht = true;
            for p in dht_providers(state, &spec).await {
                if !tried.contains(&p) && !candidates.contains(&p) {
                    candidates.push_back(p);
                }
            }
        }
        let Some(peer) = candidates.pop_front() else { break };
        tried.push(peer);
        if n > 0 {
            tokio::time::sleep(BACKOFF * 2u32.pow(n as u32 - 1)).await;
        }
        // A fresh invocation id per attempt: a hostile provider that forwards
        // our request to the next one cannot make that attempt a `replay`.
        let invocation = if n == 0 { invocation } else { fresh_invocation_id() };
        let wire_req = InvokeRequest {
            invocation,
            tool: spec.id(),
            input: ByteBuf(input.clone()),
        };
        let bytes = wire::encode_message(&wire_req).map_err(|e| InvokeError::Internal(e.to_string()))?;
        let provider = peer.to_string();
        let answer = tokio::time::timeout(deadline, state.net.request(Proto::Invoke, peer, bytes)).await;
        let raw = match answer {
            Ok(Ok(raw)) => raw,
            Ok(Err(e)) => {
                debug!(%peer, error = %e, "provider unreachable");
                attempts.push(InvokeAttempt {
                    provider,
                    outcome: format!("unreachable: {e}"),
                });
                continue;
            }
            Err(_) => {
                attempts.push(InvokeAttempt {
                    provider,
                    outcome: "timeout".into(),
                });
                continue;
            }
        };
        let resp: InvokeResponse =
            match wire::decode_message(&raw, wire::MAX_INVOKE_RESPONSE_BYTES, "invoke response") {
                Ok(r) => r,
                Err(e) => {
                    state.net.penalize(peer, "bad_invoke_response");
                    attempts.push(InvokeAttempt {
                        provider,
                        outcome: format!("bad response: {e}"),
                    });
                    continue;
                }
            };
        match resp {
            InvokeResponse::Done { output, receipt } => {
                match verify_answer(&spec, invocation, &input, &output.0, &receipt.0, &peer) {
                    Ok(receipt) => {
                        let r2 = receipt.clone();
                        let _ = state.blocking(move |s| s.store.put_receipt(&r2)).await;
                        return finish(&spec, &provider, output.0, receipt, attempts);
                    }
                    Err(e) => {
                        warn!(%peer, error = %e, "provider answered with a receipt that does not verify");
                        state.net.penalize(peer, "bad_receipt");
                        attempts.push(InvokeAttempt {
                            provider,
                            outcome: format!("bad receipt: {e}"),
                        });
                    }
                }
            }
            InvokeResponse::Busy { .. } => attempts.push(InvokeAttempt {
                provider,
                outcome: "busy".into(),
            }),
            InvokeResponse::Refused { reason, detail } => {
                attempts.push(InvokeAttempt {
                    provider,
                    outcome: format!("refused: {detail}"),
                });
                // One provider's refusal proves nothing; try the next.
                debug!(%peer, ?reason, "provider refused");
            }
            _ => attempts.push(InvokeAttempt {
                provider,
                outcome: "unknown answer".into(),
            }),
        }
    }
    let summary = if attempts.is_empty() {
        "no provider of this tool is known (the publisher is unreachable and the DHT lists no other)"
            .to_owned()
    } else {
        attempts
            .iter()
            .map(|a| format!("{}: {}", a.provider, a.outcome))
            .collect::<Vec<_>>()
            .join("; ")
    };
    Err(InvokeError::NoProvider { summary, attempts })
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
) -> Result<SignedReceipt, String> {
    let signed = SignedReceipt::from_bytes(receipt).map_err(|e| e.to_string())?;
    let provider = peer_key(peer).ok_or("provider peer id is not an ed25519 key")?;
    let r = signed.value();
    r.check_answers(&invocation, &spec.id(), input, output, &provider)
        .map_err(|e| e.to_string())?;
    if r.image_digest != spec.value().runtime.image_digest {
        return Err(format!(
            "receipt names image {}, the spec pins {}",
            r.image_digest,
            spec.value().runtime.image_digest
        ));
    }
    if r.limits != spec.value().limits {
        return Err("receipt limits are not the spec's limits".into());
    }
    if r.output_bytes != output.len() as u64 {
        return Err("receipt output length does not match".into());
    }
    Ok(signed)
}

fn finish(
    spec: &SignedSpec,
    provider: &str,
    output: Vec<u8>,
    receipt: SignedReceipt,
    mut attempts: Vec<InvokeAttempt>,
) -> Result<ApiInvokeResponse, InvokeError> {
    let value: serde_json::Value = serde_json::from_slice(&output)
        .map_err(|e| InvokeError::Internal(format!("output is not JSON: {e}")))?;
    attempts.push(InvokeAttempt {
        provider: provider.to_owned(),
        outcome: "ok".into(),
    });
    Ok(ApiInvokeResponse {
        id: spec.id(),
        output: value,
        status: receipt.value().status,
        provider: provider.to_owned(),
        receipt: receipt.value().clone(),
        receipt_hex: hex::encode(receipt.to_bytes()),
        attempts,
    })
}

/// Other providers of the spec's name from the DHT (every shard), this node excluded.
async fn dht_providers(state: &Arc<NodeState>, spec: &SignedSpec) -> Vec<PeerId> {
    let me = state.net.local_peer_id();
    let mut out: Vec<PeerId> = Vec::new();
    let lookups = network::all_shard_keys("name", &spec.value().name)
        .into_iter()
        .map(|k| {
            let net = state.net.clone();
            async move { tokio::time::timeout(Duration::from_secs(3), net.get_providers(k)).await }
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
    out.extend(found);
    out
}
