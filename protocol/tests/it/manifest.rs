//! Manifest parsing and every validation rule, passing and failing.

use atr_protocol::manifest::{Manifest, ManifestError, SchemaSource};
use atr_protocol::spec::SideEffect;
use atr_protocol::validate::{ValidationError, check_spec};
use serde_json::json;

use crate::fixtures::{self, CALCULATOR_TOML, CREATED, DIGEST};

#[test]
fn manifest_normalizes_into_spec() {
    let s = fixtures::spec(1);
    assert_eq!(
        s.tags,
        vec!["calculator", "math"],
        "lowercased, sorted, deduplicated"
    );
    assert_eq!(s.side_effects, vec![SideEffect::None]);
    assert_eq!(s.limits.memory_bytes, 64 * 1024 * 1024);
    assert_eq!(s.limits.cpu_millis, 500);
    assert_eq!(s.runtime.image_digest, DIGEST);
    assert_eq!(s.examples.len(), 3);
}

fn field_of(toml_src: &str) -> (Option<String>, String) {
    let e = Manifest::from_toml(toml_src, "m.toml")
        .and_then(|m| m.to_spec("m.toml", fixtures::key(1).public(), CREATED, Some(DIGEST)))
        .expect_err("manifest must be refused");
    let msg = e.to_string();
    assert!(msg.starts_with("m.toml"), "error names the file: {msg}");
    (e.field().map(str::to_owned), msg)
}

#[test]
fn manifest_errors_name_file_field_and_rule() {
    let cases: &[(&str, &str, &str)] = &[
        ("name = \"calculator\"", "name = \"my tool; DROP\"", "name"),
        ("version = \"1.2.0\"", "version = \"1.0\"", "version"),
        (
            "tags = [\"math\", \"Calculator\", \"math\"]",
            "tags = [\"no spaces\"]",
            "tags",
        ),
        (
            "side_effects = [\"none\"]",
            "side_effects = [\"nuke\"]",
            "side_effects",
        ),
        (
            "side_effects = [\"none\"]",
            "side_effects = [\"none\", \"writes\"]",
            "side_effects",
        ),
        ("cost = \"free\"", "cost = \"astronomical\"", "cost"),
        ("timeout_ms = 5000", "timeout_ms = 999999999", "limits.timeout_ms"),
        ("memory_mb = 64", "memory_mb = 1", "limits.memory_mb"),
        ("pids = 8", "pids = 0", "limits.pids"),
        ("cpus = 0.5", "cpus = -1.0", "limits.cpus"),
        (
            "homepage = \"https://github.com/atr-net/atr\"",
            "homepage = \"ftp://x\"",
            "homepage",
        ),
        (
            "output = { result = 14 }",
            "output = { result = \"fourteen\" }",
            "examples",
        ),
        (
            "input = { expression = \"2 * (3 + 4)\" }",
            "input = { expr = 1 }",
            "examples",
        ),
        (
            "[input_schema]\ntype = \"object\"",
            "[input_schema]\ntype = \"array\"",
            "input_schema",
        ),
        ("minLength = 1", "minLength = -1", "input_schema"),
        (
            "image = \"atr-example-tools:latest\"",
            "image = \"\"",
            "runtime.image",
        ),
    ];
    for (from, to, field) in cases {
        assert!(CALCULATOR_TOML.contains(from), "fixture has `{from}`");
        let src = CALCULATOR_TOML.replacen(from, to, 1);
        let (f, msg) = field_of(&src);
        assert_eq!(f.as_deref(), Some(*field), "{to}: {msg}");
    }
}

#[test]
fn syntax_errors_give_line_and_unknown_fields_are_refused() {
    let e = Manifest::from_toml("name = \"x\"\nnmae = 3\n", "bad.toml").unwrap_err();
    let ManifestError::Syntax { message, .. } = &e else {
        panic!("{e:?}")
    };
    assert!(message.contains("line"), "{message}");
    let e = Manifest::from_toml(&CALCULATOR_TOML.replacen("cost", "costs", 1), "bad.toml").unwrap_err();
    assert!(e.to_string().contains("unknown field"), "{e}");
    let huge = "#".repeat(300 * 1024);
    assert!(matches!(
        Manifest::from_toml(&huge, "h.toml"),
        Err(ManifestError::TooLarge { .. })
    ));
}

