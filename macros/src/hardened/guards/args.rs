//! The guard arguments as written, each with its span; settings checked one at a time as they are read.

use std::time::Duration;

use darling::ast::NestedMeta;
use hardened_schema::{Accepted, Spec, Value, breaker, bulkhead, concurrency, hedge, rate, retry};
use proc_macro2::Span;
use syn::spanned::Spanned as _;
use syn::{Expr, Lit, Meta, Path};

use crate::common::errors::Errors;
use crate::common::meta::{Spanned, boolean, key, path, string, value};
use crate::common::suggest;
use crate::common::tokens::written;

/// Arguments that configure a guard.
pub(crate) const GUARD_ARGUMENTS: &[&str] =
    &["breaker", "rate", BURST, "concurrency", "bulkhead", "timeout", "retry", "hedge", "fallback"];

/// `burst`, which may also be written beside `rate = ..` rather than inside `rate(..)`.
pub(crate) const BURST: &str = rate::Key::Burst.name();

/// The `Key` enum of one kind of guard in the schema, so that one reader of `kind(..)` serves them all.
pub(super) trait SchemaKey: Copy + PartialEq + 'static {
    /// Every key of the kind, in the schema's order.
    const ALL: &'static [Self];

    /// The kind's `name`.
    const NAME: Self;

    /// What the schema says of the key.
    fn spec(self) -> &'static Spec;

    /// The key as written.
    fn name(self) -> &'static str {
        self.spec().name
    }

    /// `key = example`, as messages show a setting.
    fn example(self) -> String {
        format!("{} = {}", self.name(), self.spec().example)
    }

    /// The names the attribute accepts, in the schema's order; configuration-only keys are not among them.
    fn in_attribute() -> Vec<&'static str> {
        Self::ALL.iter().filter(|key| key.spec().accepted.in_attribute()).map(|key| key.name()).collect()
    }
}

macro_rules! schema_key {
    ($($kind:ident),+) => {$(
        impl SchemaKey for $kind::Key {
            const ALL: &'static [Self] = $kind::Key::ALL;
            const NAME: Self = $kind::Key::Name;

            fn spec(self) -> &'static Spec {
                $kind::Key::spec(self)
            }
        }
    )+};
}

schema_key!(breaker, rate, concurrency, bulkhead, retry, hedge);

/// The range of a whole-number key, as the schema gives it.
pub(super) fn whole(key: impl SchemaKey) -> (u64, u64) {
    match key.spec().value {
        Value::Whole { min, max } | Value::WholeOrOneOf { min, max, .. } => (min, max),
        other => unreachable!("`{}` is {other}, not a whole number", key.name()),
    }
}

/// The words a key given as one of a few words accepts, as the schema gives them.
pub(super) fn words(key: impl SchemaKey) -> &'static [&'static str] {
    match key.spec().value {
        Value::OneOf(words) | Value::WholeOrOneOf { words, .. } => words,
        other => unreachable!("`{}` is {other}, not one of a few words", key.name()),
    }
}

/// Breaker settings that judge failure and slow-call rates over a window, which a breaker with
/// `consecutive_failures` does not do.
pub(super) fn judges_rates(key: breaker::Key) -> bool {
    match key {
        breaker::Key::FailureRate
        | breaker::Key::SlowRate
        | breaker::Key::Window
        | breaker::Key::WindowKind
        | breaker::Key::MinCalls => true,
        breaker::Key::Name
        | breaker::Key::SlowCall
        | breaker::Key::OpenFor
        | breaker::Key::HalfOpenCalls
        | breaker::Key::ConsecutiveFailures
        | breaker::Key::ExtendOpenOnFailure => false,
    }
}

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
    pub(super) keys: Vec<(breaker::Key, Span)>,
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
    pub(super) max_keys: Option<Spanned<u64>>,
    /// `key = expr`: the value that selects the bucket, with the span of its key.
    pub(super) key: Option<(Span, Expr)>,
    /// `cost = expr`: the tokens a call takes, with the span of its key.
    pub(super) cost: Option<(Span, Expr)>,
    /// `settle = path`: the tokens a call used, from its `Ok` value.
    pub(super) settle: Option<Path>,
    /// Each setting's key and its span, in the order written.
    pub(super) keys: Vec<(rate::Key, Span)>,
}

