//! The keys of hardened's guards, in one table that the `#[hardened]` attribute and the configuration
//! file both read.
//!
//! Each kind of guard is a module ([`breaker`], [`rate`], [`concurrency`], [`bulkhead`], [`retry`]) with a
//! `Key` enum: one variant per key, whose [`Spec`] gives its name, its [`Value`] type and range, its
//! default, an example, and whether the attribute, the configuration or both accept it ([`Accepted`]).
//! Readers match on the enum, so a key added here is a compile error in every reader until it handles it.
//! Two kinds are no guards but are configured as one: service level objectives ([`slo`]) and the duration
//! histograms of the functions ([`metrics`]).
//!
//! ```
//! use hardened_schema::{Accepted, breaker};
//!
//! let key = breaker::Key::from_name("failure_rate").expect("a breaker key");
//! assert_eq!(key, breaker::Key::FailureRate);
//! assert_eq!(key.spec().value.to_string(), "a whole number from 1 to 100");
//! assert_eq!(key.spec().accepted, Accepted::Both);
//! ```
#![no_std]

use core::fmt;

/// The type of a key's value, and its range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    /// A whole number from `min` to `max`, both included.
    Whole {
        /// The smallest value allowed.
        min: u64,
        /// The largest value allowed.
        max: u64,
    },
    /// A duration longer than zero: `"30s"`, `"250ms"`, `"1m 30s"`.
    Duration,
    /// Calls per period: a number of calls per second, or `"100/min"`, `"5/h"`, `"3/10s"`.
    Rate,
    /// `true` or `false`.
    Bool,
    /// A number from 0.0 to 1.0.
    Fraction,
    /// One of these words.
    OneOf(&'static [&'static str]),
    /// A whole number from `min` to `max`, or one of these words: a fixed setting, or one worked out
    /// at run time (a concurrency limit of 8, or `"gradient"`).
    WholeOrOneOf {
        /// The smallest number allowed.
        min: u64,
        /// The largest number allowed.
        max: u64,
        /// The words allowed instead of a number.
        words: &'static [&'static str],
    },
    /// A Redis URL: `redis://`, `rediss://` (TLS) or `unix://`.
    RedisUrl,
    /// The name of a guard shared by every function that gives it.
    Name,
    /// A function of the program, such as `retry(when = is_transient)`.
    Function,
    /// An expression over the function's arguments, such as `rate(key = user_id)`.
    Expression,
    /// A delay: a duration longer than zero (`"200ms"`), or a percentile of the latency observed,
    /// from `"p50"` to `"p99.9"`.
    Latency,
    /// A percentage above 0 and below 100, such as `99.9`: the share of calls an objective promises.
    Percent,
    /// The bounds of a duration histogram: from 1 to [`MAX_BUCKETS`] numbers of seconds, each above zero
    /// and larger than the one before, such as `[0.1, 0.5, 1, 5]`.
    Buckets,
}

impl fmt::Display for Value {
    /// What the value may be, as error messages of the attribute and the configuration say it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Whole { min, max } => write!(f, "a whole number from {min} to {max}"),
            Value::Duration => f.write_str("a duration longer than zero, such as \"30s\", \"250ms\" or \"1m 30s\""),
            Value::Rate => f.write_str(
                "a rate above zero: 10 or 2.5 (calls per second), or a string such as \"100/min\", \"5/h\" or \"3/10s\"",
            ),
            Value::Bool => f.write_str("true or false"),
            Value::Fraction => f.write_str("a number from 0.0 to 1.0"),
            Value::OneOf(words) => one_of(f, words),
            Value::WholeOrOneOf { min, max, words } => {
                write!(f, "a whole number from {min} to {max}, or ")?;
                one_of(f, words)
            }
            Value::RedisUrl => f.write_str("a URL starting redis://, rediss:// (TLS) or unix://"),
            Value::Name => f.write_str("a name"),
            Value::Function => f.write_str("a function"),
            Value::Expression => f.write_str("an expression over the function's arguments"),
            Value::Latency => f.write_str(
                "a duration longer than zero, such as \"200ms\", or a percentile of the observed latency from \"p50\" to \"p99.9\"",
            ),
            Value::Percent => f.write_str("a percentage above 0 and below 100, such as 99.9"),
            Value::Buckets => write!(
                f,
                "a list of 1 to {MAX_BUCKETS} numbers of seconds, each at least 1 ns (0.000000001) and larger than the \
                 one before, such as [0.1, 0.5, 1, 5]"
            ),
        }
    }
}