#[test]
fn digest_is_required_and_checked() {
    let m = fixtures::manifest();
    let e = m
        .to_spec("m.toml", fixtures::key(1).public(), CREATED, None)
        .unwrap_err();
    assert_eq!(e.field(), Some("runtime.digest"));
    let e = m
        .to_spec("m.toml", fixtures::key(1).public(), CREATED, Some("sha256:ABC"))
        .unwrap_err();
    assert_eq!(e.field(), Some("runtime.digest"), "{e}");
}

#[test]
fn schema_paths_resolve_through_the_reader() {
    let mut with_path = fixtures::manifest();
    with_path.output_schema = Some(SchemaSource::Path("out.json".into()));
    let key = fixtures::key(1).public();
    let e = with_path
        .to_spec("m.toml", key, CREATED, Some(DIGEST))
        .unwrap_err();
    assert_eq!(
        e.field(),
        Some("output_schema"),
        "an unresolved path is refused: {e}"
    );
    let mut m = with_path.clone();
    m.resolve_schemas("m.toml", |p| {
        assert_eq!(p, "out.json");
        Ok(r#"{"type":"object","properties":{"result":{"type":"number"}}}"#.into())
    })
    .unwrap();
    assert!(m.to_spec("m.toml", key, CREATED, Some(DIGEST)).is_ok());
    let mut m = with_path;
    let e = m
        .resolve_schemas("m.toml", |_| Ok("{not json".into()))
        .unwrap_err();
    assert!(
        matches!(
            e,
            ManifestError::SchemaFile {
                field: "output_schema",
                ..
            }
        ),
        "{e}"
    );
}

/// Every rule of `check_spec`, failing case; the passing case is the fixture.
#[test]
fn each_spec_rule_fails_on_its_own() {
    let ok = fixtures::spec(1);
    check_spec(&ok).unwrap();
    type Mutate = fn(&mut atr_protocol::ToolSpec);
    type Expect = fn(&ValidationError) -> bool;
    let cases: &[(Mutate, Expect)] = &[
        (
            |s| s.name = "a".repeat(65),
            |e| matches!(e, ValidationError::NameSyntax { .. }),
        ),
        (
            |s| s.name = "a.b".into(),
            |e| matches!(e, ValidationError::NameSyntax { .. }),
        ),
        (
            |s| s.name = String::new(),
            |e| matches!(e, ValidationError::NameSyntax { .. }),
        ),
        (
            |s| s.tags = vec!["UPPER".into()],
            |e| matches!(e, ValidationError::TagSyntax { .. }),
        ),
        (
            |s| s.tags = vec!["-x".into()],
            |e| matches!(e, ValidationError::TagSyntax { .. }),
        ),
        (
            |s| s.tags = vec!["t".repeat(33)],
            |e| matches!(e, ValidationError::TagSyntax { .. }),
        ),
        (
            |s| s.tags = (0..17).map(|i| format!("t{i:02}")).collect(),
            |e| matches!(e, ValidationError::TooManyTags { count: 17, .. }),
        ),
        (
            |s| s.tags = vec!["b".into(), "a".into()],
            |e| matches!(e, ValidationError::NotASet { field: "tags" }),
        ),
        (
            |s| s.tags = vec!["a".into(), "a".into()],
            |e| matches!(e, ValidationError::NotASet { field: "tags" }),
        ),
        (
            |s| s.description = "  ".into(),
            |e| matches!(e, ValidationError::DescriptionEmpty),
        ),
        (
            |s| s.description = "d".repeat(4097),
            |e| matches!(e, ValidationError::DescriptionTooLong { .. }),
        ),
        (
            |s| s.input_schema = json!({"type": "object", "description": "x".repeat(25_000)}),
            |e| matches!(e, ValidationError::SchemaTooLarge { .. }),
        ),
        (
            |s| s.input_schema = json!({"type": "object", "properties": 3}),
            |e| {
                matches!(
                    e,
                    ValidationError::SchemaInvalid {
                        field: "input_schema",
                        ..
                    }
                )
            },
        ),
        (
            |s| s.output_schema = Some(json!({"type": "banana"})),
            |e| {
                matches!(
                    e,
                    ValidationError::SchemaInvalid {
                        field: "output_schema",
                        ..
                    }
                )
            },
        ),
        (
            |s| s.input_schema = json!({"type": "string"}),
            |e| matches!(e, ValidationError::InputNotObject),
        ),
        (
            |s| s.limits.timeout_ms = 0,
            |e| {
                matches!(
                    e,
                    ValidationError::LimitOutOfRange {
                        field: "timeout_ms",
                        ..
                    }
                )
            },
        ),
        (
            |s| s.limits.memory_bytes = u64::MAX,
            |e| {
                matches!(
                    e,
                    ValidationError::LimitOutOfRange {
                        field: "memory_bytes",
                        ..
                    }
                )
            },
        ),
        (
            |s| s.limits.cpu_millis = 5000,
            |e| {
                matches!(
                    e,
                    ValidationError::LimitOutOfRange {
                        field: "cpu_millis",
                        ..
                    }
                )
            },
        ),
        (
            |s| s.limits.pids = 10_000,
            |e| matches!(e, ValidationError::LimitOutOfRange { field: "pids", .. }),
        ),
        (
            |s| s.limits.max_output_bytes = 1 << 40,
            |e| {
                matches!(
                    e,
                    ValidationError::LimitOutOfRange {
                        field: "max_output_bytes",
                        ..
                    }
                )
            },
        ),
        (
            |s| s.side_effects = vec![],
            |e| matches!(e, ValidationError::SideEffectsInvalid),
        ),
        (
            |s| s.side_effects = vec![SideEffect::None, SideEffect::Reads],
            |e| matches!(e, ValidationError::SideEffectsInvalid),
        ),
        (
            |s| s.side_effects = vec![SideEffect::Writes, SideEffect::Reads],
            |e| {
                matches!(
                    e,
                    ValidationError::NotASet {
                        field: "side_effects"
                    }
                )
            },
        ),
        (
            |s| s.runtime.image_digest = "latest".into(),
            |e| matches!(e, ValidationError::ImageDigestInvalid { .. }),
        ),
        (
            |s| s.runtime.image = "a\nb".into(),
            |e| {
                matches!(
                    e,
                    ValidationError::TextInvalid {
                        field: "runtime.image",
                        ..
                    }
                )
            },
        ),
        (
            |s| s.runtime.command = vec!["x".into(); 33],
            |e| matches!(e, ValidationError::CommandTooLong { .. }),
        ),
        (
            |s| s.runtime.workdir = Some("relative".into()),
            |e| {
                matches!(
                    e,
                    ValidationError::TextInvalid {
                        field: "runtime.workdir",
                        ..
                    }
                )
            },
        ),
        (
            |s| s.homepage = Some("javascript:x".into()),
            |e| matches!(e, ValidationError::HomepageInvalid),
        ),
        (
            |s| s.license = Some(String::new()),
            |e| matches!(e, ValidationError::TextInvalid { field: "license", .. }),
        ),
        (
            |s| s.examples = vec![s.examples[0].clone(); 9],
            |e| matches!(e, ValidationError::TooManyExamples { .. }),
        ),
        (
            |s| s.examples[0].input = json!({"expression": "x".repeat(5000)}),
            |e| matches!(e, ValidationError::ExampleInvalid { index: 0, .. }),
        ),
        (
            |s| s.created_at_ms = 0,
            |e| matches!(e, ValidationError::CreatedAtMissing),
        ),
    ];
    for (i, (mutate, expect)) in cases.iter().enumerate() {
        let mut s = ok.clone();
        mutate(&mut s);
        let e = check_spec(&s).expect_err(&format!("case {i} must fail"));
        assert!(expect(&e), "case {i}: unexpected {e:?}");
    }
}
