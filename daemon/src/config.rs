//! Configuration: defaults < config file < environment < flags.
//!
//! [`ConfigFile`] is the TOML file (every field optional, unknown fields
//! refused); [`Cli`] holds the flags, each also readable from an `ATR_*`
//! environment variable; [`Config::resolve`] merges them into the validated
//! [`Config`] the node runs with.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use libp2p::Multiaddr;
use serde::Deserialize;

use crate::store::StoreOptions;

/// Default TCP/UDP port of the peer-to-peer listener.
pub const DEFAULT_P2P_PORT: u16 = 4077;

/// Why the configuration is unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// File.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid TOML of the right shape.
    #[error("config file {path}: {message}")]
    Parse {
        /// File.
        path: PathBuf,
        /// Parser message.
        message: String,
    },
    /// A value is invalid.
    #[error("config `{field}`: {message}")]
    Invalid {
        /// Field.
        field: &'static str,
        /// Why.
        message: String,
    },
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (for machines and the testnet).
    Json,
}

/// Command-line flags of `atrd`; each can also come from the environment.
#[derive(Debug, Clone, Default, clap::Parser)]
#[command(
    name = "atrd",
    version,
    about = "atr node: publish, discover and run AI-agent tools over a p2p network"
)]
pub struct Cli {
    /// Config file (TOML). Default: `<data-dir>/atrd.toml` if it exists.
    #[arg(long, env = "ATR_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory (key, store, API token). Default: `$XDG_DATA_HOME/atr` or `~/.local/share/atr`.
    #[arg(long, env = atr_protocol::local::ENV_DATA_DIR)]
    pub data_dir: Option<PathBuf>,
    /// Peer-to-peer listen address (repeatable). Default: TCP and QUIC on port 4077, all interfaces.
    #[arg(long = "listen", env = "ATR_LISTEN", value_delimiter = ',')]
    pub listen: Vec<Multiaddr>,
    /// Local API address. Default: 127.0.0.1:7878. A non-loopback address needs
    /// `--api-allow-remote`.
    #[arg(long, env = atr_protocol::local::ENV_API_ADDR)]
    pub api: Option<SocketAddr>,
    /// Serve the local API on a non-loopback `--api` address (put a TLS reverse proxy in
    /// front: the token would otherwise cross the network in clear text).
    #[arg(long, env = "ATR_API_ALLOW_REMOTE")]
    pub api_allow_remote: bool,
    /// Bootstrap peer, `MULTIADDR/p2p/PEERID` (repeatable).
    #[arg(long = "bootstrap", env = "ATR_BOOTSTRAP", value_delimiter = ',')]
    pub bootstrap: Vec<Multiaddr>,
    /// Log format.
    #[arg(long, env = "ATR_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Check the configuration (file, environment and flags) and the data directory, print
    /// what the node would run with, and exit: 0 when it would start, 1 when not. Binds
    /// nothing and writes nothing.
    #[arg(long)]
    pub check_config: bool,
}

/// The config file. Every field is optional; `None` means "use the default".
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Data directory.
    pub data_dir: Option<PathBuf>,
    /// Listen addresses.
    pub listen: Option<Vec<Multiaddr>>,
    /// Local API address.
    pub api: Option<SocketAddr>,
    /// Serve the local API on a non-loopback address (default false).
    pub api_allow_remote: Option<bool>,
    /// DNS names the local API answers to besides its loopback names and address
    /// (e.g. the name a reverse proxy forwards as `Host`).
    pub api_hosts: Option<Vec<String>>,
    /// Bootstrap peers.
    pub bootstrap: Option<Vec<Multiaddr>>,
    /// Log format.
    pub log_format: Option<LogFormat>,
    /// Publishers whose names resolve without naming the publisher, and whose tools `atr mcp`
    /// and `atr export` serve by default. They join the trust list kept in the store
    /// (`atr trust add`), where they show with source `config`; at most
    /// [`atr_protocol::trust::MAX_TRUSTED`]. `None`: only the stored list.
    pub trusted_publishers: Option<Vec<String>>,
    /// Providers this node's invocations may be answered by for any tool,
    /// besides publishers and the providers they delegated (peer ids).
    pub trusted_providers: Option<Vec<String>>,
    /// Checking publishers' domain claims.
    pub claims: Option<ClaimsSection>,
    /// Store limits.
    pub store: Option<StoreSection>,
    /// Network tuning.
    pub network: Option<NetworkSection>,
    /// Who may invoke this node's tools.
    pub invoke: Option<InvokeSection>,
    /// The Docker sandbox.
    pub sandbox: Option<SandboxSection>,
    /// Egress for tools that declare it (off by default).
    pub egress: Option<EgressSection>,
    /// The web explorer on the API address.
    pub explorer: Option<ExplorerSection>,
}

/// `[explorer]` of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplorerSection {
    /// Serve the web explorer at `/explorer` on the API address (default true).
    pub enabled: Option<bool>,
    /// Offer its invoke form, which runs tools with the API token (default false: read-only).
    pub invoke: Option<bool>,
}

/// What the operator allows the explorer (`[explorer]` of the config file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExplorerOptions {
    /// Serve the explorer at all (default true).
    pub enabled: bool,
    /// Offer the invoke form (default false: the explorer is read-only).
    pub invoke: bool,
}

impl Default for ExplorerOptions {
    fn default() -> Self {
        Self {
            enabled: true,
            invoke: false,
        }
    }
}

/// `[egress]` of the config file: the filtering proxy tools with declared egress use.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressSection {
    /// Run tools that declare egress (default false: they are refused).
    pub enabled: Option<bool>,
    /// Internal Docker network name (default `atr-egress`).
    pub network: Option<String>,
    /// Its subnet when atr creates it (default: the engine's choice).
    pub subnet: Option<String>,
    /// Non-public networks tools may reach anyway (`addr/prefix`); default none.
    pub allow_networks: Option<Vec<String>>,
    /// Fixed name → address answers for the proxy's resolver.
    pub hosts: Option<std::collections::HashMap<String, std::net::IpAddr>>,
    /// Proxied connections at once, all tools (default 64).
    pub max_connections: Option<usize>,
    /// Connections per invocation (default 16).
    pub max_connections_per_run: Option<u32>,
    /// Bytes in + out per invocation (default 16 MiB).
    pub max_bytes_per_run: Option<u64>,
    /// Name lookups per invocation (default 16).
    pub max_lookups: Option<u32>,
    /// Who keeps the egress bridge away from the host's own services (default `atr`).
    pub host_firewall: Option<HostFirewallMode>,
}

