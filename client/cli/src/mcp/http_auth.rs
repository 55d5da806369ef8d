//! The bearer token of `atr mcp --http`: who may call the served tools over a network.
//!
//! Anyone who reaches the MCP endpoint runs tools through the operator's node (and spends
//! its API token's authority to invoke). On loopback that is this host's users, as for the
//! node's own API; on any other address it is the network. So a non-loopback bind always
//! requires `Authorization: Bearer <token>` ([`require`]); `--require-token` asks for it on
//! loopback too. The token is 32 random bytes in hex, created once with mode 0600 in the
//! node's data dir ([`atr_protocol::local::MCP_TOKEN_FILE`], next to the API token file, by
//! the same rules) and printed on stderr when it is created ([`load_or_create`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Shortest token accepted from the token file: 32 hex characters (128 bits).
pub const MIN_TOKEN_LEN: usize = 32;

/// Why the token file could not be read or created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Reading or creating the file failed.
    #[error("MCP token file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file holds something too short, or too large, to be a token.
    #[error(
        "MCP token file {} does not hold a token (at least {MIN_TOKEN_LEN} characters); delete it to create a new one",
        path.display()
    )]
    Invalid {
        /// The file.
        path: PathBuf,
    },
}

/// The token in `<dir>/mcp.token`, creating it (mode 0600) when absent. The bool says whether
/// it was created now (the caller prints it then, once).
pub fn load_or_create(dir: &Path) -> Result<(String, bool), TokenError> {
    let path = dir.join(atr_protocol::local::MCP_TOKEN_FILE);
    let io = |source| TokenError::Io {
        path: path.clone(),
        source,
    };
    match std::fs::metadata(&path) {
        Ok(m) if m.len() > atr_protocol::local::MAX_TOKEN_FILE_BYTES => {
            return Err(TokenError::Invalid { path });
        }
        Ok(_) => {
            let t = std::fs::read_to_string(&path).map_err(io)?;
            let t = t.trim();
            if t.len() < MIN_TOKEN_LEN || !t.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(TokenError::Invalid { path });
            }
            return Ok((t.to_owned(), false));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut b = [0u8; 32];
    rand::fill(&mut b);
    let t = hex::encode(b);
    write_private(&path, t.as_bytes()).map_err(io)?;
    Ok((t, true))
}

/// Writes `bytes` to a new file readable only by its owner (never over an existing one).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Equal in time independent of where `a` and `b` differ (lengths are not secret).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether `value` (an `Authorization` header) is `Bearer <token>`.
pub fn authorizes(value: Option<&[u8]>, token: &str) -> bool {
    let Some(v) = value else {
        return false;
    };
    let Some(given) = v.strip_prefix(b"Bearer ").or_else(|| v.strip_prefix(b"bearer ")) else {
        return false;
    };
    same(given.trim_ascii(), token.as_bytes())
}

/// JSON-RPC error code of a refused token (the implementation-defined server range): the
/// 401's body is a JSON-RPC error, so MCP clients show its message instead of a bare status.
pub const UNAUTHORIZED_CODE: i64 = -32001;

/// The middleware: `401 Unauthorized` with `WWW-Authenticate: Bearer` and a JSON-RPC error
/// body unless the request carries the token, before the MCP service sees it.
pub async fn require(token: Arc<str>, req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let header = req.headers().get(header::AUTHORIZATION).map(|v| v.as_bytes());
    if authorizes(header, &token) {
        return next.run(req).await;
    }
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {
            "code": UNAUTHORIZED_CODE,
            "message": "Unauthorized: this MCP server needs `Authorization: Bearer <token>`; \
                        the token is in the node's data dir, file mcp.token",
        },
    });
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::WWW_AUTHENTICATE, "Bearer realm=\"atr mcp\""),
            (header::CONTENT_TYPE, "application/json"),
        ],
        body.to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let (a, created) = load_or_create(dir.path()).unwrap();
        assert!(created);
        assert_eq!(a.len(), 64);
        let (b, created) = load_or_create(dir.path()).unwrap();
        assert!(!created);
        assert_eq!(a, b);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("mcp.token"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(dir.path().join("mcp.token"), "short").unwrap();
        assert!(matches!(
            load_or_create(dir.path()),
            Err(TokenError::Invalid { .. })
        ));
    }

    #[test]
    fn only_the_exact_bearer_token_authorizes() {
        let t = "a".repeat(64);
        assert!(authorizes(Some(format!("Bearer {t}").as_bytes()), &t));
        assert!(!authorizes(None, &t));
        assert!(!authorizes(Some(t.as_bytes()), &t));
        assert!(!authorizes(
            Some(format!("Bearer {}", "b".repeat(64)).as_bytes()),
            &t
        ));
        assert!(!authorizes(
            Some(format!("Bearer {}", "a".repeat(63)).as_bytes()),
            &t
        ));
        assert!(!authorizes(Some(format!("Basic {t}").as_bytes()), &t));
    }
}
