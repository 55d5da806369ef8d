//! The node commands: status, publish, find, search, show, revoke, export, peers, invoke,
//! receipts, provide, unprovide, provided.
//!
//! Each prints the API's JSON with `--json`, else a short human rendering. An error with
//! more to say than one line is a [`Detailed`]: its headline is the `error:` line, its
//! details follow, indented.

use std::path::Path;

use crate::mcp::lock::Lock;
use crate::mcp::select::{Picked, pick, provenance_meta};
use crate::mcp::{Selection, stable_order};
use anyhow::Context;
use atr_client::client::{Client, Invocation};
use atr_client::endpoint::Endpoint;
use atr_client::error::ClientError;
use atr_protocol::api::{CompactView, DelegateRequest, InvokeRequest, RevokeRequest, SpecStatus, SpecView};
use atr_protocol::export::{self as exports, ExportFormat, ExportOptions};
use atr_protocol::id::TOOL_ID_PREFIX;
use atr_protocol::query::FindQuery;
use atr_protocol::revocation::RevocationKind;
use serde_json::Value;

use super::Usage;
use super::args::{ExportArgs, FindCmd, InvokeArgs};
use super::output::{
    MAX_CELL_CHARS, Table, bytes, cut, out, outln, print_json, print_json_array, safe, utc, with_spinner,
};
use super::trust::publisher_cell;
use atr_protocol::trust::TrustList;

/// What every command needs: the client and the output mode.
pub(crate) struct Ctx {
    pub(crate) client: Client,
    pub(crate) json: bool,
}

impl Ctx {
    pub(crate) fn new(api: Option<&str>, json: bool) -> anyhow::Result<Self> {
        let endpoint = Endpoint::from_env(api).map_err(usage_if_url)?;
        let client = Client::new(endpoint).map_err(usage_if_url)?;
        Ok(Self { client, json })
    }

    /// Resolves a tool id or short id typed by the user; a malformed one is a usage error.
    pub(crate) async fn resolve(&self, text: &str) -> anyhow::Result<atr_protocol::ToolId> {
        match with_spinner("looking up the id", self.client.resolve_id(text)).await {
            Err(e @ ClientError::InvalidId { .. }) => Err(Usage(e.to_string()).into()),
            other => Ok(other?),
        }
    }
}

fn usage_if_url(e: ClientError) -> anyhow::Error {
    match e {
        ClientError::InvalidUrl { .. } => Usage(e.to_string()).into(),
        other => other.into(),
    }
}

fn status_word(s: &SpecStatus) -> &'static str {
    match s {
        SpecStatus::Active => "active",
        SpecStatus::Deprecated { .. } => "deprecated",
        SpecStatus::Revoked => "revoked",
        _ => "other",
    }
}

pub(crate) async fn status(ctx: &Ctx) -> anyhow::Result<()> {
    let s = with_spinner("asking the node", ctx.client.status()).await?;
    if ctx.json {
        return print_json(&s);
    }
    let mut t = Table::new(&["", ""]);
    t.row(vec!["node".into(), s.peer_id.to_string()]);
    t.row(vec![
        "domain TXT".into(),
        atr_protocol::claim::txt_record(&s.peer_id),
    ]);
    t.row(vec!["version".into(), s.version.clone()]);
    t.row(vec!["api".into(), ctx.client.api_url().to_owned()]);
    let listening = if s.listen_addrs.is_empty() {
        "-".to_owned()
    } else {
        s.listen_addrs.join(", ")
    };
    t.row(vec!["listening".into(), listening]);
    let join = bootstrap_addrs(&s.listen_addrs, &s.peer_id.to_string());
    match join.split_first() {
        Some((first, rest)) => {
            t.row(vec!["bootstrap".into(), first.clone()]);
            for a in rest {
                t.row(vec![String::new(), a.clone()]);
            }
        }
        None => t.row(vec!["bootstrap".into(), "- (not listening on TCP)".into()]),
    }
    t.row(vec![
        "peers".into(),
        format!("{} connected", s.connected_peers.len()),
    ]);
    t.row(vec![
        "store".into(),
        format!(
            "{} specs, {} revocations, {} receipts, {} known peers",
            s.store.specs, s.store.revocations, s.store.receipts, s.store.peers
        ),
    ]);
    t.row(vec![
        "token".into(),
        ctx.client.endpoint().token_source.to_string(),
    ]);
    // The header row of a key/value table is empty: skip it.
    out!("{}", t.render().split_once('\n').map(|x| x.1).unwrap_or_default())?;
    Ok(())
}

