//! # atr-tool-macros
//!
//! The procedural macros of [`atr-tool`](../atr_tool/index.html): [`macro@tool`], which turns a
//! typed function into an atr tool, and [`serve!`]/[`main!`], which give a binary the tool
//! runtime's `main`. Use them through `atr-tool` (`#[atr_tool::tool]`, `atr_tool::serve!`): the
//! code they generate names `::atr_tool`, and the documentation of every option lives there.
//!
//! Everything a macro can check without types is checked here, with an error at the offending
//! token: the attribute's keys and values (tool name, tags, side effects, cost), the function's
//! shape (no generics, no receiver, plain parameter names) and its parameter types (no
//! references, raw pointers, `impl Trait`, trait objects or function pointers). What needs types
//! (every parameter implements `schemars::JsonSchema` and `serde::de::DeserializeOwned`, the
//! output `schemars::JsonSchema` and `serde::Serialize`) is checked by trait bounds whose
//! messages name the parameter.
#![deny(missing_docs)]

use proc_macro::TokenStream;

mod args;
mod docs;
mod expand;
mod serve;

/// `snake_case` → `CamelCase`: the tool struct of `fn add` is `AddTool`.
pub(crate) fn expand_camel(name: &str) -> String {
    expand::camel(name)
}

/// Makes an atr tool of a function: `#[atr_tool::tool(name = "...", tags = [...], ...)]`.
///
/// See the `atr-tool` crate for the options and what is generated.
#[proc_macro_attribute]
pub fn tool(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item = proc_macro2::TokenStream::from(item);
    match expand::tool(attr.into(), item.clone()) {
        Ok(out) => out.into(),
        Err(e) => {
            // Keep the function itself, so its callers don't add errors of their own.
            let mut out = item;
            out.extend(e.into_compile_error());
            out.into()
        }
    }
}

/// Generates `fn main` serving the listed tools: `atr_tool::serve![add, sub]`.
///
/// Each entry is the path of a function marked `#[atr_tool::tool]`.
#[proc_macro]
pub fn serve(input: TokenStream) -> TokenStream {
    serve::serve(input.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// The same as [`serve!`], spelled for a binary with one tool: `atr_tool::main!(add)`.
#[proc_macro]
pub fn main(input: TokenStream) -> TokenStream {
    serve(input)
}
