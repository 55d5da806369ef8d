//! `#[tool]`: checks the function and generates its tool struct.
//!
//! For `fn add(a: i64, b: i64) -> i64` it emits, next to the unchanged function:
//!
//! - `struct AddTool;` (the function's name in CamelCase + `Tool`, with its visibility);
//! - in an anonymous `const _: () = { ... };` block:
//!   - `mod add { pub struct a; pub struct b; }`: one marker type per parameter, whose name the
//!     trait-bound errors print (``parameter `add::a` has type ...``);
//!   - one `const` per parameter, `Param::<T>::of::<add::a>()`, spanned at the parameter's type:
//!     the only place `T: JsonSchema + DeserializeOwned` is required, so a bad type gives one
//!     error there;
//!   - the same for the output type (`Output::<T>::of()`);
//!   - `impl atr_tool::Tool for AddTool`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, Ident, ItemFn, Pat, PathArguments, ReturnType, Type};

use crate::args::{ToolArgs, name_is_valid};
use crate::docs;

/// One parameter of the tool function.
struct Param {
    ident: Ident,
    /// The name in the input object (the identifier without `r#`).
    name: String,
    ty: Type,
    /// `Some(T)` when the type is `Option<T>`: not required, absent is `None`.
    option_inner: Option<Type>,
    /// `Some(None)`: `default(x)`, i.e. `Default::default()`; `Some(Some(e))`: `default(x = e)`.
    default: Option<Option<syn::Expr>>,
    doc: Option<String>,
}

impl Param {
    /// The type whose schema and deserialization are used: `T` for `Option<T>`.
    fn value_ty(&self) -> &Type {
        self.option_inner.as_ref().unwrap_or(&self.ty)
    }
}

/// Collects errors so that one expansion reports all of them.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

