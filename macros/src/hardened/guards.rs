//! The resilience guards of `#[hardened]`: `breaker`, `rate` (with `burst`), `bulkhead`, `timeout`,
//! `retry` and `fallback`, from what the user wrote to the code that runs them.
//!
//! Reading, checking and expanding the guards live together here so that the rest of the macro only
//! forwards to this module: `args` hands it the guard arguments, `validate` asks it for a [`GuardPlan`],
//! and `expand` asks it for the guard static and the guarded body.

use std::time::Duration;

use darling::ast::NestedMeta;
use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned as _;
use syn::{Expr, Lit, Meta, Path, ReturnType, Signature};

use super::args::{Spanned, boolean, key, path, string, value};
use super::validate::label_value;
use crate::common::errors::Errors;
use crate::common::signature::{Analysis, Execution, Returns};
use crate::common::suggest;

/// Arguments that configure a guard.
pub(crate) const GUARD_ARGUMENTS: &[&str] = &["breaker", "rate", "burst", "bulkhead", "timeout", "retry", "fallback"];

const BREAKER_SETTINGS: &[&str] = &[
    "name",
    "failure_rate",
    "slow_rate",
    "slow_call",
    "window",
    "window_kind",
    "min_calls",
    "open_for",
    "half_open_calls",
    "consecutive_failures",
];
const RATE_SETTINGS: &[&str] = &["name", "per_second", "burst", "wait"];
const BULKHEAD_SETTINGS: &[&str] = &["name", "max", "wait"];
const RETRY_SETTINGS: &[&str] = &["name", "attempts", "backoff", "max_backoff", "jitter", "when"];

/// Largest breaker window the runtime accepts (calls or seconds).
const MAX_WINDOW: u64 = 1 << 20;

/// `breaker = "name"` or `breaker(..)`.
#[derive(Clone, Default)]
pub(crate) struct BreakerArgs {
    name: Option<Spanned<String>>,
    failure_rate: Option<Spanned<u64>>,
    slow_rate: Option<Spanned<u64>>,
    slow_call: Option<Spanned<Duration>>,
    window: Option<Spanned<u64>>,
    window_kind: Option<Spanned<String>>,
    min_calls: Option<Spanned<u64>>,
    open_for: Option<Spanned<Duration>>,
    half_open_calls: Option<Spanned<u64>>,
    consecutive_failures: Option<Spanned<u64>>,
}

/// `rate = 10`, `rate = "100/min"` or `rate(..)`.
#[derive(Clone, Default)]
pub(crate) struct RateArgs {
    name: Option<Spanned<String>>,
    /// Calls and the period they are spread over.
    per: Option<Spanned<(u64, Duration)>>,
    burst: Option<Spanned<u64>>,
    wait: Option<Spanned<Duration>>,
}

/// `bulkhead = 5` or `bulkhead(..)`.
#[derive(Clone, Default)]
pub(crate) struct BulkheadArgs {
    name: Option<Spanned<String>>,
    max: Option<Spanned<u64>>,
    wait: Option<Spanned<Duration>>,
}

/// `retry = 3` or `retry(..)`.
#[derive(Clone, Default)]
pub(crate) struct RetryArgs {
    name: Option<Spanned<String>>,
    attempts: Option<Spanned<u64>>,
    backoff: Option<Spanned<Duration>>,
    max_backoff: Option<Spanned<Duration>>,
    jitter: Option<Spanned<bool>>,
    when: Option<Path>,
}

/// The guard arguments of one attribute, as written; each with the span of its key.
#[derive(Clone, Default)]
pub(crate) struct GuardArgs {
    breaker: Option<Spanned<BreakerArgs>>,
    rate: Option<Spanned<RateArgs>>,
    burst: Option<Spanned<u64>>,
    bulkhead: Option<Spanned<BulkheadArgs>>,
    timeout: Option<Spanned<Duration>>,
    retry: Option<Spanned<RetryArgs>>,
    fallback: Option<Path>,
}

