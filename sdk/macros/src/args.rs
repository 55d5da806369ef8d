//! The `#[tool(...)]` attribute's options, parsed and checked.

use atr_protocol::limits::MAX_TAGS;
use atr_protocol::spec::{Cost, SideEffect};
use atr_protocol::validate;
use proc_macro2::{Span, TokenStream, TokenTree};
use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, Lit, LitInt, LitStr, Token};

/// Keys the attribute takes, for the "unknown key" message.
const KEYS: &str = "name, version, description, tags, side_effects, cost, timeout_ms, memory_mb, cpus, pids, \
                    max_output_bytes, homepage, license, default(...), example(...)";

// The rules below are the protocol's own (`atr_protocol::validate`, `spec`, `limits`): a
// name, tag, side effect or cost the macro accepts is one a node accepts, and the reverse.

/// Side effects a manifest accepts.
const SIDE_EFFECTS: &[&str] = SideEffect::ACCEPTED;

/// Costs a manifest accepts.
const COSTS: &[&str] = Cost::ACCEPTED;

/// One `example(input = ..., output = ...)`: JSON written as `serde_json::json!` input.
pub(crate) struct ExampleArg {
    pub(crate) input: TokenStream,
    pub(crate) output: TokenStream,
}

/// A `default(name = expr)` or `default(name)` entry.
pub(crate) struct DefaultArg {
    pub(crate) param: Ident,
    /// `None`: `Default::default()`.
    pub(crate) value: Option<Expr>,
}

/// Everything `#[tool(...)]` can say.
#[derive(Default)]
pub(crate) struct ToolArgs {
    pub(crate) name: Option<LitStr>,
    pub(crate) version: Option<LitStr>,
    pub(crate) description: Option<LitStr>,
    pub(crate) tags: Vec<LitStr>,
    pub(crate) side_effects: Vec<LitStr>,
    pub(crate) cost: Option<LitStr>,
    pub(crate) timeout_ms: Option<LitInt>,
    pub(crate) memory_mb: Option<LitInt>,
    pub(crate) cpus: Option<Lit>,
    pub(crate) pids: Option<LitInt>,
    pub(crate) max_output_bytes: Option<LitInt>,
    pub(crate) homepage: Option<LitStr>,
    pub(crate) license: Option<LitStr>,
    pub(crate) defaults: Vec<DefaultArg>,
    pub(crate) examples: Vec<ExampleArg>,
}

impl ToolArgs {
    pub(crate) fn parse(attr: TokenStream) -> syn::Result<Self> {
        let mut args = ToolArgs::default();
        let parser = syn::meta::parser(|meta| {
            let key = meta.path.get_ident().map(Ident::to_string).unwrap_or_default();
            match key.as_str() {
                "name" => set(&mut args.name, &meta, check_name)?,
                "version" => set(&mut args.version, &meta, check_version)?,
                "description" => set(&mut args.description, &meta, |s: &LitStr| {
                    if s.value().trim().is_empty() {
                        Err(syn::Error::new(s.span(), "the description must not be empty"))
                    } else {
                        Ok(())
                    }
                })?,
                "tags" => {
                    let list = str_list(meta.value()?)?;
                    for t in &list {
                        check_tag(t)?;
                    }
                    if list.len() > MAX_TAGS {
                        return Err(meta.error(format!("at most {MAX_TAGS} tags")));
                    }
                    args.tags = list;
                }
                "side_effects" => {
                    let list = str_list(meta.value()?)?;
                    for s in &list {
                        one_of(
                            s,
                            s.value().parse::<SideEffect>().is_ok(),
                            SIDE_EFFECTS,
                            "side effect",
                        )?;
                    }
                    args.side_effects = list;
                }
                "cost" => set(&mut args.cost, &meta, |s: &LitStr| {
                    one_of(s, s.value().parse::<Cost>().is_ok(), COSTS, "cost")
                })?,
                "timeout_ms" => set(&mut args.timeout_ms, &meta, positive)?,
                "memory_mb" => set(&mut args.memory_mb, &meta, positive)?,
                "pids" => set(&mut args.pids, &meta, positive)?,
                "max_output_bytes" => set(&mut args.max_output_bytes, &meta, positive)?,
                "cpus" => {
                    let lit: Lit = meta.value()?.parse()?;
                    let ok = match &lit {
                        Lit::Float(f) => f.base10_parse::<f64>().is_ok_and(|c| c > 0.0),
                        Lit::Int(i) => i.base10_parse::<u32>().is_ok_and(|c| c > 0),
                        _ => false,
                    };
                    if !ok {
                        return Err(syn::Error::new(
                            lit.span(),
                            "`cpus` is a positive number of cores, e.g. `cpus = 0.5`",
                        ));
                    }
                    args.cpus = Some(lit);
                }
                "homepage" => set(&mut args.homepage, &meta, |s: &LitStr| {
                    let v = s.value();
                    if v.starts_with("https://") || v.starts_with("http://") {
                        Ok(())
                    } else {
                        Err(syn::Error::new(s.span(), "the homepage must be an http(s) URL"))
                    }
                })?,
                "license" => set(&mut args.license, &meta, |_: &LitStr| Ok(()))?,
                "default" => meta.parse_nested_meta(|d| {
                    let Some(param) = d.path.get_ident().cloned() else {
                        return Err(d.error("expected a parameter name, e.g. `default(b = 1.0)`"));
                    };
                    let value = if d.input.peek(Token![=]) {
                        Some(d.value()?.parse::<Expr>()?)
                    } else {
                        None
                    };
                    args.defaults.push(DefaultArg { param, value });
                    Ok(())
                })?,
                "example" => {
                    let span = meta.path.get_ident().map_or_else(Span::call_site, Ident::span);
                    let (mut input, mut output) = (None, None);
                    meta.parse_nested_meta(|e| {
                        if e.path.is_ident("input") {
                            input = Some(json_tokens(e.value()?)?);
                        } else if e.path.is_ident("output") {
                            output = Some(json_tokens(e.value()?)?);
                        } else {
                            return Err(e.error("expected `input = <JSON>` or `output = <JSON>`"));
                        }
                        Ok(())
                    })?;
                    match (input, output) {
                        (Some(input), Some(output)) => args.examples.push(ExampleArg { input, output }),
                        _ => {
                            return Err(syn::Error::new(
                                span,
                                "an example needs both: `example(input = {\"a\": 1}, output = 2)`",
                            ));
                        }
                    }
                }
                _ => return Err(meta.error(format!("unknown `tool` option; expected one of: {KEYS}"))),
            }
            Ok(())
        });
        parser.parse2(attr)?;
        Ok(args)
    }
}

