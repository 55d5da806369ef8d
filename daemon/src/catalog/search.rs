//! Full-text search over specs: an inverted index scored with BM25.
//!
//! A spec is one document made of three fields with weights: its name (×3),
//! its tags (×2) and its description (×1). A term's frequency in a document
//! is the weighted sum of its counts in the fields, and the document length
//! is the weighted sum of the fields' token counts (a simplified BM25F).
//! Scores use BM25 with `k1` = [`K1`] and `b` = [`B`].
//!
//! Tokens are runs of ASCII letters and digits, lowercased; everything else
//! (`_`, `-`, spaces, punctuation, non-ASCII) separates tokens, so
//! `web_search` is `web` and `search`.
//!
//! The index only grows: specs are never deleted (revoked ones stay known),
//! so documents get dense `u32` numbers and postings are `(doc, tf)` pairs,
//! 8 bytes each.

use std::collections::HashMap;

use atr_protocol::ToolId;

/// BM25 term-frequency saturation.
pub(super) const K1: f32 = 1.2;
/// BM25 length normalization.
pub(super) const B: f32 = 0.75;
/// Weight of a name token.
const NAME_WEIGHT: u32 = 3;
/// Weight of a tag token.
const TAG_WEIGHT: u32 = 2;
/// Weight of a description token.
const DESCRIPTION_WEIGHT: u32 = 1;
/// Longest token indexed; longer runs are noise (hashes, base64) and skipped.
const MAX_TOKEN_LEN: usize = 48;
/// Longest query considered, in bytes; the rest is ignored.
pub const MAX_QUERY_BYTES: usize = 256;
/// Most distinct query terms considered; the rest are ignored.
pub const MAX_QUERY_TERMS: usize = 32;

/// The lowercase ASCII alphanumeric tokens of `text`.
fn tokens(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| !t.is_empty() && t.len() <= MAX_TOKEN_LEN)
        .map(str::to_ascii_lowercase)
}

/// The inverted index.
#[derive(Debug, Default)]
pub(super) struct TextIndex {
    /// Document number → spec id.
    docs: Vec<ToolId>,
    /// Document number → weighted length.
    doc_len: Vec<u32>,
    /// Sum of `doc_len`.
    total_len: u64,
    /// Term → `(document number, weighted term frequency)`, in document order.
    postings: HashMap<Box<str>, Vec<(u32, u32)>>,
}

impl TextIndex {
    /// Adds a spec as a new document. The caller adds each id once.
    pub(super) fn add(&mut self, id: ToolId, spec: &super::Summary) {
        let Ok(doc) = u32::try_from(self.docs.len()) else {
            // Four billion documents: far beyond the store's caps.
            return;
        };
        let mut tf: HashMap<String, u32> = HashMap::new();
        let mut len = 0u32;
        let mut add_field = |text: &str, weight: u32| {
            for t in tokens(text) {
                *tf.entry(t).or_default() += weight;
                len = len.saturating_add(weight);
            }
        };
        add_field(&spec.name, NAME_WEIGHT);
        for tag in &spec.tags {
            add_field(tag, TAG_WEIGHT);
        }
        add_field(&spec.description, DESCRIPTION_WEIGHT);
        for (term, f) in tf {
            self.postings
                .entry(term.into_boxed_str())
                .or_default()
                .push((doc, f));
        }
        self.docs.push(id);
        self.doc_len.push(len);
        self.total_len += u64::from(len);
    }

    /// Documents indexed.
    pub(super) fn len(&self) -> u32 {
        // `add` never lets the count pass `u32::MAX`.
        u32::try_from(self.docs.len()).unwrap_or(u32::MAX)
    }

    /// The BM25 score of every document matching at least one term of
    /// `query`, unordered. The query is cut to [`MAX_QUERY_BYTES`] and
    /// [`MAX_QUERY_TERMS`] distinct terms.
    ///
    /// Only the first `upto` documents are scored, with the statistics (count, lengths,
    /// document frequencies) of those documents alone: the index only grows, so a later
    /// call with the same `upto` gives the same scores however many documents were added
    /// since (what search paging relies on). `upto` is capped at [`Self::len`].
    pub(super) fn score(&self, query: &str, upto: u32) -> Vec<(f32, ToolId)> {
        let n = (upto as usize).min(self.docs.len());
        if n == 0 {
            return Vec::new();
        }
        let mut terms: Vec<String> = Vec::new();
        for t in tokens(truncate(query, MAX_QUERY_BYTES)) {
            if !terms.contains(&t) {
                terms.push(t);
                if terms.len() == MAX_QUERY_TERMS {
                    break;
                }
            }
        }
        let total_len = if n == self.docs.len() {
            self.total_len
        } else {
            self.doc_len[..n].iter().map(|&l| u64::from(l)).sum()
        };
        let avg_len = total_len as f32 / n as f32;
        let mut scores: HashMap<u32, f32> = HashMap::new();
        for term in &terms {
            let Some(postings) = self.postings.get(term.as_str()) else {
                continue;
            };
            // Postings are in document order.
            let postings = &postings[..postings.partition_point(|&(doc, _)| (doc as usize) < n)];
            if postings.is_empty() {
                continue;
            }
            let df = postings.len() as f32;
            let idf = (1.0 + (n as f32 - df + 0.5) / (df + 0.5)).ln();
            for &(doc, tf) in postings {
                let tf = tf as f32;
                let dl = self.doc_len[doc as usize] as f32;
                let norm = K1 * (1.0 - B + B * dl / avg_len.max(f32::EPSILON));
                *scores.entry(doc).or_default() += idf * tf * (K1 + 1.0) / (tf + norm);
            }
        }
        scores
            .into_iter()
            .map(|(doc, s)| (s, self.docs[doc as usize]))
            .collect()
    }
}

/// `s` cut to at most `max` bytes, on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_splits_and_lowercases() {
        let t: Vec<String> = tokens("Web_Search-v2 über, fetch!").collect();
        assert_eq!(t, ["web", "search", "v2", "ber", "fetch"]);
        assert_eq!(truncate("aé", 2), "a");
    }
}
