//! The function's doc comment: the tool description and the parameter descriptions.
//!
//! The description is the first paragraph. Parameters are described in a rustdoc-style
//! `# Arguments` section (Rust allows no doc comments on parameters):
//!
//! ```text
//! /// Adds two numbers.
//! ///
//! /// # Arguments
//! ///
//! /// * `a` - The first number.
//! /// * `b` - The second number; a long text may go on
//! ///   over several lines.
//! ```
//!
//! The heading may also be `# Parameters`; items start with `*` or `-`, the name may be in
//! backticks, and ` - ` or `:` separates it from its text.

use proc_macro2::Span;
use syn::{Attribute, Expr, ExprLit, Lit, Meta};

/// One documented parameter.
pub(crate) struct ArgDoc {
    pub(crate) name: String,
    pub(crate) text: String,
    /// Where the doc comment is, for errors.
    pub(crate) span: Span,
}

/// What the doc comment says.
pub(crate) struct Docs {
    /// The first paragraph, its lines joined by spaces; empty without a doc comment.
    pub(crate) summary: String,
    /// The `# Arguments` items, in order.
    pub(crate) args: Vec<ArgDoc>,
}

pub(crate) fn parse(attrs: &[Attribute]) -> syn::Result<Docs> {
    let mut lines: Vec<(String, Span)> = Vec::new();
    for attr in attrs {
        if !attr.path().is_ident("doc") {
            continue;
        }
        if let Meta::NameValue(nv) = &attr.meta
            && let Expr::Lit(ExprLit { lit: Lit::Str(s), .. }) = &nv.value
        {
            // `split`, not `lines`: an empty `///` line is `#[doc = ""]`, a paragraph break.
            for line in s.value().split('\n') {
                let line = line.strip_prefix(' ').unwrap_or(line);
                lines.push((line.trim_end().to_owned(), s.span()));
            }
        }
    }

    let summary = lines
        .iter()
        .map(|(l, _)| l.trim())
        .skip_while(|l| l.is_empty())
        .take_while(|l| !l.is_empty() && !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join(" ");

    let mut args: Vec<ArgDoc> = Vec::new();
    let mut in_section = false;
    let mut fence = false;
    for (line, span) in &lines {
        let t = line.trim();
        if t.starts_with("```") {
            fence = !fence;
            continue;
        }
        if fence {
            continue;
        }
        if let Some(heading) = t.strip_prefix('#') {
            let heading = heading.trim_start_matches('#').trim().to_ascii_lowercase();
            in_section = matches!(heading.as_str(), "arguments" | "parameters");
            continue;
        }
        if !in_section {
            continue;
        }
        if let Some(item) = t.strip_prefix("* ").or_else(|| t.strip_prefix("- ")) {
            let item = item.trim_start();
            let (name, rest) = match item.strip_prefix('`') {
                Some(r) => match r.split_once('`') {
                    Some((n, rest)) => (n, rest),
                    None => (r, ""),
                },
                None => {
                    let end = item.find([' ', ':']).unwrap_or(item.len());
                    item.split_at(end)
                }
            };
            let text = rest
                .trim_start()
                .trim_start_matches(['-', ':', '\u{2013}', '\u{2014}'])
                .trim();
            if let Some(prev) = args.iter().find(|a| a.name == name) {
                return Err(syn::Error::new(
                    *span,
                    format!("`# Arguments` documents `{}` twice", prev.name),
                ));
            }
            args.push(ArgDoc {
                name: name.trim().to_owned(),
                text: text.to_owned(),
                span: *span,
            });
        } else if !t.is_empty()
            && let Some(last) = args.last_mut()
        {
            if !last.text.is_empty() {
                last.text.push(' ');
            }
            last.text.push_str(t);
        }
    }
    Ok(Docs { summary, args })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(src: &str) -> Docs {
        let attrs: Vec<Attribute> = src.lines().map(|l| syn::parse_quote!(#[doc = #l])).collect();
        parse(&attrs).unwrap()
    }

    #[test]
    fn summary_is_the_first_paragraph() {
        let d = docs(" Combine a and b\n under a mode.\n\n More text.");
        assert_eq!(d.summary, "Combine a and b under a mode.");
        assert!(d.args.is_empty());
    }

    #[test]
    fn arguments_section_in_its_spellings() {
        let d = docs(
            " Sum.\n\n # Arguments\n\n * `a` - The first\n   number.\n - b: Second.\n * `c` – dash.\n\n # Errors\n * `x` - not an argument",
        );
        let got: Vec<(&str, &str)> = d
            .args
            .iter()
            .map(|a| (a.name.as_str(), a.text.as_str()))
            .collect();
        assert_eq!(
            got,
            [("a", "The first number."), ("b", "Second."), ("c", "dash.")]
        );
    }
}