/// The scope whose bucket lives in Redis, one of the schema's words for `scope`.
pub(super) const GLOBAL: &str = "global";
/// The window kinds, the schema's words for `window_kind`: a window of calls, or of seconds.
pub(super) const COUNT: &str = "count";
pub(super) const TIME: &str = "time";

impl RateArgs {
    /// Whether a call takes something other than one token from the single bucket: a keyed or weighted
    /// limit, whose tokens are taken once per call before its attempts, and settled after it.
    pub(super) fn per_call(&self) -> bool {
        self.key.is_some() || self.cost.is_some() || self.settle.is_some()
    }

    /// Whether the bucket lives in Redis: `scope = "global"`.
    pub(super) fn global(&self) -> bool {
        self.scope.as_ref().is_some_and(|(_, scope)| scope.value == GLOBAL)
    }
}

/// `concurrency = 8` or `concurrency(..)`.
#[derive(Clone, Default)]
pub(crate) struct ConcurrencyArgs {
    pub(super) name: Option<Spanned<String>>,
    /// The limit, and the key it was written under (`concurrency` or `limit`).
    pub(super) limit: Option<(&'static str, Spanned<u64>)>,
    /// The word given to `limit` instead of a number: the algorithm of an adaptive limit.
    pub(super) algorithm: Option<Spanned<String>>,
    /// With its value's span: the guard as a whole needs an `async fn`, so no error points at this key.
    pub(super) wait: Option<Spanned<Duration>>,
    pub(super) min: Option<Spanned<u64>>,
    pub(super) max: Option<Spanned<u64>>,
    /// Each setting's key and its span, in the order written.
    pub(super) keys: Vec<(concurrency::Key, Span)>,
}

/// `bulkhead = 5` or `bulkhead(..)`.
#[derive(Clone, Default)]
pub(crate) struct BulkheadArgs {
    pub(super) name: Option<Spanned<String>>,
    /// The limit, and the key it was written under (`bulkhead` or `max`).
    pub(super) max: Option<(&'static str, Spanned<u64>)>,
    /// With the span of its key.
    pub(super) wait: Option<Spanned<Duration>>,
    /// `key = expr`: the value whose calls `max` bounds, with the span of its key.
    pub(super) key: Option<(Span, Expr)>,
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

/// When a hedge starts, as written.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(crate) enum HedgeAfter {
    /// A percentile of the observed latency, in thousandths.
    Percentile(u32),
    /// A fixed delay.
    Fixed(Duration),
}

/// `hedge`, or `hedge(..)`.
#[derive(Clone, Default)]
pub(crate) struct HedgeArgs {
    pub(super) name: Option<Spanned<String>>,
    pub(super) after: Option<Spanned<HedgeAfter>>,
    pub(super) max: Option<Spanned<u64>>,
    /// The author's word that the body may run twice, with the span of the key.
    pub(super) idempotent: Option<Spanned<bool>>,
}

/// The guard arguments of one attribute, as written; each with the span of its key.
#[derive(Clone, Default)]
pub(crate) struct GuardArgs {
    pub(super) breaker: Option<Spanned<BreakerArgs>>,
    pub(super) rate: Option<Spanned<RateArgs>>,
    /// The span of the key, and the value with its own span.
    pub(super) burst: Option<(Span, Spanned<u64>)>,
    pub(super) concurrency: Option<Spanned<ConcurrencyArgs>>,
    pub(super) bulkhead: Option<Spanned<BulkheadArgs>>,
    pub(super) timeout: Option<Spanned<Duration>>,
    pub(super) retry: Option<Spanned<RetryArgs>>,
    pub(super) hedge: Option<Spanned<HedgeArgs>>,
    pub(super) fallback: Option<Path>,
}

impl GuardArgs {
    /// Reads one guard argument; `key` is one of [`GUARD_ARGUMENTS`].
    pub(crate) fn read(&mut self, key: &str, meta: &Meta) -> syn::Result<()> {
        let at = meta.path().span();
        match key {
            "breaker" => self.breaker = Some(Spanned { value: breaker(meta)?, span: at }),
            "rate" => self.rate = Some(Spanned { value: rate(meta)?, span: at }),
            BURST => self.burst = Some((at, integer(meta, &rate::Key::Burst.example())?)),
            "concurrency" => self.concurrency = Some(Spanned { value: concurrency(meta)?, span: at }),
            "bulkhead" => self.bulkhead = Some(Spanned { value: bulkhead(meta)?, span: at }),
            "timeout" => self.timeout = Some(Spanned { value: duration(meta, "timeout = \"30s\"")?.value, span: at }),
            "retry" => self.retry = Some(Spanned { value: retry(meta)?, span: at }),
            "hedge" => self.hedge = Some(Spanned { value: hedge_args(meta)?, span: at }),
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
            concurrency: self.concurrency.or(outer.concurrency),
            bulkhead: self.bulkhead.or(outer.bulkhead),
            timeout: self.timeout.or(outer.timeout),
            retry: self.retry.or(outer.retry),
            hedge: self.hedge.or(outer.hedge),
            fallback: self.fallback.or(outer.fallback),
        }
    }

