//! The tools written with the atr-tool SDK (`add`, `hash`, `text_stats`): their manifests in
//! `manifests/` are what the binaries print with `--manifest`, with the image
//! `atr-testnet tools-image` builds, so the schemas there are derived from the code.
//!
//! To regenerate one after changing its function:
//!
//! ```sh
//! cargo build -p atr-example-tools --bin add && target/debug/add --manifest \
//!   | sed 's/^image = .*/image = "atr-example-tools:latest"/'   # then keep the header comment
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use atr_protocol::Manifest;

const SDK_TOOLS: &[(&str, &str)] = &[
    ("add", env!("CARGO_BIN_EXE_add")),
    ("hash", env!("CARGO_BIN_EXE_hash")),
    ("text_stats", env!("CARGO_BIN_EXE_text_stats")),
];

#[test]
fn manifests_are_what_the_sdk_derives() {
    for (name, bin) in SDK_TOOLS {
        let out = Command::new(bin).arg("--manifest").output().unwrap();
        assert!(out.status.success(), "{name} --manifest: {out:?}");
        let mut derived = Manifest::from_toml(&String::from_utf8(out.stdout).unwrap(), name).unwrap();
        derived.runtime.image = "atr-example-tools:latest".into();
        let file = format!("{}/manifests/{name}.toml", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&file).unwrap();
        let checked_in = Manifest::from_toml(&text, &file).unwrap();
        assert_eq!(
            checked_in, derived,
            "{file} is not what `{name} --manifest` prints: regenerate it"
        );
    }
}