impl GuardArgs {
    /// Reads one guard argument; `key` is one of [`GUARD_ARGUMENTS`].
    pub(crate) fn read(&mut self, key: &str, meta: &Meta) -> syn::Result<()> {
        let at = meta.path().span();
        match key {
            "breaker" => self.breaker = Some(Spanned { value: breaker(meta)?, span: at }),
            "rate" => self.rate = Some(Spanned { value: rate(meta)?, span: at }),
            "burst" => self.burst = Some(integer(meta, "burst = 20")?),
            "bulkhead" => self.bulkhead = Some(Spanned { value: bulkhead(meta)?, span: at }),
            "timeout" => self.timeout = Some(duration(meta, "timeout = \"30s\"")?),
            "retry" => self.retry = Some(Spanned { value: retry(meta)?, span: at }),
            "fallback" => self.fallback = Some(path(meta, "fallback = cached_answer")?),
            _ => unreachable!("`{key}` is not a guard argument"),
        }
        Ok(())
    }

    /// Guards set here replace those of `outer` (a method's own attribute inside an annotated block).
    pub(crate) fn over(self, outer: GuardArgs) -> GuardArgs {
        GuardArgs {
            breaker: self.breaker.or(outer.breaker),
            rate: self.rate.or(outer.rate),
            burst: self.burst.or(outer.burst),
            bulkhead: self.bulkhead.or(outer.bulkhead),
            timeout: self.timeout.or(outer.timeout),
            retry: self.retry.or(outer.retry),
            fallback: self.fallback.or(outer.fallback),
        }
    }
}

/// Reads `guard(key = value, ..)`, checking each key against `settings`.
fn settings(
    meta: &Meta,
    guard: &str,
    settings: &[&str],
    mut read: impl FnMut(&str, &Meta) -> syn::Result<()>,
) -> syn::Result<()> {
    let Meta::List(list) = meta else { unreachable!("only lists have settings") };
    let mut errors: Option<syn::Error> = None;
    let mut push = |error: syn::Error| match &mut errors {
        Some(errors) => errors.combine(error),
        None => errors = Some(error),
    };
    let mut seen: Vec<String> = Vec::new();
    for item in NestedMeta::parse_meta_list(list.tokens.clone())? {
        let NestedMeta::Meta(inner) = &item else {
            push(syn::Error::new_spanned(&item, format!("expected a `{guard}` setting such as `name = \"...\"`")));
            continue;
        };
        let setting = key(inner);
        let at = inner.path().span();
        if !settings.contains(&setting.as_str()) {
            let message = match suggest::closest(&setting, settings) {
                Some(candidate) => format!("unknown `{guard}` setting `{setting}`; did you mean `{candidate}`?"),
                None => {
                    format!("unknown `{guard}` setting `{setting}`; expected one of {}", suggest::listing(settings))
                }
            };
            push(syn::Error::new(at, message));
            continue;
        }
        if seen.contains(&setting) {
            push(syn::Error::new(at, format!("`{setting}` is given more than once")));
            continue;
        }
        seen.push(setting.clone());
        if let Err(error) = read(&setting, inner) {
            push(error);
        }
    }
    errors.map_or(Ok(()), Err)
}

fn breaker(meta: &Meta) -> syn::Result<BreakerArgs> {
    let mut args = BreakerArgs::default();
    match meta {
        Meta::Path(_) => {}
        Meta::NameValue(_) => args.name = Some(string(meta, "breaker = \"llm\"")?),
        Meta::List(_) => settings(meta, "breaker", BREAKER_SETTINGS, |setting, inner| {
            match setting {
                "name" => args.name = Some(string(inner, "name = \"llm\"")?),
                "failure_rate" => args.failure_rate = Some(integer(inner, "failure_rate = 50")?),
                "slow_rate" => args.slow_rate = Some(integer(inner, "slow_rate = 100")?),
                "slow_call" => args.slow_call = Some(duration(inner, "slow_call = \"2s\"")?),
                "window" => args.window = Some(integer(inner, "window = 100")?),
                "window_kind" => args.window_kind = Some(string(inner, "window_kind = \"count\"")?),
                "min_calls" => args.min_calls = Some(integer(inner, "min_calls = 10")?),
                "open_for" => args.open_for = Some(duration(inner, "open_for = \"30s\"")?),
                "half_open_calls" => args.half_open_calls = Some(integer(inner, "half_open_calls = 3")?),
                _ => args.consecutive_failures = Some(integer(inner, "consecutive_failures = 5")?),
            }
            Ok(())
        })?,
    }
    Ok(args)
}

