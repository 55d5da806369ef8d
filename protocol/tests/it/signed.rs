//! Signing and verification of specs, revocations and receipts, with hostile inputs.

use atr_protocol::cbor::{self, DecodeError};
use atr_protocol::id::{ContentHash, InvocationId};
use atr_protocol::receipt::{InvocationStatus, Receipt, ReceiptMismatch, SignedReceipt};
use atr_protocol::revocation::{Revocation, RevocationKind, RevocationTarget, SignedRevocation};
use atr_protocol::signed::{SignError, VerifyError};
use atr_protocol::spec::Limits;
use atr_protocol::{SignedSpec, ToolId};
use ciborium::value::Value;

use crate::fixtures::{self, CREATED, DIGEST};

#[test]
fn signed_spec_round_trips_and_has_content_id() {
    let s = fixtures::signed(1);
    let bytes = s.to_bytes();
    let back = SignedSpec::from_bytes(&bytes).unwrap();
    assert_eq!(back, s);
    assert_eq!(back.id(), ToolId::of(s.body()));
    assert_eq!(back.to_bytes(), bytes);
    back.expect_id(&s.id()).unwrap();
    assert!(matches!(
        back.expect_id(&ToolId([0; 32])),
        Err(VerifyError::IdMismatch { .. })
    ));
}

#[test]
fn body_is_about_two_kib() {
    let n = fixtures::signed(1).body().len();
    assert!((1500..=2600).contains(&n), "realistic spec body is {n} bytes");
}

#[test]
fn signing_with_another_key_is_refused_and_does_not_verify_as_other_publisher() {
    let spec = fixtures::spec(1);
    assert!(matches!(
        SignedSpec::sign(spec.clone(), &fixtures::key(2)),
        Err(SignError::WrongKey { .. })
    ));
    // Forge: claim publisher B but sign with A.
    let mut forged = spec;
    forged.publisher = fixtures::key(2).public();
    let body = cbor::to_canonical(&forged).unwrap();
    let sig = fixtures::key(1).sign(&atr_protocol::signed::signing_message(b"atr-spec-v1", &body));
    let err = SignedSpec::from_parts(body, sig).unwrap_err();
    assert!(matches!(err, VerifyError::BadSignature { .. }), "{err:?}");
}

#[test]
fn every_single_byte_change_is_rejected() {
    let bytes = fixtures::signed(3).to_bytes();
    for i in 0..bytes.len() {
        for flip in [0x01u8, 0x80] {
            let mut b = bytes.clone();
            b[i] ^= flip;
            assert!(
                SignedSpec::from_bytes(&b).is_err(),
                "flip {flip:#x} at byte {i} accepted"
            );
        }
    }
}

