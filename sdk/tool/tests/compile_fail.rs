//! Signatures `#[atr_tool::tool]` refuses, each with its message asserted (`tests/ui/*.stderr`).
//! `TRYBUILD=overwrite cargo test -p atr-tool --test compile_fail` rewrites the expectations.

#[test]
fn unsupported_signatures_are_compile_errors() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