/// Who closes the egress bridge's way to the host's own addresses (`[egress] host_firewall`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum HostFirewallMode {
    /// atrd installs its own iptables chain (dropping everything from the bridge to the host
    /// but the proxy's port) and refuses to enable egress when it cannot.
    #[default]
    Atr,
    /// The operator's firewall already does it; atrd installs nothing.
    Operator,
}

/// Egress settings, resolved.
#[derive(Debug, Clone)]
pub struct EgressConfig {
    /// Run tools that declare egress.
    pub enabled: bool,
    /// Internal Docker network name.
    pub network: String,
    /// Its subnet when created.
    pub subnet: Option<String>,
    /// The proxy's rules and budgets.
    pub proxy: crate::egress::ProxyConfig,
    /// Who keeps the bridge away from the host's own services.
    pub host_firewall: HostFirewallMode,
}

impl Default for EgressConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            network: "atr-egress".into(),
            subnet: None,
            proxy: crate::egress::ProxyConfig::default(),
            host_firewall: HostFirewallMode::Atr,
        }
    }
}

/// `[invoke]` of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvokeSection {
    /// If set, only these peers may invoke (peer ids).
    pub allow: Option<Vec<String>>,
    /// These peers may never invoke.
    pub deny: Option<Vec<String>>,
}

/// `[sandbox]` of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxSection {
    /// Run tools at all (default true; false makes a discovery-only node).
    pub enabled: Option<bool>,
    /// Containers at once (default 4); more are answered `busy`.
    pub max_concurrent: Option<usize>,
    /// OCI runtime, e.g. `runsc` for gVisor (default: the engine's).
    pub runtime: Option<String>,
    /// Pre-started containers kept per tool (default 0: none).
    pub warm_pool: Option<usize>,
}

/// Invocation access control, resolved.
#[derive(Debug, Clone, Default)]
pub struct InvokeOptions {
    /// If `Some`, only these peers.
    pub allow: Option<Vec<libp2p::PeerId>>,
    /// Never these peers.
    pub deny: Vec<libp2p::PeerId>,
}

impl InvokeOptions {
    /// Whether `peer` may invoke.
    pub fn allows(&self, peer: &libp2p::PeerId) -> bool {
        !self.deny.contains(peer) && self.allow.as_ref().is_none_or(|a| a.contains(peer))
    }
}

/// Sandbox settings, resolved.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Run tools at all.
    pub enabled: bool,
    /// Sandbox options.
    pub options: crate::sandbox::SandboxOptions,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            options: crate::sandbox::SandboxOptions::default(),
        }
    }
}

/// `[claims]` of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimsSection {
    /// Name servers (`IP:PORT`) to check domain claims with; default the system's.
    pub nameservers: Option<Vec<std::net::SocketAddr>>,
    /// Shortest time a claim's answer is kept (default 60 s).
    #[serde(default, with = "humantime_serde")]
    pub min_ttl: Option<std::time::Duration>,
}

/// `[store]` of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// Most specs kept (default 100 000). At the cap new specs are refused;
    /// a tenth is reserved for this node and its trusted publishers.
    pub max_specs: Option<usize>,
    /// Most envelope bytes of specs kept (default 512 MiB); a tenth is
    /// reserved like `max_specs`.
    pub max_spec_bytes: Option<u64>,
    /// Most revocations kept (default 100 000). Revocations of held specs
    /// by their publisher are always applied, evicting unheld ones if needed.
    pub max_revocations: Option<usize>,
    /// Most revocations targeting no held spec (default 50 000; at most
    /// half of `max_revocations`). Past it such revocations are refused.
    pub max_pending_revocations: Option<usize>,
    /// How long a revocation targeting no held spec is kept (default 7 days).
    #[serde(default, with = "humantime_serde")]
    pub pending_revocation_ttl: Option<Duration>,
    /// Most receipts kept (default 100 000).
    pub max_receipts: Option<usize>,
    /// Most specs of one publisher that is neither this node nor trusted
    /// (default 1 000). Past it its specs are refused and not forwarded.
    pub publisher_max_specs: Option<u64>,
    /// Most envelope bytes of one untrusted publisher's specs (default 16 MiB).
    pub publisher_max_bytes: Option<u64>,
}

/// `[network]` of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSection {
    /// Idle connections close after this (default 5 min).
    #[serde(default, with = "humantime_serde")]
    pub idle_timeout: Option<Duration>,
    /// Gossipsub heartbeat (default 700 ms).
    #[serde(default, with = "humantime_serde")]
    pub heartbeat: Option<Duration>,
    /// Anti-entropy round interval (default 30 s).
    #[serde(default, with = "humantime_serde")]
    pub sync_interval: Option<Duration>,
    /// Penalize many peers on one IP (default true; false for single-host testnets).
    pub ip_colocation_penalty: Option<bool>,
    /// Gossipsub mesh degree D (default 6; 2..=16). Each node forwards a
    /// message to D peers, so a node receives about D copies of each.
    pub gossip_mesh_n: Option<usize>,
    /// Whether a publisher sends its own messages to every subscribed peer,
    /// not only its mesh (default true).
    pub flood_publish: Option<bool>,
    /// Messages larger than this many bytes make receivers send IDONTWANT
    /// to their mesh (gossipsub 1.2; default 1000).
    pub idontwant_threshold: Option<usize>,
    /// What peers can make this node spend (`[network.budgets]`).
    pub budgets: Option<Budgets>,
    /// Connectivity behind NAT (`[network.nat]`).
    pub nat: Option<NatOptions>,
}

