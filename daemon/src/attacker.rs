//! Hostile peers for tests and the testnet's attacker role, built from this
//! crate's own network code, so they speak atr's real protocols over real
//! libp2p connections: a bare swarm (no store, no services) that floods
//! requests or DHT records and answers sync slowly and emptily.
//!
//! Every loop here is bounded by a count the caller gives.

use std::sync::Arc;
use std::time::Duration;

use atr_protocol::id::ByteBuf;
use atr_protocol::revocation::{Revocation, RevocationKind, RevocationTarget, SignedRevocation};
use atr_protocol::wire::{self, FetchResponse, SyncResponse, WireObject};
use atr_protocol::{Manifest, SecretKey, SignedSpec};
use futures::StreamExt;
use libp2p::{Multiaddr, PeerId};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{Budgets, NetworkOptions};
use crate::identity::Identity;
use crate::metrics::Metrics;
use crate::network::{self, NetworkError, NetworkEvent, NetworkHandle, Proto};

/// One hostile peer; see the module docs.
pub struct Attacker {
    identity: Identity,
    net: NetworkHandle,
    events: Option<mpsc::Receiver<NetworkEvent>>,
    cancel: CancellationToken,
    join: tokio::task::JoinHandle<()>,
    peer_id: PeerId,
}

/// The most padding [`junk_spec`] can carry: just under the item budget
/// (`atr_protocol::limits::MAX_SPEC_JSON_ITEMS`) that validation applies.
pub const JUNK_MAX_PAD: usize = 4_000;

/// A valid spec of `key` named `junk<i>`, whose input schema carries `pad`
/// zeros under an unknown keyword (the memory-amplification shape), or
/// `None` if validation refuses that much padding (over
/// [`JUNK_MAX_PAD`]: the spec's JSON item budget).
pub fn junk_spec(key: &SecretKey, i: usize, pad: usize) -> Option<SignedSpec> {
    let zeros = vec!["0"; pad].join(",");
    let src = format!(
        r#"
name = "junk{i}"
version = "1.0.0"
description = "Junk spec {i}."
tags = ["junk"]
input_schema = {{ type = "object", x-pad = [{zeros}] }}
output_schema = {{ type = "integer" }}
[runtime]
image = "junk:latest"
digest = "sha256:{:064x}"
command = ["/junk"]
"#,
        i
    );
    let spec = Manifest::from_toml(&src, "junk.toml")
        .ok()?
        .to_spec("junk.toml", key.public(), 1_764_000_000_000 + i as u64, None)
        .ok()?;
    SignedSpec::sign(spec, key).ok()
}

/// `per_key` junk specs ([`junk_spec`], `pad` zeros each) from each of
/// `keys` fresh keys, as gossip objects.
pub fn junk_specs(keys: usize, per_key: usize, pad: usize) -> Vec<WireObject> {
    (0..keys)
        .flat_map(|_| {
            let key = SecretKey::from_seed(&rand::random());
            (0..per_key).filter_map(move |i| junk_spec(&key, i, pad))
        })
        .map(|s| WireObject::Spec(ByteBuf(s.to_bytes())))
        .collect()
}

/// `n` valid by-name revocations of made-up names, each from a fresh key
/// and dated now (they target nothing anyone holds, and are inside the
/// window of revocations kept pending), as gossip objects.
pub fn junk_revocations(n: usize) -> Vec<WireObject> {
    let now = crate::time::now_ms();
    (0..n)
        .filter_map(|i| {
            let key = SecretKey::from_seed(&rand::random());
            let rev = Revocation {
                v: 1,
                kind: RevocationKind::Revoke,
                target: RevocationTarget::Name(format!("junk{i}")),
                publisher: key.public(),
                reason: "flood".into(),
                successor: None,
                created_at_ms: now.saturating_sub(i as u64),
            };
            SignedRevocation::sign(rev, &key).ok()
        })
        .map(|r| WireObject::Revocation(ByteBuf(r.to_bytes())))
        .collect()
}

/// Outcome of [`Attacker::flood_requests`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Flood {
    /// Requests answered.
    pub answered: usize,
    /// Requests that failed (dropped unanswered, timed out, refused).
    pub failed: usize,
    /// Bytes received in answers.
    pub bytes: usize,
}

impl Attacker {
    /// A fresh identity listening on loopback, with budgets wide enough that
    /// its own limits never get in the way of its attack.
    pub async fn spawn() -> Result<Self, NetworkError> {
        let identity = Identity::generate();
        let peer_id = identity.peer_id();
        let opts = NetworkOptions {
            listen: vec![
                "/ip4/127.0.0.1/tcp/0"
                    .parse()
                    .map_err(|e| NetworkError::Setup(format!("{e}")))?,
            ],
            heartbeat: Duration::from_millis(100),
            ip_colocation_penalty: false,
            budgets: Budgets {
                max_connections: 10_000,
                peer_requests_per_sec: 1_000_000,
                peer_request_burst: 1_000_000,
                peer_gossip_per_sec: 1_000_000,
                peer_gossip_burst: 1_000_000,
                response_bytes_in_flight: 1 << 30,
                ..Budgets::default()
            },
            ..NetworkOptions::default()
        };
        let cancel = CancellationToken::new();
        let (net, events, join) =
            network::spawn(&identity, &opts, Arc::new(Metrics::new()), cancel.child_token()).await?;
        Ok(Self {
            identity,
            net,
            events: Some(events),
            cancel,
            join,
            peer_id,
        })
    }

