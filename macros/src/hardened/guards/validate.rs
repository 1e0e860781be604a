//! The guards checked against each other and against the function: a [`GuardPlan`], or every error found.

use std::time::Duration;

use hardened_schema::{breaker, bulkhead, concurrency, hedge, rate, retry};
use proc_macro2::Span;
use syn::{Path, ReturnType, Signature, Type};

use super::super::labels::label_value;
use super::args::{
    BreakerArgs, BulkheadArgs, COUNT, ConcurrencyArgs, GLOBAL, GuardArgs, HedgeArgs, RateArgs, RetryArgs, SchemaKey,
    judges_rates, whole, words,
};
use crate::common::errors::Errors;
use crate::common::meta::Spanned;
use crate::common::signature::{Analysis, Execution, Returns};
use crate::common::suggest;
use crate::common::tokens::written;

/// Checked guards, ready to expand.
pub(crate) struct GuardPlan {
    pub(super) breaker: Option<BreakerArgs>,
    pub(super) rate: Option<RateArgs>,
    pub(super) concurrency: Option<ConcurrencyArgs>,
    pub(super) bulkhead: Option<BulkheadArgs>,
    pub(super) retry: Option<RetryArgs>,
    pub(super) hedge: Option<HedgeArgs>,
    pub(super) timeout: Option<Duration>,
    pub(super) fallback: Option<Path>,
    /// The type the caller receives, as generated code can name it (`impl Trait` as `_`).
    pub(super) output: Option<Type>,
}

impl GuardPlan {
    /// Whether any guard runs around the call (a fallback alone wraps nothing).
    pub(crate) fn guards_call(&self) -> bool {
        self.breaker.is_some()
            || self.rate.is_some()
            || self.concurrency.is_some()
            || self.bulkhead.is_some()
            || self.retry.is_some()
            || self.hedge.is_some()
            || self.timeout.is_some()
    }

    /// Whether the guards of an asynchronous call run once around it, with neither retries, hedges nor a
    /// timeout, and one held guard at most: such a call runs as one future that admits it at its first
    /// poll, holding one permit. A call held by both a concurrency limit and a bulkhead runs as an attempt,
    /// which takes a permit of each.
    pub(crate) fn single_pass(&self) -> bool {
        self.guards_call()
            && self.retry.is_none()
            && self.hedge.is_none()
            && self.timeout.is_none()
            && !(self.concurrency.is_some() && self.bulkhead.is_some())
            && !self.takes_tokens()
            && !self.keyed_bulkhead()
    }

    /// Whether a call takes its bulkhead's permit by key, once, before the rest of the chain.
    pub(crate) fn keyed_bulkhead(&self) -> bool {
        self.bulkhead.as_ref().is_some_and(|bulkhead| bulkhead.key.is_some())
    }

    /// Whether a call takes its rate limiter's tokens by key or cost, once, before the rest of the chain.
    pub(crate) fn takes_tokens(&self) -> bool {
        self.rate.as_ref().is_some_and(RateArgs::per_call)
    }

    /// Whether a guard can refuse a call.
    pub(crate) fn refusable(&self) -> bool {
        self.breaker.is_some() || self.rate.is_some() || self.concurrency.is_some() || self.bulkhead.is_some()
    }

    pub(crate) fn has_timeout(&self) -> bool {
        self.timeout.is_some()
    }

    pub(crate) fn retries(&self) -> bool {
        self.retry.is_some()
    }

    /// Whether a hedged call may run the body more than once at a time without the author having said
    /// that is harmless (`hedge(.., idempotent)`).
    pub(crate) fn hedges_unmarked(&self) -> bool {
        self.hedge.as_ref().is_some_and(|hedge| !hedge.idempotent.as_ref().is_some_and(|flag| flag.value))
    }

    pub(crate) fn fallback(&self) -> Option<&Path> {
        self.fallback.as_ref()
    }
}

/// Checks that a number written under `setting` is within the range the schema gives `key`; wide ranges
/// are described by the bound crossed.
fn in_range(setting: &str, key: impl SchemaKey, value: Option<&Spanned<u64>>, errors: &mut Errors) {
    let Some(value) = value else { return };
    let (min, max) = whole(key);
    let found = value.value;
    let message = if (min..=max).contains(&found) {
        return;
    } else if max <= 1000 {
        format!("`{setting}` must be between {min} and {max}, found {found}")
    } else if found < min {
        format!("`{setting}` must be at least {min}, found {found}")
    } else {
        format!("`{setting}` must be at most {max}, found {found}")
    };
    errors.at(value.span, message);
}

/// The message for a return type that cannot carry a refusal, which rustc reports in the same words
/// (`GuardedReturn`'s `on_unimplemented`) when only the type checker can tell.
const NEEDS_RESULT: &str = "a function with guards must return `Result<T, E>` where `E: From<hardened::Rejected>`";

