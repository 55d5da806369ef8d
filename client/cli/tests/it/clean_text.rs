//! Issue 14 items 5 and 7 on the command line: whatever a node sends (a spec stored before
//! validation refused hidden characters, or a hostile node at `ATR_API`), `atr` prints no
//! control or bidi character; short ids are looked up on the node, ambiguity is a typed error.
//!
//! The node here is a few lines of HTTP in the test, answering with text a real node would now
//! refuse to store: the only way to show what `atr` does with it, as `atr` never depends on
//! the daemon crate that could plant it in a store.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;

use atr_protocol::api::{CompactView, IdsResponse, SpecStatus, SpecView};
use atr_protocol::{Manifest, SecretKey, ToolId};
use serde_json::json;

use crate::harness::*;

/// Text a hostile publisher would like a terminal to run: clear screen, cursor home, OSC 52
/// clipboard write, OSC 8 link, an 8-bit CSI, a bidi override, tag characters, a bare CR.
const HOSTILE: &str = "Adds.\u{1b}[2J\u{1b}[H\u{1b}]52;c;ZXZpbA==\u{7}\u{1b}]8;;https://evil.example\u{1b}\\click\u{1b}]8;;\u{1b}\\ \u{9b}31m\u{202e}txt.exe\u{e0041}\rover";

fn hostile_view() -> SpecView {
    let key = SecretKey::from_seed(&[7; 32]);
    let m = Manifest::from_toml(
        r#"
name = "sneaky"
version = "1.0.0"
description = "placeholder"
tags = ["x"]
input_schema = { type = "object", properties = { a = { type = "integer", description = "placeholder" } } }
[runtime]
image = "x:latest"
digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
"#,
        "sneaky.toml",
    )
    .unwrap();
    let mut spec = m
        .to_spec("sneaky.toml", key.public(), 1_764_000_000_000, None)
        .unwrap();
    spec.description = HOSTILE.into();
    spec.input_schema["properties"]["a"]["description"] = json!(HOSTILE);
    spec.license = Some(format!("MIT{HOSTILE}"));
    SpecView {
        id: ToolId::of(b"sneaky"),
        status: SpecStatus::Active,
        spec,
        envelope_hex: None,
        // A node may send anything here too: `atr show` prints it.
        domain: Some(atr_protocol::claim::DomainClaim {
            domain: format!("evil{HOSTILE}.test"),
            status: atr_protocol::claim::ClaimStatus::Refused {
                reason: HOSTILE.into(),
            },
        }),
    }
}

fn compact(v: &SpecView) -> CompactView {
    CompactView {
        id: v.id,
        name: v.spec.name.clone(),
        version: v.spec.version.clone(),
        publisher: v.spec.publisher,
        description: v.spec.description.clone(),
        tags: v.spec.tags.clone(),
        status: v.status.clone(),
    }
}

/// A fake node: answers each request by path until the test ends (the thread is detached).
fn fake_node() -> (String, SpecView) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let view = hostile_view();
    let v = view.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut reader = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
            let mut len = 0usize;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                    break;
                }
                if let Some(n) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = n.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; len];
            let _ = reader.read_exact(&mut body);
            let ambiguous = [ToolId::of(b"one"), ToolId::of(b"two")];
            let (status, answer) = if path.starts_with("/v1/ids") {
                if path.contains("prefix=aaaaaaaaaaaa") {
                    (
                        200,
                        serde_json::to_value(IdsResponse {
                            ids: ambiguous.to_vec(),
                            more: true,
                        })
                        .unwrap(),
                    )
                } else {
                    (
                        200,
                        serde_json::to_value(IdsResponse {
                            ids: vec![v.id],
                            more: false,
                        })
                        .unwrap(),
                    )
                }
            } else if path.starts_with("/v1/specs/") {
                if path.contains(&v.id.to_string()) {
                    (200, serde_json::to_value(&v).unwrap())
                } else {
                    (
                        404,
                        json!({"code": "not_found", "message": format!("gone{HOSTILE}{}", "x".repeat(20_000))}),
                    )
                }
            } else if path.starts_with("/v1/find") {
                let results = if path.contains("view=compact") {
                    json!([compact(&v)])
                } else {
                    json!([v])
                };
                (
                    200,
                    json!({"results": results, "fetched_from_network": 0, "next_cursor": "AQ"}),
                )
            } else if path.starts_with("/v1/search") {
                let view = if path.contains("view=compact") {
                    json!(compact(&v))
                } else {
                    json!(v)
                };
                (200, json!({"hits": [{"score": 1.0, "view": view}]}))
            } else {
                (404, json!({"code": "not_found", "message": "no such endpoint"}))
            };
            let text = answer.to_string();
            let _ = write!(
                s,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            );
        }
    });
    (url, view)
}

