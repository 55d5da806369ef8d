//! `verify_receipt`: the one check of a receipt against the question, one test per failure.

use atr_protocol::id::{ContentHash, InvocationId};
use atr_protocol::policy::{EgressRule, Policy};
use atr_protocol::receipt::{
    Expected, InvocationStatus, Receipt, ReceiptError, ReceiptMismatch, SignedReceipt, Usage, verify_receipt,
    verify_receipt_bytes,
};
use atr_protocol::signed::VerifyError;
use atr_protocol::{PublicKey, SignedSpec, ToolId};

use crate::fixtures::{self, CREATED, DIGEST};

const INPUT: &[u8] = br#"{"a":1}"#;
const OUTPUT: &[u8] = b"2";

/// The spec the receipts are for, signed by key 1; the provider is key 4.
fn spec() -> SignedSpec {
    fixtures::signed(1)
}

fn receipt(edit: impl FnOnce(&mut Receipt)) -> SignedReceipt {
    let spec = spec();
    let mut r = Receipt {
        v: 1,
        invocation: InvocationId([1; 16]),
        tool: spec.id(),
        image_digest: DIGEST.into(),
        input_hash: ContentHash::of(INPUT),
        output_hash: ContentHash::of(OUTPUT),
        output_bytes: OUTPUT.len() as u64,
        status: InvocationStatus::Ok,
        exit_code: Some(0),
        started_at_ms: CREATED,
        finished_at_ms: CREATED + 42,
        limits: spec.value().limits,
        provider: fixtures::key(4).public(),
        policy_hash: Some(Policy::of(spec.value()).hash()),
        usage: Some(Usage {
            wall_ms: 40,
            cpu_ms: Some(3),
            peak_memory_bytes: Some(1 << 20),
            egress_out_bytes: 0,
            egress_in_bytes: 0,
        }),
    };
    edit(&mut r);
    SignedReceipt::sign(r, &fixtures::key(4)).unwrap()
}

/// What an honest caller knows.
struct Caller {
    spec: SignedSpec,
    tool: ToolId,
    provider: PublicKey,
    invocation: InvocationId,
}

impl Caller {
    fn new() -> Self {
        let spec = spec();
        Self {
            tool: spec.id(),
            spec,
            provider: fixtures::key(4).public(),
            invocation: InvocationId([1; 16]),
        }
    }

    fn expected(&self) -> Expected<'_> {
        Expected {
            invocation: Some(&self.invocation),
            tool: &self.tool,
            provider: &self.provider,
            input: INPUT,
            output: OUTPUT,
            status: Some(InvocationStatus::Ok),
            spec: Some(&self.spec),
        }
    }
}

#[test]
fn an_honest_receipt_verifies() {
    let (r, c) = (receipt(|_| {}), Caller::new());
    verify_receipt(&r, &c.expected()).unwrap();
    // A caller that did not choose the invocation id and has no spec or status.
    let e = Expected {
        invocation: None,
        spec: None,
        status: None,
        ..c.expected()
    };
    verify_receipt(&r, &e).unwrap();
}

#[test]
fn another_invocation_is_refused() {
    let other = InvocationId([2; 16]);
    let c = Caller::new();
    let e = verify_receipt(
        &receipt(|_| {}),
        &Expected {
            invocation: Some(&other),
            ..c.expected()
        },
    )
    .unwrap_err();
    assert!(matches!(e, ReceiptMismatch::Invocation { .. }), "{e}");
}

#[test]
fn another_tool_is_refused() {
    let other = ToolId([7; 32]);
    let c = Caller::new();
    let e = verify_receipt(
        &receipt(|_| {}),
        &Expected {
            tool: &other,
            ..c.expected()
        },
    )
    .unwrap_err();
    assert!(matches!(e, ReceiptMismatch::Tool { .. }), "{e}");
}

#[test]
fn another_provider_is_refused() {
    let other: PublicKey = fixtures::key(5).public();
    let c = Caller::new();
    let e = verify_receipt(
        &receipt(|_| {}),
        &Expected {
            provider: &other,
            ..c.expected()
        },
    )
    .unwrap_err();
    assert!(matches!(e, ReceiptMismatch::Provider { .. }), "{e}");
}

#[test]
fn another_input_is_refused() {
    let c = Caller::new();
    let e = verify_receipt(
        &receipt(|_| {}),
        &Expected {
            input: b"{}",
            ..c.expected()
        },
    )
    .unwrap_err();
    assert_eq!(e, ReceiptMismatch::Input);
}

#[test]
fn another_output_is_refused() {
    let c = Caller::new();
    let e = verify_receipt(
        &receipt(|_| {}),
        &Expected {
            output: b"3",
            ..c.expected()
        },
    )
    .unwrap_err();
    assert_eq!(e, ReceiptMismatch::Output);
}

