//! The runtime watchdog: a task that measures how late the event loop runs it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::time::Instant;

use super::check::HealthCheck;
use super::status::CheckResult;
use crate::clock::duration_nanos;
use crate::support::BoxFuture;

/// Measures the lag of the tokio event loop: a task sleeps for `interval` again and again, and the time
/// it wakes past its deadline is the lag, the time a ready task waits for a worker. A blocking call on a
/// worker, a busy loop or a deadlock shows up as lag. As a [`HealthCheck`] (a liveness one) it is
/// unhealthy while the lag is above its threshold, counting the time since the task last ran, so a
/// runtime stuck right now is caught before the task gets to measure it.
///
/// The task runs until the last clone of the watchdog is dropped.
#[derive(Debug, Clone)]
pub struct Watchdog {
    state: Arc<State>,
}

#[derive(Debug)]
struct State {
    origin: Instant,
    interval: AtomicU64,
    threshold: AtomicU64,
    /// Nanoseconds from `origin` to the task's latest wake-up.
    last_tick: AtomicU64,
    /// The lag measured at the latest wake-up, in nanoseconds.
    last_lag: AtomicU64,
    /// The largest lag measured, in nanoseconds.
    max_lag: AtomicU64,
}

impl Watchdog {
    /// Starts the watchdog's task on the current runtime, measuring every `interval` and failing the
    /// check above `lag_threshold`.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    #[must_use]
    pub fn start(interval: Duration, lag_threshold: Duration) -> Watchdog {
        let state = Arc::new(State {
            origin: Instant::now(),
            interval: AtomicU64::new(duration_nanos(interval)),
            threshold: AtomicU64::new(duration_nanos(lag_threshold)),
            last_tick: AtomicU64::new(0),
            last_lag: AtomicU64::new(0),
            max_lag: AtomicU64::new(0),
        });
        tokio::spawn(measure(Arc::downgrade(&state)));
        Watchdog { state }
    }

    /// Changes the interval (from the next measurement) and the threshold.
    pub fn retune(&self, interval: Duration, lag_threshold: Duration) {
        self.state.interval.store(duration_nanos(interval), Ordering::Relaxed);
        self.state.threshold.store(duration_nanos(lag_threshold), Ordering::Relaxed);
    }

    /// The lag now: the latest measurement, or the time the task is overdue if that is more.
    #[must_use]
    pub fn lag(&self) -> Duration {
        let state = &self.state;
        let since_tick = duration_nanos(state.origin.elapsed()).saturating_sub(state.last_tick.load(Ordering::Acquire));
        let overdue = since_tick.saturating_sub(state.interval.load(Ordering::Relaxed));
        Duration::from_nanos(state.last_lag.load(Ordering::Acquire).max(overdue))
    }

    /// The largest lag measured since the watchdog started.
    #[must_use]
    pub fn max_lag(&self) -> Duration {
        Duration::from_nanos(self.state.max_lag.load(Ordering::Relaxed))
    }

    /// The lag above which the check fails.
    #[must_use]
    pub fn lag_threshold(&self) -> Duration {
        Duration::from_nanos(self.state.threshold.load(Ordering::Relaxed))
    }
}

async fn measure(state: Weak<State>) {
    loop {
        let Some(interval) = state.upgrade().map(|state| state.interval.load(Ordering::Relaxed)) else { return };
        let interval = Duration::from_nanos(interval);
        let asleep_at = Instant::now();
        tokio::time::sleep(interval).await;
        let Some(state) = state.upgrade() else { return };
        let awake_at = Instant::now();
        let lag = duration_nanos((awake_at - asleep_at).saturating_sub(interval));
        state.last_lag.store(lag, Ordering::Release);
        state.max_lag.fetch_max(lag, Ordering::Relaxed);
        state.last_tick.store(duration_nanos(awake_at - state.origin), Ordering::Release);
    }
}

impl HealthCheck for Watchdog {
    fn check(&self) -> BoxFuture<'_, CheckResult> {
        let (lag, threshold) = (self.lag(), self.lag_threshold());
        let result = if lag > threshold {
            CheckResult::unhealthy(format!(
                "the event loop lags {} behind, over the {} allowed: a task is blocking a worker",
                humantime::format_duration(round_to_millis(lag)),
                humantime::format_duration(threshold)
            ))
        } else {
            CheckResult::healthy()
        };
        let millis = |duration: Duration| duration.as_secs_f64() * 1000.0;
        let result = result
            .detail("lag_ms", millis(lag))
            .detail("max_lag_ms", millis(self.max_lag()))
            .detail("threshold_ms", millis(threshold));
        Box::pin(std::future::ready(result))
    }
}

fn round_to_millis(duration: Duration) -> Duration {
    Duration::from_millis(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
}
