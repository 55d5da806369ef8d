//! Fixed-count loop over the verification stages, for instruction counting:
//! `valgrind --tool=callgrind target/release/examples/verify_profile <stage> <n>`
//! (stages: full, ed25519, decode, check, blake3). Per-op instructions are
//! `(Ir(n) - Ir(0)) / n`. Results: docs/benchmarks/protocol.md.

#[path = "../benches/support/fixture.rs"]
mod fixture;

use atr_protocol::SignedSpec;
use std::hint::black_box;

fn main() {
    let mut args = std::env::args().skip(1);
    let stage = args.next().unwrap_or_else(|| "full".into());
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let (key, signed) = fixture::signed_calculator();
    let envelope = signed.to_bytes();
    let msg = atr_protocol::signed::signing_message(b"atr-spec-v1", signed.body());
    let sig = *signed.signature();
    let pk = key.public();
    for _ in 0..n {
        match stage.as_str() {
            "full" => drop(black_box(
                SignedSpec::from_bytes(black_box(&envelope)).expect("verifies"),
            )),
            "ed25519" => pk.verify(black_box(&msg), black_box(&sig)).expect("verifies"),
            "decode" => {
                let v = atr_protocol::cbor::decode(black_box(signed.body()), 1 << 16).expect("decodes");
                drop(black_box(atr_protocol::cbor::encode(&v).expect("encodes")));
            }
            "check" => atr_protocol::validate::check_spec(black_box(signed.value())).expect("valid"),
            "blake3" => drop(black_box(atr_protocol::ToolId::of(black_box(signed.body())))),
            other => panic!("unknown stage {other}"),
        }
    }
}
