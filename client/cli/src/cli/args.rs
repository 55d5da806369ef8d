//! The command line's shape (clap derive): [`Args`] and one struct per subcommand.

use std::net::SocketAddr;
use std::path::PathBuf;

use atr_protocol::PublicKey;
use atr_protocol::export::ExportFormat;
use clap::{Parser, Subcommand, ValueEnum};

/// `atr`: talk to your local atr node — publish, find and export AI-agent tools, or serve
/// them to MCP clients.
#[derive(Debug, Parser)]
#[command(
    name = "atr",
    version,
    about = "Publish, find and export AI-agent tools through your local atr node, or serve them over MCP",
    after_help = "The node is found at --api, else $ATR_API, else http://127.0.0.1:7878. Publishing and \
                  revoking need its API token: $ATR_TOKEN, else <data dir>/api.token ($ATR_DATA_DIR, \
                  else ~/.local/share/atr).\nExit codes: 0 ok, 1 the operation failed, 2 usage error."
)]
pub struct Args {
    /// API address of the node [default: $ATR_API, else http://127.0.0.1:7878].
    #[arg(long, global = true, value_name = "URL")]
    pub(crate) api: Option<String>,
    /// Print the API's JSON instead of tables, for scripts (`export`, `mcp`, `tool new` and
    /// `completions` have no other form and refuse it).
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// Log more on stderr (-v: info, -vv: debug; RUST_LOG overrides).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Show the node's identity, addresses, peers and store counts.
    Status,
    /// Publish a tool manifest (TOML; schema file paths are relative to it).
    Publish {
        /// The manifest file.
        #[arg(value_name = "MANIFEST.toml")]
        manifest: PathBuf,
    },
    /// Find tools by tag, name, version or publisher (all filters must match).
    Find(FindCmd),
    /// Full-text search of the tools this node knows, best first.
    Search {
        /// Words to look for.
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
        /// At most this many hits (with --all: per page).
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Every hit, page after page, not only the first --limit.
        #[arg(long)]
        all: bool,
        /// With --json: id, name, version, publisher, description and tags only, no schemas.
        #[arg(long)]
        compact: bool,
    },
    /// Show one tool spec: everything an agent or operator needs to judge it.
    Show {
        /// Tool id (`atr_…`), or its first characters as tables show them.
        id: String,
    },
    /// Revoke (or with --deprecate, deprecate) a tool this node published.
    Revoke {
        /// Tool id, or its first characters.
        id: String,
        /// Why, for the people who used it.
        #[arg(long, default_value = "")]
        reason: String,
        /// The tool that replaces it.
        #[arg(long, value_name = "ID")]
        successor: Option<String>,
        /// Deprecate (hide from discovery, still runnable) instead of revoking.
        #[arg(long)]
        deprecate: bool,
    },
    /// Let another node answer invocations of a tool this node published.
    Delegate {
        /// Tool id, or its first characters.
        tool: String,
        /// The provider's peer id (`atr status` on that node shows it).
        #[arg(long, value_name = "PEER_ID")]
        to: String,
        /// How many days it lasts (at most 366); renew before it ends.
        #[arg(long, default_value_t = 30)]
        days: u64,
    },
    /// Print tool definitions for an agent API (JSON array on stdout).
    Export(ExportArgs),
    /// Show the peers this node is connected to.
    Peers,
    /// Run a tool through the node; print its output and the provider's verified receipt.
    Invoke(InvokeArgs),
    /// Show the receipts of invocations this node ran or received, newest first.
    Receipts {
        /// At most this many (the node's default is 50, its cap 1000; with --all: per page).
        #[arg(long)]
        limit: Option<usize>,
        /// Every receipt the node holds, page after page.
        #[arg(long)]
        all: bool,
    },
    /// Run another publisher's tool on this node for callers (its pinned image must be here).
    Provide {
        /// Tool id, its first 12 or more characters, or a tool name (unambiguous among active tools).
        tool: String,
    },
    /// Stop running another publisher's tool for callers.
    Unprovide {
        /// Tool id, its first characters, or the name of a provided tool.
        tool: String,
    },
    /// List the other publishers' tools this node provides.
    Provided,
    /// Serve selected tools to MCP clients over stdio, or streamable HTTP with --http.
    Mcp(McpArgs),
    /// Manage the publishers this node trusts (add, remove, list): their tools are served
    /// and resolved by name by default.
    Trust(TrustArgs),
    /// Manage an agent project's lock file of tool definitions (update).
    Lock(LockArgs),
    /// Bind secret values to names on this machine's node (`set`, `remove`, `list`): tools
    /// whose signed spec names a secret run only on a provider holding it.
    Secret(SecretArgs),
    /// Write, build and test a tool with the atr-tool SDK (new, build, test).
    Tool(super::tool::ToolArgs),
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

impl Command {
    /// The command's name when `--json` means nothing for it.
    pub(crate) fn without_json(&self) -> Option<&'static str> {
        match self {
            Self::Export(_) => Some("export"),
            Self::Mcp(_) => Some("mcp"),
            Self::Completions { .. } => Some("completions"),
            Self::Lock(_) => Some("lock update"),
            Self::Tool(t) if matches!(t.command, super::tool::ToolCommand::New { .. }) => Some("tool new"),
            _ => None,
        }
    }

