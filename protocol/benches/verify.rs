//! Full verification of a realistic 2 KiB spec versus a bare ed25519 verify.
//!
//! Run: `cargo bench -p atr-protocol --bench verify`
//! Results: docs/benchmarks/protocol.md.

#[path = "support/fixture.rs"]
mod fixture;

use atr_protocol::SignedSpec;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let (key, signed) = fixture::signed_calculator();
    let envelope = signed.to_bytes();
    let body_len = signed.body().len();
    eprintln!("spec body: {body_len} bytes, envelope: {} bytes", envelope.len());

    let mut g = c.benchmark_group("spec");
    g.throughput(Throughput::Elements(1));
    g.bench_function(format!("full_verify_{body_len}B"), |b| {
        b.iter(|| SignedSpec::from_bytes(black_box(&envelope)).expect("verifies"))
    });
    let msg = atr_protocol::signed::signing_message(b"atr-spec-v1", signed.body());
    let sig = *signed.signature();
    let pk = key.public();
    g.bench_function("bare_ed25519_verify_strict", |b| {
        b.iter(|| pk.verify(black_box(&msg), black_box(&sig)).expect("verifies"))
    });
    g.bench_function("decode_and_reencode_only", |b| {
        b.iter(|| {
            let v = atr_protocol::cbor::decode(black_box(signed.body()), 1 << 16).expect("decodes");
            atr_protocol::cbor::encode(&v).expect("encodes")
        })
    });
    g.bench_function("decode_typed_direct", |b| {
        b.iter(|| {
            atr_protocol::cbor::from_canonical::<atr_protocol::spec::ToolSpec>(
                black_box(signed.body()),
                1 << 16,
            )
            .expect("decodes")
        })
    });
    g.bench_function("decode_typed_through_value_tree", |b| {
        b.iter(|| {
            let v = atr_protocol::cbor::decode(black_box(signed.body()), 1 << 16).expect("decodes");
            v.deserialized::<atr_protocol::spec::ToolSpec>().expect("shape")
        })
    });
    g.bench_function("validation_rules_only", |b| {
        b.iter(|| atr_protocol::validate::check_spec(black_box(signed.value())).expect("valid"))
    });
    g.bench_function("blake3_id_only", |b| {
        b.iter(|| atr_protocol::ToolId::of(black_box(signed.body())))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