    /// Whether any guard runs around the call (a fallback alone wraps nothing).
    pub(super) fn guards_call(&self) -> bool {
        self.breaker.is_some()
            || self.rate.is_some()
            || self.concurrency.is_some()
            || self.bulkhead.is_some()
            || self.retry.is_some()
            || self.hedge.is_some()
            || self.timeout.is_some()
    }
}

/// Reads `guard(key = value, ..)`, checking each key against those of `K` the attribute accepts; returns
/// the keys read, each with its span, in the order written.
///
/// Table-driven rather than a `darling::FromMeta` derive: the schema is the one place a guard key's name
/// is written, and a derive's fields would be a second copy of every key, knowing nothing of the keys
/// set in the configuration only, with darling's worse messages besides (see `common::meta`).
fn settings<K: SchemaKey>(
    meta: &Meta,
    guard: &str,
    mut read: impl FnMut(K, &Meta) -> syn::Result<()>,
) -> syn::Result<Vec<(K, Span)>> {
    let Meta::List(list) = meta else { unreachable!("only lists have settings") };
    let accepted = K::in_attribute();
    let mut errors = Errors::default();
    let mut seen: Vec<(K, Span)> = Vec::new();
    for item in NestedMeta::parse_meta_list(list.tokens.clone())? {
        let NestedMeta::Meta(inner) = &item else {
            errors.over(&item, format!("expected a `{guard}` setting such as `{} = \"...\"`", K::NAME.name()));
            continue;
        };
        let written = key(inner);
        let at = inner.path().span();
        let Some(setting) =
            K::ALL.iter().copied().find(|setting| setting.spec().accepted.in_attribute() && setting.name() == written)
        else {
            let configured = K::ALL.iter().find(|setting| setting.name() == written).map(|setting| setting.spec());
            let message = match (configured, suggest::closest(&written, &accepted)) {
                (Some(Spec { accepted: Accepted::ConfigOnly(why), .. }), _) => format!(
                    "unknown `{guard}` setting `{written}`; it is set in the configuration only, under \
                     `[{guard}.<name>]` ({why})"
                ),
                (_, Some(candidate)) => format!("unknown `{guard}` setting `{written}`; did you mean `{candidate}`?"),
                (_, None) => {
                    format!("unknown `{guard}` setting `{written}`; expected one of {}", suggest::one_of(&accepted))
                }
            };
            errors.at(at, message);
            continue;
        };
        if seen.iter().any(|(key, _)| *key == setting) {
            errors.at(at, format!("`{}` is given more than once in `{guard}(..)`", setting.name()));
            continue;
        }
        seen.push((setting, at));
        if let Err(error) = read(setting, inner) {
            errors.push(error);
        }
    }
    errors.finish().map(|()| seen)
}

/// A configuration-only key, which [`settings`] refuses before any reader sees it.
fn config_only(key: impl SchemaKey) -> ! {
    unreachable!("`{}` is configuration only and refused as unknown", key.name())
}

fn breaker(meta: &Meta) -> syn::Result<BreakerArgs> {
    use breaker::Key;
    let mut args = BreakerArgs::default();
    match meta {
        Meta::Path(_) => {}
        Meta::NameValue(_) => args.name = Some(("breaker", string(meta, "breaker = \"llm\"")?)),
        Meta::List(_) => {
            args.keys = settings(meta, "breaker", |setting: Key, inner| {
                let example = setting.example();
                match setting {
                    Key::Name => args.name = Some((setting.name(), string(inner, &example)?)),
                    Key::FailureRate => args.failure_rate = Some(integer(inner, &example)?),
                    Key::SlowRate => args.slow_rate = Some(integer(inner, &example)?),
                    Key::SlowCall => args.slow_call = Some(duration(inner, &example)?),
                    Key::Window => args.window = Some(integer(inner, &example)?),
                    Key::WindowKind => args.window_kind = Some(string(inner, &example)?),
                    Key::MinCalls => args.min_calls = Some(integer(inner, &example)?),
                    Key::OpenFor => args.open_for = Some(duration(inner, &example)?),
                    Key::HalfOpenCalls => args.half_open_calls = Some(integer(inner, &example)?),
                    Key::ConsecutiveFailures => args.consecutive_failures = Some(integer(inner, &example)?),
                    Key::ExtendOpenOnFailure => config_only(setting),
                }
                Ok(())
            })?;
        }
    }
    Ok(args)
}

fn rate(meta: &Meta) -> syn::Result<RateArgs> {
    use rate::Key;
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
            args.keys = settings(meta, "rate", |setting: Key, inner| {
                let example = setting.example();
                let at = inner.path().span();
                match setting {
                    Key::Name => args.name = Some(string(inner, &example)?),
                    Key::PerSecond => args.per = Some(per(inner)?),
                    Key::PerMinute => args.per = Some(per_period(inner, &example, 60)?),
                    Key::PerHour => args.per = Some(per_period(inner, &example, 3_600)?),
                    Key::Burst => args.burst = Some(integer(inner, &example)?),
                    Key::Wait => args.wait = Some(keyed(inner, duration(inner, &example)?)),
                    Key::Scope => args.scope = Some((at, string(inner, &example)?)),
                    Key::MaxKeys => args.max_keys = Some(integer(inner, &example)?),
                    Key::Key => args.key = Some((at, value(inner, &example)?.clone())),
                    Key::Cost => args.cost = Some((at, value(inner, &example)?.clone())),
                    Key::Settle => args.settle = Some(function(inner, &example)?),
                    Key::RedisUrl | Key::OnUnavailable | Key::RedisTimeout | Key::Replicas => config_only(setting),
                }
                Ok(())
            })?;
        }
    }
    Ok(args)
}