/// The addresses another node passes to `atrd --bootstrap` to join this one: each TCP listen
/// address with `/p2p/PEER_ID`, routable ones first, wildcard binds (`0.0.0.0`, `::`) left out.
pub(crate) fn bootstrap_addrs(listen: &[String], peer_id: &str) -> Vec<String> {
    let mut addrs: Vec<&String> = listen
        .iter()
        .filter(|a| a.contains("/tcp/") && !a.contains("/p2p/"))
        .filter(|a| !a.starts_with("/ip4/0.0.0.0/") && !a.starts_with("/ip6/::/"))
        .collect();
    // Loopback last: other machines cannot use it.
    addrs.sort_by_key(|a| a.starts_with("/ip4/127.") || a.starts_with("/ip6/::1/"));
    addrs.into_iter().map(|a| format!("{a}/p2p/{peer_id}")).collect()
}

pub(crate) async fn publish(ctx: &Ctx, manifest: &Path) -> anyhow::Result<()> {
    let r = with_spinner("publishing", ctx.client.publish_file(manifest)).await?;
    if ctx.json {
        return print_json(&r);
    }
    if r.created {
        outln!("published {}  {}", r.spec.label(), r.id)?;
    } else {
        outln!("already published (same spec) {}  {}", r.spec.label(), r.id)?;
    }
    Ok(())
}

fn spec_table(views: &[CompactView], trust: Option<&TrustList>) -> String {
    let mut t = Table::new(&[
        "ID",
        "NAME",
        "VERSION",
        "STATUS",
        "PUBLISHER",
        "TAGS",
        "DESCRIPTION",
    ]);
    for v in views {
        t.row(vec![
            v.id.fmt_short(),
            v.name.clone(),
            v.version.to_string(),
            status_word(&v.status).into(),
            publisher_cell(trust, &v.publisher),
            v.tags.join(","),
            cut(&v.description, MAX_CELL_CHARS),
        ]);
    }
    t.render()
}

/// The node's trust list for a table's PUBLISHER column; `None` (short keys shown) when the
/// node does not answer it (an older node).
async fn trust_for_display(ctx: &Ctx) -> Option<TrustList> {
    ctx.client.trust_list().await.ok()
}

pub(crate) async fn find(ctx: &Ctx, f: &FindCmd) -> anyhow::Result<()> {
    let q = f.filters.query();
    let what = if q.network {
        "asking the network"
    } else {
        "searching"
    };
    if ctx.json && !f.compact {
        let r = if f.all {
            with_spinner(what, ctx.client.find_all(&q)).await?
        } else {
            with_spinner(what, ctx.client.find(&q)).await?
        };
        return print_json(&r);
    }
    // Tables show no schemas: the compact view carries everything they print.
    let r = if f.all {
        with_spinner(what, ctx.client.find_all_compact(&q)).await?
    } else {
        with_spinner(what, ctx.client.find_compact(&q, None)).await?
    };
    if ctx.json {
        return print_json(&r);
    }
    if r.results.is_empty() {
        outln!(
            "no tools found{}",
            if q.network {
                ""
            } else {
                " (add --network to ask peers)"
            }
        )?;
        return Ok(());
    }
    let trust = trust_for_display(ctx).await;
    out!("{}", spec_table(&r.results, trust.as_ref()))?;
    if r.fetched_from_network > 0 {
        outln!("({} fetched from the network)", r.fetched_from_network)?;
    }
    if r.next_cursor.is_some() {
        outln!("(more tools match: --all lists every one)")?;
    }
    Ok(())
}

pub(crate) async fn search(
    ctx: &Ctx,
    text: &str,
    limit: usize,
    all: bool,
    compact: bool,
) -> anyhow::Result<()> {
    if ctx.json && !compact {
        let r = if all {
            with_spinner("searching", ctx.client.search_all(text, Some(limit))).await?
        } else {
            with_spinner("searching", ctx.client.search(text, Some(limit))).await?
        };
        return print_json(&r);
    }
    let r = if all {
        with_spinner("searching", ctx.client.search_all_compact(text, Some(limit))).await?
    } else {
        with_spinner("searching", ctx.client.search_compact(text, Some(limit), None)).await?
    };
    if ctx.json {
        return print_json(&r);
    }
    if r.hits.is_empty() {
        outln!("no tools match `{text}`")?;
        return Ok(());
    }
    let trust = trust_for_display(ctx).await;
    let mut t = Table::new(&["SCORE", "ID", "NAME", "VERSION", "PUBLISHER", "DESCRIPTION"]);
    for h in &r.hits {
        t.row(vec![
            format!("{:.2}", h.score),
            h.view.id.fmt_short(),
            h.view.name.clone(),
            h.view.version.to_string(),
            publisher_cell(trust.as_ref(), &h.view.publisher),
            cut(&h.view.description, MAX_CELL_CHARS),
        ]);
    }
    out!("{}", t.render())?;
    if r.next_cursor.is_some() {
        outln!("(more tools match: --all lists every one)")?;
    }
    Ok(())
}

