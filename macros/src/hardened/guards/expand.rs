//! A [`GuardPlan`] as code: the site's guard static and the guarded call, sync, single-pass or retried.

use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote};
use syn::spanned::Spanned as _;
use syn::visit_mut::{self, VisitMut};
use syn::{Expr, Path, Type, parse_quote};

use hardened_schema::{breaker, bulkhead, concurrency, hedge, rate, retry};

use super::args::{ConcurrencyArgs, HedgeAfter, SchemaKey, TIME};
use super::typed_call::{blame, guarded_call};
use super::validate::GuardPlan;
use crate::common::meta::Spanned;
use crate::common::tokens::respanned;

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

fn some_u64<T: ToTokens>(value: Option<T>) -> TokenStream {
    value.map_or_else(|| quote!(::core::option::Option::None), |value| quote!(::core::option::Option::Some(#value)))
}

fn some_str(value: Option<&Spanned<String>>) -> TokenStream {
    some_u64(value.map(|value| value.value.clone()))
}

/// `field: Some(value)` for each setting written, so that the settings name only those and take the
/// rest from `UNSET`; a setting's field is named as its key.
fn set_fields<K: SchemaKey>(fields: impl IntoIterator<Item = (K, Option<TokenStream>)>) -> TokenStream {
    let written = fields.into_iter().filter_map(|(key, value)| {
        let field = proc_macro2::Ident::new(key.spec().name, Span::call_site());
        value.map(|value| quote!(#field: ::core::option::Option::Some(#value),))
    });
    quote!(#(#written)*)
}

fn count<T: TryFrom<u64> + ToTokens>(value: Option<&Spanned<u64>>) -> Option<TokenStream> {
    value.and_then(|value| T::try_from(value.value).ok()).map(|value| value.to_token_stream())
}

/// A concurrency limit's `limit`: `Limit::Fixed(n)`, or `Limit::Adaptive(algorithm)` for the word written.
fn concurrency_limit(concurrency: &ConcurrencyArgs, private: &TokenStream) -> Option<TokenStream> {
    if let Some(fixed) = count::<u32>(concurrency.limit.as_ref().map(|(_, limit)| limit)) {
        return Some(quote!(#private::Limit::Fixed(#fixed)));
    }
    let algorithm = match concurrency.algorithm.as_ref()?.value.as_str() {
        "aimd" => quote!(Aimd),
        "vegas" => quote!(Vegas),
        "gradient" => quote!(Gradient),
        // Refused by the checks before the expansion.
        _ => return None,
    };
    Some(quote!(#private::Limit::Adaptive(#private::Algorithm::#algorithm)))
}

/// `static __HARDENED_GUARDS`, the site's guards resolved on first use, with the settings written here.
pub(crate) fn guards_static(plan: &GuardPlan, krate: &Path) -> TokenStream {
    let private = quote!(#krate::__private);
    let duration = |value: Option<&Spanned<Duration>>| {
        value.map(|duration| {
            let nanos = nanos(duration.value);
            quote!(#private::Duration::from_nanos(#nanos))
        })
    };
    let declared = |name: Option<&Spanned<String>>, settings: TokenStream| {
        let name = some_str(name);
        quote!(#private::Declared { name: #name, settings: #settings })
    };
    let breaker = some_u64(plan.breaker.as_ref().map(|breaker| {
        let window_kind = breaker.window_kind.as_ref().map(|kind| {
            if kind.value == TIME { quote!(#private::WindowKind::Time) } else { quote!(#private::WindowKind::Count) }
        });
        let set = set_fields([
            (breaker::Key::FailureRate, count::<u8>(breaker.failure_rate.as_ref())),
            (breaker::Key::SlowRate, count::<u8>(breaker.slow_rate.as_ref())),
            (breaker::Key::SlowCall, duration(breaker.slow_call.as_ref())),
            (breaker::Key::Window, count::<u32>(breaker.window.as_ref())),
            (breaker::Key::WindowKind, window_kind),
            (breaker::Key::MinCalls, count::<u32>(breaker.min_calls.as_ref())),
            (breaker::Key::OpenFor, duration(breaker.open_for.as_ref())),
            (breaker::Key::HalfOpenCalls, count::<u32>(breaker.half_open_calls.as_ref())),
            (breaker::Key::ConsecutiveFailures, count::<u32>(breaker.consecutive_failures.as_ref())),
        ]);
        declared(
            breaker.name.as_ref().map(|(_, name)| name),
            quote!(#private::BreakerSettings { #set ..#private::BreakerSettings::UNSET }),
        )
    }));
    let rate = some_u64(plan.rate.as_ref().map(|rate| {
        let per_second = rate.per.as_ref().and_then(|per| {
            let calls = u32::try_from(per.value.0).ok()?;
            let period = nanos(per.value.1);
            Some(quote!((#calls, #private::Duration::from_nanos(#period))))
        });
        let scope = rate
            .scope
            .as_ref()
            .map(|_| if rate.global() { quote!(#private::Scope::Global) } else { quote!(#private::Scope::Local) });
        let set = set_fields([
            (rate::Key::PerSecond, per_second),
            (rate::Key::Burst, count::<u32>(rate.burst.as_ref())),
            (rate::Key::Wait, duration(rate.wait.as_ref())),
            (rate::Key::Scope, scope),
            (rate::Key::MaxKeys, count::<u32>(rate.max_keys.as_ref())),
        ]);
        declared(rate.name.as_ref(), quote!(#private::RateSettings { #set ..#private::RateSettings::UNSET }))
    }));
    // A global bucket lives in Redis: without the `redis` feature, the type checker says so at `"global"`.
    let needs_redis =
        plan.rate.as_ref().filter(|rate| rate.global()).and_then(|rate| rate.scope.as_ref()).map(|(_, scope)| {
            let check = respanned(quote!(#private::global_scope::<#private::ThisBuild>()), scope.span);
            quote!(const _: () = #check;)
        });
    let concurrency = some_u64(plan.concurrency.as_ref().map(|concurrency| {
        let set = set_fields([
            (concurrency::Key::Limit, concurrency_limit(concurrency, &private)),
            (concurrency::Key::Wait, duration(concurrency.wait.as_ref())),
            (concurrency::Key::Min, count::<u32>(concurrency.min.as_ref())),
            (concurrency::Key::Max, count::<u32>(concurrency.max.as_ref())),
        ]);
        declared(
            concurrency.name.as_ref(),
            quote!(#private::ConcurrencySettings { #set ..#private::ConcurrencySettings::UNSET }),
        )
    }));
    let bulkhead = some_u64(plan.bulkhead.as_ref().map(|bulkhead| {
        let set = set_fields([
            (bulkhead::Key::Max, count::<u32>(bulkhead.max.as_ref().map(|(_, max)| max))),
            (bulkhead::Key::Wait, duration(bulkhead.wait.as_ref())),
        ]);
        declared(
            bulkhead.name.as_ref(),
            quote!(#private::BulkheadSettings { #set ..#private::BulkheadSettings::UNSET }),
        )
    }));
    let retry = some_u64(plan.retry.as_ref().map(|retry| {
        let set = set_fields([
            (retry::Key::Attempts, count::<u32>(retry.attempts.as_ref().map(|(_, attempts)| attempts))),
            (retry::Key::Backoff, duration(retry.backoff.as_ref())),
            (retry::Key::MaxBackoff, duration(retry.max_backoff.as_ref())),
            (retry::Key::Jitter, retry.jitter.as_ref().map(|jitter| jitter.value.to_token_stream())),
        ]);
        declared(retry.name.as_ref(), quote!(#private::RetrySettings { #set ..#private::RetrySettings::UNSET }))
    }));
    let hedge = some_u64(plan.hedge.as_ref().map(|hedge| hedge_declared(hedge, &private)));
    let timeout = some_u64(plan.timeout.map(|timeout| {
        let nanos = nanos(timeout);
        quote!(#private::Duration::from_nanos(#nanos))
    }));
    let taking_tokens = plan.takes_tokens().then(|| quote!(.taking_tokens()));
    let keyed_bulkhead = plan.keyed_bulkhead().then(|| quote!(.keyed_bulkhead()));
    quote! {
        #needs_redis
        // A guard whose every setting is written still ends in `..UNSET`: one form for all.
        #[allow(clippy::needless_update)]
        static __HARDENED_GUARDS: #private::SiteGuards =
            #private::SiteGuards::new(&__HARDENED_SITE, #breaker, #rate, #concurrency, #bulkhead, #retry, #hedge, #timeout)
                #taking_tokens #keyed_bulkhead;
    }
}

/// A hedging policy's declaration: its name and the settings written.
fn hedge_declared(hedge: &super::args::HedgeArgs, private: &TokenStream) -> TokenStream {
    let after = hedge.after.as_ref().map(|after| match after.value {
        HedgeAfter::Percentile(permille) => quote!(#private::After::Percentile(#permille)),
        HedgeAfter::Fixed(duration) => {
            let nanos = nanos(duration);
            quote!(#private::After::Fixed(#private::Duration::from_nanos(#nanos)))
        }
    });
    let set = set_fields([(hedge::Key::After, after), (hedge::Key::Max, count::<u32>(hedge.max.as_ref()))]);
    let name = some_str(hedge.name.as_ref());
    quote!(#private::Declared { name: #name, settings: #private::HedgeSettings { #set ..#private::HedgeSettings::UNSET } })
}

/// `expr` with each call `path::GuardedReturn::error(..)` written `<ty as path::GuardedReturn>::error(..)`
/// and spanned like [`guarded_call`], so that an unmet `ty: GuardedReturn` is reported with the others.
fn qualified(expr: &TokenStream, ty: Option<&Type>) -> TokenStream {
    struct Qualify<'a>(&'a Type);
    impl VisitMut for Qualify<'_> {
        fn visit_expr_mut(&mut self, expr: &mut Expr) {
            visit_mut::visit_expr_mut(self, expr);
            let Expr::Call(call) = expr else { return };
            let Expr::Path(callee) = &*call.func else { return };
            let segments: Vec<&syn::PathSegment> = callee.path.segments.iter().collect();
            let [trait_path @ .., guarded_return, method] = segments.as_slice() else { return };
            if callee.qself.is_some() || guarded_return.ident != "GuardedReturn" || method.ident != "error" {
                return;
            }
            let (ty, leading, args) = (self.0, callee.path.leading_colon, &call.args);
            let call =
                respanned(quote!(<#ty as #leading #(#trait_path ::)* #guarded_return>::#method(#args)), blame(ty));
            *expr = parse_quote!(#call);
        }
    }
    let (Some(ty), Ok(mut parsed)) = (ty, syn::parse2::<Expr>(expr.clone())) else { return expr.clone() };
    Qualify(ty).visit_expr_mut(&mut parsed);
    parsed.into_token_stream()
}

/// A synchronous guarded call: the guard chain around the user's closure, which starts and records the
/// call and yields its value and outcome; `classify` is the outcome rule, a closure over the value. The
/// call's span, `__hardened_span`, goes along for the duration's exemplar.
///
/// The closure names the return type unless it is opaque; then `run_sync` infers it, and a type that
/// cannot carry a refusal is reported at the attribute.
pub(crate) fn sync_call(
    plan: &GuardPlan,
    krate: &Path,
    output: Option<&Type>,
    body: &TokenStream,
    is_failure: &TokenStream,
    classify: &TokenStream,
) -> TokenStream {
    let is_failure = qualified(is_failure, output);
    let run = guarded_call(
        &quote!(#krate::__private::run_sync),
        output,
        &TokenStream::new(),
        &quote!(&__HARDENED_GUARDS, #body, |__hardened_ret| #is_failure, #classify, &__hardened_span),
        false,
    );
    super::per_call::sync_steps(plan, krate, output, run)
}

/// An asynchronous call whose guards run once around it ([`GuardPlan::single_pass`]), awaited when
/// `awaited`: `start` is the closure that makes the span and the user's body as a future, `finish` the
/// closure that classifies its output (or a refusal) and returns the value.
pub(crate) fn single_pass_call(
    plan: &GuardPlan,
    krate: &Path,
    start: &TokenStream,
    is_failure: &TokenStream,
    finish: &TokenStream,
    awaited: bool,
) -> TokenStream {
    let output = plan.output.as_ref();
    let is_failure = qualified(is_failure, output);
    guarded_call(
        &quote!(#krate::__private::instrument),
        output,
        &quote!(, _, _, _, _, _),
        &quote!(&__HARDENED_GUARDS, #start, |__hardened_ret| #is_failure, #finish),
        awaited,
    )
}

/// The future of an asynchronous guarded call with a timeout or retries: one attempt through the guards
/// without retries, else its attempts while [`retrying`] says another follows. `attempt` is a non-`move`
/// async block, re-created for each attempt and borrowing the arguments, which is why the loop itself is
/// generated; a single attempt may move them. It is handed to the guards in a closure called once, so
/// that they make the attempt's future where they await it and hold it once.
///
/// [`retrying`]: ../../../../hardened/__private/fn.retrying.html
pub(crate) fn async_call(
    plan: &GuardPlan,
    krate: &Path,
    attempt: &TokenStream,
    is_failure: &TokenStream,
) -> TokenStream {
    let private = quote!(#krate::__private);
    let output = plan.output.as_ref();
    let is_failure = qualified(is_failure, output);
    // The attempt's future is made by the guards where they await it, so that it is held once.
    let attempt = &quote!(|| #attempt);
    if plan.hedge.is_some() {
        return hedged_call(plan, krate, attempt, &is_failure);
    }
    let Some(retry) = &plan.retry else {
        // One attempt, which may move the arguments (no loop around it).
        let attempt = guarded_call(
            &quote!(#private::attempt),
            output,
            &quote!(, _, _),
            &quote!(&__HARDENED_GUARDS, #attempt, |__hardened_ret| #is_failure),
            true,
        );
        return super::per_call::async_steps(plan, &private, quote!(async move { #attempt }));
    };
    let retry_when = retry_when(retry, output, &private);
    let start = guarded_call(
        &quote!(#private::retrying),
        output,
        &quote!(, _, _),
        &quote!(&__HARDENED_GUARDS, |__hardened_ret| #is_failure, |__hardened_ret| #retry_when),
        false,
    );
    let next_attempt = guarded_call(
        &quote!(#private::next_attempt),
        output,
        &quote!(, _, _, _, _),
        &quote!(&mut __hardened_retrying, #attempt),
        true,
    );
    let attempts = quote! {
        async move {
            let mut __hardened_retrying = #start;
            loop {
                if let ::core::option::Option::Some(__hardened_done) = #next_attempt {
                    break __hardened_done;
                }
            }
        }
    };
    super::per_call::async_steps(plan, &private, attempts)
}

/// The future of a hedged call: its attempts made when [`next_hedge`] asks for one (the first at once,
/// hedges when the first is slow), each borrowing the arguments as a retried call's do.
///
/// [`next_hedge`]: ../../../../hardened/__private/fn.next_hedge.html
fn hedged_call(plan: &GuardPlan, krate: &Path, attempt: &TokenStream, is_failure: &TokenStream) -> TokenStream {
    let private = quote!(#krate::__private);
    let output = plan.output.as_ref();
    let retry_when = plan.retry.as_ref().map_or_else(|| quote!(true), |retry| retry_when(retry, output, &private));
    let start = guarded_call(
        &quote!(#private::hedging),
        output,
        &quote!(, _, _, _),
        &quote!(&__HARDENED_GUARDS, |__hardened_ret| #is_failure, |__hardened_ret| #retry_when),
        false,
    );
    let next_hedge =
        guarded_call(&quote!(#private::next_hedge), output, &quote!(, _, _, _), &quote!(&mut __hardened_hedging), true);
    let one = guarded_call(
        &quote!(#private::attempt),
        output,
        &quote!(, _, _),
        &quote!(&__HARDENED_GUARDS, #attempt, |__hardened_ret| #is_failure),
        false,
    );
    let attempts = quote! {
        async move {
            let mut __hardened_hedging = #start;
            loop {
                match #next_hedge {
                    ::core::option::Option::Some(__hardened_done) => break __hardened_done,
                    ::core::option::Option::None => __hardened_hedging.start(#one),
                }
            }
        }
    };
    super::per_call::async_steps(plan, &private, attempts)
}

/// `retry(when = ..)` as a test of a failed result, `true` without it.
fn retry_when(retry: &super::args::RetryArgs, output: Option<&Type>, private: &TokenStream) -> TokenStream {
    retry.when.as_ref().map_or_else(
        || quote!(true),
        |when| {
            // The whole call points at the path, so that every note of an unmet bound underlines only it.
            let at = when.span();
            // The error type is named, so that a mismatch shows it; a return type that has none is
            // reported where the other calls report it.
            let error_type = output.map(|ty| {
                let error = respanned(quote!(<#ty as #private::GuardedReturn>::Error), blame(ty));
                let (open, close) = (respanned(quote!(::<), at), respanned(quote!(>), at));
                quote!(#open #error #close)
            });
            let predicate = respanned(quote!(#private::RetryPredicate), at);
            let holds = respanned(quote!(::holds(&#when, __hardened_error)), at);
            let error = qualified(&quote!(#private::GuardedReturn::error(__hardened_ret)), output);
            quote!(#error.is_some_and(|__hardened_error| #predicate #error_type #holds))
        },
    )
}

#[cfg(test)]
mod tests {
    use quote::quote;
    use syn::parse_quote;

    use super::super::args::GuardArgs;
    use super::super::validate::plan;
    use super::*;
    use crate::common::errors::Errors;
    use crate::common::signature;

    /// The plan of guard arguments valid on an `async fn`.
    fn plan_of(tokens: TokenStream) -> GuardPlan {
        let item: syn::ItemFn = parse_quote! { async fn fetch() -> Result<u8, E> { Ok(1) } };
        let mut errors = Errors::default();
        let guards = GuardArgs::read_all(tokens, &mut errors);
        let plan = plan(guards, &item.sig, &signature::analyse(&item.sig, &item.block), &mut errors);
        assert!(errors.is_empty(), "valid guard arguments");
        plan
    }

    /// Tokens as text without spaces, which `quote!` places differently in `>>` and `> >`.
    fn text(tokens: &TokenStream) -> String {
        tokens.to_string().replace(' ', "")
    }

    #[test]
    fn guarded_calls_name_the_return_type() {
        let ty: Type = parse_quote!(Result<u32, LookupError>);
        let call = guarded_call(&quote!(::hardened::__private::run_sync), Some(&ty), &quote!(), &quote!(a, b), false);
        assert_eq!(text(&call), "::hardened::__private::run_sync::<Result<u32,LookupError>>(a,b)");
        let call = guarded_call(&quote!(attempt), Some(&ty), &quote!(, _), &quote!(a), true);
        assert_eq!(text(&call), "attempt::<Result<u32,LookupError>,_>(a).await");
        let failed = qualified(&quote!(::hardened::__private::GuardedReturn::error(ret).is_some()), Some(&ty));
        assert_eq!(
            text(&failed),
            "<Result<u32,LookupError>as::hardened::__private::GuardedReturn>::error(ret).is_some()"
        );
        // A predicate's own call is left alone.
        let predicate = quote!(!::hardened::__private::OutcomePredicate::<u8>::holds(&ok, ret));
        assert_eq!(text(&qualified(&predicate, Some(&ty))), text(&predicate));
    }

    #[test]
    fn every_algorithm_of_the_schema_is_expanded() {
        for word in hardened_schema::CONCURRENCY_ALGORITHMS {
            let plan = plan_of(format!("concurrency(limit = \"{word}\")").parse().expect("tokens"));
            let concurrency = plan.concurrency.expect("a concurrency limit");
            let expanded = concurrency_limit(&concurrency, &quote!(p)).map(|tokens| text(&tokens));
            assert!(expanded.is_some_and(|tokens| tokens.starts_with("p::Limit::Adaptive(p::Algorithm::")), "{word}");
        }
    }

    #[test]
    fn the_concurrency_limit_is_declared_between_rate_and_bulkhead() {
        let plan = plan_of(quote!(rate = 10, concurrency(name = "llm", limit = 8, wait = "5s"), bulkhead = 2));
        let expanded = text(&guards_static(&plan, &parse_quote!(::hardened)));
        let settings = "::hardened::__private::ConcurrencySettings{\
                        limit:::core::option::Option::Some(::hardened::__private::Limit::Fixed(8u32)),\
                        wait:::core::option::Option::Some(::hardened::__private::Duration::from_nanos(5000000000u64)),\
                        ..::hardened::__private::ConcurrencySettings::UNSET}";
        assert!(expanded.contains(settings), "{expanded}");
        let at = |settings: &str| expanded.find(settings).unwrap_or_else(|| panic!("{settings} in {expanded}"));
        let (rate, concurrency, bulkhead) = (at("RateSettings{"), at("ConcurrencySettings{"), at("BulkheadSettings{"));
        assert!(rate < concurrency && concurrency < bulkhead, "{expanded}");
        let adaptive = plan_of(quote!(concurrency(limit = "gradient", min = 2, max = 200)));
        let adaptive = text(&guards_static(&adaptive, &parse_quote!(::hardened)));
        let settings = "limit:::core::option::Option::Some(::hardened::__private::Limit::Adaptive(\
                        ::hardened::__private::Algorithm::Gradient)),\
                        min:::core::option::Option::Some(2u32),max:::core::option::Option::Some(200u32),";
        assert!(adaptive.contains(settings), "{adaptive}");
        // The short form sets only the limit.
        let short = text(&guards_static(&plan_of(quote!(concurrency = 3)), &parse_quote!(::hardened)));
        assert!(short.contains("ConcurrencySettings{limit:::core::option::Option::Some(::hardened::__private::Limit::Fixed(3u32)),..::hardened"), "{short}");
    }

    #[test]
    fn a_global_scope_asks_the_type_checker_for_the_redis_feature() {
        let plan = plan_of(quote!(rate(per_second = 5, scope = "global")));
        let expanded = text(&guards_static(&plan, &parse_quote!(::hardened)));
        assert!(expanded.contains("global_scope::<::hardened::__private::ThisBuild>()"), "{expanded}");
        assert!(expanded.contains("scope:::core::option::Option::Some(::hardened::__private::Scope::Global)"));
        let local = plan_of(quote!(rate(per_second = 5, scope = "local")));
        assert!(!text(&guards_static(&local, &parse_quote!(::hardened))).contains("global_scope"));
    }
}