/// Checks the guards against each other and against the function.
pub(crate) fn plan(args: GuardArgs, sig: &Signature, analysis: &Analysis, errors: &mut Errors) -> GuardPlan {
    let synchronous = matches!(analysis.execution, Execution::Sync);
    let needs_async = |argument: &str, at: Span, errors: &mut Errors| {
        if synchronous {
            errors.at(at, format!("`{argument}` needs an `async fn`; `{}` is synchronous", sig.ident));
        }
    };
    let output_refused = args.guards_call() && check_output(sig, analysis, errors);
    if let Some(breaker) = &args.breaker {
        check_breaker(&breaker.value, errors);
    }
    check_names(&args, errors);
    if let Some(wait) = args.rate.as_ref().and_then(|rate| rate.value.wait.as_ref()) {
        needs_async(rate::Key::Wait.name(), wait.span, errors);
    }
    if let Some(rate) = &args.rate
        && let Some((key, _)) = &rate.value.scope
        && rate.value.global()
    {
        // A synchronous call cannot wait for Redis's answer.
        needs_async(&format!("{} = \"{GLOBAL}\"", rate::Key::Scope.name()), *key, errors);
    }
    // A result the guards refuse into is reported already; any other non-`Result` has no `Ok` to settle.
    let returns_result = analysis.returns == Returns::Result || output_refused;
    let rate = check_rate(args.rate, args.burst, returns_result, errors);
    if let Some(concurrency) = &args.concurrency {
        match &concurrency.value.limit {
            None if concurrency.value.algorithm.is_some() => {}
            None => {
                let (name, limit) = (concurrency::Key::Name, concurrency::Key::Limit);
                errors.at(
                    concurrency.span,
                    format!(
                        "`concurrency(..)` needs `{}`, such as `concurrency({}, {})`",
                        limit.name(),
                        name.example(),
                        limit.example()
                    ),
                );
            }
            Some((key, limit)) => in_range(key, concurrency::Key::Limit, Some(limit), errors),
        }
        check_adaptive(&concurrency.value, errors);
        // Calls over the limit queue for their turn, which only a future can do.
        needs_async("concurrency", concurrency.span, errors);
    }
    if let Some(bulkhead) = &args.bulkhead {
        match &bulkhead.value.max {
            None => {
                let (name, max) = (bulkhead::Key::Name.name(), bulkhead::Key::Max);
                errors.at(
                    bulkhead.span,
                    format!(
                        "`bulkhead(..)` needs `{}`, such as `bulkhead({name} = \"db\", {})`",
                        max.name(),
                        max.example()
                    ),
                );
            }
            Some((key, max)) => in_range(key, bulkhead::Key::Max, Some(max), errors),
        }
        if let Some(wait) = &bulkhead.value.wait {
            needs_async(bulkhead::Key::Wait.name(), wait.span, errors);
        }
    }
    if let Some(timeout) = &args.timeout {
        needs_async("timeout", timeout.span, errors);
    }
    if let Some(retry) = &args.retry {
        needs_async("retry", retry.span, errors);
        check_retry(&retry.value, errors);
    }
    check_hedge(args.hedge.as_ref(), sig, synchronous, errors);
    if let Some(fallback) = &args.fallback
        && analysis.returns != Returns::Result
        && !output_refused
    {
        let message = format!("`fallback = {}` needs the function to return a `Result`", written(fallback));
        match &sig.output {
            ReturnType::Type(_, ty) => errors.over(ty, message),
            ReturnType::Default => errors.over(&sig.ident, message),
        }
    }
    GuardPlan {
        breaker: args.breaker.map(|breaker| breaker.value),
        rate,
        concurrency: args.concurrency.map(|concurrency| concurrency.value),
        bulkhead: args.bulkhead.map(|bulkhead| bulkhead.value),
        retry: args.retry.map(|retry| retry.value),
        hedge: args.hedge.map(|hedge| hedge.value),
        timeout: args.timeout.map(|timeout| timeout.value),
        fallback: args.fallback,
        output: analysis.annotation.clone(),
    }
}

/// Checks the guards' names, which become metric label values.
fn check_names(args: &GuardArgs, errors: &mut Errors) {
    for name in [
        args.rate.as_ref().and_then(|rate| rate.value.name.as_ref()),
        args.concurrency.as_ref().and_then(|concurrency| concurrency.value.name.as_ref()),
        args.bulkhead.as_ref().and_then(|bulkhead| bulkhead.value.name.as_ref()),
        args.retry.as_ref().and_then(|retry| retry.value.name.as_ref()),
        args.hedge.as_ref().and_then(|hedge| hedge.value.name.as_ref()),
    ]
    .into_iter()
    .flatten()
    {
        label_value(rate::Key::Name.name(), name, errors);
    }
}