pub(crate) fn tool(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let func: ItemFn = syn::parse2(item).map_err(|e| {
        syn::Error::new(
            e.span(),
            format!("#[atr_tool::tool] goes on a function (`fn name(a: T, ...) -> R`): {e}"),
        )
    })?;
    let args = ToolArgs::parse(attr)?;
    let mut errors = Errors::default();
    let sig = &func.sig;
    let fn_ident = &sig.ident;
    let fn_name = fn_ident.unraw().to_string();

    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.push(syn::Error::new_spanned(
            &sig.generics,
            "a tool function cannot be generic: its schema is derived from concrete parameter types",
        ));
    }
    if let Some(u) = &sig.unsafety {
        errors.push(syn::Error::new(u.span(), "a tool function cannot be `unsafe`"));
    }
    if let Some(v) = &sig.variadic {
        errors.push(syn::Error::new(v.span(), "a tool function cannot be variadic"));
    }
    if let Some(abi) = &sig.abi {
        errors.push(syn::Error::new(
            abi.span(),
            "a tool function cannot have an `extern` ABI",
        ));
    }

    let docs = docs::parse(&func.attrs)?;
    let mut params: Vec<Param> = Vec::new();
    for input in &sig.inputs {
        let pt = match input {
            FnArg::Receiver(r) => {
                errors.push(syn::Error::new(
                    r.span(),
                    "a tool is a free function: `self` parameters are not supported",
                ));
                continue;
            }
            FnArg::Typed(pt) => pt,
        };
        if let Some(attr) = pt.attrs.first() {
            errors.push(syn::Error::new(
                attr.span(),
                "attributes on tool parameters are not supported: describe parameters in a \
                 `# Arguments` section of the function's doc comment, give defaults with \
                 `#[tool(default(name = value))]`",
            ));
        }
        let ident = match &*pt.pat {
            Pat::Ident(pi) if pi.by_ref.is_none() && pi.subpat.is_none() => pi.ident.clone(),
            other => {
                errors.push(syn::Error::new(
                    other.span(),
                    "a tool parameter must be a plain name (`a: i64`): its name is the input's \
                     property name",
                ));
                continue;
            }
        };
        let name = ident.unraw().to_string();
        if let Err(e) = check_type(&pt.ty, &format!("parameter `{name}`")) {
            errors.push(e);
        }
        let option_inner = option_inner(&pt.ty).cloned();
        params.push(Param {
            ident,
            name,
            ty: (*pt.ty).clone(),
            option_inner,
            default: None,
            doc: None,
        });
    }

    for d in &args.defaults {
        let name = d.param.unraw().to_string();
        match params.iter_mut().find(|p| p.name == name) {
            None => errors.push(syn::Error::new(
                d.param.span(),
                format!("`default({name} ...)`: `{fn_name}` has no parameter `{name}`"),
            )),
            Some(p) if p.default.is_some() => errors.push(syn::Error::new(
                d.param.span(),
                format!("parameter `{name}` has two defaults"),
            )),
            Some(p) if p.option_inner.is_some() => errors.push(syn::Error::new(
                d.param.span(),
                format!(
                    "parameter `{name}` is an `Option`, so it is `None` when absent; remove its \
                     default, or make its type non-optional"
                ),
            )),
            Some(p) => p.default = Some(d.value.clone()),
        }
    }
    for a in &docs.args {
        match params.iter_mut().find(|p| p.name == a.name) {
            Some(p) => p.doc = Some(a.text.clone()).filter(|t| !t.is_empty()),
            None => errors.push(syn::Error::new(
                a.span,
                format!(
                    "the `# Arguments` section documents `{}`, but `{fn_name}` has no such parameter",
                    a.name
                ),
            )),
        }
    }

    let tool_name = match &args.name {
        Some(n) => n.value(),
        None => {
            if !name_is_valid(&fn_name) {
                errors.push(syn::Error::new(
                    fn_ident.span(),
                    "the function's name is not a valid tool name; give one with `name = \"...\"`",
                ));
            }
            fn_name.clone()
        }
    };
    let description = match &args.description {
        Some(d) => d.value().trim().to_owned(),
        None => docs.summary.clone(),
    };
    if description.is_empty() {
        errors.push(syn::Error::new(
            fn_ident.span(),
            "a tool needs a description: write a doc comment on the function (its first \
             paragraph is the description agents read), or give `description = \"...\"`",
        ));
    }

    // The output: `R`, or `T` of `Result<T, E>`.
    let (out_ty, is_result) = match &sig.output {
        ReturnType::Default => (syn::parse_quote!(()), false),
        ReturnType::Type(_, ty) => match result_ok(ty) {
            Some(ok) => (ok.clone(), true),
            None => ((**ty).clone(), false),
        },
    };
    if let ReturnType::Type(_, ty) = &sig.output
        && let Err(e) = check_type(ty, "the return type")
    {
        errors.push(e);
    }
    errors.finish()?;

    // ---- generation ----
    let vis = &func.vis;
    let struct_ident = format_ident!("{}Tool", camel(&fn_name), span = fn_ident.span());
    let marker_mod = fn_ident;
    let markers = params.iter().map(|p| {
        let m = &p.ident;
        quote!(pub struct #m;)
    });

    let param_consts: Vec<Ident> = (0..params.len())
        .map(|i| format_ident!("__ATR_PARAM_{}", i))
        .collect();
    let param_checks = params.iter().zip(&param_consts).map(|(p, c)| {
        let ty = p.value_ty();
        // Every token of the check at the type, so the error points there alone.
        let (mut md, mut m) = (marker_mod.clone(), p.ident.clone());
        md.set_span(ty.span());
        m.set_span(ty.span());
        let marker_mod = md;
        quote_spanned! {ty.span()=>
            const #c: ::atr_tool::__private::Param<#ty> =
                ::atr_tool::__private::Param::<#ty>::of::<#marker_mod::#m>();
        }
    });

    let default_expr = |p: &Param| -> Option<TokenStream> {
        let ty = &p.ty;
        p.default.as_ref().map(|d| match d {
            Some(e) => quote_spanned!(e.span()=> { let __v: #ty = #e; __v }),
            None => quote_spanned!(ty.span()=> <#ty as ::core::default::Default>::default()),
        })
    };

    let schema_params = params.iter().zip(&param_consts).map(|(p, c)| {
        let name = &p.name;
        let doc = match &p.doc {
            Some(d) => quote!(::core::option::Option::Some(#d)),
            None => quote!(::core::option::Option::None),
        };
        let required = p.option_inner.is_none() && p.default.is_none();
        let default = match default_expr(p) {
            Some(e) => {
                let ty = &p.ty;
                let m = &p.ident;
                let span = p
                    .default
                    .as_ref()
                    .and_then(|d| d.as_ref().map(Spanned::span))
                    .unwrap_or_else(|| ty.span());
                quote_spanned! {span=>
                    ::core::option::Option::Some(
                        ::atr_tool::__private::default_value::<#marker_mod::#m, #ty>(&#e)
                    )
                }
            }
            None => quote!(::core::option::Option::None),
        };
        quote! {
            __schema.param(#name, #c.schema, #doc, #required, #default);
        }
    });

    let arg_bindings = params.iter().zip(&param_consts).map(|(p, c)| {
        let ident = &p.ident;
        let name = &p.name;
        let ty = &p.ty;
        if p.option_inner.is_some() {
            quote!(let #ident: #ty = __args.optional(&#c, #name)?;)
        } else if let Some(e) = default_expr(p) {
            quote!(let #ident: #ty = __args.or_else(&#c, #name, || #e)?;)
        } else {
            quote!(let #ident: #ty = __args.required(&#c, #name)?;)
        }
    });
    let arg_idents = params.iter().map(|p| &p.ident);
    let mut call = quote!(#fn_ident(#(#arg_idents),*));
    if sig.asyncness.is_some() {
        call = quote!(::atr_tool::__private::block_on(#call));
    }
    if is_result {
        call = quote! {
            match #call {
                ::core::result::Result::Ok(__v) => __v,
                ::core::result::Result::Err(__e) => {
                    #[allow(unused_imports)]
                    use ::atr_tool::__private::{ViaDisplay as _, ViaInto as _};
                    return ::core::result::Result::Err(
                        (&::atr_tool::__private::ErrorHolder::new(__e)).take_tool_error(),
                    );
                }
            }
        };
    }

    let out_check = quote_spanned! {out_ty.span()=>
        const __ATR_OUTPUT: ::atr_tool::__private::Output<#out_ty> =
            ::atr_tool::__private::Output::<#out_ty>::of();
    };

    let opt_str = |v: Option<String>| match v {
        Some(s) => quote!(::core::option::Option::Some(#s)),
        None => quote!(::core::option::Option::None),
    };
    let opt_int = |v: &Option<syn::LitInt>| match v {
        Some(i) => quote!(::core::option::Option::Some(#i)),
        None => quote!(::core::option::Option::None),
    };
    let tags = args.tags.iter().map(|t| t.value());
    let side_effects = args.side_effects.iter().map(|t| t.value());
    let cost = opt_str(args.cost.as_ref().map(|c| c.value()));
    let timeout_ms = opt_int(&args.timeout_ms);
    let memory_mb = opt_int(&args.memory_mb);
    let pids = opt_int(&args.pids);
    let max_output_bytes = opt_int(&args.max_output_bytes);
    let cpus = match &args.cpus {
        Some(syn::Lit::Int(i)) => {
            let v = i.base10_parse::<u32>().unwrap_or(1) as f64;
            quote!(::core::option::Option::Some(#v))
        }
        Some(lit) => quote!(::core::option::Option::Some(#lit)),
        None => quote!(::core::option::Option::None),
    };
    let homepage = match &args.homepage {
        Some(h) => quote!(#h),
        None => quote!(::core::env!("CARGO_PKG_HOMEPAGE")),
    };
    let version = match &args.version {
        Some(v) => quote!(#v),
        None => quote!(::core::env!("CARGO_PKG_VERSION")),
    };
    let license = match &args.license {
        Some(l) => quote!(#l),
        None => quote!(::core::env!("CARGO_PKG_LICENSE")),
    };
    let examples = args.examples.iter().map(|e| {
        let (i, o) = (&e.input, &e.output);
        quote! {
            ::atr_tool::Example {
                input: ::atr_tool::__private::serde_json::json!(#i),
                output: ::atr_tool::__private::serde_json::json!(#o),
            }
        }
    });

    let struct_doc = format!(
        "The atr tool `{tool_name}`, made from [`{fn_name}`] by `#[atr_tool::tool]`: implements \
         [`atr_tool::Tool`]."
    );
    let n_params = params.len();

    Ok(quote! {
        #func

        #[doc = #struct_doc]
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        #vis struct #struct_ident;

        const _: () = {
            #[allow(non_camel_case_types, dead_code, unreachable_pub)]
            mod #marker_mod {
                #(#markers)*
            }

            #(#param_checks)*
            #out_check

            static __ATR_META: ::atr_tool::ToolMeta = ::atr_tool::ToolMeta {
                name: #tool_name,
                function: #fn_name,
                package: ::core::env!("CARGO_PKG_NAME"),
                package_version: ::core::env!("CARGO_PKG_VERSION"),
                version: #version,
                description: #description,
                tags: &[#(#tags),*],
                side_effects: &[#(#side_effects),*],
                cost: #cost,
                timeout_ms: #timeout_ms,
                memory_mb: #memory_mb,
                cpus: #cpus,
                pids: #pids,
                max_output_bytes: #max_output_bytes,
                homepage: #homepage,
                license: #license,
            };

            impl ::atr_tool::Tool for #struct_ident {
                fn meta(&self) -> &'static ::atr_tool::ToolMeta {
                    &__ATR_META
                }

                fn input_schema(&self) -> ::atr_tool::__private::serde_json::Value {
                    let mut __schema = ::atr_tool::__private::InputSchema::with_capacity(#n_params);
                    #(#schema_params)*
                    __schema.finish()
                }

                fn output_schema(&self) -> ::core::option::Option<::atr_tool::__private::serde_json::Value> {
                    __ATR_OUTPUT.schema()
                }

                fn examples(&self) -> ::std::vec::Vec<::atr_tool::Example> {
                    ::std::vec![#(#examples),*]
                }

                fn call_unchecked(
                    &self,
                    __input: ::atr_tool::__private::serde_json::Value,
                ) -> ::core::result::Result<::atr_tool::__private::serde_json::Value, ::atr_tool::ToolError> {
                    #[allow(unused_mut)]
                    let mut __args = ::atr_tool::__private::Args::new(__input)?;
                    #(#arg_bindings)*
                    let __out = #call;
                    __ATR_OUTPUT.to_value(&__out)
                }
            }
        };
    })
}

/// `snake_case` → `SnakeCase`.
pub(crate) fn camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for part in name.split('_').filter(|p| !p.is_empty()) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.extend(first.to_uppercase());
            out.push_str(chars.as_str());
        }
    }
    if out.is_empty() {
        out.push('X');
    }
    out
}

/// The `T` of `Option<T>` (also spelled `std::option::Option<T>` or `core::option::Option<T>`).
fn option_inner(ty: &Type) -> Option<&Type> {
    let Type::Path(tp) = ty else { return None };
    if tp.qself.is_some() {
        return None;
    }
    let segs: Vec<String> = tp.path.segments.iter().map(|s| s.ident.to_string()).collect();
    let is_option = match segs.as_slice() {
        [o] => o == "Option",
        [.., m, o] => o == "Option" && m == "option",
        [] => false,
    };
    if !is_option {
        return None;
    }
    single_type_arg(tp.path.segments.last()?)
}

/// The `T` of a return type `Result<T, E>` (any path ending in `Result`, e.g. `io::Result<T>`).
fn result_ok(ty: &Type) -> Option<&Type> {
    let Type::Path(tp) = ty else { return None };
    let last = tp.path.segments.last()?;
    if tp.qself.is_some() || last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(ab) = &last.arguments else {
        return None;
    };
    ab.args.iter().find_map(|a| match a {
        GenericArgument::Type(t) => Some(t),
        _ => None,
    })
}

fn single_type_arg(seg: &syn::PathSegment) -> Option<&Type> {
    let PathArguments::AngleBracketed(ab) = &seg.arguments else {
        return None;
    };
    let mut types = ab.args.iter().filter_map(|a| match a {
        GenericArgument::Type(t) => Some(t),
        _ => None,
    });
    let first = types.next()?;
    types.next().is_none().then_some(first)
}

/// Refuses, anywhere in a parameter or return type, what cannot cross a JSON boundary.
fn check_type(ty: &Type, what: &str) -> syn::Result<()> {
    fn err(tokens: &dyn quote::ToTokens, msg: String) -> syn::Result<()> {
        Err(syn::Error::new_spanned(tokens, msg))
    }
    match ty {
        Type::Reference(r) => err(
            r,
            format!(
                "{what}: references are not supported in tool signatures; use an owned type \
                 (`String` for `&str`, `Vec<T>` for `&[T]`)"
            ),
        ),
        Type::Ptr(p) => err(
            p,
            format!("{what}: raw pointers are not supported in tool signatures"),
        ),
        Type::ImplTrait(i) => err(
            i,
            format!(
                "{what}: `impl Trait` is not supported in tool signatures; name a concrete type \
                 (the schema is derived from it)"
            ),
        ),
        Type::TraitObject(t) => err(
            t,
            format!("{what}: trait objects are not supported in tool signatures; name a concrete type"),
        ),
        Type::BareFn(f) => err(
            f,
            format!("{what}: function pointers are not supported in tool signatures"),
        ),
        Type::Never(n) => err(n, format!("{what}: `!` is not supported in tool signatures")),
        Type::Infer(i) => err(i, format!("{what}: `_` is not allowed; write the type")),
        Type::Macro(m) => err(
            m,
            format!("{what}: type macros are not supported in tool signatures"),
        ),
        Type::Paren(p) => check_type(&p.elem, what),
        Type::Group(g) => check_type(&g.elem, what),
        Type::Array(a) => check_type(&a.elem, what),
        Type::Slice(s) => check_type(&s.elem, what),
        Type::Tuple(t) => t.elems.iter().try_for_each(|e| check_type(e, what)),
        Type::Path(p) => {
            if let Some(q) = &p.qself {
                check_type(&q.ty, what)?;
            }
            for seg in &p.path.segments {
                if let PathArguments::AngleBracketed(ab) = &seg.arguments {
                    for a in &ab.args {
                        if let GenericArgument::Type(t) = a {
                            check_type(t, what)?;
                        }
                    }
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camel_case() {
        assert_eq!(camel("add"), "Add");
        assert_eq!(camel("sample_tool"), "SampleTool");
        assert_eq!(camel("_x__y"), "XY");
    }

    #[test]
    fn finds_option_and_result() {
        let t: Type = syn::parse_quote!(Option<Vec<String>>);
        assert!(option_inner(&t).is_some());
        let t: Type = syn::parse_quote!(std::option::Option<u8>);
        assert!(option_inner(&t).is_some());
        let t: Type = syn::parse_quote!(my::Option<u8>);
        assert!(option_inner(&t).is_none());
        let t: Type = syn::parse_quote!(std::io::Result<u8>);
        assert!(result_ok(&t).is_some());
    }

    #[test]
    fn refuses_references_anywhere() {
        for bad in [
            quote!(&str),
            quote!(Vec<&str>),
            quote!(*const u8),
            quote!(impl Fn()),
            quote!((u8, Box<dyn Send>)),
            quote!(fn() -> u8),
        ] {
            let t: Type = syn::parse2(bad.clone()).unwrap();
            assert!(check_type(&t, "x").is_err(), "{bad}");
        }
        let t: Type = syn::parse_quote!(std::collections::BTreeMap<String, Vec<(u8, f64)>>);
        assert!(check_type(&t, "x").is_ok());
    }
}
