//! The node's local HTTP API (`/v1`): request and response bodies, shared by
//! `atrd` and `atr-client` so the two cannot drift.
//!
//! Every error is an [`ApiErrorBody`] with a stable [`ApiErrorBody::code`];
//! clients match on the code, never on the message.

use serde::{Deserialize, Serialize};

mod error_code;

pub use error_code::ErrorCode;

use crate::id::ToolId;
use crate::key::PublicKey;
use crate::manifest::Manifest;
use crate::revocation::RevocationKind;
use crate::spec::ToolSpec;

pub use crate::local::DEFAULT_API_ADDR;
/// Largest request body the API accepts (a manifest with inline schemas).
pub const MAX_API_BODY_BYTES: usize = 1024 * 1024 + 64 * 1024;

/// Error body of every failed API call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    /// Stable machine-readable code, e.g. `invalid_manifest`, `not_found`, `unauthorized`.
    pub code: ErrorCode,
    /// One line for people.
    pub message: String,
    /// The input field at fault, when one is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Structured details, e.g. schema violations with JSON pointers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

/// `POST /v1/publish`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishRequest {
    /// The manifest, with schemas inline (clients resolve schema files).
    pub manifest: Manifest,
    /// File name to cite in errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// Answer to a publish.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishResponse {
    /// The new spec's id.
    pub id: ToolId,
    /// `false` when the very same spec was already stored.
    pub created: bool,
    /// The spec.
    pub spec: ToolSpec,
}

/// Lifecycle of a spec as this node knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
#[non_exhaustive]
pub enum SpecStatus {
    /// Usable.
    Active,
    /// Hidden from discovery by default; may name a successor.
    Deprecated {
        /// Replacement, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        successor: Option<ToolId>,
    },
    /// Never invoked again.
    Revoked,
}

/// One spec as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpecView {
    /// Its id.
    pub id: ToolId,
    /// Lifecycle state.
    pub status: SpecStatus,
    /// The verified spec.
    pub spec: ToolSpec,
    /// The signed envelope, hex, so clients can verify it themselves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envelope_hex: Option<String>,
    /// The publisher's domain claim (the homepage's domain), when the spec
    /// has an `https` homepage: verified on demand by `GET /v1/specs/{id}`,
    /// as cached in listings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<crate::claim::DomainClaim>,
}

/// One spec in a compact listing (`view=compact`): what a person or an agent reads to
/// choose a tool, without its schemas, examples or runtime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactView {
    /// Its id.
    pub id: ToolId,
    /// Tool name.
    pub name: String,
    /// Semantic version.
    pub version: semver::Version,
    /// The publisher.
    pub publisher: PublicKey,
    /// What the tool does.
    pub description: String,
    /// Its tags.
    pub tags: Vec<String>,
    /// Lifecycle state.
    pub status: SpecStatus,
}

impl CompactView {
    /// `name@version`, for messages.
    pub fn label(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }
}

/// Answer to `GET /v1/find`: [`SpecView`]s, or [`CompactView`]s with `view=compact`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindResponse<V = SpecView> {
    /// Matching specs, by name, then version descending, then id.
    pub results: Vec<V>,
    /// How many came from the network in this call.
    pub fetched_from_network: usize,
    /// Present when more specs match: pass it back as `cursor` for the next page
    /// ([`crate::page`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Most ids `GET /v1/ids?prefix=` lists: one is the answer, more are only shown to say the
/// prefix is ambiguous.
pub const MAX_PREFIX_MATCHES: usize = 8;

/// Answer to `GET /v1/ids?prefix=…` ([`crate::id::ToolIdPrefix`]): the ids of the specs this
/// node holds (revoked included) that start with the prefix, in id order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdsResponse {
    /// At most [`MAX_PREFIX_MATCHES`] ids.
    pub ids: Vec<ToolId>,
    /// Whether more ids match than are listed.
    pub more: bool,
}

/// One search hit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchHit<V = SpecView> {
    /// BM25 score.
    pub score: f32,
    /// The spec.
    pub view: V,
}

/// Answer to `GET /v1/search`: hits with [`SpecView`]s, or [`CompactView`]s with `view=compact`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchResponse<V = SpecView> {
    /// Hits, best first.
    pub hits: Vec<SearchHit<V>>,
    /// Present when more hits exist: pass it back as `cursor` for the next page
    /// ([`crate::page`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Default hit count of a search page.
pub const DEFAULT_SEARCH_LIMIT: usize = 20;
/// Largest hit count of a search page.
pub const MAX_SEARCH_LIMIT: usize = 200;
/// Default receipt count of a receipts page.
pub const DEFAULT_RECEIPTS_LIMIT: usize = 50;
/// Largest receipt count of a receipts page.
pub const MAX_RECEIPTS_LIMIT: usize = 1000;

/// `POST /v1/revoke`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    /// One spec id to revoke …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<ToolId>,
    /// … or every version of a name this node published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Revoke (default) or deprecate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<RevocationKind>,
    /// Why.
    #[serde(default)]
    pub reason: String,
    /// Replacement id (deprecations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successor: Option<ToolId>,
}

/// `POST /v1/delegations`: let another provider answer invocations of one
/// of this node's tools.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelegateRequest {
    /// One spec id this node published …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<ToolId>,
    /// … or every version of a name this node published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The provider's peer id.
    pub provider: PublicKey,
    /// How long it lasts, seconds (default [`DEFAULT_DELEGATION_SECS`], at
    /// most [`crate::delegation::MAX_DELEGATION_MS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_for_secs: Option<u64>,
}