/// Checks `rate` and a top-level `burst`, which joins the rate's settings.
fn check_rate(
    rate: Option<Spanned<RateArgs>>,
    burst: Option<(Span, Spanned<u64>)>,
    returns_result: bool,
    errors: &mut Errors,
) -> Option<RateArgs> {
    let (per_second, burst_key) = (rate::Key::PerSecond, rate::Key::Burst);
    let Some(Spanned { value: mut rate, span }) = rate else {
        if let Some((key, _)) = burst {
            errors.at(
                key,
                format!(
                    "`{}` sizes a rate limiter, but there is no `rate`; add one, such as `rate({}, {})`",
                    burst_key.name(),
                    per_second.example(),
                    burst_key.example()
                ),
            );
        }
        return None;
    };
    match burst {
        Some((_, burst)) if rate.burst.is_none() => rate.burst = Some(burst),
        Some((key, _)) => {
            errors
                .at(key, format!("`{}` is given both here and inside `rate(..)`; keep one of them", burst_key.name()));
        }
        None => {}
    }
    if rate.per.is_none() {
        errors.at(
            span,
            format!(
                "`rate(..)` needs `{}` (or `{}` or `{}`), such as `rate({} = \"api\", {})`",
                per_second.name(),
                rate::Key::PerMinute.name(),
                rate::Key::PerHour.name(),
                rate::Key::Name.name(),
                per_second.example()
            ),
        );
    }
    let periods: Vec<&(rate::Key, Span)> = rate
        .keys
        .iter()
        .filter(|(key, _)| matches!(key, rate::Key::PerSecond | rate::Key::PerMinute | rate::Key::PerHour))
        .collect();
    if let [(first, _), (second, at), ..] = periods.as_slice() {
        errors.at(*at, format!("`{}` and `{}` both set the rate; keep one of them", first.name(), second.name()));
    }
    if let Some(settle) = rate.settle.as_ref().filter(|_| !returns_result) {
        let message = format!(
            "`{} = {}` reads the `Ok` value of a `Result`, but the function does not return one",
            rate::Key::Settle.name(),
            written(settle)
        );
        errors.over(settle, message);
    }
    if let Some(max_keys) = &rate.max_keys {
        in_range(rate::Key::MaxKeys.name(), rate::Key::MaxKeys, Some(max_keys), errors);
        if rate.key.is_none() {
            errors.at(
                max_keys.span,
                format!(
                    "`{}` bounds the buckets of a keyed rate limiter, but this one has no `{}`; add one, such as `{}`",
                    rate::Key::MaxKeys.name(),
                    rate::Key::Key.name(),
                    rate::Key::Key.example()
                ),
            );
        }
    }
    if let Some((_, scope)) = &rate.scope {
        one_of(rate::Key::Scope, scope, errors);
    }
    in_range(burst_key.name(), burst_key, rate.burst.as_ref(), errors);
    let period = periods.last().map(|(key, _)| *key);
    match (&rate.per, period) {
        // A whole number per minute or hour, in the schema's range.
        (Some(per), Some(key @ (rate::Key::PerMinute | rate::Key::PerHour))) => {
            in_range(key.name(), key, Some(&Spanned { value: per.value.0, span: per.span }), errors);
        }
        (Some(per), _) if per.value.0 > u64::from(u32::MAX) => {
            errors.at(per.span, format!("a rate may admit at most {} calls per period", u32::MAX));
        }
        _ => {}
    }
    Some(rate)
}

/// `hedge`: an `async fn` (attempts race each other, which only futures can do), and `max` in range.
fn check_hedge(hedge: Option<&Spanned<HedgeArgs>>, sig: &Signature, synchronous: bool, errors: &mut Errors) {
    let Some(hedge) = hedge else { return };
    if synchronous {
        errors.at(hedge.span, format!("`hedge` needs an `async fn`; `{}` is synchronous", sig.ident));
    }
    in_range(hedge::Key::Max.name(), hedge::Key::Max, hedge.value.max.as_ref(), errors);
}

fn check_retry(retry: &RetryArgs, errors: &mut Errors) {
    if let Some((key, attempts)) = &retry.attempts {
        in_range(key, retry::Key::Attempts, Some(attempts), errors);
    }
    if let (Some(backoff), Some(max_backoff)) = (&retry.backoff, &retry.max_backoff)
        && max_backoff.value < backoff.value
    {
        errors.at(
            max_backoff.span,
            format!(
                "`{}` must be at least `{}` ({}), found {}",
                retry::Key::MaxBackoff.name(),
                retry::Key::Backoff.name(),
                humantime::format_duration(backoff.value),
                humantime::format_duration(max_backoff.value)
            ),
        );
    }
}

/// Refuses, with a message, a function whose return type is certain not to carry a refusal: none at
/// all, or an opaque `impl Trait`. Other types are left to the type checker, which can see through
/// aliases. Returns whether it refused.
fn check_output(sig: &Signature, analysis: &Analysis, errors: &mut Errors) -> bool {
    match &analysis.output {
        None => {
            errors.over(&sig.ident, format!("{NEEDS_RESULT}; `{}` returns `()`", sig.ident));
            true
        }
        Some(ty) if matches!(peel(ty), Type::ImplTrait(_)) => {
            errors.over(ty, format!("{NEEDS_RESULT}, not an `impl Trait` type"));
            true
        }
        Some(_) => false,
    }
}