/// `[network.budgets]`: what peers, strangers included, can make this node
/// spend. Every field has a default; `docs/security.md` says what happens at
/// each budget and which test exceeds it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Budgets {
    /// Established connections, all peers together.
    pub max_connections: u32,
    /// Established connections to one peer.
    pub max_connections_per_peer: u32,
    /// Inbound connections still in the handshake.
    pub max_pending_incoming: u32,
    /// Outbound dials in progress.
    pub max_pending_outgoing: u32,
    /// New connections are refused while this process uses more than this
    /// share of the machine's memory, percent (1..=100).
    pub max_memory_percent: u8,
    /// New connections are refused while this process uses more than this
    /// many MiB of physical memory; when set, it replaces `max_memory_percent`
    /// (a share of a large machine's memory is no budget for one node).
    pub max_memory_mib: Option<u64>,
    /// Requests one peer may send per second on each protocol (sync: a tenth).
    pub peer_requests_per_sec: u32,
    /// Requests one peer may send at once above its rate (sync: a tenth).
    pub peer_request_burst: u32,
    /// Gossip messages one peer may deliver per second (its own and relayed
    /// ones together); the rest are ignored unverified.
    pub peer_gossip_per_sec: u32,
    /// Gossip messages one peer may deliver at once above its rate.
    pub peer_gossip_burst: u32,
    /// Gossip specs waiting to be verified, all peers together; the rest are
    /// ignored (anti-entropy fetches what an honest one missed).
    pub gossip_spec_queue: usize,
    /// Bytes of responses built or queued for peers, all peers together.
    pub response_bytes_in_flight: usize,
    /// Anti-entropy rounds at once.
    pub sync_rounds: usize,
    /// Longest anti-entropy round.
    #[serde(with = "humantime_serde")]
    pub sync_round_deadline: Duration,
    /// DHT provider records kept for other peers, all together.
    pub dht_foreign_records: usize,
    /// DHT provider records kept for one other peer.
    pub dht_records_per_peer: usize,
}

impl Default for Budgets {
    fn default() -> Self {
        Self {
            max_connections: 256,
            max_connections_per_peer: 2,
            max_pending_incoming: 32,
            max_pending_outgoing: 64,
            max_memory_percent: 90,
            max_memory_mib: None,
            peer_requests_per_sec: 20,
            peer_request_burst: 60,
            peer_gossip_per_sec: 1_000,
            peer_gossip_burst: 5_000,
            gossip_spec_queue: 512,
            response_bytes_in_flight: 64 << 20,
            sync_rounds: 4,
            sync_round_deadline: Duration::from_secs(60),
            dht_foreign_records: 100_000,
            dht_records_per_peer: 2_048,
        }
    }
}

impl Budgets {
    /// Refuses budgets that would stop the node working at all.
    fn check(&self) -> Result<(), ConfigError> {
        let invalid = |field: &'static str, message: &str| ConfigError::Invalid {
            field,
            message: message.into(),
        };
        let positive = [
            ("network.budgets.max_connections", self.max_connections),
            (
                "network.budgets.max_connections_per_peer",
                self.max_connections_per_peer,
            ),
            ("network.budgets.max_pending_incoming", self.max_pending_incoming),
            ("network.budgets.max_pending_outgoing", self.max_pending_outgoing),
            (
                "network.budgets.peer_requests_per_sec",
                self.peer_requests_per_sec,
            ),
            ("network.budgets.peer_request_burst", self.peer_request_burst),
            ("network.budgets.peer_gossip_per_sec", self.peer_gossip_per_sec),
            ("network.budgets.peer_gossip_burst", self.peer_gossip_burst),
        ];
        for (field, v) in positive {
            if v == 0 {
                return Err(invalid(field, "must be at least 1"));
            }
        }
        if !(1..=100).contains(&self.max_memory_percent) {
            return Err(invalid("network.budgets.max_memory_percent", "must be 1..=100"));
        }
        if matches!(self.max_memory_mib, Some(0)) {
            return Err(invalid("network.budgets.max_memory_mib", "must be at least 1"));
        }
        if self.response_bytes_in_flight < atr_protocol::wire::MAX_FETCH_RESPONSE_BYTES {
            return Err(invalid(
                "network.budgets.response_bytes_in_flight",
                "must hold at least one full fetch response (4 MiB)",
            ));
        }
        if self.sync_rounds == 0 || self.sync_round_deadline < Duration::from_secs(1) {
            return Err(invalid(
                "network.budgets.sync_rounds",
                "at least one round of at least 1s",
            ));
        }
        if self.dht_records_per_peer == 0 || self.dht_foreign_records < self.dht_records_per_peer {
            return Err(invalid(
                "network.budgets.dht_foreign_records",
                "must be at least dht_records_per_peer, which must be at least 1",
            ));
        }
        Ok(())
    }
}

/// When to look for peers on the local network with mDNS (`[network.nat] mdns`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MdnsMode {
    /// When a listen address is private (RFC 1918, link-local, unique-local)
    /// or unspecified (`0.0.0.0`, `::`); never for loopback-only or public
    /// listeners.
    #[default]
    Auto,
    /// Always.
    On,
    /// Never.
    Off,
}

/// When to reserve a slot on a relay (`[network.nat] reserve`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReserveMode {
    /// When AutoNAT finds this node unreachable (private).
    #[default]
    Auto,
    /// As soon as a relay is known (nodes known to sit behind a NAT, tests).
    Always,
    /// Never.
    Never,
}

/// Connectivity behind NAT (`[network.nat]`): AutoNAT, circuit relay v2
/// (client always; server only when `relay_server`), DCUtR hole punching and
/// mDNS. Every field a stranger can spend is capped here; see
/// `docs/security.md`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatOptions {
    /// Run AutoNAT: probe whether this node is reachable, and answer other
    /// peers' probes (dial-backs, capped below).
    pub autonat: bool,
    /// First AutoNAT probe after start.
    #[serde(with = "humantime_serde")]
    pub autonat_boot_delay: Duration,
    /// Probe again after this while the status is unknown or unconfirmed.
    #[serde(with = "humantime_serde")]
    pub autonat_retry_interval: Duration,
    /// Only probe through, and answer probes of, peers seen at global IP
    /// addresses (off for private testnets).
    pub autonat_only_global_ips: bool,
    /// Dial-backs this node does for other peers per second, all together.
    pub autonat_dialbacks_per_sec: usize,
    /// Dial-backs this node does for one peer per second.
    pub autonat_dialbacks_per_peer: usize,
    /// Serve as a circuit relay v2 for other peers (off: the operator opts in).
    pub relay_server: bool,
    /// Relay reservations held for other peers, all together.
    pub relay_max_reservations: usize,
    /// Relay reservations held for one peer.
    pub relay_max_reservations_per_peer: usize,
    /// How long one reservation lasts (the client renews it).
    #[serde(with = "humantime_serde")]
    pub relay_reservation_duration: Duration,
    /// Relayed circuits at once, all together.
    pub relay_max_circuits: usize,
    /// Relayed circuits at once from or to one peer.
    pub relay_max_circuits_per_peer: usize,
    /// Longest life of one relayed circuit.
    #[serde(with = "humantime_serde")]
    pub relay_max_circuit_duration: Duration,
    /// Bytes one relayed circuit may carry (both directions together).
    pub relay_max_circuit_bytes: u64,
    /// When to reserve a slot on a relay.
    pub reserve: ReserveMode,
    /// Relays to reserve on (each ends in `/p2p/PEERID`); when empty,
    /// connected peers that offer the relay protocol are used.
    pub relays: Vec<Multiaddr>,
    /// Relays this node reserves a slot on at once.
    pub max_relays: usize,
    /// DCUtR: upgrade relayed connections to direct ones by hole punching.
    pub hole_punching: bool,
    /// mDNS discovery on the local network.
    pub mdns: MdnsMode,
    /// Peers found by mDNS that are remembered and dialed; beyond, new ones
    /// are ignored until old ones expire.
    pub mdns_max_peers: usize,
}