    /// What a command without a `--json` form prints instead.
    pub(crate) fn what_it_prints(&self) -> &'static str {
        match self {
            Self::Export(_) => "it always prints JSON (the tool definitions)",
            Self::Mcp(_) => "it speaks the MCP protocol",
            Self::Completions { .. } => "it prints a shell script",
            Self::Lock(_) => "it prints the changes and writes the lock file",
            _ => "it prints what it created and the next steps",
        }
    }
}

fn parse_version_req(s: &str) -> Result<String, String> {
    atr_protocol::query::parse_version_req(s)
        .map(|_| s.to_owned())
        .map_err(|e| e.to_string())
}

/// Filters of `atr find` (and of `atr export`).
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct FindArgs {
    /// Tools with this tag.
    #[arg(long)]
    pub(crate) tag: Option<String>,
    /// Tools with this exact name.
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Versions matching this semver requirement, e.g. `^1.2` or `>=1, <2`.
    #[arg(long = "version", value_name = "REQ", value_parser = parse_version_req)]
    pub(crate) version_req: Option<String>,
    /// Only tools of this publisher (its peer id).
    #[arg(long, value_name = "PEER_ID")]
    pub(crate) publisher: Option<PublicKey>,
    /// Also ask the network, not only this node (takes up to ~30 s).
    #[arg(long)]
    pub(crate) network: bool,
    /// Include revoked and deprecated tools.
    #[arg(long)]
    pub(crate) include_revoked: bool,
    /// At most this many results (`atr find --all` and `atr export`: per page).
    #[arg(long)]
    pub(crate) limit: Option<usize>,
}

/// `atr find`.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct FindCmd {
    /// The filters.
    #[command(flatten)]
    pub(crate) filters: FindArgs,
    /// Every match, page after page, not only the first --limit (default 100).
    #[arg(long)]
    pub(crate) all: bool,
    /// With --json: id, name, version, publisher, description and tags only, no schemas.
    #[arg(long)]
    pub(crate) compact: bool,
}

/// The formats of `atr export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// OpenAI Chat Completions `tools[]`.
    Openai,
    /// OpenAI Responses API function tools.
    OpenaiResponses,
    /// Anthropic Messages API `tools[]`.
    Anthropic,
    /// MCP `Tool`s, as `tools/list` returns them.
    Mcp,
    /// Google Gemini function declarations.
    Gemini,
}

impl From<Format> for ExportFormat {
    fn from(f: Format) -> Self {
        match f {
            Format::Openai => Self::OpenAi,
            Format::OpenaiResponses => Self::OpenAiResponses,
            Format::Anthropic => Self::Anthropic,
            Format::Mcp => Self::Mcp,
            Format::Gemini => Self::Gemini,
        }
    }
}

