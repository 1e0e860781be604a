//! Reading one value, from the file (a TOML value) or the environment (text), into the type a key needs.
//!
//! Both sources go through the same readers, so a value means the same wherever it is written, and the
//! same words say what is wrong with it.

use std::time::Duration;

use hardened_schema::{Spec, Value};

/// A value as written.
#[derive(Debug, Clone, Copy)]
pub enum Raw<'a> {
    /// A value of the TOML file.
    Toml(&'a toml::Value),
    /// The text of an environment variable.
    Env(&'a str),
}

/// What is wrong with a value, and what would be right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Such as `is out of range`.
    pub problem: String,
    /// Such as `a whole number from 1 to 100`.
    pub allowed: String,
}

impl Problem {
    pub fn new(problem: impl Into<String>, allowed: impl Into<String>) -> Problem {
        Problem { problem: problem.into(), allowed: allowed.into() }
    }
}

pub const OUT_OF_RANGE: &str = "is out of range";

/// What `duration` accepts, for messages: as the schema says it.
#[must_use]
pub fn duration_allowed() -> String {
    Value::Duration.to_string()
}

fn rate_allowed() -> String {
    Value::Rate.to_string()
}

/// A whole number in the range the schema gives `spec`.
pub fn whole<T>(raw: Raw<'_>, spec: &Spec) -> Result<T, Problem>
where
    T: Copy + Into<u64> + TryFrom<u64>,
{
    let Value::Whole { min, max } = spec.value else {
        unreachable!("`{}` is not a whole number in the schema", spec.name)
    };
    let max = T::try_from(max).unwrap_or_else(|_| unreachable!("`{}`'s range fits its type", spec.name));
    whole_from(raw, min, max)
}

/// A number or a word (`Value::WholeOrOneOf`): a whole number in the range the schema gives `spec`, or
/// one of its words, as the word the schema writes.
pub fn whole_or_word(raw: Raw<'_>, spec: &Spec) -> Result<Result<u32, &'static str>, Problem> {
    let Value::WholeOrOneOf { min, max, words } = spec.value else {
        unreachable!("`{}` is not a number or a word in the schema", spec.name)
    };
    let allowed = || spec.value.to_string();
    let word = match raw {
        Raw::Toml(toml::Value::String(word)) => word.as_str(),
        Raw::Env(text) if !text.trim().bytes().all(|byte| byte.is_ascii_digit() || byte == b'-') => text,
        Raw::Toml(_) | Raw::Env(_) => {
            let max = u32::try_from(max).unwrap_or(u32::MAX);
            return whole_from(raw, min, max).map(Ok).map_err(|problem| Problem::new(problem.problem, allowed()));
        }
    };
    words
        .iter()
        .find(|known| **known == word.trim())
        .map(|known| Err(*known))
        .ok_or_else(|| Problem::new("is neither a whole number nor a word it takes", allowed()))
}

/// A whole number from `min` to `max`.
pub fn whole_from<T>(raw: Raw<'_>, min: u64, max: T) -> Result<T, Problem>
where
    T: Copy + Into<u64> + TryFrom<u64>,
{
    let max_wide: u64 = max.into();
    let allowed = format!("a whole number from {min} to {max_wide}");
    let number: i128 = match raw {
        Raw::Toml(toml::Value::Integer(number)) => i128::from(*number),
        Raw::Toml(_) => return Err(Problem::new("is not a whole number", allowed)),
        Raw::Env(text) => {
            let text = text.trim();
            match text.parse::<i128>() {
                Ok(number) => number,
                // Too many digits for even an i128: a whole number, but far out of range.
                Err(_) if !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()) => i128::MAX,
                Err(_) => return Err(Problem::new("is not a whole number", allowed)),
            }
        }
    };
    if number < i128::from(min) || number > i128::from(max_wide) {
        return Err(Problem::new(OUT_OF_RANGE, allowed));
    }
    u64::try_from(number)
        .ok()
        .and_then(|number| T::try_from(number).ok())
        .ok_or_else(|| Problem::new(OUT_OF_RANGE, allowed))
}

/// A duration longer than zero, in humantime's syntax (`"30s"`, `"100ms"`, `"1m 30s"`).
pub fn duration(raw: Raw<'_>) -> Result<Duration, Problem> {
    match any_duration(raw, &duration_allowed())? {
        duration if duration.is_zero() => Err(Problem::new(OUT_OF_RANGE, duration_allowed())),
        duration => Ok(duration),
    }
}

/// A duration, zero included (`"0s"`).
pub fn duration_or_zero(raw: Raw<'_>) -> Result<Duration, Problem> {
    any_duration(raw, "a duration, such as \"0s\", \"5s\" or \"1m 30s\"")
}

fn any_duration(raw: Raw<'_>, allowed: &str) -> Result<Duration, Problem> {
    let text = match raw {
        Raw::Toml(toml::Value::String(text)) => text.as_str(),
        Raw::Toml(_) => return Err(Problem::new("is not a duration", allowed)),
        Raw::Env(text) => text,
    };
    match humantime::parse_duration(text.trim()) {
        Ok(duration) => Ok(duration),
        Err(humantime::DurationError::NumberOverflow) => Err(Problem::new(OUT_OF_RANGE, allowed)),
        Err(_) => Err(Problem::new("is not a duration", allowed)),
    }
}

/// `true` or `false`.
pub fn boolean(raw: Raw<'_>) -> Result<bool, Problem> {
    let wrong = || Problem::new("is not true or false", Value::Bool.to_string());
    match raw {
        Raw::Toml(toml::Value::Boolean(value)) => Ok(*value),
        Raw::Env(text) if text.trim().eq_ignore_ascii_case("true") => Ok(true),
        Raw::Env(text) if text.trim().eq_ignore_ascii_case("false") => Ok(false),
        Raw::Toml(_) | Raw::Env(_) => Err(wrong()),
    }
}

/// A number from 0.0 to 1.0; whole numbers are accepted too.
pub fn fraction(raw: Raw<'_>) -> Result<f64, Problem> {
    let allowed = Value::Fraction.to_string();
    #[allow(clippy::cast_precision_loss, reason = "any integer other than 0 and 1 is out of range anyway")]
    let number = match raw {
        Raw::Toml(toml::Value::Float(number)) => *number,
        Raw::Toml(toml::Value::Integer(number)) => *number as f64,
        Raw::Toml(_) => return Err(Problem::new("is not a number", allowed.clone())),
        Raw::Env(text) => text.trim().parse::<f64>().map_err(|_| Problem::new("is not a number", allowed.clone()))?,
    };
    if number.is_nan() {
        return Err(Problem::new("is not a number", allowed.clone()));
    }
    if !(0.0..=1.0).contains(&number) {
        return Err(Problem::new(OUT_OF_RANGE, allowed));
    }
    Ok(number)
}

/// A percentage above 0 and below 100, such as `99.9`; whole numbers are accepted too.
pub fn percent(raw: Raw<'_>) -> Result<f64, Problem> {
    let allowed = Value::Percent.to_string();
    #[allow(clippy::cast_precision_loss, reason = "any integer of 100 or more is out of range anyway")]
    let number = match raw {
        Raw::Toml(toml::Value::Float(number)) => *number,
        Raw::Toml(toml::Value::Integer(number)) => *number as f64,
        Raw::Toml(_) => return Err(Problem::new("is not a number", allowed)),
        Raw::Env(text) => text.trim().parse::<f64>().map_err(|_| Problem::new("is not a number", allowed.clone()))?,
    };
    if number.is_nan() {
        return Err(Problem::new("is not a number", allowed));
    }
    if !hardened_schema::is_objective_percent(number) {
        return Err(Problem::new(OUT_OF_RANGE, allowed));
    }
    Ok(number)
}

/// The URL of a Redis server: `redis://`, `rediss://` (TLS) or `unix://` (a socket).
pub fn redis_url(raw: Raw<'_>) -> Result<String, Problem> {
    let wrong = || {
        Problem::new(
            "is not a Redis URL",
            "a URL such as \"redis://redis:6379/0\", with redis://, rediss:// or unix://",
        )
    };
    let url = text_of(raw).ok_or_else(wrong)?;
    let known = ["redis://", "rediss://", "unix://", "redis+unix://"].iter().any(|scheme| url.starts_with(scheme));
    if known && url.len() > url.find("://").map_or(0, |at| at + 3) { Ok(url.to_owned()) } else { Err(wrong()) }
}

/// The text of a string value, or of a variable (trimmed); `None` for a TOML value of another type.
#[must_use]
pub fn text_of(raw: Raw<'_>) -> Option<&str> {
    match raw {
        Raw::Toml(toml::Value::String(text)) => Some(text.as_str()),
        Raw::Toml(_) => None,
        Raw::Env(text) => Some(text.trim()),
    }
}

/// A rate, as `(calls, period)`, read the way the macro reads `rate = ..`: a whole number `n` is
/// `(n, 1s)`, a fractional number `r` is one call every `1/r` seconds, and `"N/unit"` is `N` calls per
/// `s`, `min` or `h` (or any duration: `"3/10s"`).
pub fn rate(raw: Raw<'_>) -> Result<(u32, Duration), Problem> {
    match raw {
        Raw::Toml(toml::Value::Integer(calls)) => calls_per(i128::from(*calls), Duration::from_secs(1)),
        Raw::Toml(toml::Value::Float(per_second)) => fractional(*per_second),
        Raw::Toml(toml::Value::String(text)) => per_unit(text),
        Raw::Toml(_) => Err(Problem::new("is not a rate", rate_allowed())),
        Raw::Env(text) => {
            let text = text.trim();
            if text.contains('/') {
                per_unit(text)
            } else if let Ok(calls) = text.parse::<i128>() {
                calls_per(calls, Duration::from_secs(1))
            } else if let Ok(per_second) = text.parse::<f64>() {
                fractional(per_second)
            } else {
                Err(Problem::new("is not a rate", rate_allowed()))
            }
        }
    }
}

fn calls_per(calls: i128, period: Duration) -> Result<(u32, Duration), Problem> {
    match u32::try_from(calls) {
        Ok(calls) if calls > 0 => Ok((calls, period)),
        _ => Err(Problem::new(OUT_OF_RANGE, rate_allowed())),
    }
}

fn fractional(per_second: f64) -> Result<(u32, Duration), Problem> {
    if per_second.is_nan() {
        return Err(Problem::new("is not a rate", rate_allowed()));
    }
    // One call per interval: 2.5 per second is one call every 400 ms.
    match Duration::try_from_secs_f64(1.0 / per_second) {
        Ok(period) if per_second > 0.0 && !period.is_zero() => Ok((1, period)),
        _ => Err(Problem::new(OUT_OF_RANGE, rate_allowed())),
    }
}

fn per_unit(text: &str) -> Result<(u32, Duration), Problem> {
    let not_a_rate = || Problem::new("is not a rate", rate_allowed());
    let (calls, unit) = text.split_once('/').ok_or_else(not_a_rate)?;
    let calls = calls.trim();
    if calls.is_empty() || !calls.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(not_a_rate());
    }
    let period = match unit.trim() {
        "s" | "sec" | "second" => Duration::from_secs(1),
        "m" | "min" | "minute" => Duration::from_mins(1),
        "h" | "hour" => Duration::from_hours(1),
        other => match humantime::parse_duration(other) {
            Ok(period) if period.is_zero() => return Err(Problem::new(OUT_OF_RANGE, rate_allowed())),
            Ok(period) => period,
            Err(_) => return Err(not_a_rate()),
        },
    };
    calls_per(calls.parse::<i128>().unwrap_or(i128::MAX), period)
}

/// A rate as [`rate`] reads it back exactly: `10`, `"100/min"`, `"5/h"` or `"1/400ms"`.
#[must_use]
pub fn rate_value((calls, period): (u32, Duration)) -> toml::Value {
    match period.as_nanos() {
        1_000_000_000 => toml::Value::Integer(i64::from(calls)),
        60_000_000_000 => toml::Value::String(format!("{calls}/min")),
        3_600_000_000_000 => toml::Value::String(format!("{calls}/h")),
        _ => toml::Value::String(format!("{calls}/{}", humantime::format_duration(period))),
    }
}

/// A duration as [`duration`] reads it back exactly.
#[must_use]
pub fn duration_value(duration: Duration) -> toml::Value {
    toml::Value::String(humantime::format_duration(duration).to_string())
}

const BYTE_SIZE_ALLOWED: &str =
    "a number of bytes above zero: 1048576, or a string such as \"1 MiB\", \"512 KiB\" or \"64 B\"";

/// A size in bytes above zero: a whole number of bytes, or a whole number with a binary unit (`B`,
/// `KiB`, `MiB`, `GiB`), as in `"1 MiB"`. Decimal units (`MB`) are refused rather than guessed.
pub fn byte_size(raw: Raw<'_>) -> Result<u64, Problem> {
    let not_a_size = || Problem::new("is not a size", BYTE_SIZE_ALLOWED);
    let (number, unit) = match raw {
        Raw::Toml(toml::Value::Integer(bytes)) => (i128::from(*bytes), 1),
        Raw::Toml(toml::Value::String(text)) => sized(text).ok_or_else(not_a_size)?,
        Raw::Toml(_) => return Err(not_a_size()),
        Raw::Env(text) => sized(text).ok_or_else(not_a_size)?,
    };
    match u64::try_from(number.saturating_mul(unit)) {
        Ok(bytes) if bytes > 0 => Ok(bytes),
        _ => Err(Problem::new(OUT_OF_RANGE, BYTE_SIZE_ALLOWED)),
    }
}

/// `"1 MiB"` as `(1, 1 << 20)`; digits alone are bytes.
fn sized(text: &str) -> Option<(i128, i128)> {
    let text = text.trim();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    // Too many digits for an i128 is a size, far out of range.
    let number = if number.is_empty() { return None } else { number.parse::<i128>().unwrap_or(i128::MAX) };
    let unit = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return None,
    };
    Some((number, unit))
}
