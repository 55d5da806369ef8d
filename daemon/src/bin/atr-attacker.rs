//! `atr-attacker`: one hostile behaviour against one node, for the testnet's
//! attacker role and for operators testing their own budgets. Every loop is
//! bounded by `--count` and `--duration`; it targets only the address given.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use atr_protocol::wire::{self, FetchRequest, IndexRequest};
use atrd::attacker::{self, Attacker};
use atrd::network::Proto;
use clap::{Parser, ValueEnum};
use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;

/// What the attacker does.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Behaviour {
    /// `--count` identities connect and stay connected.
    Connections,
    /// `--count` index requests at once, repeated until `--duration`.
    Requests,
    /// `--count` fetches by tag at once (small request, large answer), repeated.
    Fetch,
    /// Answer sync slowly and emptily, from `--count` identities.
    SlowSync,
    /// Announce `--count` made-up DHT keys.
    Providers,
    /// Publish `--count` junk specs (padded), from 10 keys.
    Specs,
    /// Publish `--count` valid revocations of made-up names.
    Revocations,
    /// Fetch the target's objects for `--tag`, then publish them again over
    /// gossip from fresh identities, up to `--count` objects in all.
    Replay,
}

#[derive(Debug, Parser)]
#[command(
    name = "atr-attacker",
    about = "Hostile atr peer for budget tests (loopback and test networks only)"
)]
struct Args {
    /// The node to attack, `MULTIADDR/p2p/PEERID`.
    #[arg(long)]
    target: Multiaddr,
    /// What to do.
    #[arg(long, value_enum)]
    behaviour: Behaviour,
    /// How many (identities, requests, keys, specs, revocations), at most 100 000.
    #[arg(long, default_value_t = 100)]
    count: usize,
    /// How long at most, seconds (at most 3600).
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Tag used by `requests` and `fetch`.
    #[arg(long, default_value = "math")]
    tag: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Logs to stderr: stdout carries the one-line JSON report.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let a = Args::parse();
    if a.count > 100_000 || a.seconds > 3600 {
        bail!("--count is at most 100000 and --seconds at most 3600");
    }
    let duration = Duration::from_secs(a.seconds);
    let Some(Protocol::P2p(victim)) = a.target.iter().last() else {
        bail!("--target must end in /p2p/PEERID");
    };
    let deadline = Instant::now() + duration;
    let report = match a.behaviour {
        Behaviour::Connections => {
            let mut held = Vec::new();
            let mut connected = 0;
            for _ in 0..a.count {
                if Instant::now() > deadline {
                    break;
                }
                let at = Attacker::spawn().await.context("spawn")?;
                if at.connect(a.target.clone()).await.is_ok() {
                    connected += 1;
                }
                held.push(at);
            }
            tokio::time::sleep(deadline.saturating_duration_since(Instant::now())).await;
            for at in held {
                at.shutdown().await;
            }
            serde_json::json!({ "identities": a.count, "connected": connected })
        }
        Behaviour::Requests | Behaviour::Fetch => {
            let at = Attacker::spawn().await.context("spawn")?;
            at.connect(a.target.clone()).await.context("connect")?;
            let (proto, req) = match a.behaviour {
                Behaviour::Requests => (
                    Proto::Index,
                    wire::encode_message(&IndexRequest::Tag(a.tag.clone()))?,
                ),
                _ => (
                    Proto::Fetch,
                    wire::encode_message(&FetchRequest::Tag(a.tag.clone()))?,
                ),
            };
            let (mut answered, mut failed, mut bytes, mut rounds) = (0, 0, 0, 0);
            while Instant::now() < deadline && rounds < 1_000 {
                let f = at
                    .flood_requests(victim, proto, req.clone(), a.count, a.count)
                    .await;
                answered += f.answered;
                failed += f.failed;
                bytes += f.bytes;
                rounds += 1;
            }
            at.shutdown().await;
            serde_json::json!({ "answered": answered, "failed": failed, "bytes": bytes, "rounds": rounds })
        }
        Behaviour::SlowSync => {
            let mut held = Vec::new();
            for _ in 0..a.count.min(1_000) {
                let mut at = Attacker::spawn().await.context("spawn")?;
                let task = at.serve_slow_sync(Duration::from_secs(9), 4096);
                let _ = at.connect(a.target.clone()).await;
                held.push((at, task));
            }
            tokio::time::sleep(deadline.saturating_duration_since(Instant::now())).await;
            let mut answered = 0;
            for (at, task) in held {
                at.shutdown().await;
                answered += task.await.unwrap_or(0);
            }
            serde_json::json!({ "identities": a.count, "answered": answered })
        }
        Behaviour::Providers => {
            let at = Attacker::spawn().await.context("spawn")?;
            at.connect(a.target.clone()).await.context("connect")?;
            let n = tokio::time::timeout(duration, at.flood_providers(a.count))
                .await
                .ok();
            at.shutdown().await;
            serde_json::json!({ "announced": n })
        }
        Behaviour::Specs | Behaviour::Revocations => {
            // Made before the clock starts: the attack is the sending.
            let objects = match a.behaviour {
                Behaviour::Specs => attacker::junk_specs(10, a.count.div_ceil(10), attacker::JUNK_MAX_PAD),
                _ => attacker::junk_revocations(a.count),
            };
            let at = Attacker::spawn().await.context("spawn")?;
            at.connect(a.target.clone()).await.context("connect")?;
            tokio::time::sleep(Duration::from_secs(1)).await;
            let sent = at.publish_until(&objects, Some(Instant::now() + duration)).await;
            at.shutdown().await;
            serde_json::json!({ "made": objects.len(), "published": sent })
        }
        Behaviour::Replay => {
            let at = Attacker::spawn().await.context("spawn")?;
            at.connect(a.target.clone()).await.context("connect")?;
            let objects = at.harvest(victim, &a.tag).await;
            at.shutdown().await;
            let (mut sent, mut rounds) = (0, 0);
            while !objects.is_empty() && sent < a.count && Instant::now() < deadline && rounds < 1_000 {
                let at = Attacker::spawn().await.context("spawn")?;
                if at.connect(a.target.clone()).await.is_ok() {
                    // Time to join the gossip mesh.
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    let take = objects.len().min(a.count - sent);
                    sent += at.publish_until(&objects[..take], Some(deadline)).await;
                }
                at.shutdown().await;
                rounds += 1;
            }
            serde_json::json!({ "harvested": objects.len(), "replayed": sent, "rounds": rounds })
        }
    };
    println!("{report}");
    Ok(())
}