/// `"a", "b" or "c"`.
fn one_of(f: &mut fmt::Formatter<'_>, words: &[&str]) -> fmt::Result {
    for (index, word) in words.iter().enumerate() {
        let separator = match index {
            0 => "",
            _ if index + 1 == words.len() => " or ",
            _ => ", ",
        };
        write!(f, "{separator}\"{word}\"")?;
    }
    Ok(())
}

/// Where a key may be written, and why only there when it is one of the two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// In the attribute and in the configuration.
    Both,
    /// Only in the configuration, for the reason given.
    ConfigOnly(&'static str),
    /// Only in the attribute, for the reason given.
    AttributeOnly(&'static str),
}

impl Accepted {
    /// Whether the `#[hardened]` attribute accepts the key.
    #[must_use]
    pub const fn in_attribute(self) -> bool {
        !matches!(self, Accepted::ConfigOnly(_))
    }

    /// Whether the configuration (file and environment) accepts the key.
    #[must_use]
    pub const fn in_config(self) -> bool {
        !matches!(self, Accepted::AttributeOnly(_))
    }
}

/// One key of one kind of guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    /// The key as written: `failure_rate`.
    pub name: &'static str,
    /// Its value's type and range.
    pub value: Value,
    /// The value in force when nothing sets it, as the configuration would write it; `None` when unset
    /// means something of its own (no waiting, no consecutive-failure rule).
    pub default: Option<&'static str>,
    /// A value to show in messages and documentation, as the attribute would write it: `50`, `"30s"`.
    pub example: &'static str,
    /// What the key does, in one line.
    pub doc: &'static str,
    /// Where it may be written.
    pub accepted: Accepted,
}

/// One kind of guard: its section, what messages call one, and its keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    /// The attribute's argument and the configuration's table: `breaker`, `rate`, `concurrency`, `bulkhead`,
    /// `retry`.
    pub name: &'static str,
    /// What messages call one guard of the kind: `breaker`, `rate limiter`, `bulkhead`, `retry policy`.
    pub noun: &'static str,
    /// Every key, in the order they are documented and rendered.
    pub keys: &'static [Spec],
}

impl Kind {
    /// The key called `name`.
    #[must_use]
    pub fn key(&self, name: &str) -> Option<&'static Spec> {
        self.keys.iter().find(|spec| spec.name == name)
    }
}