fn concurrency(meta: &Meta) -> syn::Result<ConcurrencyArgs> {
    use concurrency::Key;
    let mut args = ConcurrencyArgs::default();
    match meta {
        Meta::Path(path) => {
            return Err(syn::Error::new_spanned(path, "`concurrency` needs a value, such as `concurrency = 8`"));
        }
        Meta::NameValue(_) => args.limit = Some(("concurrency", integer(meta, "concurrency = 8")?)),
        Meta::List(_) => {
            args.keys = settings(meta, "concurrency", |setting: Key, inner| {
                let example = setting.example();
                match setting {
                    Key::Name => args.name = Some(string(inner, &example)?),
                    Key::Limit if is_string(inner) => args.algorithm = Some(string(inner, &example)?),
                    Key::Limit => args.limit = Some((setting.name(), integer(inner, &example)?)),
                    Key::Wait => args.wait = Some(duration(inner, &example)?),
                    Key::Min => args.min = Some(integer(inner, &example)?),
                    Key::Max => args.max = Some(integer(inner, &example)?),
                }
                Ok(())
            })?;
        }
    }
    Ok(args)
}

fn bulkhead(meta: &Meta) -> syn::Result<BulkheadArgs> {
    use bulkhead::Key;
    let mut args = BulkheadArgs::default();
    match meta {
        Meta::Path(path) => {
            return Err(syn::Error::new_spanned(path, "`bulkhead` needs a value, such as `bulkhead = 5`"));
        }
        Meta::NameValue(_) => args.max = Some(("bulkhead", integer(meta, "bulkhead = 5")?)),
        Meta::List(_) => {
            settings(meta, "bulkhead", |setting: Key, inner| {
                let example = setting.example();
                match setting {
                    Key::Name => args.name = Some(string(inner, &example)?),
                    Key::Max => args.max = Some((setting.name(), integer(inner, &example)?)),
                    Key::Wait => args.wait = Some(keyed(inner, duration(inner, &example)?)),
                    Key::Key => args.key = Some((inner.path().span(), value(inner, &example)?.clone())),
                }
                Ok(())
            })?;
        }
    }
    Ok(args)
}