    /// Its peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Its network handle (to publish raw gossip, dial, announce).
    pub fn net(&self) -> &NetworkHandle {
        &self.net
    }

    /// Dials `addr` (ending in `/p2p/PEERID`) within 10 s.
    pub async fn connect(&self, addr: Multiaddr) -> Result<(), NetworkError> {
        tokio::time::timeout(Duration::from_secs(10), self.net.dial(addr.clone()))
            .await
            .map_err(|_| NetworkError::Dial {
                addr: addr.to_string(),
                detail: "timed out".into(),
            })?
    }

    /// Sends `n` copies of `request` to `peer` on `proto`, `concurrency` at a time.
    pub async fn flood_requests(
        &self,
        peer: PeerId,
        proto: Proto,
        request: Vec<u8>,
        n: usize,
        concurrency: usize,
    ) -> Flood {
        let results: Vec<Result<Vec<u8>, NetworkError>> = futures::stream::iter(0..n)
            .map(|_| self.net.request(proto, peer, request.clone()))
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        let mut f = Flood::default();
        for r in results {
            match r {
                Ok(b) => {
                    f.answered += 1;
                    f.bytes += b.len();
                }
                Err(_) => f.failed += 1,
            }
        }
        f
    }

    /// Announces provider records for `n` made-up keys of atr's shape
    /// (`/atr/tag/junk<i>/<shard>`); returns how many this peer's own DHT accepted.
    pub async fn flood_providers(&self, n: usize) -> usize {
        let mut ok = 0;
        for i in 0..n {
            let key = format!("/atr/tag/junk{i}/{}", i % 16);
            if self.net.announce(key.into_bytes()).await.is_ok() {
                ok += 1;
            }
        }
        ok
    }

    /// Publishes `per_key` junk specs ([`junk_spec`], `pad` zeros each) from
    /// each of `keys` fresh keys over gossip; returns how many were sent.
    pub async fn flood_specs(&self, keys: usize, per_key: usize, pad: usize) -> usize {
        self.publish_until(&junk_specs(keys, per_key, pad), None).await
    }

    /// Publishes `n` valid by-name revocations of made-up names
    /// ([`junk_revocations`]); returns how many were sent.
    pub async fn flood_revocations(&self, n: usize) -> usize {
        self.publish_until(&junk_revocations(n), None).await
    }

    /// Fetches the objects `peer` serves for `tag` (honest specs, for
    /// replaying); empty if it refuses or answers nothing.
    pub async fn harvest(&self, peer: PeerId, tag: &str) -> Vec<WireObject> {
        let Ok(req) = wire::encode_message(&wire::FetchRequest::Tag(tag.to_owned())) else {
            return Vec::new();
        };
        let Ok(Ok(raw)) =
            tokio::time::timeout(Duration::from_secs(15), self.net.request(Proto::Fetch, peer, req)).await
        else {
            return Vec::new();
        };
        wire::decode_message::<FetchResponse>(&raw, wire::MAX_FETCH_RESPONSE_BYTES, "fetch response")
            .map(|r| r.objects)
            .unwrap_or_default()
    }

