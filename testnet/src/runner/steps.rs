//! The steps of a scenario, one function each, and [`run_all`], which runs
//! them in order with background steps beside the later ones.
//!
//! Arrival times come from the nodes' logs (see [`crate::logs`]); call
//! latencies are measured here around each API call.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, ensure};
use atr_protocol::api::{InvokeRequest, RevokeRequest};
use atr_protocol::manifest::Manifest;
use atr_protocol::query::{FindQuery, MAX_FIND_LIMIT};
use atr_protocol::receipt::InvocationStatus;
use atr_protocol::{ToolId, limits::MAX_DESCRIPTION_LEN};
use rand::seq::{IndexedRandom, SliceRandom};
use tokio::task::JoinSet;

use super::{Ctx, Published, lock, unix_us};
use crate::logs::Arrivals;
use crate::report::{Sample, percentile};
use crate::resources;
use crate::scenario::{
    AttackStep, FindStep, InvokeStep, KillStep, PublishStep, RestartStep, RevokeStep, Step,
};
use crate::state::Mode;

/// How long a restarted node may take to catch up on what it missed. 30 s.
pub(super) const RESYNC_TIMEOUT: Duration = Duration::from_secs(30);
/// Image digest of tools that are only discovered, never run.
const FAKE_DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
/// Polling period of the waiting loops.
const POLL: Duration = Duration::from_millis(20);

/// Runs `steps` in order; background steps run until `join` or the end.
pub(super) async fn run_all(ctx: &Arc<Ctx>, steps: &[Step], tag: &str) -> anyhow::Result<()> {
    let mut background: JoinSet<anyhow::Result<()>> = JoinSet::new();
    let result = run_in_order(ctx, steps, tag, &mut background).await;
    if result.is_err() {
        background.shutdown().await;
        return result;
    }
    join(&mut background).await
}

