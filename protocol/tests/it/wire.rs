//! Peer-to-peer messages of `/atr/index/1`: exact encoding, caps that hold
//! their largest legal message, and hostile inputs refused.

use atr_protocol::ToolId;
use atr_protocol::cbor::{self, DecodeError};
use atr_protocol::limits::{MAX_NAME_LEN, MAX_TAG_LEN};
use atr_protocol::wire::{
    self, INDEX_PROTOCOL, IndexRequest, IndexResponse, MAX_INDEX_IDS, MAX_INDEX_REQUEST_BYTES,
    MAX_INDEX_RESPONSE_BYTES, WireError,
};

#[test]
fn index_messages_round_trip_with_their_documented_encoding() {
    assert_eq!(INDEX_PROTOCOL, "/atr/index/1");
    let tag = IndexRequest::Tag("math".into());
    let b = wire::encode_message(&tag).unwrap();
    // {"tag": "math"}
    assert_eq!(hex::encode(&b), "a163746167646d617468");
    assert_eq!(IndexRequest::decode(&b).unwrap(), tag);
    let name = IndexRequest::Name("adder".into());
    assert_eq!(
        IndexRequest::decode(&wire::encode_message(&name).unwrap()).unwrap(),
        name
    );
    let resp = IndexResponse {
        ids: vec![ToolId([1; 32])],
        truncated: false,
    };
    let b = wire::encode_message(&resp).unwrap();
    // {"ids": [h'0101…'], "truncated": false}: canonical order puts the shorter key first.
    assert_eq!(
        hex::encode(&b),
        format!("a263696473815820{}697472756e6361746564f4", "01".repeat(32))
    );
    assert_eq!(IndexResponse::decode(&b).unwrap(), resp);
}

#[test]
fn index_caps_hold_the_largest_legal_messages() {
    let name = IndexRequest::Name("n".repeat(MAX_NAME_LEN));
    let b = wire::encode_message(&name).unwrap();
    assert!(b.len() <= MAX_INDEX_REQUEST_BYTES, "{}", b.len());
    assert_eq!(IndexRequest::decode(&b).unwrap(), name);
    let tag = IndexRequest::Tag("t".repeat(MAX_TAG_LEN));
    assert!(IndexRequest::decode(&wire::encode_message(&tag).unwrap()).is_ok());
    let full = IndexResponse {
        ids: (0..MAX_INDEX_IDS)
            .map(|i| ToolId([(i % 251) as u8; 32]))
            .collect(),
        truncated: true,
    };
    let b = wire::encode_message(&full).unwrap();
    assert!(b.len() <= MAX_INDEX_RESPONSE_BYTES, "{}", b.len());
    assert_eq!(IndexResponse::decode(&b).unwrap(), full);
    // The responder lists at most a find's limit, which fits.
    const { assert!(atr_protocol::query::MAX_FIND_LIMIT <= MAX_INDEX_IDS) };
}

#[test]
fn hostile_index_messages_are_refused() {
    // Bad tag and name syntax.
    for bad in [
        IndexRequest::Tag("NOT A TAG".into()),
        IndexRequest::Tag(String::new()),
        IndexRequest::Name("has space".into()),
        IndexRequest::Name("n".repeat(MAX_NAME_LEN + 1)),
    ] {
        let b = wire::encode_message(&bad).unwrap();
        assert!(IndexRequest::decode(&b).is_err(), "{bad:?}");
    }
    // An unknown variant (e.g. a later version's) is a decode error.
    let unknown = cbor::to_canonical(&std::collections::BTreeMap::from([("publisher", "x")])).unwrap();
    assert!(matches!(
        IndexRequest::decode(&unknown),
        Err(WireError::Decode { .. })
    ));
    // Over the request cap, whatever it holds.
    let big = wire::encode_message(&IndexRequest::Tag("a".repeat(200))).unwrap();
    assert!(matches!(
        IndexRequest::decode(&big),
        Err(WireError::Decode {
            source: DecodeError::TooLarge { .. },
            ..
        })
    ));
    // One id too many, under the byte cap: a count-limit error.
    let over = IndexResponse {
        ids: vec![ToolId([7; 32]); MAX_INDEX_IDS + 1],
        truncated: false,
    };
    let b = wire::encode_message(&over).unwrap();
    assert!(b.len() <= MAX_INDEX_RESPONSE_BYTES);
    assert!(matches!(IndexResponse::decode(&b), Err(WireError::Limit { .. })));
    // Unknown field, short id, and bytes over the response cap.
    let extra = cbor::to_canonical(&std::collections::BTreeMap::from([
        ("ids", ciborium::value::Value::Array(vec![])),
        ("more", ciborium::value::Value::Bool(true)),
        ("truncated", ciborium::value::Value::Bool(false)),
    ]))
    .unwrap();
    assert!(IndexResponse::decode(&extra).is_err());
    let short = cbor::to_canonical(&std::collections::BTreeMap::from([
        (
            "ids",
            ciborium::value::Value::Array(vec![ciborium::value::Value::Bytes(vec![1; 31])]),
        ),
        ("truncated", ciborium::value::Value::Bool(false)),
    ]))
    .unwrap();
    assert!(IndexResponse::decode(&short).is_err());
    assert!(matches!(
        IndexResponse::decode(&vec![0u8; MAX_INDEX_RESPONSE_BYTES + 1]),
        Err(WireError::Decode {
            source: DecodeError::TooLarge { .. },
            ..
        })
    ));
}

/// A hostile message of one-byte items: under the size cap, but its decoded
/// tree would cost ~48× its bytes. The item budget refuses it before that
/// tree exists; a message of the same size made of byte strings (what real
/// fetch responses are) decodes.
#[test]
fn one_byte_items_beyond_the_item_budget_are_refused_before_decoding_them() {
    use atr_protocol::cbor::{self, DecodeError, item_budget};
    let cap = atr_protocol::wire::MAX_FETCH_RESPONSE_BYTES;
    let n = item_budget(cap) + 1;
    // An array of n zeros: head 0x9a + 4-byte length, then n bytes of 0x00.
    let mut zeros = vec![0x9a];
    zeros.extend_from_slice(&(n as u32).to_be_bytes());
    zeros.extend(std::iter::repeat_n(0u8, n));
    assert!(zeros.len() < cap);
    assert_eq!(
        cbor::decode(&zeros, cap),
        Err(DecodeError::TooManyItems {
            max: item_budget(cap)
        })
    );
    // Just under the budget (the array itself is one item) it decodes.
    let ok_n = item_budget(cap) - 1;
    let mut fine = vec![0x9a];
    fine.extend_from_slice(&(ok_n as u32).to_be_bytes());
    fine.extend(std::iter::repeat_n(0u8, ok_n));
    assert!(cbor::decode(&fine, cap).is_ok());
    // The floor: any cap allows 8192 items (a spec's 4096 JSON values fit).
    assert_eq!(item_budget(1024), 8192);
    assert_eq!(item_budget(cap), cap / 16);
}
