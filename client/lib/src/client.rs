//! [`Client`]: the typed async client of one node's local API.
//!
//! One method per API call, each bounded by a deadline from [`Timeouts`]
//! (a network find waits longer than a local call). Bodies are the shared
//! [`atr_protocol::api`] types; every error answer becomes a typed
//! [`ClientError`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), atr_client::ClientError> {
//! use atr_protocol::query::FindQuery;
//!
//! let client = atr_client::Client::from_env()?;
//! let found = client
//!     .find(&FindQuery { tag: Some("math".into()), ..Default::default() })
//!     .await?;
//! for view in found.results {
//!     println!("{} {}", view.id, view.spec.label());
//! }
//! # Ok(())
//! # }
//! ```

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use atr_protocol::api::{
    ApiErrorBody, CompactView, DelegateRequest, DelegateResponse, FindResponse, IdsResponse, InvokeRequest,
    InvokeResponse, PeersResponse, ProvideRequest, ProvideResponse, ProvidedResponse, PublishRequest,
    PublishResponse, ReceiptsResponse, RevokeRequest, RevokeResponse, SearchResponse, SpecView,
    StatusResponse,
};
use atr_protocol::id::{TOOL_ID_PREFIX, ToolIdPrefix};
use atr_protocol::manifest::{MAX_MANIFEST_BYTES, Manifest};
use atr_protocol::page::View;
use atr_protocol::query::FindQuery;
use atr_protocol::receipt::{Expected, InvocationStatus, verify_receipt};
use atr_protocol::trust::{TrustList, TrustRequest, TrustResponse};
use atr_protocol::{PublicKey, SignedReceipt, SignedSpec, ToolId};
use reqwest::{Method, RequestBuilder};
use serde::de::DeserializeOwned;
use tokio::sync::OnceCell;

use crate::endpoint::Endpoint;
use crate::error::ClientError;

/// Largest answer read from the node: a find of [`atr_protocol::query::MAX_FIND_LIMIT`] specs of up to 64 KiB
/// each, with room to spare. A larger answer is refused rather than buffered.
pub const MAX_RESPONSE_BYTES: usize = 96 * 1024 * 1024;

/// Fewest characters of a short id [`Client::resolve_id`] accepts (the protocol's one constant).
pub use atr_protocol::id::MIN_SHORT_ID_LEN;

/// Deadlines of the calls a [`Client`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// Opening the TCP connection. Defaults to 3 s: the node is local.
    pub connect: Duration,
    /// A call the node answers from its own store. Defaults to 15 s.
    pub request: Duration,
    /// A call that asks the network (`find` with `network`). Defaults to 45 s: the node
    /// itself gives up after 30 s.
    pub network: Duration,
    /// An invocation ([`Client::invoke`]). Defaults to [`DEFAULT_INVOKE_TIMEOUT`], 150 s:
    /// the node's own API deadline (the longest tool time limit, 120 s, plus 30 s for
    /// container start and transfer) comes first.
    pub invoke: Duration,
}

/// Default deadline of an invocation: the node answers (or gives up) within 150 s.
pub const DEFAULT_INVOKE_TIMEOUT: Duration = Duration::from_secs(150);
/// Most receipts one [`Client::receipts`] call asks for (the node's cap).
pub use atr_protocol::api::MAX_RECEIPTS_LIMIT;
/// Most hits one search page holds (the node's cap).
pub use atr_protocol::api::MAX_SEARCH_LIMIT;
/// Most specs one find page holds (the node's cap).
pub use atr_protocol::query::MAX_FIND_LIMIT;

/// Most pages [`Client::find_all`], [`Client::search_all`] and [`Client::receipts_all`]
/// follow: 2 000 pages of 1 000 specs, twice the most specs a node stores by default.
pub const MAX_FOLLOWED_PAGES: usize = 2_000;

/// The cursors a `*_all` call has followed: refuses a loop and a runaway page count.
#[derive(Default)]
struct Pages {
    seen: std::collections::HashSet<String>,
}

impl Pages {
    /// The cursor to follow next, `None` when the listing ended.
    fn next(&mut self, cursor: Option<String>, url: &str) -> Result<Option<String>, ClientError> {
        let Some(c) = cursor else {
            return Ok(None);
        };
        let message = if self.seen.len() >= MAX_FOLLOWED_PAGES {
            format!("more than {MAX_FOLLOWED_PAGES} pages; stopped")
        } else if !self.seen.insert(c.clone()) {
            "the node gave the same cursor twice; stopped".to_owned()
        } else {
            return Ok(Some(c));
        };
        Err(ClientError::Decode {
            url: url.to_owned(),
            message,
        })
    }
}

/// Adds `cursor` and a non-default `view` to a listing's query string.
fn push_page_params(params: &mut Vec<(&str, String)>, cursor: Option<&str>, view: View) {
    if let Some(c) = cursor {
        params.push(("cursor", c.to_owned()));
    }
    if view != View::Full {
        params.push(("view", view.as_str().to_owned()));
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(3),
            request: Duration::from_secs(15),
            network: Duration::from_secs(45),
            invoke: DEFAULT_INVOKE_TIMEOUT,
        }
    }
}

impl Timeouts {
    /// The same deadline for every kind of call (tests, impatient scripts).
    pub fn uniform(d: Duration) -> Self {
        Self {
            connect: d,
            request: d,
            network: d,
            invoke: d,
        }
    }
}

/// A verified invocation: the node's answer and the provider's signed receipt, checked by
/// this client (see [`Client::invoke_verified`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Invocation {
    /// The node's answer.
    pub response: InvokeResponse,
    /// The receipt, decoded from `response.receipt_hex`; its signature is verified.
    pub receipt: SignedReceipt,
    /// Whether the node asked ran the tool itself.
    pub local: bool,
}

impl Invocation {
    /// The tool's output (an error object when [`Self::is_ok`] is false).
    pub fn output(&self) -> &serde_json::Value {
        &self.response.output
    }

