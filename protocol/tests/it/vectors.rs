//! Test vectors: fixed seeds → canonical bytes, ids and signatures.
//!
//! `tests/vectors.json` is checked in and repeated in `docs/protocol.md`; this
//! test regenerates every vector and asserts the file matches, so the format
//! cannot drift silently. Regenerate on purpose with
//! `ATR_WRITE_VECTORS=1 cargo test -p atr-protocol --test it vectors`.

use atr_protocol::cbor;
use atr_protocol::id::{ContentHash, InvocationId};
use atr_protocol::policy::{EgressRule, Permissions, Policy};
use atr_protocol::receipt::{InvocationStatus, Receipt, Usage};
use atr_protocol::revocation::{Revocation, RevocationKind, RevocationTarget};
use atr_protocol::signed::{SignedBody, VerifyError, signing_message};
use atr_protocol::spec::{Cost, Limits, Runtime, RuntimeKind, SideEffect, ToolSpec};
use atr_protocol::{SecretKey, SignedSpec, ToolId};
use serde_json::{Value as Json, json};

use crate::fixtures;

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors.json");

fn minimal_spec(key: &SecretKey) -> ToolSpec {
    ToolSpec {
        v: 1,
        name: "echo".into(),
        version: "1.0.0".parse().unwrap(),
        description: "Return the input unchanged.".into(),
        tags: vec!["demo".into()],
        input_schema: json!({"type": "object"}),
        output_schema: None,
        runtime: Runtime {
            kind: RuntimeKind::Docker,
            image: "atr-example-tools:latest".into(),
            image_digest: format!("sha256:{}", "ab".repeat(32)),
            command: vec!["/bin/echo".into()],
            workdir: None,
        },
        limits: Limits::default(),
        side_effects: vec![SideEffect::None],
        permissions: Default::default(),
        cost: Cost::Free,
        homepage: None,
        license: None,
        examples: vec![],
        publisher: key.public(),
        created_at_ms: 1_764_000_000_000,
    }
}

fn valid<T: SignedBody>(description: &str, kind: &str, seed: [u8; 32], value: T) -> Json {
    let key = SecretKey::from_seed(&seed);
    let s = atr_protocol::Signed::sign(value, &key).unwrap();
    json!({
        "description": description,
        "kind": kind,
        "seed_hex": hex::encode(seed),
        "public_key_hex": hex::encode(key.public().as_bytes()),
        "peer_id": key.public().to_string(),
        "spec_cbor_hex": hex::encode(s.body()),
        "id_hex": hex::encode(s.hash()),
        "id_text": s.id().to_string(),
        "signing_prefix": String::from_utf8_lossy(T::SIGNING_PREFIX),
        "signature_hex": s.signature().to_string(),
        "envelope_hex": hex::encode(s.to_bytes()),
    })
}

fn invalid(
    description: &str,
    seed: [u8; 32],
    body: Vec<u8>,
    sig: [u8; 64],
    id: Option<ToolId>,
    error: &str,
) -> Json {
    let key = SecretKey::from_seed(&seed);
    let mut v = json!({
        "description": description,
        "kind": "spec",
        "invalid": true,
        "expected_error": error,
        "seed_hex": hex::encode(seed),
        "public_key_hex": hex::encode(key.public().as_bytes()),
        "spec_cbor_hex": hex::encode(&body),
        "signing_prefix": "atr-spec-v1",
        "signature_hex": hex::encode(sig),
    });
    if let Some(id) = id {
        v["id_hex"] = json!(hex::encode(id.0));
        v["id_text"] = json!(id.to_string());
    }
    v
}

fn sign_raw(seed: [u8; 32], body: &[u8]) -> [u8; 64] {
    SecretKey::from_seed(&seed)
        .sign(&signing_message(b"atr-spec-v1", body))
        .0
}

