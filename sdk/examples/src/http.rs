//! A minimal HTTP/1.1 client through the node's egress proxy, for `http_fetch` and
//! `authed_fetch`.
//!
//! The proxy comes from `HTTP_PROXY` (`http://atr:<token>@host:port`, set by the node for a
//! tool that declares egress). Requests go in absolute form (`GET http://host:port/path`) with
//! `Proxy-Authorization`; the proxy checks the host against the tool's signed allowlist,
//! resolves it, and answers `403` for anything else. Plain `http://` only: this example has no
//! TLS (an `https://` client would send `CONNECT host:443` to the same proxy).
//!
//! Every step is bounded: URL length, connect and read timeouts, response bytes.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde_json::{Value, json};

use crate::ToolError;

/// Longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;
/// Most response bytes read (head and body).
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;
/// Most body bytes returned in the output.
pub const MAX_BODY_OUT: usize = 64 * 1024;
/// Connect timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Read/write timeout.
const IO_TIMEOUT: Duration = Duration::from_secs(15);

/// The proxy named by `HTTP_PROXY`/`http_proxy`: `(host:port, user:password)`.
fn proxy() -> Result<(String, Option<String>), ToolError> {
    let url = std::env::var("HTTP_PROXY")
        .or_else(|_| std::env::var("http_proxy"))
        .map_err(|_| {
            ToolError::failed(
                "no_egress",
                "HTTP_PROXY is not set: this tool runs only where the node grants its declared egress",
            )
        })?;
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| ToolError::failed("bad_proxy", "HTTP_PROXY is not an http:// URL"))?;
    let rest = rest.trim_end_matches('/');
    Ok(match rest.rsplit_once('@') {
        Some((cred, addr)) => (addr.to_owned(), Some(cred.to_owned())),
        None => (rest.to_owned(), None),
    })
}

/// Base64 (standard alphabet, padded).
fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Checks `url` is `http://host[:port]/…` without user info, within [`MAX_URL_LEN`].
fn check_url(url: &str) -> Result<(), ToolError> {
    let bad = |why: &str| ToolError::bad_input("invalid_url", format!("url {why}"));
    if url.len() > MAX_URL_LEN {
        return Err(bad("is too long"));
    }
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| bad("must start with http:// (this example speaks plain HTTP)"))?;
    let authority = rest.split('/').next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') || url.bytes().any(|b| b <= b' ') {
        return Err(bad("must name a host, without user info or spaces"));
    }
    Ok(())
}

/// GETs `url` through the proxy, with `headers` added; returns
/// `{"status", "body", "truncated", "bytes"}`.
pub fn get(url: &str, headers: &[(&str, String)]) -> Result<Value, ToolError> {
    check_url(url)?;
    let (addr, cred) = proxy()?;
    let sock = addr
        .to_socket_addrs()
        .map_err(|e| ToolError::failed("proxy_unreachable", format!("proxy address: {e}")))?
        .next()
        .ok_or_else(|| ToolError::failed("proxy_unreachable", "proxy address resolves to nothing"))?;
    let mut s = TcpStream::connect_timeout(&sock, CONNECT_TIMEOUT)
        .map_err(|e| ToolError::failed("proxy_unreachable", e.to_string()))?;
    let _ = s.set_read_timeout(Some(IO_TIMEOUT));
    let _ = s.set_write_timeout(Some(IO_TIMEOUT));
    let host = url["http://".len()..].split('/').next().unwrap_or("");
    let mut req =
        format!("GET {url} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: atr-http-fetch\r\nConnection: close\r\n");
    if let Some(c) = cred {
        req.push_str(&format!(
            "Proxy-Authorization: Basic {}\r\n",
            base64(c.as_bytes())
        ));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())
        .map_err(|e| ToolError::failed("request_failed", e.to_string()))?;
    let mut buf = Vec::new();
    let _ = s.take(MAX_RESPONSE_BYTES as u64).read_to_end(&mut buf);
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| ToolError::failed("bad_response", "no complete HTTP response head"))?;
    let status: u64 = std::str::from_utf8(&buf[..end])
        .ok()
        .and_then(|h| h.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| ToolError::failed("bad_response", "no status code"))?;
    let body = &buf[end + 4..];
    let shown = &body[..body.len().min(MAX_BODY_OUT)];
    Ok(json!({
        "status": status,
        "body": String::from_utf8_lossy(shown),
        "truncated": shown.len() < body.len() || buf.len() >= MAX_RESPONSE_BYTES,
        "bytes": body.len(),
    }))
}

/// Tries to resolve `name` with the container's own resolver (which a sandbox with egress
/// points nowhere); `{"resolved": [...]}` or `{"error": ...}`.
pub fn lookup(name: &str) -> Value {
    match (name, 80).to_socket_addrs() {
        Ok(a) => json!({ "resolved": a.map(|s| s.ip().to_string()).take(8).collect::<Vec<_>>() }),
        Err(e) => json!({ "error": e.to_string() }),
    }
}

/// Tries a direct TCP connection to `addr` (bypassing the proxy); `{"connected": bool}`.
pub fn direct(addr: &str) -> Result<Value, ToolError> {
    let sock: std::net::SocketAddr = addr
        .parse()
        .map_err(|_| ToolError::bad_input("invalid_target", "direct must be an IP:port"))?;
    Ok(match TcpStream::connect_timeout(&sock, Duration::from_secs(2)) {
        Ok(_) => json!({ "connected": true }),
        Err(e) => json!({ "connected": false, "error": e.to_string() }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_examples() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn urls_are_checked() {
        assert!(check_url("http://web.test:8080/x").is_ok());
        for bad in [
            "https://a/",
            "ftp://a/",
            "http://",
            "http://u:p@a/",
            "http://a/ b",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }
}
