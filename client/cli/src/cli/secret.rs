//! `atr secret`: the operator's secret values, stored where the local node reads them.
//!
//! Layout: `<data dir>/secrets/<NAME>` (`atr_protocol::local::SECRETS_DIR`), the directory
//! 0700 and each file 0600, written through a temporary file and a rename so that a reader
//! never sees half a value. The value comes from stdin (never argv) and is never printed.
//! The node reads values per invocation, so no restart is needed.

use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

use anyhow::{Context, bail};
use atr_protocol::local::{ENV_DATA_DIR, MAX_SECRET_BYTES, SECRETS_DIR};

use super::args::SecretCommand;

fn dir() -> PathBuf {
    std::env::var_os(ENV_DATA_DIR)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(atr_client::endpoint::default_data_dir)
        .join(SECRETS_DIR)
}

fn check(name: &str) -> anyhow::Result<()> {
    atr_protocol::policy::check_secret_name(name).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Runs one `atr secret` command.
pub(super) fn run(cmd: SecretCommand) -> anyhow::Result<()> {
    let dir = dir();
    match cmd {
        SecretCommand::Set { name } => {
            check(&name)?;
            let mut value = Vec::new();
            std::io::stdin()
                .take(MAX_SECRET_BYTES + 1)
                .read_to_end(&mut value)
                .context("reading the value from stdin")?;
            if value.len() as u64 > MAX_SECRET_BYTES {
                bail!("the value is over the {MAX_SECRET_BYTES}-byte limit");
            }
            while value.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                value.pop();
            }
            if value.is_empty() || std::str::from_utf8(&value).is_err() || value.contains(&0) {
                bail!("the value must be non-empty UTF-8 text without NUL bytes");
            }
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
            let tmp = dir.join(format!(".{name}.tmp"));
            let _ = std::fs::remove_file(&tmp);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .with_context(|| format!("creating {}", tmp.display()))?;
            f.write_all(&value)?;
            f.sync_all()?;
            std::fs::rename(&tmp, dir.join(&name))?;
            eprintln!("atr: stored secret {name} in {} (mode 0600)", dir.display());
        }
        SecretCommand::Remove { name } => {
            check(&name)?;
            match std::fs::remove_file(dir.join(&name)) {
                Ok(()) => eprintln!("atr: removed secret {name}"),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!("no secret named {name}"),
                Err(e) => return Err(e).context("removing the secret"),
            }
        }
        SecretCommand::List => {
            let mut names: Vec<String> = match std::fs::read_dir(&dir) {
                Ok(rd) => rd
                    .filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .filter(|n| check(n).is_ok())
                    .collect(),
                Err(_) => Vec::new(),
            };
            names.sort();
            for n in names {
                println!("{n}");
            }
        }
    }
    Ok(())
}
