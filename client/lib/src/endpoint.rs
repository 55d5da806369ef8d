//! Where the node is and how to authenticate to it.
//!
//! [`Endpoint::from_env`] finds the API from `ATR_API` (default
//! [`DEFAULT_API_URL`]) and the token from `ATR_TOKEN`, else from the file
//! `api.token` in the node's data directory (`ATR_DATA_DIR`, else
//! [`default_data_dir`], the same rule `atrd` uses). [`TokenSource`] remembers
//! where the token came from, so an `unauthorized` answer can say what to fix.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::ClientError;

pub use atr_protocol::local::{
    DEFAULT_API_URL, ENV_API, ENV_DATA_DIR, ENV_TOKEN, MAX_TOKEN_FILE_BYTES, TOKEN_FILE,
};

/// `atrd`'s default data directory: `$XDG_DATA_HOME/atr`, else `~/.local/share/atr`, else
/// `./atr-data` ([`atr_protocol::local::data_dir`], the rule `atrd` uses too).
pub fn default_data_dir() -> PathBuf {
    atr_protocol::local::data_dir(
        std::env::var_os("XDG_DATA_HOME").as_deref(),
        std::env::var_os("HOME").as_deref(),
    )
}

/// Where the API token came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenSource {
    /// Given by the program.
    Explicit,
    /// The `ATR_TOKEN` environment variable.
    Env,
    /// A token file.
    File(PathBuf),
    /// None found; the token file looked for.
    Missing(PathBuf),
    /// The token file exists but could not be read.
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        error: String,
    },
}

impl TokenSource {
    /// What to tell an operator whose call was refused as unauthorized.
    pub fn hint(&self) -> String {
        match self {
            Self::Explicit => "the token given was refused".into(),
            Self::Env => {
                format!("the token in ${ENV_TOKEN} was refused; unset it to use the node's token file")
            }
            Self::File(p) => format!(
                "the token in {} was refused: is {ENV_API} the node whose data dir that is?",
                p.display()
            ),
            Self::Missing(p) => format!(
                "no API token: set {ENV_TOKEN}, or {ENV_DATA_DIR} to the node's data dir ({} does not exist)",
                p.display()
            ),
            Self::Unreadable { path, error } => {
                format!("cannot read the API token from {}: {error}", path.display())
            }
        }
    }
}

impl fmt::Display for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Explicit => f.write_str("given"),
            Self::Env => write!(f, "${ENV_TOKEN}"),
            Self::File(p) => write!(f, "{}", p.display()),
            Self::Missing(p) => write!(f, "none ({} not found)", p.display()),
            Self::Unreadable { path, .. } => write!(f, "none ({} unreadable)", path.display()),
        }
    }
}

/// A node's API address and token.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Base URL, `http://host:port`, without a trailing slash.
    pub api: String,
    /// The bearer token for mutating calls, when known.
    pub token: Option<String>,
    /// Where the token came from.
    pub token_source: TokenSource,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("api", &self.api)
            .field("token", &self.token.as_ref().map(|_| ".."))
            .field("token_source", &self.token_source)
            .finish()
    }
}

impl Endpoint {
    /// The endpoint the environment describes; `api` (e.g. a `--api` flag) wins over `ATR_API`.
    pub fn from_env(api: Option<&str>) -> Result<Self, ClientError> {
        let env_api = std::env::var(ENV_API).ok().filter(|v| !v.trim().is_empty());
        let api = normalize_url(api.or(env_api.as_deref()).unwrap_or(DEFAULT_API_URL))?;
        if let Some(t) = std::env::var(ENV_TOKEN).ok().filter(|v| !v.trim().is_empty()) {
            return Ok(Self {
                api,
                token: Some(t.trim().to_owned()),
                token_source: TokenSource::Env,
            });
        }
        let dir = std::env::var_os(ENV_DATA_DIR)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(default_data_dir);
        let (token, token_source) = read_token_file(&dir.join(TOKEN_FILE));
        Ok(Self {
            api,
            token,
            token_source,
        })
    }
}

/// Reads a token file: `(Some(token), File)` when it holds one.
pub fn read_token_file(path: &Path) -> (Option<String>, TokenSource) {
    let unreadable = |error: String| {
        (
            None,
            TokenSource::Unreadable {
                path: path.to_owned(),
                error,
            },
        )
    };
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (None, TokenSource::Missing(path.to_owned())),
        Err(e) => unreadable(e.to_string()),
        Ok(m) if m.len() > MAX_TOKEN_FILE_BYTES => {
            unreadable(format!("{} bytes is too large for a token file", m.len()))
        }
        Ok(_) => match std::fs::read_to_string(path) {
            Ok(s) if !s.trim().is_empty() => (Some(s.trim().to_owned()), TokenSource::File(path.to_owned())),
            Ok(_) => unreadable("the file is empty".into()),
            Err(e) => unreadable(e.to_string()),
        },
    }
}

/// Checks and normalizes an API address: `host:port` gets `http://`, a trailing `/` is cut.
/// Only plain `http` is spoken: the local API listens on loopback without TLS.
pub fn normalize_url(url: &str) -> Result<String, ClientError> {
    let raw = url.trim();
    let invalid = |message: &str| ClientError::InvalidUrl {
        url: raw.chars().take(200).collect(),
        message: message.into(),
    };
    let with_scheme = if raw.contains("://") {
        raw.to_owned()
    } else {
        format!("http://{raw}")
    };
    let Some(rest) = with_scheme.strip_prefix("http://") else {
        return Err(invalid(
            "only http:// is supported (the local API is plain HTTP on loopback)",
        ));
    };
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() || authority.contains(char::is_whitespace) {
        return Err(invalid("expected http://HOST:PORT"));
    }
    Ok(with_scheme.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_normalized() {
        assert_eq!(normalize_url("127.0.0.1:9").unwrap(), "http://127.0.0.1:9");
        assert_eq!(
            normalize_url("http://localhost:7878/").unwrap(),
            "http://localhost:7878"
        );
        assert!(normalize_url("https://x:1").is_err());
        assert!(normalize_url("http://").is_err());
        assert!(normalize_url("").is_err());
    }

    #[test]
    fn token_file_states() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(TOKEN_FILE);
        assert!(matches!(read_token_file(&p), (None, TokenSource::Missing(_))));
        std::fs::write(&p, "abc\n").unwrap();
        assert_eq!(read_token_file(&p).0.as_deref(), Some("abc"));
        std::fs::write(&p, "").unwrap();
        assert!(matches!(
            read_token_file(&p),
            (None, TokenSource::Unreadable { .. })
        ));
    }
}
