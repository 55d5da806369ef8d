//! `text_stats`: counts characters, bytes, words, lines, sentences and
//! paragraphs of a text, and lists its most frequent words.
//!
//! One linear pass over the text plus a sort of the distinct words; the text
//! is bounded by the input cap, `top` by [`MAX_TOP`], and each listed word by
//! [`MAX_WORD_CHARS`], so the output stays small whatever the input.
//!
//! Words are runs of letters and digits (apostrophes inside a word are kept:
//! `don't`), compared lowercased. A sentence ends at `.`, `!` or `?` followed
//! by whitespace or the end; trailing words without a terminator count as one
//! more sentence. Paragraphs are separated by blank lines.

use std::collections::HashMap;
use std::process::ExitCode;

use atr_example_tools::{ToolError, parse, run};
use serde::Deserialize;
use serde_json::{Value, json};

/// Most entries in `top_words`.
const MAX_TOP: usize = 50;
/// Default number of entries in `top_words`.
const DEFAULT_TOP: usize = 10;
/// Longest word shown in `top_words`, in characters; longer words are cut
/// (they are still counted whole).
const MAX_WORD_CHARS: usize = 64;

fn main() -> ExitCode {
    run(text_stats)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    text: String,
    #[serde(default)]
    top: Option<usize>,
}

fn text_stats(input: Value) -> Result<Value, ToolError> {
    let input: Input = parse(input)?;
    let top = input.top.unwrap_or(DEFAULT_TOP);
    if top > MAX_TOP {
        return Err(ToolError::bad_input(
            "invalid_input",
            format!("top {top} is over the maximum of {MAX_TOP}"),
        ));
    }
    Ok(stats(&input.text, top))
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric()
}

fn stats(text: &str, top: usize) -> Value {
    let mut counts: HashMap<String, u64> = HashMap::new();
    let mut words = 0u64;
    let mut sentences = 0u64;
    let mut words_in_sentence = false;
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if is_word_char(c) {
            let start = i;
            while i < chars.len()
                && (is_word_char(chars[i])
                    || (chars[i] == '\'' && chars.get(i + 1).is_some_and(|n| is_word_char(*n))))
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().flat_map(|c| c.to_lowercase()).collect();
            *counts.entry(word).or_insert(0) += 1;
            words += 1;
            words_in_sentence = true;
            continue;
        }
        if matches!(c, '.' | '!' | '?') {
            while i < chars.len() && matches!(chars[i], '.' | '!' | '?') {
                i += 1;
            }
            let at_boundary = chars.get(i).is_none_or(|n| n.is_whitespace());
            if at_boundary && words_in_sentence {
                sentences += 1;
                words_in_sentence = false;
            }
            continue;
        }
        i += 1;
    }
    if words_in_sentence {
        sentences += 1;
    }
    let paragraphs = text
        .split("\n\n")
        .flat_map(|p| p.split("\r\n\r\n"))
        .filter(|p| !p.trim().is_empty())
        .count();
    let unique_words = counts.len();
    let mut ranked: Vec<(String, u64)> = counts.into_iter().collect();
    // Most frequent first; ties alphabetically, so the output is deterministic.
    ranked.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let top_words: Vec<Value> = ranked
        .into_iter()
        .take(top)
        .map(|(w, n)| json!({ "word": w.chars().take(MAX_WORD_CHARS).collect::<String>(), "count": n }))
        .collect();
    json!({
        "characters": chars.len(),
        "bytes": text.len(),
        "words": words,
        "unique_words": unique_words,
        "lines": text.lines().count(),
        "sentences": sentences,
        "paragraphs": paragraphs,
        "top_words": top_words,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_everything() {
        let text = "The cat sat. The cat ran!\nDon't stop... the end\n\nNew paragraph? Yes";
        let out = text_stats(json!({"text": text, "top": 3})).unwrap();
        assert_eq!(
            out,
            json!({
                "characters": 67, "bytes": 67, "words": 13, "unique_words": 10, "lines": 4,
                "sentences": 5, "paragraphs": 2,
                "top_words": [{"word": "the", "count": 3}, {"word": "cat", "count": 2}, {"word": "don't", "count": 1}],
            })
        );
    }

    #[test]
    fn unicode_and_edge_cases() {
        let out = text_stats(json!({"text": "Grüße, Welt! 3.14 is π."})).unwrap();
        assert_eq!(out["characters"], 23);
        assert_eq!(out["bytes"], 26);
        assert_eq!(out["words"], 6);
        assert_eq!(out["sentences"], 2);
        let empty = text_stats(json!({"text": ""})).unwrap();
        assert_eq!(empty["words"], 0);
        assert_eq!(empty["lines"], 0);
        assert_eq!(empty["sentences"], 0);
        assert_eq!(empty["paragraphs"], 0);
        assert_eq!(empty["top_words"], json!([]));
    }

    #[test]
    fn output_is_bounded() {
        let long_word = "x".repeat(10_000);
        let text: String = (0..5_000).map(|i| format!("w{i} ")).collect::<String>() + &long_word;
        let out = text_stats(json!({"text": text, "top": 50})).unwrap();
        assert_eq!(out["top_words"].as_array().unwrap().len(), 50);
        assert_eq!(out["unique_words"], 5_001);
        let out = text_stats(json!({"text": long_word})).unwrap();
        assert_eq!(
            out["top_words"][0]["word"].as_str().unwrap().len(),
            MAX_WORD_CHARS
        );
        assert_eq!(out["top_words"][0]["count"], 1);
        assert_eq!(
            text_stats(json!({"text": "a", "top": 51})).unwrap_err().code(),
            "invalid_input"
        );
        assert_eq!(
            text_stats(json!({"text": 1})).unwrap_err().code(),
            "invalid_input"
        );
    }
}
