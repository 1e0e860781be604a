//! The one outcome rule: how a call's result is classified, for metrics, spans and (later) guards and audit.

use std::fmt::{Debug, Display};

use tracing::Span;
use tracing::field::{DebugValue, DisplayValue, Value};

/// How one call ended.
///
/// `Ok` is a success and `Err` a failure, unless `ok_if` or `error_if` decide otherwise. The same
/// outcome is the `outcome` label of `hardened_calls_total` and the status of the call's span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// The call returned and counts as a success.
    Ok,
    /// The call returned and counts as a failure.
    Error,
    /// The call's future was dropped before it completed.
    Cancelled,
    /// The call panicked; the panic propagated unchanged.
    Panic,
    /// A guard refused the call (open breaker, exhausted rate limit, no turn of a concurrency limit, full
    /// bulkhead).
    Rejected,
    /// The call took longer than its timeout.
    Timeout,
}

impl Outcome {
    /// Every outcome, in the order of their metric series.
    pub const ALL: [Outcome; 6] =
        [Outcome::Ok, Outcome::Error, Outcome::Cancelled, Outcome::Panic, Outcome::Rejected, Outcome::Timeout];

    /// Number of distinct outcomes.
    pub const COUNT: usize = Self::ALL.len();

    /// The value of the `outcome` metric label.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Cancelled => "cancelled",
            Outcome::Panic => "panic",
            Outcome::Rejected => "rejected",
            Outcome::Timeout => "timeout",
        }
    }

    /// Whether the outcome counts as a failure of the call (everything but `ok` and `cancelled`).
    #[must_use]
    pub const fn is_failure(self) -> bool {
        !matches!(self, Outcome::Ok | Outcome::Cancelled)
    }

    /// Position among [`Outcome::ALL`].
    #[must_use]
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Marks a span as failed without a message (a predicate said so, or the value is not an `Err`).
pub fn record_failure(span: &Span) {
    if !span.is_disabled() {
        span.record("otel.status_code", "ERROR");
    }
}

/// An error to describe on a span or in an audit event, picking `Display`, else `Debug`, else the
/// type's name. On a span, the URLs in the text have their secrets [masked](crate::redact::urls); the
/// audit event's text is masked where it is recorded.
///
/// Generated code calls `(&&&ErrorMessage(&error)).record_on(&span)` (or `.describe()`); method
/// resolution picks the first of the three traits the error type implements, with no cost when the span
/// is disabled.
#[derive(Debug)]
pub struct ErrorMessage<'a, E: ?Sized>(pub &'a E);

/// Describes an error by its `Display`.
pub trait ErrorViaDisplay {
    /// Records the failure on `span`.
    fn record_on(&self, span: &Span);

    /// The error's message.
    fn describe(&self) -> String;
}

impl<E: Display + ?Sized> ErrorViaDisplay for &&ErrorMessage<'_, E> {
    fn record_on(&self, span: &Span) {
        if !span.is_disabled() {
            span.record("otel.status_code", "ERROR");
            span.record("error.message", crate::redact::urls(&self.0.to_string()).as_ref());
        }
    }

    fn describe(&self) -> String {
        self.0.to_string()
    }
}

/// Describes an error by its `Debug`.
pub trait ErrorViaDebug {
    /// Records the failure on `span`.
    fn record_on(&self, span: &Span);

    /// The error's message.
    fn describe(&self) -> String;
}

impl<E: Debug + ?Sized> ErrorViaDebug for &ErrorMessage<'_, E> {
    fn record_on(&self, span: &Span) {
        if !span.is_disabled() {
            span.record("otel.status_code", "ERROR");
            span.record("error.message", crate::redact::urls(&format!("{:?}", self.0)).as_ref());
        }
    }

    fn describe(&self) -> String {
        format!("{:?}", self.0)
    }
}

/// Describes an error that has neither `Display` nor `Debug` by its type's name.
pub trait ErrorViaName {
    /// Records the failure on `span`.
    fn record_on(&self, span: &Span);

    /// The error's message.
    fn describe(&self) -> String;
}

