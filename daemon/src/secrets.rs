//! The operator's secret values, read when a tool that names them runs.
//!
//! Layout ([`atr_protocol::local::SECRETS_DIR`]): `<data dir>/secrets/<NAME>`, one file per
//! name, written by `atr secret set NAME` with mode 0600 in a 0700 directory. The node reads
//! them per invocation (a new secret needs no restart), refuses files that are not regular
//! files owned by its user with no group or other permission bits, and never logs a value:
//! [`Secrets`] prints names only.

use std::io::Read;
use std::path::{Path, PathBuf};

use atr_protocol::local::{MAX_SECRET_BYTES, SECRETS_DIR};
use atr_sandbox::profile::Env;

/// The secrets directory of `data_dir`.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join(SECRETS_DIR)
}

/// Why the named secrets could not all be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretsError {
    /// Some names have no value here.
    #[error("this provider does not hold secret(s) {}", .0.join(", "))]
    Missing(Vec<String>),
    /// A value's file is unsafe (group/other readable, not a regular file, too large).
    #[error("secret `{name}` is unusable: {reason} (run `atr secret set {name}` again)")]
    Unsafe {
        /// The name.
        name: String,
        /// Why.
        reason: &'static str,
    },
}

/// Reads every name in `names` from `dir`; the values, as an environment for the run.
pub fn load(dir: &Path, names: &[String]) -> Result<Env, SecretsError> {
    let mut out = Vec::with_capacity(names.len());
    let mut missing = Vec::new();
    for name in names {
        // Names were validated with the spec (`^[A-Z][A-Z0-9_]*$`): no path can be formed.
        if atr_protocol::policy::check_secret_name(name).is_err() {
            missing.push(name.clone());
            continue;
        }
        let path = dir.join(name);
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(_) => {
                missing.push(name.clone());
                continue;
            }
        };
        let unsafe_ = |reason| SecretsError::Unsafe {
            name: name.clone(),
            reason,
        };
        if !meta.file_type().is_file() {
            return Err(unsafe_("not a regular file"));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if meta.permissions().mode() & 0o077 != 0 {
                return Err(unsafe_("its file is readable by group or others (must be 0600)"));
            }
        }
        if meta.len() > MAX_SECRET_BYTES {
            return Err(unsafe_("over the 64 KiB limit"));
        }
        let mut value = String::new();
        std::fs::File::open(&path)
            .and_then(|f| f.take(MAX_SECRET_BYTES).read_to_string(&mut value))
            .map_err(|_| unsafe_("unreadable or not UTF-8"))?;
        let value = value.trim_end_matches(['\n', '\r']).to_owned();
        if value.contains('\0') {
            return Err(unsafe_("holds a NUL byte"));
        }
        out.push((name.clone(), value));
    }
    if !missing.is_empty() {
        return Err(SecretsError::Missing(missing));
    }
    Ok(Env(out))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn loads_held_secrets_and_names_the_missing_ones() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("API_TOKEN");
        std::fs::write(&p, "s3cret-value\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let env = load(d.path(), &["API_TOKEN".into()]).unwrap();
        assert_eq!(env.0, vec![("API_TOKEN".to_owned(), "s3cret-value".to_owned())]);
        assert!(!format!("{env:?}").contains("s3cret"));
        let e = load(d.path(), &["API_TOKEN".into(), "OTHER".into()]).unwrap_err();
        assert!(matches!(&e, SecretsError::Missing(m) if m == &["OTHER"]), "{e}");
        assert!(!e.to_string().contains("s3cret"));
    }

    #[test]
    fn refuses_unsafe_files() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("OPEN");
        std::fs::write(&p, "v").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            load(d.path(), &["OPEN".into()]),
            Err(SecretsError::Unsafe { .. })
        ));
        let big = d.path().join("BIG");
        std::fs::write(&big, vec![b'a'; MAX_SECRET_BYTES as usize + 1]).unwrap();
        std::fs::set_permissions(&big, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            load(d.path(), &["BIG".into()]),
            Err(SecretsError::Unsafe { .. })
        ));
        std::os::unix::fs::symlink(&p, d.path().join("LINK")).unwrap();
        assert!(matches!(
            load(d.path(), &["LINK".into()]),
            Err(SecretsError::Unsafe { .. })
        ));
    }
}