impl Default for NatOptions {
    fn default() -> Self {
        Self {
            autonat: true,
            autonat_boot_delay: Duration::from_secs(15),
            autonat_retry_interval: Duration::from_secs(90),
            autonat_only_global_ips: true,
            autonat_dialbacks_per_sec: 30,
            autonat_dialbacks_per_peer: 3,
            relay_server: false,
            relay_max_reservations: 128,
            relay_max_reservations_per_peer: 4,
            relay_reservation_duration: Duration::from_secs(3600),
            relay_max_circuits: 16,
            relay_max_circuits_per_peer: 4,
            relay_max_circuit_duration: Duration::from_secs(120),
            relay_max_circuit_bytes: 4 << 20,
            reserve: ReserveMode::Auto,
            relays: Vec::new(),
            max_relays: 2,
            hole_punching: true,
            mdns: MdnsMode::Auto,
            mdns_max_peers: 64,
        }
    }
}

impl NatOptions {
    /// Refuses limits that would make a feature useless, and relay addresses
    /// without a peer id.
    fn check(&self) -> Result<(), ConfigError> {
        let invalid = |field: &'static str, message: &str| ConfigError::Invalid {
            field,
            message: message.into(),
        };
        for (field, v) in [
            (
                "network.nat.autonat_dialbacks_per_sec",
                self.autonat_dialbacks_per_sec,
            ),
            (
                "network.nat.autonat_dialbacks_per_peer",
                self.autonat_dialbacks_per_peer,
            ),
            ("network.nat.relay_max_reservations", self.relay_max_reservations),
            (
                "network.nat.relay_max_reservations_per_peer",
                self.relay_max_reservations_per_peer,
            ),
            ("network.nat.relay_max_circuits", self.relay_max_circuits),
            (
                "network.nat.relay_max_circuits_per_peer",
                self.relay_max_circuits_per_peer,
            ),
            ("network.nat.max_relays", self.max_relays),
            ("network.nat.mdns_max_peers", self.mdns_max_peers),
        ] {
            if v == 0 {
                return Err(invalid(field, "must be at least 1"));
            }
        }
        if self.relay_max_circuit_bytes < 1024 {
            return Err(invalid(
                "network.nat.relay_max_circuit_bytes",
                "must be at least 1024",
            ));
        }
        for (field, d) in [
            (
                "network.nat.relay_max_circuit_duration",
                self.relay_max_circuit_duration,
            ),
            (
                "network.nat.relay_reservation_duration",
                self.relay_reservation_duration,
            ),
            ("network.nat.autonat_retry_interval", self.autonat_retry_interval),
        ] {
            if d < Duration::from_secs(1) {
                return Err(invalid(field, "must be at least 1s"));
            }
        }
        for r in &self.relays {
            if !matches!(r.iter().last(), Some(libp2p::multiaddr::Protocol::P2p(_))) {
                return Err(ConfigError::Invalid {
                    field: "network.nat.relays",
                    message: format!("`{r}` must end in /p2p/PEERID"),
                });
            }
        }
        Ok(())
    }
}

/// Network tuning, resolved.
#[derive(Debug, Clone)]
pub struct NetworkOptions {
    /// Listen addresses.
    pub listen: Vec<Multiaddr>,
    /// Bootstrap peers.
    pub bootstrap: Vec<Multiaddr>,
    /// Idle connection timeout.
    pub idle_timeout: Duration,
    /// Gossipsub heartbeat.
    pub heartbeat: Duration,
    /// Anti-entropy interval.
    pub sync_interval: Duration,
    /// Penalize many peers sharing one IP (a Sybil defence). Off for
    /// loopback and single-host testnets, where every peer shares one IP.
    pub ip_colocation_penalty: bool,
    /// Gossipsub mesh degree D (low D-1, high 2D).
    pub gossip_mesh_n: usize,
    /// Publishers send their own messages to every subscribed peer.
    pub flood_publish: bool,
    /// Size above which received messages trigger IDONTWANT, bytes.
    pub idontwant_threshold: usize,
    /// What peers can make this node spend.
    pub budgets: Budgets,
    /// Connectivity behind NAT.
    pub nat: NatOptions,
}

impl Default for NetworkOptions {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            bootstrap: Vec::new(),
            idle_timeout: Duration::from_secs(300),
            heartbeat: Duration::from_millis(700),
            sync_interval: Duration::from_secs(30),
            ip_colocation_penalty: true,
            gossip_mesh_n: DEFAULT_GOSSIP_MESH_N,
            flood_publish: true,
            idontwant_threshold: DEFAULT_IDONTWANT_THRESHOLD,
            budgets: Budgets::default(),
            nat: NatOptions::default(),
        }
    }
}

/// Gossipsub's default mesh degree.
pub const DEFAULT_GOSSIP_MESH_N: usize = 6;
/// Gossipsub's default IDONTWANT size threshold, bytes.
pub const DEFAULT_IDONTWANT_THRESHOLD: usize = 1000;
/// Range of `network.gossip_mesh_n`.
pub const GOSSIP_MESH_N_RANGE: std::ops::RangeInclusive<usize> = 2..=16;

