//! The rules every tool spec satisfies, each with its own error.
//!
//! [`check_spec`] runs on every spec signed or received: cheap structural
//! rules plus a JSON Schema (draft 2020-12) meta-validation of the schemas.
//! Manifest parsing maps these errors to the manifest field that broke them
//! ([`ValidationError::field`]).

use crate::limits::*;
use crate::spec::{Limits, RuntimeKind, SideEffect, ToolSpec};

/// A broken validation rule. Variants name the rule; `field` names where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// Name is not `^[a-zA-Z0-9_-]{1,64}$`.
    #[error(
        "name `{name}` must be 1-64 characters of a-z, A-Z, 0-9, `_` or `-` (a legal OpenAI/Anthropic tool name)"
    )]
    NameSyntax {
        /// The name, truncated for display.
        name: String,
    },
    /// A tag is not `^[a-z0-9][a-z0-9-]{0,31}$`.
    #[error("tag `{tag}` must be 1-32 characters of a-z, 0-9 or `-`, starting with a letter or digit")]
    TagSyntax {
        /// The tag, truncated.
        tag: String,
    },
    /// Too many tags.
    #[error("{count} tags is more than the {max} allowed")]
    TooManyTags {
        /// Count.
        count: usize,
        /// Cap.
        max: usize,
    },
    /// A set (tags, side effects) is not sorted and unique.
    #[error("`{field}` must be sorted and hold no duplicates")]
    NotASet {
        /// Which field.
        field: &'static str,
    },
    /// Description is empty or only whitespace.
    #[error("description must not be empty")]
    DescriptionEmpty,
    /// Description too long.
    #[error("description is {len} bytes, over the {max}-byte limit")]
    DescriptionTooLong {
        /// Length.
        len: usize,
        /// Cap.
        max: usize,
    },
    /// A schema's JSON is too large.
    #[error("`{field}` is {len} bytes of JSON, over the {max}-byte limit")]
    SchemaTooLarge {
        /// Which schema.
        field: &'static str,
        /// Length.
        len: usize,
        /// Cap.
        max: usize,
    },
    /// A schema is not a valid JSON Schema (draft 2020-12).
    #[error("`{field}` is not a valid JSON Schema (draft 2020-12): {detail}")]
    SchemaInvalid {
        /// Which schema.
        field: &'static str,
        /// What the meta-schema says.
        detail: String,
    },
    /// The input schema's root is not `{"type": "object", ...}`.
    #[error(
        "`input_schema` must be an object schema with `\"type\": \"object\"` at its root (every agent format requires it)"
    )]
    InputNotObject,
    /// A limit outside its allowed range.
    #[error("`limits.{field}` = {value} is outside the allowed range {min}..={max}")]
    LimitOutOfRange {
        /// Which limit.
        field: &'static str,
        /// The value.
        value: u64,
        /// Smallest allowed.
        min: u64,
        /// Largest allowed.
        max: u64,
    },
    /// `none` combined with other side effects, or an empty list.
    #[error("side_effects must be [\"none\"] alone or a list of other effects")]
    SideEffectsInvalid,
    /// The pinned image digest is not `sha256:` + 64 lowercase hex.
    #[error("`runtime.image_digest` `{digest}` must be `sha256:` followed by 64 lowercase hex digits")]
    ImageDigestInvalid {
        /// The value, truncated.
        digest: String,
    },
    /// A short text field is empty, too long or has control characters.
    #[error("`{field}` must be 1-{max} printable characters")]
    TextInvalid {
        /// Which field.
        field: &'static str,
        /// Cap.
        max: usize,
    },
    /// Too many command arguments.
    #[error("`runtime.command` has {count} arguments, more than {max}")]
    CommandTooLong {
        /// Count.
        count: usize,
        /// Cap.
        max: usize,
    },
    /// Homepage is not an http(s) URL.
    #[error("`homepage` must be an http:// or https:// URL")]
    HomepageInvalid,
    /// Too many examples.
    #[error("{count} examples is more than the {max} allowed")]
    TooManyExamples {
        /// Count.
        count: usize,
        /// Cap.
        max: usize,
    },
    /// An example is too large or does not match the schemas.
    #[error("examples[{index}]: {detail}")]
    ExampleInvalid {
        /// Which example.
        index: usize,
        /// Why.
        detail: String,
    },
    /// The schemas and examples hold more JSON items than the budget.
    #[error(
        "the schemas and examples hold more than {max} JSON values together (the item budget); simplify the schemas or drop examples"
    )]
    TooManyItems {
        /// [`MAX_SPEC_JSON_ITEMS`].
        max: usize,
    },
    /// A human-readable field holds a control, invisible or bidi-override character
    /// ([`crate::text::is_forbidden`]): text that could rewrite a terminal or hide words from
    /// the person reading it while a model reads them.
    #[error(
        "`{field}{path}` holds U+{code_point:04X} at character {index}: control, invisible and bidi-override characters are not allowed in spec text"
    )]
    ForbiddenChar {
        /// The spec field (`description`, `input_schema`, `examples`, …).
        field: &'static str,
        /// Where inside it: `[i]` for a list item, a JSON pointer (`/properties/a/title`,
        /// a key's own name ending in `#key`) inside a schema or example; empty for plain text.
        path: String,
        /// The character, as a number (`U+…` in the message).
        code_point: u32,
        /// Its position in that string, in characters.
        index: usize,
    },
    /// Creation time is zero.
    #[error("`created_at_ms` must be set")]
    CreatedAtMissing,
    /// A revocation or receipt field is inconsistent.
    #[error("{0}")]
    Inconsistent(&'static str),
    /// An egress entry is not `host:port` with a DNS name, `*.domain` or IP literal and a
    /// port 1-65535.
    #[error(
        "egress entry `{rule}` must be `host:port`: a lowercase DNS name, `*.domain` or an IP literal, and a port 1-65535"
    )]
    EgressInvalid {
        /// The entry, truncated.
        rule: String,
    },
    /// Too many egress entries.
    #[error("{count} egress entries is more than the {max} allowed")]
    TooManyEgressRules {
        /// Count.
        count: usize,
        /// Cap.
        max: usize,
    },
    /// `side_effects` has `network` but the egress list is empty.
    #[error(
        "side_effects has `network` but `permissions.egress` lists no host: declare the hosts the tool reaches"
    )]
    NetworkWithoutEgress,
    /// The egress list is non-empty but `side_effects` lacks `network`.
    #[error("`permissions.egress` lists hosts but side_effects lacks `network`: declare it")]
    EgressWithoutNetwork,
    /// A secret name is not `^[A-Z][A-Z0-9_]{0,63}$`.
    #[error("secret name `{name}` must be 1-64 characters of A-Z, 0-9 or `_`, starting with a letter")]
    SecretNameInvalid {
        /// The name, truncated.
        name: String,
    },
    /// Too many secrets.
    #[error("{count} secrets is more than the {max} allowed")]
    TooManySecrets {
        /// Count.
        count: usize,
        /// Cap.
        max: usize,
    },
    /// The output dir is not an absolute, normal path outside the system directories.
    #[error("output dir `{dir}` must be an absolute path of plain segments, outside /proc, /sys, /dev")]
    OutputDirInvalid {
        /// The path, truncated.
        dir: String,
    },
}

