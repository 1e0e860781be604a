//! The resilience guards of `#[hardened]`: `breaker`, `rate` (with `burst`), `bulkhead`, `timeout`,
//! `retry` and `fallback`, from what the user wrote to the code that runs them.
//!
//! Reading, checking and expanding the guards live together here so that the rest of the macro only
//! forwards to this module: `args` hands it the guard arguments, `validate` asks it for a [`GuardPlan`],
//! and `expand` asks it for the guard static and the guarded body.

use std::time::Duration;

use darling::ast::NestedMeta;
use proc_macro2::{Delimiter, Group, Span, TokenStream};
use quote::{ToTokens, quote};
use syn::spanned::Spanned as _;
use syn::visit_mut::{self, VisitMut};
use syn::{Expr, GenericArgument, Lit, Meta, Path, PathArguments, ReturnType, Signature, Type, parse_quote};

use super::labels::label_value;
use crate::common::errors::Errors;
use crate::common::meta::{Spanned, boolean, key, path, string, value};
use crate::common::signature::{Analysis, Execution, Returns};
use crate::common::suggest;
use crate::common::tokens::{respanned, written};

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
const RATE_SETTINGS: &[&str] = &["name", "per_second", "burst", "wait", "scope"];

/// Where a rate limiter's bucket may live.
const SCOPES: &[&str] = &["local", "global"];
const BULKHEAD_SETTINGS: &[&str] = &["name", "max", "wait"];
const RETRY_SETTINGS: &[&str] = &["name", "attempts", "backoff", "max_backoff", "jitter", "when"];

/// Largest breaker window the runtime accepts (calls or seconds).
const MAX_WINDOW: u64 = 1 << 20;

/// Breaker settings that judge failure and slow-call rates over a window, which a breaker with
/// `consecutive_failures` does not do.
const RATE_JUDGING: &[&str] = &["failure_rate", "slow_rate", "window", "window_kind", "min_calls"];

