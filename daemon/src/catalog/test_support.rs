//! Builders of signed test objects, shared by the store and catalog tests.
//!
//! Keys come from fixed seeds (`key(seed)`), so a seed is a publisher.

use std::sync::OnceLock;

use atr_protocol::id::{ContentHash, InvocationId};
use atr_protocol::receipt::{InvocationStatus, RECEIPT_FORMAT, Receipt};
use atr_protocol::revocation::{REVOCATION_FORMAT, Revocation, RevocationKind, RevocationTarget};
use atr_protocol::spec::Limits;
use atr_protocol::{Manifest, SecretKey, SignedReceipt, SignedRevocation, SignedSpec, ToolId, ToolSpec};

/// A pinned image id.
pub(crate) const DIGEST: &str = "sha256:3f1a2b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708";
/// Creation time of test specs.
pub(crate) const CREATED: u64 = 1_764_000_000_000;

/// A small valid manifest; `spec_with` edits what each test needs.
const MANIFEST: &str = r#"
name = "placeholder"
version = "0.1.0"
description = "A test tool."
side_effects = ["none"]
cost = "free"
input_schema = { type = "object", properties = { a = { type = "integer" } } }

[runtime]
image = "atr-test:latest"
"#;

/// The publisher key of `seed`.
pub(crate) fn key(seed: u8) -> SecretKey {
    SecretKey::from_seed(&[seed; 32])
}

/// The unsigned base spec of publisher `seed`.
pub(crate) fn base(seed: u8) -> ToolSpec {
    static MANIFEST_PARSED: OnceLock<Manifest> = OnceLock::new();
    MANIFEST_PARSED
        .get_or_init(|| Manifest::from_toml(MANIFEST, "test.toml").expect("test manifest parses"))
        .to_spec("test.toml", key(seed).public(), CREATED, Some(DIGEST))
        .expect("test manifest is valid")
}

/// The base spec of publisher `seed`, edited by `edit`, normalized and signed.
pub(crate) fn spec_with(seed: u8, edit: impl FnOnce(&mut ToolSpec)) -> SignedSpec {
    let mut s = base(seed);
    edit(&mut s);
    s.tags.sort();
    s.tags.dedup();
    s.side_effects.sort();
    s.side_effects.dedup();
    SignedSpec::sign(s, &key(seed)).expect("test spec signs")
}

/// A spec of publisher `seed` with this name, version and tags.
pub(crate) fn spec(seed: u8, name: &str, version: &str, tags: &[&str]) -> SignedSpec {
    spec_with(seed, |s| {
        s.name = name.into();
        s.version = version.parse().expect("test version parses");
        s.tags = tags.iter().map(|t| (*t).to_owned()).collect();
    })
}

/// A revocation (or deprecation) signed by publisher `seed`.
pub(crate) fn revocation(
    seed: u8,
    kind: RevocationKind,
    target: RevocationTarget,
    created_at_ms: u64,
    successor: Option<ToolId>,
) -> SignedRevocation {
    let r = Revocation {
        v: REVOCATION_FORMAT,
        kind,
        target,
        publisher: key(seed).public(),
        reason: "test".into(),
        successor,
        created_at_ms,
    };
    SignedRevocation::sign(r, &key(seed)).expect("test revocation signs")
}

/// A revocation of one id by publisher `seed`.
pub(crate) fn revoke_id(seed: u8, id: ToolId) -> SignedRevocation {
    revocation(
        seed,
        RevocationKind::Revoke,
        RevocationTarget::Id(id),
        CREATED + 1,
        None,
    )
}

/// A receipt of invocation `[n; 16]` of `tool`, signed by provider `seed`.
pub(crate) fn receipt(seed: u8, n: u8, tool: ToolId) -> SignedReceipt {
    let r = Receipt {
        v: RECEIPT_FORMAT,
        invocation: InvocationId([n; 16]),
        tool,
        image_digest: DIGEST.into(),
        input_hash: ContentHash::of(b"{}"),
        output_hash: ContentHash::of(b"{\"ok\":true}"),
        output_bytes: 11,
        status: InvocationStatus::Ok,
        exit_code: Some(0),
        started_at_ms: CREATED,
        finished_at_ms: CREATED + 5,
        limits: Limits::default(),
        provider: key(seed).public(),
        policy_hash: None,
        usage: None,
    };
    SignedReceipt::sign(r, &key(seed)).expect("test receipt signs")
}