/// `ty` without the parentheses and invisible groups around it.
pub(super) fn peel(ty: &Type) -> &Type {
    match ty {
        Type::Paren(inner) => peel(&inner.elem),
        Type::Group(inner) => peel(&inner.elem),
        other => other,
    }
}

fn check_breaker(breaker: &BreakerArgs, errors: &mut Errors) {
    use breaker::Key;
    if let Some((key, name)) = &breaker.name {
        label_value(key, name, errors);
    }
    for (key, value) in [
        (Key::FailureRate, &breaker.failure_rate),
        (Key::SlowRate, &breaker.slow_rate),
        (Key::Window, &breaker.window),
        (Key::MinCalls, &breaker.min_calls),
        (Key::HalfOpenCalls, &breaker.half_open_calls),
        (Key::ConsecutiveFailures, &breaker.consecutive_failures),
    ] {
        in_range(key.name(), key, value.as_ref(), errors);
    }
    let counts_calls = match &breaker.window_kind {
        Some(kind) => one_of(Key::WindowKind, kind, errors) && kind.value == COUNT,
        None => true,
    };
    if let (Some(window), Some(min_calls)) = (&breaker.window, &breaker.min_calls)
        && counts_calls
        && min_calls.value > window.value
        && window.value > 0
    {
        errors.at(
            min_calls.span,
            format!(
                "`{}` must be at most `{}` ({}), found {}; a count window never holds more calls",
                Key::MinCalls.name(),
                Key::Window.name(),
                window.value,
                min_calls.value
            ),
        );
    }
    if breaker.consecutive_failures.is_some() {
        for (key, at) in breaker.keys.iter().filter(|(key, _)| judges_rates(*key)) {
            errors.at(
                *at,
                format!(
                    "`{}` has no effect with `{}`, which opens the breaker after failures in a row instead of \
                     judging rates; remove one of them",
                    key.name(),
                    Key::ConsecutiveFailures.name()
                ),
            );
        }
    }
}

/// Checks that a word written under `key` is one of the schema's words for it, suggesting a near miss;
/// returns whether it is.
/// An adaptive limit's algorithm and its bounds: a known word, `min` ≤ `max`, and no bounds on a fixed limit.
fn check_adaptive(concurrency: &ConcurrencyArgs, errors: &mut Errors) {
    use concurrency::Key;
    if let Some(algorithm) = &concurrency.algorithm
        && !words(Key::Limit).contains(&algorithm.value.as_str())
    {
        let suggestion = suggest::closest(&algorithm.value, words(Key::Limit))
            .map(|word| format!("; did you mean `{word}`?"))
            .unwrap_or_default();
        errors.at(
            algorithm.span,
            format!(
                "`limit` must be a whole number or an algorithm, {}, found `{}`{suggestion}",
                suggest::one_of(words(Key::Limit)),
                algorithm.value.escape_debug()
            ),
        );
    }
    in_range(Key::Min.name(), Key::Min, concurrency.min.as_ref(), errors);
    in_range(Key::Max.name(), Key::Max, concurrency.max.as_ref(), errors);
    if let Some((_, limit)) = &concurrency.limit {
        for (key, at) in concurrency.keys.iter().filter(|(key, _)| matches!(key, Key::Min | Key::Max)) {
            errors.at(
                *at,
                format!(
                    "`{key}` bounds an adaptive limit, but `limit = {}` is fixed; set `limit` to {} to adapt \
                     it, or remove `{key}`",
                    limit.value,
                    suggest::one_of(words(Key::Limit)),
                    key = key.name(),
                ),
            );
        }
    }
    if let (Some(min), Some(max)) = (&concurrency.min, &concurrency.max)
        && min.value > max.value
    {
        errors.at(min.span, format!("`min` must be at most `max` ({}), found {}", max.value, min.value));
    }
}

fn one_of(key: impl SchemaKey, word: &Spanned<String>, errors: &mut Errors) -> bool {
    let allowed = words(key);
    if allowed.contains(&word.value.as_str()) {
        return true;
    }
    let suggestion =
        suggest::closest(&word.value, allowed).map(|word| format!("; did you mean `{word}`?")).unwrap_or_default();
    errors.at(
        word.span,
        format!(
            "`{}` must be {}, found `{}`{suggestion}",
            key.name(),
            suggest::one_of(allowed),
            word.value.escape_debug()
        ),
    );
    false
}

#[cfg(test)]
mod tests {
    use proc_macro2::TokenStream;
    use quote::{ToTokens, quote};
    use syn::{ItemFn, parse_quote};

    use super::*;
    use crate::common::signature;

