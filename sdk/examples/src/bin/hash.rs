//! `hash`: the hex digest of a UTF-8 string with SHA-256 (default), SHA-512 or
//! BLAKE3. Input `{"text": "...", "algorithm"?: "sha256" | "sha512" | "blake3"}`,
//! output `{"algorithm": ..., "hex": ...}`. Linear in the text, which the input
//! cap bounds.
//!
//! Written with the atr-tool SDK: the schemas and `manifests/hash.toml` (`hash --manifest`)
//! are derived from the types below (`tests/sdk_manifests.rs` checks it).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::Digest;

/// A digest algorithm.
#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum Algorithm {
    #[default]
    Sha256,
    Sha512,
    Blake3,
}

/// A digest.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
struct Hashed {
    /// The algorithm used.
    algorithm: Algorithm,
    /// The digest in lowercase hex (64 digits, 128 for sha512).
    #[schemars(regex(pattern = r"^[0-9a-f]{64}([0-9a-f]{64})?$"))]
    hex: String,
}

/// The hex digest of a UTF-8 string with SHA-256 (default), SHA-512 or BLAKE3.
///
/// # Arguments
///
/// * `text` - The text to hash (its UTF-8 bytes).
/// * `algorithm` - The digest algorithm.
#[atr_tool::tool(
    version = "1.0.0",
    tags = ["crypto", "hash", "demo"],
    cost = "free",
    homepage = "https://github.com/atr-net/atr",
    timeout_ms = 5000,
    memory_mb = 32,
    cpus = 0.5,
    pids = 4,
    max_output_bytes = 4096,
    default(algorithm),
    example(
        input = {"text": "abc"},
        output = {"algorithm": "sha256", "hex": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}
    ),
    example(
        input = {"text": "", "algorithm": "blake3"},
        output = {"algorithm": "blake3", "hex": "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"}
    ),
)]
fn hash(text: String, algorithm: Algorithm) -> Hashed {
    let bytes = text.as_bytes();
    let hex = match algorithm {
        Algorithm::Sha256 => hex::encode(sha2::Sha256::digest(bytes)),
        Algorithm::Sha512 => hex::encode(sha2::Sha512::digest(bytes)),
        Algorithm::Blake3 => blake3::hash(bytes).to_hex().to_string(),
    };
    Hashed { algorithm, hex }
}

atr_tool::main!(hash);

#[cfg(test)]
mod tests {
    use super::*;
    use atr_tool::{Tool, ToolError};
    use serde_json::{Value, json};

    fn hash(input: Value) -> Result<Value, ToolError> {
        HashTool.call(input)
    }

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

    #[test]
    fn is_a_valid_tool() {
        atr_tool::testing::assert_valid(&HashTool);
    }
}
