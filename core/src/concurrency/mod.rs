//! Concurrency limit: at most `limit` calls in flight, the calls over it queued in turn, each up to
//! `wait` (30 seconds unless set), and refused only then. The bulkhead's sibling that waits by default,
//! as tower's `ConcurrencyLimit` does: it smooths a burst into the rate the dependency serves, where a
//! bulkhead sheds it.
//!
//! Its permits are [`Slots`], as the bulkhead's are; its limit can be changed while calls run
//! ([`ConcurrencyLimit::retune`]), and calls then in flight keep their permits.

mod settings;

pub use self::settings::ConcurrencySettings;

use std::fmt;
use std::time::Duration;

use crate::kind::{Family, GuardKind, REJECTIONS, Report};
use crate::rejected::Rejected;
use crate::slots::{Permit, Slots};

/// Settings of one concurrency limit.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConcurrencyConfig {
    /// Calls in flight at once.
    pub limit: u32,
    /// How long a call may queue for its turn before it is refused.
    pub wait: Duration,
}

impl ConcurrencyConfig {
    /// At most `limit` calls in flight, each further call queueing up to 30 seconds.
    #[must_use]
    pub fn new(limit: u32) -> ConcurrencyConfig {
        ConcurrencyConfig { limit, wait: DEFAULT_WAIT }
    }

    /// The same limit, with calls queueing up to `wait`.
    #[must_use]
    pub fn with_wait(self, wait: Duration) -> ConcurrencyConfig {
        ConcurrencyConfig { wait, ..self }
    }
}

/// How long a call queues when no `wait` is set: long enough for a slow model call ahead of it to end.
const DEFAULT_WAIT: Duration = Duration::from_secs(30);

impl Default for ConcurrencyConfig {
    fn default() -> Self {
        ConcurrencyConfig::new(10)
    }
}

/// A concurrency limit; shared by name between every function that names it.
pub struct ConcurrencyLimit {
    slots: Slots,
}

impl fmt::Debug for ConcurrencyLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrencyLimit")
            .field("name", &self.name())
            .field("config", &self.config())
            .field("in_flight", &self.in_flight())
            .field("queued", &self.queued())
            .finish_non_exhaustive()
    }
}

/// A turn of a concurrency limit, given back when dropped: on completion, error, cancellation or panic
/// alike.
pub type ConcurrencyPermit<'a> = Permit<'a>;

impl ConcurrencyLimit {
    /// A concurrency limit; named limits used by `#[hardened]` are made by the registry.
    #[must_use]
    #[allow(clippy::needless_pass_by_value, reason = "constructors take their settings by value, like builders")]
    pub fn new(name: &'static str, config: ConcurrencyConfig) -> ConcurrencyLimit {
        let slots = Slots::new(name, config.limit, Some(config.wait), |name| Rejected::ConcurrencyLimited { name });
        ConcurrencyLimit { slots }
    }

    /// The limit's name.
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.slots.name()
    }

    /// The settings in force.
    #[must_use]
    pub fn config(&self) -> ConcurrencyConfig {
        ConcurrencyConfig { limit: self.slots.max(), wait: self.slots.wait().unwrap_or(DEFAULT_WAIT) }
    }

    /// Applies new settings to the running limit. Calls in flight keep their turns: lowering `limit`
    /// below them queues new calls until enough of them finish; raising it lets queued calls in at once.
    pub fn retune(&self, config: &ConcurrencyConfig) {
        self.slots.retune(config.limit, Some(config.wait));
    }

    /// Calls in flight now.
    #[must_use]
    pub fn in_flight(&self) -> u32 {
        self.slots.in_use()
    }

    /// Calls queued for their turn now.
    #[must_use]
    pub fn queued(&self) -> u32 {
        self.slots.waiting()
    }

    /// Calls refused so far: those whose wait ran out in the queue.
    #[must_use]
    pub fn refused(&self) -> u64 {
        self.slots.refused()
    }

    /// Takes a turn if one is free, without queueing.
    #[inline]
    pub fn try_acquire(&self) -> Result<ConcurrencyPermit<'_>, Rejected> {
        self.slots.try_acquire()
    }

    /// Takes a turn, queueing up to the configured `wait` for one.
    pub async fn acquire(&self) -> Result<ConcurrencyPermit<'_>, Rejected> {
        self.slots.acquire().await
    }
}

impl GuardKind for ConcurrencyLimit {
    type Config = ConcurrencyConfig;
    type Settings = ConcurrencySettings;

    const SCHEMA: &'static hardened_schema::Kind = &hardened_schema::concurrency::KIND;

    fn layer(settings: &ConcurrencySettings, config: &mut ConcurrencyConfig) {
        settings.apply_to(config);
    }

    fn build(name: &'static str, config: ConcurrencyConfig) -> ConcurrencyLimit {
        ConcurrencyLimit::new(name, config)
    }

    fn reconfigure(&self, config: &ConcurrencyConfig) {
        self.retune(config);
    }

    fn settings(&self) -> ConcurrencySettings {
        ConcurrencySettings::of(&self.config())
    }

    const HOLDS: bool = true;

    fn slots(&self) -> Option<&Slots> {
        Some(&self.slots)
    }

    const FAMILIES: &'static [&'static Family] = &[&LIMIT_FAMILY, &IN_FLIGHT_FAMILY, &QUEUED_FAMILY];

    fn report(&self, report: &mut Report) {
        let name = self.name();
        report.push(&LIMIT_FAMILY, [name], f64::from(self.slots.max()));
        report.push(&IN_FLIGHT_FAMILY, [name], f64::from(self.in_flight()));
        report.push(&QUEUED_FAMILY, [name], f64::from(self.queued()));
        report.push(&REJECTIONS, ["concurrency", name], self.refused() as f64);
    }
}

static LIMIT_FAMILY: Family = Family {
    name: "hardened_concurrency_limit",
    help: "Calls a concurrency limit lets in flight at once.",
    counter: false,
    labels: &["name"],
};

static IN_FLIGHT_FAMILY: Family = Family {
    name: "hardened_concurrency_in_flight",
    help: "Calls in flight under a concurrency limit.",
    counter: false,
    labels: &["name"],
};

static QUEUED_FAMILY: Family = Family {
    name: "hardened_concurrency_queued",
    help: "Calls queued for their turn under a concurrency limit.",
    counter: false,
    labels: &["name"],
};
