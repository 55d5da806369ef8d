//! Text from strangers: the one set of characters a spec may not hold, and the one sanitiser
//! every program applies before it shows remote text to a terminal or a model.
//!
//! A spec's human-readable fields travel from any publisher to every node, then to terminals
//! (`atr show`, `find`, `search`) and to models (MCP, exports). Two kinds of characters turn
//! such text into an attack rather than a description:
//!
//! - **control characters** (C0 except `\t` and `\n`, DEL, C1): a terminal executes them, e.g.
//!   `ESC [ … H` moves the cursor over earlier output, OSC 52 writes the clipboard, OSC 8 hides a
//!   link behind other text;
//! - **invisible and bidi-override characters**: they make the text a person reads differ from
//!   the text a program (or a model) gets, e.g. U+202E reverses what follows on screen, and the
//!   tag characters U+E0000–U+E007F carry ASCII a model reads but a person never sees.
//!
//! [`is_forbidden`] is that set, written once. Validation ([`crate::validate::check_spec`])
//! refuses a spec holding one in any human-readable field ([`check`]); [`escape`] (for
//! terminals) and [`escape_json`] (for JSON a model or script reads) make whatever still
//! arrives (a spec stored before this rule, a tool's stderr, a provider's error text) visible
//! and inert. [`cap`] bounds how much of such text is shown.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Most bytes of one piece of remote free text (a provider's refusal detail, a tool's stderr,
/// an error message carrying either) a client shows; the rest is summarised as
/// `… (N bytes more)` by [`cap`]. 4 KiB is a screenful: enough for a stack trace's top, too
/// little to scroll the operator's own output away.
pub const MAX_SHOWN_REMOTE_TEXT: usize = 4 * 1024;

/// Whether `c` may not appear in a spec's human-readable text, and is escaped wherever remote
/// text is shown. The set:
///
/// - C0 controls U+0000–U+001F except `\t` (U+0009) and `\n` (U+000A) — `\r` included, which
///   rewrites the start of a line; DEL U+007F; C1 controls U+0080–U+009F (U+009B is a one-byte
///   CSI on some terminals);
/// - U+00AD soft hyphen, U+034F combining grapheme joiner, U+061C Arabic letter mark, U+115F
///   and U+1160 Hangul fillers, U+17B4 and U+17B5 Khmer inherent vowels, U+180E Mongolian vowel
///   separator, U+3164 and U+FFA0 Hangul fillers: invisible;
/// - U+200B–U+200F zero-width space, non-joiner, joiner, left-to-right and right-to-left marks;
/// - U+2028 and U+2029 line and paragraph separators (a line break most tools do not see);
/// - U+202A–U+202E bidi embeddings and overrides;
/// - U+2060–U+206F word joiner, invisible operators, bidi isolates (U+2066–U+2069) and the
///   deprecated format characters;
/// - U+FEFF zero-width no-break space (byte-order mark); U+FFF9–U+FFFB interlinear annotation;
/// - U+1D173–U+1D17A musical format characters (invisible);
/// - U+E0000–U+E007F tag characters (invisible ASCII: the "ASCII smuggling" of prompt
///   injection), U+E0100–U+E01EF supplementary variation selectors (used to hide bytes after
///   a visible character).
///
/// Not in the set: U+FE00–U+FE0F (variation selectors that emoji need) and ordinary
/// whitespace (space, `\t`, `\n`).
pub const fn is_forbidden(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}'
        | '\u{b}'..='\u{1f}'
        | '\u{7f}'..='\u{9f}'
        | '\u{ad}'
        | '\u{34f}'
        | '\u{61c}'
        | '\u{115f}'..='\u{1160}'
        | '\u{17b4}'..='\u{17b5}'
        | '\u{180e}'
        | '\u{200b}'..='\u{200f}'
        | '\u{2028}'..='\u{2029}'
        | '\u{202a}'..='\u{202e}'
        | '\u{2060}'..='\u{206f}'
        | '\u{3164}'
        | '\u{feff}'
        | '\u{ffa0}'
        | '\u{fff9}'..='\u{fffb}'
        | '\u{1d173}'..='\u{1d17a}'
        | '\u{e0000}'..='\u{e007f}'
        | '\u{e0100}'..='\u{e01ef}')
}

/// The first forbidden character of `s` ([`is_forbidden`]): its index in characters, and it.
pub fn find_forbidden(s: &str) -> Option<(usize, char)> {
    s.chars().enumerate().find(|(_, c)| is_forbidden(*c))
}

/// A forbidden character found by [`check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forbidden {
    /// The character.
    pub ch: char,
    /// Its position in the text, in characters.
    pub index: usize,
}

impl std::fmt::Display for Forbidden {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "U+{:04X} at character {}", u32::from(self.ch), self.index)
    }
}

/// Ok when `s` holds no forbidden character ([`is_forbidden`]).
pub fn check(s: &str) -> Result<(), Forbidden> {
    match find_forbidden(s) {
        None => Ok(()),
        Some((index, ch)) => Err(Forbidden { ch, index }),
    }
}