fn indented_json(v: &Value) -> String {
    let text = serde_json::to_string_pretty(v).unwrap_or_default();
    atr_protocol::text::escape_json(&text)
        .lines()
        .map(|l| format!("  {l}\n"))
        .collect()
}

pub(crate) async fn show(ctx: &Ctx, tool: &str) -> anyhow::Result<()> {
    let id = resolve_tool(ctx, tool).await?;
    let v = with_spinner("asking the node", ctx.client.spec(&id)).await?;
    if ctx.json {
        return print_json(&v);
    }
    let s = &v.spec;
    let status = match &v.status {
        SpecStatus::Deprecated { successor: Some(n) } => format!("deprecated, use {n}"),
        other => status_word(other).to_owned(),
    };
    outln!("{}  ({status})", s.label())?;
    let mut t = Table::new(&["", ""]);
    t.row(vec!["id".into(), v.id.to_string()]);
    let trust = trust_for_display(ctx).await;
    let standing = match &trust {
        Some(t) => format!("  ({})", publisher_cell(Some(t), &s.publisher)),
        None => String::new(),
    };
    t.row(vec!["publisher".into(), format!("{}{standing}", s.publisher)]);
    if let Some(d) = &v.domain {
        let state = match &d.status {
            atr_protocol::claim::ClaimStatus::Verified { .. } => {
                "verified (DNS TXT carries this key)".to_owned()
            }
            atr_protocol::claim::ClaimStatus::Refused { reason } => format!("NOT verified: {reason}"),
            _ => "not checked".to_owned(),
        };
        t.row(vec!["domain".into(), format!("{} — {state}", d.domain)]);
    }
    t.row(vec!["created".into(), utc(s.created_at_ms)]);
    t.row(vec!["tags".into(), s.tags.join(", ")]);
    let effects: Vec<&str> = s.side_effects.iter().map(|e| e.as_str()).collect();
    t.row(vec!["side effects".into(), effects.join(", ")]);
    t.row(vec!["cost".into(), s.cost.as_str().into()]);
    t.row(vec![
        "image".into(),
        format!("{} ({})", s.runtime.image, s.runtime.image_digest),
    ]);
    let l = &s.limits;
    t.row(vec![
        "limits".into(),
        format!(
            "{} ms, {} memory, {} cpu, {} processes, {} output",
            l.timeout_ms,
            bytes(l.memory_bytes),
            f64::from(l.cpu_millis) / 1000.0,
            l.pids,
            bytes(l.max_output_bytes)
        ),
    ]);
    if let Some(h) = &s.homepage {
        t.row(vec!["homepage".into(), h.clone()]);
    }
    if let Some(lic) = &s.license {
        t.row(vec!["license".into(), lic.clone()]);
    }
    out!("{}", t.render().split_once('\n').map(|x| x.1).unwrap_or_default())?;
    outln!("\ndescription\n  {}", s.description.replace('\n', "\n  "))?;
    outln!("\ninput schema\n{}", indented_json(&s.input_schema))?;
    if let Some(o) = &s.output_schema {
        outln!("output schema\n{}", indented_json(o))?;
    }
    if !s.examples.is_empty() {
        outln!("examples")?;
        for e in &s.examples {
            outln!("  {}  ->  {}", e.input, e.output)?;
        }
    }
    Ok(())
}

pub(crate) async fn revoke(
    ctx: &Ctx,
    id: &str,
    reason: String,
    successor: Option<&str>,
    deprecate: bool,
) -> anyhow::Result<()> {
    let id = ctx.resolve(id).await?;
    let successor = match successor {
        Some(s) => Some(ctx.resolve(s).await.context("--successor")?),
        None => None,
    };
    let req = RevokeRequest {
        id: Some(id),
        name: None,
        kind: Some(if deprecate {
            RevocationKind::Deprecate
        } else {
            RevocationKind::Revoke
        }),
        reason,
        successor,
    };
    let r = with_spinner("revoking", ctx.client.revoke(&req)).await?;
    if ctx.json {
        return print_json(&r);
    }
    let verb = if deprecate { "deprecated" } else { "revoked" };
    let ids: Vec<String> = r.affected.iter().map(|i| i.fmt_short()).collect();
    outln!(
        "{verb} {} spec(s): {}  (revocation {})",
        r.affected.len(),
        ids.join(", "),
        cut(&r.revocation, 17)
    )?;
    Ok(())
}

