//! Turns a checked [`Plan`] into the function's new body. Nothing here can fail.
//!
//! The user's block is moved, never rewritten, so an error inside it is still reported on the user's
//! line. Generated code names only `<crate>::__private` and `<crate>::Outcome`.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote, quote_spanned};
use syn::ext::IdentExt as _;
use syn::spanned::Spanned;
use syn::{Attribute, Block, Expr, FnArg, Pat, ReceiverKind, ReturnType, Signature};

use super::validate::{Level, Plan, Predicate};
use super::{audit, guards};
use crate::common::signature::{self, Execution};
use crate::common::tokens::respanned;

/// The function's new body, inside its braces. An `async fn` whose guards run once, and which [`returns_future`] allows,
/// becomes a plain `fn` returning the guarded call's future: `sig` is rewritten to say so.
pub(crate) fn body(plan: &Plan, sig: &mut Signature, mut block: Block, may_return_future: bool) -> TokenStream {
    let krate = &plan.krate;
    let guarded = plan.guards.guards_call();
    let site = site_static(plan, sig);
    let slo = plan.slo.as_ref().map(|slo| super::slo::member_static(slo, krate));
    let guards_static = guarded.then(|| guards::guards_static(&plan.guards, krate));
    let span = span_expr(plan);
    let audit_start = plan.audit.as_ref().map(|audit| audit::start(audit, krate, &plan.name));
    let tokens = match &plan.analysis.execution {
        Execution::Sync => {
            let body = sync_body(plan, &span, &block);
            quote!(#audit_start #body)
        }
        Execution::Async if plan.guards.single_pass() => {
            let output = annotated_block(plan, &block);
            if may_return_future && plan.audit.is_none() && returns_future(sig) {
                // The arguments move into the body's future, as an `async fn` moves them into its own: they
                // live, and drop, with it.
                let rebindings = rebind_arguments(sig);
                let start = quote!(move || (#span, async move { #(#rebindings)* #output }));
                let call = single_pass(plan, &start, false);
                let output = sig.output.clone();
                let output = match output {
                    ReturnType::Default => quote!(()),
                    ReturnType::Type(_, ty) => ty.into_token_stream(),
                };
                sig.asyncness = None;
                sig.output = syn::parse_quote!(-> impl ::core::future::Future<Output = #output>);
                call
            } else {
                // The span is made when the guarded call is first polled, which is where an `async fn`
                // made it, and after the audit event starts.
                let start = quote!(move || (#span, async move #output));
                let call = single_pass(plan, &start, true);
                quote!(#audit_start #call)
            }
        }
        Execution::Async => {
            let output = annotated_block(plan, &block);
            let future = if guarded {
                guards::async_call(&plan.guards, krate, &quote!(async #output), &is_failure(plan))
            } else {
                quote!(async move #output)
            };
            let instrumented = instrumented(plan, &future);
            quote!(#audit_start let __hardened_span = #span; #instrumented)
        }
        Execution::AsyncTrait => {
            if let Some(future) = signature::async_trait_body_mut(&mut block) {
                let wrapped = if guarded && !plan.guards.single_pass() {
                    let (rebindings, attempt) = split_rebindings(&future.block);
                    let inner =
                        guards::async_call(&plan.guards, krate, &quote!(async { #(#attempt)* }), &is_failure(plan));
                    instrumented(plan, &quote!(async move { #(#rebindings)* #inner.await }))
                } else if plan.guards.single_pass() {
                    let future = future.to_token_stream();
                    single_pass(plan, &quote!(move || (__hardened_span, #future)), true)
                } else {
                    instrumented(plan, &future.to_token_stream())
                };
                *future = syn::parse_quote!(async move { #audit_start #wrapped });
            }
            let statements = &block.stmts;
            quote!(let __hardened_span = #span; #(#statements)*)
        }
    };
    // Handed to rustc as tokens: parsing the body again would cost as much as the rest of the expansion.
    quote! {
        #site
        #slo
        #guards_static
        #tokens
    }
}

/// Splits an `#[async_trait]` body into the leading `let x = x;` rebindings of its arguments, which run
/// once per call, and the rest, which runs once per attempt.
fn split_rebindings(block: &Block) -> (Vec<&syn::Stmt>, Vec<&syn::Stmt>) {
    let is_rebinding = |statement: &&syn::Stmt| {
        matches!(statement, syn::Stmt::Local(local)
            if local.init.as_ref().is_some_and(|init| matches!(&*init.expr, Expr::Path(_)) && init.diverge.is_none()))
    };
    let rebindings: Vec<_> = block.stmts.iter().take_while(is_rebinding).collect();
    let rest = block.stmts[rebindings.len()..].iter().collect();
    (rebindings, rest)
}

/// `static __HARDENED_SITE`, registered in the distributed slice of call sites.
fn site_static(plan: &Plan, sig: &Signature) -> TokenStream {
    let krate = &plan.krate;
    let Plan { name, kind, written, metrics, .. } = plan;
    let histogram = plan.histogram.map_or_else(
        || quote!(::core::option::Option::None),
        |histogram| quote!(::core::option::Option::Some(#histogram)),
    );
    let function = sig.ident.to_string();
    let function = function.strip_prefix("r#").unwrap_or(&function);
    let line = quote_spanned!(sig.ident.span()=> ::core::line!());
    let (refusable, timeout, retries) = (plan.guards.refusable(), plan.guards.has_timeout(), plan.guards.retries());
    let guards = if plan.guards.guards_call() {
        quote!(::core::option::Option::Some(&__HARDENED_GUARDS))
    } else {
        quote!(::core::option::Option::None)
    };
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
            histogram: #histogram,
            refusable: #refusable,
            timeout: #timeout,
            retries: #retries,
            guards: #guards,
        });
    }
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "validated positive and finite")]
fn seconds_to_nanos(seconds: f64) -> u64 {
    (seconds * 1e9).round() as u64
}

/// The span for one call, or a disabled span when `span = false`: the statics of its callsite, and a call
/// of the runtime that makes the span (the fields every span has are the runtime's; only those of
/// `fields(..)` are written here, evaluated only when the span is enabled).
fn span_expr(plan: &Plan) -> TokenStream {
    let krate = &plan.krate;
    let private = quote!(#krate::__private);
    if !plan.span {
        return quote!(#private::tracing::Span::none());
    }
    let level = match plan.level {
        Level::Trace => quote!(TRACE),
        Level::Debug => quote!(DEBUG),
        Level::Info => quote!(INFO),
        Level::Warn => quote!(WARN),
        Level::Error => quote!(ERROR),
    };
    let name = &plan.name;
    // A tool call is an OpenTelemetry GenAI `execute_tool` operation; decided here, once, from the kind.
    let fixed = if plan.kind == "tool" { quote!(#private::TOOL_FIELDS) } else { quote!(#private::FIELDS) };
    let (names, make) = if plan.fields.is_empty() {
        (quote!(&#fixed), quote!(__HARDENED_SPAN.span()))
    } else {
        let count = plan.fields.len();
        let extra = plan.fields.iter().map(|field| {
            let key = field.key.to_string();
            key.strip_prefix("r#").unwrap_or(&key).to_owned()
        });
        // Field values go straight into the span, which evaluates them only when it is enabled; each is
        // recorded as a tracing value, else by `Display`, else by `Debug` (the traits imported below).
        let values = plan.fields.iter().map(|field| {
            let key = &field.key;
            let value = field.value.as_ref().map_or_else(|| key.to_token_stream(), ToTokens::to_token_stream);
            let at = field.value.as_ref().map_or_else(|| key.span(), Spanned::span);
            quote_spanned!(at=> ::core::option::Option::Some(
                &(&&&#private::FieldValue(&(#value))).field_value() as &dyn #private::tracing::Value
            ))
        });
        let names = quote! {{
            static __HARDENED_SPAN_FIELDS: [&str; #fixed.len() + #count] = #private::field_names(&#fixed, &[#(#extra),*]);
            &__HARDENED_SPAN_FIELDS
        }};
        let make = quote! {
            __HARDENED_SPAN.span_with(|__hardened_record| {
                #[allow(unused_imports)]
                use #private::{FieldViaDebug as _, FieldViaDisplay as _, FieldViaValue as _};
                __hardened_record(&[#(#values),*]);
            })
        };
        (names, make)
    };
    quote! {{
        static __HARDENED_SPAN: #private::SpanSite = #private::SpanSite::new(&__HARDENED_SPAN_METADATA, &__HARDENED_SITE);
        static __HARDENED_SPAN_METADATA: #private::tracing::Metadata<'static> = #private::span_metadata(
            #name,
            ::core::module_path!(),
            #private::tracing::Level::#level,
            ::core::file!(),
            ::core::line!(),
            #names,
            &__HARDENED_SPAN,
        );
        #make
    }}
}

fn sync_body(plan: &Plan, span: &TokenStream, block: &Block) -> TokenStream {
    let krate = &plan.krate;
    let closure_output = match &plan.analysis.annotation {
        Some(ty) => quote!(-> #ty),
        None => TokenStream::new(),
    };
    // Passed as `FnOnce`, so that the body may return borrows of what the closure captured (a closure
    // called where it is written is inferred `FnMut`, which may not).
    let body = quote!(move || #closure_output #block);
    let fallback = fallback(plan);
    // With guards, the chain starts and finishes the call itself, sharing its clock readings.
    let run = if plan.guards.guards_call() {
        let classify = classify(plan, &quote!(__hardened_ret), &quote!(&__hardened_span));
        let output = plan.analysis.annotation.as_ref();
        let run = guards::sync_call(
            &plan.guards,
            krate,
            output,
            &body,
            &is_failure(plan),
            &quote!(|__hardened_ret| #classify),
        );
        quote!(let (__hardened_ret, __hardened_outcome) = #run;)
    } else {
        let classify = classify(plan, &quote!(&__hardened_ret), &quote!(&__hardened_span));
        quote! {
            let __hardened_call = #krate::__private::Call::start(&__HARDENED_SITE);
            let __hardened_ret = #krate::__private::call_once(#body);
            let __hardened_outcome = { #classify };
            __hardened_call.finish(__hardened_outcome, &__hardened_span);
        }
    };
    let audit_finish = audit_finish(plan, &quote!(&__hardened_ret));
    quote! {
        let __hardened_span = #span;
        let __hardened_entered = __hardened_span.enter();
        #run
        #audit_finish
        #fallback
        ::core::mem::drop(__hardened_entered);
        __hardened_ret
    }
}

/// Replaces a failed call's result by its `fallback`, after the outcome is recorded.
fn fallback(plan: &Plan) -> Option<TokenStream> {
    let krate = &plan.krate;
    plan.guards.fallback().map(|path| {
        let call = quote_spanned!(path.span()=> #krate::__private::apply_fallback(__hardened_ret, &#path));
        quote! {
            let __hardened_ret = if #krate::Outcome::is_failure(__hardened_outcome) { #call } else { __hardened_ret };
        }
    })
}

/// The outcome rule as a yes-or-no "did it fail", over `__hardened_ret: &Return`, for the guards.
fn is_failure(plan: &Plan) -> TokenStream {
    let krate = &plan.krate;
    match &plan.predicate {
        Some(Predicate::OkIf(path)) => {
            let holds = predicate_call(plan, path, &quote!(__hardened_ret));
            quote!(!#holds)
        }
        Some(Predicate::ErrorIf(path)) => predicate_call(plan, path, &quote!(__hardened_ret)),
        None => quote!(#krate::__private::GuardedReturn::error(__hardened_ret).is_some()),
    }
}

/// The user's block, with its output type written out where it can be, so that `?` infers its target.
fn annotated_block(plan: &Plan, block: &Block) -> TokenStream {
    match &plan.analysis.annotation {
        Some(ty) => quote! {{
            let __hardened_ret: #ty = #block;
            #[allow(unreachable_code)]
            __hardened_ret
        }},
        None => block.to_token_stream(),
    }
}

/// Whether an `async fn` can become a plain `fn` returning its future without a change its callers or its
/// body could notice: each argument a plain name (a pattern or `_` would bind, or drop, at the call
/// instead of in the future) and a receiver, if any, a reference (`self` by value would drop at the call
/// if the body does not use it).
fn returns_future(sig: &Signature) -> bool {
    sig.inputs.iter().all(|input| match input {
        FnArg::Receiver(receiver) => matches!(receiver.kind, ReceiverKind::Reference(..)),
        FnArg::Typed(typed) => {
            typed.attrs.is_empty()
                && matches!(&*typed.pat, Pat::Ident(binding) if binding.by_ref.is_none() && binding.subpat.is_none())
        }
    })
}

/// Whether attributes left on an `async fn` mean the same on a plain `fn` returning its future: those
/// the compiler and its tools read, which expand to nothing. Another attribute macro may need the
/// `async fn` (`#[async_trait]` on the `impl` block, a test runner's attribute).
pub(crate) fn may_return_future(attrs: &[Attribute]) -> bool {
    const INERT: &[&str] = &["doc", "inline", "allow", "expect", "warn", "deny", "forbid", "deprecated", "must_use"];
    attrs.iter().all(|attr| {
        let path = attr.path();
        match path.segments.first() {
            Some(first) if path.segments.len() > 1 => first.ident == "rustfmt" || first.ident == "clippy",
            Some(only) => INERT.iter().any(|name| only.ident == name),
            None => false,
        }
    })
}

/// `let x = x;` for each argument of an `async fn` that [`returns_future`] allows, with its `mut`, which
/// moves from the signature to the rebinding (the `fn`'s own binding is never mutated).
fn rebind_arguments(sig: &mut Signature) -> Vec<TokenStream> {
    sig.inputs
        .iter_mut()
        .filter_map(|input| match input {
            FnArg::Typed(typed) => match &mut *typed.pat {
                Pat::Ident(binding) => {
                    let mutability = binding.mutability.take();
                    // At the argument, so that an unused one is still reported there; `_x`, which says it
                    // may go unused, at the attribute, so that this use of it is not reported.
                    let mut ident = binding.ident.clone();
                    if ident.unraw().to_string().starts_with('_') {
                        ident.set_span(proc_macro2::Span::call_site());
                    }
                    Some(quote!(let #mutability #ident = #ident;))
                }
                _ => None,
            },
            FnArg::Receiver(_) => None,
        })
        .collect()
}

/// The guarded call of a function whose guards run once ([`guards::single_pass_call`]), from `start`, a
/// closure that makes the span and the body's future; awaited when `awaited`.
fn single_pass(plan: &Plan, start: &TokenStream, awaited: bool) -> TokenStream {
    let finish = finish(plan);
    guards::single_pass_call(&plan.guards, &plan.krate, start, &is_failure(plan), &finish, awaited)
}

/// The closure that classifies an instrumented call's output (for a guarded call, with the outcome a
/// guard imposed), records its audit event, applies its fallback, and returns the value and outcome.
fn finish(plan: &Plan) -> TokenStream {
    let krate = &plan.krate;
    let classify = classify(plan, &quote!(__hardened_ret), &quote!(__hardened_span));
    let (parameter, outcome) = if plan.guards.guards_call() {
        (
            quote!((__hardened_ret, __hardened_imposed)),
            quote!(__hardened_imposed.unwrap_or({ let __hardened_ret = &__hardened_ret; #classify })),
        )
    } else {
        (quote!(__hardened_ret), quote!({ let __hardened_ret = &__hardened_ret; #classify }))
    };
    let fallback = fallback(plan);
    let audit_finish = audit_finish(plan, &quote!(&__hardened_ret));
    quote! {
        |#parameter, __hardened_span: &#krate::__private::tracing::Span| {
            let __hardened_outcome = #outcome;
            #audit_finish
            #fallback
            (__hardened_ret, __hardened_outcome)
        }
    }
}

/// `Instrumented::new(..)` around a future expression, awaited; a guarded future yields the value and the
/// outcome a guard imposed.
fn instrumented(plan: &Plan, future: &TokenStream) -> TokenStream {
    let krate = &plan.krate;
    let finish = finish(plan);
    quote! {
        #krate::__private::Instrumented::new(&__HARDENED_SITE, __hardened_span, #future, #finish).await
    }
}

/// Records the audit event of a finished call, from `__hardened_outcome` and the returned value (a
/// reference), with the error's message for a failure. The call was started as `__hardened_audit`, an
/// `Option` so that a finish closure can take it; if it never finishes, dropping it records why.
fn audit_finish(plan: &Plan, ret: &TokenStream) -> Option<TokenStream> {
    let krate = &plan.krate;
    plan.audit.as_ref()?;
    Some(quote! {
        if let ::core::option::Option::Some(__hardened_audit) = __hardened_audit.take() {
            #[allow(unused_imports)]
            use #krate::__private::{
                AsResultViaResult as _, AsResultViaValue as _, ErrorViaDebug as _, ErrorViaDisplay as _, ErrorViaName as _,
            };
            let __hardened_message = match (&&#krate::__private::Returned(#ret)).as_result() {
                ::core::option::Option::Some(::core::result::Result::Err(__hardened_error)) => {
                    ::core::option::Option::Some((&&&#krate::__private::ErrorMessage(__hardened_error)).describe())
                }
                _ => ::core::option::Option::None,
            };
            __hardened_audit.finish(__hardened_outcome, __hardened_message);
        }
    })
}

/// The one outcome rule, as an expression over a reference to the returned value and the span.
fn classify(plan: &Plan, ret: &TokenStream, span: &TokenStream) -> TokenStream {
    let krate = &plan.krate;
    // Whether the value is a `Result` is asked of the type, not of how it is spelled, so that aliases
    // (`ApiResult<T>`, `anyhow::Result<T>`) classify like `Result` does.
    let as_result = quote! {{
        #[allow(unused_imports)]
        use #krate::__private::{AsResultViaResult as _, AsResultViaValue as _};
        (&&#krate::__private::Returned(#ret)).as_result()
    }};
    let record = quote! {
        #[allow(unused_imports)]
        use #krate::__private::{ErrorViaDebug as _, ErrorViaDisplay as _, ErrorViaName as _};
        (&&&#krate::__private::ErrorMessage(__hardened_error)).record_on(#span);
    };
    let failed = quote! {{
        match #as_result {
            ::core::option::Option::Some(::core::result::Result::Err(__hardened_error)) => { #record }
            _ => #krate::__private::record_failure(#span),
        }
        #krate::Outcome::Error
    }};
    match &plan.predicate {
        // The usual rule: one test of the value, which records the error it finds.
        None => quote! {
            match #as_result {
                ::core::option::Option::Some(::core::result::Result::Err(__hardened_error)) => {
                    #record
                    #krate::Outcome::Error
                }
                _ => #krate::Outcome::Ok,
            }
        },
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
    let output = plan.analysis.annotation.as_ref().map_or_else(|| quote!(_), ToTokens::to_token_stream);
    let path = Expr::Path(syn::ExprPath { attrs: Vec::new(), qself: None, path: path.clone() });
    // The whole call points at the path, so that every note of an unmet bound underlines only the path.
    let krate = respanned(krate.to_token_stream(), at);
    quote_spanned! {at=>
        #krate::__private::OutcomePredicate::<#output>::holds(&#path, #ret)
    }
}