fn generate() -> Json {
    let seed1 = [0x01; 32];
    let seed2: [u8; 32] = core::array::from_fn(|i| i as u8);
    let k1 = SecretKey::from_seed(&seed1);
    let minimal = minimal_spec(&k1);
    let min_body = cbor::to_canonical(&minimal).unwrap();
    let calc = fixtures::manifest()
        .to_spec(
            "calculator.toml",
            SecretKey::from_seed(&seed2).public(),
            fixtures::CREATED,
            Some(fixtures::DIGEST),
        )
        .unwrap();
    let calc_id = SignedSpec::sign(calc.clone(), &SecretKey::from_seed(&seed2))
        .unwrap()
        .id();

    // Non-canonical: `created_at_ms` re-encoded as a 9-byte integer where 9 bytes are
    // right but `v` (1) written in the two-byte form 0x1801.
    let mut noncanon = min_body.clone();
    let pos = noncanon.windows(3).position(|w| w == [0x61, b'v', 0x01]).unwrap();
    noncanon.splice(pos + 2..pos + 3, [0x18, 0x01]);
    let mut v2 = minimal.clone();
    v2.v = 2;
    let v2_body = cbor::to_canonical(&v2).unwrap();

    let mut permitted = minimal.clone();
    permitted.name = "http_fetch".into();
    permitted.side_effects = vec![SideEffect::Reads, SideEffect::Network];
    permitted.permissions = Permissions {
        egress: vec![
            EgressRule::parse("*.example.org:443").unwrap(),
            EgressRule::parse("api.example.com:443").unwrap(),
        ],
        secrets: vec!["API_TOKEN".into()],
        scratch_bytes: Some(32 << 20),
        output_dir: Some("/out".into()),
    };

    json!([
        valid("minimal spec, seed 0x01 x32", "spec", seed1, minimal.clone()),
        valid(
            "realistic calculator spec (the benchmark's 2 KiB spec), seed 00..1f",
            "spec",
            seed2,
            calc
        ),
        valid(
            "revocation of the calculator spec by its publisher",
            "revocation",
            seed2,
            Revocation {
                v: 1,
                kind: RevocationKind::Revoke,
                target: RevocationTarget::Id(calc_id),
                publisher: SecretKey::from_seed(&seed2).public(),
                reason: "superseded".into(),
                successor: None,
                created_at_ms: 1_764_000_000_001,
            }
        ),
        valid(
            "receipt of one invocation of the minimal spec",
            "receipt",
            seed1,
            Receipt {
                v: 1,
                invocation: InvocationId([0x11; 16]),
                tool: ToolId::of(&min_body),
                image_digest: minimal.runtime.image_digest.clone(),
                input_hash: ContentHash::of(b"{\"x\":1}"),
                output_hash: ContentHash::of(b"{\"x\":1}"),
                output_bytes: 7,
                status: InvocationStatus::Ok,
                exit_code: Some(0),
                started_at_ms: 1_764_000_000_100,
                finished_at_ms: 1_764_000_000_142,
                limits: Limits::default(),
                provider: k1.public(),
                policy_hash: Some(Policy::of(&minimal).hash()),
                usage: Some(Usage {
                    wall_ms: 40,
                    cpu_ms: Some(3),
                    peak_memory_bytes: Some(1_500_000),
                    egress_out_bytes: 0,
                    egress_in_bytes: 0,
                }),
            }
        ),
        invalid(
            "minimal spec signed by another key (seed 0x02 x32)",
            seed1,
            min_body.clone(),
            sign_raw([0x02; 32], &min_body),
            None,
            "BadSignature"
        ),
        invalid(
            "minimal spec with `v` written as 0x1801 (non-shortest integer)",
            seed1,
            noncanon.clone(),
            sign_raw(seed1, &noncanon),
            None,
            "NonCanonical"
        ),
        invalid(
            "minimal spec with format version 2",
            seed1,
            v2_body.clone(),
            sign_raw(seed1, &v2_body),
            None,
            "UnknownVersion"
        ),
        invalid(
            "minimal spec fetched under the wrong id",
            seed1,
            min_body.clone(),
            sign_raw(seed1, &min_body),
            Some(ToolId([0; 32])),
            "IdMismatch"
        ),
        invalid(
            "minimal spec truncated by one byte",
            seed1,
            min_body[..min_body.len() - 1].to_vec(),
            sign_raw(seed1, &min_body[..min_body.len() - 1]),
            None,
            "Truncated"
        ),
        valid(
            "spec with permissions (egress, a secret, scratch size, output dir), seed 0x01 x32",
            "spec",
            seed1,
            permitted
        ),
    ])
}

fn error_name(e: &VerifyError) -> &'static str {
    match e {
        VerifyError::BadSignature { .. } => "BadSignature",
        VerifyError::NonCanonical { .. } => "NonCanonical",
        VerifyError::Decode {
            source: cbor::DecodeError::NonCanonical { .. },
            ..
        } => "NonCanonical",
        VerifyError::Decode {
            source: cbor::DecodeError::Truncated { .. },
            ..
        } => "Truncated",
        VerifyError::UnknownVersion { .. } => "UnknownVersion",
        VerifyError::IdMismatch { .. } => "IdMismatch",
        _ => "Other",
    }
}

#[test]
fn vectors_match_the_checked_in_file() {
    let generated = generate();
    if std::env::var_os("ATR_WRITE_VECTORS").is_some() {
        std::fs::write(PATH, serde_json::to_string_pretty(&generated).unwrap() + "\n").unwrap();
    }
    let on_disk: Json = serde_json::from_str(&std::fs::read_to_string(PATH).unwrap()).unwrap();
    assert_eq!(
        on_disk, generated,
        "tests/vectors.json drifted from the implementation"
    );
}

/// Checks every vector the way an independent implementation would: blake3 of
/// the bytes, ed25519 over prefix || bytes, and our own verifier's verdict.
#[test]
fn vectors_verify_independently() {
    let on_disk: Json = serde_json::from_str(&std::fs::read_to_string(PATH).unwrap()).unwrap();
    for v in on_disk.as_array().unwrap() {
        let body = hex::decode(v["spec_cbor_hex"].as_str().unwrap()).unwrap();
        let sig: [u8; 64] = hex::decode(v["signature_hex"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let pk: [u8; 32] = hex::decode(v["public_key_hex"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let vk = ed25519_dalek::VerifyingKey::from_bytes(&pk).unwrap();
        let msg = [v["signing_prefix"].as_str().unwrap().as_bytes(), &body].concat();
        let sig_ok = vk
            .verify_strict(&msg, &ed25519_dalek::Signature::from_bytes(&sig))
            .is_ok();
        if v.get("invalid").is_some() {
            let want = v["expected_error"].as_str().unwrap();
            let got = SignedSpec::from_parts(body, atr_protocol::Signature(sig)).and_then(|s| {
                match v.get("id_hex").and_then(Json::as_str) {
                    Some(id) => s
                        .expect_id(&ToolId(hex::decode(id).unwrap().try_into().unwrap()))
                        .map(|_| s),
                    None => Ok(s),
                }
            });
            let e = got.expect_err(want);
            assert_eq!(error_name(&e), want, "{}: {e}", v["description"]);
        } else {
            assert!(sig_ok, "{}", v["description"]);
            assert_eq!(
                hex::encode(blake3::hash(&body).as_bytes()),
                v["id_hex"].as_str().unwrap()
            );
            assert_eq!(
                cbor::encode(&cbor::decode(&body, 1 << 17).unwrap()).unwrap(),
                body
            );
        }
    }
}