/// `atr export`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ExportArgs {
    /// Target format.
    #[arg(long, value_enum)]
    pub(crate) format: Format,
    /// OpenAI formats: strict (Structured Outputs) schemas.
    #[arg(long)]
    pub(crate) strict: bool,
    /// Export exactly these tools (repeatable) instead of a find.
    #[arg(long = "id", value_name = "ID")]
    pub(crate) ids: Vec<String>,
    /// Which tools: the same filters as `atr find` (none: every active tool on this node).
    #[command(flatten)]
    pub(crate) find: FindArgs,
    /// Also export tools of publishers this node does not trust (marked untrusted, under
    /// `NAME_<publisher>`); by default only this node's own, its trusted publishers' and --id tools.
    #[arg(long)]
    pub(crate) any_publisher: bool,
    /// Refuse when a tool named in this lock file (TOML, name → id) resolves to another spec.
    #[arg(long, value_name = "FILE")]
    pub(crate) lock: Option<PathBuf>,
}

/// `atr trust`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct TrustArgs {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: TrustCommand,
}

/// The subcommands of `atr trust`.
#[derive(Debug, Clone, Subcommand)]
pub(crate) enum TrustCommand {
    /// Trust a publisher (or give it a new label).
    Add {
        /// The publisher's peer id (as `atr show` and `atr find --json` print it).
        #[arg(value_name = "PEER_ID")]
        publisher: String,
        /// A label for people, e.g. the organisation (at most 64 characters, one line).
        #[arg(long)]
        label: Option<String>,
    },
    /// Stop trusting a publisher.
    Remove {
        /// The publisher's peer id.
        #[arg(value_name = "PEER_ID")]
        publisher: String,
    },
    /// List this node's key and the publishers it trusts.
    List,
}

/// `atr lock`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct LockArgs {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: LockCommand,
}

/// The subcommands of `atr lock`.
#[derive(Debug, Clone, Subcommand)]
pub(crate) enum LockCommand {
    /// Resolve the lock file's tools (and any --tag/--name/--id) again, show what changed
    /// (a line diff of each changed spec) and write the file once accepted.
    Update(LockUpdateArgs),
}

/// `atr lock update`.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "A changed or dropped definition needs confirmation: a `y` on a terminal, or --yes. \
                  Without a terminal and without --yes nothing is written (exit 2)."
)]
pub(crate) struct LockUpdateArgs {
    /// The lock file (created if missing).
    #[arg(long, value_name = "FILE", default_value = "atr.lock")]
    pub(crate) lock: PathBuf,
    /// Also lock tools with this tag (repeatable).
    #[arg(long = "tag", value_name = "TAG")]
    pub(crate) tags: Vec<String>,
    /// Also lock tools with this name (repeatable).
    #[arg(long = "name", value_name = "NAME")]
    pub(crate) names: Vec<String>,
    /// Also lock this exact tool (repeatable).
    #[arg(long = "id", value_name = "ID")]
    pub(crate) ids: Vec<String>,
    /// Include tools of publishers this node does not trust (as `atr mcp --any-publisher`).
    #[arg(long)]
    pub(crate) any_publisher: bool,
    /// Accept the changes without asking.
    #[arg(long)]
    pub(crate) yes: bool,
}

/// `atr invoke`.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "A short id (as tables show it) that matches a stored spec is that spec; \
                        anything else is a tool name. Exit codes: 0 ok, 1 the tool or the node failed \
                        (a schema violation lists each offending JSON pointer), 2 the input is not a \
                        JSON object."
)]
pub(crate) struct InvokeArgs {
    /// Tool id (`atr_…`, or its first characters), or tool name.
    #[arg(value_name = "ID|NAME")]
    pub(crate) tool: String,
    /// With a name: the newest version matching this semver requirement, e.g. `^1.2`.
    #[arg(long = "version", value_name = "REQ", value_parser = parse_version_req)]
    pub(crate) version_req: Option<String>,
    /// With a name: the tool of this publisher (its peer id).
    #[arg(long, value_name = "PEER_ID")]
    pub(crate) publisher: Option<PublicKey>,
    /// The input object as JSON, e.g. '{"a": 2, "b": 3}' (else --input-file, else stdin).
    #[arg(long, value_name = "JSON", conflicts_with = "input_file")]
    pub(crate) input: Option<String>,
    /// Read the input object from this file (`-`: stdin).
    #[arg(long, value_name = "FILE")]
    pub(crate) input_file: Option<PathBuf>,
}

