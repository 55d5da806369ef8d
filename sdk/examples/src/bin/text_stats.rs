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
//!
//! Written with the atr-tool SDK: the schemas and `manifests/text_stats.toml`
//! (`text_stats --manifest`) are derived from the types below (`tests/sdk_manifests.rs`
//! checks it).

use std::collections::HashMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Most entries in `top_words`.
const MAX_TOP: usize = 50;
/// Default number of entries in `top_words`.
const DEFAULT_TOP: usize = 10;
/// Longest word shown in `top_words`, in characters; longer words are cut
/// (they are still counted whole).
const MAX_WORD_CHARS: usize = 64;

/// How many of the most frequent words to list: 0 to [`MAX_TOP`].
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
struct Top(#[schemars(range(max = 50))] u8);

/// A word and how often it occurs.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
struct WordCount {
    #[schemars(length(max = 64))]
    word: String,
    #[schemars(range(min = 1))]
    count: u64,
}

/// What `text_stats` measures.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
struct Stats {
    /// Unicode scalar values.
    characters: u64,
    /// UTF-8 bytes.
    bytes: u64,
    words: u64,
    unique_words: u64,
    lines: u64,
    sentences: u64,
    paragraphs: u64,
    #[schemars(length(max = 50))]
    top_words: Vec<WordCount>,
}

/// Count the characters, bytes, words, distinct words, lines, sentences and paragraphs of a
/// text, and list its most frequent words (lowercased; ties in alphabetical order; words
/// longer than 64 characters are shown cut).
///
/// # Arguments
///
/// * `text` - The text to measure.
/// * `top` - How many of the most frequent words to list.
#[atr_tool::tool(
    version = "1.0.0",
    tags = ["text", "nlp", "demo"],
    cost = "free",
    homepage = "https://github.com/atr-net/atr",
    timeout_ms = 5000,
    memory_mb = 64,
    cpus = 0.5,
    pids = 4,
    max_output_bytes = 65536,
    default(top = Top(DEFAULT_TOP as u8)),
    example(
        input = {"text": "The cat sat. The cat ran!", "top": 2},
        output = {"characters": 25, "bytes": 25, "words": 6, "unique_words": 4, "lines": 1,
                  "sentences": 2, "paragraphs": 1,
                  "top_words": [{"word": "cat", "count": 2}, {"word": "the", "count": 2}]}
    ),
)]
fn text_stats(text: String, top: Top) -> Stats {
    stats(&text, usize::from(top.0).min(MAX_TOP))
}

atr_tool::main!(text_stats);

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric()
}

fn stats(text: &str, top: usize) -> Stats {
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
    let top_words = ranked
        .into_iter()
        .take(top)
        .map(|(w, count)| WordCount {
            word: w.chars().take(MAX_WORD_CHARS).collect(),
            count,
        })
        .collect();
    Stats {
        characters: chars.len() as u64,
        bytes: text.len() as u64,
        words,
        unique_words: unique_words as u64,
        lines: text.lines().count() as u64,
        sentences,
        paragraphs: paragraphs as u64,
        top_words,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atr_tool::{Tool, ToolError};
    use serde_json::{Value, json};

    fn text_stats(input: Value) -> Result<Value, ToolError> {
        TextStatsTool.call(input)
    }

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

    #[test]
    fn is_a_valid_tool() {
        atr_tool::testing::assert_valid(&TextStatsTool);
    }
}