/// `s` safe to write to a terminal: every forbidden character ([`is_forbidden`]) becomes its
/// visible escape `\u{…}` (lowercase hex, as Rust writes it); `\n` and `\t` stay. Borrowed when
/// there is nothing to escape. A backslash is not escaped: the escape only has to be inert
/// and visible, not reversible.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_forbidden) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if is_forbidden(c) {
            // Writing to a String cannot fail.
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// JSON text (`serde_json` output) safe to write to a terminal or hand to a model: every
/// forbidden character becomes its JSON escape `\uXXXX` (a surrogate pair above U+FFFF), so
/// the text is still the same JSON (`serde_json` already escapes C0 controls; C1, bidi and
/// invisible characters it writes raw). Only apply it to JSON: a forbidden character can only
/// stand inside a string there, where `\uXXXX` means the same character.
pub fn escape_json(json: &str) -> Cow<'_, str> {
    if !json.chars().any(is_forbidden) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    let mut units = [0u16; 2];
    for c in json.chars() {
        if is_forbidden(c) {
            for u in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{:04x}", u);
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Every string and object key in `v` [`escape`]d, in place: for JSON values handed to a model
/// as values (MCP structured content, tool definitions) rather than as text. Iterative, so
/// depth costs no stack; the walk visits each value once.
pub fn escape_value(v: &mut serde_json::Value) {
    use serde_json::Value;
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) => {
                if let Cow::Owned(e) = escape(s) {
                    *s = e;
                }
            }
            Value::Array(a) => stack.extend(a.iter_mut()),
            Value::Object(o) => {
                if o.keys().any(|k| k.chars().any(is_forbidden)) {
                    let old = std::mem::take(o);
                    *o = old
                        .into_iter()
                        .map(|(k, x)| (escape(&k).into_owned(), x))
                        .collect();
                }
                stack.extend(o.values_mut());
            }
            _ => {}
        }
    }
}

/// `s` cut to at most `max` bytes (at a character boundary), followed by `… (N bytes more)`
/// when anything was cut. Borrowed when `s` fits.
pub fn cap(s: &str, max: usize) -> Cow<'_, str> {
    if s.len() <= max {
        return Cow::Borrowed(s);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}… ({} bytes more)", &s[..end], s.len() - end))
}

/// Remote free text as a client shows it: capped at [`MAX_SHOWN_REMOTE_TEXT`], then
/// [`escape`]d. The one function the CLI and the MCP server put every refusal detail, stderr
/// and remote error message through.
pub fn shown(s: &str) -> String {
    escape(&cap(s, MAX_SHOWN_REMOTE_TEXT)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_set_holds_controls_bidi_and_invisibles_but_not_text() {
        for c in [
            '\u{0}',
            '\u{1b}',
            '\r',
            '\u{7f}',
            '\u{9b}',
            '\u{ad}',
            '\u{200b}',
            '\u{200d}',
            '\u{200f}',
            '\u{202a}',
            '\u{202e}',
            '\u{2060}',
            '\u{2064}',
            '\u{2066}',
            '\u{2069}',
            '\u{feff}',
            '\u{e0001}',
            '\u{e0041}',
            '\u{e007f}',
            '\u{2028}',
        ] {
            assert!(is_forbidden(c), "U+{:04X}", u32::from(c));
        }
        for c in [
            'a', ' ', '\n', '\t', 'é', 'ß', '中', '🦀', '\u{fe0f}', '\u{a0}', 'א',
        ] {
            assert!(!is_forbidden(c), "U+{:04X}", u32::from(c));
        }
    }

    #[test]
    fn check_names_the_code_point_and_position() {
        let e = check("abc\u{202e}def").unwrap_err();
        assert_eq!((e.ch, e.index), ('\u{202e}', 3));
        assert_eq!(e.to_string(), "U+202E at character 3");
        assert!(check("multi\nline\ttext, ünïcödé 🦀").is_ok());
    }

    #[test]
    fn escape_leaves_no_escape_byte_and_keeps_text() {
        let hostile = "ok\u{1b}]52;c;ZXZpbA==\u{7}\u{1b}[2J\u{9b}31m\r\u{202e}txt.exe\u{e0041}\nnext\tcol";
        let out = escape(hostile);
        assert!(!out.chars().any(is_forbidden), "{out}");
        assert!(!out.contains('\u{1b}'));
        assert_eq!(
            out,
            "ok\\u{1b}]52;c;ZXZpbA==\\u{7}\\u{1b}[2J\\u{9b}31m\\u{d}\\u{202e}txt.exe\\u{e0041}\nnext\tcol"
        );
        assert!(matches!(escape("plain"), Cow::Borrowed("plain")));
    }

    #[test]
    fn escape_json_stays_the_same_json() {
        let v = serde_json::json!({"d": "a\u{202e}b\u{9b}c\u{e0041}d\u{1b}"});
        let text = serde_json::to_string(&v).unwrap();
        let safe = escape_json(&text);
        assert!(!safe.chars().any(is_forbidden), "{safe}");
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn escape_value_reaches_every_string_and_key() {
        let mut v = serde_json::json!({"a\u{202e}": ["x\u{1b}y", {"k": "\u{e0041}"}], "n": 1});
        escape_value(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"a\\u{202e}": ["x\\u{1b}y", {"k": "\\u{e0041}"}], "n": 1})
        );
    }

    #[test]
    fn cap_cuts_at_a_boundary_and_says_how_much() {
        assert_eq!(cap("short", 10), "short");
        assert_eq!(cap("abcdef", 4), "abcd… (2 bytes more)");
        // 'é' is 2 bytes: a cut inside it moves back.
        assert_eq!(cap("aé", 2), "a… (2 bytes more)");
        let big = "x".repeat(MAX_SHOWN_REMOTE_TEXT + 100);
        assert!(shown(&big).ends_with("… (100 bytes more)"));
    }
}