impl ValidationError {
    /// The manifest/spec field the rule applies to.
    pub fn field(&self) -> &'static str {
        match self {
            Self::NameSyntax { .. } => "name",
            Self::TagSyntax { .. } | Self::TooManyTags { .. } => "tags",
            Self::NotASet { field } => field,
            Self::DescriptionEmpty | Self::DescriptionTooLong { .. } => "description",
            Self::SchemaTooLarge { field, .. } | Self::SchemaInvalid { field, .. } => field,
            Self::InputNotObject => "input_schema",
            Self::LimitOutOfRange { field, .. } if *field == "scratch_bytes" => "permissions.scratch_mb",
            Self::LimitOutOfRange { .. } => "limits",
            Self::SideEffectsInvalid => "side_effects",
            Self::ImageDigestInvalid { .. } => "runtime.digest",
            Self::TextInvalid { field, .. } | Self::ForbiddenChar { field, .. } => field,
            Self::CommandTooLong { .. } => "runtime.command",
            Self::HomepageInvalid => "homepage",
            Self::TooManyExamples { .. } | Self::ExampleInvalid { .. } => "examples",
            Self::TooManyItems { .. } => "input_schema",
            Self::CreatedAtMissing => "created_at_ms",
            Self::Inconsistent(_) => "-",
            Self::EgressInvalid { .. } | Self::TooManyEgressRules { .. } => "permissions.egress",
            Self::NetworkWithoutEgress | Self::EgressWithoutNetwork => "side_effects",
            Self::SecretNameInvalid { .. } | Self::TooManySecrets { .. } => "permissions.secrets",
            Self::OutputDirInvalid { .. } => "permissions.output_dir",
        }
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

/// `^[a-zA-Z0-9_-]{1,64}$`.
pub fn check_name(name: &str) -> Result<(), ValidationError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ValidationError::NameSyntax { name: truncate(name) })
    }
}

