//! `serve![add, sub]`: a `main` that runs the listed tools.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::ext::IdentExt;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Path, Token};

pub(crate) fn serve(input: TokenStream) -> syn::Result<TokenStream> {
    let paths = Punctuated::<Path, Token![,]>::parse_terminated.parse2(input)?;
    if paths.is_empty() {
        return Err(syn::Error::new(
            proc_macro2::Span::call_site(),
            "name at least one tool function: `atr_tool::serve![add, sub]`",
        ));
    }
    let tools = paths.iter().map(|p| {
        let mut p = p.clone();
        if let Some(last) = p.segments.last_mut() {
            let name = last.ident.unraw().to_string();
            last.ident = format_ident!("{}Tool", crate::expand_camel(&name), span = last.ident.span());
        }
        quote!(&#p as &dyn ::atr_tool::Tool)
    });
    Ok(quote! {
        #[cfg_attr(test, allow(dead_code))]
        fn main() -> ::std::process::ExitCode {
            let __binary = match ::core::option_env!("CARGO_BIN_NAME") {
                ::core::option::Option::Some(b) => b,
                ::core::option::Option::None => ::core::env!("CARGO_PKG_NAME"),
            };
            ::atr_tool::serve(&[#(#tools),*], __binary)
        }
    })
}
