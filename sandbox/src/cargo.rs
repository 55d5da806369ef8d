//! Running cargo from inside a cargo-launched program without undoing its builds.
//!
//! `cargo run` and `cargo test` set `CARGO_MANIFEST_DIR`, `CARGO_PKG_*`,
//! `CARGO_PRIMARY_PACKAGE` and friends for the program they start. A nested
//! `cargo build` that inherits them hands them to build scripts, and `ring`'s
//! build script tracks some of them: the nested build then sees a "changed"
//! environment and rebuilds `ring`, libp2p and everything above it, and the
//! outer build does the same the next time. [`command`] starts cargo with those
//! variables removed, keeping the ones that say *which* cargo and *where*:
//! [`KEPT`].

use std::ffi::OsString;
use std::process::Command;

/// Inherited `CARGO*` variables a nested cargo keeps: which cargo, its home,
/// where artefacts go, and the user's own cargo configuration (`CARGO_BUILD_*`,
/// `CARGO_PROFILE_*`, `CARGO_REGISTRIES_*`, `CARGO_NET_*`, `CARGO_TERM_*`, …,
/// which cargo reads but never sets for the programs it runs).
pub const KEPT: &[&str] = &["CARGO", "CARGO_HOME", "CARGO_TARGET_DIR"];

/// Prefixes of user configuration variables kept (cargo reads them; it does not set them).
const KEPT_PREFIXES: &[&str] = &[
    "CARGO_BUILD_",
    "CARGO_PROFILE_",
    "CARGO_REGISTRIES_",
    "CARGO_REGISTRY_",
    "CARGO_NET_",
    "CARGO_HTTP_",
    "CARGO_TERM_",
    "CARGO_INCREMENTAL",
    "CARGO_CACHE_",
];

/// The cargo to run: `$CARGO` (the one running us, if any), else `cargo` on `PATH`.
pub fn program() -> OsString {
    std::env::var_os("CARGO")
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "cargo".into())
}

/// Whether the nested cargo must not inherit the variable `name`.
pub fn is_stripped(name: &str) -> bool {
    name.starts_with("CARGO")
        && !KEPT.contains(&name)
        && !KEPT_PREFIXES.iter().any(|p| name.starts_with(p))
        // `RUSTFLAGS`-style variables are the caller's business; `__CARGO_*` are cargo's own
        // internals, set for rustc and build scripts only.
        || name.starts_with("__CARGO")
}

/// A `cargo` command (see [`program`]) with the inherited per-package `CARGO_*` variables
/// removed, so it neither rebuilds nor invalidates what the outer cargo built.
pub fn command() -> Command {
    let mut cmd = Command::new(program());
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(is_stripped) {
            cmd.env_remove(name);
        }
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_package_variables_go_the_rest_stay() {
        for gone in [
            "CARGO_MANIFEST_DIR",
            "CARGO_PKG_NAME",
            "CARGO_PKG_VERSION",
            "CARGO_PRIMARY_PACKAGE",
            "CARGO_CRATE_NAME",
            "CARGO_BIN_EXE_atr",
            "CARGO_MANIFEST_PATH",
            "CARGO_ENCODED_RUSTFLAGS",
            "__CARGO_FIX_PLZ",
        ] {
            assert!(is_stripped(gone), "{gone}");
        }
        for kept in [
            "CARGO",
            "CARGO_HOME",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_JOBS",
            "CARGO_PROFILE_RELEASE_DEBUG",
            "CARGO_TERM_COLOR",
            "RUSTFLAGS",
            "PATH",
        ] {
            assert!(!is_stripped(kept), "{kept}");
        }
    }
}
