//! The spec the verification benchmark and the instruction-count example
//! measure: the calculator manifest, signed with a fixed key.

use atr_protocol::{Manifest, SecretKey, SignedSpec};

const MANIFEST: &str = include_str!("../../tests/data/calculator.toml");

/// The signing key and the signed calculator spec.
pub(crate) fn signed_calculator() -> (SecretKey, SignedSpec) {
    let key = SecretKey::from_seed(&[42; 32]);
    let spec = Manifest::from_toml(MANIFEST, "calculator.toml")
        .and_then(|m| {
            m.to_spec(
                "calculator.toml",
                key.public(),
                1_764_000_000_000,
                Some(&format!("sha256:{}", "ab".repeat(32))),
            )
        })
        .expect("bench manifest is valid");
    let signed = SignedSpec::sign(spec, &key).expect("signs");
    (key, signed)
}
