//! Who may talk to the local API at all: one tower layer in front of every route.
//!
//! A web page can make a browser send requests to `127.0.0.1`: directly (a form POST, an
//! `<img>`), or through DNS rebinding (a name the attacker controls re-resolves to
//! `127.0.0.1`, so the page's own scripts can read the answers). [`Access`] refuses, with
//! `403 forbidden_origin`:
//!
//! - a `Host` that is not a loopback name (`localhost`, `127.0.0.0/8`, `[::1]`), the address
//!   the API is bound to, or a name the operator listed (`api_hosts`). A rebinding page's
//!   requests carry the attacker's name in `Host`, so they never get an answer; with a
//!   remote API on a wildcard address (`0.0.0.0`, `::`), any IP literal is accepted (a
//!   browser sends an IP literal only when the page itself came from that IP);
//! - an `Origin` (sent by browsers on every cross-origin request and every POST) whose host
//!   fails the same test, and the opaque origin `null`;
//! - `Sec-Fetch-Site: cross-site` (sent by current browsers on every request a page of
//!   another site makes, including `<img>` GETs that carry no `Origin`).
//!
//! A request without `Host` (HTTP/1.1 requires it) is refused too. The port is not checked:
//! the names are what rebinding changes.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use atr_protocol::api::ErrorCode;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

/// The Host and Origin allowlists of one API listener.
#[derive(Debug, Clone)]
pub struct Access {
    bound: SocketAddr,
    allow_remote: bool,
    hosts: Vec<String>,
}

impl Access {
    /// The policy of an API bound to `bound`: loopback names and `bound`'s address, plus
    /// `hosts` (DNS names, matched case-insensitively); with `allow_remote` and a wildcard
    /// `bound`, any IP literal.
    pub fn new(bound: SocketAddr, allow_remote: bool, hosts: Vec<String>) -> Self {
        Self {
            bound,
            allow_remote,
            hosts: hosts.into_iter().map(|h| normalize(&h)).collect(),
        }
    }

    /// Loopback only (the default of a node bound to `127.0.0.1`).
    pub fn loopback(bound: SocketAddr) -> Self {
        Self::new(bound, false, Vec::new())
    }

    /// Whether `authority` (`host[:port]`, as in a `Host` header) names this node.
    pub fn host_allowed(&self, authority: &str) -> bool {
        let Some(host) = host_of(authority) else {
            return false;
        };
        match host.parse::<IpAddr>() {
            Ok(ip) => {
                ip.is_loopback()
                    || ip == self.bound.ip()
                    || (self.allow_remote && self.bound.ip().is_unspecified())
            }
            Err(_) => host == "localhost" || self.hosts.contains(&host),
        }
    }

    /// Whether an `Origin` header value is a page of this node (`http(s)://` + an allowed host).
    pub fn origin_allowed(&self, origin: &str) -> bool {
        let rest = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        match rest {
            // An origin has no path; a trailing slash is tolerated.
            Some(authority) => {
                let authority = authority.strip_suffix('/').unwrap_or(authority);
                !authority.contains('/') && self.host_allowed(authority)
            }
            None => false,
        }
    }

    /// Why `headers` are refused, or `None` when the request may go on.
    pub fn refusal(&self, headers: &HeaderMap) -> Option<String> {
        let Some(host) = headers.get(header::HOST) else {
            return Some("a request must carry a `Host` header".into());
        };
        match host.to_str() {
            Ok(h) if self.host_allowed(h) => {}
            _ => {
                return Some(format!(
                    "Host `{}` is not this node: the local API answers only its loopback names, the address it is bound to and `api_hosts`",
                    shown(host.as_bytes())
                ));
            }
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            match origin.to_str() {
                Ok(o) if self.origin_allowed(o) => {}
                _ => {
                    return Some(format!(
                        "Origin `{}` is not this node: web pages of other sites may not call the local API",
                        shown(origin.as_bytes())
                    ));
                }
            }
        }
        if headers
            .get("sec-fetch-site")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"))
        {
            return Some("a cross-site browser request may not call the local API".into());
        }
        None
    }
}