#[test]
fn a_wrong_output_length_is_refused() {
    let c = Caller::new();
    let e = verify_receipt(&receipt(|r| r.output_bytes = 9), &c.expected()).unwrap_err();
    assert_eq!(
        e,
        ReceiptMismatch::OutputLength {
            receipt: 9,
            actual: 1
        }
    );
}

#[test]
fn another_status_is_refused() {
    let c = Caller::new();
    let e = verify_receipt(
        &receipt(|_| {}),
        &Expected {
            status: Some(InvocationStatus::Timeout),
            ..c.expected()
        },
    )
    .unwrap_err();
    assert_eq!(
        e,
        ReceiptMismatch::Status {
            receipt: InvocationStatus::Ok,
            answer: InvocationStatus::Timeout
        }
    );
}

#[test]
fn a_spec_of_another_tool_is_refused() {
    let other = fixtures::signed(2);
    let c = Caller::new();
    let e = verify_receipt(
        &receipt(|_| {}),
        &Expected {
            spec: Some(&other),
            ..c.expected()
        },
    )
    .unwrap_err();
    assert!(matches!(e, ReceiptMismatch::Spec { .. }), "{e}");
}

#[test]
fn another_image_is_refused() {
    let digest = format!("sha256:{}", "ab".repeat(32));
    let c = Caller::new();
    let e = verify_receipt(&receipt(|r| r.image_digest = digest.clone()), &c.expected()).unwrap_err();
    assert!(matches!(e, ReceiptMismatch::Image { .. }), "{e}");
}

#[test]
fn other_limits_are_refused() {
    let c = Caller::new();
    let e = verify_receipt(&receipt(|r| r.limits.timeout_ms += 1), &c.expected()).unwrap_err();
    assert_eq!(e, ReceiptMismatch::Limits);
}

#[test]
fn envelopes_are_decoded_and_signatures_verified() {
    let spec = spec();
    let (tool, provider) = (spec.id(), fixtures::key(4).public());
    let e = Expected {
        invocation: None,
        tool: &tool,
        provider: &provider,
        input: INPUT,
        output: OUTPUT,
        status: None,
        spec: Some(&spec),
    };
    let good = receipt(|_| {}).to_bytes();
    assert_eq!(verify_receipt_bytes(&good, &e).unwrap(), receipt(|_| {}));
    let mut bad = good.clone();
    let n = bad.len();
    bad[n - 1] ^= 1;
    assert!(matches!(
        verify_receipt_bytes(&bad, &e),
        Err(ReceiptError::Envelope(VerifyError::BadSignature { .. }))
    ));
    assert!(matches!(
        verify_receipt_bytes(&good, &Expected { output: b"3", ..e }),
        Err(ReceiptError::Mismatch(ReceiptMismatch::Output))
    ));
}

/// A provider that ran the tool under another policy (here: with an extra egress host, as one
/// that loosened the allowlist would) signs that policy's hash; the caller holding the spec
/// sees it.
#[test]
fn a_provider_enforcing_another_policy_is_detected() {
    let c = Caller::new();
    let mut looser = Policy::of(c.spec.value());
    looser
        .permissions
        .egress
        .push(EgressRule::parse("exfil.example:443").unwrap());
    let r = receipt(|r| r.policy_hash = Some(looser.hash()));
    let e = verify_receipt(&r, &c.expected()).unwrap_err();
    assert!(matches!(e, ReceiptMismatch::Policy { .. }), "{e}");
    // Without the spec there is nothing to compare against: the hash is only carried.
    let no_spec = Expected {
        spec: None,
        ..c.expected()
    };
    verify_receipt(&r, &no_spec).unwrap();
}

/// A receipt that binds no policy hash proves nothing about the policy: refused with a spec.
#[test]
fn a_receipt_without_a_policy_hash_is_refused() {
    let c = Caller::new();
    let r = receipt(|r| r.policy_hash = None);
    assert_eq!(
        verify_receipt(&r, &c.expected()).unwrap_err(),
        ReceiptMismatch::PolicyMissing
    );
}

/// Usage is signed: editing it after signing breaks the envelope.
#[test]
fn usage_is_signed() {
    let r = receipt(|_| {});
    assert_eq!(r.value().usage.map(|u| u.wall_ms), Some(40));
    let mut bytes = r.to_bytes();
    let body = r.body().to_vec();
    let mut edited: Receipt = r.value().clone();
    edited.usage = Some(Usage {
        wall_ms: 41,
        ..edited.usage.unwrap()
    });
    let new_body = atr_protocol::cbor::to_canonical(&edited).unwrap();
    assert_eq!(new_body.len(), body.len());
    let pos = bytes.windows(body.len()).position(|w| w == body).unwrap();
    bytes[pos..pos + body.len()].copy_from_slice(&new_body);
    let c = Caller::new();
    let e = verify_receipt_bytes(&bytes, &c.expected()).unwrap_err();
    assert!(
        matches!(e, ReceiptError::Envelope(VerifyError::BadSignature { .. })),
        "{e}"
    );
}
