//! Concurrency limit: at most `limit` calls in flight, the calls over it queued in turn, each up to
//! `wait` (30 seconds unless set), and refused only then. The bulkhead's sibling that waits by default,
//! as tower's `ConcurrencyLimit` does: it smooths a burst into the rate the dependency serves, where a
//! bulkhead sheds it.
//!
//! Its permits are [`Slots`], as the bulkhead's are; its limit can be changed while calls run
//! ([`ConcurrencyLimit::retune`]), and calls then in flight keep their permits. An adaptive limit
//! ([`Limit::Adaptive`]) changes it itself, from the calls' round trips ([`adaptive`]).

pub mod adaptive;
mod settings;

pub use self::adaptive::{Algorithm, Estimator, Limit};
pub use self::settings::ConcurrencySettings;

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use self::adaptive::Adaptive;

use crate::kind::{Family, GuardKind, REJECTIONS, Report};
use crate::rejected::Rejected;
use crate::slots::{Permit, Slots};

/// Settings of one concurrency limit.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConcurrencyConfig {
    /// Calls in flight at once, or the algorithm that adapts it.
    pub limit: Limit,
    /// How long a call may queue for its turn before it is refused.
    pub wait: Duration,
    /// The lowest an adaptive limit goes.
    pub min: u32,
    /// The highest an adaptive limit goes.
    pub max: u32,
}

impl ConcurrencyConfig {
    /// At most `limit` calls in flight, each further call queueing up to 30 seconds.
    #[must_use]
    pub fn new(limit: u32) -> ConcurrencyConfig {
        ConcurrencyConfig { limit: Limit::Fixed(limit), wait: DEFAULT_WAIT, min: DEFAULT_MIN, max: DEFAULT_MAX }
    }

    /// A limit that `algorithm` adapts between `min` and `max` (`min` ≤ `max`), each call over it
    /// queueing up to 30 seconds.
    #[must_use]
    pub fn adaptive(algorithm: Algorithm, min: u32, max: u32) -> ConcurrencyConfig {
        ConcurrencyConfig { limit: Limit::Adaptive(algorithm), wait: DEFAULT_WAIT, min, max }
    }

    /// The limit calls start with: the fixed one, or an adaptive one's start.
    #[must_use]
    pub fn initial(&self) -> u32 {
        match self.limit {
            Limit::Fixed(limit) => limit,
            Limit::Adaptive(_) => adaptive::START.clamp(self.min, self.max.max(self.min)),
        }
    }

    /// The estimate of an adaptive limit starting at `start`; `None` for a fixed one.
    fn estimator(&self, start: u32) -> Option<Estimator> {
        match self.limit {
            Limit::Fixed(_) => None,
            Limit::Adaptive(algorithm) => Some(Estimator::new(algorithm, self.min, self.max, start)),
        }
    }

    /// The same limit, with calls queueing up to `wait`.
    #[must_use]
    pub fn with_wait(self, wait: Duration) -> ConcurrencyConfig {
        ConcurrencyConfig { wait, ..self }
    }
}

/// How long a call queues when no `wait` is set: long enough for a slow model call ahead of it to end.
const DEFAULT_WAIT: Duration = Duration::from_secs(30);

/// The lowest an adaptive limit goes unless `min` is set.
const DEFAULT_MIN: u32 = 1;

/// The highest an adaptive limit goes unless `max` is set.
const DEFAULT_MAX: u32 = 1000;

impl Default for ConcurrencyConfig {
    fn default() -> Self {
        ConcurrencyConfig::new(10)
    }
}

/// A concurrency limit; shared by name between every function that names it.
pub struct ConcurrencyLimit {
    slots: Slots,
    /// The settings last applied; the limit in force is the slots'.
    config: Mutex<ConcurrencyConfig>,
    /// The adaptive limit's estimate and its window of samples; the slots' observer once it adapts.
    adaptive: Arc<Adaptive>,
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
        let start = config.initial();
        let slots = Slots::new(name, start, Some(config.wait), |name| Rejected::ConcurrencyLimited { name });
        let estimator = config.estimator(start);
        let adaptive = Arc::new(Adaptive::new(estimator.clone()));
        if estimator.is_some() {
            slots.watch(adaptive.clone());
        }
        ConcurrencyLimit { slots, config: Mutex::new(config), adaptive }
    }

    /// The limit's name.
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.slots.name()
    }

    /// The settings in force.
    #[must_use]
    pub fn config(&self) -> ConcurrencyConfig {
        self.config.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Calls let in flight at once now: the fixed limit, or an adaptive one's current estimate.
    #[must_use]
    pub fn limit(&self) -> u32 {
        self.slots.max()
    }

    /// An adaptive limit's estimate now; `None` for a fixed limit.
    #[must_use]
    pub fn estimate(&self) -> Option<Estimator> {
        self.adaptive.estimator()
    }

    /// The average round trip of the last window of calls an adaptive limit took in, in seconds (0
    /// before the first window, and for a fixed limit).
    #[must_use]
    pub fn rtt_seconds(&self) -> f64 {
        self.adaptive.rtt_seconds()
    }

    /// Tells an adaptive limit of a call that held a turn for `rtt`, and was dropped (timed out) or not,
    /// as each call of a `#[hardened]` function does when it gives its turn back; a fixed limit ignores
    /// it. For calls made without the attribute, and for tests.
    pub fn observe(&self, rtt: Duration, dropped: bool) {
        self.slots.observe(crate::clock::duration_nanos(rtt), dropped);
    }

    /// Applies new settings to the running limit. Calls in flight keep their turns: lowering `limit`
    /// below them queues new calls until enough of them finish; raising it lets queued calls in at once.
    /// An adaptive limit starts its estimate again from the limit in force, brought within the new `min`
    /// and `max`.
    pub fn retune(&self, config: &ConcurrencyConfig) {
        let mut current = self.config.lock().unwrap_or_else(PoisonError::into_inner);
        let now = self.slots.max();
        let limit = match config.limit {
            Limit::Fixed(limit) => {
                self.adaptive.set(None);
                limit
            }
            Limit::Adaptive(_) => {
                let estimator = config.estimator(now);
                let limit = estimator.as_ref().map_or(now, Estimator::limit);
                self.adaptive.set(estimator);
                self.slots.watch(self.adaptive.clone());
                limit
            }
        };
        self.slots.retune(limit, Some(config.wait));
        *current = config.clone();
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

    const FAMILIES: &'static [&'static Family] = &[&LIMIT_FAMILY, &RTT_FAMILY, &IN_FLIGHT_FAMILY, &QUEUED_FAMILY];

    fn report(&self, report: &mut Report) {
        let name = self.name();
        report.push(&LIMIT_FAMILY, [name], f64::from(self.slots.max()));
        if matches!(self.config().limit, Limit::Adaptive(_)) {
            report.push(&RTT_FAMILY, [name], self.rtt_seconds());
        }
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

static RTT_FAMILY: Family = Family {
    name: "hardened_concurrency_rtt_seconds",
    help: "The average round trip of the last window of calls an adaptive concurrency limit took in.",
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