fn rate(meta: &Meta) -> syn::Result<RateArgs> {
    let mut args = RateArgs::default();
    match meta {
        Meta::Path(path) => {
            return Err(syn::Error::new_spanned(
                path,
                "`rate` needs a value, such as `rate = 10` or `rate = \"100/min\"`",
            ));
        }
        Meta::NameValue(_) => args.per = Some(per(meta)?),
        Meta::List(_) => settings(meta, "rate", RATE_SETTINGS, |setting, inner| {
            match setting {
                "name" => args.name = Some(string(inner, "name = \"anthropic\"")?),
                "per_second" => args.per = Some(per(inner)?),
                "burst" => args.burst = Some(integer(inner, "burst = 20")?),
                _ => args.wait = Some(duration(inner, "wait = \"1s\"")?),
            }
            Ok(())
        })?,
    }
    Ok(args)
}

fn bulkhead(meta: &Meta) -> syn::Result<BulkheadArgs> {
    let mut args = BulkheadArgs::default();
    match meta {
        Meta::Path(path) => {
            return Err(syn::Error::new_spanned(path, "`bulkhead` needs a value, such as `bulkhead = 5`"));
        }
        Meta::NameValue(_) => args.max = Some(integer(meta, "bulkhead = 5")?),
        Meta::List(_) => settings(meta, "bulkhead", BULKHEAD_SETTINGS, |setting, inner| {
            match setting {
                "name" => args.name = Some(string(inner, "name = \"orchestrator\"")?),
                "max" => args.max = Some(integer(inner, "max = 5")?),
                _ => args.wait = Some(duration(inner, "wait = \"2s\"")?),
            }
            Ok(())
        })?,
    }
    Ok(args)
}

fn retry(meta: &Meta) -> syn::Result<RetryArgs> {
    let mut args = RetryArgs::default();
    match meta {
        Meta::Path(_) => {}
        Meta::NameValue(_) => args.attempts = Some(integer(meta, "retry = 3")?),
        Meta::List(_) => settings(meta, "retry", RETRY_SETTINGS, |setting, inner| {
            match setting {
                "name" => args.name = Some(string(inner, "name = \"llm\"")?),
                "attempts" => args.attempts = Some(integer(inner, "attempts = 3")?),
                "backoff" => args.backoff = Some(duration(inner, "backoff = \"100ms\"")?),
                "max_backoff" => args.max_backoff = Some(duration(inner, "max_backoff = \"5s\"")?),
                "jitter" => args.jitter = Some(boolean(inner)?),
                _ => args.when = Some(path(inner, "when = is_transient")?),
            }
            Ok(())
        })?,
    }
    Ok(args)
}

/// A whole number, such as `window = 100`.
fn integer(meta: &Meta, example: &str) -> syn::Result<Spanned<u64>> {
    let expr = value(meta, example)?;
    match expr {
        Expr::Lit(syn::ExprLit { lit: Lit::Int(int), .. }) => {
            Ok(Spanned { value: int.base10_parse()?, span: int.span() })
        }
        other => Err(syn::Error::new_spanned(
            other,
            format!("`{}` expects a whole number such as `{example}`, found `{}`", key(meta), other.to_token_stream()),
        )),
    }
}