/// The layer: refuses what [`Access::refusal`] refuses, before any handler runs.
pub async fn guard(access: Arc<Access>, req: Request, next: Next) -> Response {
    match access.refusal(req.headers()) {
        None => next.run(req).await,
        Some(why) => {
            tracing::debug!(reason = %why, "local API request refused");
            ApiError::new(StatusCode::FORBIDDEN, ErrorCode::ForbiddenOrigin, why).into_response()
        }
    }
}

/// The host of `host[:port]` or `[v6]:port`, lower case, without brackets or a trailing dot.
fn host_of(authority: &str) -> Option<String> {
    let a = authority.trim();
    if a.is_empty() || a.len() > 255 || a.contains(['@', '/', ' ']) {
        return None;
    }
    let host = if let Some(rest) = a.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        v6
    } else {
        match a.rsplit_once(':') {
            Some((h, port)) if is_port(port) && !h.contains(':') => h,
            Some(_) => return None,
            None => a,
        }
    };
    let host = normalize(host);
    (!host.is_empty()).then_some(host)
}

fn is_port(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
}

fn normalize(host: &str) -> String {
    host.trim().trim_end_matches('.').to_ascii_lowercase()
}

fn shown(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(80)]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> Access {
        Access::loopback("127.0.0.1:7878".parse().unwrap())
    }

    #[test]
    fn loopback_names_pass_foreign_names_do_not() {
        let a = local();
        for ok in [
            "localhost",
            "localhost:7878",
            "LOCALHOST.",
            "127.0.0.1",
            "127.0.0.1:7878",
            "127.1.2.3:9",
            "[::1]",
            "[::1]:7878",
        ] {
            assert!(a.host_allowed(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:7878",
            "localhost.evil.example",
            "10.0.0.1:7878",
            "0.0.0.0:7878",
            "[::1",
            "::1",
            "127.0.0.1:7878:1",
            "user@127.0.0.1",
            "",
        ] {
            assert!(!a.host_allowed(bad), "{bad}");
        }
    }

    #[test]
    fn origins_follow_the_host_rule() {
        let a = local();
        assert!(a.origin_allowed("http://127.0.0.1:7878"));
        assert!(a.origin_allowed("https://localhost"));
        assert!(a.origin_allowed("http://[::1]:3000/"));
        for bad in [
            "null",
            "http://evil.example",
            "http://127.0.0.1.evil.example",
            "file://",
            "ftp://127.0.0.1",
            "http://127.0.0.1/x",
        ] {
            assert!(!a.origin_allowed(bad), "{bad}");
        }
    }

    #[test]
    fn a_remote_api_accepts_its_address_and_listed_names() {
        let a = Access::new(
            "10.1.2.3:7878".parse().unwrap(),
            true,
            vec!["Node.Example.org".into()],
        );
        assert!(a.host_allowed("10.1.2.3:7878"));
        assert!(a.host_allowed("node.example.org"));
        assert!(!a.host_allowed("10.1.2.4"));
        assert!(!a.host_allowed("evil.example"));
        let wild = Access::new("0.0.0.0:7878".parse().unwrap(), true, vec![]);
        assert!(wild.host_allowed("172.17.0.5:7878"));
        assert!(!wild.host_allowed("evil.example"));
        // Without the operator's say-so a wildcard bind accepts no foreign address.
        let wild_local = Access::new("0.0.0.0:7878".parse().unwrap(), false, vec![]);
        assert!(!wild_local.host_allowed("172.17.0.5:7878"));
    }

    #[test]
    fn refusal_checks_host_then_origin_then_fetch_site() {
        let a = local();
        let mut h = HeaderMap::new();
        assert!(a.refusal(&h).unwrap().contains("Host"));
        h.insert(header::HOST, "127.0.0.1:7878".parse().unwrap());
        assert_eq!(a.refusal(&h), None);
        h.insert(header::ORIGIN, "http://evil.example".parse().unwrap());
        assert!(a.refusal(&h).unwrap().contains("Origin"));
        h.insert(header::ORIGIN, "http://localhost:7878".parse().unwrap());
        assert_eq!(a.refusal(&h), None);
        h.insert("sec-fetch-site", "cross-site".parse().unwrap());
        assert!(a.refusal(&h).unwrap().contains("cross-site"));
        h.insert("sec-fetch-site", "same-origin".parse().unwrap());
        assert_eq!(a.refusal(&h), None);
    }
}
