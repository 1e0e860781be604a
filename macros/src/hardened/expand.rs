//! Turns a checked [`Plan`] into the function's new body. Nothing here can fail.
//!
//! The user's block is moved, never rewritten, so an error inside it is still reported on the user's
//! line. Generated code names only `<crate>::__private` and `<crate>::Outcome`.

use proc_macro2::TokenStream;
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Block, Expr, Signature, Type};

use super::validate::{Level, Plan, Predicate};
use crate::common::signature::{self, Execution, Returns};

/// The function's new body.
pub(crate) fn body(plan: &Plan, sig: &Signature, mut block: Block) -> Block {
    let site = site_static(plan, sig);
    let span = span_expr(plan, sig);
    let tokens = match &plan.analysis.execution {
        Execution::Sync => sync_body(plan, &site, &span, &block),
        Execution::Async => {
            let output = annotated_block(plan, &block);
            let instrumented = instrumented(plan, &quote!(async move #output));
            quote! {{
                #site
                let __hardened_span = #span;
                #instrumented.await
            }}
        }
        Execution::AsyncTrait => {
            if let Some(future) = signature::async_trait_body_mut(&mut block) {
                let original = future.to_token_stream();
                let wrapped = instrumented(plan, &original);
                *future = syn::parse_quote!(async move { #wrapped.await });
            }
            let statements = &block.stmts;
            quote! {{
                #site
                let __hardened_span = #span;
                #(#statements)*
            }}
        }
    };
    syn::parse2(tokens).unwrap_or_else(|error| panic!("generated body does not parse: {error}"))
}

/// `static __HARDENED_SITE`, registered in the distributed slice of call sites.
fn site_static(plan: &Plan, sig: &Signature) -> TokenStream {
    let krate = &plan.krate;
    let Plan { name, kind, written, metrics, .. } = plan;
    let function = sig.ident.to_string();
    let function = function.strip_prefix("r#").unwrap_or(&function);
    let line = quote_spanned!(sig.ident.span()=> ::core::line!());
    let buckets = match &plan.buckets {
        None => quote!(::core::option::Option::None),
        Some(bounds) => {
            let nanos = bounds.iter().map(|seconds| seconds_to_nanos(*seconds));
            quote!(::core::option::Option::Some(&[#(#nanos),*]))
        }
    };
    quote! {
        #[#krate::__private::linkme::distributed_slice(#krate::__private::SITES)]
        #[linkme(crate = #krate::__private::linkme)]
        static __HARDENED_SITE: #krate::Site = #krate::Site::__new(#krate::__private::SiteMeta {
            name: #name,
            function: #function,
            module: ::core::module_path!(),
            kind: #kind,
            file: ::core::file!(),
            line: #line,
            options: #written,
            metrics: #metrics,
            buckets: #buckets,
            refusable: false,
            timeout: false,
            retries: false,
            guards: ::core::option::Option::None,
        });
    }
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "validated positive and finite")]
fn seconds_to_nanos(seconds: f64) -> u64 {
    (seconds * 1e9).round() as u64
}

/// The span for one call, or a disabled span when `span = false`.
fn span_expr(plan: &Plan, sig: &Signature) -> TokenStream {
    let krate = &plan.krate;
    if !plan.span {
        return quote!(#krate::__private::tracing::Span::none());
    }
    let level = match plan.level {
        Level::Trace => quote!(TRACE),
        Level::Debug => quote!(DEBUG),
        Level::Info => quote!(INFO),
        Level::Warn => quote!(WARN),
        Level::Error => quote!(ERROR),
    };
    let Plan { name, kind, .. } = plan;
    let function = sig.ident.to_string();
    let function = function.strip_prefix("r#").unwrap_or(&function);
    // User fields are declared empty and recorded only when the span is enabled, so a disabled span
    // never evaluates them, and a temporary in a field expression lives as long as its statement.
    let declared = plan.fields.iter().map(|field| {
        let key = &field.key;
        quote!(#key = #krate::__private::tracing::field::Empty)
    });
    let recorded = plan.fields.iter().map(|field| {
        let key = &field.key;
        let key_name = key.to_string();
        let value = field.value.as_ref().map_or_else(|| key.to_token_stream(), ToTokens::to_token_stream);
        let at = field.value.as_ref().map_or_else(|| key.span(), Spanned::span);
        quote_spanned! {at=>
            match &(#value) {
                __hardened_value => {
                    #[allow(unused_imports)]
                    use #krate::__private::{FieldViaDebug as _, FieldViaDisplay as _, FieldViaValue as _};
                    __hardened_span.record(#key_name, (&&&#krate::__private::FieldValue(__hardened_value)).field_value());
                }
            }
        }
    });
    let record = (!plan.fields.is_empty()).then(|| {
        quote! {
            if !__hardened_span.is_disabled() {
                #(#recorded)*
            }
        }
    });
    quote! {{
        let __hardened_span = #krate::__private::tracing::span!(
            target: ::core::module_path!(),
            #krate::__private::tracing::Level::#level,
            #name,
            code.function = #function,
            code.namespace = ::core::module_path!(),
            hardened.kind = #kind,
            otel.kind = "internal",
            otel.status_code = #krate::__private::tracing::field::Empty,
            error.message = #krate::__private::tracing::field::Empty,
            #(#declared,)*
        );
        #record
        __hardened_span
    }}
}

fn sync_body(plan: &Plan, site: &TokenStream, span: &TokenStream, block: &Block) -> TokenStream {
    let krate = &plan.krate;
    let ret = format_ident!("__hardened_ret");
    let span_ident = format_ident!("__hardened_span");
    let classify = classify(plan, &quote!(&#ret), &quote!(&#span_ident));
    let closure_output = match (&plan.analysis.output, plan.analysis.output_is_opaque) {
        (Some(ty), false) => quote!(-> #ty),
        _ => TokenStream::new(),
    };
    quote! {{
        #site
        let #span_ident = #span;
        let __hardened_entered = #span_ident.enter();
        let __hardened_call = #krate::__private::Call::start(&__HARDENED_SITE);
        #[allow(clippy::redundant_closure_call)]
        let #ret = (move || #closure_output #block)();
        let __hardened_outcome = { #classify };
        __hardened_call.finish(__hardened_outcome);
        ::core::mem::drop(__hardened_entered);
        #ret
    }}
}

/// The user's block, with its output type written out where it can be, so that `?` infers its target.
fn annotated_block(plan: &Plan, block: &Block) -> TokenStream {
    match (&plan.analysis.output, plan.analysis.output_is_opaque) {
        (Some(ty), false) => quote! {{
            let __hardened_ret: #ty = #block;
            __hardened_ret
        }},
        _ => block.to_token_stream(),
    }
}

/// `Instrumented::new(..)` around a future expression.
fn instrumented(plan: &Plan, future: &TokenStream) -> TokenStream {
    let krate = &plan.krate;
    let classify = classify(plan, &quote!(__hardened_ret), &quote!(__hardened_span));
    quote! {
        #krate::__private::Instrumented::new(
            &__HARDENED_SITE,
            __hardened_span,
            #future,
            |__hardened_ret, __hardened_span: &#krate::__private::tracing::Span| {
                let __hardened_outcome = { let __hardened_ret = &__hardened_ret; #classify };
                (__hardened_ret, __hardened_outcome)
            },
        )
    }
}

/// The one outcome rule, as an expression over a reference to the returned value and the span.
fn classify(plan: &Plan, ret: &TokenStream, span: &TokenStream) -> TokenStream {
    let krate = &plan.krate;
    let record_error = match plan.analysis.returns {
        Returns::Result => quote! {
            match #ret {
                ::core::result::Result::Err(__hardened_error) => {
                    #[allow(unused_imports)]
                    use #krate::__private::{ErrorViaDebug as _, ErrorViaDisplay as _, ErrorViaName as _};
                    (&&&#krate::__private::ErrorMessage(__hardened_error)).record_on(#span);
                }
                ::core::result::Result::Ok(_) => #krate::__private::record_failure(#span),
            }
        },
        Returns::Value => quote!(#krate::__private::record_failure(#span)),
    };
    let failed = quote! {{ #record_error; #krate::Outcome::Error }};
    match &plan.predicate {
        None if plan.analysis.returns == Returns::Result => quote! {
            if ::core::result::Result::is_ok(#ret) { #krate::Outcome::Ok } else #failed
        },
        None => quote!(#krate::Outcome::Ok),
        Some(Predicate::OkIf(path)) => {
            let holds = predicate_call(plan, path, ret);
            quote!(if #holds { #krate::Outcome::Ok } else #failed)
        }
        Some(Predicate::ErrorIf(path)) => {
            let holds = predicate_call(plan, path, ret);
            quote!(if #holds #failed else { #krate::Outcome::Ok })
        }
    }
}

/// Calls a predicate through a trait whose unmet bound explains, at the path, what signature it needs.
fn predicate_call(plan: &Plan, path: &syn::Path, ret: &TokenStream) -> TokenStream {
    let krate = &plan.krate;
    let at = path.span();
    let output = plan
        .analysis
        .output
        .clone()
        .filter(|_| !plan.analysis.output_is_opaque)
        .map_or_else(|| quote!(_), |ty: Type| ty.to_token_stream());
    let path = Expr::Path(syn::ExprPath { attrs: Vec::new(), qself: None, path: path.clone() });
    quote_spanned! {at=>
        #krate::__private::OutcomePredicate::<#output>::holds(&#path, #ret)
    }
}