/// A duration written as a string: `"30s"`, `"100ms"`, `"2m"`, `"1h 30m"`.
fn duration(meta: &Meta, example: &str) -> syn::Result<Spanned<Duration>> {
    let text = string(meta, example)?;
    let parsed = humantime::parse_duration(&text.value).map_err(|_| {
        syn::Error::new(
            text.span,
            format!("`{}` expects a duration such as `\"30s\"` or `\"250ms\"`, found `\"{}\"`", key(meta), text.value),
        )
    })?;
    if parsed.is_zero() {
        return Err(syn::Error::new(text.span, format!("`{}` must be longer than zero", key(meta))));
    }
    Ok(Spanned { value: parsed, span: text.span })
}

/// A rate: `10` (per second), `2.5` (per second) or `"100/min"`.
fn per(meta: &Meta) -> syn::Result<Spanned<(u64, Duration)>> {
    let example = format!("{} = 10", key(meta));
    let expr = value(meta, &example)?;
    let bad = |span: Span| {
        syn::Error::new(
            span,
            format!(
                "`{}` expects a rate such as `10` (per second) or `\"100/min\"`, found `{}`",
                key(meta),
                expr.to_token_stream()
            ),
        )
    };
    let (calls, period, span) = match expr {
        Expr::Lit(syn::ExprLit { lit: Lit::Int(int), .. }) => {
            (int.base10_parse::<u64>()?, Duration::from_secs(1), int.span())
        }
        Expr::Lit(syn::ExprLit { lit: Lit::Float(float), .. }) => {
            let per_second = float.base10_parse::<f64>()?;
            if !(per_second.is_finite() && per_second > 0.0) {
                return Err(bad(float.span()));
            }
            // One call per interval: 2.5 per second is one call every 400 ms.
            (1, Duration::from_secs_f64(1.0 / per_second), float.span())
        }
        Expr::Lit(syn::ExprLit { lit: Lit::Str(text), .. }) => {
            let value = text.value();
            let (count, unit) = value.split_once('/').ok_or_else(|| bad(text.span()))?;
            let count = count.trim().parse::<u64>().map_err(|_| bad(text.span()))?;
            let period = match unit.trim() {
                "s" | "sec" | "second" => Duration::from_secs(1),
                "m" | "min" | "minute" => Duration::from_secs(60),
                "h" | "hour" => Duration::from_secs(3600),
                _ => return Err(bad(text.span())),
            };
            (count, period, text.span())
        }
        other => return Err(bad(other.span())),
    };
    if calls == 0 {
        return Err(syn::Error::new(span, format!("`{}` must admit at least one call, found 0", key(meta))));
    }
    Ok(Spanned { value: (calls, period), span })
}

/// Checked guards, ready to expand.
pub(crate) struct GuardPlan {
    breaker: Option<BreakerArgs>,
    rate: Option<RateArgs>,
    bulkhead: Option<BulkheadArgs>,
    retry: Option<RetryArgs>,
    timeout: Option<Duration>,
    fallback: Option<Path>,
}

impl GuardPlan {
    /// Whether any guard runs around the call (a fallback alone wraps nothing).
    pub(crate) fn guards_call(&self) -> bool {
        self.breaker.is_some()
            || self.rate.is_some()
            || self.bulkhead.is_some()
            || self.retry.is_some()
            || self.timeout.is_some()
    }

    /// Whether a guard can refuse a call.
    pub(crate) fn refusable(&self) -> bool {
        self.breaker.is_some() || self.rate.is_some() || self.bulkhead.is_some()
    }

    pub(crate) fn has_timeout(&self) -> bool {
        self.timeout.is_some()
    }

    pub(crate) fn retries(&self) -> bool {
        self.retry.is_some()
    }

    pub(crate) fn fallback(&self) -> Option<&Path> {
        self.fallback.as_ref()
    }
}

fn in_range(setting: &str, value: Option<&Spanned<u64>>, min: u64, max: u64, errors: &mut Errors) {
    if let Some(value) = value
        && !(min..=max).contains(&value.value)
    {
        let message = if max == u64::MAX {
            format!("`{setting}` must be at least {min}, found {}", value.value)
        } else {
            format!("`{setting}` must be between {min} and {max}, found {}", value.value)
        };
        errors.at(value.span, message);
    }
}

