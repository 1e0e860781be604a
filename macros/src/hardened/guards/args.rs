//! The guard arguments as written, each with its span; settings checked one at a time as they are read.

use std::time::Duration;

use darling::ast::NestedMeta;
use proc_macro2::Span;
use syn::spanned::Spanned as _;
use syn::{Expr, Lit, Meta, Path};

use crate::common::errors::Errors;
use crate::common::meta::{Spanned, boolean, key, path, string, value};
use crate::common::suggest;
use crate::common::tokens::written;

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
pub(super) const SCOPES: &[&str] = &["local", "global"];
const BULKHEAD_SETTINGS: &[&str] = &["name", "max", "wait"];
const RETRY_SETTINGS: &[&str] = &["name", "attempts", "backoff", "max_backoff", "jitter", "when"];

/// Largest breaker window the runtime accepts (calls or seconds).
pub(super) const MAX_WINDOW: u64 = 1 << 20;

/// Breaker settings that judge failure and slow-call rates over a window, which a breaker with
/// `consecutive_failures` does not do.
pub(super) const RATE_JUDGING: &[&str] = &["failure_rate", "slow_rate", "window", "window_kind", "min_calls"];

/// `breaker = "name"` or `breaker(..)`.
#[derive(Clone, Default)]
pub(crate) struct BreakerArgs {
    /// The name, and the key it was written under (`breaker` or `name`).
    pub(super) name: Option<(&'static str, Spanned<String>)>,
    pub(super) failure_rate: Option<Spanned<u64>>,
    pub(super) slow_rate: Option<Spanned<u64>>,
    pub(super) slow_call: Option<Spanned<Duration>>,
    pub(super) window: Option<Spanned<u64>>,
    pub(super) window_kind: Option<Spanned<String>>,
    pub(super) min_calls: Option<Spanned<u64>>,
    pub(super) open_for: Option<Spanned<Duration>>,
    pub(super) half_open_calls: Option<Spanned<u64>>,
    pub(super) consecutive_failures: Option<Spanned<u64>>,
    /// Each setting's key and its span, in the order written.
    pub(super) keys: Vec<(&'static str, Span)>,
}

/// `rate = 10`, `rate = "100/min"` or `rate(..)`.
#[derive(Clone, Default)]
pub(crate) struct RateArgs {
    pub(super) name: Option<Spanned<String>>,
    /// Calls and the period they are spread over.
    pub(super) per: Option<Spanned<(u64, Duration)>>,
    pub(super) burst: Option<Spanned<u64>>,
    /// With the span of its key.
    pub(super) wait: Option<Spanned<Duration>>,
    /// The span of the key, and the value with its own span.
    pub(super) scope: Option<(Span, Spanned<String>)>,
}

impl RateArgs {
    /// Whether the bucket lives in Redis: `scope = "global"`.
    pub(super) fn global(&self) -> bool {
        self.scope.as_ref().is_some_and(|(_, scope)| scope.value == "global")
    }
}

/// `bulkhead = 5` or `bulkhead(..)`.
#[derive(Clone, Default)]
pub(crate) struct BulkheadArgs {
    pub(super) name: Option<Spanned<String>>,
    /// The limit, and the key it was written under (`bulkhead` or `max`).
    pub(super) max: Option<(&'static str, Spanned<u64>)>,
    /// With the span of its key.
    pub(super) wait: Option<Spanned<Duration>>,
}

/// `retry`, `retry = 3` or `retry(..)`.
#[derive(Clone, Default)]
pub(crate) struct RetryArgs {
    pub(super) name: Option<Spanned<String>>,
    /// The number of retries, and the key it was written under (`retry` or `attempts`).
    pub(super) attempts: Option<(&'static str, Spanned<u64>)>,
    pub(super) backoff: Option<Spanned<Duration>>,
    pub(super) max_backoff: Option<Spanned<Duration>>,
    pub(super) jitter: Option<Spanned<bool>>,
    pub(super) when: Option<Path>,
}

/// The guard arguments of one attribute, as written; each with the span of its key.
#[derive(Clone, Default)]
pub(crate) struct GuardArgs {
    pub(super) breaker: Option<Spanned<BreakerArgs>>,
    pub(super) rate: Option<Spanned<RateArgs>>,
    /// The span of the key, and the value with its own span.
    pub(super) burst: Option<(Span, Spanned<u64>)>,
    pub(super) bulkhead: Option<Spanned<BulkheadArgs>>,
    pub(super) timeout: Option<Spanned<Duration>>,
    pub(super) retry: Option<Spanned<RetryArgs>>,
    pub(super) fallback: Option<Path>,
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
    pub(super) fn guards_call(&self) -> bool {
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

#[cfg(test)]
impl GuardArgs {
    /// Reads guard arguments the way `args` hands them over, one `key = value` at a time.
    pub(super) fn read_all(tokens: proc_macro2::TokenStream, errors: &mut Errors) -> GuardArgs {
        let mut guards = GuardArgs::default();
        for item in NestedMeta::parse_meta_list(tokens).expect("a list of arguments") {
            let NestedMeta::Meta(meta) = item else { panic!("a guard argument, found {item:?}") };
            if let Err(error) = guards.read(&key(&meta), &meta) {
                errors.push(error);
            }
        }
        guards
    }
}