/// `atr mcp`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct McpArgs {
    /// Serve tools with this tag (repeatable).
    #[arg(long = "tag", value_name = "TAG")]
    pub(crate) tags: Vec<String>,
    /// Serve tools with this name (repeatable).
    #[arg(long = "name", value_name = "NAME")]
    pub(crate) names: Vec<String>,
    /// Serve this exact tool (repeatable).
    #[arg(long = "id", value_name = "ID")]
    pub(crate) ids: Vec<String>,
    /// Serve streamable HTTP on this address (path /mcp) instead of stdio, e.g. 127.0.0.1:8765.
    #[arg(long, value_name = "ADDR")]
    pub(crate) http: Option<SocketAddr>,
    /// Also accept this Host header over HTTP (repeatable; loopback names are always accepted).
    #[arg(long = "allow-host", value_name = "HOST", requires = "http")]
    pub(crate) allow_hosts: Vec<String>,
    /// Require the bearer token (in <data-dir>/mcp.token) on a loopback address too; it is
    /// always required on any other address.
    #[arg(long, requires = "http")]
    pub(crate) require_token: bool,
    /// Most bytes of JSON output one call hands the MCP client; a larger output becomes a tool
    /// error with its first bytes and a marker.
    #[arg(long, value_name = "BYTES", default_value_t = crate::mcp::DEFAULT_MAX_OUTPUT_BYTES)]
    pub(crate) max_output_bytes: usize,
    /// Ask the network for the selection at start, not only this node.
    #[arg(long)]
    pub(crate) network: bool,
    /// How often to re-check the selection, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    pub(crate) refresh_ms: u64,
    /// Also serve tools of publishers this node does not trust (marked untrusted, under
    /// `NAME_<publisher>`); by default only this node's own, its trusted publishers' and --id tools.
    #[arg(long)]
    pub(crate) any_publisher: bool,
    /// Serve the tools of this lock file (TOML, name → id) too, and refuse to start when one
    /// of its names resolves to another spec (`atr lock update` reviews and accepts that).
    #[arg(long, value_name = "FILE")]
    pub(crate) lock: Option<PathBuf>,
}

impl FindArgs {
    /// The API query of these filters.
    pub(crate) fn query(&self) -> atr_protocol::query::FindQuery {
        atr_protocol::query::FindQuery {
            tag: self.tag.clone(),
            name: self.name.clone(),
            version: self.version_req.clone(),
            publisher: self.publisher,
            include_revoked: self.include_revoked,
            network: self.network,
            limit: self.limit,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn bad_version_requirement_is_a_usage_error() {
        let e = Args::try_parse_from(["atr", "find", "--version", "latest"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(Args::try_parse_from(["atr", "find", "--name", "x", "--version", "^1.2"]).is_ok());
    }
}

/// `atr secret`.
#[derive(Debug, clap::Args)]
pub(crate) struct SecretArgs {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: SecretCommand,
}

/// `atr secret` subcommands. Values are read from stdin (never from the command line, where
/// they would land in shell history and `ps`).
#[derive(Debug, Subcommand)]
pub(crate) enum SecretCommand {
    /// Store the value read from stdin under NAME (file mode 0600 in the node's data dir).
    Set {
        /// The name a spec's `[permissions] secrets` uses, e.g. `API_TOKEN`.
        name: String,
    },
    /// Remove the value of NAME.
    Remove {
        /// The name.
        name: String,
    },
    /// List the names held (never the values).
    List,
}