fn atr_at(url: &str, args: &[&str]) -> Out {
    run(atr_cmd(args).env("ATR_API", url).env("ATR_TOKEN", "t"))
}

#[track_caller]
fn assert_inert(what: &str, out: &Out) {
    for (stream, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let bad: Vec<char> = text
            .chars()
            .filter(|c| atr_protocol::text::is_forbidden(*c))
            .collect();
        assert!(bad.is_empty(), "{what}: {stream} holds {bad:?}:\n{text}");
        assert!(!text.contains('\u{1b}'), "{what}: an ESC byte on {stream}");
    }
}

#[test]
fn issue_14_atr_prints_no_escape_byte_whatever_the_node_sends() {
    let (url, view) = fake_node();
    let id = view.id.to_string();
    let short = &id[4..16];
    for args in [
        vec!["show", id.as_str()],
        vec!["show", short],
        vec!["--json", "show", id.as_str()],
        vec!["find", "--tag", "x"],
        vec!["--json", "find", "--tag", "x"],
        vec!["--json", "find", "--compact", "--tag", "x"],
        vec!["search", "adds"],
        vec!["--json", "search", "adds"],
        vec!["--json", "search", "--compact", "adds"],
    ] {
        let out = atr_at(&url, &args);
        assert_eq!(out.code, 0, "{args:?}: {out:#?}");
        assert_inert(&format!("atr {}", args.join(" ")), &out);
    }
    // The escapes are shown, not dropped: the reader sees something is there.
    let out = atr_at(&url, &["show", id.as_str()]);
    assert!(out.stdout.contains("\\u{1b}]52;c;"), "{}", out.stdout);
    assert!(out.stdout.contains("\\u{202e}txt.exe"), "{}", out.stdout);
    // `--json` stays JSON, and means the same text.
    let out = atr_at(&url, &["--json", "show", id.as_str()]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["spec"]["description"], HOSTILE);

    // An error message carrying remote text: escaped, and capped at 4 KiB with the rest counted.
    let other = ToolId::of(b"other").to_string();
    let out = atr_at(&url, &["show", other.as_str()]);
    assert_ne!(out.code, 0);
    assert_inert("atr show <unknown>", &out);
    assert!(out.stderr.contains("bytes more)"), "{}", out.stderr);
    assert!(
        out.stderr.len() < 12 * 1024,
        "{} bytes of stderr",
        out.stderr.len()
    );
}

#[test]
fn issue_14_short_ids_too_short_or_ambiguous_are_typed_errors() {
    let (url, _) = fake_node();
    // Ambiguous: the node lists some matches and says there are more.
    let out = atr_at(&url, &["show", "atr_aaaaaaaaaaaa"]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(out.stderr.contains("matches 2+ specs"), "{}", out.stderr);
    assert!(
        out.stderr.contains(&ToolId::of(b"one").to_string()),
        "{}",
        out.stderr
    );
    // Too short: refused before asking, naming the minimum.
    let out = atr_at(&url, &["show", "atr_abcdefgh"]);
    assert_eq!(out.code, 2, "a usage error: {out:#?}");
    assert!(out.stderr.contains("at least 12"), "{}", out.stderr);
}
