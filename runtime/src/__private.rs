//! The only surface generated code touches. Not part of the public API: it changes without notice.

pub use linkme;
pub use tracing;

pub use crate::audit::derive_support as audit;
pub use crate::guards::call::Call;

/// Calls a closure once; a body moved into a closure may then return borrows of what it captured,
/// which an immediately called closure expression (inferred `FnMut`) may not.
#[inline]
pub fn call_once<R>(body: impl FnOnce() -> R) -> R {
    body()
}
pub use crate::audit::call::{AuditCall, AuditSite, audit_record};
pub use crate::breaker::WindowKind;
pub use crate::concurrency::{Algorithm, Limit};
pub use crate::config::{
    BreakerSettings, BulkheadSettings, ConcurrencySettings, HedgeSettings, RateSettings, RetrySettings,
};
pub use crate::guards::guarded::{Fallback, FromRejection, Guarded, GuardedReturn, apply_fallback, attempt, run_sync};
pub use crate::guards::hedging::{Hedging, hedging, next_hedge};
pub use crate::guards::keyed_held::{enter_keyed, hashed_key, try_enter_keyed};
pub use crate::guards::retrying::{RetryPredicate, Retrying, next_attempt, retrying};
pub use crate::guards::tokens::{KeepCost, Settle, settle_tokens, settle_tokens_now, take_tokens, try_take_tokens};
pub use crate::guards::{Declared, SiteGuards};
pub use crate::hedge::After;
pub use crate::rate_limit::{Demand, Scope};

/// Implemented by [`ThisBuild`] when it has the `redis` feature, which `scope = "global"` needs.
#[diagnostic::on_unimplemented(
    message = "`scope = \"global\"` needs the `redis` feature of `hardened`",
    label = "a global rate limiter keeps its bucket in Redis",
    note = "enable the feature in Cargo.toml: `hardened = {{ version = \"...\", features = [\"redis\"] }}`"
)]
pub trait GlobalScope {}

/// This build of `hardened`, in the check generated for `scope = "global"`.
#[derive(Debug)]
pub struct ThisBuild;

#[cfg(feature = "redis")]
impl GlobalScope for ThisBuild {}

/// Compiles only when this build can keep rate limits in Redis.
pub const fn global_scope<B: GlobalScope>() {}
pub use crate::guards::instrument::{Instrumented, instrument};
pub use crate::guards::site::{SITES, SiteMeta};
pub use crate::guards::span_site::{FIELDS, SpanSite, TOOL_FIELDS, field_names, span_metadata};
pub use crate::outcome::{
    AsResultViaResult, AsResultViaValue, ErrorMessage, ErrorViaDebug, ErrorViaDisplay, ErrorViaName, FieldValue,
    FieldViaDebug, FieldViaDisplay, FieldViaValue, OutcomePredicate, Returned, record_failure,
};
pub use core::time::Duration;
pub use hardened_core::slo::{SLO_MEMBERS, SloMember, SloSettings};