/// Defines a kind's `Key` enum and its table from one list, so the two cannot disagree.
macro_rules! kind {
    (
        $(#[$doc:meta])*
        $module:ident, $name:literal, $noun:literal,
        { $( $(#[$key_doc:meta])* $variant:ident => $spec:expr, )+ }
    ) => {
        $(#[$doc])*
        pub mod $module {
            use super::{Accepted, Kind, Spec, Value};

            /// A key of this kind of guard.
            #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
            pub enum Key {
                $( $(#[$key_doc])* $variant, )+
            }

            impl Key {
                /// Every key, in the order of [`KIND`]'s table.
                pub const ALL: &'static [Key] = &[$(Key::$variant),+];

                /// What the table says of the key.
                #[must_use]
                pub const fn spec(self) -> &'static Spec {
                    &KIND.keys[self as usize]
                }

                /// The key as written.
                #[must_use]
                pub const fn name(self) -> &'static str {
                    self.spec().name
                }

                /// The key written as `name`, if this kind has one.
                #[must_use]
                pub fn from_name(name: &str) -> Option<Key> {
                    Key::ALL.iter().copied().find(|key| key.name() == name)
                }
            }

            /// The kind and its keys.
            pub const KIND: Kind = Kind { name: $name, noun: $noun, keys: &[$($spec),+] };

            // Silences the unused-import lint for kinds that use no `Accepted` or `Value` variant directly.
            const _: (Option<Accepted>, Option<Value>) = (None, None);
        }
    };
}

/// The name every kind accepts in the attribute: configuration names a guard by its section instead.
/// Each kind shows its own `example`, a name such a guard would have.
const fn name(example: &'static str) -> Spec {
    Spec {
        name: "name",
        value: Value::Name,
        default: None,
        example,
        doc: "the name of a guard shared by every function that gives it; without one, the function's own",
        accepted: Accepted::AttributeOnly("the configuration names a guard by its section, [kind.<name>]"),
    }
}

/// Why the keys of a global limiter's Redis are configuration only.
const DEPLOYMENT: &str =
    "a fact of the deployment, not of the code: which Redis, how long to wait for it, how many replicas";

kind! {
    /// `breaker(..)` and `[breaker.<name>]`: a circuit breaker.
    breaker, "breaker", "breaker",
    {
        /// `name`.
        Name => super::name("\"llm\""),
        /// `failure_rate`.
        FailureRate => Spec {
            name: "failure_rate",
            value: Value::Whole { min: 1, max: 100 },
            default: Some("50"),
            example: "50",
            doc: "failure percentage at or above which the breaker opens",
            accepted: Accepted::Both,
        },
        /// `slow_rate`.
        SlowRate => Spec {
            name: "slow_rate",
            value: Value::Whole { min: 1, max: 100 },
            default: Some("100"),
            example: "100",
            doc: "slow-call percentage at or above which the breaker opens",
            accepted: Accepted::Both,
        },
        /// `slow_call`.
        SlowCall => Spec {
            name: "slow_call",
            value: Value::Duration,
            default: Some("1m"),
            example: "\"2s\"",
            doc: "a call lasting at least this long is slow",
            accepted: Accepted::Both,
        },
        /// `window`.
        Window => Spec {
            name: "window",
            value: Value::Whole { min: 1, max: 1 << 20 },
            default: Some("100"),
            example: "100",
            doc: "the sliding window's size, in calls or seconds",
            accepted: Accepted::Both,
        },
        /// `window_kind`.
        WindowKind => Spec {
            name: "window_kind",
            value: Value::OneOf(&["count", "time"]),
            default: Some("count"),
            example: "\"count\"",
            doc: "whether the window holds the last calls or the last seconds",
            accepted: Accepted::Both,
        },
        /// `min_calls`.
        MinCalls => Spec {
            name: "min_calls",
            value: Value::Whole { min: 1, max: u32::MAX as u64 },
            default: Some("10"),
            example: "10",
            doc: "calls the window must hold before rates are judged",
            accepted: Accepted::Both,
        },
        /// `open_for`.
        OpenFor => Spec {
            name: "open_for",
            value: Value::Duration,
            default: Some("30s"),
            example: "\"30s\"",
            doc: "how long the breaker stays open before probing",
            accepted: Accepted::Both,
        },
        /// `half_open_calls`.
        HalfOpenCalls => Spec {
            name: "half_open_calls",
            value: Value::Whole { min: 1, max: u32::MAX as u64 },
            default: Some("3"),
            example: "3",
            doc: "probes admitted in the half-open state",
            accepted: Accepted::Both,
        },
        /// `consecutive_failures`.
        ConsecutiveFailures => Spec {
            name: "consecutive_failures",
            value: Value::Whole { min: 1, max: u32::MAX as u64 },
            default: None,
            example: "5",
            doc: "open after this many failures in a row instead of judging rates",
            accepted: Accepted::Both,
        },
        /// `extend_open_on_failure`.
        ExtendOpenOnFailure => Spec {
            name: "extend_open_on_failure",
            value: Value::Bool,
            default: Some("false"),
            example: "true",
            doc: "whether a failure reported while open restarts `open_for`",
            accepted: Accepted::ConfigOnly("an operations choice: how long to keep a failing dependency cut off"),
        },
    }
}

kind! {
    /// `rate(..)` and `[rate.<name>]`: a rate limiter.
    rate, "rate", "rate limiter",
    {
        /// `name`.
        Name => super::name("\"anthropic\""),
        /// `per_second`.
        PerSecond => Spec {
            name: "per_second",
            value: Value::Rate,
            default: Some("10"),
            example: "10",
            doc: "calls admitted per period, and the period",
            accepted: Accepted::Both,
        },
        /// `per_minute`.
        PerMinute => Spec {
            name: "per_minute",
            value: Value::Whole { min: 1, max: u32::MAX as u64 },
            default: None,
            example: "400_000",
            doc: "calls (or tokens, with `cost`) admitted per minute, instead of `per_second`",
            accepted: Accepted::Both,
        },
        /// `per_hour`.
        PerHour => Spec {
            name: "per_hour",
            value: Value::Whole { min: 1, max: u32::MAX as u64 },
            default: None,
            example: "100_000",
            doc: "calls (or tokens, with `cost`) admitted per hour, instead of `per_second`",
            accepted: Accepted::Both,
        },
        /// `burst`.
        Burst => Spec {
            name: "burst",
            value: Value::Whole { min: 1, max: u32::MAX as u64 },
            default: Some("10"),
            example: "20",
            doc: "calls admitted at once after a quiet spell; unset, the number of calls per period",
            accepted: Accepted::Both,
        },
        /// `wait`.
        Wait => Spec {
            name: "wait",
            value: Value::Duration,
            default: None,
            example: "\"1s\"",
            doc: "how long a call may wait for a token; unset, it is refused at once",
            accepted: Accepted::Both,
        },
        /// `scope`.
        Scope => Spec {
            name: "scope",
            value: Value::OneOf(&["local", "global"]),
            default: Some("local"),
            example: "\"global\"",
            doc: "one bucket per replica, or one in Redis shared by every replica",
            accepted: Accepted::Both,
        },
        /// `redis_url`.
        RedisUrl => Spec {
            name: "redis_url",
            value: Value::RedisUrl,
            default: None,
            example: "\"redis://redis:6379\"",
            doc: "the Redis server of a global limiter; unset, REDIS_URL",
            accepted: Accepted::ConfigOnly(super::DEPLOYMENT),
        },
        /// `on_unavailable`.
        OnUnavailable => Spec {
            name: "on_unavailable",
            value: Value::OneOf(&["local", "reject"]),
            default: Some("local"),
            example: "\"reject\"",
            doc: "while Redis is unavailable: this replica's share decides, or calls are refused",
            accepted: Accepted::ConfigOnly(super::DEPLOYMENT),
        },
        /// `redis_timeout`.
        RedisTimeout => Spec {
            name: "redis_timeout",
            value: Value::Duration,
            default: Some("50ms"),
            example: "\"50ms\"",
            doc: "how long one decision waits for Redis",
            accepted: Accepted::ConfigOnly(super::DEPLOYMENT),
        },
        /// `replicas`.
        Replicas => Spec {
            name: "replicas",
            value: Value::Whole { min: 1, max: u32::MAX as u64 },
            default: Some("1"),
            example: "3",
            doc: "how many replicas share a global limiter's quota",
            accepted: Accepted::ConfigOnly(super::DEPLOYMENT),
        },
        /// `key`.
        Key => Spec {
            name: "key",
            value: Value::Expression,
            default: None,
            example: "user_id",
            doc: "one bucket per value of this argument or expression (a tenant, user or API key)",
            accepted: Accepted::AttributeOnly("it is an expression over the function's arguments"),
        },
        /// `max_keys`.
        MaxKeys => Spec {
            name: "max_keys",
            value: Value::Whole { min: 1, max: 100_000_000 },
            default: Some("10000"),
            example: "50_000",
            doc: "the most keys' buckets held at once; past it, full buckets go first, then the least recently used",
            accepted: Accepted::Both,
        },
        /// `cost`.
        Cost => Spec {
            name: "cost",
            value: Value::Expression,
            default: None,
            example: "estimate_tokens(&request)",
            doc: "the tokens a call takes, an unsigned integer expression over the arguments; unset, 1",
            accepted: Accepted::AttributeOnly("it is an expression over the function's arguments"),
        },
        /// `settle`.
        Settle => Spec {
            name: "settle",
            value: Value::Function,
            default: None,
            example: "tokens_used",
            doc: "the tokens a call really used, from its `Ok` value: the difference from `cost` is refunded or charged",
            accepted: Accepted::AttributeOnly("a function of the program cannot be written in configuration"),
        },
    }
}

kind! {
    /// `concurrency(..)` and `[concurrency.<name>]`: a limit of calls in flight that queues the calls
    /// over it, each up to a deadline.
    concurrency, "concurrency", "concurrency limit",
    {
        /// `name`.
        Name => super::name("\"llm\""),
        /// `limit`.
        Limit => Spec {
            name: "limit",
            value: Value::WholeOrOneOf { min: 1, max: u32::MAX as u64, words: super::CONCURRENCY_ALGORITHMS },
            default: Some("10"),
            example: "8",
            doc: "calls in flight at once, the calls over it queuing; or the algorithm that adapts it to the \
                  dependency's latency, between `min` and `max`",
            accepted: Accepted::Both,
        },
        /// `wait`.
        Wait => Spec {
            name: "wait",
            value: Value::Duration,
            default: Some("30s"),
            example: "\"5s\"",
            doc: "how long a call may queue for its turn before it is refused",
            accepted: Accepted::Both,
        },
        /// `min`.
        Min => Spec {
            name: "min",
            value: Value::Whole { min: 1, max: u32::MAX as u64 },
            default: Some("1"),
            example: "2",
            doc: "the lowest an adaptive limit goes",
            accepted: Accepted::Both,
        },
        /// `max`.
        Max => Spec {
            name: "max",
            value: Value::Whole { min: 1, max: u32::MAX as u64 },
            default: Some("1000"),
            example: "200",
            doc: "the highest an adaptive limit goes",
            accepted: Accepted::Both,
        },
    }
}

kind! {
    /// `bulkhead(..)` and `[bulkhead.<name>]`: a limit of calls at once.
    bulkhead, "bulkhead", "bulkhead",
    {
        /// `name`.
        Name => super::name("\"orchestrator\""),
        /// `max`.
        Max => Spec {
            name: "max",
            value: Value::Whole { min: 1, max: u32::MAX as u64 },
            default: Some("10"),
            example: "5",
            doc: "calls allowed at once",
            accepted: Accepted::Both,
        },
        /// `wait`.
        Wait => Spec {
            name: "wait",
            value: Value::Duration,
            default: None,
            example: "\"2s\"",
            doc: "how long a call may wait for a permit; unset, it is refused at once",
            accepted: Accepted::Both,
        },
        /// `key`.
        Key => Spec {
            name: "key",
            value: Value::Expression,
            default: None,
            example: "tenant",
            doc: "`max` calls at once for each value of this argument or expression (a tenant, user or API key)",
            accepted: Accepted::AttributeOnly("it is an expression over the function's arguments"),
        },
    }
}

kind! {
    /// `retry(..)` and `[retry.<name>]`: a retry policy.
    retry, "retry", "retry policy",
    {
        /// `name`.
        Name => super::name("\"llm\""),
        /// `attempts`.
        Attempts => Spec {
            name: "attempts",
            value: Value::Whole { min: 1, max: 100 },
            default: Some("2"),
            example: "3",
            doc: "retries after the first attempt",
            accepted: Accepted::Both,
        },
        /// `backoff`.
        Backoff => Spec {
            name: "backoff",
            value: Value::Duration,
            default: Some("100ms"),
            example: "\"100ms\"",
            doc: "the delay before the first retry; it doubles for each further one",
            accepted: Accepted::Both,
        },
        /// `max_backoff`.
        MaxBackoff => Spec {
            name: "max_backoff",
            value: Value::Duration,
            default: Some("5s"),
            example: "\"5s\"",
            doc: "the largest delay between two attempts",
            accepted: Accepted::Both,
        },
        /// `jitter`.
        Jitter => Spec {
            name: "jitter",
            value: Value::Bool,
            default: Some("true"),
            example: "false",
            doc: "whether delays are drawn at random between half their value and their value",
            accepted: Accepted::Both,
        },
        /// `budget_ratio`.
        BudgetRatio => Spec {
            name: "budget_ratio",
            value: Value::Fraction,
            default: Some("0.2"),
            example: "0.1",
            doc: "the share of a retry each call adds to the retry budget",
            accepted: Accepted::ConfigOnly("the retry budget protects the dependency under load: an operations choice"),
        },
        /// `budget_reserve`.
        BudgetReserve => Spec {
            name: "budget_reserve",
            value: Value::Whole { min: 1, max: u32::MAX as u64 },
            default: Some("10"),
            example: "10",
            doc: "retries the budget allows before any call has added to it",
            accepted: Accepted::ConfigOnly("the retry budget protects the dependency under load: an operations choice"),
        },
        /// `when`.
        When => Spec {
            name: "when",
            value: Value::Function,
            default: None,
            example: "is_transient",
            doc: "which errors are worth another attempt: a function of the error",
            accepted: Accepted::AttributeOnly("a function of the program cannot be written in configuration"),
        },
    }
}

kind! {
    /// `hedge(..)` and `[hedge.<name>]`: hedged requests, one more attempt started when the first is slow.
    hedge, "hedge", "hedging policy",
    {
        /// `name`.
        Name => super::name("\"search\""),
        /// `after`.
        After => Spec {
            name: "after",
            value: Value::Latency,
            default: Some("p95"),
            example: "\"p95\"",
            doc: "how long the first attempt runs before another starts: a percentile of the function's observed \
                  latency, or a fixed duration",
            accepted: Accepted::Both,
        },
        /// `max`.
        Max => Spec {
            name: "max",
            value: Value::Whole { min: 1, max: 3 },
            default: Some("1"),
            example: "1",
            doc: "extra attempts a call may start",
            accepted: Accepted::Both,
        },
        /// `idempotent`.
        Idempotent => Spec {
            name: "idempotent",
            value: Value::Bool,
            default: None,
            example: "true",
            doc: "the author's word that running the body twice is harmless, which `audit` asks for",
            accepted: Accepted::AttributeOnly("a fact of the code, which the author states beside it"),
        },
        /// `budget_ratio`.
        BudgetRatio => Spec {
            name: "budget_ratio",
            value: Value::Fraction,
            default: Some("0.1"),
            example: "0.05",
            doc: "the share of a hedge each call adds to the budget, when the function has no retry budget to share",
            accepted: Accepted::ConfigOnly("the hedging budget protects the dependency under load: an operations choice"),
        },
        /// `budget_reserve`.
        BudgetReserve => Spec {
            name: "budget_reserve",
            value: Value::Whole { min: 1, max: u32::MAX as u64 },
            default: Some("10"),
            example: "10",
            doc: "hedges the budget allows before any call has added to it",
            accepted: Accepted::ConfigOnly("the hedging budget protects the dependency under load: an operations choice"),
        },
    }
}

kind! {
    /// `slo(..)` and `[slo.<name>]`: a service level objective that the calls of every function naming it
    /// count towards. Not a guard: nothing runs in the call; Prometheus rules judge the calls' series.
    slo, "slo", "service level objective",
    {
        /// `name`.
        Name => Spec {
            name: "name",
            value: Value::Name,
            default: None,
            example: "\"chat\"",
            doc: "the objective's name, shared by every function whose calls count towards it",
            accepted: Accepted::AttributeOnly("the configuration names an objective by its section, [slo.<name>]"),
        },
        /// `success`.
        Success => Spec {
            name: "success",
            value: Value::Percent,
            default: None,
            example: "99.9",
            doc: "the percentage of calls that must succeed (end neither in error, panic, timeout nor rejection)",
            accepted: Accepted::Both,
        },
        /// `latency`.
        Latency => Spec {
            name: "latency",
            value: Value::Duration,
            default: None,
            example: "\"2s\"",
            doc: "the latency threshold: a bound of every member function's duration histogram",
            accepted: Accepted::Both,
        },
        /// `latency_target`.
        LatencyTarget => Spec {
            name: "latency_target",
            value: Value::Percent,
            default: None,
            example: "99",
            doc: "the percentage of calls that must finish within `latency`",
            accepted: Accepted::Both,
        },
    }
}

kind! {
    /// `[metrics.<name>]`: the duration histogram of the functions a section names, by their kind
    /// (`[metrics.llm]`), by their `module::function` (`[metrics."app::chat::complete"]`), or all of them
    /// (`[metrics.default]`). Not a guard: the attribute writes these keys as `buckets = [..]` and
    /// `histogram = false`, at its top level.
    metrics, "metrics", "histogram",
    {
        /// `buckets`.
        Buckets => Spec {
            name: "buckets",
            value: Value::Buckets,
            default: None,
            example: "[0.5, 1, 2, 5, 10, 30]",
            doc: "the bounds of `hardened_call_duration_seconds`, in seconds; unset, the attribute's `buckets = [..]`, \
                  else 24 bounds from 5 µs to 5 min",
            accepted: Accepted::Both,
        },
        /// `histogram`.
        Histogram => Spec {
            name: "histogram",
            value: Value::Bool,
            default: Some("true"),
            example: "false",
            doc: "whether calls are timed into `hardened_call_duration_seconds`; `false` keeps their counters only",
            accepted: Accepted::Both,
        },
    }
}

/// The most bounds one duration histogram may have, in the attribute and in the configuration alike.
pub const MAX_BUCKETS: usize = 64;

/// The largest bucket bound, in nanoseconds: about 31 years, far above any call, and far below the 584
/// years a `u64` of nanoseconds holds.
pub const MAX_BUCKET_NANOS: u64 = 1_000_000_000 * 1_000_000_000;

/// A bucket bound written in seconds, in nanoseconds (rounded to the nearest), if it is one: a finite
/// number of at least 1 ns and at most [`MAX_BUCKET_NANOS`]. Whether bounds increase is the caller's to
/// check, on the nanoseconds, so that two bounds that round to one are refused too.
#[must_use]
pub fn bucket_nanos(seconds: f64) -> Option<u64> {
    #[allow(clippy::cast_precision_loss, reason = "the largest bound is exact in an f64")]
    let max = MAX_BUCKET_NANOS as f64;
    let nanos = seconds * 1e9;
    // Rounded half up, by hand: `f64::round` needs `std`. In range, the cast truncates a positive number.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "checked to be in range just before")]
    (nanos.is_finite() && (0.5..=max).contains(&nanos)).then(|| ((nanos + 0.5) as u64).min(MAX_BUCKET_NANOS))
}

/// The default bounds of a call's duration histogram, in nanoseconds: from 5 µs (a reducer) to 5 minutes
/// (a long LLM call). Here, so that the attribute can check an objective's latency against them.
pub const DEFAULT_BUCKETS_NANOS: &[u64] = &[
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
    30_000_000_000,
    60_000_000_000,
    120_000_000_000,
    300_000_000_000,
];

/// Whether `percent` is a percentage an objective can promise: above 0 and below 100 (100 leaves no
/// error budget).
#[must_use]
pub fn is_objective_percent(percent: f64) -> bool {
    percent > 0.0 && percent < 100.0
}

/// The percentiles `hedge(after = ..)` accepts, in thousandths: from `"p50"` to `"p99.9"`.
pub const HEDGE_PERCENTILES: (u32, u32) = (500, 999);

/// A percentile written as `"p95"` or `"p99.9"`, in thousandths (950, 999), if `written` is one with at
/// most one decimal; the range is the caller's to check against [`HEDGE_PERCENTILES`].
#[must_use]
pub fn percentile(written: &str) -> Option<u32> {
    let number = written.strip_prefix('p')?;
    let (whole, tenths) = match number.split_once('.') {
        Some((whole, tenths)) if tenths.len() == 1 => (whole, tenths),
        Some(_) => return None,
        None => (number, "0"),
    };
    if whole.is_empty() || whole.len() > 2 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (whole, tenths): (u32, u32) = (whole.parse().ok()?, tenths.parse().ok()?);
    Some(whole * 10 + tenths)
}

/// The words a concurrency limit's `limit` takes instead of a number, each an algorithm that adapts the
/// limit to the dependency's latency: additive increase and multiplicative decrease, TCP Vegas's estimate
/// of the calls queued, and the gradient of unloaded to current latency.
pub const CONCURRENCY_ALGORITHMS: &[&str] = &["aimd", "vegas", "gradient"];

/// The most values `fields(..)` adds to a call's span, besides those every span has: the attribute
/// refuses more, and the runtime keeps room for this many.
pub const MAX_SPAN_FIELDS: usize = 32;

/// Every kind with keys, in the order they are documented: the guards, then service level objectives,
/// then the duration histograms.
pub const KINDS: &[Kind] =
    &[breaker::KIND, rate::KIND, concurrency::KIND, bulkhead::KIND, retry::KIND, hedge::KIND, slo::KIND, metrics::KIND];

#[cfg(test)]
extern crate std;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_at_its_variants_place_and_named_once_per_kind() {
        for kind in KINDS {
            for (index, spec) in kind.keys.iter().enumerate() {
                let later = &kind.keys[index + 1..];
                assert!(later.iter().all(|other| other.name != spec.name), "{}.{} twice", kind.name, spec.name);
            }
        }
        for key in breaker::Key::ALL {
            assert_eq!(breaker::Key::from_name(key.name()), Some(*key));
        }
        assert_eq!(rate::Key::Replicas.spec().name, "replicas");
        assert_eq!(retry::Key::When.spec().name, "when");
        assert_eq!(bulkhead::Key::Wait.spec().name, "wait");
        assert_eq!(hedge::Key::Idempotent.spec().name, "idempotent");
        assert_eq!(slo::Key::LatencyTarget.spec().name, "latency_target");
        assert_eq!(metrics::Key::Histogram.spec().name, "histogram");
    }

    #[test]
    fn bucket_bounds_are_read_in_whole_nanoseconds_from_one_to_thirty_years() {
        assert_eq!(bucket_nanos(0.5), Some(500_000_000));
        assert_eq!(bucket_nanos(0.000_000_001), Some(1));
        assert_eq!(bucket_nanos(300.0), Some(300_000_000_000));
        assert_eq!(bucket_nanos(1e9), Some(MAX_BUCKET_NANOS));
        for bad in [0.0, -1.0, 0.000_000_000_4, 1e9 + 1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(bucket_nanos(bad), None, "{bad}");
        }
    }

    #[test]
    fn percentiles_are_read_in_thousandths() {
        assert_eq!(percentile("p95"), Some(950));
        assert_eq!(percentile("p99.9"), Some(999));
        assert_eq!(percentile("p50"), Some(500));
        for bad in ["95", "p", "p9.99", "p-1", "p100.5x", "p.5", "p123"] {
            assert_eq!(percentile(bad), None, "{bad}");
        }
    }

    #[test]
    fn values_describe_themselves_as_messages_say_them() {
        use std::string::ToString as _;
        assert_eq!(breaker::Key::WindowKind.spec().value.to_string(), "\"count\" or \"time\"");
        assert_eq!(Value::OneOf(&["a", "b", "c"]).to_string(), "\"a\", \"b\" or \"c\"");
        assert_eq!(retry::Key::Attempts.spec().value.to_string(), "a whole number from 1 to 100");
        assert_eq!(
            concurrency::Key::Limit.spec().value.to_string(),
            "a whole number from 1 to 4294967295, or \"aimd\", \"vegas\" or \"gradient\""
        );
    }
}