#[test]
fn hostile_envelopes_get_distinct_errors() {
    let good = fixtures::signed(1);
    let bytes = good.to_bytes();

    let huge = vec![0u8; 70 * 1024];
    assert!(matches!(
        SignedSpec::from_bytes(&huge),
        Err(VerifyError::EnvelopeTooLarge { .. })
    ));

    assert!(matches!(
        SignedSpec::from_bytes(&bytes[..bytes.len() - 10]),
        Err(VerifyError::Envelope(_))
    ));

    let body_big = Value::Array(vec![
        Value::Bytes(vec![0; 64 * 1024 + 1]),
        Value::Bytes(vec![0; 64]),
    ]);
    let e = SignedSpec::from_bytes(&cbor::encode(&body_big).unwrap()).unwrap_err();
    assert!(matches!(e, VerifyError::BodyTooLarge { .. }), "{e:?}");

    let truncated_body = good.body()[..good.body().len() - 1].to_vec();
    let e = SignedSpec::from_parts(truncated_body, *good.signature()).unwrap_err();
    assert!(
        matches!(
            e,
            VerifyError::Decode {
                source: DecodeError::Truncated { .. },
                ..
            }
        ),
        "{e:?}"
    );

    let mut deep = Value::Integer(0.into());
    for _ in 0..40 {
        deep = Value::Array(vec![deep]);
    }
    let deep_bytes = [vec![0x81u8; 40], vec![0]].concat();
    assert!(cbor::encode(&deep).is_err());
    let e = SignedSpec::from_parts(deep_bytes, *good.signature()).unwrap_err();
    assert!(
        matches!(
            e,
            VerifyError::Decode {
                source: DecodeError::TooDeep { .. },
                ..
            }
        ),
        "{e:?}"
    );

    // Non-canonical: same map with an integer written in a long form.
    let mut v = cbor::decode(good.body(), 1 << 20).unwrap();
    let Value::Map(entries) = &mut v else { panic!() };
    entries.retain(|(k, _)| k != &Value::Text("created_at_ms".into()));
    let mut body = cbor::encode(&v).unwrap();
    // Re-add created_at_ms as the last key would be unsorted: non-canonical order.
    body[0] += 1;
    body.extend_from_slice(&cbor::encode(&Value::Text("created_at_ms".into())).unwrap());
    body.extend_from_slice(&cbor::encode(&Value::Integer(CREATED.into())).unwrap());
    let e = SignedSpec::from_parts(body, *good.signature()).unwrap_err();
    assert!(
        matches!(
            e,
            VerifyError::Decode {
                source: DecodeError::NonCanonical { .. },
                ..
            }
        ),
        "{e:?}"
    );

    // Non-canonical at the serde level: an explicit empty `examples` list, which
    // the encoder omits.
    let mut spec = fixtures::spec(1);
    spec.examples.clear();
    let mut v = cbor::decode(&cbor::to_canonical(&spec).unwrap(), 1 << 20).unwrap();
    let Value::Map(entries) = &mut v else { panic!() };
    entries.push((Value::Text("examples".into()), Value::Array(vec![])));
    let body = cbor::encode(&v).unwrap();
    let sig = fixtures::key(1).sign(&atr_protocol::signed::signing_message(b"atr-spec-v1", &body));
    assert!(matches!(
        SignedSpec::from_parts(body, sig),
        Err(VerifyError::NonCanonical { .. })
    ));

    // Unknown field is a shape error.
    let mut v = cbor::decode(good.body(), 1 << 20).unwrap();
    let Value::Map(entries) = &mut v else { panic!() };
    entries.push((Value::Text("zzz".into()), Value::Integer(1.into())));
    let e = SignedSpec::from_parts(cbor::encode(&v).unwrap(), *good.signature()).unwrap_err();
    assert!(
        matches!(
            e,
            VerifyError::Decode {
                source: DecodeError::Shape(_),
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn unknown_version_is_refused_before_shape() {
    let good = fixtures::signed(1);
    let mut v = cbor::decode(good.body(), 1 << 20).unwrap();
    let Value::Map(entries) = &mut v else { panic!() };
    for (k, val) in entries.iter_mut() {
        if k == &Value::Text("v".into()) {
            *val = Value::Integer(2.into());
        }
    }
    let e = SignedSpec::from_parts(cbor::encode(&v).unwrap(), *good.signature()).unwrap_err();
    assert!(
        matches!(
            e,
            VerifyError::UnknownVersion {
                found: 2,
                supported: 1,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn invalid_spec_with_valid_signature_is_refused() {
    let mut spec = fixtures::spec(1);
    spec.name = "bad name".into();
    let body = cbor::to_canonical(&spec).unwrap();
    let sig = fixtures::key(1).sign(&atr_protocol::signed::signing_message(b"atr-spec-v1", &body));
    assert!(matches!(
        SignedSpec::from_parts(body, sig),
        Err(VerifyError::Invalid { .. })
    ));
}

#[test]
fn signatures_are_domain_separated() {
    let good = fixtures::signed(1);
    // A signature over the bare body (no prefix) must not verify.
    let sig = fixtures::key(1).sign(good.body());
    assert!(matches!(
        SignedSpec::from_parts(good.body().to_vec(), sig),
        Err(VerifyError::BadSignature { .. })
    ));
    // A spec signature does not make a valid revocation of the same bytes.
    assert!(SignedRevocation::from_bytes(&good.to_bytes()).is_err());
}

fn revocation(kind: RevocationKind, successor: Option<ToolId>) -> Revocation {
    Revocation {
        v: 1,
        kind,
        target: RevocationTarget::Id(fixtures::signed(1).id()),
        publisher: fixtures::key(1).public(),
        reason: "CVE-2026-0001 in the parser".into(),
        successor,
        created_at_ms: CREATED + 1,
    }
}

#[test]
fn revocations_sign_verify_and_apply_only_to_their_publisher() {
    let r = SignedRevocation::sign(revocation(RevocationKind::Revoke, None), &fixtures::key(1)).unwrap();
    let back = SignedRevocation::from_bytes(&r.to_bytes()).unwrap();
    let spec = fixtures::signed(1);
    let v = back.value();
    assert!(v.applies_to(&spec.id(), "calculator", &fixtures::key(1).public(), CREATED));
    assert!(!v.applies_to(&spec.id(), "calculator", &fixtures::key(2).public(), CREATED));
    // Signed by a non-publisher: refused at signing, and a forged one does not verify.
    assert!(SignedRevocation::sign(revocation(RevocationKind::Revoke, None), &fixtures::key(2)).is_err());
    let by_name = Revocation {
        target: RevocationTarget::Name("calculator".into()),
        ..revocation(RevocationKind::Revoke, None)
    };
    let n = SignedRevocation::sign(by_name, &fixtures::key(1)).unwrap();
    assert!(n.value().applies_to(
        &ToolId([9; 32]),
        "calculator",
        &fixtures::key(1).public(),
        CREATED
    ));
    assert!(!n.value().applies_to(
        &ToolId([9; 32]),
        "calculator",
        &fixtures::key(1).public(),
        CREATED + 5
    ));
}

/// `peek` reads a value without checking its signature (for deciding that
/// an object is not worth verifying), but still refuses what is not shaped
/// like one.
#[test]
fn peek_reads_the_value_without_verifying_it() {
    let r = SignedRevocation::sign(revocation(RevocationKind::Revoke, None), &fixtures::key(1)).unwrap();
    let mut forged = r.to_bytes();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    assert!(matches!(
        SignedRevocation::from_bytes(&forged),
        Err(VerifyError::BadSignature { .. })
    ));
    assert_eq!(SignedRevocation::peek(&forged).unwrap(), *r.value());
    assert!(SignedRevocation::peek(&forged[..forged.len() / 2]).is_err());
    assert!(SignedRevocation::peek(&fixtures::signed(1).to_bytes()).is_err());
}

#[test]
fn revocation_rules() {
    let succ = Some(ToolId([5; 32]));
    assert!(SignedRevocation::sign(revocation(RevocationKind::Deprecate, succ), &fixtures::key(1)).is_ok());
    assert!(SignedRevocation::sign(revocation(RevocationKind::Revoke, succ), &fixtures::key(1)).is_err());
    let own = Some(fixtures::signed(1).id());
    assert!(SignedRevocation::sign(revocation(RevocationKind::Deprecate, own), &fixtures::key(1)).is_err());
    let mut long = revocation(RevocationKind::Revoke, None);
    long.reason = "r".repeat(600);
    assert!(SignedRevocation::sign(long, &fixtures::key(1)).is_err());
}

fn receipt(input: &[u8], output: &[u8]) -> Receipt {
    Receipt {
        v: 1,
        invocation: InvocationId([1; 16]),
        tool: fixtures::signed(1).id(),
        image_digest: DIGEST.into(),
        input_hash: ContentHash::of(input),
        output_hash: ContentHash::of(output),
        output_bytes: output.len() as u64,
        status: InvocationStatus::Ok,
        exit_code: Some(0),
        started_at_ms: CREATED,
        finished_at_ms: CREATED + 42,
        limits: Limits::default(),
        provider: fixtures::key(4).public(),
        policy_hash: None,
        usage: None,
    }
}

#[test]
fn receipts_bind_the_answer_to_the_question() {
    let (input, output) = (br#"{"a":1}"#.as_slice(), b"2".as_slice());
    let r = SignedReceipt::sign(receipt(input, output), &fixtures::key(4)).unwrap();
    let back = SignedReceipt::from_bytes(&r.to_bytes()).unwrap();
    let v = back.value();
    let tool = fixtures::signed(1).id();
    let prov = fixtures::key(4).public();
    v.check_answers(&InvocationId([1; 16]), &tool, input, output, &prov)
        .unwrap();
    assert_eq!(
        v.check_answers(&InvocationId([1; 16]), &tool, input, b"3", &prov),
        Err(ReceiptMismatch::Output)
    );
    assert_eq!(
        v.check_answers(&InvocationId([1; 16]), &tool, b"{}", output, &prov),
        Err(ReceiptMismatch::Input)
    );
    assert!(matches!(
        v.check_answers(&InvocationId([2; 16]), &tool, input, output, &prov),
        Err(ReceiptMismatch::Invocation { .. })
    ));
    assert!(matches!(
        v.check_answers(
            &InvocationId([1; 16]),
            &tool,
            input,
            output,
            &fixtures::key(5).public()
        ),
        Err(ReceiptMismatch::Provider { .. })
    ));
    // Tampered receipt bytes never verify.
    let mut b = r.to_bytes();
    let n = b.len();
    b[n - 70] ^= 1;
    assert!(SignedReceipt::from_bytes(&b).is_err());
    let mut bad = receipt(input, output);
    bad.finished_at_ms = bad.started_at_ms - 1;
    assert!(SignedReceipt::sign(bad, &fixtures::key(4)).is_err());
}