async fn run_in_order(
    ctx: &Arc<Ctx>,
    steps: &[Step],
    tag: &str,
    background: &mut JoinSet<anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let n = steps.len();
    for (i, step) in steps.iter().enumerate() {
        let idx = i + 1;
        let t = Instant::now();
        let in_background = match step {
            Step::Find(f) => f.background,
            Step::Invoke(s) => s.background,
            Step::Attack(s) => s.background,
            _ => false,
        };
        if in_background {
            eprintln!("{tag} step {idx}/{n} {} started in the background", step.action());
            let (c, st, tag) = (ctx.clone(), step.clone(), tag.to_owned());
            background.spawn(async move {
                let line = run_step(&c, idx, &st)
                    .await
                    .with_context(|| format!("step {idx} ({})", st.action()))?;
                eprintln!("{tag} step {idx}/{n} {} (background): {line}", st.action());
                Ok(())
            });
            continue;
        }
        if matches!(step, Step::Join(_)) {
            join(background).await?;
            eprintln!("{tag} step {idx}/{n} join: background steps ended");
            continue;
        }
        let line = run_step(ctx, idx, step)
            .await
            .with_context(|| format!("step {idx} ({})", step.action()))?;
        eprintln!(
            "{tag} step {idx}/{n} {}: {line} ({:.1} s)",
            step.action(),
            t.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

async fn join(set: &mut JoinSet<anyhow::Result<()>>) -> anyhow::Result<()> {
    while let Some(r) = set.join_next().await {
        r.map_err(|e| anyhow!("a background step failed: {e}"))??;
    }
    Ok(())
}

async fn run_step(ctx: &Arc<Ctx>, idx: usize, step: &Step) -> anyhow::Result<String> {
    match step {
        Step::Publish(s) => publish(ctx, idx, s).await,
        Step::Wait(s) => {
            tokio::time::sleep(s.duration).await;
            Ok(format!("waited {:?}", s.duration))
        }
        Step::Find(s) => find(ctx, idx, s).await,
        Step::Revoke(s) => revoke(ctx, idx, s).await,
        Step::Invoke(s) => invoke(ctx, idx, s).await,
        Step::Kill(s) => kill(ctx, idx, s).await,
        Step::Restart(s) => restart(ctx, idx, s).await,
        Step::Partition(s) => {
            let sides: Vec<Vec<usize>> = s
                .sides
                .iter()
                .map(|groups| groups.iter().flat_map(|g| ctx.assignment.members(g)).collect())
                .collect();
            ctx.net.partition(&sides)?;
            ctx.record(ctx.sample(idx, "event", "partition", unix_us()));
            let sizes: Vec<usize> = sides.iter().map(Vec::len).collect();
            Ok(format!("cut into sides of {sizes:?} nodes"))
        }
        Step::Heal(_) => heal(ctx, idx).await,
        Step::Join(_) => Ok(String::new()),
        Step::Attack(s) => attack(ctx, idx, s).await,
    }
}

impl Ctx {
    fn sample(&self, idx: usize, kind: &str, series: &str, t_unix_us: i64) -> Sample {
        Sample {
            repeat: self.repeat,
            step: idx,
            kind: kind.into(),
            series: series.into(),
            t_ms: self.t_ms(t_unix_us),
            node: None,
            subject: None,
            latency_ms: None,
            value: None,
            ok: true,
            aborted: false,
            detail: None,
        }
    }

    fn all_nodes(&self) -> Vec<usize> {
        (0..self.assignment.nodes.len()).collect()
    }

    /// Tools of `tag` whose publish step ended and that are not revoked.
    fn expected_active(&self, tag: &str) -> usize {
        lock(&self.published)
            .iter()
            .filter(|p| p.done && !p.revoked && p.tag == tag)
            .count()
    }

    fn pick(&self, from: &[usize]) -> Option<usize> {
        from.choose(&mut *lock(&self.rng)).copied()
    }

    /// Ids of the tools whose publish step ended.
    fn published_ids(&self) -> Vec<String> {
        lock(&self.published)
            .iter()
            .filter(|p| p.done)
            .map(|p| p.id.to_string())
            .collect()
    }

    /// Waits until every one of `ids` has been stored on `nodes` (`None`:
    /// every live node) or `deadline` passes.
    async fn wait_arrived(&self, ids: &[String], nodes: Option<&[usize]>, deadline: Instant) {
        self.wait_until(deadline, |arr, alive| {
            let on = nodes.unwrap_or(alive);
            ids.iter()
                .all(|id| arr.spec(id).is_some_and(|m| on.iter().all(|n| m.contains_key(n))))
        })
        .await;
    }

    /// Polls the logs until `done` holds for the live nodes or `deadline` passes.
    async fn wait_until(&self, deadline: Instant, mut done: impl FnMut(&Arrivals, &[usize]) -> bool) {
        let all = self.all_nodes();
        loop {
            self.refresh();
            let alive = self.net.alive_of(&all);
            if done(&lock(&self.watch).1, &alive) || Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// A manifest for tool `name`: the `add` tool's interface, with `filler`
/// bytes of padding in the description.
pub(super) fn manifest(name: &str, tag: &str, runnable: bool, filler: usize) -> anyhow::Result<Manifest> {
    let base = format!("atr-testnet tool {name}: adds two integers.");
    let room = MAX_DESCRIPTION_LEN.saturating_sub(base.len() + 1);
    let pad = " pad".repeat(filler.min(room) / 4);
    let digest = if runnable {
        String::new()
    } else {
        format!("digest = \"{FAKE_DIGEST}\"\n")
    };
    let src = format!(
        r#"
name = "{name}"
version = "1.0.0"
description = "{base}{pad}"
tags = ["{tag}"]
input_schema = {{ type = "object", properties = {{ a = {{ type = "integer" }}, b = {{ type = "integer" }} }}, required = ["a", "b"] }}
output_schema = {{ type = "integer" }}
[runtime]
image = "atr-example-tools:latest"
{digest}command = ["/bin/add"]
"#
    );
    Manifest::from_toml(&src, "atr-testnet").map_err(|e| anyhow!("test manifest: {e}"))
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// p50, p95 and max of some values (`None`: no values).
fn spread(mut v: Vec<f64>) -> Option<[f64; 3]> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some([50.0, 95.0, 100.0].map(|q| percentile(&v, q).unwrap_or(0.0)))
}

/// "p50 x, p95 y, max z ms" of latencies.
fn brief(v: Vec<f64>) -> String {
    spread(v).map_or("no latencies".into(), |[a, b, c]| {
        format!("p50 {a:.1}, p95 {b:.1}, max {c:.1} ms")
    })
}

/// An object sent into the network: what, from which node, when (Unix µs).
struct Sent<'a> {
    subject: &'a str,
    source: usize,
    t_sent_us: i64,
}

/// Records one arrival sample per target node and one `_all` sample for
/// the object; returns the latencies and whether every target had it.
fn record_arrivals(
    ctx: &Ctx,
    idx: usize,
    (kind, series): (&str, &str),
    sent: Sent<'_>,
    arrived: &HashMap<usize, i64>,
    targets: &[usize],
) -> (Vec<f64>, bool) {
    let Sent {
        subject,
        source,
        t_sent_us,
    } = sent;
    let mut lats = Vec::new();
    let mut last = 0f64;
    for n in targets.iter().filter(|n| **n != source) {
        let mut s = ctx.sample(idx, kind, series, t_sent_us);
        s.node = Some(*n);
        s.subject = Some(subject.to_owned());
        match arrived.get(n) {
            Some(t) => {
                let l = (*t - t_sent_us) as f64 / 1000.0;
                s.latency_ms = Some(l);
                lats.push(l);
                last = last.max(l);
            }
            None => {
                s.ok = false;
                s.detail = Some("not stored within the step's timeout".into());
            }
        }
        ctx.record(s);
    }
    let want = targets.iter().filter(|n| **n != source).count();
    let all = lats.len() == want;
    let mut s = ctx.sample(idx, &format!("{kind}_all"), series, t_sent_us);
    s.node = Some(source);
    s.subject = Some(subject.to_owned());
    s.ok = all;
    s.latency_ms = all.then_some(last);
    s.detail = Some(format!("reached {}/{want} nodes", lats.len()));
    ctx.record(s);
    (lats, all)
}

async fn publish(ctx: &Arc<Ctx>, idx: usize, s: &PublishStep) -> anyhow::Result<String> {
    let members = ctx.assignment.members(&s.group);
    let mut alive = ctx.net.alive_of(&members);
    ensure!(!alive.is_empty(), "no live node in group `{}`", s.group);
    let order: Vec<usize> = if s.per_node {
        alive
            .iter()
            .flat_map(|n| std::iter::repeat_n(*n, s.count))
            .collect()
    } else {
        alive.shuffle(&mut *lock(&ctx.rng));
        (0..s.count).map(|k| alive[k % alive.len()]).collect()
    };
    let series = s.label.clone().unwrap_or_else(|| "propagation".into());
    let mut mine: Vec<(ToolId, usize, i64)> = Vec::new();
    let mut failed = 0;
    let gossip_before = gossip_counters(ctx).await;
    for (k, node) in order.iter().enumerate() {
        if k > 0 && !s.interval.is_zero() {
            tokio::time::sleep(s.interval).await;
        }
        let name = format!("t{}-s{idx}-{k}", ctx.repeat);
        let m = manifest(&name, &s.tag, s.runnable, ctx.filler)?;
        let t_pub = unix_us();
        let t = Instant::now();
        let r = ctx.net.nodes()[*node].client.publish(m).await;
        let mut sample = ctx.sample(idx, "publish", &series, t_pub);
        sample.node = Some(*node);
        sample.latency_ms = Some(ms_since(t));
        match r {
            Ok(resp) => {
                sample.subject = Some(resp.id.to_string());
                mine.push((resp.id, *node, t_pub));
                lock(&ctx.published).push(Published {
                    id: resp.id,
                    tag: s.tag.clone(),
                    node: *node,
                    done: false,
                    revoked: false,
                });
            }
            Err(e) => {
                failed += 1;
                sample.ok = false;
                sample.detail = Some(e.to_string());
            }
        }
        ctx.record(sample);
    }
    if ctx.payload_bytes.get().is_none()
        && let Some((id, node, _)) = mine.first()
        && let Ok(v) = ctx.net.nodes()[*node].client.spec(id).await
        && let Some(h) = v.envelope_hex
    {
        let _ = ctx.payload_bytes.set(h.len() / 2);
    }
    let ids: Vec<String> = mine.iter().map(|m| m.0.to_string()).collect();
    ctx.wait_arrived(&ids, None, Instant::now() + s.timeout).await;
    let targets = ctx.net.alive_of(&ctx.all_nodes());
    let dups = record_duplicates(ctx, idx, &series, &gossip_before, &gossip_counters(ctx).await);
    let (mut lats, mut complete) = (Vec::new(), 0);
    for (id, from, t_pub) in &mine {
        let subject = id.to_string();
        let arrived = lock(&ctx.watch).1.spec(&subject).cloned().unwrap_or_default();
        let (l, all) = record_arrivals(
            ctx,
            idx,
            ("propagation", &series),
            Sent {
                subject: &subject,
                source: *from,
                t_sent_us: *t_pub,
            },
            &arrived,
            &targets,
        );
        lats.extend(l);
        complete += usize::from(all);
    }
    for p in lock(&ctx.published).iter_mut() {
        if mine.iter().any(|m| m.0 == p.id) {
            p.done = true;
        }
    }
    Ok(format!(
        "published {} ({failed} failed), {complete} reached every live node; per node {}; gossip \
         duplicates per message {}",
        mine.len(),
        brief(lats),
        brief_values(dups)
    ))
}

/// Names of the gossip counters in each node's `/metrics`.
const GOSSIP_UNIQUE: &str = "atr_gossip_messages_received_total";
const GOSSIP_DUPLICATES: &str = "atr_gossip_duplicates_received_total";

/// One node's gossip counters: messages received once, copies dropped.
#[derive(Debug, Clone, Copy, PartialEq)]
struct GossipCounters {
    unique: f64,
    duplicates: f64,
}

/// The value of an unlabelled series in Prometheus text.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Every live node's gossip counters (a node that does not answer is left out).
async fn gossip_counters(ctx: &Arc<Ctx>) -> Vec<(usize, GossipCounters)> {
    let mut set = JoinSet::new();
    for n in ctx.net.alive_of(&ctx.all_nodes()) {
        let client = ctx.net.nodes()[n].client.clone();
        set.spawn(async move {
            let text = client.metrics().await.ok()?;
            Some((
                n,
                GossipCounters {
                    unique: metric(&text, GOSSIP_UNIQUE)?,
                    duplicates: metric(&text, GOSSIP_DUPLICATES)?,
                },
            ))
        });
    }
    let mut out: Vec<(usize, GossipCounters)> = set.join_all().await.into_iter().flatten().collect();
    out.sort_by_key(|(n, _)| *n);
    out
}

/// Records, per node that received gossip between the two readings, the
/// duplicate copies per message; returns the values.
fn record_duplicates(
    ctx: &Arc<Ctx>,
    idx: usize,
    series: &str,
    before: &[(usize, GossipCounters)],
    after: &[(usize, GossipCounters)],
) -> Vec<f64> {
    let now = unix_us();
    let mut values = Vec::new();
    for (n, a) in after {
        let Some((_, b)) = before.iter().find(|(m, _)| m == n) else {
            continue;
        };
        let unique = a.unique - b.unique;
        if unique <= 0.0 {
            continue;
        }
        let per_message = (a.duplicates - b.duplicates).max(0.0) / unique;
        let mut s = ctx.sample(idx, "duplicates", series, now);
        s.node = Some(*n);
        s.value = Some(per_message);
        s.detail = Some(format!(
            "{unique} messages, {} copies dropped",
            a.duplicates - b.duplicates
        ));
        ctx.record(s);
        values.push(per_message);
    }
    values
}

/// `p50/p95/max` of plain values.
fn brief_values(v: Vec<f64>) -> String {
    spread(v).map_or("–".into(), |[a, b, c]| {
        format!("p50 {a:.2} p95 {b:.2} max {c:.2}")
    })
}

async fn find(ctx: &Arc<Ctx>, idx: usize, s: &FindStep) -> anyhow::Result<String> {
    let members = ctx.assignment.members(&s.group);
    let series = s.label.clone().unwrap_or_else(|| {
        if s.network {
            "find_network".into()
        } else {
            "find".into()
        }
    });
    let count = match s.duration {
        Some(_) => crate::scenario::MAX_STEP_OPS,
        None => s.count.unwrap_or(1),
    };
    let end = s.duration.map(|d| Instant::now() + d);
    let (mut ok, mut total, mut lats) = (0usize, 0usize, Vec::new());
    for _ in 0..count {
        if end.is_some_and(|e| Instant::now() >= e) {
            break;
        }
        let t_issue = unix_us();
        let mut sample = ctx.sample(idx, "find", &series, t_issue);
        let Some(node) = ctx.pick(&ctx.net.alive_of(&members)) else {
            sample.ok = false;
            sample.detail = Some(format!("no live node in group `{}`", s.group));
            ctx.record(sample);
            total += 1;
            tokio::time::sleep(s.interval.max(POLL)).await;
            continue;
        };
        let expected = s.expect.unwrap_or_else(|| ctx.expected_active(&s.tag));
        let q = FindQuery {
            tag: Some(s.tag.clone()),
            network: s.network,
            limit: Some(MAX_FIND_LIMIT),
            ..FindQuery::default()
        };
        let t = Instant::now();
        let r = tokio::time::timeout(s.timeout, ctx.net.nodes()[node].client.find(&q)).await;
        let lat = ms_since(t);
        sample.node = Some(node);
        sample.latency_ms = Some(lat);
        match r {
            Ok(Ok(resp)) => {
                let got = resp.results.len();
                sample.ok = got >= expected;
                if !sample.ok {
                    sample.detail = Some(format!("got {got} of {expected}"));
                }
            }
            Ok(Err(e)) => {
                sample.ok = false;
                sample.aborted = !ctx.net.is_alive(node);
                sample.detail = Some(e.to_string());
            }
            Err(_) => {
                sample.ok = false;
                sample.aborted = !ctx.net.is_alive(node);
                sample.detail = Some(format!("no answer within {:?}", s.timeout));
            }
        }
        if !sample.aborted {
            total += 1;
            ok += usize::from(sample.ok);
            if sample.ok {
                lats.push(lat);
            }
        }
        ctx.record(sample);
        if !s.interval.is_zero() {
            tokio::time::sleep(s.interval).await;
        }
    }
    Ok(format!("{ok}/{total} lookups complete; {}", brief(lats)))
}

async fn revoke(ctx: &Arc<Ctx>, idx: usize, s: &RevokeStep) -> anyhow::Result<String> {
    let members = ctx.assignment.members(&s.group);
    let targets: Vec<(ToolId, usize)> = lock(&ctx.published)
        .iter()
        .filter(|p| p.done && !p.revoked && members.contains(&p.node) && ctx.net.is_alive(p.node))
        .filter(|p| s.tag.as_ref().is_none_or(|t| *t == p.tag))
        .take(s.count)
        .map(|p| (p.id, p.node))
        .collect();
    ensure!(
        !targets.is_empty(),
        "nothing to revoke: no active tool published by a live node of group `{}`",
        s.group
    );
    let series = s.label.clone().unwrap_or_else(|| "revocation".into());
    let mut revs: Vec<(String, usize, i64)> = Vec::new();
    for (k, (id, node)) in targets.iter().enumerate() {
        if k > 0 && !s.interval.is_zero() {
            tokio::time::sleep(s.interval).await;
        }
        let req = RevokeRequest {
            id: Some(*id),
            name: None,
            kind: None,
            reason: "atr-testnet".into(),
            successor: None,
        };
        let t_rev = unix_us();
        let t = Instant::now();
        let r = ctx.net.nodes()[*node].client.revoke(&req).await;
        let mut sample = ctx.sample(idx, "revoke", &series, t_rev);
        sample.node = Some(*node);
        sample.latency_ms = Some(ms_since(t));
        match r {
            Ok(resp) => {
                sample.subject = Some(resp.revocation.clone());
                revs.push((resp.revocation, *node, t_rev));
                if let Some(p) = lock(&ctx.published).iter_mut().find(|p| p.id == *id) {
                    p.revoked = true;
                }
            }
            Err(e) => {
                sample.ok = false;
                sample.detail = Some(e.to_string());
            }
        }
        ctx.record(sample);
    }
    let hashes: Vec<String> = revs.iter().map(|r| r.0.clone()).collect();
    ctx.wait_until(Instant::now() + s.timeout, |arr, alive| {
        hashes.iter().all(|h| {
            arr.revocation(h)
                .is_some_and(|m| alive.iter().all(|n| m.contains_key(n)))
        })
    })
    .await;
    let targets = ctx.net.alive_of(&ctx.all_nodes());
    let (mut lats, mut complete) = (Vec::new(), 0);
    for (hash, from, t_rev) in &revs {
        let arrived = lock(&ctx.watch).1.revocation(hash).cloned().unwrap_or_default();
        let (l, all) = record_arrivals(
            ctx,
            idx,
            ("revocation", &series),
            Sent {
                subject: hash,
                source: *from,
                t_sent_us: *t_rev,
            },
            &arrived,
            &targets,
        );
        lats.extend(l);
        complete += usize::from(all);
    }
    Ok(format!(
        "revoked {}, {complete} reached every live node; per node {}",
        revs.len(),
        brief(lats)
    ))
}

async fn invoke(ctx: &Arc<Ctx>, idx: usize, s: &InvokeStep) -> anyhow::Result<String> {
    let tools: Vec<ToolId> = lock(&ctx.published)
        .iter()
        .filter(|p| p.done && !p.revoked && p.tag == s.tag)
        .map(|p| p.id)
        .collect();
    ensure!(
        !tools.is_empty(),
        "no tool tagged `{}` was published: publish one with `runnable = true` from a provider group first",
        s.tag
    );
    let members = ctx.assignment.members(&s.group);
    let series = s.label.clone().unwrap_or_else(|| "invoke".into());
    let next = Arc::new(AtomicUsize::new(0));
    let t = Instant::now();
    let mut set: JoinSet<()> = JoinSet::new();
    for _ in 0..s.concurrency {
        let (ctx, next, tools, members, series, s) = (
            ctx.clone(),
            next.clone(),
            tools.clone(),
            members.clone(),
            series.clone(),
            s.clone(),
        );
        set.spawn(async move {
            while next.fetch_add(1, Ordering::SeqCst) < s.count {
                let t_issue = unix_us();
                let mut sample = ctx.sample(idx, "invoke", &series, t_issue);
                let (Some(node), Some(tool)) = (ctx.pick(&ctx.net.alive_of(&members)), {
                    let mut rng = lock(&ctx.rng);
                    tools.choose(&mut *rng).copied()
                }) else {
                    sample.ok = false;
                    sample.detail = Some("no live caller".into());
                    ctx.record(sample);
                    continue;
                };
                let req = InvokeRequest {
                    id: Some(tool),
                    name: None,
                    version: None,
                    publisher: None,
                    input: s.input.clone(),
                };
                let t = Instant::now();
                let r = tokio::time::timeout(s.timeout, ctx.net.nodes()[node].client.invoke(&req)).await;
                sample.node = Some(node);
                sample.subject = Some(tool.to_string());
                sample.latency_ms = Some(ms_since(t));
                match r {
                    Ok(Ok(resp)) if resp.status == InvocationStatus::Ok => {
                        sample.detail = Some(format!("provider {}", resp.provider));
                    }
                    Ok(Ok(resp)) => {
                        sample.ok = false;
                        sample.detail = Some(format!("status {:?}: {}", resp.status, resp.output));
                    }
                    Ok(Err(e)) => {
                        sample.ok = false;
                        sample.aborted = !ctx.net.is_alive(node);
                        sample.detail = Some(e.to_string());
                    }
                    Err(_) => {
                        sample.ok = false;
                        sample.detail = Some(format!("no answer within {:?}", s.timeout));
                    }
                }
                ctx.record(sample);
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.map_err(|e| anyhow!("an invocation task failed: {e}"))?;
    }
    let secs = t.elapsed().as_secs_f64();
    Ok(format!(
        "{} invocations in {secs:.1} s ({:.1}/s)",
        s.count,
        s.count as f64 / secs.max(1e-3)
    ))
}

async fn kill(ctx: &Arc<Ctx>, idx: usize, s: &KillStep) -> anyhow::Result<String> {
    let alive = ctx.net.alive_of(&ctx.assignment.members(&s.group));
    // A fraction is of the whole network (0.3: 30 % of all nodes), taken
    // from the group's live nodes.
    let n = match (s.count, s.fraction) {
        (Some(c), _) => c,
        (None, Some(f)) => ((f * ctx.assignment.nodes.len() as f64).round() as usize).max(1),
        (None, None) => 1,
    }
    .min(alive.len());
    let victims: Vec<usize> = alive.choose_multiple(&mut *lock(&ctx.rng), n).copied().collect();
    for v in &victims {
        let mut e = ctx.sample(idx, "event", "kill", unix_us());
        e.node = Some(*v);
        ctx.net.kill(*v, s.graceful).await?;
        ctx.record(e);
    }
    Ok(format!(
        "{} node(s) {:?} with {}",
        victims.len(),
        victims,
        if s.graceful { "SIGTERM" } else { "SIGKILL" }
    ))
}

/// Removes the cuts, then times how long until every live node has every
/// tool published so far (`convergence` per node, `convergence_all`).
async fn heal(ctx: &Arc<Ctx>, idx: usize) -> anyhow::Result<String> {
    let t_us = unix_us();
    ctx.net.heal()?;
    ctx.record(ctx.sample(idx, "event", "heal", t_us));
    let ids = ctx.published_ids();
    ctx.wait_arrived(&ids, None, Instant::now() + RESYNC_TIMEOUT)
        .await;
    let alive = ctx.net.alive_of(&ctx.all_nodes());
    let watch = lock(&ctx.watch);
    let (mut lats, mut complete, mut last_all) = (Vec::new(), 0usize, 0f64);
    for n in &alive {
        let mut sample = ctx.sample(idx, "convergence", "heal", t_us);
        sample.node = Some(*n);
        let times: Vec<Option<i64>> = ids
            .iter()
            .map(|id| watch.1.spec(id).and_then(|m| m.get(n)).copied())
            .collect();
        let missing = times.iter().filter(|t| t.is_none()).count();
        let late = times.iter().flatten().copied().filter(|t| *t > t_us).max();
        if missing > 0 {
            sample.ok = false;
            sample.detail = Some(format!("{missing} of {} tools still missing", ids.len()));
        } else {
            complete += 1;
            let l = late.map_or(0.0, |t| (t - t_us) as f64 / 1000.0);
            sample.latency_ms = Some(l);
            last_all = last_all.max(l);
            lats.push(l);
        }
        ctx.record(sample);
    }
    let mut all = ctx.sample(idx, "convergence_all", "heal", t_us);
    all.ok = complete == alive.len();
    all.latency_ms = all.ok.then_some(last_all);
    all.detail = Some(format!(
        "{complete}/{} nodes have all {} tools",
        alive.len(),
        ids.len()
    ));
    ctx.record(all);
    Ok(format!(
        "healed; {complete}/{} nodes have every tool; per node {}",
        alive.len(),
        brief(lats)
    ))
}

async fn restart(ctx: &Arc<Ctx>, idx: usize, s: &RestartStep) -> anyhow::Result<String> {
    let members = ctx.assignment.members(&s.group);
    let dead: Vec<usize> = members.into_iter().filter(|i| !ctx.net.is_alive(*i)).collect();
    let mut back: Vec<(usize, i64)> = Vec::new();
    for i in &dead {
        let t_us = unix_us();
        let mut e = ctx.sample(idx, "event", "restart", t_us);
        e.node = Some(*i);
        ctx.record(e);
        let mut sample = ctx.sample(idx, "restart", "restart", t_us);
        sample.node = Some(*i);
        match ctx.net.restart(*i).await {
            Ok(d) => {
                sample.latency_ms = Some(d.as_secs_f64() * 1000.0);
                back.push((*i, t_us));
            }
            Err(e) => {
                sample.ok = false;
                sample.detail = Some(format!("{e:#}"));
            }
        }
        ctx.record(sample);
    }
    if !s.wait || back.is_empty() {
        return Ok(format!("{} of {} restarted", back.len(), dead.len()));
    }
    // Every tool published so far should reach the restarted nodes again.
    let ids = ctx.published_ids();
    let nodes: Vec<usize> = back.iter().map(|(n, _)| *n).collect();
    ctx.wait_arrived(&ids, Some(&nodes), Instant::now() + RESYNC_TIMEOUT)
        .await;
    let mut lats = Vec::new();
    let watch = lock(&ctx.watch);
    for (n, t_us) in &back {
        let mut sample = ctx.sample(idx, "resync", "restart", *t_us);
        sample.node = Some(*n);
        let times: Vec<Option<i64>> = ids
            .iter()
            .map(|id| watch.1.spec(id).and_then(|m| m.get(n)).copied())
            .collect();
        let missing = times.iter().filter(|t| t.is_none()).count();
        let late: Vec<i64> = times.iter().flatten().copied().filter(|t| t > t_us).collect();
        if missing > 0 {
            sample.ok = false;
            sample.detail = Some(format!("{missing} of {} tools still missing", ids.len()));
        } else if let Some(last) = late.iter().max() {
            let l = (*last - *t_us) as f64 / 1000.0;
            sample.latency_ms = Some(l);
            lats.push(l);
            sample.detail = Some(format!("{} tools caught up", late.len()));
        } else {
            sample.detail = Some("missed nothing".into());
        }
        ctx.record(sample);
    }
    Ok(format!(
        "{} of {} restarted; caught up: {}",
        back.len(),
        dead.len(),
        brief(lats)
    ))
}

/// Runs one `atr-attacker` per victim for the step's duration, sampling each
/// victim's RSS every 250 ms; records per victim `attack_rss_peak_mib`,
/// `attack_cpu_percent` (over the attack) and whether it survived
/// (`attack_victim_alive`), with the attacker's own report as the detail.
async fn attack(ctx: &Arc<Ctx>, idx: usize, s: &AttackStep) -> anyhow::Result<String> {
    ensure!(
        ctx.net.mode() == Mode::Process,
        "attack steps run in process mode only (the attackers run on this host)"
    );
    let bin = ctx.net.atrd().with_file_name("atr-attacker");
    ensure!(
        bin.is_file(),
        "{} not found: build it beside atrd (cargo build --release -p atrd)",
        bin.display()
    );
    let alive = ctx.net.alive_of(&ctx.assignment.members(&s.group));
    let victims: Vec<usize> = alive
        .choose_multiple(&mut *lock(&ctx.rng), s.victims.min(alive.len()))
        .copied()
        .collect();
    ensure!(
        !victims.is_empty(),
        "no live node to attack in group `{}`",
        s.group
    );
    let pids: HashMap<usize, u32> = ctx.net.pids().into_iter().collect();
    let start: HashMap<usize, resources::ProcSample> = victims
        .iter()
        .filter_map(|v| Some((*v, resources::sample(*pids.get(v)?)?)))
        .collect();
    let started = Instant::now();
    let mut attackers = JoinSet::new();
    for v in &victims {
        let n = &ctx.net.nodes()[*v];
        let target = format!("/ip4/{}/tcp/{}/p2p/{}", n.api.ip(), n.p2p_port, n.peer_id);
        // `nice` (coreutils) rather than setpriority in a pre-exec hook.
        let mut cmd = tokio::process::Command::new("nice");
        cmd.args(["-n", &s.nice.to_string()])
            .arg(&bin)
            .args(["--target", &target, "--behaviour", &s.behaviour])
            .args(["--count", &s.count.to_string()])
            .args(["--seconds", &s.duration.as_secs().max(1).to_string()])
            .args(["--tag", &s.tag])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let mut e = ctx.sample(idx, "event", "attack_start", unix_us());
        e.node = Some(*v);
        e.detail = Some(s.behaviour.clone());
        ctx.record(e);
        let limit = s.duration + Duration::from_secs(60);
        let v = *v;
        attackers.spawn(async move {
            let out = tokio::time::timeout(limit, child.wait_with_output()).await;
            let report = match out {
                Ok(Ok(o)) => String::from_utf8_lossy(&o.stdout).trim().to_owned(),
                Ok(Err(e)) => format!("attacker failed: {e}"),
                Err(_) => "attacker did not end in time (killed)".to_owned(),
            };
            (v, report)
        });
    }
    let mut peak: HashMap<usize, u64> = HashMap::new();
    let mut reports: HashMap<usize, String> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    while !attackers.is_empty() {
        tokio::select! {
            done = attackers.join_next() => {
                if let Some(Ok((v, report))) = done {
                    reports.insert(v, report);
                }
            }
            _ = tick.tick() => {
                for v in &victims {
                    if let Some(p) = pids.get(v).and_then(|p| resources::sample(*p)) {
                        let e = peak.entry(*v).or_insert(0);
                        *e = (*e).max(p.rss_bytes);
                    }
                }
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let ticks = resources::clock_ticks() as f64;
    let mut lines = Vec::new();
    for v in &victims {
        let now_alive = ctx.net.is_alive(*v);
        let end = pids.get(v).and_then(|p| resources::sample(*p));
        let cpu = match (start.get(v), end) {
            (Some(a), Some(b)) => Some(100.0 * b.cpu_ticks.saturating_sub(a.cpu_ticks) as f64 / ticks / secs),
            _ => None,
        };
        let peak_mib = peak.get(v).map(|b| *b as f64 / (1024.0 * 1024.0));
        let report = reports.remove(v).unwrap_or_default();
        for (series, value) in [
            ("attack_rss_peak_mib", peak_mib),
            ("attack_cpu_percent", cpu),
            ("attack_victim_alive", Some(if now_alive { 1.0 } else { 0.0 })),
        ] {
            let mut e = ctx.sample(idx, "attack", series, unix_us());
            e.node = Some(*v);
            e.value = value;
            e.ok = now_alive;
            e.detail = Some(format!("{} {report}", s.behaviour));
            ctx.record(e);
        }
        lines.push(format!(
            "node {v}: peak RSS {} MiB, CPU {}%, {}; attacker: {report}",
            peak_mib.map_or("?".into(), |m| format!("{m:.1}")),
            cpu.map_or("?".into(), |c| format!("{c:.0}")),
            if now_alive { "alive" } else { "DEAD" }
        ));
    }
    Ok(format!("{} for {:.0}s: {}", s.behaviour, secs, lines.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gossip_counters_are_read_from_prometheus_text() {
        let text = "# HELP atr_gossip_messages_received_total x\n\
                    # TYPE atr_gossip_messages_received_total counter\n\
                    atr_gossip_messages_received_total 42\n\
                    atr_gossip_messages_received_total_extra 7\n\
                    atr_gossip_duplicates_received_total 101\n";
        assert_eq!(metric(text, GOSSIP_UNIQUE), Some(42.0));
        assert_eq!(metric(text, GOSSIP_DUPLICATES), Some(101.0));
        assert_eq!(metric(text, "atr_missing"), None);
        assert_eq!(
            metric("atr_gossip_messages_received_total abc\n", GOSSIP_UNIQUE),
            None
        );
        assert_eq!(brief_values(vec![]), "–");
        assert_eq!(brief_values(vec![3.0, 1.0, 2.0]), "p50 2.00 p95 3.00 max 3.00");
    }
}
