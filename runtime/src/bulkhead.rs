//! Bulkhead: a limit on concurrent calls, so one slow dependency cannot take every task and connection.
//!
//! A counting semaphore on one atomic: acquiring is a compare-and-swap, releasing a subtraction. Callers
//! that may wait queue on a `tokio::sync::Notify` that is touched only when someone is waiting.

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use crate::rejected::Rejected;

/// Settings of one bulkhead.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BulkheadConfig {
    /// Calls allowed at once.
    pub max: u32,
    /// How long a call may wait for a permit; `None` refuses at once.
    pub wait: Option<Duration>,
}

impl BulkheadConfig {
    /// At most `max` calls at once, refusing the next at once.
    #[must_use]
    pub fn new(max: u32) -> BulkheadConfig {
        BulkheadConfig { max, wait: None }
    }
}

impl Default for BulkheadConfig {
    fn default() -> Self {
        BulkheadConfig::new(10)
    }
}

/// A bulkhead; shared by name between every function that names it.
pub struct Bulkhead {
    name: &'static str,
    max: AtomicU32,
    /// Nanoseconds; 0 refuses at once.
    wait: AtomicU64,
    in_use: AtomicU32,
    waiting: AtomicU32,
    released: Notify,
    refused: AtomicU64,
}

impl fmt::Debug for Bulkhead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bulkhead")
            .field("name", &self.name)
            .field("config", &self.config())
            .field("in_use", &self.in_use.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Bulkhead {
    /// A bulkhead; named bulkheads used by `#[hardened]` are made by the registry.
    #[must_use]
    #[allow(clippy::needless_pass_by_value, reason = "constructors take their settings by value, like builders")]
    pub fn new(name: &'static str, config: BulkheadConfig) -> Bulkhead {
        Bulkhead {
            name,
            max: AtomicU32::new(config.max),
            wait: AtomicU64::new(config.wait.map_or(0, crate::clock::duration_nanos)),
            in_use: AtomicU32::new(0),
            waiting: AtomicU32::new(0),
            released: Notify::new(),
            refused: AtomicU64::new(0),
        }
    }

    /// The bulkhead's name.
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The settings in force.
    #[must_use]
    pub fn config(&self) -> BulkheadConfig {
        let wait = self.wait.load(Ordering::Relaxed);
        BulkheadConfig { max: self.max.load(Ordering::Relaxed), wait: (wait > 0).then(|| Duration::from_nanos(wait)) }
    }

    /// Applies new settings to the running bulkhead. Permits already out stay out: lowering `max` below
    /// the calls in flight refuses new calls until enough of them finish.
    pub fn retune(&self, config: &BulkheadConfig) {
        self.max.store(config.max, Ordering::Relaxed);
        self.wait.store(config.wait.map_or(0, crate::clock::duration_nanos), Ordering::Relaxed);
        self.released.notify_waiters();
    }

    /// Permits free now.
    #[must_use]
    pub fn available(&self) -> u32 {
        self.max.load(Ordering::Relaxed).saturating_sub(self.in_use.load(Ordering::Acquire))
    }

    /// Calls refused so far.
    #[must_use]
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Takes a permit if one is free.
    #[inline]
    pub fn try_acquire(&self) -> Result<BulkheadPermit<'_>, Rejected> {
        self.take().ok_or_else(|| self.refusal())
    }

    /// Takes a permit if one is free, without waiting.
    #[inline]
    pub(crate) fn take(&self) -> Option<BulkheadPermit<'_>> {
        let max = self.max.load(Ordering::Relaxed);
        let mut in_use = self.in_use.load(Ordering::Acquire);
        loop {
            if in_use >= max {
                return None;
            }
            match self.in_use.compare_exchange_weak(in_use, in_use + 1, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some(BulkheadPermit { bulkhead: self }),
                Err(actual) => in_use = actual,
            }
        }
    }

    /// Whether a call may wait for a permit.
    #[inline]
    pub(crate) fn waits(&self) -> bool {
        self.wait.load(Ordering::Relaxed) > 0
    }

    /// Takes a permit, waiting up to the configured `wait` for one.
    pub async fn acquire(&self) -> Result<BulkheadPermit<'_>, Rejected> {
        if let Some(permit) = self.take() {
            return Ok(permit);
        }
        let wait = self.wait.load(Ordering::Relaxed);
        if wait == 0 {
            return Err(self.refusal());
        }
        let wait = Duration::from_nanos(wait);
        self.waiting.fetch_add(1, Ordering::AcqRel);
        let waited = tokio::time::timeout(wait, async {
            loop {
                let released = self.released.notified();
                tokio::pin!(released);
                // Registered before the retry, so a release between the two still wakes this waiter.
                released.as_mut().enable();
                if let Some(permit) = self.take() {
                    return permit;
                }
                released.await;
            }
        })
        .await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        waited.map_err(|_| self.refusal())
    }

    /// Counts a refusal, and says so.
    pub(crate) fn refusal(&self) -> Rejected {
        self.refused.fetch_add(1, Ordering::Relaxed);
        Rejected::BulkheadFull { name: self.name }
    }

    #[inline]
    fn release(&self) {
        self.in_use.fetch_sub(1, Ordering::AcqRel);
        if self.waiting.load(Ordering::Acquire) > 0 {
            self.released.notify_one();
        }
    }
}

/// A bulkhead permit, given back when dropped: on completion, error, cancellation or panic alike.
#[derive(Debug)]
#[must_use = "the permit is released as soon as it is dropped"]
pub struct BulkheadPermit<'a> {
    bulkhead: &'a Bulkhead,
}

impl Drop for BulkheadPermit<'_> {
    #[inline]
    fn drop(&mut self) {
        self.bulkhead.release();
    }
}
