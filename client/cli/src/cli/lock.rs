//! `atr lock update`: re-resolve an agent project's lock file, show what changed (a line diff
//! of each changed spec's JSON) and write it once accepted.

use std::io::{BufRead, IsTerminal, Write};

use atr_client::error::ClientError;
use atr_protocol::ToolId;

use super::Usage;
use super::args::{LockCommand, LockUpdateArgs};
use super::commands::Ctx;
use super::output::{outln, with_spinner};
use crate::mcp::Selection;
use crate::mcp::lock::{Lock, line_diff};

pub(crate) async fn lock(ctx: &Ctx, cmd: LockCommand) -> anyhow::Result<()> {
    match cmd {
        LockCommand::Update(a) => update(ctx, a).await,
    }
}

/// A spec's JSON as the diff shows it (pretty, keys sorted), or why there is none.
async fn spec_text(ctx: &Ctx, id: &ToolId) -> anyhow::Result<String> {
    match ctx.client.spec(id).await {
        Ok(v) => Ok(serde_json::to_string_pretty(&v.spec)?),
        Err(ClientError::NotFound { .. }) => Ok(format!("(spec {id} is not on this node any more)")),
        Err(e) => Err(e.into()),
    }
}

async fn update(ctx: &Ctx, a: LockUpdateArgs) -> anyhow::Result<()> {
    let old = Lock::read(&a.lock, true)?;
    let mut selection = Selection {
        tags: a.tags,
        names: a.names,
        any_publisher: a.any_publisher,
        lock: Some(old.clone()),
        ..Selection::default()
    };
    for text in &a.ids {
        selection.ids.push(ctx.resolve(text).await?);
    }
    selection.add_lock_names(&ctx.client).await?;
    if selection.is_empty() {
        return Err(Usage(format!(
            "nothing to lock: {} lists no tools; give --tag, --name or --id",
            a.lock.display()
        ))
        .into());
    }
    let picked = with_spinner("resolving the tools", selection.load(&ctx.client, false)).await?;
    if let Some(note) = picked.hidden_note() {
        eprintln!("note: {note}");
    }
    let new = Lock::of(&a.lock, &picked);
    let path = a.lock.display();
    let mut changed = Vec::new();
    let mut removed = Vec::new();
    for (name, id) in &old.tools {
        match new.tools.get(name) {
            Some(now) if now != id => changed.push((name, *id, *now)),
            Some(_) => {}
            None => removed.push((name, *id)),
        }
    }
    let added: Vec<(&String, &ToolId)> = new
        .tools
        .iter()
        .filter(|(n, _)| !old.tools.contains_key(*n))
        .collect();
    if changed.is_empty() && removed.is_empty() && added.is_empty() {
        outln!("{path} is up to date ({} tools)", new.tools.len())?;
        return Ok(());
    }
    for (name, id) in &added {
        let c = picked.named(name);
        let what = c.map_or_else(String::new, |c| {
            format!("  {} ({} publisher)", c.view.spec.label(), c.standing)
        });
        outln!("+ {name} = {id}{what}")?;
    }
    for (name, id) in &removed {
        outln!("- {name} = {id}  (no longer selected: revoked, gone, or its publisher not trusted)")?;
    }
    for (name, was, now) in &changed {
        outln!("~ {name}: {was} -> {now}")?;
        let before = spec_text(ctx, was).await?;
        let after = spec_text(ctx, now).await?;
        for (kind, line) in line_diff(&before, &after) {
            outln!("    {kind} {line}")?;
        }
    }
    let needs_consent = !changed.is_empty() || !removed.is_empty();
    if needs_consent && !a.yes {
        if !std::io::stdin().is_terminal() {
            return Err(Usage(format!(
                "{} pinned definition(s) would change; review the diff above and re-run with --yes to \
                 accept (no terminal to ask on); {path} is unchanged",
                changed.len() + removed.len()
            ))
            .into());
        }
        eprint!("accept these changes to {path}? [y/N] ");
        std::io::stderr().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().take_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            anyhow::bail!("not accepted; {path} is unchanged");
        }
    }
    new.write()?;
    outln!("wrote {path} ({} tools)", new.tools.len())?;
    Ok(())
}

/// Reads one line of at most [`MAX_ANSWER_BYTES`].
trait TakeLine {
    fn take_line(&mut self, buf: &mut String) -> std::io::Result<usize>;
}

/// Longest answer read at the prompt.
const MAX_ANSWER_BYTES: u64 = 256;

impl<R: BufRead> TakeLine for R {
    fn take_line(&mut self, buf: &mut String) -> std::io::Result<usize> {
        use std::io::Read;
        self.by_ref().take(MAX_ANSWER_BYTES).read_line(buf)
    }
}