pub(crate) async fn delegate(ctx: &Ctx, tool: &str, to: &str, days: u64) -> anyhow::Result<()> {
    let id = ctx.resolve(tool).await?;
    let provider: atr_protocol::PublicKey = to
        .trim()
        .parse()
        .map_err(|e| Usage(format!("--to: `{}` is not a peer id: {e}", cut(to.trim(), 60))))?;
    if days == 0 || days > 366 {
        return Err(Usage("--days must be 1 to 366".into()).into());
    }
    let req = DelegateRequest {
        id: Some(id),
        name: None,
        provider,
        valid_for_secs: Some(days * 24 * 3600),
    };
    let r = with_spinner("delegating", ctx.client.delegate(&req)).await?;
    if ctx.json {
        return print_json(&r);
    }
    outln!(
        "delegated {} to {} for {days} day(s)  (delegation {})",
        id.fmt_short(),
        r.provider,
        cut(&r.delegation, 17)
    )?;
    Ok(())
}

/// Resolves a tool id (`atr_…`, or its first characters), or a name unambiguous among active
/// tools. An unknown name gets "did you mean"; an ambiguous one lists its candidates and how to
/// pick one.
async fn resolve_tool(ctx: &Ctx, text: &str) -> anyhow::Result<atr_protocol::ToolId> {
    let text = text.trim();
    if text.starts_with(TOOL_ID_PREFIX) {
        return ctx.resolve(text).await;
    }
    let found = named(ctx, text).await?;
    match found.as_slice() {
        [one] => Ok(one.id),
        [] => match with_spinner("looking up the id", ctx.client.resolve_id(text)).await {
            Ok(id) => Ok(id),
            // Too short to be looked up as an id: if it could be one, say so.
            Err(ClientError::InvalidId { .. }) => {
                let base32 = !text.is_empty()
                    && text
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b));
                let note = (base32 && text.len() < atr_protocol::id::MIN_SHORT_ID_LEN).then(|| {
                    format!(
                        "a short id needs at least {} characters",
                        atr_protocol::id::MIN_SHORT_ID_LEN
                    )
                });
                Err(unknown_name(ctx, text, note).await)
            }
            Err(e @ ClientError::NotFound { .. }) => Err(unknown_name(ctx, text, Some(e.to_string())).await),
            Err(e) => Err(e.into()),
        },
        many => Err(Detailed {
            headline: format!(
                "{} active tools are named `{text}`; pick one by its id",
                many.len()
            ),
            details: candidates(many),
            usage: true,
        }
        .into()),
    }
}

/// The active tools this node knows named exactly `name`, newest first.
async fn named(ctx: &Ctx, name: &str) -> anyhow::Result<Vec<SpecView>> {
    let q = FindQuery {
        name: Some(name.to_owned()),
        limit: Some(atr_protocol::query::MAX_FIND_LIMIT),
        ..Default::default()
    };
    match with_spinner("finding the tool", ctx.client.find(&q)).await {
        Ok(r) => {
            let mut views = r.results;
            stable_order(&mut views);
            Ok(views)
        }
        // Not a valid tool name at all: no tool has it.
        Err(ClientError::BadRequest { .. }) => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

/// One line per candidate (label, id, publisher), then how to pick one.
fn candidates(views: &[SpecView]) -> Vec<String> {
    let mut lines: Vec<String> = views
        .iter()
        .map(|v| {
            format!(
                "{:<24} {}  publisher {}",
                v.spec.label(),
                v.id,
                v.spec.publisher.fmt_short()
            )
        })
        .collect();
    lines.push("give the id (or its first characters), or with `atr invoke` add --version REQ or --publisher PEER_ID".into());
    lines
}

/// "No tool named …" (exit 1, like any lookup that finds nothing), with what the id lookup
/// said when `name` could also be the start of an id, and the closest names this node knows.
async fn unknown_name(ctx: &Ctx, name: &str, id_lookup: Option<String>) -> anyhow::Error {
    let mut headline = format!("no active tool named `{name}` on this node");
    if let Some(id) = id_lookup {
        headline = format!("{headline}, and {id}");
    }
    let close = close_names(ctx, name).await;
    let hint = if close.is_empty() {
        format!(" (`atr find --network --name {name}` asks the network)")
    } else {
        format!("; did you mean {}?", quoted_list(&close))
    };
    anyhow::anyhow!("{headline}{hint}")
}

/// `a`, `a` or `b`, `a`, `b` or `c`.
fn quoted_list(names: &[String]) -> String {
    let q: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match q.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    }
}

/// Most names suggested for a mistyped one.
const MAX_SUGGESTIONS: usize = 3;

/// Names of active tools on this node close to `name` (edit distance, or one contains the
/// other), closest first; empty when the node cannot be asked.
async fn close_names(ctx: &Ctx, name: &str) -> Vec<String> {
    let q = FindQuery {
        limit: Some(atr_protocol::query::MAX_FIND_LIMIT),
        ..Default::default()
    };
    // Names only: the compact view, no schemas.
    let Ok(all) = ctx.client.find_compact(&q, None).await else {
        return Vec::new();
    };
    let names: std::collections::BTreeSet<String> = all.results.into_iter().map(|v| v.name).collect();
    suggest(name, names.iter().map(String::as_str))
}

/// The candidates close to `typed`, closest first, at most [`MAX_SUGGESTIONS`].
pub(crate) fn suggest<'a>(typed: &str, candidates: impl Iterator<Item = &'a str>) -> Vec<String> {
    let typed_l = typed.to_lowercase();
    let max = (typed.chars().count() / 3).max(1);
    let mut scored: Vec<(usize, &str)> = candidates
        .filter_map(|c| {
            let d = edit_distance(&typed_l, &c.to_lowercase());
            let contains = typed_l.len() >= 3 && (c.contains(&typed_l) || typed_l.contains(c));
            (d <= max || contains).then_some((d, c))
        })
        .collect();
    scored.sort();
    scored
        .into_iter()
        .take(MAX_SUGGESTIONS)
        .map(|(_, c)| c.to_owned())
        .collect()
}