/// The validated configuration the node runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Data directory.
    pub data_dir: PathBuf,
    /// Local API address.
    pub api: SocketAddr,
    /// Whether a non-loopback [`Self::api`] was allowed explicitly.
    pub api_allow_remote: bool,
    /// Extra `Host` names the local API answers to (lower case).
    pub api_hosts: Vec<String>,
    /// Log format.
    pub log_format: LogFormat,
    /// Trusted publishers for name resolution.
    pub trusted_publishers: Vec<atr_protocol::PublicKey>,
    /// Providers trusted to answer any tool's invocations.
    pub trusted_providers: Vec<atr_protocol::PublicKey>,
    /// Checking publishers' domain claims.
    pub claims: crate::claims::ClaimOptions,
    /// Store limits.
    pub store: StoreOptions,
    /// Network.
    pub network: NetworkOptions,
    /// Invocation access control.
    pub invoke: InvokeOptions,
    /// Sandbox.
    pub sandbox: SandboxConfig,
    /// Egress proxy for tools that declare egress.
    pub egress: EgressConfig,
    /// The web explorer.
    pub explorer: ExplorerOptions,
}

fn default_listen() -> Vec<Multiaddr> {
    [
        format!("/ip4/0.0.0.0/tcp/{DEFAULT_P2P_PORT}"),
        format!("/ip4/0.0.0.0/udp/{DEFAULT_P2P_PORT}/quic-v1"),
    ]
    .iter()
    .filter_map(|s| s.parse().ok())
    .collect()
}

/// The default data directory: [`atr_protocol::local::data_dir`] of this process's
/// environment (the rule `atr-client` uses too).
pub fn default_data_dir() -> PathBuf {
    atr_protocol::local::data_dir(
        std::env::var_os("XDG_DATA_HOME").as_deref(),
        std::env::var_os("HOME").as_deref(),
    )
}

impl Config {
    /// What `atrd --check-config` checks beyond parsing: the data directory is a directory
    /// (or can be created: its nearest existing ancestor is a directory), and a key or store
    /// already there is a regular file. Returns the summary it prints.
    pub fn check(&self) -> Result<Vec<String>, ConfigError> {
        let dir = &self.data_dir;
        let invalid = |message: String| ConfigError::Invalid {
            field: "data_dir",
            message,
        };
        match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => {
                for f in [crate::identity::KEY_FILE, crate::store::STORE_FILE, "api.token"] {
                    let p = dir.join(f);
                    if let Ok(m) = std::fs::symlink_metadata(&p)
                        && !m.is_file()
                    {
                        return Err(invalid(format!("{} is not a regular file", p.display())));
                    }
                }
            }
            Ok(_) => return Err(invalid(format!("{} is not a directory", dir.display()))),
            Err(_) => {
                let parent = dir.ancestors().skip(1).find(|a| a.exists());
                if !parent.is_some_and(Path::is_dir) {
                    return Err(invalid(format!(
                        "{} does not exist and cannot be created (no parent directory)",
                        dir.display()
                    )));
                }
            }
        }
        let listen: Vec<String> = self.network.listen.iter().map(ToString::to_string).collect();
        Ok(vec![
            format!("data_dir      {}", dir.display()),
            format!("api           {} (remote: {})", self.api, self.api_allow_remote),
            format!("api_hosts     {}", self.api_hosts.join(", ")),
            format!("listen        {}", listen.join(", ")),
            format!("bootstrap     {} peer(s)", self.network.bootstrap.len()),
            format!(
                "trusted       {} publisher(s), {} provider(s)",
                self.trusted_publishers.len(),
                self.trusted_providers.len()
            ),
            format!(
                "sandbox       {}",
                if self.sandbox.enabled {
                    "on (needs the Docker Engine socket)"
                } else {
                    "off (discovery only)"
                }
            ),
            format!(
                "explorer      {}",
                match (self.explorer.enabled, self.explorer.invoke) {
                    (false, _) => "off",
                    (true, false) => "on, read-only",
                    (true, true) => "on, with the invoke form",
                }
            ),
            format!("log_format    {:?}", self.log_format),
        ])
    }

    /// A config for `data_dir` with every default (tests and embedding).
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            api: atr_protocol::api::DEFAULT_API_ADDR
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 7878))),
            api_allow_remote: false,
            api_hosts: Vec::new(),
            log_format: LogFormat::Text,
            trusted_publishers: Vec::new(),
            trusted_providers: Vec::new(),
            claims: crate::claims::ClaimOptions {
                nameservers: Vec::new(),
                min_ttl: std::time::Duration::from_secs(60),
            },
            store: StoreOptions::default(),
            network: NetworkOptions::default(),
            invoke: InvokeOptions::default(),
            sandbox: SandboxConfig::default(),
            egress: EgressConfig::default(),
            explorer: ExplorerOptions::default(),
        }
    }

    /// Merges defaults, the config file (if any) and the flags/environment.
    pub fn resolve(cli: &Cli) -> Result<Self, ConfigError> {
        let data_dir_hint = cli.data_dir.clone().unwrap_or_else(default_data_dir);
        let file_path = cli.config.clone().or_else(|| {
            let p = data_dir_hint.join("atrd.toml");
            p.exists().then_some(p)
        });
        let file = match &file_path {
            Some(p) => Self::read_file(p)?,
            None => ConfigFile::default(),
        };
        let mut c = Self::with_data_dir(
            cli.data_dir
                .clone()
                .or(file.data_dir.clone())
                .unwrap_or(data_dir_hint),
        );
        if let Some(a) = cli.api.or(file.api) {
            c.api = a;
        }
        c.api_allow_remote = cli.api_allow_remote || file.api_allow_remote.unwrap_or(false);
        c.api_hosts = check_api_hosts(file.api_hosts.unwrap_or_default())?;
        if !c.api.ip().is_loopback() && !c.api_allow_remote {
            return Err(ConfigError::Invalid {
                field: "api",
                message: format!(
                    "{} is not a loopback address: the API token would cross the network in clear text and anyone there could read this node's API; bind to 127.0.0.1 (and put a TLS reverse proxy in front, see docs/security.md), or set `api_allow_remote = true` / --api-allow-remote",
                    c.api
                ),
            });
        }
        c.log_format = cli.log_format.or(file.log_format).unwrap_or_default();
        if !cli.listen.is_empty() {
            c.network.listen = cli.listen.clone();
        } else if let Some(l) = file.listen {
            c.network.listen = l;
        }
        if !cli.bootstrap.is_empty() {
            c.network.bootstrap = cli.bootstrap.clone();
        } else if let Some(b) = file.bootstrap {
            c.network.bootstrap = b;
        }
        for b in &c.network.bootstrap {
            if !b.iter().any(|p| matches!(p, libp2p::multiaddr::Protocol::P2p(_))) {
                return Err(ConfigError::Invalid {
                    field: "bootstrap",
                    message: format!("`{b}` must end in /p2p/PEERID"),
                });
            }
        }
        c.trusted_publishers = parse_keys(file.trusted_publishers, "trusted_publishers")?;
        c.trusted_providers = parse_keys(file.trusted_providers, "trusted_providers")?;
        if let Some(cl) = file.claims {
            if let Some(ns) = cl.nameservers {
                if ns.len() > 8 {
                    return Err(ConfigError::Invalid {
                        field: "claims.nameservers",
                        message: "at most 8".into(),
                    });
                }
                c.claims.nameservers = ns;
            }
            if let Some(t) = cl.min_ttl {
                c.claims.min_ttl = t;
            }
        }
        if let Some(s) = file.store {
            apply_store(&mut c.store, s)?;
        }
        if let Some(n) = file.network {
            if let Some(d) = n.idle_timeout {
                c.network.idle_timeout = d;
            }
            if let Some(d) = n.heartbeat {
                if d < Duration::from_millis(50) {
                    return Err(ConfigError::Invalid {
                        field: "network.heartbeat",
                        message: "must be at least 50ms".into(),
                    });
                }
                c.network.heartbeat = d;
            }
            if let Some(d) = n.sync_interval {
                c.network.sync_interval = d;
            }
            if let Some(b) = n.ip_colocation_penalty {
                c.network.ip_colocation_penalty = b;
            }
            if let Some(d) = n.gossip_mesh_n {
                if !GOSSIP_MESH_N_RANGE.contains(&d) {
                    return Err(ConfigError::Invalid {
                        field: "network.gossip_mesh_n",
                        message: format!(
                            "must be {}..={}",
                            GOSSIP_MESH_N_RANGE.start(),
                            GOSSIP_MESH_N_RANGE.end()
                        ),
                    });
                }
                c.network.gossip_mesh_n = d;
            }
            if let Some(b) = n.flood_publish {
                c.network.flood_publish = b;
            }
            if let Some(t) = n.idontwant_threshold {
                c.network.idontwant_threshold = t;
            }
            if let Some(b) = n.budgets {
                b.check()?;
                c.network.budgets = b;
            }
            if let Some(nat) = n.nat {
                nat.check()?;
                c.network.nat = nat;
            }
        }
        if let Some(i) = file.invoke {
            let parse = |field: &'static str, v: Vec<String>| -> Result<Vec<libp2p::PeerId>, ConfigError> {
                v.iter()
                    .map(|p| {
                        p.parse().map_err(|e| ConfigError::Invalid {
                            field,
                            message: format!("`{p}`: {e}"),
                        })
                    })
                    .collect()
            };
            c.invoke.allow = i.allow.map(|a| parse("invoke.allow", a)).transpose()?;
            c.invoke.deny = parse("invoke.deny", i.deny.unwrap_or_default())?;
        }
        if let Some(s) = file.sandbox {
            c.sandbox.enabled = s.enabled.unwrap_or(true);
            if let Some(n) = s.max_concurrent {
                c.sandbox.options.max_concurrent = n.clamp(1, 256);
            }
            c.sandbox.options.runtime = s.runtime;
            c.sandbox.options.warm_pool = s.warm_pool.unwrap_or(0).min(8);
        }
        if let Some(e) = file.egress {
            let d = crate::egress::EgressLimits::default();
            c.egress.enabled = e.enabled.unwrap_or(false);
            if let Some(n) = e.network {
                c.egress.network = n;
            }
            c.egress.subnet = e.subnet;
            c.egress.host_firewall = e.host_firewall.unwrap_or_default();
            c.egress.proxy.allow_networks = e
                .allow_networks
                .unwrap_or_default()
                .iter()
                .map(|n| {
                    n.parse().map_err(|message| ConfigError::Invalid {
                        field: "egress.allow_networks",
                        message,
                    })
                })
                .collect::<Result<_, _>>()?;
            c.egress.proxy.hosts = e
                .hosts
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect();
            c.egress.proxy.limits = crate::egress::EgressLimits {
                max_connections: e.max_connections.unwrap_or(d.max_connections).clamp(1, 4096),
                max_connections_per_run: e.max_connections_per_run.unwrap_or(d.max_connections_per_run),
                max_bytes_per_run: e.max_bytes_per_run.unwrap_or(d.max_bytes_per_run),
                max_lookups: e.max_lookups.unwrap_or(d.max_lookups),
            };
        }
        if let Some(e) = file.explorer {
            c.explorer.enabled = e.enabled.unwrap_or(true);
            c.explorer.invoke = e.invoke.unwrap_or(false);
        }
        Ok(c)
    }

    fn read_file(path: &Path) -> Result<ConfigFile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.into(),
            message: e.to_string(),
        })
    }
}

