//! The canonical encoder reproduces RFC 8949 Appendix A examples that fall in
//! atr's data model. Data: tests/data/rfc8949-appendix-a.json (from the public
//! cbor/test-vectors repository).

use atr_protocol::cbor;
use serde_json::Value as Json;

/// Why an Appendix A example is outside atr's canonical data model.
fn excluded(hex: &str, decoded: Option<&Json>, roundtrip: bool) -> Option<&'static str> {
    if !roundtrip {
        return Some("not a round-trip example (non-preferred form)");
    }
    let Some(d) = decoded else {
        return Some("no JSON form (undefined, simple values, NaN, Infinity, byte strings)");
    };
    let first = u8::from_str_radix(&hex[..2], 16).unwrap_or(0);
    if (0xc0..=0xdb).contains(&first) {
        return Some("tagged item");
    }
    if (0xf9..=0xfb).contains(&first)
        && let Some(x) = d.as_f64()
        && x.fract() == 0.0
    {
        return Some("integral float: atr encodes it as an integer (rule 5)");
    }
    if d.is_number()
        && d.as_u64().is_none()
        && d.as_i64().is_none()
        && d.as_f64().is_some_and(|x| x.fract() == 0.0)
    {
        return Some("integer beyond 64 bits");
    }
    if first >> 5 == 5
        && d.as_object()
            .is_some_and(|o| o.keys().any(|k| k.parse::<i64>().is_ok()))
    {
        return Some("map with integer keys (no JSON form)");
    }
    if first == 0x5f || first == 0x7f || first == 0x9f || first == 0xbf {
        return Some("indefinite length");
    }
    None
}

#[test]
fn appendix_a_examples_in_the_data_model() {
    let file: Json = serde_json::from_str(include_str!("../data/rfc8949-appendix-a.json")).unwrap();
    let mut checked = 0;
    for v in file["vectors"].as_array().unwrap() {
        let hex = v["hex"].as_str().unwrap();
        let rt = v["roundtrip"].as_bool().unwrap_or(false);
        if excluded(hex, v.get("decoded"), rt).is_some() {
            continue;
        }
        let d = &v["decoded"];
        let encoded = cbor::encode(&cbor::json_to_value(d)).unwrap();
        assert_eq!(hex::encode(&encoded), hex, "encoding {d}");
        let bytes = hex::decode(hex).unwrap();
        let back = cbor::decode(&bytes, 1 << 16).unwrap();
        assert_eq!(cbor::encode(&back).unwrap(), bytes, "decode/encode {hex}");
        checked += 1;
    }
    assert!(checked >= 35, "only {checked} vectors checked");
}