    /// Whether the tool ran to a valid output (status `ok`).
    pub fn is_ok(&self) -> bool {
        self.response.status == InvocationStatus::Ok
    }

    /// The receipt's id: hex blake3 of its signed body.
    pub fn receipt_id(&self) -> String {
        hex_encode(&self.receipt.hash())
    }

    /// The message of a failed run (`output.error.message`), when the tool did not succeed.
    pub fn error_message(&self) -> Option<String> {
        if self.is_ok() {
            return None;
        }
        let message = self
            .response
            .output
            .pointer("/error/message")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("the tool failed");
        Some(format!(
            "{} ({})",
            atr_protocol::text::shown(message),
            self.response.status.as_str()
        ))
    }

    /// The tail of the tool's stderr a failed run carries (`error.stderr`), capped at
    /// [`atr_protocol::text::MAX_SHOWN_REMOTE_TEXT`] and escaped
    /// ([`atr_protocol::text::shown`]); the output itself is left as the receipt covers it.
    pub fn stderr(&self) -> Option<String> {
        self.response
            .output
            .pointer("/error/stderr")
            .and_then(serde_json::Value::as_str)
            .map(atr_protocol::text::shown)
    }
}

/// A client of one node's local API. Cheap to clone (connections are pooled and shared).
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    endpoint: Endpoint,
    timeouts: Timeouts,
    /// The node's own key, fetched once: receipts of local runs are signed with it.
    node_key: Arc<OnceCell<PublicKey>>,
}

impl Client {
    /// A client of `endpoint` with the default [`Timeouts`].
    pub fn new(endpoint: Endpoint) -> Result<Self, ClientError> {
        Self::with_timeouts(endpoint, Timeouts::default())
    }

    /// A client of `endpoint` with the given deadlines.
    pub fn with_timeouts(mut endpoint: Endpoint, timeouts: Timeouts) -> Result<Self, ClientError> {
        endpoint.api = crate::endpoint::normalize_url(&endpoint.api)?;
        let http = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .user_agent(concat!("atr-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::InvalidUrl {
                url: endpoint.api.clone(),
                message: format!("cannot set up HTTP: {e}"),
            })?;
        Ok(Self {
            http,
            endpoint,
            timeouts,
            node_key: Arc::new(OnceCell::new()),
        })
    }

    /// The node the environment names: `ATR_API` (default `http://127.0.0.1:7878`), with the
    /// token from `ATR_TOKEN` or the node's data dir (see [`Endpoint::from_env`]).
    pub fn from_env() -> Result<Self, ClientError> {
        Self::new(Endpoint::from_env(None)?)
    }

    /// The node's address and token.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The API base URL, `http://host:port`.
    pub fn api_url(&self) -> &str {
        &self.endpoint.api
    }