    fn check(args: TokenStream, item: &ItemFn) -> Result<GuardPlan, Vec<String>> {
        let mut errors = Errors::default();
        let guards = GuardArgs::read_all(args, &mut errors);
        let analysis = signature::analyse(&item.sig, &item.block);
        let plan = plan(guards, &item.sig, &analysis, &mut errors);
        match errors.finish() {
            Ok(()) => Ok(plan),
            Err(error) => Err(error.into_iter().map(|error| error.to_string()).collect()),
        }
    }

    fn errors(args: TokenStream, item: &ItemFn) -> Vec<String> {
        check(args, item).err().unwrap_or_default()
    }

    fn sync_fn() -> ItemFn {
        parse_quote! { fn poll_upstream() -> Result<u8, E> { Ok(1) } }
    }

    fn async_fn() -> ItemFn {
        parse_quote! { async fn fetch() -> Result<u8, E> { Ok(1) } }
    }

    #[test]
    fn reads_every_short_and_full_form() {
        let plan = check(
            quote! {
                breaker(name = "llm", failure_rate = 40, slow_rate = 80, slow_call = "2s", window = 20,
                        window_kind = "count", min_calls = 5, open_for = "1m", half_open_calls = 2),
                rate(name = "api", per_second = 10, burst = 20, wait = "1s"),
                concurrency(name = "llm", limit = 8, wait = "5s"),
                bulkhead(name = "db", max = 5, wait = "2s"),
                retry(name = "llm", attempts = 3, backoff = "100ms", max_backoff = "5s", jitter = false, when = ok),
                timeout = "30s", fallback = cached
            },
            &async_fn(),
        )
        .unwrap_or_else(|errors| panic!("{errors:?}"));
        assert!(plan.guards_call() && plan.refusable() && plan.retries() && plan.has_timeout());
        let rate = plan.rate.expect("a rate");
        assert_eq!(rate.per.map(|per| per.value), Some((10, Duration::from_secs(1))));
        assert_eq!(rate.burst.map(|burst| burst.value), Some(20));
        assert_eq!(plan.timeout, Some(Duration::from_secs(30)));
        let concurrency = plan.concurrency.expect("a concurrency limit");
        assert_eq!(concurrency.limit.map(|(key, limit)| (key, limit.value)), Some(("limit", 8)));
        assert_eq!(concurrency.wait.map(|wait| wait.value), Some(Duration::from_secs(5)));

        for short in [
            quote!(breaker = "llm"),
            quote!(breaker),
            quote!(rate = 10),
            quote!(rate = "100/min", burst = 20),
            quote!(bulkhead = 5),
            quote!(breaker(consecutive_failures = 5)),
        ] {
            assert!(check(short.clone(), &sync_fn()).is_ok(), "{short}");
        }
        for short in [quote!(timeout = "30s"), quote!(retry = 2), quote!(retry), quote!(concurrency = 8)] {
            assert!(check(short.clone(), &async_fn()).is_ok(), "{short}");
        }
        let plan = check(quote!(concurrency = 8), &async_fn()).unwrap_or_else(|errors| panic!("{errors:?}"));
        assert!(plan.guards_call() && plan.refusable() && plan.single_pass());
        let concurrency = plan.concurrency.expect("a concurrency limit");
        assert_eq!(concurrency.limit.map(|(key, limit)| (key, limit.value)), Some(("concurrency", 8)));
        assert!(concurrency.name.is_none() && concurrency.wait.is_none());
        // Held by two guards, a call runs as an attempt, which takes a permit of each.
        let both =
            check(quote!(concurrency = 8, bulkhead = 2), &async_fn()).unwrap_or_else(|errors| panic!("{errors:?}"));
        assert!(both.guards_call() && !both.single_pass());
        let plan = check(quote!(rate = 2.5), &sync_fn()).unwrap_or_else(|errors| panic!("{errors:?}"));
        assert_eq!(plan.rate.and_then(|rate| rate.per).map(|per| per.value), Some((1, Duration::from_millis(400))));
    }

    #[test]
    fn a_top_level_burst_joins_the_rate() {
        let plan =
            check(quote!(rate = "100/min", burst = 20), &sync_fn()).unwrap_or_else(|errors| panic!("{errors:?}"));
        assert_eq!(plan.rate.and_then(|rate| rate.burst).map(|burst| burst.value), Some(20));
        assert_eq!(
            errors(quote!(rate(per_second = 10, burst = 20), burst = 30), &sync_fn()),
            ["`burst` is given both here and inside `rate(..)`; keep one of them"]
        );
        assert_eq!(
            errors(quote!(burst = 20), &sync_fn()),
            [
                "`burst` sizes a rate limiter, but there is no `rate`; add one, such as `rate(per_second = 10, burst = 20)`"
            ]
        );
    }