    /// Publishes each object over gossip until `deadline`; returns how many
    /// were sent. Also how gossip is replayed (genuine, already-known
    /// objects): this peer's own gossipsub refuses to publish what it has
    /// already seen, so a replay of the same objects needs a fresh attacker.
    pub async fn publish_until(&self, objects: &[WireObject], deadline: Option<std::time::Instant>) -> usize {
        let mut sent = 0;
        for o in objects {
            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                break;
            }
            if let Ok(bytes) = wire::encode_message(o)
                && self.net.publish(bytes).await.is_ok()
            {
                sent += 1;
            }
        }
        sent
    }

    /// From now on answers every sync request after `delay` listing `listed`
    /// made-up ids, and every fetch after `delay` with no object: the slow,
    /// empty sync peer. Other requests are left unanswered. Returns the task,
    /// which ends at [`Attacker::shutdown`] and yields how many requests it answered.
    pub fn serve_slow_sync(&mut self, delay: Duration, listed: usize) -> tokio::task::JoinHandle<usize> {
        let mut events = self.events.take();
        let net = self.net.clone();
        let cancel = self.cancel.clone();
        tokio::spawn(async move {
            let Some(events) = events.as_mut() else {
                return 0;
            };
            let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let tasks = tokio_util::task::TaskTracker::new();
            loop {
                let ev = tokio::select! {
                    _ = cancel.cancelled() => break,
                    ev = events.recv() => match ev { Some(e) => e, None => break },
                };
                let NetworkEvent::InboundRequest {
                    proto,
                    peer,
                    request_id,
                    channel,
                    ..
                } = ev
                else {
                    continue;
                };
                let bytes = match proto {
                    Proto::Sync => wire::encode_message(&SyncResponse {
                        ids: (0..listed.min(wire::MAX_SYNC_REFS))
                            .map(|_| atr_protocol::ToolId(rand::random()))
                            .collect(),
                        truncated: false,
                    }),
                    Proto::Fetch => wire::encode_message(&FetchResponse { objects: vec![] }),
                    _ => continue,
                };
                let Ok(bytes) = bytes else { continue };
                let (net, answered, cancel) = (net.clone(), answered.clone(), cancel.clone());
                tasks.spawn(async move {
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                    let Some(permit) = net.reserve_response(peer, bytes.len()) else {
                        return;
                    };
                    if net
                        .respond(proto, request_id, channel, bytes, permit)
                        .await
                        .is_ok()
                    {
                        answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                });
            }
            tasks.close();
            tasks.wait().await;
            answered.load(std::sync::atomic::Ordering::Relaxed)
        })
    }

    /// Its signing key (receipts it signs verify as its own).
    pub fn public_key(&self) -> atr_protocol::PublicKey {
        self.identity.secret.public()
    }

    /// From now on answers every invocation of `spec` with `output` and a
    /// receipt signed by this peer that binds the request (a provider that
    /// makes its answers up: the receipt verifies, only the output can
    /// give it away). Other requests are left unanswered. Returns how many
    /// invocation requests arrived (each carried a caller's input).
    pub fn serve_invoke(
        &mut self,
        spec: SignedSpec,
        output: serde_json::Value,
    ) -> Arc<std::sync::atomic::AtomicUsize> {
        use atr_protocol::id::ContentHash;
        use atr_protocol::receipt::{InvocationStatus, RECEIPT_FORMAT, Receipt, SignedReceipt};
        let received = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let Some(mut events) = self.events.take() else {
            return received;
        };
        let (net, cancel, secret) = (
            self.net.clone(),
            self.cancel.clone(),
            self.identity.secret.clone(),
        );
        let count = received.clone();
        tokio::spawn(async move {
            loop {
                let ev = tokio::select! {
                    _ = cancel.cancelled() => break,
                    ev = events.recv() => match ev { Some(e) => e, None => break },
                };
                let NetworkEvent::InboundRequest {
                    proto: Proto::Invoke,
                    peer,
                    request_id,
                    channel,
                    request,
                } = ev
                else {
                    continue;
                };
                count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Ok(req) = wire::decode_message::<wire::InvokeRequest>(
                    &request,
                    wire::MAX_INVOKE_REQUEST_BYTES,
                    "invoke",
                ) else {
                    continue;
                };
                let out = serde_json::to_vec(&output).unwrap_or_default();
                let now = crate::time::now_ms();
                let v = spec.value();
                let receipt = Receipt {
                    v: RECEIPT_FORMAT,
                    invocation: req.invocation,
                    tool: req.tool,
                    image_digest: v.runtime.image_digest.clone(),
                    input_hash: ContentHash::of(&req.input.0),
                    output_hash: ContentHash::of(&out),
                    output_bytes: out.len() as u64,
                    status: InvocationStatus::Ok,
                    exit_code: Some(0),
                    started_at_ms: now,
                    finished_at_ms: now,
                    limits: v.limits,
                    provider: secret.public(),
                    policy_hash: Some(atr_protocol::policy::Policy::of(v).hash()),
                    usage: None,
                };
                let Ok(signed) = SignedReceipt::sign(receipt, &secret) else {
                    continue;
                };
                let answer = wire::InvokeResponse::Done {
                    output: ByteBuf(out),
                    receipt: ByteBuf(signed.to_bytes()),
                };
                let Ok(bytes) = wire::encode_message(&answer) else {
                    continue;
                };
                let Some(permit) = net.reserve_response(peer, bytes.len()) else {
                    continue;
                };
                let _ = net
                    .respond(Proto::Invoke, request_id, channel, bytes, permit)
                    .await;
            }
        });
        received
    }

    /// Stops its network.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.join).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The junk-spec flood sends specs every node accepts as valid: were
    /// validation to refuse them, the attack would silently be a no-op.
    #[test]
    fn junk_specs_at_the_largest_padding_are_valid() {
        let key = SecretKey::from_seed(&[1; 32]);
        let spec = junk_spec(&key, 0, JUNK_MAX_PAD).expect("valid at JUNK_MAX_PAD");
        assert!(SignedSpec::from_bytes(&spec.to_bytes()).is_ok());
        assert!(junk_spec(&key, 0, atr_protocol::limits::MAX_SPEC_JSON_ITEMS + 1).is_none());
        assert_eq!(junk_specs(2, 3, JUNK_MAX_PAD).len(), 6);
        assert_eq!(junk_revocations(5).len(), 5);
    }
}
