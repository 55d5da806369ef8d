//! `json_query`: picks one value out of a JSON document by a JSON Pointer
//! (RFC 6901, `/a/0/b`, `""` is the whole document) or a simple dotted path
//! (`a.0.b`: each segment an object key, or an array index when it is all
//! digits).
//!
//! The document is given either parsed (`document`) or as text (`json`). Text
//! is checked for size, nesting depth and value count by a linear scan
//! *before* it is parsed, so a hostile document costs one pass and no
//! allocation; a parsed document is checked the same way, without recursion.
//! (The ancestor checked depth only after a full parse.)
//!
//! Output `{"found": true, "value": ...}` or `{"found": false}`.

use std::process::ExitCode;

use atr_example_tools::{ToolError, run};
use serde_json::{Map, Value, json};

/// Largest `json` text, in bytes.
const MAX_TEXT_BYTES: usize = 512 * 1024;
/// Deepest nesting of arrays and objects in the document.
const MAX_DEPTH: usize = 64;
/// Most values (scalars, arrays, objects) in the document.
const MAX_VALUES: usize = 100_000;
/// Longest path, in bytes.
const MAX_PATH_LEN: usize = 1024;
/// Most path segments (no useful path is deeper than the document).
const MAX_SEGMENTS: usize = MAX_DEPTH;

fn main() -> ExitCode {
    run(query)
}

fn bad(code: &'static str, message: impl Into<String>) -> ToolError {
    ToolError::bad_input(code, message)
}

fn query(input: Value) -> Result<Value, ToolError> {
    let Value::Object(mut obj) = input else {
        return Err(bad("invalid_input", "the input must be an object"));
    };
    if let Some(k) = obj
        .keys()
        .find(|k| !["document", "json", "path"].contains(&k.as_str()))
    {
        return Err(bad(
            "invalid_input",
            format!("unknown field `{k}`, expected `document`, `json` or `path`"),
        ));
    }
    let path = match obj.remove("path") {
        Some(Value::String(p)) => p,
        Some(_) => return Err(bad("invalid_input", "`path` must be a string")),
        None => return Err(bad("invalid_input", "missing field `path`")),
    };
    let segments = parse_path(&path)?;
    let document = match (obj.remove("document"), obj.remove("json")) {
        (Some(doc), None) => {
            check_value(&doc)?;
            doc
        }
        (None, Some(Value::String(text))) => parse_text(&text)?,
        (None, Some(_)) => return Err(bad("invalid_input", "`json` must be a string of JSON text")),
        _ => {
            return Err(bad(
                "invalid_input",
                "give exactly one of `document` (a JSON value) or `json` (JSON text)",
            ));
        }
    };
    Ok(match lookup(document, &segments) {
        Some(value) => json!({ "found": true, "value": value }),
        None => json!({ "found": false }),
    })
}

/// Splits a pointer or dotted path into unescaped segments.
fn parse_path(path: &str) -> Result<Vec<String>, ToolError> {
    if path.len() > MAX_PATH_LEN {
        return Err(bad(
            "invalid_path",
            format!("the path is over the {MAX_PATH_LEN}-byte limit"),
        ));
    }
    let segments: Vec<String> = if path.is_empty() {
        Vec::new()
    } else if let Some(rest) = path.strip_prefix('/') {
        rest.split('/').map(unescape_pointer).collect::<Result<_, _>>()?
    } else {
        let segs: Vec<String> = path.split('.').map(str::to_owned).collect();
        if segs.iter().any(String::is_empty) {
            return Err(bad(
                "invalid_path",
                format!("dotted path `{path}` has an empty segment"),
            ));
        }
        segs
    };
    if segments.len() > MAX_SEGMENTS {
        return Err(bad(
            "invalid_path",
            format!("the path has more than {MAX_SEGMENTS} segments"),
        ));
    }
    Ok(segments)
}

/// RFC 6901 §4: `~1` is `/`, `~0` is `~`; any other `~` is an error.
fn unescape_pointer(token: &str) -> Result<String, ToolError> {
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if c != '~' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('0') => out.push('~'),
            Some('1') => out.push('/'),
            _ => {
                return Err(bad(
                    "invalid_path",
                    format!("`~` in pointer token `{token}` must be followed by 0 or 1 (RFC 6901)"),
                ));
            }
        }
    }
    Ok(out)
}

/// An array index per RFC 6901: `0` or digits without a leading zero.
fn index(token: &str) -> Option<usize> {
    let ok = !token.is_empty()
        && token.bytes().all(|b| b.is_ascii_digit())
        && (token == "0" || !token.starts_with('0'));
    if ok { token.parse().ok() } else { None }
}

fn lookup(mut v: Value, segments: &[String]) -> Option<Value> {
    for seg in segments {
        v = match v {
            Value::Object(mut m) => m.remove(seg)?,
            Value::Array(mut a) => {
                let i = index(seg)?;
                if i >= a.len() {
                    return None;
                }
                a.swap_remove(i)
            }
            _ => return None,
        };
    }
    Some(v)
}

fn too_deep() -> ToolError {
    bad(
        "too_deep",
        format!("the document nests deeper than {MAX_DEPTH} levels"),
    )
}

fn too_many() -> ToolError {
    bad(
        "too_large",
        format!("the document has more than {MAX_VALUES} values"),
    )
}