/// `breaker = "name"` or `breaker(..)`.
#[derive(Clone, Default)]
pub(crate) struct BreakerArgs {
    /// The name, and the key it was written under (`breaker` or `name`).
    name: Option<(&'static str, Spanned<String>)>,
    failure_rate: Option<Spanned<u64>>,
    slow_rate: Option<Spanned<u64>>,
    slow_call: Option<Spanned<Duration>>,
    window: Option<Spanned<u64>>,
    window_kind: Option<Spanned<String>>,
    min_calls: Option<Spanned<u64>>,
    open_for: Option<Spanned<Duration>>,
    half_open_calls: Option<Spanned<u64>>,
    consecutive_failures: Option<Spanned<u64>>,
    /// Each setting's key and its span, in the order written.
    keys: Vec<(&'static str, Span)>,
}

/// `rate = 10`, `rate = "100/min"` or `rate(..)`.
#[derive(Clone, Default)]
pub(crate) struct RateArgs {
    name: Option<Spanned<String>>,
    /// Calls and the period they are spread over.
    per: Option<Spanned<(u64, Duration)>>,
    burst: Option<Spanned<u64>>,
    /// With the span of its key.
    wait: Option<Spanned<Duration>>,
    /// The span of the key, and the value with its own span.
    scope: Option<(Span, Spanned<String>)>,
}

impl RateArgs {
    /// Whether the bucket lives in Redis: `scope = "global"`.
    fn global(&self) -> bool {
        self.scope.as_ref().is_some_and(|(_, scope)| scope.value == "global")
    }
}

/// `bulkhead = 5` or `bulkhead(..)`.
#[derive(Clone, Default)]
pub(crate) struct BulkheadArgs {
    name: Option<Spanned<String>>,
    /// The limit, and the key it was written under (`bulkhead` or `max`).
    max: Option<(&'static str, Spanned<u64>)>,
    /// With the span of its key.
    wait: Option<Spanned<Duration>>,
}

/// `retry`, `retry = 3` or `retry(..)`.
#[derive(Clone, Default)]
pub(crate) struct RetryArgs {
    name: Option<Spanned<String>>,
    /// The number of retries, and the key it was written under (`retry` or `attempts`).
    attempts: Option<(&'static str, Spanned<u64>)>,
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
    /// The span of the key, and the value with its own span.
    burst: Option<(Span, Spanned<u64>)>,
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
            "burst" => self.burst = Some((at, integer(meta, "burst = 20")?)),
            "bulkhead" => self.bulkhead = Some(Spanned { value: bulkhead(meta)?, span: at }),
            "timeout" => self.timeout = Some(Spanned { value: duration(meta, "timeout = \"30s\"")?.value, span: at }),
            "retry" => self.retry = Some(Spanned { value: retry(meta)?, span: at }),
            "fallback" => self.fallback = Some(function(meta, "fallback = cached_answer")?),
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

    /// Whether any guard runs around the call (a fallback alone wraps nothing).
    fn guards_call(&self) -> bool {
        self.breaker.is_some()
            || self.rate.is_some()
            || self.bulkhead.is_some()
            || self.retry.is_some()
            || self.timeout.is_some()
    }
}

/// Reads `guard(key = value, ..)`, checking each key against `settings`; returns the keys read, each
/// with its span, in the order written.
fn settings(
    meta: &Meta,
    guard: &str,
    settings: &[&'static str],
    mut read: impl FnMut(&'static str, &Meta) -> syn::Result<()>,
) -> syn::Result<Vec<(&'static str, Span)>> {
    let Meta::List(list) = meta else { unreachable!("only lists have settings") };
    let mut errors = Errors::default();
    let mut seen: Vec<(&'static str, Span)> = Vec::new();
    for item in NestedMeta::parse_meta_list(list.tokens.clone())? {
        let NestedMeta::Meta(inner) = &item else {
            errors.over(&item, format!("expected a `{guard}` setting such as `name = \"...\"`"));
            continue;
        };
        let written = key(inner);
        let at = inner.path().span();
        let Some(setting) = settings.iter().copied().find(|setting| *setting == written) else {
            let message = match suggest::closest(&written, settings) {
                Some(candidate) => format!("unknown `{guard}` setting `{written}`; did you mean `{candidate}`?"),
                None => format!("unknown `{guard}` setting `{written}`; expected one of {}", suggest::one_of(settings)),
            };
            errors.at(at, message);
            continue;
        };
        if seen.iter().any(|(key, _)| *key == setting) {
            errors.at(at, format!("`{setting}` is given more than once in `{guard}(..)`"));
            continue;
        }
        seen.push((setting, at));
        if let Err(error) = read(setting, inner) {
            errors.push(error);
        }
    }
    errors.finish().map(|()| seen)
}

fn breaker(meta: &Meta) -> syn::Result<BreakerArgs> {
    let mut args = BreakerArgs::default();
    match meta {
        Meta::Path(_) => {}
        Meta::NameValue(_) => args.name = Some(("breaker", string(meta, "breaker = \"llm\"")?)),
        Meta::List(_) => {
            args.keys = settings(meta, "breaker", BREAKER_SETTINGS, |setting, inner| {
                match setting {
                    "name" => args.name = Some(("name", string(inner, "name = \"llm\"")?)),
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
            })?;
        }
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
        Meta::List(_) => {
            settings(meta, "rate", RATE_SETTINGS, |setting, inner| {
                match setting {
                    "name" => args.name = Some(string(inner, "name = \"anthropic\"")?),
                    "per_second" => args.per = Some(per(inner)?),
                    "burst" => args.burst = Some(integer(inner, "burst = 20")?),
                    "wait" => args.wait = Some(keyed(inner, duration(inner, "wait = \"1s\"")?)),
                    _ => args.scope = Some((inner.path().span(), string(inner, "scope = \"global\"")?)),
                }
                Ok(())
            })?;
        }
    }
    Ok(args)
}

fn bulkhead(meta: &Meta) -> syn::Result<BulkheadArgs> {
    let mut args = BulkheadArgs::default();
    match meta {
        Meta::Path(path) => {
            return Err(syn::Error::new_spanned(path, "`bulkhead` needs a value, such as `bulkhead = 5`"));
        }
        Meta::NameValue(_) => args.max = Some(("bulkhead", integer(meta, "bulkhead = 5")?)),
        Meta::List(_) => {
            settings(meta, "bulkhead", BULKHEAD_SETTINGS, |setting, inner| {
                match setting {
                    "name" => args.name = Some(string(inner, "name = \"orchestrator\"")?),
                    "max" => args.max = Some(("max", integer(inner, "max = 5")?)),
                    _ => args.wait = Some(keyed(inner, duration(inner, "wait = \"2s\"")?)),
                }
                Ok(())
            })?;
        }
    }
    Ok(args)
}

fn retry(meta: &Meta) -> syn::Result<RetryArgs> {
    let mut args = RetryArgs::default();
    match meta {
        Meta::Path(_) => {}
        Meta::NameValue(_) => args.attempts = Some(("retry", integer(meta, "retry = 3")?)),
        Meta::List(_) => {
            settings(meta, "retry", RETRY_SETTINGS, |setting, inner| {
                match setting {
                    "name" => args.name = Some(string(inner, "name = \"llm\"")?),
                    "attempts" => args.attempts = Some(("attempts", integer(inner, "attempts = 3")?)),
                    "backoff" => args.backoff = Some(duration(inner, "backoff = \"100ms\"")?),
                    "max_backoff" => args.max_backoff = Some(duration(inner, "max_backoff = \"5s\"")?),
                    "jitter" => args.jitter = Some(boolean(inner)?),
                    _ => args.when = Some(function(inner, "when = is_transient")?),
                }
                Ok(())
            })?;
        }
    }
    Ok(args)
}

/// `value` with the span of `meta`'s key instead of its own, for errors about the setting being there.
fn keyed<T>(meta: &Meta, value: Spanned<T>) -> Spanned<T> {
    Spanned { value: value.value, span: meta.path().span() }
}

/// A whole number, such as `window = 100`.
fn integer(meta: &Meta, example: &str) -> syn::Result<Spanned<u64>> {
    let expr = value(meta, example)?;
    let not_a_number = || {
        syn::Error::new_spanned(
            expr,
            format!("`{}` expects a whole number such as `{example}`, found `{}`", key(meta), written(expr)),
        )
    };
    let Expr::Lit(syn::ExprLit { lit: Lit::Int(int), .. }) = expr else { return Err(not_a_number()) };
    if int.base10_digits().starts_with('-') {
        return Err(not_a_number());
    }
    let value = int.base10_parse().map_err(|_| {
        syn::Error::new(int.span(), format!("`{}` is too large, found {}", key(meta), int.base10_digits()))
    })?;
    Ok(Spanned { value, span: int.span() })
}

/// A path to a function, such as `when = is_transient`; a closure gets its own explanation.
fn function(meta: &Meta, example: &str) -> syn::Result<Path> {
    if let Meta::NameValue(name_value) = meta
        && let Expr::Closure(closure) = &name_value.value
    {
        return Err(syn::Error::new_spanned(
            closure,
            format!(
                "`{}` expects a path to a function such as `{example}`, not a closure; define a function and name it",
                key(meta)
            ),
        ));
    }
    path(meta, example)
}

/// A duration written as a string: `"30s"`, `"100ms"`, `"2m"`, `"1h 30m"`.
fn duration(meta: &Meta, example: &str) -> syn::Result<Spanned<Duration>> {
    let text = string(meta, example)?;
    let parsed = humantime::parse_duration(&text.value).map_err(|_| {
        syn::Error::new(
            text.span,
            format!(
                "`{}` expects a duration such as `\"30s\"` or `\"250ms\"`, found `\"{}\"`",
                key(meta),
                text.value.escape_debug()
            ),
        )
    })?;
    if parsed.is_zero() {
        return Err(syn::Error::new(
            text.span,
            format!("`{}` must be longer than zero, found `\"{}\"`", key(meta), text.value.escape_debug()),
        ));
    }
    Ok(Spanned { value: parsed, span: text.span })
}

/// The periods a rate may be given per, and their length in seconds.
const PERIODS: &[(&str, u64)] =
    &[("s", 1), ("sec", 1), ("second", 1), ("m", 60), ("min", 60), ("minute", 60), ("h", 3600), ("hour", 3600)];

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
                written(expr)
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
            let Some((_, seconds)) = PERIODS.iter().find(|(name, _)| *name == unit.trim()) else {
                return Err(syn::Error::new(
                    text.span(),
                    format!(
                        "unknown period `{}` in `{}`; a rate is given per `s`, `min` or `h`, such as `\"100/min\"`",
                        unit.trim().escape_debug(),
                        key(meta)
                    ),
                ));
            };
            (count, Duration::from_secs(*seconds), text.span())
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
    /// The type the caller receives, as generated code can name it (`impl Trait` as `_`).
    output: Option<Type>,
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

    /// Whether the guards of an asynchronous call run once around it, with neither retries nor a
    /// timeout: such a call runs as one future that admits it at its first poll.
    pub(crate) fn single_pass(&self) -> bool {
        self.guards_call() && self.retry.is_none() && self.timeout.is_none()
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

/// Checks that a written number is within `min..=max`; wide ranges are described by the bound crossed.
fn in_range(setting: &str, value: Option<&Spanned<u64>>, min: u64, max: u64, errors: &mut Errors) {
    let Some(value) = value else { return };
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
    for name in [
        args.rate.as_ref().and_then(|rate| rate.value.name.as_ref()),
        args.bulkhead.as_ref().and_then(|bulkhead| bulkhead.value.name.as_ref()),
        args.retry.as_ref().and_then(|retry| retry.value.name.as_ref()),
    ]
    .into_iter()
    .flatten()
    {
        label_value("name", name, errors);
    }
    if let Some(wait) = args.rate.as_ref().and_then(|rate| rate.value.wait.as_ref()) {
        needs_async("wait", wait.span, errors);
    }
    if let Some(rate) = &args.rate
        && let Some((key, _)) = &rate.value.scope
        && rate.value.global()
    {
        // A synchronous call cannot wait for Redis's answer.
        needs_async("scope = \"global\"", *key, errors);
    }
    let rate = check_rate(args.rate, args.burst, errors);
    if let Some(bulkhead) = &args.bulkhead {
        match &bulkhead.value.max {
            None => errors.at(bulkhead.span, "`bulkhead(..)` needs `max`, such as `bulkhead(name = \"db\", max = 5)`"),
            Some((key, max)) => in_range(key, Some(max), 1, u64::from(u32::MAX), errors),
        }
        if let Some(wait) = &bulkhead.value.wait {
            needs_async("wait", wait.span, errors);
        }
    }
    if let Some(timeout) = &args.timeout {
        needs_async("timeout", timeout.span, errors);
    }
    if let Some(retry) = &args.retry {
        needs_async("retry", retry.span, errors);
        check_retry(&retry.value, errors);
    }
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
        bulkhead: args.bulkhead.map(|bulkhead| bulkhead.value),
        retry: args.retry.map(|retry| retry.value),
        timeout: args.timeout.map(|timeout| timeout.value),
        fallback: args.fallback,
        output: analysis.annotation.clone(),
    }
}

/// Checks `rate` and a top-level `burst`, which joins the rate's settings.
fn check_rate(
    rate: Option<Spanned<RateArgs>>,
    burst: Option<(Span, Spanned<u64>)>,
    errors: &mut Errors,
) -> Option<RateArgs> {
    let Some(Spanned { value: mut rate, span }) = rate else {
        if let Some((key, _)) = burst {
            errors.at(
                key,
                "`burst` sizes a rate limiter, but there is no `rate`; add one, such as `rate(per_second = 10, burst = 20)`",
            );
        }
        return None;
    };
    match burst {
        Some((_, burst)) if rate.burst.is_none() => rate.burst = Some(burst),
        Some((key, _)) => errors.at(key, "`burst` is given both here and inside `rate(..)`; keep one of them"),
        None => {}
    }
    if rate.per.is_none() {
        errors.at(span, "`rate(..)` needs `per_second`, such as `rate(name = \"api\", per_second = 10)`");
    }
    if let Some((_, scope)) = &rate.scope
        && !SCOPES.contains(&scope.value.as_str())
    {
        let suggestion = suggest::closest(&scope.value, SCOPES)
            .map(|scope| format!("; did you mean `{scope}`?"))
            .unwrap_or_default();
        errors.at(
            scope.span,
            format!("`scope` must be `local` or `global`, found `{}`{suggestion}", scope.value.escape_debug()),
        );
    }
    in_range("burst", rate.burst.as_ref(), 1, u64::from(u32::MAX), errors);
    if let Some(per) = &rate.per
        && per.value.0 > u64::from(u32::MAX)
    {
        errors.at(per.span, format!("a rate may admit at most {} calls per period", u32::MAX));
    }
    Some(rate)
}

fn check_retry(retry: &RetryArgs, errors: &mut Errors) {
    if let Some((key, attempts)) = &retry.attempts {
        in_range(key, Some(attempts), 1, 100, errors);
    }
    if let (Some(backoff), Some(max_backoff)) = (&retry.backoff, &retry.max_backoff)
        && max_backoff.value < backoff.value
    {
        errors.at(
            max_backoff.span,
            format!(
                "`max_backoff` must be at least `backoff` ({}), found {}",
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
fn peel(ty: &Type) -> &Type {
    match ty {
        Type::Paren(inner) => peel(&inner.elem),
        Type::Group(inner) => peel(&inner.elem),
        other => other,
    }
}

fn check_breaker(breaker: &BreakerArgs, errors: &mut Errors) {
    if let Some((key, name)) = &breaker.name {
        label_value(key, name, errors);
    }
    in_range("failure_rate", breaker.failure_rate.as_ref(), 1, 100, errors);
    in_range("slow_rate", breaker.slow_rate.as_ref(), 1, 100, errors);
    in_range("window", breaker.window.as_ref(), 1, MAX_WINDOW, errors);
    in_range("min_calls", breaker.min_calls.as_ref(), 1, u64::from(u32::MAX), errors);
    in_range("half_open_calls", breaker.half_open_calls.as_ref(), 1, u64::from(u32::MAX), errors);
    in_range("consecutive_failures", breaker.consecutive_failures.as_ref(), 1, u64::from(u32::MAX), errors);
    let counts_calls = match &breaker.window_kind {
        Some(kind) if !["count", "time"].contains(&kind.value.as_str()) => {
            let suggestion = suggest::closest(&kind.value, &["count", "time"])
                .map(|kind| format!("; did you mean `{kind}`?"))
                .unwrap_or_default();
            errors.at(
                kind.span,
                format!("`window_kind` must be `count` or `time`, found `{}`{suggestion}", kind.value.escape_debug()),
            );
            false
        }
        Some(kind) => kind.value == "count",
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
                "`min_calls` must be at most `window` ({}), found {}; a count window never holds more calls",
                window.value, min_calls.value
            ),
        );
    }
    if breaker.consecutive_failures.is_some() {
        for (key, at) in breaker.keys.iter().filter(|(key, _)| RATE_JUDGING.contains(key)) {
            errors.at(
                *at,
                format!(
                    "`{key}` has no effect with `consecutive_failures`, which opens the breaker after failures in a \
                     row instead of judging rates; remove one of them"
                ),
            );
        }
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

fn some_u64<T: ToTokens>(value: Option<T>) -> TokenStream {
    value.map_or_else(|| quote!(::core::option::Option::None), |value| quote!(::core::option::Option::Some(#value)))
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
            breaker.name.as_ref().map(|(_, name)| name),
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
        let scope = some_u64(
            rate.scope
                .as_ref()
                .map(|_| if rate.global() { quote!(#private::Scope::Global) } else { quote!(#private::Scope::Local) }),
        );
        let none = quote!(::core::option::Option::None);
        declared(
            rate.name.as_ref(),
            quote!(#private::RateSettings {
                per_second: #per_second, burst: #burst, wait: #wait, scope: #scope, redis_url: #none,
                on_unavailable: #none, redis_timeout: #none, replicas: #none,
            }),
        )
    }));
    // A global bucket lives in Redis: without the `redis` feature, the type checker says so at `"global"`.
    let needs_redis =
        plan.rate.as_ref().filter(|rate| rate.global()).and_then(|rate| rate.scope.as_ref()).map(|(_, scope)| {
            let check = respanned(quote!(#private::global_scope::<#private::ThisBuild>()), scope.span);
            quote!(const _: () = #check;)
        });
    let bulkhead = some_u64(plan.bulkhead.as_ref().map(|bulkhead| {
        let max = some_count::<u32>(bulkhead.max.as_ref().map(|(_, max)| max));
        let wait = duration(bulkhead.wait.as_ref());
        declared(bulkhead.name.as_ref(), quote!(#private::BulkheadSettings { max: #max, wait: #wait }))
    }));
    let retry = some_u64(plan.retry.as_ref().map(|retry| {
        let attempts = some_count::<u32>(retry.attempts.as_ref().map(|(_, attempts)| attempts));
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
        #needs_redis
        static __HARDENED_GUARDS: #private::SiteGuards =
            #private::SiteGuards::new(&__HARDENED_SITE, #breaker, #rate, #bulkhead, #retry, #timeout);
    }
}

/// The token at fault when a return type cannot carry a refusal: the error type of a `Result<T, E>` by
/// its name (`LookupError`, `Error` of `io::Error`), otherwise the type's name (`u32`, `Option`).
fn blame(ty: &Type) -> Span {
    let Type::Path(path) = peel(ty) else {
        return ty.to_token_stream().into_iter().next().map_or_else(Span::call_site, |token| token.span());
    };
    let Some(last) = path.path.segments.last() else { return ty.span() };
    if last.ident == "Result"
        && let PathArguments::AngleBracketed(arguments) = &last.arguments
        && let [_, GenericArgument::Type(error)] = arguments.args.iter().collect::<Vec<_>>().as_slice()
    {
        return blame(error);
    }
    last.ident.span()
}

/// A call of a runtime function that needs the return type to carry a refusal: `path::<ty more>(args)`,
/// followed by `.await` when `awaited`; `path(args)` when the type is left to inference.
///
/// Everything but the arguments is spanned at the token [`blame`] picks, the explicit type included.
/// rustc reports an unmet bound of such a call at the type argument, at the call and at its `.await`, the
/// latter after type checking; all at one token, these are one diagnostic, reported once.
fn guarded_call(
    path: &TokenStream,
    ty: Option<&Type>,
    more: &TokenStream,
    args: &TokenStream,
    awaited: bool,
) -> TokenStream {
    let Some(ty) = ty else {
        let awaited = awaited.then(|| quote!(.await));
        return quote!(#path(#args) #awaited);
    };
    let at = blame(ty);
    let head = respanned(quote!(#path::<#ty #more>), at);
    let mut args = Group::new(Delimiter::Parenthesis, args.clone());
    args.set_span(at);
    let awaited = awaited.then(|| respanned(quote!(.await), at));
    quote!(#head #args #awaited)
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

/// The type written in a closure `move || -> T { .. }`, if it is written.
fn closure_output(body: &TokenStream) -> Option<Type> {
    match syn::parse2::<syn::ExprClosure>(body.clone()).ok()?.output {
        ReturnType::Type(_, ty) => Some(*ty),
        ReturnType::Default => None,
    }
}

/// A synchronous guarded call: the guard chain around the user's closure, which starts and records the
/// call and yields its value and outcome; `classify` is the outcome rule, a closure over the value.
///
/// The closure names the return type unless it is opaque; then `run_sync` infers it, and a type that
/// cannot carry a refusal is reported at the attribute.
pub(crate) fn sync_call(
    krate: &Path,
    body: &TokenStream,
    is_failure: &TokenStream,
    classify: &TokenStream,
) -> TokenStream {
    let output = closure_output(body);
    let is_failure = qualified(is_failure, output.as_ref());
    guarded_call(
        &quote!(#krate::__private::run_sync),
        output.as_ref(),
        &TokenStream::new(),
        &quote!(&__HARDENED_GUARDS, #body, |__hardened_ret| #is_failure, #classify),
        false,
    )
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

/// The future of an asynchronous guarded call: attempts through the guards, retried as the policy allows.
/// `attempt` is a non-`move` async block re-created for each attempt, borrowing the arguments.
pub(crate) fn async_call(
    plan: &GuardPlan,
    krate: &Path,
    attempt: &TokenStream,
    is_failure: &TokenStream,
) -> TokenStream {
    let private = quote!(#krate::__private);
    let output = plan.output.as_ref();
    let is_failure = qualified(is_failure, output);
    let run_attempt = guarded_call(
        &quote!(#private::attempt),
        output,
        &quote!(, _),
        &quote!(&__HARDENED_GUARDS, #attempt, |__hardened_ret| #is_failure),
        true,
    );
    let Some(retry) = &plan.retry else {
        return quote!(async move { #run_attempt });
    };
    let retry_when = retry.when.as_ref().map_or_else(
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
    );
    let retry_delay = guarded_call(
        &quote!(#private::retry_delay),
        output,
        &TokenStream::new(),
        &quote! {
            &__HARDENED_GUARDS,
            &__hardened_value,
            __hardened_imposed,
            __hardened_retries,
            |__hardened_ret| #is_failure,
            |__hardened_ret| #retry_when,
        },
        false,
    );
    quote! {
        async move {
            #private::retry_start(&__HARDENED_GUARDS);
            let mut __hardened_retries = 0u32;
            loop {
                let (__hardened_value, __hardened_imposed) = #run_attempt;
                match #retry_delay {
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

#[cfg(test)]
mod tests {
    use quote::quote;
    use syn::{ItemFn, parse_quote};

    use super::*;
    use crate::common::signature;

    /// Reads guard arguments the way `args` hands them over, one `key = value` at a time.
    fn read(tokens: TokenStream, errors: &mut Errors) -> GuardArgs {
        let mut guards = GuardArgs::default();
        for item in NestedMeta::parse_meta_list(tokens).expect("a list of arguments") {
            let NestedMeta::Meta(meta) = item else { panic!("a guard argument, found {item:?}") };
            if let Err(error) = guards.read(&key(&meta), &meta) {
                errors.push(error);
            }
        }
        guards
    }

    fn check(args: TokenStream, item: &ItemFn) -> Result<GuardPlan, Vec<String>> {
        let mut errors = Errors::default();
        let guards = read(args, &mut errors);
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
        for short in [quote!(timeout = "30s"), quote!(retry = 2), quote!(retry)] {
            assert!(check(short.clone(), &async_fn()).is_ok(), "{short}");
        }
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
        assert_eq!(
            errors(quote!(breaker = "llm api"), &sync_fn()),
            ["`breaker` may contain only ASCII letters, digits, `_`, `.`, `:` and `-`, found a space in `llm api`"]
        );
        assert_eq!(errors(quote!(rate(name = "", per_second = 1)), &sync_fn()), ["`name` cannot be empty"]);
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
    fn a_global_scope_asks_the_type_checker_for_the_redis_feature() {
        let plan = check(quote!(rate(per_second = 5, scope = "global")), &async_fn())
            .unwrap_or_else(|errors| panic!("{errors:?}"));
        let expanded = text(&guards_static(&plan, &parse_quote!(::hardened)));
        assert!(expanded.contains("global_scope::<::hardened::__private::ThisBuild>()"), "{expanded}");
        assert!(expanded.contains("scope:::core::option::Option::Some(::hardened::__private::Scope::Global)"));
        let local = check(quote!(rate(per_second = 5, scope = "local")), &async_fn())
            .unwrap_or_else(|errors| panic!("{errors:?}"));
        assert!(!text(&guards_static(&local, &parse_quote!(::hardened))).contains("global_scope"));
    }

    #[test]
    fn unknown_and_repeated_settings() {
        assert_eq!(
            errors(quote!(breaker(failur_rate = 50)), &sync_fn()),
            ["unknown `breaker` setting `failur_rate`; did you mean `failure_rate`?"]
        );
        assert_eq!(
            errors(quote!(bulkhead(limit = 5)), &sync_fn()),
            ["unknown `bulkhead` setting `limit`; expected one of `name`, `max` or `wait`"]
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
    fn opaque_types_are_inferred() {
        let ty: Type = parse_quote!(Result<impl Display, E>);
        assert_eq!(text(&crate::common::signature::without_impl_trait(&ty).to_token_stream()), "Result<_,E>");
        let item: ItemFn = parse_quote! { async fn f() -> Result<impl Display, E> { Ok(1) } };
        let plan = check(quote!(breaker), &item).unwrap_or_else(|errors| panic!("{errors:?}"));
        assert_eq!(plan.output.map(|ty| text(&ty.to_token_stream())).as_deref(), Some("Result<_,E>"));
    }
}
