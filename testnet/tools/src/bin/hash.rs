//! `hash`: the hex digest of a UTF-8 string with SHA-256 (default), SHA-512 or
//! BLAKE3. Input `{"text": "...", "algorithm"?: "sha256" | "sha512" | "blake3"}`,
//! output `{"algorithm": ..., "hex": ...}`. Linear in the text, which the input
//! cap bounds.

use std::process::ExitCode;

use atr_example_tools::{ToolError, parse, run};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Digest;

fn main() -> ExitCode {
    run(hash)
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Algorithm {
    #[default]
    Sha256,
    Sha512,
    Blake3,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    text: String,
    #[serde(default)]
    algorithm: Algorithm,
}

fn hash(input: Value) -> Result<Value, ToolError> {
    let input: Input = parse(input)?;
    let bytes = input.text.as_bytes();
    let (name, hex) = match input.algorithm {
        Algorithm::Sha256 => ("sha256", hex::encode(sha2::Sha256::digest(bytes))),
        Algorithm::Sha512 => ("sha512", hex::encode(sha2::Sha512::digest(bytes))),
        Algorithm::Blake3 => ("blake3", blake3::hash(bytes).to_hex().to_string()),
    };
    Ok(json!({ "algorithm": name, "hex": hex }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex_of(text: &str, algorithm: &str) -> Value {
        hash(json!({"text": text, "algorithm": algorithm})).unwrap()["hex"].clone()
    }

    #[test]
    fn known_vectors() {
        // FIPS 180-2 "abc" vectors and the BLAKE3 empty-input vector.
        assert_eq!(
            hash(json!({"text": "abc"})).unwrap(),
            json!({"algorithm": "sha256", "hex": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"})
        );
        assert_eq!(
            hex_of("abc", "sha512"),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        );
        assert_eq!(
            hex_of("", "blake3"),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
        assert_eq!(hex_of("é", "sha256"), hex_of("\u{e9}", "sha256"));
    }

    #[test]
    fn refuses_unknown_algorithms() {
        for bad in [
            json!({"text": "a", "algorithm": "md5"}),
            json!({"text": 1}),
            json!({"txt": "a"}),
        ] {
            assert_eq!(hash(bad).unwrap_err().code(), "invalid_input");
        }
    }
}