/// Checks the text's size, then its depth and value count in one linear scan
/// (tracking strings and escapes), and only then parses it.
fn parse_text(text: &str) -> Result<Value, ToolError> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(bad(
            "too_large",
            format!(
                "`json` is {} bytes, over the {MAX_TEXT_BYTES}-byte limit",
                text.len()
            ),
        ));
    }
    let (mut depth, mut values) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for b in text.bytes() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(too_deep());
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            // Every value but the first is preceded by a comma (or a colon for
            // object values, which the commas between members already count).
            b',' => {
                values += 1;
                if values > MAX_VALUES {
                    return Err(too_many());
                }
            }
            _ => {}
        }
    }
    serde_json::from_str(text).map_err(|e| bad("invalid_json", format!("`json` is not valid JSON: {e}")))
}

/// The same depth and count limits for an already-parsed document, walked with
/// an explicit stack.
fn check_value(doc: &Value) -> Result<(), ToolError> {
    let mut stack = vec![(doc, 0usize)];
    let mut values = 0usize;
    while let Some((v, depth)) = stack.pop() {
        values += 1;
        if values > MAX_VALUES {
            return Err(too_many());
        }
        let children: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Array(a) => Box::new(a.iter()),
            Value::Object(m) => Box::new(Map::values(m)),
            _ => continue,
        };
        if depth + 1 > MAX_DEPTH {
            return Err(too_deep());
        }
        stack.extend(children.map(|c| (c, depth + 1)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Value {
        json!({"a": {"b": [10, {"c": "x"}], "k/e~y": 1, "": 2}, "n": null})
    }

    fn get(path: &str) -> Value {
        query(json!({"document": doc(), "path": path})).unwrap()
    }

    #[test]
    fn pointer_lookups() {
        assert_eq!(get(""), json!({"found": true, "value": doc()}));
        assert_eq!(get("/a/b/1/c"), json!({"found": true, "value": "x"}));
        assert_eq!(get("/a/k~1e~0y"), json!({"found": true, "value": 1}));
        assert_eq!(get("/a/"), json!({"found": true, "value": 2}));
        assert_eq!(get("/n"), json!({"found": true, "value": null}));
        for missing in ["/a/b/2", "/a/b/01", "/a/b/-", "/a/b/x", "/zz", "/a/b/0/c"] {
            assert_eq!(get(missing), json!({"found": false}), "{missing}");
        }
    }

    #[test]
    fn dotted_lookups() {
        assert_eq!(get("a.b.0"), json!({"found": true, "value": 10}));
        assert_eq!(get("a.b.1.c"), json!({"found": true, "value": "x"}));
        assert_eq!(get("a.zz"), json!({"found": false}));
    }

    #[test]
    fn text_documents() {
        let out = query(json!({"json": "{\"x\": [1, 2, 3]}", "path": "x.2"})).unwrap();
        assert_eq!(out, json!({"found": true, "value": 3}));
        let out = query(json!({"json": "{\"s\": \"[[[[{{,,\"}", "path": "/s"})).unwrap();
        assert_eq!(out, json!({"found": true, "value": "[[[[{{,,"}));
    }

    #[test]
    fn refuses_bad_input() {
        let err = |v: Value| query(v).unwrap_err().code().to_owned();
        assert_eq!(err(json!({"document": 1, "path": "/~2"})), "invalid_path");
        assert_eq!(err(json!({"document": 1, "path": "a..b"})), "invalid_path");
        assert_eq!(
            err(json!({"document": 1, "path": "x".repeat(2000)})),
            "invalid_path"
        );
        assert_eq!(
            err(json!({"document": 1, "path": "/a".repeat(65)})),
            "invalid_path"
        );
        assert_eq!(err(json!({"path": "/"})), "invalid_input");
        assert_eq!(
            err(json!({"document": 1, "json": "1", "path": ""})),
            "invalid_input"
        );
        assert_eq!(
            err(json!({"document": 1, "path": "", "extra": 1})),
            "invalid_input"
        );
        assert_eq!(err(json!({"json": 5, "path": ""})), "invalid_input");
        assert_eq!(err(json!({"json": "{", "path": ""})), "invalid_json");
        assert_eq!(err(json!([1])), "invalid_input");
    }

    #[test]
    fn limits_are_checked_before_parsing() {
        let err = |v: Value| query(v).unwrap_err().code().to_owned();
        // Depth: the scan stops at level 65, whatever follows (even invalid JSON).
        assert_eq!(err(json!({"json": "[".repeat(100_000), "path": ""})), "too_deep");
        let ok_depth = format!("{}{}", "[".repeat(64), "]".repeat(64));
        assert_eq!(
            query(json!({"json": ok_depth, "path": ""})).unwrap()["found"],
            true
        );
        // Count and size.
        let many = format!("[{}0]", "0,".repeat(MAX_VALUES + 1));
        assert_eq!(err(json!({"json": many, "path": ""})), "too_large");
        assert_eq!(
            err(json!({"json": " ".repeat(MAX_TEXT_BYTES + 1), "path": ""})),
            "too_large"
        );
        // A parsed document is held to the same limits.
        let mut deep = json!(1);
        for _ in 0..65 {
            deep = json!([deep]);
        }
        assert_eq!(err(json!({"document": deep, "path": ""})), "too_deep");
        let wide = Value::Array(vec![json!(0); MAX_VALUES]);
        assert_eq!(err(json!({"document": wide, "path": ""})), "too_large");
    }
}
