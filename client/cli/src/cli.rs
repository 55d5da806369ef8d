//! The `atr` command line, private to the binary: [`args`] is its shape,
//! [`commands`] runs the node commands, [`serve`] runs `atr mcp`, [`trust`]
//! runs `atr trust`, [`lock`] runs `atr lock update`, [`output`] draws tables
//! and spinners.
//!
//! Failures are `anyhow` errors printed as one line on stderr; a [`Usage`]
//! error exits 2, anything else 1 (clap's own usage errors exit 2 before
//! this runs).

mod args;
mod commands;
mod lock;
mod output;
mod secret;
mod serve;
mod tool;
mod trust;

use std::process::ExitCode;

use atr_client::ClientError;

pub use args::Args;
use args::Command;

/// A mistake in how `atr` was called, found after parsing: exits 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Usage(pub(crate) String);

/// Exit code of a failed operation.
const EXIT_FAILED: u8 = 1;
/// Exit code of a usage error (as clap's).
const EXIT_USAGE: u8 = 2;

/// Installs the stderr log subscriber: `RUST_LOG`, else `warn` (`-v` info, `-vv` debug).
pub fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn,rmcp=error",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

/// Runs one command and maps its outcome to the exit code.
pub async fn run(args: Args) -> ExitCode {
    match dispatch(args).await {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of stdout went away (`atr show … | head -1`): what it wanted, it got.
        Err(e) if output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // Errors carry remote text (a provider's refusal, a tool's stderr): one sanitiser.
            eprintln!("error: {}", output::safe(&one_line(&e)));
            for line in commands::details(&e) {
                eprintln!("  {}", output::safe(line));
            }
            if commands::is_usage(&e) {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::from(EXIT_FAILED)
            }
        }
    }
}

/// The error and its causes on one line, `context: cause`. A [`ClientError`]'s message is
/// complete by itself (its transport source only repeats it less clearly), so the chain
/// stops there.
pub(crate) fn one_line(e: &anyhow::Error) -> String {
    let mut parts = Vec::new();
    for cause in e.chain() {
        parts.push(cause.to_string());
        if cause.downcast_ref::<ClientError>().is_some() {
            break;
        }
    }
    parts.join(": ").replace('\n', " ")
}

async fn dispatch(args: Args) -> anyhow::Result<()> {
    if args.json
        && let Some(what) = args.command.without_json()
    {
        return Err(Usage(format!(
            "--json means nothing for `atr {what}`: {}",
            args.command.what_it_prints()
        ))
        .into());
    }
    if let Command::Completions { shell } = args.command {
        use clap::CommandFactory;
        clap_complete::generate(shell, &mut Args::command(), "atr", &mut std::io::stdout());
        return Ok(());
    }
    if let Command::Tool(t) = args.command {
        return tool::run(t, args.json).await;
    }
    if let Command::Secret(s) = args.command {
        return secret::run(s.command);
    }
    let ctx = commands::Ctx::new(args.api.as_deref(), args.json)?;
    match args.command {
        Command::Status => commands::status(&ctx).await,
        Command::Publish { manifest } => commands::publish(&ctx, &manifest).await,
        Command::Find(f) => commands::find(&ctx, &f).await,
        Command::Search {
            text,
            limit,
            all,
            compact,
        } => commands::search(&ctx, &text.join(" "), limit, all, compact).await,
        Command::Show { id } => commands::show(&ctx, &id).await,
        Command::Revoke {
            id,
            reason,
            successor,
            deprecate,
        } => commands::revoke(&ctx, &id, reason, successor.as_deref(), deprecate).await,
        Command::Delegate { tool, to, days } => commands::delegate(&ctx, &tool, &to, days).await,
        Command::Export(e) => commands::export(&ctx, &e).await,
        Command::Peers => commands::peers(&ctx).await,
        Command::Invoke(i) => commands::invoke(&ctx, &i).await,
        Command::Receipts { limit, all } => commands::receipts(&ctx, limit, all).await,
        Command::Provide { tool } => commands::provide(&ctx, &tool).await,
        Command::Unprovide { tool } => commands::unprovide(&ctx, &tool).await,
        Command::Provided => commands::provided(&ctx).await,
        Command::Mcp(m) => serve::mcp(&ctx, m).await,
        Command::Trust(t) => trust::trust(&ctx, t.command).await,
        Command::Lock(l) => lock::lock(&ctx, l.command).await,
        Command::Completions { .. } | Command::Tool(_) | Command::Secret(_) => Ok(()),
    }
}
