//! Shared fixtures: a realistic manifest and specs from fixed seeds.

use atr_protocol::{Manifest, SecretKey, SignedSpec, ToolSpec};

pub(crate) const DIGEST: &str = "sha256:3f1a2b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708";
pub(crate) const CREATED: u64 = 1_764_000_000_000;

/// A realistic manifest: about 2 KiB of canonical spec.
pub(crate) const CALCULATOR_TOML: &str = include_str!("../data/calculator.toml");

pub(crate) fn key(seed: u8) -> SecretKey {
    SecretKey::from_seed(&[seed; 32])
}

pub(crate) fn manifest() -> Manifest {
    Manifest::from_toml(CALCULATOR_TOML, "calculator.toml").expect("fixture manifest parses")
}

pub(crate) fn spec(seed: u8) -> ToolSpec {
    manifest()
        .to_spec("calculator.toml", key(seed).public(), CREATED, Some(DIGEST))
        .expect("fixture manifest is valid")
}

pub(crate) fn signed(seed: u8) -> SignedSpec {
    SignedSpec::sign(spec(seed), &key(seed)).expect("fixture signs")
}