fn retry(meta: &Meta) -> syn::Result<RetryArgs> {
    use retry::Key;
    let mut args = RetryArgs::default();
    match meta {
        Meta::Path(_) => {}
        Meta::NameValue(_) => args.attempts = Some(("retry", integer(meta, "retry = 3")?)),
        Meta::List(_) => {
            settings(meta, "retry", |setting: Key, inner| {
                let example = setting.example();
                match setting {
                    Key::Name => args.name = Some(string(inner, &example)?),
                    Key::Attempts => args.attempts = Some((setting.name(), integer(inner, &example)?)),
                    Key::Backoff => args.backoff = Some(duration(inner, &example)?),
                    Key::MaxBackoff => args.max_backoff = Some(duration(inner, &example)?),
                    Key::Jitter => args.jitter = Some(boolean(inner)?),
                    Key::When => args.when = Some(function(inner, &example)?),
                    Key::BudgetRatio | Key::BudgetReserve => config_only(setting),
                }
                Ok(())
            })?;
        }
    }
    Ok(args)
}

fn hedge_args(meta: &Meta) -> syn::Result<HedgeArgs> {
    use hedge::Key;
    let mut args = HedgeArgs::default();
    match meta {
        Meta::Path(_) => {}
        Meta::NameValue(_) => args.name = Some(string(meta, "hedge = \"search\"")?),
        Meta::List(_) => {
            settings(meta, "hedge", |setting: Key, inner| {
                let example = setting.example();
                match setting {
                    Key::Name => args.name = Some(string(inner, &example)?),
                    Key::After => args.after = Some(after(inner)?),
                    Key::Max => args.max = Some(integer(inner, &example)?),
                    Key::Idempotent => {
                        let value = if matches!(inner, Meta::Path(_)) { true } else { boolean(inner)?.value };
                        args.idempotent = Some(keyed(inner, Spanned { value, span: inner.path().span() }));
                    }
                    Key::BudgetRatio | Key::BudgetReserve => config_only(setting),
                }
                Ok(())
            })?;
        }
    }
    Ok(args)
}

/// `after = "p95"` (a percentile from p50 to p99.9) or `after = "200ms"` (a duration).
fn after(meta: &Meta) -> syn::Result<Spanned<HedgeAfter>> {
    let text = string(meta, "after = \"p95\"")?;
    let (low, high) = hardened_schema::HEDGE_PERCENTILES;
    let expected = |found: &str| {
        syn::Error::new(
            text.span,
            format!(
                "`after` expects a percentile from `\"p50\"` to `\"p99.9\"` or a duration such as `\"200ms\"`, \
                 found `\"{}\"`",
                found.escape_debug()
            ),
        )
    };
    if text.value.starts_with('p') {
        return match hardened_schema::percentile(&text.value) {
            Some(permille) if (low..=high).contains(&permille) => {
                Ok(Spanned { value: HedgeAfter::Percentile(permille), span: text.span })
            }
            _ => Err(expected(&text.value)),
        };
    }
    match humantime::parse_duration(&text.value) {
        Ok(duration) if !duration.is_zero() => Ok(Spanned { value: HedgeAfter::Fixed(duration), span: text.span }),
        Ok(_) => Err(syn::Error::new(
            text.span,
            format!("`after` must be longer than zero, found `\"{}\"`", text.value.escape_debug()),
        )),
        Err(_) => Err(expected(&text.value)),
    }
}

/// `value` with the span of `meta`'s key instead of its own, for errors about the setting being there.
fn keyed<T>(meta: &Meta, value: Spanned<T>) -> Spanned<T> {
    Spanned { value: value.value, span: meta.path().span() }
}

/// A whole number, such as `window = 100`.
/// Whether the value of `key = value` is a string literal.
fn is_string(meta: &Meta) -> bool {
    matches!(meta, Meta::NameValue(name_value) if matches!(&name_value.value, Expr::Lit(syn::ExprLit { lit: Lit::Str(_), .. })))
}

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

/// `per_minute = 400_000` or `per_hour = 100_000`: a whole number of calls per `seconds`.
fn per_period(meta: &Meta, example: &str, seconds: u64) -> syn::Result<Spanned<(u64, Duration)>> {
    let calls = integer(meta, example)?;
    Ok(Spanned { value: (calls.value, Duration::from_secs(seconds)), span: calls.span })
}

/// The periods a rate may be given per, and their length in seconds.
const PERIODS: &[(&str, u64)] =
    &[("s", 1), ("sec", 1), ("second", 1), ("m", 60), ("min", 60), ("minute", 60), ("h", 3600), ("hour", 3600)];