/// Parses `= value` into `slot` once, checking it.
fn set<T: syn::parse::Parse>(
    slot: &mut Option<T>,
    meta: &syn::meta::ParseNestedMeta<'_>,
    check: impl Fn(&T) -> syn::Result<()>,
) -> syn::Result<()> {
    if slot.is_some() {
        return Err(meta.error("this option is given twice"));
    }
    let v: T = meta.value()?.parse()?;
    check(&v)?;
    *slot = Some(v);
    Ok(())
}

fn str_list(input: ParseStream<'_>) -> syn::Result<Vec<LitStr>> {
    let content;
    syn::bracketed!(content in input);
    Ok(Punctuated::<LitStr, Token![,]>::parse_terminated(&content)?
        .into_iter()
        .collect())
}

/// The tokens of one JSON value, up to the next top-level comma.
fn json_tokens(input: ParseStream<'_>) -> syn::Result<TokenStream> {
    let mut out = TokenStream::new();
    while !input.is_empty() && !input.peek(Token![,]) {
        out.extend([input.parse::<TokenTree>()?]);
    }
    if out.is_empty() {
        return Err(input.error("expected a JSON value"));
    }
    Ok(out)
}

fn positive(i: &LitInt) -> syn::Result<()> {
    match i.base10_parse::<u64>() {
        Ok(v) if v > 0 => Ok(()),
        _ => Err(syn::Error::new(i.span(), "expected a positive integer")),
    }
}

/// `Ok` when `accepted` (the protocol's parse succeeded), else an error listing `allowed`.
fn one_of(s: &LitStr, accepted: bool, allowed: &[&str], what: &str) -> syn::Result<()> {
    if accepted {
        Ok(())
    } else {
        Err(syn::Error::new(
            s.span(),
            format!(
                "unknown {what} `{}`; expected one of: {}",
                s.value(),
                allowed.join(", ")
            ),
        ))
    }
}

/// `^[a-zA-Z0-9_-]{1,64}$`: [`validate::check_name`] (a legal OpenAI and Anthropic function
/// name).
pub(crate) fn name_is_valid(name: &str) -> bool {
    validate::check_name(name).is_ok()
}

fn check_name(s: &LitStr) -> syn::Result<()> {
    if name_is_valid(&s.value()) {
        Ok(())
    } else {
        Err(syn::Error::new(
            s.span(),
            "a tool name must match ^[a-zA-Z0-9_-]{1,64}$ (letters, digits, `_` and `-`: a legal OpenAI, \
             Anthropic, MCP and Gemini name)",
        ))
    }
}

/// `MAJOR.MINOR.PATCH`, optionally with `-pre` and `+build` (the node checks the rest).
fn check_version(s: &LitStr) -> syn::Result<()> {
    let v = s.value();
    let core = v.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    let numeric = |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if parts.len() == 3 && parts.iter().all(numeric) {
        Ok(())
    } else {
        Err(syn::Error::new(
            s.span(),
            "a version is semantic: `MAJOR.MINOR.PATCH` (default: the crate's version)",
        ))
    }
}

/// `^[a-z0-9][a-z0-9-]{0,31}$`: [`validate::check_tag`].
fn check_tag(s: &LitStr) -> syn::Result<()> {
    if validate::check_tag(&s.value()).is_ok() {
        Ok(())
    } else {
        Err(syn::Error::new(
            s.span(),
            "a tag must match ^[a-z0-9][a-z0-9-]{0,31}$ (lowercase letters, digits and `-`)",
        ))
    }
}
