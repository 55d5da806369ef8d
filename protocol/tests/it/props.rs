//! Property tests: canonical encoding is a bijection on its data model.

use atr_protocol::cbor::{self, MAX_DEPTH};
use atr_protocol::{SignedSpec, limits::MAX_SPEC_BYTES};
use ciborium::value::Value;
use proptest::prelude::*;

use crate::fixtures;

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<u64>().prop_map(|n| Value::Integer(n.into())),
        any::<i64>().prop_map(|n| Value::Integer(n.into())),
        any::<f64>()
            .prop_filter("finite", |x| x.is_finite())
            .prop_map(Value::Float),
        ".{0,40}".prop_map(Value::Text),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::Bytes),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z]{0,6}", inner, 0..8)
                .prop_map(|m| { Value::Map(m.into_iter().map(|(k, v)| (Value::Text(k), v)).collect()) }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The direct serializer (`to_canonical`, used to sign and to re-check
    /// specs) writes exactly the bytes of the `Value` encoder, for every value.
    #[test]
    fn direct_serializer_equals_value_encoder(v in value()) {
        let via_value = cbor::encode(&Value::serialized(&v).unwrap());
        let direct = cbor::to_canonical(&v);
        prop_assert_eq!(direct, via_value);
    }

    /// The same for JSON documents (tool schemas and examples are JSON).
    #[test]
    fn direct_serializer_equals_value_encoder_on_json(v in value()) {
        let json: serde_json::Value = match serde_json::to_value(&v) {
            Ok(j) => j,
            Err(_) => return Ok(()),
        };
        let via_value = cbor::encode(&Value::serialized(&json).unwrap());
        prop_assert_eq!(cbor::to_canonical(&json), via_value);
    }

    /// encode → decode → encode is the identity on bytes.
    #[test]
    fn encode_decode_encode_is_identity(v in value()) {
        let a = cbor::encode(&v).unwrap();
        prop_assume!(a.len() <= MAX_SPEC_BYTES);
        let back = cbor::decode(&a, MAX_SPEC_BYTES).unwrap();
        let b = cbor::encode(&back).unwrap();
        prop_assert_eq!(a, b);
    }

    /// Any truncation of a canonical encoding is rejected.
    #[test]
    fn truncations_are_rejected(v in value(), cut in any::<prop::sample::Index>()) {
        let a = cbor::encode(&v).unwrap();
        prop_assume!(a.len() > 1);
        let n = cut.index(a.len() - 1);
        prop_assert!(cbor::decode(&a[..n], MAX_SPEC_BYTES).is_err());
    }

    /// Random byte strings never panic the decoder, and whatever it accepts
    /// re-encodes to exactly the same bytes.
    #[test]
    fn decoder_is_total_and_strict(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(v) = cbor::decode(&bytes, 1024) {
            prop_assert_eq!(cbor::encode(&v).unwrap(), bytes);
        }
    }

    /// Any single-byte change of a signed spec envelope is rejected.
    #[test]
    fn single_byte_change_rejected(pos in any::<prop::sample::Index>(), delta in 1u8..=255) {
        let mut b = fixtures::signed(9).to_bytes();
        let i = pos.index(b.len());
        b[i] = b[i].wrapping_add(delta);
        prop_assert!(SignedSpec::from_bytes(&b).is_err());
    }

    /// Specs with random names, descriptions and tags round-trip through sign/verify.
    #[test]
    fn specs_round_trip(name in "[a-zA-Z0-9_-]{1,64}", desc in "[ -~]{1,200}", tags in proptest::collection::btree_set("[a-z0-9][a-z0-9-]{0,31}", 0..16), t in 1u64..u64::MAX) {
        prop_assume!(!desc.trim().is_empty());
        let mut s = fixtures::spec(5);
        s.name = name;
        s.description = desc;
        s.tags = tags.into_iter().collect();
        s.created_at_ms = t;
        let signed = SignedSpec::sign(s, &fixtures::key(5)).unwrap();
        let back = SignedSpec::from_bytes(&signed.to_bytes()).unwrap();
        prop_assert_eq!(back.body(), signed.body());
        prop_assert_eq!(back.value(), signed.value());
    }
}

#[test]
fn depth_cap_is_exact() {
    let mut v = Value::Null;
    for _ in 0..MAX_DEPTH {
        v = Value::Array(vec![v]);
    }
    assert!(cbor::encode(&v).is_ok());
    let v = Value::Array(vec![v]);
    assert!(cbor::encode(&v).is_err());
}
