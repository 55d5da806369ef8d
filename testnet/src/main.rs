//! `atr-testnet`: multi-node experiments (work in progress: see issue 7) and
//! the example tools image.

use std::path::PathBuf;
use std::process::ExitCode;

use atr_testnet::tools_image;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "atr-testnet", version, about = "atr multi-node experiments")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the example tools statically and pack them into a FROM scratch
    /// image; prints the image id.
    ToolsImage {
        /// Image tag.
        #[arg(long, default_value = tools_image::TOOLS_IMAGE)]
        tag: String,
        /// Workspace to build in (default: the one this binary was built from).
        #[arg(long)]
        workspace_root: Option<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("atr-testnet: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Cmd::ToolsImage { tag, workspace_root } => {
            let root = workspace_root.unwrap_or_else(tools_image::default_workspace_root);
            let built = tools_image::build(&root, &tag).await?;
            eprintln!(
                "{} tools, {:.1} MB of binaries; static build {:.1} s, image build {:.2} s, image {}",
                built.tools.len(),
                built.binaries_bytes as f64 / 1e6,
                built.static_build.as_secs_f64(),
                built.image_build.as_secs_f64(),
                built
                    .image_bytes
                    .map_or("size unknown".to_owned(), |b| format!("{:.1} MB", b as f64 / 1e6)),
            );
            println!("{}", built.id);
        }
    }
    Ok(())
}