/// Levenshtein distance in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

pub(crate) async fn provide(ctx: &Ctx, tool: &str) -> anyhow::Result<()> {
    let id = resolve_tool(ctx, tool).await?;
    let r = with_spinner("asking the node", ctx.client.provide(&id)).await?;
    if ctx.json {
        return print_json(&r);
    }
    if r.changed {
        outln!("providing {}", r.id)?;
    } else {
        outln!("already providing {}", r.id)?;
    }
    match r.delegated_until_ms {
        Some(until) => outln!("delegated by its publisher until {}", utc(until))?,
        None => eprintln!(
            "note: this node holds no delegation of this tool from its publisher: callers send it \
             this tool's inputs only if they list it in `trusted_providers`. Ask the publisher to run \
             `atr delegate {} --to <this node's peer id>`.",
            r.id
        ),
    }
    Ok(())
}

pub(crate) async fn unprovide(ctx: &Ctx, tool: &str) -> anyhow::Result<()> {
    let id = if tool.starts_with(TOOL_ID_PREFIX) {
        ctx.resolve(tool).await?
    } else {
        let list = with_spinner("asking the node", ctx.client.provided())
            .await?
            .provided;
        let hits: Vec<_> = list.iter().filter(|p| p.name.as_deref() == Some(tool)).collect();
        match hits.as_slice() {
            [one] => one.id,
            [] => return Err(Usage(format!("this node provides no tool named `{tool}`")).into()),
            many => {
                let ids: Vec<String> = many.iter().map(|p| p.id.to_string()).collect();
                return Err(Usage(format!(
                    "this node provides {} tools named `{tool}`; give one id: {}",
                    many.len(),
                    ids.join(", ")
                ))
                .into());
            }
        }
    };
    let r = with_spinner("asking the node", ctx.client.unprovide(&id)).await?;
    if ctx.json {
        return print_json(&r);
    }
    outln!("stopped providing {}", r.id)?;
    Ok(())
}

pub(crate) async fn provided(ctx: &Ctx) -> anyhow::Result<()> {
    let r = with_spinner("asking the node", ctx.client.provided()).await?;
    if ctx.json {
        return print_json(&r);
    }
    if r.provided.is_empty() {
        outln!("this node provides no other publisher's tools")?;
        return Ok(());
    }
    let mut t = Table::new(&["ID", "NAME", "VERSION", "PUBLISHER", "DELEGATED UNTIL"]);
    for p in &r.provided {
        t.row(vec![
            p.id.fmt_short(),
            p.name.clone().unwrap_or_else(|| "?".into()),
            p.version.clone().unwrap_or_default(),
            p.publisher.map(|k| k.fmt_short()).unwrap_or_default(),
            p.delegated_until_ms.map_or_else(|| "-".into(), utc),
        ]);
    }
    out!("{}", t.render())?;
    Ok(())
}