/// `^[a-z0-9][a-z0-9-]{0,31}$`.
pub fn check_tag(tag: &str) -> Result<(), ValidationError> {
    let b = tag.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= MAX_TAG_LEN
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-');
    if ok {
        Ok(())
    } else {
        Err(ValidationError::TagSyntax { tag: truncate(tag) })
    }
}

fn check_text(field: &'static str, s: &str, max: usize) -> Result<(), ValidationError> {
    if s.is_empty() || s.len() > max || s.chars().any(char::is_control) {
        return Err(ValidationError::TextInvalid { field, max });
    }
    check_clean(field, String::new(), s)
}

/// Ok when `s` holds no forbidden character ([`crate::text::is_forbidden`]); else
/// [`ValidationError::ForbiddenChar`] naming `field`, `path` and the character.
pub fn check_clean(field: &'static str, path: impl Into<String>, s: &str) -> Result<(), ValidationError> {
    crate::text::check(s).map_err(|f| ValidationError::ForbiddenChar {
        field,
        path: path.into(),
        code_point: u32::from(f.ch),
        index: f.index,
    })
}

/// Ok when no string and no object key anywhere in `v` holds a forbidden character. The
/// walk is iterative and allocation-free; only a failure walks again to name the place.
/// Its cost is bounded by the item budget ([`check_items`] runs first).
pub fn check_clean_json(
    field: &'static str,
    prefix: &str,
    v: &serde_json::Value,
) -> Result<(), ValidationError> {
    use serde_json::Value;
    let dirty = |s: &str| s.chars().any(crate::text::is_forbidden);
    let mut stack = vec![v];
    let mut found = false;
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) if dirty(s) => {
                found = true;
                break;
            }
            Value::Array(a) => stack.extend(a.iter()),
            Value::Object(o) => {
                if o.keys().any(|k| dirty(k)) {
                    found = true;
                    break;
                }
                stack.extend(o.values());
            }
            _ => {}
        }
    }
    if !found {
        return Ok(());
    }
    // Second walk, with JSON pointers, to name the first bad string.
    let mut stack = vec![(v, prefix.to_owned())];
    while let Some((v, path)) = stack.pop() {
        match v {
            Value::String(s) => check_clean(field, path.clone(), s)?,
            Value::Array(a) => stack.extend(a.iter().enumerate().map(|(i, x)| (x, format!("{path}/{i}")))),
            Value::Object(o) => {
                for (k, x) in o {
                    let escaped = k.replace('~', "~0").replace('/', "~1");
                    check_clean(field, format!("{path}/{escaped}#key"), k)?;
                    stack.push((x, format!("{path}/{escaped}")));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn is_sorted_set<T: Ord>(v: &[T]) -> bool {
    v.windows(2).all(|w| w[0] < w[1])
}

/// Checks the side-effect list: `[none]` alone, or sorted unique others.
pub fn check_side_effects(v: &[SideEffect]) -> Result<(), ValidationError> {
    if v.is_empty() || (v.len() > 1 && v.contains(&SideEffect::None)) {
        return Err(ValidationError::SideEffectsInvalid);
    }
    if !is_sorted_set(v) {
        return Err(ValidationError::NotASet {
            field: "side_effects",
        });
    }
    Ok(())
}

/// `sha256:` + 64 lowercase hex.
pub fn check_image_digest(d: &str) -> Result<(), ValidationError> {
    let ok = d.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    if ok {
        Ok(())
    } else {
        Err(ValidationError::ImageDigestInvalid { digest: truncate(d) })
    }
}

/// Checks each limit against its minimum and hard maximum.
pub fn check_limits(l: &Limits) -> Result<(), ValidationError> {
    let range = |field, value: u64, min: u64, max: u64| {
        if (min..=max).contains(&value) {
            Ok(())
        } else {
            Err(ValidationError::LimitOutOfRange {
                field,
                value,
                min,
                max,
            })
        }
    };
    range("timeout_ms", l.timeout_ms, 100, MAX_TIMEOUT_MS)?;
    range("memory_bytes", l.memory_bytes, MIN_MEMORY_BYTES, MAX_MEMORY_BYTES)?;
    range("cpu_millis", l.cpu_millis.into(), 10, MAX_CPU_MILLIS.into())?;
    range("pids", l.pids.into(), 1, MAX_PIDS.into())?;
    range("max_output_bytes", l.max_output_bytes, 16, MAX_OUTPUT_BYTES)?;
    Ok(())
}

/// Counts the bytes written to it: the length of a value's compact JSON
/// (exactly `serde_json::to_vec(v).len()`) without building the string.
struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The length of `v` as compact JSON, `usize::MAX` if it cannot be written.
fn json_len(v: &serde_json::Value) -> usize {
    let mut c = ByteCounter(0);
    match serde_json::to_writer(&mut c, v) {
        Ok(()) => c.0,
        Err(_) => usize::MAX,
    }
}

/// Counts the JSON items of `v` into `left`, stopping as soon as the budget
/// is spent; false when it is. Iterative, so depth costs no stack.
fn spend_items(v: &serde_json::Value, left: &mut usize) -> bool {
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        if *left == 0 {
            return false;
        }
        *left -= 1;
        match v {
            serde_json::Value::Array(a) => stack.extend(a.iter()),
            serde_json::Value::Object(o) => stack.extend(o.values()),
            _ => {}
        }
    }
    true
}

/// Checks the item budget ([`MAX_SPEC_JSON_ITEMS`]) over a spec's schemas
/// and examples together.
pub fn check_items(s: &ToolSpec) -> Result<(), ValidationError> {
    let mut left = MAX_SPEC_JSON_ITEMS;
    let values = std::iter::once(&s.input_schema)
        .chain(s.output_schema.as_ref())
        .chain(s.examples.iter().flat_map(|e| [&e.input, &e.output]));
    for v in values {
        if !spend_items(v, &mut left) {
            return Err(ValidationError::TooManyItems {
                max: MAX_SPEC_JSON_ITEMS,
            });
        }
    }
    Ok(())
}

/// Checks a JSON Schema's size and validity against the draft 2020-12 meta-schema.
pub fn check_schema(field: &'static str, schema: &serde_json::Value) -> Result<(), ValidationError> {
    let len = json_len(schema);
    if len > MAX_SCHEMA_BYTES {
        return Err(ValidationError::SchemaTooLarge {
            field,
            len,
            max: MAX_SCHEMA_BYTES,
        });
    }
    jsonschema::draft202012::meta::validate(schema).map_err(|e| ValidationError::SchemaInvalid {
        field,
        detail: truncate(&e.to_string()),
    })
}

/// Every rule of a tool spec.
pub fn check_spec(s: &ToolSpec) -> Result<(), ValidationError> {
    check_name(&s.name)?;
    if s.tags.len() > MAX_TAGS {
        return Err(ValidationError::TooManyTags {
            count: s.tags.len(),
            max: MAX_TAGS,
        });
    }
    for t in &s.tags {
        check_tag(t)?;
    }
    if !is_sorted_set(&s.tags) {
        return Err(ValidationError::NotASet { field: "tags" });
    }
    if s.description.trim().is_empty() {
        return Err(ValidationError::DescriptionEmpty);
    }
    if s.description.len() > MAX_DESCRIPTION_LEN {
        return Err(ValidationError::DescriptionTooLong {
            len: s.description.len(),
            max: MAX_DESCRIPTION_LEN,
        });
    }
    check_side_effects(&s.side_effects)?;
    check_limits(&s.limits)?;
    s.permissions.check(&s.side_effects)?;
    let RuntimeKind::Docker = s.runtime.kind;
    check_text("runtime.image", &s.runtime.image, MAX_SHORT_TEXT)?;
    check_image_digest(&s.runtime.image_digest)?;
    if s.runtime.command.len() > MAX_COMMAND_ARGS {
        return Err(ValidationError::CommandTooLong {
            count: s.runtime.command.len(),
            max: MAX_COMMAND_ARGS,
        });
    }
    for arg in &s.runtime.command {
        if arg.len() > MAX_SHORT_TEXT || arg.contains('\0') {
            return Err(ValidationError::TextInvalid {
                field: "runtime.command",
                max: MAX_SHORT_TEXT,
            });
        }
    }
    if let Some(w) = &s.runtime.workdir {
        check_text("runtime.workdir", w, MAX_SHORT_TEXT)?;
        if !w.starts_with('/') {
            return Err(ValidationError::TextInvalid {
                field: "runtime.workdir",
                max: MAX_SHORT_TEXT,
            });
        }
    }
    if let Some(h) = &s.homepage {
        check_text("homepage", h, MAX_SHORT_TEXT)?;
        if !(h.starts_with("https://") || h.starts_with("http://")) {
            return Err(ValidationError::HomepageInvalid);
        }
    }
    if let Some(l) = &s.license {
        check_text("license", l, MAX_SHORT_TEXT)?;
    }
    if s.examples.len() > MAX_EXAMPLES {
        return Err(ValidationError::TooManyExamples {
            count: s.examples.len(),
            max: MAX_EXAMPLES,
        });
    }
    for (index, e) in s.examples.iter().enumerate() {
        let len = json_len(&e.input).saturating_add(json_len(&e.output));
        if len > MAX_EXAMPLE_BYTES {
            return Err(ValidationError::ExampleInvalid {
                index,
                detail: format!("{len} bytes of JSON, over the {MAX_EXAMPLE_BYTES}-byte limit"),
            });
        }
    }
    if s.created_at_ms == 0 {
        return Err(ValidationError::CreatedAtMissing);
    }
    check_items(s)?;
    check_clean_text(s)?;
    check_schema("input_schema", &s.input_schema)?;
    if s.input_schema.get("type").and_then(|t| t.as_str()) != Some("object") {
        return Err(ValidationError::InputNotObject);
    }
    if let Some(o) = &s.output_schema {
        check_schema("output_schema", o)?;
    }
    Ok(())
}

/// Every human-readable string of a spec is free of control, invisible and bidi-override
/// characters ([`crate::text::is_forbidden`]): the description (which may hold `\n` and
/// `\t`), the version (semver already limits it to ASCII; checked so the rule has no
/// exception), every string and key of the schemas (titles, descriptions, property names,
/// enum values: all shown to models) and of the examples (shown to models by exports).
/// Name, tags, image, workdir, homepage and license have stricter rules of their own.
pub fn check_clean_text(s: &ToolSpec) -> Result<(), ValidationError> {
    check_clean("description", String::new(), &s.description)?;
    check_clean("version", String::new(), &s.version.to_string())?;
    for (i, arg) in s.runtime.command.iter().enumerate() {
        check_clean("runtime.command", format!("[{i}]"), arg)?;
    }
    check_clean_json("input_schema", "", &s.input_schema)?;
    if let Some(o) = &s.output_schema {
        check_clean_json("output_schema", "", o)?;
    }
    for (i, e) in s.examples.iter().enumerate() {
        check_clean_json("examples", &format!("[{i}].input"), &e.input)?;
        check_clean_json("examples", &format!("[{i}].output"), &e.output)?;
    }
    Ok(())
}

/// Checks that each example's input matches the input schema and its output
/// the output schema. Costlier than [`check_spec`] (compiles the schemas), so
/// it runs when a manifest becomes a spec, not on every received spec.
pub fn check_examples(s: &ToolSpec) -> Result<(), ValidationError> {
    for (index, e) in s.examples.iter().enumerate() {
        if let Err(v) = crate::input::validate_input(&s.input_schema, &e.input) {
            return Err(ValidationError::ExampleInvalid {
                index,
                detail: format!("input does not match input_schema: {v}"),
            });
        }
        if let Some(o) = &s.output_schema
            && let Err(v) = crate::input::validate_input(o, &e.output)
        {
            return Err(ValidationError::ExampleInvalid {
                index,
                detail: format!("output does not match output_schema: {v}"),
            });
        }
    }
    Ok(())
}
