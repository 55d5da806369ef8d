//! Conventions between a local `atrd` and the programs that talk to it (`atr`, `atr-client`,
//! the MCP server): where the node keeps its data, where its API token is, which address its
//! API listens on by default, and the environment variables that override them.
//!
//! These are constants and one pure function ([`data_dir`]): the callers read the environment
//! and the files themselves (this crate does no I/O).

use std::ffi::OsStr;
use std::path::PathBuf;

/// Default address of the local API: loopback only (the API token guards mutations, not
/// reads, so the API is not exposed beyond this host by default).
pub const DEFAULT_API_ADDR: &str = "127.0.0.1:7878";
/// [`DEFAULT_API_ADDR`] as the URL clients use.
pub const DEFAULT_API_URL: &str = "http://127.0.0.1:7878";
/// Environment variable with the API URL clients use (`http://host:port`).
pub const ENV_API: &str = "ATR_API";
/// Environment variable with the address `atrd` binds its API to (`host:port`).
pub const ENV_API_ADDR: &str = "ATR_API_ADDR";
/// Environment variable with the API token (clients).
pub const ENV_TOKEN: &str = "ATR_TOKEN";
/// Environment variable with the node's data directory (`atrd` and clients).
pub const ENV_DATA_DIR: &str = "ATR_DATA_DIR";
/// Name of the API token file in the node's data directory (mode 0600).
pub const TOKEN_FILE: &str = "api.token";
/// Name of the bearer token file of `atr mcp --http` in the node's data directory (mode
/// 0600, 64 hex characters, created on first need): an MCP client that reaches the server
/// over a network sends it as `Authorization: Bearer <token>`. Separate from
/// [`TOKEN_FILE`], so a client allowed to call the served tools is not handed the node
/// (publish, revoke, provide).
pub const MCP_TOKEN_FILE: &str = "mcp.token";
/// Largest token file a client reads, bytes: a token is 64 characters; anything much larger
/// is not one.
pub const MAX_TOKEN_FILE_BYTES: u64 = 4096;
/// Directory (mode 0700) under the data dir holding the operator's secret values, one file per
/// name (mode 0600), written by `atr secret set NAME` and read by the node when a tool that
/// declares the name runs. Values never leave the machine.
pub const SECRETS_DIR: &str = "secrets";
/// Largest secret value, bytes (64 KiB): keys and tokens, not files.
pub const MAX_SECRET_BYTES: u64 = 64 * 1024;
/// Name of the data directory under `$XDG_DATA_HOME` (or `~/.local/share`).
pub const DATA_DIR_NAME: &str = "atr";
/// The data directory when neither `XDG_DATA_HOME` nor `HOME` is set (relative to the
/// working directory).
pub const FALLBACK_DATA_DIR: &str = "atr-data";

/// The default data directory given the values of `XDG_DATA_HOME` and `HOME` (an empty value
/// counts as unset): `$XDG_DATA_HOME/atr`, else `$HOME/.local/share/atr`, else `./atr-data`.
pub fn data_dir(xdg_data_home: Option<&OsStr>, home: Option<&OsStr>) -> PathBuf {
    if let Some(x) = xdg_data_home.filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join(DATA_DIR_NAME);
    }
    match home.filter(|v| !v.is_empty()) {
        Some(h) => PathBuf::from(h).join(".local/share").join(DATA_DIR_NAME),
        None => PathBuf::from(FALLBACK_DATA_DIR),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_dir_prefers_xdg_then_home() {
        let (x, h, empty) = (OsStr::new("/x"), OsStr::new("/h"), OsStr::new(""));
        assert_eq!(data_dir(Some(x), Some(h)), PathBuf::from("/x/atr"));
        assert_eq!(
            data_dir(Some(empty), Some(h)),
            PathBuf::from("/h/.local/share/atr")
        );
        assert_eq!(data_dir(None, Some(h)), PathBuf::from("/h/.local/share/atr"));
        assert_eq!(data_dir(None, Some(empty)), PathBuf::from("atr-data"));
        assert_eq!(data_dir(None, None), PathBuf::from("atr-data"));
    }

    #[test]
    fn the_default_url_is_the_default_address() {
        assert_eq!(DEFAULT_API_URL, format!("http://{DEFAULT_API_ADDR}"));
    }
}
