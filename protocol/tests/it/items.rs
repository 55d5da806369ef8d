//! The JSON item budget of a spec ([`MAX_SPEC_JSON_ITEMS`]): bytes alone do
//! not bound a parsed spec's memory, items do.

use atr_protocol::limits::{MAX_SCHEMA_BYTES, MAX_SPEC_JSON_ITEMS};
use atr_protocol::signed::{SignError, VerifyError, signing_message};
use atr_protocol::spec::SPEC_SIGNING_PREFIX;
use atr_protocol::validate::ValidationError;
use atr_protocol::{SignedSpec, cbor};

use crate::fixtures;

/// A spec whose input schema carries an unknown keyword holding `n` zeros:
/// small in bytes, many items.
fn padded(n: usize) -> atr_protocol::ToolSpec {
    let mut s = fixtures::spec(1);
    s.input_schema["x-pad"] = serde_json::Value::Array(vec![serde_json::json!(0); n]);
    s
}

#[test]
fn spec_over_the_item_budget_is_refused_at_signing() {
    let s = padded(MAX_SPEC_JSON_ITEMS + 1);
    // Within the byte cap: only the item budget refuses it.
    assert!(serde_json::to_vec(&s.input_schema).unwrap().len() < MAX_SCHEMA_BYTES);
    match SignedSpec::sign(s, &fixtures::key(1)) {
        Err(SignError::Invalid(ValidationError::TooManyItems { max })) => {
            assert_eq!(max, MAX_SPEC_JSON_ITEMS)
        }
        other => panic!("expected TooManyItems, got {other:?}"),
    }
}

#[test]
fn spec_within_the_item_budget_signs() {
    // The fixture's own schema uses a few dozen items; leave room for them.
    SignedSpec::sign(padded(MAX_SPEC_JSON_ITEMS - 200), &fixtures::key(1)).unwrap();
}

/// Signed by hand, as a hostile publisher would, bypassing `sign`'s checks.
fn hostile_envelope(items: usize) -> Vec<u8> {
    let body = cbor::to_canonical(&padded(items)).unwrap();
    let sig = fixtures::key(1).sign(&signing_message(SPEC_SIGNING_PREFIX, &body));
    cbor::encode(&ciborium::value::Value::Array(vec![
        ciborium::value::Value::Bytes(body),
        ciborium::value::Value::Bytes(sig.0.to_vec()),
    ]))
    .unwrap()
}

#[test]
fn received_spec_over_the_item_budget_is_refused() {
    // Just over the JSON budget: decoded, then refused by validation.
    match SignedSpec::from_bytes(&hostile_envelope(MAX_SPEC_JSON_ITEMS + 100)) {
        Err(VerifyError::Invalid {
            source: ValidationError::TooManyItems { .. },
            ..
        }) => {}
        other => panic!("expected Invalid(TooManyItems), got {other:?}"),
    }
    // Far over it: refused by the decoder's own item budget, before the tree exists.
    match SignedSpec::from_bytes(&hostile_envelope(MAX_SPEC_JSON_ITEMS * 4)) {
        Err(VerifyError::Decode {
            source: cbor::DecodeError::TooManyItems { .. },
            ..
        }) => {}
        other => panic!("expected Decode(TooManyItems), got {other:?}"),
    }
}
