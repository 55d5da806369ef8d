//! Issue 14 item 5: spec text holds no control, invisible or bidi-override characters, and
//! the refusal names the field, the place and the code point.

use atr_protocol::signed::{SignError, signing_message};
use atr_protocol::validate::check_spec;
use atr_protocol::{Manifest, SignedSpec, ValidationError, VerifyError};
use serde_json::json;

use crate::fixtures;

fn refusal(mutate: impl FnOnce(&mut atr_protocol::ToolSpec)) -> ValidationError {
    let mut s = fixtures::spec(1);
    mutate(&mut s);
    check_spec(&s).expect_err("the spec must be refused")
}

fn forbidden(e: &ValidationError) -> (&'static str, &str, u32) {
    match e {
        ValidationError::ForbiddenChar {
            field,
            path,
            code_point,
            ..
        } => (field, path.as_str(), *code_point),
        other => panic!("expected ForbiddenChar, got {other:?}"),
    }
}

#[test]
fn issue_14_every_human_readable_field_refuses_hidden_characters() {
    // ANSI: clear the screen, OSC 52 clipboard write.
    let e = refusal(|s| s.description = "Adds.\u{1b}[2J\u{1b}]52;c;ZXZpbA==\u{7}".into());
    assert_eq!(forbidden(&e), ("description", "", 0x1b));
    assert_eq!(e.field(), "description");
    assert!(e.to_string().contains("U+001B at character 5"), "{e}");
    // Bidi override, zero-width, tag characters, C1 CSI, a bare carriage return.
    for (bad, cp) in [
        ("ok \u{202e}exe.txt", 0x202e),
        ("a\u{200b}b", 0x200b),
        ("hi\u{e0041}\u{e0042}", 0xe0041),
        ("x\u{9b}31m", 0x9b),
        ("over\rwrite", 0x0d),
        ("\u{2066}isolate", 0x2066),
        ("\u{feff}bom", 0xfeff),
        ("soft\u{ad}hyphen", 0xad),
    ] {
        let e = refusal(|s| s.description = bad.into());
        assert_eq!(forbidden(&e), ("description", "", cp), "{bad:?}");
    }
    // Newlines and tabs stay allowed, and so does ordinary Unicode.
    let mut s = fixtures::spec(1);
    s.description = "Line one.\n\tLine two: ünïcödé, 中文, 🦀, ❤\u{fe0f}.".into();
    check_spec(&s).unwrap();

    // Inside the schemas: a property's description, a title, a key, an enum value.
    let e = refusal(|s| {
        s.input_schema = json!({"type": "object", "properties": {"a": {"type": "integer",
            "description": "the \u{202e}first\u{202c} number"}}})
    });
    assert_eq!(
        forbidden(&e),
        ("input_schema", "/properties/a/description", 0x202e)
    );
    let e = refusal(|s| s.output_schema = Some(json!({"type": "integer", "title": "sum\u{1b}[8m"})));
    assert_eq!(forbidden(&e), ("output_schema", "/title", 0x1b));
    let e = refusal(|s| {
        s.input_schema = json!({"type": "object", "properties": {"a\u{200d}": {"type": "string"}}})
    });
    assert_eq!(
        forbidden(&e),
        ("input_schema", "/properties/a\u{200d}#key", 0x200d)
    );
    let e =
        refusal(|s| s.input_schema = json!({"type": "object", "properties": {"m": {"enum": ["x\u{7f}"]}}}));
    assert_eq!(forbidden(&e), ("input_schema", "/properties/m/enum/0", 0x7f));
    // Examples (exports hand them to models), command arguments, license, revocation reasons.
    let e = refusal(|s| s.examples[0].input = json!({"a": 1, "b": 2, "note": "\u{2067}"}));
    let (field, path, cp) = forbidden(&e);
    assert_eq!((field, cp), ("examples", 0x2067));
    assert!(path.starts_with("[0].input"), "{path}");
    let e = refusal(|s| s.runtime.command = vec!["/bin/x".into(), "--a\u{1b}".into()]);
    assert_eq!(forbidden(&e), ("runtime.command", "[1]", 0x1b));
    let e = refusal(|s| s.license = Some("MIT\u{202e}".into()));
    assert_eq!(forbidden(&e), ("license", "", 0x202e));
}

#[test]
fn issue_14_a_manifest_with_hidden_characters_is_refused_naming_the_field() {
    let src = fixtures::CALCULATOR_TOML.replacen(
        "description = \"",
        "description = \"\\u001b]8;;https://evil.example\\u001b\\\\click\\u001b]8;;\\u001b\\\\ ",
        1,
    );
    assert_ne!(
        src,
        fixtures::CALCULATOR_TOML,
        "the fixture has a description line"
    );
    let m = Manifest::from_toml(&src, "calculator.toml").unwrap();
    let e = m
        .to_spec(
            "calculator.toml",
            fixtures::key(1).public(),
            fixtures::CREATED,
            Some(fixtures::DIGEST),
        )
        .unwrap_err();
    let text = e.to_string();
    assert!(text.contains("description") && text.contains("U+001B"), "{text}");
}

/// The rule is part of verification: a signed envelope holding such text (signed by a
/// publisher that skipped validation) does not verify, so no node stores or forwards it.
#[test]
fn issue_14_a_signed_spec_with_a_bidi_override_does_not_verify() {
    let mut s = fixtures::spec(2);
    s.description = "Adds two numbers \u{202e}.exe".into();
    assert!(matches!(
        SignedSpec::sign(s.clone(), &fixtures::key(2)),
        Err(SignError::Invalid(ValidationError::ForbiddenChar { .. }))
    ));
    let body = atr_protocol::cbor::to_canonical(&s).unwrap();
    let sig = fixtures::key(2).sign(&signing_message(b"atr-spec-v1", &body));
    let e = SignedSpec::from_parts(body, sig).unwrap_err();
    assert!(
        matches!(
            e,
            VerifyError::Invalid {
                source: ValidationError::ForbiddenChar { .. },
                ..
            }
        ),
        "{e:?}"
    );
}