impl<E: ?Sized> ErrorViaName for ErrorMessage<'_, E> {
    fn record_on(&self, span: &Span) {
        if !span.is_disabled() {
            span.record("otel.status_code", "ERROR");
            span.record("error.message", std::any::type_name::<E>());
        }
    }

    fn describe(&self) -> String {
        std::any::type_name::<E>().to_owned()
    }
}

/// A returned value, asked whether it is a `Result`: generated code calls
/// `(&&Returned(&value)).as_result()`, and method resolution picks [`AsResultViaResult`] for any type
/// that is a `Result` however it is spelled, and [`AsResultViaValue`] for everything else.
#[derive(Debug)]
pub struct Returned<'a, R: ?Sized>(pub &'a R);

/// The value is a `Result`.
pub trait AsResultViaResult<'a> {
    /// The success type.
    type Ok;
    /// The error type.
    type Err;
    /// The value as a `Result` of references.
    fn as_result(&self) -> Option<Result<&'a Self::Ok, &'a Self::Err>>;
}

impl<'a, T, E> AsResultViaResult<'a> for &Returned<'a, Result<T, E>> {
    type Ok = T;
    type Err = E;
    #[inline]
    fn as_result(&self) -> Option<Result<&'a T, &'a E>> {
        Some(self.0.as_ref())
    }
}

/// The value is not a `Result`.
pub trait AsResultViaValue<'a> {
    /// Always `None`.
    fn as_result(&self) -> Option<Result<&'a (), &'a std::convert::Infallible>>;
}

impl<'a, R: ?Sized> AsResultViaValue<'a> for Returned<'a, R> {
    #[inline]
    fn as_result(&self) -> Option<Result<&'a (), &'a std::convert::Infallible>> {
        None
    }
}

/// A value for `fields(..)`, recorded as a tracing `Value`, else by `Display`, else by `Debug`.
#[derive(Debug)]
pub struct FieldValue<'a, T: ?Sized>(pub &'a T);

/// Records a field that is a tracing [`Value`] as itself.
pub trait FieldViaValue<'a> {
    /// The recorded form.
    type Recorded: Value;
    /// The value to record.
    fn field_value(&self) -> Self::Recorded;
}

impl<'a, T: Value + ?Sized> FieldViaValue<'a> for &&FieldValue<'a, T> {
    type Recorded = &'a T;
    fn field_value(&self) -> &'a T {
        self.0
    }
}

/// Records a field by its `Display`.
pub trait FieldViaDisplay<'a> {
    /// The recorded form.
    type Recorded: Value;
    /// The value to record.
    fn field_value(&self) -> Self::Recorded;
}

impl<'a, T: Display + ?Sized> FieldViaDisplay<'a> for &FieldValue<'a, T> {
    type Recorded = DisplayValue<&'a T>;
    fn field_value(&self) -> DisplayValue<&'a T> {
        tracing::field::display(self.0)
    }
}

/// Records a field by its `Debug`.
pub trait FieldViaDebug<'a> {
    /// The recorded form.
    type Recorded: Value;
    /// The value to record.
    fn field_value(&self) -> Self::Recorded;
}

impl<'a, T: Debug + ?Sized> FieldViaDebug<'a> for FieldValue<'a, T> {
    type Recorded = DebugValue<&'a T>;
    fn field_value(&self) -> DebugValue<&'a T> {
        tracing::field::debug(self.0)
    }
}

/// A function that decides a call's outcome from its return value (`ok_if`, `error_if`).
#[diagnostic::on_unimplemented(
    message = "`ok_if` and `error_if` need a function `fn(&{R}) -> bool`",
    label = "this is not a `fn(&{R}) -> bool`",
    note = "the function receives a reference to the return value and says whether the predicate holds"
)]
pub trait OutcomePredicate<R: ?Sized> {
    /// Whether the predicate holds for `value`.
    fn holds(&self, value: &R) -> bool;
}

#[diagnostic::do_not_recommend]
impl<R: ?Sized, F: Fn(&R) -> bool> OutcomePredicate<R> for F {
    #[inline]
    fn holds(&self, value: &R) -> bool {
        self(value)
    }
}
