//! `atr tool`: write, build and test a tool with the `atr-tool` SDK, no node needed.
//!
//! - [`new`]: `atr tool new NAME` scaffolds a tool crate that builds and passes its own test.
//! - [`build`]: `atr tool build [PATH]` builds it statically, packs it into a `FROM scratch`
//!   image (through the Docker Engine, no registry) and writes each tool's manifest with the
//!   image pinned by id, ready for `atr publish`.
//! - [`test`]: `atr tool test [PATH]` runs every `[[examples]]` entry of those manifests in a
//!   hardened throw-away container ([`sandbox`]), as a node would.

mod build;
mod cargo;
mod new;
mod sandbox;
mod test;

use std::path::PathBuf;

use clap::Subcommand;

/// `atr tool`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ToolArgs {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: ToolCommand,
}

/// The `atr tool` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub(crate) enum ToolCommand {
    /// Create a tool crate: one example tool, its tests and examples, ready to build.
    New {
        /// The crate's name, also the tool's: `^[a-z][a-z0-9_-]{0,63}$`.
        name: String,
        /// Where to create it [default: ./NAME].
        #[arg(long, value_name = "DIR")]
        path: Option<PathBuf>,
        /// The atr-tool SDK crate to depend on, by path [default: the one this `atr` was built
        /// with, if it is still there, else the git repository].
        #[arg(long, value_name = "DIR")]
        sdk: Option<PathBuf>,
        /// The five-line tool of the README instead of the greeter: `fn NAME(a: i64, b: i64)
        /// -> i64` adding two numbers, tagged `math`, with one example.
        #[arg(long)]
        minimal: bool,
    },
    /// Build a tool crate into a FROM scratch image and write its manifests, pinned by image id.
    Build {
        /// The tool crate's directory.
        #[arg(default_value = ".")]
        path: PathBuf,
        /// Where to write the manifests [default: target/atr].
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// The image tag [default: <package>:<version>].
        #[arg(long)]
        tag: Option<String>,
    },
    /// Run each [[examples]] entry of the crate's built manifests in the sandbox and compare outputs.
    Test {
        /// The tool crate's directory (its manifests are in target/atr; only those its
        /// `atr tool build` wrote are tested).
        #[arg(default_value = ".")]
        path: PathBuf,
        /// Test these manifests instead (repeatable).
        #[arg(long = "manifest", value_name = "FILE")]
        manifests: Vec<PathBuf>,
    },
}

/// Runs `atr tool ...`; `json` prints a JSON result instead of text.
pub(crate) async fn run(args: ToolArgs, json: bool) -> anyhow::Result<()> {
    match args.command {
        ToolCommand::New {
            name,
            path,
            sdk,
            minimal,
        } => new::new(&name, path, sdk, minimal),
        ToolCommand::Build { path, out, tag } => build::build(&path, out, tag, json).await,
        ToolCommand::Test { path, manifests } => test::test(&path, &manifests, json).await,
    }
}