    /// The deadlines in use.
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// `GET /health`: `Ok` once the node serves requests.
    pub async fn health(&self) -> Result<(), ClientError> {
        let req = self.request(Method::GET, "/health");
        let resp = self.send_raw(req, self.timeouts.request).await?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(ClientError::Api {
                status: resp.status().as_u16(),
                code: format!("http_{}", resp.status().as_u16()),
                message: "the node is not ready".into(),
                details: None,
            })
        }
    }

    /// `GET /metrics`: the node's Prometheus text (bounded like every answer).
    pub async fn metrics(&self) -> Result<String, ClientError> {
        let mut resp = self
            .send_raw(self.request(Method::GET, "/metrics"), self.timeouts.request)
            .await?;
        let status = resp.status();
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| self.transport_error(e, self.timeouts.request))?
        {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(ClientError::Decode {
                    url: self.endpoint.api.clone(),
                    message: format!("metrics over the {MAX_RESPONSE_BYTES}-byte limit"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            return Err(ClientError::Api {
                status: status.as_u16(),
                code: format!("http_{}", status.as_u16()),
                message: "the node did not serve its metrics".into(),
                details: None,
            });
        }
        String::from_utf8(body).map_err(|e| ClientError::Decode {
            url: self.endpoint.api.clone(),
            message: e.to_string(),
        })
    }

    /// `GET /v1/status`: identity, addresses, peers and store counts. Needs the API token.
    pub async fn status(&self) -> Result<StatusResponse, ClientError> {
        self.call(self.authed(Method::GET, "/v1/status"), self.timeouts.request)
            .await
    }

    /// `POST /v1/publish` of a manifest whose schemas are inline (see [`Self::publish_file`]
    /// for a manifest file with schema paths). Needs the API token.
    pub async fn publish(&self, manifest: Manifest) -> Result<PublishResponse, ClientError> {
        self.publish_request(&PublishRequest { manifest, file: None })
            .await
    }

    /// `POST /v1/publish` of a full request (the file name is cited in the node's errors).
    pub async fn publish_request(&self, req: &PublishRequest) -> Result<PublishResponse, ClientError> {
        let builder = self.authed(Method::POST, "/v1/publish").json(req);
        self.call(builder, self.timeouts.request).await
    }

    /// Reads a manifest file, loads its schema files (paths relative to the manifest's
    /// directory) and publishes it. Errors in the file come back as
    /// [`ClientError::InvalidManifest`] naming the field, before anything is sent.
    pub async fn publish_file(&self, path: impl AsRef<Path>) -> Result<PublishResponse, ClientError> {
        let path = path.as_ref().to_owned();
        let (manifest, file) = tokio::task::spawn_blocking(move || load_manifest(&path))
            .await
            .map_err(|e| ClientError::InvalidManifest {
                field: None,
                message: format!("reading the manifest failed: {e}"),
            })??;
        self.publish_request(&PublishRequest {
            manifest,
            file: Some(file),
        })
        .await
    }

    /// `GET /v1/specs/{id}`: one spec as this node knows it, with its signed envelope.
    pub async fn spec(&self, id: &ToolId) -> Result<SpecView, ClientError> {
        let path = format!("/v1/specs/{id}");
        self.call(self.request(Method::GET, &path), self.timeouts.request)
            .await
    }

    /// `GET /v1/find`: the first page (at most `q.limit`, default 100, at most
    /// [`MAX_FIND_LIMIT`]). With `q.network` (which needs the API token) the node also asks
    /// its peers, which takes up to [`Timeouts::network`]. More pages: [`Self::find_page`],
    /// every match: [`Self::find_all`].
    pub async fn find(&self, q: &FindQuery) -> Result<FindResponse, ClientError> {
        self.find_page(q, None).await
    }

    /// One page of `GET /v1/find`, from `cursor` (the `next_cursor` of the page before).
    pub async fn find_page(&self, q: &FindQuery, cursor: Option<&str>) -> Result<FindResponse, ClientError> {
        self.find_view(q, cursor, View::Full).await
    }

    /// One page of `GET /v1/find?view=compact`: id, name, version, publisher, description,
    /// tags and status of each match, no schemas.
    pub async fn find_compact(
        &self,
        q: &FindQuery,
        cursor: Option<&str>,
    ) -> Result<FindResponse<CompactView>, ClientError> {
        self.find_view(q, cursor, View::Compact).await
    }

    /// Every spec `q` matches, following the node's cursors page by page (`q.limit` is the
    /// page size, default [`MAX_FIND_LIMIT`]); `fetched_from_network` is the first page's.
    /// Stops with [`ClientError::Decode`] past [`MAX_FOLLOWED_PAGES`] pages or when the node
    /// hands back a cursor it already gave.
    pub async fn find_all(&self, q: &FindQuery) -> Result<FindResponse, ClientError> {
        self.find_all_view(q, View::Full).await
    }

    /// [`Self::find_all`] in the compact view.
    pub async fn find_all_compact(&self, q: &FindQuery) -> Result<FindResponse<CompactView>, ClientError> {
        self.find_all_view(q, View::Compact).await
    }

    async fn find_all_view<V: DeserializeOwned>(
        &self,
        q: &FindQuery,
        view: View,
    ) -> Result<FindResponse<V>, ClientError> {
        let mut q = q.clone();
        q.limit = Some(q.limit.unwrap_or(MAX_FIND_LIMIT));
        let mut first: FindResponse<V> = self.find_view(&q, None, view).await?;
        // Only the first page asks the network.
        q.network = false;
        let mut pages = Pages::default();
        while let Some(c) = pages.next(first.next_cursor.take(), &self.endpoint.api)? {
            let page: FindResponse<V> = self.find_view(&q, Some(&c), view).await?;
            first.results.extend(page.results);
            first.next_cursor = page.next_cursor;
        }
        Ok(first)
    }

    async fn find_view<V: DeserializeOwned>(
        &self,
        q: &FindQuery,
        cursor: Option<&str>,
        view: View,
    ) -> Result<FindResponse<V>, ClientError> {
        let mut params: Vec<(&str, String)> = Vec::new();
        if let Some(t) = &q.tag {
            params.push(("tag", t.clone()));
        }
        if let Some(n) = &q.name {
            params.push(("name", n.clone()));
        }
        if let Some(v) = &q.version {
            params.push(("version", v.clone()));
        }
        if let Some(p) = &q.publisher {
            params.push(("publisher", p.to_string()));
        }
        if let Some(s) = &q.allowed_side_effects {
            let list: Vec<&str> = s.iter().map(|e| e.as_str()).collect();
            params.push(("side_effects", list.join(",")));
        }
        if let Some(c) = &q.max_cost {
            params.push(("max_cost", c.as_str().to_owned()));
        }
        if q.include_revoked {
            params.push(("include_revoked", "true".into()));
        }
        if q.network {
            params.push(("network", "true".into()));
        }
        if let Some(l) = q.limit {
            params.push(("limit", l.to_string()));
        }
        push_page_params(&mut params, cursor, view);
        let deadline = if q.network {
            self.timeouts.network
        } else {
            self.timeouts.request
        };
        // A network find needs the token; a local one does not, but sending it costs nothing.
        let req = self.authed(Method::GET, "/v1/find").query(&params);
        self.call(req, deadline).await
    }

    /// `GET /v1/search`: ranked full-text search of this node's specs, the first page
    /// (default 20 hits, at most [`MAX_SEARCH_LIMIT`]).
    pub async fn search(&self, text: &str, limit: Option<usize>) -> Result<SearchResponse, ClientError> {
        self.search_page(text, limit, None).await
    }

    /// One page of `GET /v1/search`, from `cursor` (the `next_cursor` of the page before).
    pub async fn search_page(
        &self,
        text: &str,
        limit: Option<usize>,
        cursor: Option<&str>,
    ) -> Result<SearchResponse, ClientError> {
        self.search_view(text, limit, cursor, View::Full).await
    }

    /// One page of `GET /v1/search?view=compact` (no schemas).
    pub async fn search_compact(
        &self,
        text: &str,
        limit: Option<usize>,
        cursor: Option<&str>,
    ) -> Result<SearchResponse<CompactView>, ClientError> {
        self.search_view(text, limit, cursor, View::Compact).await
    }

    /// Every hit of a search, best first, following the node's cursors (`limit` is the
    /// page size, default [`MAX_SEARCH_LIMIT`]); bounded like [`Self::find_all`].
    pub async fn search_all(&self, text: &str, limit: Option<usize>) -> Result<SearchResponse, ClientError> {
        self.search_all_view(text, limit, View::Full).await
    }

    /// [`Self::search_all`] in the compact view.
    pub async fn search_all_compact(
        &self,
        text: &str,
        limit: Option<usize>,
    ) -> Result<SearchResponse<CompactView>, ClientError> {
        self.search_all_view(text, limit, View::Compact).await
    }

    async fn search_all_view<V: DeserializeOwned>(
        &self,
        text: &str,
        limit: Option<usize>,
        view: View,
    ) -> Result<SearchResponse<V>, ClientError> {
        let limit = Some(limit.unwrap_or(MAX_SEARCH_LIMIT));
        let mut first: SearchResponse<V> = self.search_view(text, limit, None, view).await?;
        let mut pages = Pages::default();
        while let Some(c) = pages.next(first.next_cursor.take(), &self.endpoint.api)? {
            let page: SearchResponse<V> = self.search_view(text, limit, Some(&c), view).await?;
            first.hits.extend(page.hits);
            first.next_cursor = page.next_cursor;
        }
        Ok(first)
    }

    async fn search_view<V: DeserializeOwned>(
        &self,
        text: &str,
        limit: Option<usize>,
        cursor: Option<&str>,
        view: View,
    ) -> Result<SearchResponse<V>, ClientError> {
        let mut params = vec![("q", text.to_owned())];
        if let Some(l) = limit {
            params.push(("limit", l.to_string()));
        }
        push_page_params(&mut params, cursor, view);
        let req = self.request(Method::GET, "/v1/search").query(&params);
        self.call(req, self.timeouts.request).await
    }

    /// `POST /v1/revoke`: revoke or deprecate a spec (or every version of a name) this node
    /// published. Needs the API token.
    pub async fn revoke(&self, req: &RevokeRequest) -> Result<RevokeResponse, ClientError> {
        let builder = self.authed(Method::POST, "/v1/revoke").json(req);
        self.call(builder, self.timeouts.request).await
    }

    /// `POST /v1/delegations`: let another provider answer invocations of a
    /// tool this node published (callers then accept its answers). Needs the API token.
    pub async fn delegate(&self, req: &DelegateRequest) -> Result<DelegateResponse, ClientError> {
        let builder = self.authed(Method::POST, "/v1/delegations").json(req);
        self.call(builder, self.timeouts.request).await
    }

    /// `POST /v1/provide`: this node agrees to run another publisher's spec and
    /// announces itself as its provider. Needs the API token. The node refuses
    /// with [`ClientError::NotFound`] (unknown id), [`ClientError::Revoked`], or
    /// [`ClientError::Api`] with code `image_missing`, `sandbox_off` or `own_spec`.
    pub async fn provide(&self, id: &ToolId) -> Result<ProvideResponse, ClientError> {
        let builder = self
            .authed(Method::POST, "/v1/provide")
            .json(&ProvideRequest { id: *id });
        self.call(builder, self.timeouts.request).await
    }

    /// `DELETE /v1/provide/{id}`: withdraws that consent; the node stops serving
    /// the spec at once. Needs the API token. Code `not_provided` when it was not provided.
    pub async fn unprovide(&self, id: &ToolId) -> Result<ProvideResponse, ClientError> {
        let path = format!("/v1/provide/{id}");
        self.call(self.authed(Method::DELETE, &path), self.timeouts.request)
            .await
    }

    /// `GET /v1/provided`: the foreign specs this node provides. Needs the API token.
    pub async fn provided(&self) -> Result<ProvidedResponse, ClientError> {
        self.call(self.authed(Method::GET, "/v1/provided"), self.timeouts.request)
            .await
    }

    /// `GET /v1/trust`: this node's key and the publishers it trusts (no token needed). Every
    /// selection path applies [`TrustList::standing`] to it.
    pub async fn trust_list(&self) -> Result<TrustList, ClientError> {
        self.call(self.authed(Method::GET, "/v1/trust"), self.timeouts.request)
            .await
    }

    /// `POST /v1/trust`: trust a publisher (or give it a new label). Needs the API token. The
    /// node refuses with [`ClientError::BadRequest`] (field `label`: too long, or a control,
    /// invisible or bidi character; field `publisher`: this node's own key) or
    /// [`ClientError::Api`] with code `trust_list_full`.
    pub async fn trust_add(
        &self,
        publisher: &PublicKey,
        label: Option<&str>,
    ) -> Result<TrustResponse, ClientError> {
        let body = TrustRequest {
            publisher: *publisher,
            label: label.map(str::to_owned),
        };
        let builder = self.authed(Method::POST, "/v1/trust").json(&body);
        self.call(builder, self.timeouts.request).await
    }

    /// `DELETE /v1/trust/{publisher}`: stop trusting a publisher (`changed` is false when it
    /// was not trusted). Needs the API token. A key from the node's config file is refused
    /// with [`ClientError::Api`] code `trusted_in_config`.
    pub async fn trust_remove(&self, publisher: &PublicKey) -> Result<TrustResponse, ClientError> {
        let path = format!("/v1/trust/{publisher}");
        self.call(self.authed(Method::DELETE, &path), self.timeouts.request)
            .await
    }

    /// `GET /v1/peers`: connected peers. Needs the API token.
    pub async fn peers(&self) -> Result<PeersResponse, ClientError> {
        self.call(self.authed(Method::GET, "/v1/peers"), self.timeouts.request)
            .await
    }

    /// `POST /v1/invoke`: runs a tool (by id, or by name with an optional semver requirement
    /// and publisher) on this node or a provider it finds, and returns the answer once its
    /// receipt verified on this side (see [`Self::invoke_verified`]). Needs the API token.
    ///
    /// A tool that ran but failed (status other than `ok`) is an `Ok` answer with the error
    /// object as output: it has a signed receipt too. Errors of the node map to
    /// [`ClientError::InvalidInput`] (with each violation's JSON pointer),
    /// [`ClientError::Revoked`], [`ClientError::NoProvider`] (with the attempts),
    /// [`ClientError::AmbiguousName`], [`ClientError::NotFound`] and
    /// [`ClientError::BadRequest`]; a receipt that does not prove the answer is
    /// [`ClientError::BadReceipt`].
    pub async fn invoke(&self, req: &InvokeRequest) -> Result<InvokeResponse, ClientError> {
        Ok(self.invoke_verified(req).await?.response)
    }

    /// Like [`Self::invoke`], also returning the decoded, verified receipt.
    ///
    /// What is checked here, independently of the node: the receipt envelope decodes and its
    /// signature verifies; it is the receipt the answer reports; it is signed by the provider
    /// the answer names (the node's own peer id when it ran the tool itself); it names the tool that ran (the
    /// one asked for, or for a name one whose spec has that name, a matching version and the
    /// publisher asked for); its image digest and limits are those the tool's signed spec
    /// pins; its input hash is that of the input sent and its output hash that of the output
    /// received (the exact bytes are the compact JSON serialization, which is what atrd
    /// providers hash); its status is the answer's.
    pub async fn invoke_verified(&self, req: &InvokeRequest) -> Result<Invocation, ClientError> {
        let builder = self.authed(Method::POST, "/v1/invoke").json(req);
        let response: InvokeResponse = self.call(builder, self.timeouts.invoke).await?;
        // A node names itself by its own peer id when it ran the tool (there is no `local`).
        let provider = response
            .provider_key()
            .map_err(|e| bad_receipt(format!("provider `{}` is not a peer id: {e}", response.provider)))?;
        let spec = self.signed_spec(&response.id).await?;
        let receipt = verify_invocation(req, &response, &provider, Some(&spec))?;
        let local = provider == self.node_key().await?;
        Ok(Invocation {
            response,
            receipt,
            local,
        })
    }

    /// `GET /v1/receipts` (needs the API token): the receipts this node issued or received, newest first (the node
    /// returns 50 by default, at most [`MAX_RECEIPTS_LIMIT`]); the first page.
    pub async fn receipts(&self, limit: Option<usize>) -> Result<ReceiptsResponse, ClientError> {
        self.receipts_page(limit, None).await
    }

    /// One page of `GET /v1/receipts`, from `cursor` (the `next_cursor` of the page before).
    pub async fn receipts_page(
        &self,
        limit: Option<usize>,
        cursor: Option<&str>,
    ) -> Result<ReceiptsResponse, ClientError> {
        let mut params: Vec<(&str, String)> = Vec::new();
        if let Some(l) = limit {
            params.push(("limit", l.to_string()));
        }
        if let Some(c) = cursor {
            params.push(("cursor", c.to_owned()));
        }
        let req = self.authed(Method::GET, "/v1/receipts").query(&params);
        self.call(req, self.timeouts.request).await
    }

    /// Every receipt, newest first, following the node's cursors; bounded like [`Self::find_all`].
    pub async fn receipts_all(&self) -> Result<ReceiptsResponse, ClientError> {
        let limit = Some(MAX_RECEIPTS_LIMIT);
        let mut first = self.receipts_page(limit, None).await?;
        let mut pages = Pages::default();
        while let Some(c) = pages.next(first.next_cursor.take(), &self.endpoint.api)? {
            let page = self.receipts_page(limit, Some(&c)).await?;
            first.receipts.extend(page.receipts);
            first.next_cursor = page.next_cursor;
        }
        Ok(first)
    }

    /// This node's public key (its peer id), fetched once from `/v1/status`.
    pub async fn node_key(&self) -> Result<PublicKey, ClientError> {
        self.node_key
            .get_or_try_init(|| async { Ok(self.status().await?.peer_id) })
            .await
            .copied()
    }

    /// The signed spec `id` as this node holds it, with its envelope verified and its id
    /// checked (the id is the hash of the signed body, so the node cannot swap it).
    async fn signed_spec(&self, id: &ToolId) -> Result<SignedSpec, ClientError> {
        let view = self.spec(id).await?;
        let hex = view
            .envelope_hex
            .ok_or_else(|| bad_receipt(format!("the node sent spec {id} without its envelope")))?;
        let bytes = hex_decode(&hex).map_err(|e| bad_receipt(format!("spec envelope: {e}")))?;
        let spec = SignedSpec::from_bytes(&bytes).map_err(|e| bad_receipt(format!("spec {id}: {e}")))?;
        spec.expect_id(id)
            .map_err(|e| bad_receipt(format!("spec {id}: {e}")))?;
        Ok(spec)
    }

    /// Turns what a person typed into a tool id: a full id (`atr_…`), or the start of one as
    /// tables show it (at least [`MIN_SHORT_ID_LEN`] characters, with or without `atr_`)
    /// that matches exactly one spec stored on this node. The node looks the prefix up over
    /// every id it holds (`GET /v1/ids`, one range scan), so this works at any store size.
    pub async fn resolve_id(&self, text: &str) -> Result<ToolId, ClientError> {
        let text = text.trim();
        if let Ok(id) = text.parse::<ToolId>() {
            return Ok(id);
        }
        let shown = atr_protocol::text::escape(&text.chars().take(80).collect::<String>()).into_owned();
        let prefix: ToolIdPrefix = text.parse().map_err(|e| ClientError::InvalidId {
            input: shown.clone(),
            message: format!(
                "{e}; give a full id (`{TOOL_ID_PREFIX}` + 52 characters of a-z2-7) or at least {MIN_SHORT_ID_LEN} of its first characters"
            ),
        })?;
        let found = self.ids_with_prefix(&prefix).await?;
        match (found.ids.as_slice(), found.more) {
            ([one], false) => Ok(*one),
            ([], _) => Err(ClientError::NotFound {
                message: format!("no spec on this node has an id starting with `{shown}`"),
            }),
            _ => Err(ClientError::AmbiguousId {
                prefix: shown,
                matches: found.ids,
                more: found.more,
            }),
        }
    }

    /// `GET /v1/ids?prefix=`: ids of the specs this node holds that start with `prefix`
    /// (at most [`atr_protocol::api::MAX_PREFIX_MATCHES`]).
    pub async fn ids_with_prefix(&self, prefix: &ToolIdPrefix) -> Result<IdsResponse, ClientError> {
        let req = self
            .request(Method::GET, "/v1/ids")
            .query(&[("prefix", prefix.as_str())]);
        self.call(req, self.timeouts.request).await
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.endpoint.api))
    }

    fn authed(&self, method: Method, path: &str) -> RequestBuilder {
        let req = self.request(method, path);
        match &self.endpoint.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    async fn send_raw(
        &self,
        req: RequestBuilder,
        deadline: Duration,
    ) -> Result<reqwest::Response, ClientError> {
        req.timeout(deadline)
            .send()
            .await
            .map_err(|e| self.transport_error(e, deadline))
    }

    async fn call<T: DeserializeOwned>(
        &self,
        req: RequestBuilder,
        deadline: Duration,
    ) -> Result<T, ClientError> {
        let mut resp = self.send_raw(req, deadline).await?;
        let status = resp.status();
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| self.transport_error(e, deadline))?
        {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(ClientError::Decode {
                    url: self.endpoint.api.clone(),
                    message: format!("answer over the {MAX_RESPONSE_BYTES}-byte limit"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|e| ClientError::Decode {
                url: self.endpoint.api.clone(),
                message: e.to_string(),
            });
        }
        match serde_json::from_slice::<ApiErrorBody>(&body) {
            Ok(b) => Err(ClientError::from_api(
                status.as_u16(),
                b,
                &self.endpoint.token_source.hint(),
            )),
            Err(_) => {
                let (code, message) = if status == reqwest::StatusCode::REQUEST_TIMEOUT {
                    (
                        "request_timeout".to_owned(),
                        "the node gave up on the request".to_owned(),
                    )
                } else {
                    let text: String = String::from_utf8_lossy(&body).chars().take(200).collect();
                    let reason = status.canonical_reason().unwrap_or("error").to_owned();
                    (
                        format!("http_{}", status.as_u16()),
                        if text.trim().is_empty() { reason } else { text },
                    )
                };
                Err(ClientError::Api {
                    status: status.as_u16(),
                    code,
                    message,
                    details: None,
                })
            }
        }
    }

    fn transport_error(&self, e: reqwest::Error, deadline: Duration) -> ClientError {
        let url = self.endpoint.api.clone();
        if e.is_timeout() {
            ClientError::Timeout { url, after: deadline }
        } else if e.is_decode() || e.is_body() {
            ClientError::Decode {
                url,
                message: e.to_string(),
            }
        } else {
            ClientError::Unreachable { url, source: e }
        }
    }
}

fn bad_receipt(message: impl Into<String>) -> ClientError {
    ClientError::BadReceipt {
        message: message.into(),
    }
}

/// The byte strings a JSON value may have been hashed as: its compact serialization as this
/// build writes it, and with every object's keys sorted (what an atrd built without serde_json's
/// `preserve_order` writes, whichever way this build orders keys). Both parse back to `value`,
/// so accepting a hash of either never accepts a different value.
fn json_encodings(value: &serde_json::Value) -> Vec<Vec<u8>> {
    fn sorted(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => {
                let mut entries: Vec<(&String, &serde_json::Value)> = m.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k.clone(), sorted(v))).collect())
            }
            serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    let mut out = Vec::with_capacity(2);
    if let Ok(b) = serde_json::to_vec(value) {
        out.push(b);
    }
    if let Ok(b) = serde_json::to_vec(&sorted(value))
        && !out.contains(&b)
    {
        out.push(b);
    }
    out
}

