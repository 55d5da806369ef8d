//! `atrd`: parse flags, set up logging, run the node until SIGINT/SIGTERM.
//!
//! A failure is one line on stderr, `atrd: what: why (hint)`, and exit code 1:
//! no `Caused by:` list, no backtrace.

use std::process::ExitCode;

use anyhow::Context;
use atrd::config::{Cli, Config, LogFormat};
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("atrd: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::resolve(&cli).context("invalid configuration")?;
    if cli.check_config {
        let summary = config.check().context("invalid configuration")?;
        println!("configuration ok");
        for line in summary {
            println!("  {line}");
        }
        return Ok(());
    }
    init_logging(config.log_format);
    let node = atrd::Node::bind(config).await.context("cannot start")?;
    wait_for_signal().await;
    node.shutdown().await.context("shutdown")?;
    Ok(())
}

/// The error and its causes as `context: cause`, on one line. A cause whose text its
/// error's message already includes (`#[error("…: {source}")]`) is not repeated.
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.replace('\n', " ")
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,libp2p=warn"));
    // Plain text when stderr is a file or a pipe: no colour codes in saved logs.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot serve the local API on 127.0.0.1:7878: {source} (is another atrd running?)")]
    struct Bind {
        #[source]
        source: std::io::Error,
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let e = anyhow::Error::new(Bind {
            source: std::io::Error::new(std::io::ErrorKind::AddrInUse, "Address in use"),
        })
        .context("cannot start");
        assert_eq!(
            one_line(&e),
            "cannot start: cannot serve the local API on 127.0.0.1:7878: Address in use (is another atrd running?)"
        );
    }
}