/// Checks the guards against each other and against the function.
pub(crate) fn plan(args: GuardArgs, sig: &Signature, analysis: &Analysis, errors: &mut Errors) -> GuardPlan {
    let synchronous = matches!(analysis.execution, Execution::Sync);
    let returns_result = analysis.returns == Returns::Result;
    let needs_async = |argument: &str, at: Span, errors: &mut Errors| {
        if synchronous {
            errors.at(at, format!("`{argument}` needs an `async fn`; `{}` is synchronous", sig.ident));
        }
    };
    for name in [
        args.breaker.as_ref().and_then(|breaker| breaker.value.name.as_ref()),
        args.rate.as_ref().and_then(|rate| rate.value.name.as_ref()),
        args.bulkhead.as_ref().and_then(|bulkhead| bulkhead.value.name.as_ref()),
        args.retry.as_ref().and_then(|retry| retry.value.name.as_ref()),
    ]
    .into_iter()
    .flatten()
    {
        label_value("name", name, errors);
    }
    if let Some(breaker) = &args.breaker {
        let breaker = &breaker.value;
        in_range("failure_rate", breaker.failure_rate.as_ref(), 1, 100, errors);
        in_range("slow_rate", breaker.slow_rate.as_ref(), 1, 100, errors);
        in_range("window", breaker.window.as_ref(), 1, MAX_WINDOW, errors);
        in_range("min_calls", breaker.min_calls.as_ref(), 1, u64::from(u32::MAX), errors);
        in_range("half_open_calls", breaker.half_open_calls.as_ref(), 1, u64::from(u32::MAX), errors);
        in_range("consecutive_failures", breaker.consecutive_failures.as_ref(), 1, u64::from(u32::MAX), errors);
        if let Some(kind) = &breaker.window_kind
            && !["count", "time"].contains(&kind.value.as_str())
        {
            errors.at(kind.span, format!("`window_kind` must be `count` or `time`, found `{}`", kind.value));
        }
    }
    let rate_span = args.rate.as_ref().map(|rate| rate.span);
    let mut rate = args.rate.map(|rate| {
        if let Some(wait) = &rate.value.wait {
            needs_async("wait", wait.span, errors);
        }
        rate.value
    });
    match (&mut rate, args.burst) {
        (Some(rate), Some(burst)) if rate.burst.is_none() => rate.burst = Some(burst),
        (Some(_), Some(burst)) => errors.at(burst.span, "`burst` is given twice: here and inside `rate(..)`"),
        (None, Some(burst)) => {
            errors.at(burst.span, "`burst` sizes the rate limiter's bucket; add `rate = ..` to have one");
        }
        _ => {}
    }
    if let Some(rate) = &rate {
        if rate.per.is_none() {
            errors.at(
                rate_span.unwrap_or_else(Span::call_site),
                "`rate(..)` needs `per_second`, such as `rate(name = \"api\", per_second = 10)`",
            );
        }
        in_range("burst", rate.burst.as_ref(), 1, u64::from(u32::MAX), errors);
        if let Some(per) = &rate.per
            && per.value.0 > u64::from(u32::MAX)
        {
            errors.at(per.span, format!("a rate may admit at most {} calls per period", u32::MAX));
        }
    }
    if let Some(bulkhead) = &args.bulkhead {
        if bulkhead.value.max.is_none() {
            errors.at(bulkhead.span, "`bulkhead(..)` needs `max`, such as `bulkhead(name = \"db\", max = 5)`");
        }
        in_range("max", bulkhead.value.max.as_ref(), 1, u64::from(u32::MAX), errors);
        if let Some(wait) = &bulkhead.value.wait {
            needs_async("wait", wait.span, errors);
        }
    }
    if let Some(timeout) = &args.timeout {
        needs_async("timeout", timeout.span, errors);
    }
    if let Some(retry) = &args.retry {
        needs_async("retry", retry.span, errors);
        in_range("attempts", retry.value.attempts.as_ref(), 1, 100, errors);
        if let (Some(backoff), Some(max_backoff)) = (&retry.value.backoff, &retry.value.max_backoff)
            && max_backoff.value < backoff.value
        {
            errors.at(max_backoff.span, "`max_backoff` must be at least `backoff`");
        }
    }
    if let Some(fallback) = &args.fallback
        && !returns_result
    {
        errors.over(
            &sig.output,
            format!("`fallback = {}` needs the function to return a `Result`", fallback.to_token_stream()),
        );
    }
    GuardPlan {
        breaker: args.breaker.map(|breaker| breaker.value),
        rate,
        bulkhead: args.bulkhead.map(|bulkhead| bulkhead.value),
        retry: args.retry.map(|retry| retry.value),
        timeout: args.timeout.map(|timeout| timeout.value),
        fallback: args.fallback,
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

fn some_u64<T: ToTokens>(value: Option<T>) -> TokenStream {
    match value {
        Some(value) => quote!(::core::option::Option::Some(#value)),
        None => quote!(::core::option::Option::None),
    }
}

fn some_count<T: TryFrom<u64> + ToTokens>(value: Option<&Spanned<u64>>) -> TokenStream {
    some_u64(value.and_then(|value| T::try_from(value.value).ok()))
}

fn some_str(value: Option<&Spanned<String>>) -> TokenStream {
    some_u64(value.map(|value| value.value.clone()))
}

/// `static __HARDENED_GUARDS`, the site's guards resolved on first use, with the settings written here.
pub(crate) fn guards_static(plan: &GuardPlan, krate: &Path) -> TokenStream {
    let private = quote!(#krate::__private);
    let duration = |value: Option<&Spanned<Duration>>| {
        some_u64(value.map(|duration| {
            let nanos = nanos(duration.value);
            quote!(#private::Duration::from_nanos(#nanos))
        }))
    };
    let declared = |name: Option<&Spanned<String>>, settings: TokenStream| {
        let name = some_str(name);
        quote!(#private::Declared { name: #name, settings: #settings })
    };
    let breaker = some_u64(plan.breaker.as_ref().map(|breaker| {
        let failure_rate = some_count::<u8>(breaker.failure_rate.as_ref());
        let slow_rate = some_count::<u8>(breaker.slow_rate.as_ref());
        let slow_call = duration(breaker.slow_call.as_ref());
        let window = some_count::<u32>(breaker.window.as_ref());
        let window_kind = some_u64(breaker.window_kind.as_ref().map(|kind| {
            if kind.value == "time" { quote!(#private::WindowKind::Time) } else { quote!(#private::WindowKind::Count) }
        }));
        let min_calls = some_count::<u32>(breaker.min_calls.as_ref());
        let open_for = duration(breaker.open_for.as_ref());
        let half_open_calls = some_count::<u32>(breaker.half_open_calls.as_ref());
        let consecutive_failures = some_count::<u32>(breaker.consecutive_failures.as_ref());
        declared(
            breaker.name.as_ref(),
            quote!(#private::BreakerSettings {
                failure_rate: #failure_rate, slow_rate: #slow_rate, slow_call: #slow_call, window: #window,
                window_kind: #window_kind, min_calls: #min_calls, open_for: #open_for,
                half_open_calls: #half_open_calls, consecutive_failures: #consecutive_failures,
                extend_open_on_failure: ::core::option::Option::None,
            }),
        )
    }));
    let rate = some_u64(plan.rate.as_ref().map(|rate| {
        let per_second = some_u64(rate.per.as_ref().and_then(|per| {
            let calls = u32::try_from(per.value.0).ok()?;
            let period = nanos(per.value.1);
            Some(quote!((#calls, #private::Duration::from_nanos(#period))))
        }));
        let burst = some_count::<u32>(rate.burst.as_ref());
        let wait = duration(rate.wait.as_ref());
        declared(
            rate.name.as_ref(),
            quote!(#private::RateSettings { per_second: #per_second, burst: #burst, wait: #wait }),
        )
    }));
    let bulkhead = some_u64(plan.bulkhead.as_ref().map(|bulkhead| {
        let max = some_count::<u32>(bulkhead.max.as_ref());
        let wait = duration(bulkhead.wait.as_ref());
        declared(bulkhead.name.as_ref(), quote!(#private::BulkheadSettings { max: #max, wait: #wait }))
    }));
    let retry = some_u64(plan.retry.as_ref().map(|retry| {
        let attempts = some_count::<u32>(retry.attempts.as_ref());
        let backoff = duration(retry.backoff.as_ref());
        let max_backoff = duration(retry.max_backoff.as_ref());
        let jitter = some_u64(retry.jitter.as_ref().map(|jitter| jitter.value));
        declared(
            retry.name.as_ref(),
            quote!(#private::RetrySettings {
                attempts: #attempts, backoff: #backoff, max_backoff: #max_backoff, jitter: #jitter,
                budget_ratio: ::core::option::Option::None, budget_reserve: ::core::option::Option::None,
            }),
        )
    }));
    let timeout = some_u64(plan.timeout.map(|timeout| {
        let nanos = nanos(timeout);
        quote!(#private::Duration::from_nanos(#nanos))
    }));
    quote! {
        static __HARDENED_GUARDS: #private::SiteGuards =
            #private::SiteGuards::new(&__HARDENED_SITE, #breaker, #rate, #bulkhead, #retry, #timeout);
    }
}

/// The compile-time check that the function can return a refusal, spanned at its return type.
pub(crate) fn return_check(sig: &Signature, output: Option<&syn::Type>, krate: &Path) -> TokenStream {
    let (ty, at) = match (&sig.output, output) {
        (_, Some(ty)) => (ty.to_token_stream(), ty.span()),
        (ReturnType::Type(_, ty), None) => (ty.to_token_stream(), ty.span()),
        (ReturnType::Default, None) => (quote!(()), sig.ident.span()),
    };
    quote_spanned! {at=> #krate::__private::assert_guarded::<#ty>(); }
}

/// The body of a synchronous guarded call: the guard chain around the user's closure.
pub(crate) fn sync_call(krate: &Path, body: &TokenStream, is_failure: &TokenStream) -> TokenStream {
    quote! {
        #krate::__private::run_sync(&__HARDENED_GUARDS, #body, |__hardened_ret| #is_failure)
    }
}

/// The future of an asynchronous guarded call: attempts through the guards, retried as the policy allows.
/// `attempt` is a non-`move` async block re-created for each attempt, borrowing the arguments.
pub(crate) fn async_call(
    plan: &GuardPlan,
    krate: &Path,
    attempt: &TokenStream,
    is_failure: &TokenStream,
) -> TokenStream {
    let private = quote!(#krate::__private);
    let Some(retry) = &plan.retry else {
        return quote! {
            async move { #private::attempt(&__HARDENED_GUARDS, #attempt, |__hardened_ret| #is_failure).await }
        };
    };
    let retry_when = match &retry.when {
        Some(when) => quote_spanned! {when.span()=>
            #private::GuardedReturn::error(__hardened_ret)
                .is_some_and(|__hardened_error| #private::RetryPredicate::holds(&#when, __hardened_error))
        },
        None => quote!(true),
    };
    quote! {
        async move {
            #private::retry_start(&__HARDENED_GUARDS);
            let mut __hardened_retries = 0u32;
            loop {
                let (__hardened_value, __hardened_imposed) =
                    #private::attempt(&__HARDENED_GUARDS, #attempt, |__hardened_ret| #is_failure).await;
                match #private::retry_delay(
                    &__HARDENED_GUARDS,
                    &__hardened_value,
                    __hardened_imposed,
                    __hardened_retries,
                    |__hardened_ret| #is_failure,
                    |__hardened_ret| #retry_when,
                ) {
                    ::core::option::Option::Some(__hardened_delay) => {
                        #private::backoff(__hardened_delay).await;
                        __hardened_retries += 1;
                    }
                    ::core::option::Option::None => break (__hardened_value, __hardened_imposed),
                }
            }
        }
    }
}