/// A rate: `10` (per second), `2.5` (per second) or `"100/min"`.
fn per(meta: &Meta) -> syn::Result<Spanned<(u64, Duration)>> {
    let example = format!("{} = {}", key(meta), rate::Key::PerSecond.spec().example);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `kind(key = example)` with `reader`, for every key of the kind in the schema: a key the
    /// attribute accepts is read, a configuration-only key is refused as unknown.
    fn walk<K: SchemaKey, T>(kind: &str, reader: fn(&Meta) -> syn::Result<T>) {
        for key in K::ALL.iter().copied() {
            let written = format!("{kind}({})", key.example());
            let meta: Meta = syn::parse_str(&written).unwrap_or_else(|error| panic!("{written}: {error}"));
            let read = reader(&meta);
            match key.spec().accepted {
                Accepted::Both | Accepted::AttributeOnly(_) => {
                    assert!(read.is_ok(), "{written}: {:?}", read.err().map(|error| error.to_string()));
                }
                Accepted::ConfigOnly(why) => {
                    let error = read.err().unwrap_or_else(|| panic!("{written} is accepted")).to_string();
                    let unknown = format!("unknown `{kind}` setting `{}`", key.name());
                    assert!(error.starts_with(&unknown), "{written}: {error}");
                    assert!(error.contains(&format!("`[{kind}.<name>]` ({why})")), "{written}: {error}");
                }
            }
        }
    }

    #[test]
    fn every_key_of_the_schema_is_read_or_refused_as_configuration_only() {
        walk::<breaker::Key, _>("breaker", breaker);
        walk::<rate::Key, _>("rate", rate);
        walk::<concurrency::Key, _>("concurrency", concurrency);
        walk::<bulkhead::Key, _>("bulkhead", bulkhead);
        walk::<retry::Key, _>("retry", retry);
        walk::<hedge::Key, _>("hedge", hedge_args);
    }

    #[test]
    fn hedge_reads_percentiles_durations_and_the_idempotent_flag() {
        let read = |meta: Meta| hedge_args(&meta).map_err(|error| error.to_string());
        let args = read(syn::parse_quote!(hedge(after = "p99.9", max = 2, idempotent))).expect("valid");
        assert_eq!(args.after.map(|after| after.value), Some(HedgeAfter::Percentile(999)));
        assert_eq!(args.idempotent.map(|flag| flag.value), Some(true));
        let args = read(syn::parse_quote!(hedge(after = "200ms"))).expect("valid");
        assert_eq!(args.after.map(|after| after.value), Some(HedgeAfter::Fixed(Duration::from_millis(200))));
        for bad in ["p40", "p100", "soon", "p95.55"] {
            let meta: Meta = syn::parse_str(&format!("hedge(after = \"{bad}\")")).expect("tokens");
            let error = read(meta).err().unwrap_or_else(|| panic!("{bad} is accepted"));
            assert!(error.starts_with("`after` expects a percentile from `\"p50\"` to `\"p99.9\"`"), "{error}");
        }
    }

    #[test]
    fn unknown_settings_list_only_what_the_attribute_accepts() {
        assert_eq!(retry::Key::ALL.len(), 8);
        assert_eq!(
            <retry::Key as SchemaKey>::in_attribute(),
            ["name", "attempts", "backoff", "max_backoff", "jitter", "when"]
        );
        let message = |meta: Meta| retry(&meta).err().map(|error| error.to_string()).unwrap_or_default();
        assert_eq!(
            message(syn::parse_quote!(retry(budget = 0.1))),
            "unknown `retry` setting `budget`; expected one of `name`, `attempts`, `backoff`, `max_backoff`, \
             `jitter` or `when`"
        );
        assert_eq!(
            message(syn::parse_quote!(retry(budget_ratio = 0.1))),
            "unknown `retry` setting `budget_ratio`; it is set in the configuration only, under `[retry.<name>]` \
             (the retry budget protects the dependency under load: an operations choice)"
        );
    }

    #[test]
    fn the_words_the_expansion_maps_are_the_schemas() {
        assert_eq!(words(breaker::Key::WindowKind), [COUNT, TIME]);
        assert!(words(rate::Key::Scope).contains(&GLOBAL));
        assert_eq!(whole(breaker::Key::Window), (1, 1 << 20));
    }
}