/// Checks, without the network, that `resp` is a sound answer to `req`: see
/// [`Client::invoke_verified`] for the list. `provider` is the key the answer's `provider`
/// stands for. With `spec` (the signed spec of `resp.id`), the receipt's image and limits and,
/// for a request by name, the spec's name, version and publisher are checked too.
///
/// Returns the decoded receipt.
pub fn verify_invocation(
    req: &InvokeRequest,
    resp: &InvokeResponse,
    provider: &PublicKey,
    spec: Option<&SignedSpec>,
) -> Result<SignedReceipt, ClientError> {
    let bytes = hex_decode(&resp.receipt_hex).map_err(|e| bad_receipt(format!("receipt_hex: {e}")))?;
    let signed = SignedReceipt::from_bytes(&bytes).map_err(|e| bad_receipt(e.to_string()))?;
    let r = signed.value();
    if *r != resp.receipt {
        return Err(bad_receipt("the answer's `receipt` is not the signed receipt"));
    }
    if let Some(id) = &req.id
        && resp.id != *id
    {
        return Err(bad_receipt(format!(
            "the node ran {}, not the tool asked for, {id}",
            resp.id
        )));
    }
    // The exact bytes the provider hashed are one of the JSON encodings of the values: try
    // each pair; the first mismatch is the one reported when none fits.
    let inputs = json_encodings(&req.input);
    let outputs = json_encodings(&resp.output);
    let mut first_error = None;
    let mut matched = false;
    'search: for input in &inputs {
        for output in &outputs {
            let expected = Expected {
                // The node chose the invocation id; the receipt's is the one it ran.
                invocation: None,
                tool: &resp.id,
                provider,
                input,
                output,
                status: Some(resp.status),
                spec,
            };
            match verify_receipt(&signed, &expected) {
                Ok(()) => {
                    matched = true;
                    break 'search;
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
    }
    if !matched {
        return Err(bad_receipt(
            first_error.map_or_else(|| "nothing to check".to_owned(), |e| e.to_string()),
        ));
    }
    if let Some(spec) = spec {
        let s = spec.value();
        if req.id.is_none() {
            if let Some(name) = &req.name
                && s.name != *name
            {
                return Err(bad_receipt(format!("the node ran `{}`, not `{name}`", s.name)));
            }
            if let Some(v) = &req.version
                && let Ok(vreq) = atr_protocol::query::parse_version_req(v)
                && !vreq.matches(&s.version)
            {
                return Err(bad_receipt(format!(
                    "the node ran version {}, which does not match `{v}`",
                    s.version
                )));
            }
            if let Some(p) = &req.publisher
                && s.publisher != *p
            {
                return Err(bad_receipt(format!(
                    "the node ran a tool of {}, not of {p}",
                    s.publisher
                )));
            }
        }
    }
    Ok(signed)
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex_encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// Decodes hex (either case).
pub(crate) fn hex_decode(s: &str) -> Result<Vec<u8>, String> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) {
        return Err("odd number of hex digits".into());
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(format!("`{}` is not a hex digit", char::from(c))),
    };
    s.as_bytes()
        .chunks(2)
        .map(|p| Ok((digit(p[0])? << 4) | digit(p[1])?))
        .collect()
}

/// Reads, parses and resolves a manifest file; returns it with the file name to cite.
fn load_manifest(path: &Path) -> Result<(Manifest, String), ClientError> {
    let file = path.display().to_string();
    let io = |source| ClientError::Io {
        path: path.to_owned(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_MANIFEST_BYTES as u64 {
        return Err(ClientError::InvalidManifest {
            field: None,
            message: format!("{file}: {len} bytes is over the {MAX_MANIFEST_BYTES}-byte manifest limit"),
        });
    }
    let text = std::fs::read_to_string(path).map_err(io)?;
    let mut manifest = Manifest::from_toml(&text, &file)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    manifest.resolve_schemas(&file, |p| {
        let schema = dir.join(p);
        let len = std::fs::metadata(&schema).map_err(|e| e.to_string())?.len();
        if len > atr_protocol::limits::MAX_SCHEMA_BYTES as u64 {
            return Err(format!(
                "{len} bytes is over the {}-byte schema limit",
                atr_protocol::limits::MAX_SCHEMA_BYTES
            ));
        }
        std::fs::read_to_string(&schema).map_err(|e| e.to_string())
    })?;
    Ok((manifest, file))
}

/// Signed specs and answers for unit tests, as a node and a provider would make them.
#[cfg(test)]
pub(crate) mod testing {
    use atr_protocol::api::{InvokeAttempt, InvokeRequest, InvokeResponse};
    use atr_protocol::id::{ContentHash, InvocationId};
    use atr_protocol::receipt::{InvocationStatus, RECEIPT_FORMAT, Receipt};
    use atr_protocol::{Manifest, SecretKey, SignedReceipt, SignedSpec};
    use serde_json::Value;

    pub(crate) const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    pub(crate) fn key(seed: u8) -> SecretKey {
        SecretKey::from_seed(&[seed; 32])
    }

    /// A spec named `name` of `publisher`, whose input is any object.
    pub(crate) fn spec(name: &str, version: &str, publisher: &SecretKey) -> SignedSpec {
        let toml = format!(
            "name = \"{name}\"\nversion = \"{version}\"\ndescription = \"test tool\"\n\
             [input_schema]\ntype = \"object\"\n[runtime]\nimage = \"i\"\ndigest = \"{DIGEST}\"\n"
        );
        let m = Manifest::from_toml(&toml, "t.toml").unwrap();
        let s = m
            .to_spec("t.toml", publisher.public(), 1_700_000_000_000, None)
            .unwrap();
        SignedSpec::sign(s, publisher).unwrap()
    }

    /// What a node answers after `provider` ran `spec` on `input`, with the provider's
    /// signed receipt over the compact JSON of input and output.
    pub(crate) fn answer(
        spec: &SignedSpec,
        provider: &SecretKey,
        input: &Value,
        output: Value,
        status: InvocationStatus,
    ) -> (InvokeResponse, SignedReceipt) {
        let out = serde_json::to_vec(&output).unwrap();
        let receipt = Receipt {
            v: RECEIPT_FORMAT,
            invocation: InvocationId([7; 16]),
            tool: spec.id(),
            image_digest: spec.value().runtime.image_digest.clone(),
            input_hash: ContentHash::of(&serde_json::to_vec(input).unwrap()),
            output_hash: ContentHash::of(&out),
            output_bytes: out.len() as u64,
            status,
            exit_code: Some(0),
            started_at_ms: 1_700_000_000_000,
            finished_at_ms: 1_700_000_000_100,
            limits: spec.value().limits,
            provider: provider.public(),
            policy_hash: Some(atr_protocol::policy::Policy::of(spec.value()).hash()),
            usage: Some(atr_protocol::receipt::Usage {
                wall_ms: 90,
                ..Default::default()
            }),
        };
        let signed = SignedReceipt::sign(receipt, provider).unwrap();
        let resp = InvokeResponse {
            id: spec.id(),
            output,
            status,
            provider: provider.public().to_string(),
            provider_kind: Some(atr_protocol::api::ProviderKind::Publisher),
            receipt: signed.value().clone(),
            receipt_hex: super::hex_encode(&signed.to_bytes()),
            attempts: vec![InvokeAttempt {
                provider: provider.public().to_string(),
                outcome: "ok".into(),
            }],
        };
        (resp, signed)
    }

    pub(crate) fn by_id(spec: &SignedSpec, input: Value) -> InvokeRequest {
        InvokeRequest {
            id: Some(spec.id()),
            name: None,
            version: None,
            publisher: None,
            input,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atr_protocol::receipt::InvocationStatus;
    use serde_json::json;

    #[test]
    fn manifest_schema_paths_resolve_next_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("schemas")).unwrap();
        std::fs::write(
            dir.path().join("schemas/in.json"),
            r#"{"type":"object","properties":{"a":{"type":"integer"}}}"#,
        )
        .unwrap();
        let m = dir.path().join("tool.toml");
        std::fs::write(
            &m,
            "name = \"t\"\nversion = \"1.0.0\"\ndescription = \"d\"\ninput_schema = \"schemas/in.json\"\n[runtime]\nimage = \"i\"\n",
        )
        .unwrap();
        let (manifest, file) = load_manifest(&m).unwrap();
        assert!(file.ends_with("tool.toml"));
        assert!(matches!(
            manifest.input_schema,
            atr_protocol::manifest::SchemaSource::Inline(_)
        ));
    }

    #[test]
    fn manifest_errors_name_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path().join("tool.toml");
        std::fs::write(
            &m,
            "name = \"t\"\nversion = \"1.0.0\"\ndescription = \"d\"\ninput_schema = \"missing.json\"\n[runtime]\nimage = \"i\"\n",
        )
        .unwrap();
        let e = load_manifest(&m).unwrap_err();
        assert_eq!(e.field(), Some("input_schema"), "{e}");
        let e = load_manifest(&dir.path().join("nope.toml")).unwrap_err();
        assert!(matches!(e, ClientError::Io { .. }));
    }

    #[test]
    fn hex_round_trips() {
        let b = [0u8, 1, 0xab, 0xff];
        assert_eq!(hex_encode(&b), "0001abff");
        assert_eq!(hex_decode("0001ABff").unwrap(), b);
        assert!(hex_decode("abc").is_err());
        assert!(hex_decode("zz").is_err());
    }

    /// A node that ran the tool itself names itself by its peer id (what `atrd` writes: there
    /// is no `local` placeholder); that text is the key that signed, and the answer verifies.
    #[test]
    fn a_local_run_names_the_nodes_own_key() {
        let node = testing::key(2);
        let spec = testing::spec("add", "1.2.0", &testing::key(1));
        let input = json!({"a": 2, "b": 3});
        let (resp, _) = testing::answer(&spec, &node, &input, json!(5), InvocationStatus::Ok);
        assert_eq!(resp.provider, node.public().to_string());
        let provider = resp.provider_key().unwrap();
        assert_eq!(provider, node.public());
        verify_invocation(&testing::by_id(&spec, input), &resp, &provider, Some(&spec)).unwrap();
        let mut placeholder = resp.clone();
        placeholder.provider = "local".into();
        assert!(placeholder.provider_key().is_err());
    }

    #[test]
    fn a_sound_answer_verifies() {
        let (publisher, provider) = (testing::key(1), testing::key(2));
        let spec = testing::spec("add", "1.2.0", &publisher);
        let input = json!({"b": 3, "a": 2, "nested": {"z": 1, "y": [1.5, -0.0, 1e300]}});
        let (resp, signed) = testing::answer(&spec, &provider, &input, json!(5), InvocationStatus::Ok);
        let req = testing::by_id(&spec, input.clone());
        let got = verify_invocation(&req, &resp, &provider.public(), Some(&spec)).unwrap();
        assert_eq!(got, signed);

        // By name, version and publisher.
        let by_name = InvokeRequest {
            id: None,
            name: Some("add".into()),
            version: Some("^1.1".into()),
            publisher: Some(publisher.public()),
            input: input.clone(),
        };
        verify_invocation(&by_name, &resp, &provider.public(), Some(&spec)).unwrap();
        for (field, bad) in [
            (
                "name",
                InvokeRequest {
                    name: Some("sub".into()),
                    ..by_name.clone()
                },
            ),
            (
                "version",
                InvokeRequest {
                    version: Some("^2".into()),
                    ..by_name.clone()
                },
            ),
            (
                "publisher",
                InvokeRequest {
                    publisher: Some(provider.public()),
                    ..by_name.clone()
                },
            ),
        ] {
            let e = verify_invocation(&bad, &resp, &provider.public(), Some(&spec)).unwrap_err();
            assert_eq!(e.code(), "bad_receipt", "{field}: {e}");
        }
    }

    #[test]
    fn tampering_is_caught() {
        let (publisher, provider) = (testing::key(1), testing::key(2));
        let spec = testing::spec("add", "1.0.0", &publisher);
        let input = json!({"a": 2, "b": 3});
        let (resp, _) = testing::answer(&spec, &provider, &input, json!(5), InvocationStatus::Ok);
        let req = testing::by_id(&spec, input.clone());
        let check = |req: &InvokeRequest, resp: &InvokeResponse, key: &PublicKey| {
            let e = verify_invocation(req, resp, key, Some(&spec)).unwrap_err();
            assert!(matches!(e, ClientError::BadReceipt { .. }), "{e}");
            e.to_string()
        };
        let pk = provider.public();

        let output = InvokeResponse {
            output: json!(6),
            ..resp.clone()
        };
        assert!(check(&req, &output, &pk).contains("output hash"));
        let input = testing::by_id(&spec, json!({"a": 2, "b": 4}));
        assert!(check(&input, &resp, &pk).contains("input hash"));
        assert!(check(&req, &resp, &publisher.public()).contains("signed by"));
        let status = InvokeResponse {
            status: InvocationStatus::ToolError,
            ..resp.clone()
        };
        assert!(check(&req, &status, &pk).contains("tool_error"));
        let mut field = resp.clone();
        field.receipt.exit_code = Some(1);
        assert!(check(&req, &field, &pk).contains("not the signed receipt"));
        let mut hex = resp.clone();
        let last = hex.receipt_hex.pop().unwrap();
        hex.receipt_hex.push(if last == '0' { '1' } else { '0' });
        check(&req, &hex, &pk);
        let other = testing::spec("other", "1.0.0", &publisher);
        let wrong_tool = testing::by_id(&other, json!({"a": 2, "b": 3}));
        assert!(check(&wrong_tool, &resp, &pk).contains("not the tool asked for"));
        // A spec pinning another image than the receipt names.
        let e = verify_invocation(&req, &resp, &pk, Some(&other)).unwrap_err();
        assert!(e.to_string().contains("is not tool"), "{e}");
    }

    #[test]
    fn either_key_order_of_the_same_value_is_accepted() {
        let (publisher, provider) = (testing::key(1), testing::key(2));
        let spec = testing::spec("echo", "1.0.0", &publisher);
        let input = json!({"m": 1, "a": {"z": true, "b": null}});
        let (resp, _) = testing::answer(&spec, &provider, &input, input.clone(), InvocationStatus::Ok);
        let encodings = json_encodings(&resp.output);
        assert!(!encodings.is_empty());
        for e in &encodings {
            assert_eq!(
                serde_json::from_slice::<serde_json::Value>(e).unwrap(),
                resp.output
            );
        }
        verify_invocation(
            &testing::by_id(&spec, input),
            &resp,
            &provider.public(),
            Some(&spec),
        )
        .unwrap();
    }
}