    #[test]
    fn names_the_argument_the_user_wrote() {
        assert_eq!(errors(quote!(retry = 0), &async_fn()), ["`retry` must be between 1 and 100, found 0"]);
        assert_eq!(
            errors(quote!(retry(attempts = 101)), &async_fn()),
            ["`attempts` must be between 1 and 100, found 101"]
        );
        assert_eq!(errors(quote!(bulkhead = 0), &sync_fn()), ["`bulkhead` must be at least 1, found 0"]);
        assert_eq!(errors(quote!(concurrency = 0), &async_fn()), ["`concurrency` must be at least 1, found 0"]);
        assert_eq!(errors(quote!(concurrency(limit = 0)), &async_fn()), ["`limit` must be at least 1, found 0"]);
        assert_eq!(
            errors(quote!(concurrency(name = "llm pool", limit = 2)), &async_fn()),
            ["`name` may contain only ASCII letters, digits, `_`, `.`, `:` and `-`, found a space in `llm pool`"]
        );
        assert_eq!(
            errors(quote!(breaker = "llm api"), &sync_fn()),
            ["`breaker` may contain only ASCII letters, digits, `_`, `.`, `:` and `-`, found a space in `llm api`"]
        );
        assert_eq!(errors(quote!(rate(name = "", per_second = 1)), &sync_fn()), ["`name` cannot be empty"]);
    }

    /// Each whole-number key of `K` the attribute accepts, written just outside the schema's range, is
    /// refused naming the bound it crosses; its largest value is accepted. `rest` completes the guard; a
    /// key it writes is not walked, nor are those of `skip`.
    fn walk_ranges<K: SchemaKey>(kind: &str, rest: &str, skip: &[&str]) {
        for key in K::ALL.iter().copied().filter(|key| key.spec().accepted.in_attribute()) {
            let (hardened_schema::Value::Whole { min, max } | hardened_schema::Value::WholeOrOneOf { min, max, .. }) =
                key.spec().value
            else {
                continue;
            };
            if rest.contains(&format!("{} =", key.name())) || skip.contains(&key.name()) {
                continue;
            }
            let written = |value: u64| -> TokenStream {
                format!("{kind}({rest}{} = {value})", key.name()).parse().expect("tokens")
            };
            for (outside, bound) in [(min - 1, min), (max + 1, max)] {
                let found = errors(written(outside), &async_fn());
                let [message] = found.as_slice() else { panic!("{kind}.{} = {outside}: {found:?}", key.name()) };
                assert!(message.starts_with(&format!("`{}` must be", key.name())), "{message}");
                assert!(message.contains(&format!(" {bound}")), "{message} names {bound}");
            }
            assert!(check(written(max), &async_fn()).is_ok(), "{kind}.{} = {max}", key.name());
        }
    }

    #[test]
    fn adaptive_limits_name_a_known_algorithm_and_bounds_in_order() {
        for algorithm in hardened_schema::CONCURRENCY_ALGORITHMS {
            let written: TokenStream =
                format!("concurrency(limit = \"{algorithm}\", min = 2, max = 200)").parse().expect("tokens");
            let plan = check(written, &async_fn()).unwrap_or_else(|errors| panic!("{errors:?}"));
            let concurrency = plan.concurrency.expect("a concurrency limit");
            assert_eq!(concurrency.algorithm.map(|word| word.value).as_deref(), Some(*algorithm));
            assert!(concurrency.limit.is_none());
        }
        assert_eq!(
            errors(quote!(concurrency(limit = "gradiant")), &async_fn()),
            [
                "`limit` must be a whole number or an algorithm, `aimd`, `vegas` or `gradient`, found `gradiant`; did you \
              mean `gradient`?"
            ]
        );
        assert_eq!(
            errors(quote!(concurrency(limit = "aimd", min = 10, max = 5)), &async_fn()),
            ["`min` must be at most `max` (5), found 10"]
        );
        assert_eq!(
            errors(quote!(concurrency(limit = 8, min = 2)), &async_fn()),
            ["`min` bounds an adaptive limit, but `limit = 8` is fixed; set `limit` to `aimd`, `vegas` or `gradient` \
              to adapt it, or remove `min`"]
        );
    }

    #[test]
    fn whole_numbers_outside_the_schemas_range_are_refused() {
        walk_ranges::<breaker::Key>("breaker", "", &[]);
        walk_ranges::<rate::Key>("rate", "per_second = 10, key = user, ", &["per_minute", "per_hour"]);
        // Each of the other periods alone sets the rate.
        walk_ranges::<rate::Key>("rate", "key = user, burst = 5, max_keys = 9, ", &[]);
        // `min` and `max` bound an adaptive limit only.
        walk_ranges::<concurrency::Key>("concurrency", "", &["min", "max"]);
        walk_ranges::<concurrency::Key>("concurrency", "limit = \"gradient\", ", &[]);
        walk_ranges::<bulkhead::Key>("bulkhead", "", &[]);
        walk_ranges::<retry::Key>("retry", "", &[]);
    }