/// Peer ids (publisher or provider keys) of a config list, at most the
/// trust list's limit ([`atr_protocol::trust::MAX_TRUSTED`]).
fn parse_keys(
    list: Option<Vec<String>>,
    field: &'static str,
) -> Result<Vec<atr_protocol::PublicKey>, ConfigError> {
    let list = list.unwrap_or_default();
    let max = atr_protocol::trust::MAX_TRUSTED;
    if list.len() > max {
        return Err(ConfigError::Invalid {
            field,
            message: format!("{} entries, over the limit of {max}", list.len()),
        });
    }
    list.iter()
        .map(|p| {
            p.parse().map_err(|e| ConfigError::Invalid {
                field,
                message: format!("`{p}`: {e}"),
            })
        })
        .collect()
}

/// Applies `[store]` over the defaults and checks the caps fit together.
fn apply_store(o: &mut StoreOptions, s: StoreSection) -> Result<(), ConfigError> {
    let invalid = |field: &'static str, message: &str| ConfigError::Invalid {
        field,
        message: message.into(),
    };
    if let Some(v) = s.max_specs {
        o.max_specs = v;
    }
    if let Some(v) = s.max_spec_bytes {
        o.max_spec_bytes = v;
    }
    if let Some(v) = s.max_revocations {
        o.max_revocations = v;
    }
    o.max_pending_revocations = s
        .max_pending_revocations
        .unwrap_or(o.max_pending_revocations.min(o.max_revocations / 2));
    if let Some(v) = s.pending_revocation_ttl {
        o.pending_revocation_ttl = v;
    }
    if let Some(v) = s.max_receipts {
        o.max_receipts = v;
    }
    if let Some(v) = s.publisher_max_specs {
        o.publisher_max_specs = v;
    }
    if let Some(v) = s.publisher_max_bytes {
        o.publisher_max_bytes = v;
    }
    if o.max_specs == 0 || o.max_spec_bytes == 0 || o.max_revocations == 0 || o.max_receipts == 0 {
        return Err(invalid("store", "caps must be at least 1"));
    }
    if o.max_pending_revocations > o.max_revocations / 2 {
        return Err(invalid(
            "store.max_pending_revocations",
            "must be at most half of max_revocations, so revocations of held specs always have room",
        ));
    }
    Ok(())
}