/// How long a delegation lasts unless the request says: 30 days.
pub const DEFAULT_DELEGATION_SECS: u64 = 30 * 24 * 3600;

/// Answer to a delegate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DelegateResponse {
    /// Hash of the signed delegation, hex.
    pub delegation: String,
    /// The provider.
    pub provider: PublicKey,
    /// When it ends, milliseconds since the Unix epoch.
    pub expires_at_ms: u64,
}

/// Answer to a revoke.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevokeResponse {
    /// Hash of the signed revocation.
    pub revocation: String,
    /// Specs it affected on this node.
    pub affected: Vec<ToolId>,
}

/// A connected peer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerView {
    /// Peer id (= publisher key text).
    pub peer_id: String,
    /// Known addresses.
    pub addrs: Vec<String>,
    /// Gossipsub score, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// Bad messages received from it.
    pub bad_messages: u64,
}

/// Answer to `GET /v1/peers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeersResponse {
    /// Connected peers.
    pub peers: Vec<PeerView>,
}

/// Counts of stored objects.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreCountsView {
    /// Specs.
    pub specs: u64,
    /// Revocations.
    pub revocations: u64,
    /// Receipts.
    pub receipts: u64,
    /// Known peers.
    pub peers: u64,
}

/// Answer to `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusResponse {
    /// This node's peer id (its publisher key).
    pub peer_id: PublicKey,
    /// atrd version.
    pub version: String,
    /// Addresses it listens on.
    pub listen_addrs: Vec<String>,
    /// Connected peers.
    pub connected_peers: Vec<String>,
    /// Stored objects.
    pub store: StoreCountsView,
    /// Things the operator should fix, e.g. a Docker Engine with neither seccomp nor AppArmor.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// `POST /v1/invoke`: run a tool by id, or by name (+ semver requirement,
/// + publisher unless the name is unambiguous among trusted publishers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvokeRequest {
    /// The tool id (preferred: the id is the tool).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<ToolId>,
    /// Or a name …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// … with an optional semver requirement …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// … and publisher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher: Option<PublicKey>,
    /// The input object.
    pub input: serde_json::Value,
}

/// One provider tried during an invocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvokeAttempt {
    /// The provider's peer id (this node's own peer id when it tried to run the tool itself;
    /// there is no special name for "this node").
    pub provider: String,
    /// What happened: `ok`, `busy`, `unreachable`, `refused: …`, `bad receipt: …`.
    pub outcome: String,
}

/// Why the provider that answered an invocation was allowed to: callers
/// accept answers only from these (a peer that merely announces a tool's
/// name is never sent the input).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ProviderKind {
    /// This node ran the tool itself.
    Local,
    /// The tool's publisher.
    Publisher,
    /// A provider the publisher delegated the tool to (a signed, unexpired delegation).
    Delegated,
    /// A provider on this node's own `trusted_providers` list.
    Trusted,
}

impl ProviderKind {
    /// Its wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Publisher => "publisher",
            Self::Delegated => "delegated",
            Self::Trusted => "trusted",
        }
    }
}

/// Answer to an invoke: the tool's output and the provider's verified receipt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvokeResponse {
    /// The tool that ran.
    pub id: ToolId,
    /// Output JSON (an error object when `status` is not `ok`).
    pub output: serde_json::Value,
    /// How it ended.
    pub status: crate::receipt::InvocationStatus,
    /// The provider that answered: its peer id, the text of [`PublicKey`]'s `Display` (this
    /// node's own peer id when it ran the tool itself). Read it with [`Self::provider_key`].
    pub provider: String,
    /// Why that provider was allowed to answer (absent from nodes before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_kind: Option<ProviderKind>,
    /// The verified receipt.
    pub receipt: crate::receipt::Receipt,
    /// The signed receipt envelope, hex, for independent checking.
    pub receipt_hex: String,
    /// Providers tried, in order.
    pub attempts: Vec<InvokeAttempt>,
}

impl InvokeResponse {
    /// The key of [`Self::provider`], which must have signed the receipt.
    pub fn provider_key(&self) -> Result<PublicKey, crate::key::KeyError> {
        self.provider.parse()
    }
}

/// Answer to `GET /v1/receipts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReceiptsResponse {
    /// Receipts, newest first.
    pub receipts: Vec<crate::receipt::Receipt>,
    /// Present when older receipts exist: pass it back as `cursor` for the next page
    /// ([`crate::page`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `POST /v1/provide`: agree to run another publisher's spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvideRequest {
    /// The spec to provide.
    pub id: ToolId,
}

/// One foreign spec this node provides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProvidedView {
    /// Spec id.
    pub id: ToolId,
    /// Tool name, when the spec is stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Tool version, when the spec is stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Its publisher, when the spec is stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher: Option<PublicKey>,
    /// When the publisher's delegation of it to this node ends, if one is held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegated_until_ms: Option<u64>,
}

/// Answer to `POST /v1/provide` and `DELETE /v1/provide/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProvideResponse {
    /// The spec.
    pub id: ToolId,
    /// Whether this node now provides it.
    pub provided: bool,
    /// Whether the call changed anything (false when consent was already given).
    pub changed: bool,
    /// When the publisher's delegation of this tool to this node ends, if
    /// it holds one: without it, callers send this node the tool's inputs
    /// only if they list it in their `trusted_providers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegated_until_ms: Option<u64>,
}

/// Answer to `GET /v1/provided`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProvidedResponse {
    /// Foreign specs this node provides, by id.
    pub provided: Vec<ProvidedView>,
}