    #[test]
    fn describes_wide_ranges_by_the_bound_crossed() {
        assert_eq!(errors(quote!(breaker(window = 0)), &sync_fn()), ["`window` must be at least 1, found 0"]);
        assert_eq!(
            errors(quote!(breaker(window = 2000000)), &sync_fn()),
            ["`window` must be at most 1048576, found 2000000"]
        );
        assert_eq!(
            errors(quote!(breaker(failure_rate = 0, slow_rate = 101)), &sync_fn()),
            ["`failure_rate` must be between 1 and 100, found 0", "`slow_rate` must be between 1 and 100, found 101"]
        );
    }

    #[test]
    fn refuses_negative_and_oversized_numbers() {
        assert_eq!(
            errors(quote!(breaker(failure_rate = -5)), &sync_fn()),
            ["`failure_rate` expects a whole number such as `failure_rate = 50`, found `-5`"]
        );
        assert_eq!(
            errors(quote!(breaker(window = 99999999999999999999)), &sync_fn()),
            ["`window` is too large, found 99999999999999999999"]
        );
    }

    #[test]
    fn rate_settings_conflict_with_consecutive_failures() {
        assert_eq!(
            errors(
                quote!(breaker(consecutive_failures = 5, failure_rate = 50, min_calls = 3, open_for = "1s")),
                &sync_fn()
            ),
            [
                "`failure_rate` has no effect with `consecutive_failures`, which opens the breaker after failures in a \
                 row instead of judging rates; remove one of them",
                "`min_calls` has no effect with `consecutive_failures`, which opens the breaker after failures in a row \
                 instead of judging rates; remove one of them",
            ]
        );
    }

    #[test]
    fn min_calls_must_fit_in_a_count_window() {
        assert_eq!(
            errors(quote!(breaker(window = 20, min_calls = 50)), &sync_fn()),
            ["`min_calls` must be at most `window` (20), found 50; a count window never holds more calls"]
        );
        // A time window is measured in seconds, not calls.
        assert!(check(quote!(breaker(window = 20, window_kind = "time", min_calls = 50)), &sync_fn()).is_ok());
    }

    #[test]
    fn window_kind_suggests_a_near_miss() {
        assert_eq!(
            errors(quote!(breaker(window_kind = "counts")), &sync_fn()),
            ["`window_kind` must be `count` or `time`, found `counts`; did you mean `count`?"]
        );
        assert_eq!(
            errors(quote!(breaker(window_kind = "sliding")), &sync_fn()),
            ["`window_kind` must be `count` or `time`, found `sliding`"]
        );
    }

    #[test]
    fn async_only_settings_name_the_function() {
        assert_eq!(
            errors(
                quote!(timeout = "1s", retry = 2, rate(per_second = 1, wait = "1s"), bulkhead(max = 1, wait = "1s")),
                &sync_fn()
            ),
            [
                "`wait` needs an `async fn`; `poll_upstream` is synchronous",
                "`wait` needs an `async fn`; `poll_upstream` is synchronous",
                "`timeout` needs an `async fn`; `poll_upstream` is synchronous",
                "`retry` needs an `async fn`; `poll_upstream` is synchronous",
            ]
        );
    }

    #[test]
    fn concurrency_needs_an_async_fn_and_a_limit() {
        assert_eq!(
            errors(quote!(concurrency = 8), &sync_fn()),
            ["`concurrency` needs an `async fn`; `poll_upstream` is synchronous"]
        );
        // One error for the guard, none for its `wait`.
        assert_eq!(
            errors(quote!(concurrency(limit = 8, wait = "5s")), &sync_fn()),
            ["`concurrency` needs an `async fn`; `poll_upstream` is synchronous"]
        );
        assert_eq!(
            errors(quote!(concurrency(name = "llm", wait = "5s")), &async_fn()),
            ["`concurrency(..)` needs `limit`, such as `concurrency(name = \"llm\", limit = 8)`"]
        );
        assert_eq!(
            errors(quote!(concurrency), &async_fn()),
            ["`concurrency` needs a value, such as `concurrency = 8`"]
        );
        assert_eq!(
            errors(quote!(concurrency(limit = 8, wait = "0s")), &async_fn()),
            ["`wait` must be longer than zero, found `\"0s\"`"]
        );
    }

    #[test]
    fn checks_durations_and_rates() {
        assert_eq!(errors(quote!(timeout = "0s"), &async_fn()), ["`timeout` must be longer than zero, found `\"0s\"`"]);
        assert_eq!(
            errors(quote!(breaker(open_for = "30 parsecs")), &sync_fn()),
            ["`open_for` expects a duration such as `\"30s\"` or `\"250ms\"`, found `\"30 parsecs\"`"]
        );
        assert_eq!(
            errors(quote!(retry(backoff = "1s", max_backoff = "100ms")), &async_fn()),
            ["`max_backoff` must be at least `backoff` (1s), found 100ms"]
        );
        assert_eq!(
            errors(quote!(rate = "10/fortnight"), &sync_fn()),
            ["unknown period `fortnight` in `rate`; a rate is given per `s`, `min` or `h`, such as `\"100/min\"`"]
        );
        assert_eq!(errors(quote!(rate = 0), &sync_fn()), ["`rate` must admit at least one call, found 0"]);
    }