/// Most `api_hosts` entries.
pub const MAX_API_HOSTS: usize = 16;

/// `api_hosts`: DNS names (letters, digits, `-`, `.`), lower-cased.
fn check_api_hosts(hosts: Vec<String>) -> Result<Vec<String>, ConfigError> {
    if hosts.len() > MAX_API_HOSTS {
        return Err(ConfigError::Invalid {
            field: "api_hosts",
            message: format!("at most {MAX_API_HOSTS} names"),
        });
    }
    hosts
        .into_iter()
        .map(|h| {
            let name = h.trim().trim_end_matches('.').to_ascii_lowercase();
            let ok = !name.is_empty()
                && name.len() <= 253
                && name.parse::<std::net::IpAddr>().is_err()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if ok {
                Ok(name)
            } else {
                Err(ConfigError::Invalid {
                    field: "api_hosts",
                    message: format!("`{h}` is not a DNS name (addresses need no listing)"),
                })
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn the_egress_host_firewall_is_atrs_unless_the_operator_takes_it() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        let load = |text: &str| {
            std::fs::write(&f, text).unwrap();
            Config::resolve(&Cli::parse_from(["atrd", "--config", f.to_str().unwrap()]))
        };
        let c = load("[egress]\nenabled = true\n").unwrap();
        assert_eq!(c.egress.host_firewall, HostFirewallMode::Atr);
        let c = load("[egress]\nenabled = true\nhost_firewall = \"operator\"\n").unwrap();
        assert_eq!(c.egress.host_firewall, HostFirewallMode::Operator);
        assert!(load("[egress]\nhost_firewall = \"none\"\n").is_err());
    }

    #[test]
    fn a_remote_api_needs_an_explicit_yes() {
        for addr in ["0.0.0.0:7878", "[::]:7878", "192.168.1.5:7878"] {
            let e = Config::resolve(&Cli::parse_from([
                "atrd",
                "--data-dir",
                "/nonexistent/x",
                "--api",
                addr,
            ]))
            .unwrap_err();
            assert!(
                matches!(e, ConfigError::Invalid { field: "api", .. }) && e.to_string().contains("loopback"),
                "{addr}: {e}"
            );
            let c = Config::resolve(&Cli::parse_from([
                "atrd",
                "--data-dir",
                "/nonexistent/x",
                "--api",
                addr,
                "--api-allow-remote",
            ]))
            .unwrap();
            assert!(c.api_allow_remote);
        }
        for addr in ["127.0.0.1:7878", "[::1]:7878", "127.0.0.2:1"] {
            let c = Config::resolve(&Cli::parse_from([
                "atrd",
                "--data-dir",
                "/nonexistent/x",
                "--api",
                addr,
            ]))
            .unwrap();
            assert!(!c.api_allow_remote, "{addr}");
        }
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            "api = \"0.0.0.0:7000\"\napi_allow_remote = true\napi_hosts = [\"Node.Example.org.\"]\n",
        )
        .unwrap();
        let c = Config::resolve(&Cli::parse_from(["atrd", "--config", f.to_str().unwrap()])).unwrap();
        assert_eq!(
            (c.api_allow_remote, c.api_hosts.clone()),
            (true, vec!["node.example.org".to_owned()])
        );
        std::fs::write(&f, "api_hosts = [\"evil.example/x\"]\n").unwrap();
        let e = Config::resolve(&Cli::parse_from(["atrd", "--config", f.to_str().unwrap()])).unwrap_err();
        assert!(e.to_string().contains("api_hosts"), "{e}");
    }

    #[test]
    fn zero_config_has_defaults() {
        let c = Config::resolve(&Cli::parse_from(["atrd", "--data-dir", "/nonexistent/x"])).unwrap();
        assert_eq!(c.api.to_string(), "127.0.0.1:7878");
        assert_eq!(c.network.listen.len(), 2);
        assert_eq!(c.data_dir, PathBuf::from("/nonexistent/x"));
    }

    #[test]
    fn store_section_is_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        let load = |text: &str| {
            std::fs::write(&f, text).unwrap();
            Config::resolve(&Cli::parse_from(["atrd", "--config", f.to_str().unwrap()]))
        };
        assert_eq!(load("").unwrap().store, StoreOptions::default());
        let c = load(
            "[store]\nmax_specs = 10\nmax_spec_bytes = 1000000\nmax_revocations = 8\n\
             pending_revocation_ttl = \"1h\"\npublisher_max_specs = 3\npublisher_max_bytes = 9000\n",
        )
        .unwrap();
        let s = c.store;
        assert_eq!(
            (
                s.max_specs,
                s.max_spec_bytes,
                s.max_revocations,
                s.max_pending_revocations
            ),
            (10, 1_000_000, 8, 4),
            "the pending cap follows a lower revocation cap"
        );
        assert_eq!(s.pending_revocation_ttl, Duration::from_secs(3600));
        assert_eq!((s.publisher_max_specs, s.publisher_max_bytes), (3, 9000));
        for bad in [
            "max_revocations = 10\nmax_pending_revocations = 6",
            "max_specs = 0",
            "max_spec_bytes = -1",
            "max_pending = 3",
        ] {
            assert!(load(&format!("[store]\n{bad}\n")).is_err(), "{bad}");
        }
    }

    #[test]
    fn gossip_tuning_is_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        let load = |text: &str| {
            std::fs::write(&f, text).unwrap();
            Config::resolve(&Cli::parse_from(["atrd", "--config", f.to_str().unwrap()]))
        };
        let c = load("").unwrap();
        assert_eq!(
            (
                c.network.gossip_mesh_n,
                c.network.flood_publish,
                c.network.idontwant_threshold
            ),
            (6, true, 1000)
        );
        let c =
            load("[network]\ngossip_mesh_n = 4\nflood_publish = false\nidontwant_threshold = 200\n").unwrap();
        assert_eq!(
            (
                c.network.gossip_mesh_n,
                c.network.flood_publish,
                c.network.idontwant_threshold
            ),
            (4, false, 200)
        );
        for bad in [
            "gossip_mesh_n = 1",
            "gossip_mesh_n = 17",
            "flood_publish = 3",
            "gossip_mesh = 4",
        ] {
            assert!(load(&format!("[network]\n{bad}\n")).is_err(), "{bad}");
        }
    }

    #[test]
    fn nat_settings_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        let load = |text: &str| {
            std::fs::write(&f, text).unwrap();
            Config::resolve(&Cli::parse_from(["atrd", "--config", f.to_str().unwrap()]))
        };
        assert_eq!(load("").unwrap().network.nat, NatOptions::default());
        let relay = format!("/ip4/10.0.0.1/tcp/4077/p2p/{}", libp2p::PeerId::random());
        let c = load(&format!(
            "[network.nat]\nrelay_server = true\nrelay_max_circuit_bytes = 65536\nrelay_max_circuit_duration = \"30s\"\nmdns = \"off\"\nreserve = \"always\"\nrelays = [\"{relay}\"]\n"
        ))
        .unwrap();
        let n = &c.network.nat;
        assert!(n.relay_server);
        assert_eq!(n.relay_max_circuit_bytes, 65536);
        assert_eq!(n.relay_max_circuit_duration, Duration::from_secs(30));
        assert_eq!((n.mdns, n.reserve), (MdnsMode::Off, ReserveMode::Always));
        assert_eq!(n.relays.len(), 1);
        assert_eq!(
            n.relay_max_reservations,
            NatOptions::default().relay_max_reservations
        );
        for bad in [
            "relay_max_reservations = 0",
            "relay_max_circuits = 0",
            "relay_max_circuit_bytes = 10",
            "relay_max_circuit_duration = \"10ms\"",
            "mdns_max_peers = 0",
            "mdns = \"sometimes\"",
            "relays = [\"/ip4/10.0.0.1/tcp/4077\"]",
            "relay_sever = true",
        ] {
            assert!(load(&format!("[network.nat]\n{bad}\n")).is_err(), "{bad}");
        }
    }

    #[test]
    fn budgets_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        let load = |text: &str| {
            std::fs::write(&f, text).unwrap();
            Config::resolve(&Cli::parse_from(["atrd", "--config", f.to_str().unwrap()]))
        };
        assert_eq!(load("").unwrap().network.budgets, Budgets::default());
        let c = load("[network.budgets]\nmax_connections = 8\nsync_round_deadline = \"5s\"\n").unwrap();
        assert_eq!(c.network.budgets.max_connections, 8);
        assert_eq!(c.network.budgets.sync_round_deadline, Duration::from_secs(5));
        assert_eq!(c.network.budgets.sync_rounds, Budgets::default().sync_rounds);
        for bad in [
            "max_connections = 0",
            "max_memory_percent = 0",
            "max_memory_percent = 101",
            "response_bytes_in_flight = 1000",
            "sync_rounds = 0",
            "dht_foreign_records = 1",
            "max_conections = 3",
        ] {
            assert!(load(&format!("[network.budgets]\n{bad}\n")).is_err(), "{bad}");
        }
    }

    #[test]
    fn flags_override_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            "api = \"127.0.0.1:9000\"\nlog_format = \"json\"\n[network]\nsync_interval = \"5s\"\n",
        )
        .unwrap();
        let cli = Cli::parse_from(["atrd", "--config", f.to_str().unwrap(), "--api", "127.0.0.1:9001"]);
        let c = Config::resolve(&cli).unwrap();
        assert_eq!(c.api.port(), 9001);
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.network.sync_interval, Duration::from_secs(5));
    }

    #[test]
    fn bad_file_and_bad_bootstrap_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "apii = 3\n").unwrap();
        let e = Config::resolve(&Cli::parse_from(["atrd", "--config", f.to_str().unwrap()])).unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
        let e =
            Config::resolve(&Cli::parse_from(["atrd", "--bootstrap", "/ip4/127.0.0.1/tcp/1"])).unwrap_err();
        assert!(e.to_string().contains("/p2p/"), "{e}");
    }

    /// Key lists in the config file are parsed by one rule and capped: one
    /// entry over the trust list's limit is refused, as is a malformed key.
    #[test]
    fn key_lists_are_capped_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        let key = atr_protocol::SecretKey::from_seed(&[3; 32]).public().to_string();
        for field in ["trusted_publishers", "trusted_providers"] {
            let ok = format!("{field} = [\"{key}\"]\n");
            std::fs::write(&f, ok).unwrap();
            let c = Config::resolve(&Cli::parse_from(["atrd", "--config", f.to_str().unwrap()])).unwrap();
            assert_eq!(c.trusted_publishers.len() + c.trusted_providers.len(), 1);
            let many = vec![format!("\"{key}\""); atr_protocol::trust::MAX_TRUSTED + 1].join(",");
            std::fs::write(&f, format!("{field} = [{many}]\n")).unwrap();
            let e = Config::resolve(&Cli::parse_from(["atrd", "--config", f.to_str().unwrap()])).unwrap_err();
            assert!(
                e.to_string().contains(field) && e.to_string().contains("over the limit"),
                "{e}"
            );
            std::fs::write(&f, format!("{field} = [\"nope\"]\n")).unwrap();
            let e = Config::resolve(&Cli::parse_from(["atrd", "--config", f.to_str().unwrap()])).unwrap_err();
            assert!(e.to_string().contains(field), "{e}");
        }
    }

    /// `atrd` with its default settings renders the same host config as `atr tool test`
    /// (the CLI's side of this check is `tool::sandbox::tests::tool_test_profile_is_the_nodes`;
    /// both compare to the fixture `atr_sandbox::profile` is tested against).
    #[test]
    fn sandbox_profile_is_the_tool_tests() {
        let c = Config::resolve(&Cli::parse_from(["atrd", "--data-dir", "/nonexistent/x"])).unwrap();
        let limits = atr_protocol::spec::Limits {
            timeout_ms: 2_000,
            memory_bytes: 96 << 20,
            cpu_millis: 500,
            pids: 16,
            max_output_bytes: 10_000,
        };
        let rendered = serde_json::to_value(atr_sandbox::profile::host_config(
            &c.sandbox.options.profile(&limits),
        ))
        .unwrap();
        let expected: serde_json::Value =
            serde_json::from_str(include_str!("../../sandbox/tests/host_config.json")).unwrap();
        assert_eq!(rendered, expected);
    }
}