/// What `atr export` exports: the same rule as `atr mcp` ([`pick`]): its filters' newest
/// versions (every matching version with --version or --include-revoked) of this node's own
/// and trusted publishers' tools, its --id tools, and with --any-publisher the others'.
pub(crate) async fn export_picked(ctx: &Ctx, a: &ExportArgs) -> anyhow::Result<Picked> {
    let trust = with_spinner("reading the trust list", ctx.client.trust_list()).await?;
    let lock = a.lock.as_deref().map(|p| Lock::read(p, false)).transpose()?;
    let mut found = Vec::new();
    let mut pinned = Vec::new();
    for text in &a.ids {
        let id = ctx.resolve(text).await?;
        pinned.push(with_spinner("asking the node", ctx.client.spec(&id)).await?);
    }
    if a.ids.is_empty() {
        let q = a.find.query();
        let what = if q.network {
            "asking the network"
        } else {
            "finding tools"
        };
        // Every match, page after page: an export is of all the tools the filters select.
        found = with_spinner(what, ctx.client.find_all(&q)).await?.results;
    }
    if let Some(lock) = &lock {
        // Every locked tool's name too, so a new definition of it is found (and refused).
        let mut by_lock = Selection {
            lock: Some(lock.clone()),
            ..Selection::default()
        };
        by_lock.add_lock_names(&ctx.client).await?;
        for name in by_lock.names {
            let q = FindQuery {
                name: Some(name),
                ..FindQuery::default()
            };
            match ctx.client.find_all(&q).await {
                Ok(r) => found.extend(r.results),
                Err(ClientError::BadRequest { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    let all_versions = a.find.version_req.is_some() || a.find.include_revoked;
    let picked = pick(found, pinned, &trust, a.any_publisher, all_versions);
    if let Some(lock) = &lock {
        lock.check(&picked)?;
    }
    Ok(picked)
}

pub(crate) async fn export(ctx: &Ctx, a: &ExportArgs) -> anyhow::Result<()> {
    let picked = export_picked(ctx, a).await?;
    let format = ExportFormat::from(a.format);
    let mut out = Vec::with_capacity(picked.tools.len());
    for c in &picked.tools {
        // Provenance goes where the format has a place for it (MCP `_meta`); an untrusted
        // publisher's description carries the mark in every format.
        let opts = ExportOptions {
            strict: a.strict,
            name: Some(c.name.clone()),
            meta: (format == ExportFormat::Mcp).then(|| provenance_meta(c)),
        };
        out.push(exports::export(&c.spec(), format, &opts).with_context(|| {
            format!(
                "cannot export {} ({}) as {format}",
                c.view.spec.label(),
                c.view.id.fmt_short()
            )
        })?);
    }
    print_json_array(&out)?;
    if let Some(note) = picked.hidden_note() {
        eprintln!("note: {note}");
    } else if picked.tools.is_empty() && !ctx.json {
        eprintln!("note: no tools matched; the array is empty");
    }
    Ok(())
}

pub(crate) async fn peers(ctx: &Ctx) -> anyhow::Result<()> {
    let r = with_spinner("asking the node", ctx.client.peers()).await?;
    if ctx.json {
        return print_json(&r);
    }
    if r.peers.is_empty() {
        outln!("no peers connected")?;
        return Ok(());
    }
    let mut t = Table::new(&["PEER", "SCORE", "BAD MESSAGES", "ADDRESSES"]);
    for p in &r.peers {
        t.row(vec![
            p.peer_id.clone(),
            p.score.map_or_else(|| "-".into(), |s| format!("{s:.1}")),
            p.bad_messages.to_string(),
            p.addrs.join(", "),
        ]);
    }
    out!("{}", t.render())?;
    Ok(())
}

/// A failure with a one-line headline (the `error:` line) and detail lines printed under it.
#[derive(Debug, thiserror::Error)]
#[error("{headline}")]
pub(crate) struct Detailed {
    pub(crate) headline: String,
    pub(crate) details: Vec<String>,
    /// A mistake in how `atr` was called (exit 2), not a failed operation (exit 1).
    pub(crate) usage: bool,
}

/// Whether `e` is a usage error (exit 2): a [`Usage`], or a [`Detailed`] one marked so.
pub(crate) fn is_usage(e: &anyhow::Error) -> bool {
    e.downcast_ref::<Usage>().is_some() || e.downcast_ref::<Detailed>().is_some_and(|d| d.usage)
}

/// The detail lines of `e`, when it is a [`Detailed`] error.
pub(crate) fn details(e: &anyhow::Error) -> &[String] {
    e.downcast_ref::<Detailed>().map_or(&[], |d| d.details.as_slice())
}

/// Reads the input object: `--input`, else `--input-file` (`-` is stdin), else stdin when it
/// is not a terminal. Malformed JSON, or JSON that is not an object, is a usage error.
fn read_input(a: &InvokeArgs) -> anyhow::Result<Value> {
    use std::io::{IsTerminal, Read};
    let limit = atr_protocol::limits::MAX_INPUT_BYTES;
    let read_stdin = || -> anyhow::Result<(String, String)> {
        let mut buf = String::new();
        std::io::stdin()
            .take(limit as u64 + 1)
            .read_to_string(&mut buf)
            .context("reading the input from stdin")?;
        Ok((buf, "stdin".to_owned()))
    };
    let (text, from) = match (&a.input, &a.input_file) {
        (Some(json), _) => (json.clone(), "--input".to_owned()),
        (None, Some(path)) if path.as_os_str() == "-" => read_stdin()?,
        (None, Some(path)) => {
            let len = std::fs::metadata(path)
                .with_context(|| format!("cannot read {}", path.display()))?
                .len();
            if len > limit as u64 {
                anyhow::bail!(
                    "{}: {len} bytes is over the {limit}-byte input limit",
                    path.display()
                );
            }
            let text =
                std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            (text, path.display().to_string())
        }
        (None, None) if std::io::stdin().is_terminal() => {
            return Err(Usage(
                "give the tool's input: --input JSON, --input-file FILE, or JSON on stdin".into(),
            )
            .into());
        }
        (None, None) => read_stdin()?,
    };
    if text.len() > limit {
        anyhow::bail!("the input from {from} is over the {limit}-byte limit");
    }
    if text.trim().is_empty() {
        return Err(Usage(format!(
            "the input from {from} is empty; give a JSON object, e.g. --input '{{}}'"
        ))
        .into());
    }
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| Usage(format!("the input from {from} is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(Usage(format!(
            "the input from {from} must be a JSON object, e.g. '{{\"a\": 1}}'"
        ))
        .into());
    }
    Ok(value)
}

/// What `ID|NAME` names. With `--version` or `--publisher`, a name. Else: `atr_…` is an id
/// (full, or the start of one); a name some stored spec has is that name; the start of a
/// stored spec's id is that spec; anything else is a name (the node says if it knows none).
async fn invoke_request(ctx: &Ctx, a: &InvokeArgs, input: Value) -> anyhow::Result<InvokeRequest> {
    let text = a.tool.trim();
    let by_id = |id, input| InvokeRequest {
        id: Some(id),
        name: None,
        version: None,
        publisher: None,
        input,
    };
    let by_name = |input| InvokeRequest {
        id: None,
        name: Some(text.to_owned()),
        version: a.version_req.clone(),
        publisher: a.publisher,
        input,
    };
    if a.version_req.is_some() || a.publisher.is_some() {
        return Ok(by_name(input));
    }
    if text.starts_with(TOOL_ID_PREFIX) {
        return Ok(by_id(ctx.resolve(text).await?, input));
    }
    // A name lookup is one indexed query; a short id needs a scan, so names go first.
    let named = FindQuery {
        name: Some(text.to_owned()),
        include_revoked: true,
        limit: Some(1),
        ..FindQuery::default()
    };
    match with_spinner("looking up the tool", ctx.client.find(&named)).await {
        Ok(found) if !found.results.is_empty() => return Ok(by_name(input)),
        Ok(_) | Err(ClientError::BadRequest { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    match with_spinner("looking up the id", ctx.client.resolve_id(text)).await {
        Ok(id) => Ok(by_id(id, input)),
        Err(ClientError::InvalidId { .. } | ClientError::NotFound { .. }) => Ok(by_name(input)),
        Err(e) => Err(e.into()),
    }
}

/// Turns the invocation errors that have structure into [`Detailed`] ones.
fn invoke_error(tool: &str, e: ClientError) -> anyhow::Error {
    match e {
        ClientError::InvalidInput {
            violations, total, ..
        } if !violations.is_empty() => {
            let mut details: Vec<String> = violations
                .iter()
                .map(|v| {
                    let at = if v.pointer.is_empty() {
                        "(root)"
                    } else {
                        &v.pointer
                    };
                    format!("{at}: {}", v.message)
                })
                .collect();
            if total > violations.len() {
                details.push(format!("… and {} more", total - violations.len()));
            }
            Detailed {
                headline: format!("invalid input for `{tool}`: {total} violation(s) of its input schema"),
                details,
                usage: false,
            }
            .into()
        }
        ClientError::NoProvider { attempts, .. } if !attempts.is_empty() => Detailed {
            headline: format!("no provider could run `{tool}` ({} tried)", attempts.len()),
            details: attempts
                .iter()
                .map(|a| format!("{}: {}", a.provider, a.outcome))
                .collect(),
            usage: false,
        }
        .into(),
        other => other.into(),
    }
}

/// The headline of an error (a [`Detailed`] one's, else the error itself with its causes).
fn one_line_of(e: &anyhow::Error) -> String {
    match e.downcast_ref::<Detailed>() {
        Some(d) => d.headline.clone(),
        None => super::one_line(e),
    }
}

/// One line about the run: status, tool, provider, receipt, time.
fn receipt_summary(inv: &Invocation) -> String {
    let r = inv.receipt.value();
    let provider = if inv.local {
        format!("this node ({})", r.provider.fmt_short())
    } else {
        match inv.response.provider_kind {
            Some(kind) => format!("{} ({})", r.provider.fmt_short(), kind.as_str()),
            None => r.provider.fmt_short(),
        }
    };
    let mut line = format!(
        "{} · {} · provider {provider} · receipt {} verified · {} ms",
        r.status.as_str(),
        inv.response.id.fmt_short(),
        &inv.receipt_id()[..12],
        r.finished_at_ms.saturating_sub(r.started_at_ms)
    );
    if let Some(u) = r.usage
        && (u.egress_in_bytes > 0 || u.egress_out_bytes > 0)
    {
        line.push_str(&format!(
            " · egress {} B out, {} B in",
            u.egress_out_bytes, u.egress_in_bytes
        ));
    }
    line
}

pub(crate) async fn invoke(ctx: &Ctx, a: &InvokeArgs) -> anyhow::Result<()> {
    let input = read_input(a)?;
    let req = invoke_request(ctx, a, input).await?;
    let tool = a.tool.trim();
    // A name several active tools share: the node picks one (the newest of a trusted
    // publisher); say which others there are and how to pick one of them.
    let namesakes = match &req.name {
        Some(name) => named(ctx, name).await.unwrap_or_default(),
        None => Vec::new(),
    };
    let result = with_spinner(&format!("running {tool}"), ctx.client.invoke_verified(&req)).await;
    let inv = match result {
        Ok(inv) => inv,
        Err(ClientError::NotFound { .. }) if req.name.is_some() && namesakes.is_empty() => {
            return Err(unknown_name(ctx, tool, None).await);
        }
        Err(e) => {
            let mut err = invoke_error(tool, e);
            if namesakes.len() > 1 {
                let mut details = details(&err).to_vec();
                details.push(format!(
                    "note: {} active tools are named `{tool}`; the node picked one:",
                    namesakes.len()
                ));
                details.extend(candidates(&namesakes).into_iter().map(|l| format!("  {l}")));
                err = Detailed {
                    headline: one_line_of(&err),
                    details,
                    usage: false,
                }
                .into();
            }
            return Err(err);
        }
    };
    if namesakes.len() > 1 && !ctx.json {
        let note = format!(
            "note: {} active tools are named `{tool}`; ran {} ({}). Pick another by its id (`atr find --name {tool}`).",
            namesakes.len(),
            inv.response.id.fmt_short(),
            namesakes
                .iter()
                .find(|v| v.id == inv.response.id)
                .map_or_else(String::new, |v| v.spec.label())
        );
        eprintln!("{}", safe(&note));
    }
    if ctx.json {
        print_json(&inv.response)?;
    } else if inv.is_ok() {
        print_json(&inv.response.output)?;
        eprintln!("{}", receipt_summary(&inv));
    }
    let Some(message) = inv.error_message() else {
        return Ok(());
    };
    let stderr = inv.stderr().unwrap_or_default();
    let stderr: Vec<String> = stderr
        .lines()
        .rev()
        .take(5)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .filter(|l| !l.trim().is_empty())
        .map(|l| format!("stderr: {l}"))
        .collect();
    let mut details = stderr;
    if !ctx.json {
        details.push(receipt_summary(&inv));
    }
    Err(Detailed {
        headline: format!("`{tool}` failed: {message}"),
        details,
        usage: false,
    }
    .into())
}

pub(crate) async fn receipts(ctx: &Ctx, limit: Option<usize>, all: bool) -> anyhow::Result<()> {
    let r = if all {
        with_spinner("asking the node", ctx.client.receipts_all()).await?
    } else {
        with_spinner("asking the node", ctx.client.receipts(limit)).await?
    };
    if ctx.json {
        return print_json(&r);
    }
    if r.receipts.is_empty() {
        outln!("no receipts yet (invoke a tool with `atr invoke`)")?;
        return Ok(());
    }
    // The receipts name tools by id; show each tool's name next to it (one lookup per tool).
    let mut labels: std::collections::BTreeMap<atr_protocol::ToolId, String> = Default::default();
    for x in &r.receipts {
        if let std::collections::btree_map::Entry::Vacant(slot) = labels.entry(x.tool) {
            slot.insert(match ctx.client.spec(&x.tool).await {
                Ok(v) => v.spec.label(),
                Err(_) => "?".to_owned(),
            });
        }
    }
    let mut t = Table::new(&[
        "FINISHED",
        "TOOL",
        "ID",
        "STATUS",
        "PROVIDER",
        "TIME",
        "OUTPUT",
        "INVOCATION",
    ]);
    for x in &r.receipts {
        t.row(vec![
            utc(x.finished_at_ms),
            labels.get(&x.tool).cloned().unwrap_or_default(),
            x.tool.fmt_short(),
            x.status.as_str().into(),
            x.provider.fmt_short(),
            format!("{} ms", x.finished_at_ms.saturating_sub(x.started_at_ms)),
            bytes(x.output_bytes),
            x.invocation.fmt_short(),
        ]);
    }
    out!("{}", t.render())?;
    Ok(())
}