    #[test]
    fn scope_is_local_or_global_and_global_needs_an_async_fn() {
        let plan = check(quote!(rate(name = "anthropic", per_second = 50, burst = 100, scope = "global")), &async_fn())
            .unwrap_or_else(|errors| panic!("{errors:?}"));
        assert!(plan.rate.is_some_and(|rate| rate.global()));
        assert!(check(quote!(rate(per_second = 5, scope = "local")), &sync_fn()).is_ok());
        assert_eq!(
            errors(quote!(rate(per_second = 5, scope = "globl")), &async_fn()),
            ["`scope` must be `local` or `global`, found `globl`; did you mean `global`?"]
        );
        assert_eq!(
            errors(quote!(rate(per_second = 5, scope = "cluster")), &async_fn()),
            ["`scope` must be `local` or `global`, found `cluster`"]
        );
        assert_eq!(
            errors(quote!(rate(per_second = 5, scope = "global")), &sync_fn()),
            ["`scope = \"global\"` needs an `async fn`; `poll_upstream` is synchronous"]
        );
        assert_eq!(
            errors(quote!(rate(per_second = 5, scope = global)), &async_fn()),
            ["`scope` expects a string, found `global`; write `scope = \"global\"`"]
        );
    }

    #[test]
    fn unknown_and_repeated_settings() {
        assert_eq!(
            errors(quote!(breaker(failur_rate = 50)), &sync_fn()),
            ["unknown `breaker` setting `failur_rate`; did you mean `failure_rate`?"]
        );
        assert_eq!(
            errors(quote!(bulkhead(limit = 5)), &sync_fn()),
            ["unknown `bulkhead` setting `limit`; expected one of `name`, `max`, `wait` or `key`"]
        );
        assert_eq!(
            errors(quote!(concurrency(limt = 5)), &async_fn()),
            ["unknown `concurrency` setting `limt`; did you mean `limit`?"]
        );
        assert_eq!(
            errors(quote!(concurrency(capacity = 5)), &async_fn()),
            ["unknown `concurrency` setting `capacity`; expected one of `name`, `limit`, `wait`, `min` or `max`"]
        );
        assert_eq!(
            errors(quote!(breaker(window = 10, window = 20)), &sync_fn()),
            ["`window` is given more than once in `breaker(..)`"]
        );
    }

    #[test]
    fn explains_closures_where_a_function_is_expected() {
        assert_eq!(
            errors(quote!(retry(when = |_| true)), &async_fn()),
            [
                "`when` expects a path to a function such as `when = is_transient`, not a closure; define a function and name it"
            ]
        );
    }

    #[test]
    fn refuses_returns_that_cannot_carry_a_refusal() {
        let unit: ItemFn = parse_quote! { async fn ping() {} };
        assert_eq!(
            errors(quote!(timeout = "1s"), &unit),
            [
                "a function with guards must return `Result<T, E>` where `E: From<hardened::Rejected>`; `ping` returns `()`"
            ]
        );
        let opaque: ItemFn = parse_quote! { fn label() -> impl Display { 1 } };
        assert_eq!(
            errors(quote!(breaker, fallback = zero), &opaque),
            [
                "a function with guards must return `Result<T, E>` where `E: From<hardened::Rejected>`, not an `impl Trait` type"
            ]
        );
        let value: ItemFn = parse_quote! { fn count() -> u32 { 1 } };
        assert_eq!(
            errors(quote!(fallback = zero), &value),
            ["`fallback = zero` needs the function to return a `Result`"]
        );
        // Whether a `u32` or an alias can carry a refusal is the type checker's to say.
        assert!(check(quote!(breaker), &value).is_ok());
        let opaque_ok: ItemFn = parse_quote! { async fn f() -> Result<impl Display, E> { Ok(1) } };
        assert!(check(quote!(breaker), &opaque_ok).is_ok());
    }

    #[test]
    fn opaque_types_are_inferred() {
        let ty: Type = parse_quote!(Result<impl Display, E>);
        let inferred = quote!(Result<_, E>).to_string();
        assert_eq!(crate::common::signature::without_impl_trait(&ty).to_token_stream().to_string(), inferred);
        let item: ItemFn = parse_quote! { async fn f() -> Result<impl Display, E> { Ok(1) } };
        let plan = check(quote!(breaker), &item).unwrap_or_else(|errors| panic!("{errors:?}"));
        assert_eq!(plan.output.map(|ty| ty.to_token_stream().to_string()), Some(inferred));
    }
}
