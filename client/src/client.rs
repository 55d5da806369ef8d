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
use std::time::Duration;

use atr_protocol::ToolId;
use atr_protocol::api::{
    ApiErrorBody, FindResponse, PeersResponse, PublishRequest, PublishResponse, RevokeRequest,
    RevokeResponse, SearchResponse, SpecView, StatusResponse,
};
use atr_protocol::id::TOOL_ID_PREFIX;
use atr_protocol::manifest::{MAX_MANIFEST_BYTES, Manifest};
use atr_protocol::query::{FindQuery, MAX_FIND_LIMIT};
use reqwest::{Method, RequestBuilder};
use serde::de::DeserializeOwned;

use crate::endpoint::Endpoint;
use crate::error::ClientError;

/// Largest answer read from the node: a find of [`MAX_FIND_LIMIT`] specs of up to 64 KiB
/// each, with room to spare. A larger answer is refused rather than buffered.
pub const MAX_RESPONSE_BYTES: usize = 96 * 1024 * 1024;

/// Fewest characters of a short id [`Client::resolve_id`] accepts: fewer match too much.
pub const MIN_SHORT_ID_LEN: usize = 4;

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
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(3),
            request: Duration::from_secs(15),
            network: Duration::from_secs(45),
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
        }
    }
}

/// A client of one node's local API. Cheap to clone (connections are pooled and shared).
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    endpoint: Endpoint,
    timeouts: Timeouts,
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

    /// `GET /v1/status`: identity, addresses, peers and store counts.
    pub async fn status(&self) -> Result<StatusResponse, ClientError> {
        self.call(self.request(Method::GET, "/v1/status"), self.timeouts.request)
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

    /// `GET /v1/find`. With `q.network` the node also asks its peers, which takes up to
    /// [`Timeouts::network`].
    pub async fn find(&self, q: &FindQuery) -> Result<FindResponse, ClientError> {
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
        let deadline = if q.network {
            self.timeouts.network
        } else {
            self.timeouts.request
        };
        let req = self.request(Method::GET, "/v1/find").query(&params);
        self.call(req, deadline).await
    }

    /// `GET /v1/search`: ranked full-text search of this node's specs (default 20 hits).
    pub async fn search(&self, text: &str, limit: Option<usize>) -> Result<SearchResponse, ClientError> {
        let mut params = vec![("q", text.to_owned())];
        if let Some(l) = limit {
            params.push(("limit", l.to_string()));
        }
        let req = self.request(Method::GET, "/v1/search").query(&params);
        self.call(req, self.timeouts.request).await
    }

    /// `POST /v1/revoke`: revoke or deprecate a spec (or every version of a name) this node
    /// published. Needs the API token.
    pub async fn revoke(&self, req: &RevokeRequest) -> Result<RevokeResponse, ClientError> {
        let builder = self.authed(Method::POST, "/v1/revoke").json(req);
        self.call(builder, self.timeouts.request).await
    }

    /// `GET /v1/peers`: connected peers.
    pub async fn peers(&self) -> Result<PeersResponse, ClientError> {
        self.call(self.request(Method::GET, "/v1/peers"), self.timeouts.request)
            .await
    }

    /// Turns what a person typed into a tool id: a full id (`atr_…`), or the start of one as
    /// tables show it (at least [`MIN_SHORT_ID_LEN`] characters, with or without `atr_`)
    /// that matches exactly one spec stored on this node.
    pub async fn resolve_id(&self, text: &str) -> Result<ToolId, ClientError> {
        let text = text.trim();
        if let Ok(id) = text.parse::<ToolId>() {
            return Ok(id);
        }
        let prefix = text.strip_prefix(TOOL_ID_PREFIX).unwrap_or(text);
        let shown: String = text.chars().take(80).collect();
        let base32 = |c: char| c.is_ascii_lowercase() || ('2'..='7').contains(&c);
        if prefix.len() < MIN_SHORT_ID_LEN || prefix.len() >= 52 || !prefix.chars().all(base32) {
            return Err(ClientError::InvalidId {
                input: shown,
                message: format!(
                    "give a full id (`{TOOL_ID_PREFIX}` + 52 characters of a-z2-7) or at least {MIN_SHORT_ID_LEN} of its first characters"
                ),
            });
        }
        let all = self
            .find(&FindQuery {
                include_revoked: true,
                limit: Some(MAX_FIND_LIMIT),
                ..FindQuery::default()
            })
            .await?;
        let full = format!("{TOOL_ID_PREFIX}{prefix}");
        let matches: Vec<ToolId> = all
            .results
            .iter()
            .map(|v| v.id)
            .filter(|id| id.to_string().starts_with(&full))
            .collect();
        match matches.as_slice() {
            [one] => Ok(*one),
            [] => Err(ClientError::NotFound {
                message: format!("no spec on this node has an id starting with `{shown}`"),
            }),
            many => Err(ClientError::AmbiguousId {
                prefix: shown,
                count: many.len(),
            }),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
