//! The circuit breaker on a manual clock: every transition, slow calls, concurrency in half-open, and a
//! property test against a plain reference model.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hardened::Rejected;
use hardened::breaker::{BreakerConfig, BreakerState, CircuitBreaker, WindowKind};
use hardened::clock::{Clock, ManualClock};
use proptest::prelude::*;

fn breaker(config: BreakerConfig) -> (CircuitBreaker, ManualClock) {
    let (clock, manual) = Clock::manual();
    (CircuitBreaker::new("test", config, clock), manual)
}

fn config() -> BreakerConfig {
    let mut config = BreakerConfig::default();
    config.window = 10;
    config.min_calls = 10;
    config.failure_rate = 50;
    config.open_for = Duration::from_secs(30);
    config.half_open_calls = 3;
    config
}

fn call(breaker: &CircuitBreaker, failed: bool) -> Result<(), Rejected> {
    breaker.try_acquire().map(|permit| permit.record(failed))
}

fn open(breaker: &CircuitBreaker) {
    for failed in [true; 10] {
        call(breaker, failed).expect("admitted while closed");
    }
    assert_eq!(breaker.state(), BreakerState::Open);
}

#[test]
fn closed_opens_exactly_at_the_failure_threshold() {
    let (breaker, _) = breaker(config());
    for index in 0..9 {
        call(&breaker, index % 2 == 1).expect("closed admits");
        assert_eq!(breaker.state(), BreakerState::Closed, "below min_calls after {} calls", index + 1);
    }
    call(&breaker, false).expect("closed admits");
    assert_eq!(breaker.state(), BreakerState::Closed, "4 failures of 10 stay below 50%");
    // The oldest call (a success) leaves the window: 5 failures of 10 reach 50%.
    call(&breaker, true).expect("closed admits");
    assert_eq!(breaker.window_totals().failures, 5);
    assert_eq!(breaker.state(), BreakerState::Open);
    assert_eq!(call(&breaker, false), Err(Rejected::CircuitOpen { name: "test" }));
    assert_eq!(breaker.counts().not_permitted, 1);
}

#[test]
fn open_becomes_half_open_after_open_for() {
    let (breaker, clock) = breaker(config());
    open(&breaker);
    clock.advance(Duration::from_secs(29));
    assert!(call(&breaker, false).is_err(), "still open before open_for");
    clock.advance(Duration::from_secs(1));
    let probe = breaker.try_acquire().expect("a probe is admitted after open_for");
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    probe.record(false);
}

#[test]
fn half_open_closes_after_enough_successful_probes() {
    let (breaker, clock) = breaker(config());
    open(&breaker);
    clock.advance(Duration::from_secs(30));
    for probe in 0..3 {
        assert_ne!(breaker.state(), BreakerState::Closed, "probe {probe}");
        call(&breaker, false).expect("probe admitted");
    }
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert_eq!(breaker.window_totals().calls, 0, "the window starts empty after closing");
    let transitions: Vec<_> = breaker.transitions().into_iter().map(|(from, to, _)| (from, to)).collect();
    assert_eq!(
        transitions,
        [
            (BreakerState::Closed, BreakerState::Open),
            (BreakerState::Open, BreakerState::HalfOpen),
            (BreakerState::HalfOpen, BreakerState::Closed)
        ]
    );
}

#[test]
fn a_failed_probe_reopens_for_another_open_for() {
    let (breaker, clock) = breaker(config());
    open(&breaker);
    clock.advance(Duration::from_secs(30));
    call(&breaker, false).expect("first probe");
    call(&breaker, true).expect("second probe");
    assert_eq!(breaker.state(), BreakerState::Open);
    clock.advance(Duration::from_secs(29));
    assert!(call(&breaker, false).is_err());
    clock.advance(Duration::from_secs(1));
    assert!(call(&breaker, false).is_ok());
}

#[test]
fn half_open_admits_only_its_probes_and_returns_unused_slots() {
    let (breaker, clock) = breaker(config());
    open(&breaker);
    clock.advance(Duration::from_secs(30));
    let probes: Vec<_> = (0..3).map(|_| breaker.try_acquire().expect("probe")).collect();
    assert!(breaker.try_acquire().is_err(), "a fourth call while three probes are out");
    let mut probes = probes.into_iter();
    // An inner guard refused this probe: its slot goes back, uncounted.
    probes.next().expect("probe").release();
    let replacement = breaker.try_acquire().expect("the returned slot is reusable");
    for probe in probes.chain([replacement]) {
        probe.record(false);
    }
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[test]
fn consecutive_mode_counts_failures_in_a_row_only() {
    let mut config = config();
    config.consecutive_failures = Some(3);
    let (breaker, _) = breaker(config);
    for failed in [true, true, false, true, true] {
        call(&breaker, failed).expect("closed");
    }
    assert_eq!(breaker.state(), BreakerState::Closed, "a success resets the run");
    call(&breaker, true).expect("closed");
    assert_eq!(breaker.state(), BreakerState::Open);
}

#[test]
fn a_late_failure_extends_the_open_period_when_configured() {
    for extend in [false, true] {
        let mut config = config();
        config.extend_open_on_failure = extend;
        let (breaker, clock) = breaker(config);
        let late = breaker.try_acquire().expect("admitted while closed");
        open(&breaker);
        clock.advance(Duration::from_secs(20));
        late.record(true);
        clock.advance(Duration::from_secs(10));
        assert_eq!(call(&breaker, false).is_err(), extend, "extend_open_on_failure = {extend}");
        if extend {
            clock.advance(Duration::from_secs(20));
            assert!(call(&breaker, false).is_ok());
        }
    }
}

#[test]
fn slow_calls_are_counted_and_open_the_breaker_at_their_rate() {
    let mut config = config();
    config.slow_call = Duration::from_secs(2);
    config.slow_rate = 50;
    config.failure_rate = 100;
    let (breaker, clock) = breaker(config);
    for index in 0..10 {
        let permit = breaker.try_acquire().expect("closed");
        clock.advance(if index < 5 { Duration::from_secs(2) } else { Duration::from_millis(10) });
        permit.record(false);
    }
    assert_eq!(breaker.counts().slow, 5);
    assert_eq!(breaker.counts().success, 5);
    assert_eq!(breaker.window_totals().slow, 5);
    assert_eq!(breaker.state(), BreakerState::Open, "5 slow calls of 10 reach 50%");
}

#[test]
fn the_time_window_forgets_calls_older_than_its_seconds() {
    let mut config = config();
    config.window_kind = WindowKind::Time;
    config.window = 5;
    config.min_calls = 4;
    let (breaker, clock) = breaker(config);
    for _ in 0..3 {
        call(&breaker, true).expect("closed");
    }
    clock.advance(Duration::from_secs(6));
    call(&breaker, true).expect("closed");
    assert_eq!(breaker.window_totals().calls, 1, "the first three calls left the window");
    assert_eq!(breaker.state(), BreakerState::Closed);
    for _ in 0..3 {
        call(&breaker, true).expect("closed");
    }
    assert_eq!(breaker.state(), BreakerState::Open);
}

#[test]
fn the_runtime_api_forces_disables_and_resets() {
    let (breaker, _) = breaker(config());
    breaker.force_open();
    assert_eq!(breaker.state(), BreakerState::ForcedOpen);
    assert!(call(&breaker, false).is_err());
    breaker.disable();
    for _ in 0..20 {
        call(&breaker, true).expect("a disabled breaker admits everything");
    }
    assert_eq!(breaker.state(), BreakerState::Disabled);
    breaker.reset();
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert_eq!(breaker.counts().failure, 0);
}

#[test]
fn a_panicking_call_counts_as_a_failure_and_a_cancelled_one_not_at_all() {
    let mut config = config();
    config.consecutive_failures = Some(1);
    let (breaker, _) = breaker(config);
    drop(breaker.try_acquire().expect("closed"));
    assert_eq!(breaker.state(), BreakerState::Closed, "a dropped permit is a cancellation");
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _permit = breaker.try_acquire().expect("closed");
        panic!("the call panics");
    }));
    assert!(result.is_err());
    assert_eq!(breaker.state(), BreakerState::Open);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_tasks_in_half_open_get_exactly_the_probes() {
    let (breaker, clock) = breaker(config());
    open(&breaker);
    clock.advance(Duration::from_secs(30));
    let breaker = Arc::new(breaker);
    let admitted = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(tokio::sync::Barrier::new(64));
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (breaker, admitted, barrier) = (breaker.clone(), admitted.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                if let Ok(permit) = breaker.try_acquire() {
                    admitted.fetch_add(1, Ordering::SeqCst);
                    // Hold the permit so that no probe finishes before every task has asked.
                    tokio::task::yield_now().await;
                    std::mem::forget(permit);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task finished");
    }
    assert_eq!(admitted.load(Ordering::SeqCst), 3);
    assert_eq!(breaker.counts().not_permitted, 61);
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).expect("test durations fit in u64")
}

/// A plain, sequential statement of the breaker's rules.
#[derive(Debug)]
struct Model {
    config: BreakerConfig,
    state: BreakerState,
    window: std::collections::VecDeque<(bool, bool)>,
    consecutive: u32,
    opened_at: u64,
    probes_admitted: u32,
    probes_succeeded: u32,
}

impl Model {
    fn new(config: BreakerConfig) -> Model {
        Model {
            config,
            state: BreakerState::Closed,
            window: std::collections::VecDeque::new(),
            consecutive: 0,
            opened_at: 0,
            probes_admitted: 0,
            probes_succeeded: 0,
        }
    }

    fn admit(&mut self, now: u64) -> Option<BreakerState> {
        if self.state == BreakerState::Open && now >= self.opened_at + nanos(self.config.open_for) {
            self.state = BreakerState::HalfOpen;
            self.probes_admitted = 0;
            self.probes_succeeded = 0;
        }
        match self.state {
            BreakerState::Closed => Some(BreakerState::Closed),
            BreakerState::HalfOpen if self.probes_admitted < self.config.half_open_calls => {
                self.probes_admitted += 1;
                Some(BreakerState::HalfOpen)
            }
            _ => None,
        }
    }

    fn record(&mut self, admitted_in: BreakerState, failed: bool, duration: u64, now: u64) {
        let slow = duration >= nanos(self.config.slow_call);
        match (admitted_in, self.state) {
            (BreakerState::Closed, BreakerState::Closed) => {
                if let Some(threshold) = self.config.consecutive_failures {
                    self.consecutive = if failed { self.consecutive + 1 } else { 0 };
                    if self.consecutive >= threshold {
                        self.trip(now);
                    }
                    return;
                }
                self.window.push_back((failed, slow));
                if self.window.len() > self.config.window as usize {
                    self.window.pop_front();
                }
                let calls = self.window.len() as u64;
                let failures = self.window.iter().filter(|(failed, _)| *failed).count() as u64;
                let slows = self.window.iter().filter(|(_, slow)| *slow).count() as u64;
                if calls >= u64::from(self.config.min_calls)
                    && (failures * 100 >= u64::from(self.config.failure_rate) * calls
                        || slows * 100 >= u64::from(self.config.slow_rate) * calls)
                {
                    self.trip(now);
                }
            }
            (BreakerState::HalfOpen, BreakerState::HalfOpen) => {
                if failed || slow {
                    self.trip(now);
                } else {
                    self.probes_succeeded += 1;
                    if self.probes_succeeded >= self.config.half_open_calls {
                        self.state = BreakerState::Closed;
                        self.window.clear();
                        self.consecutive = 0;
                    }
                }
            }
            _ => {}
        }
    }

    fn trip(&mut self, now: u64) {
        self.state = BreakerState::Open;
        self.opened_at = now;
    }
}

#[derive(Debug, Clone)]
enum Step {
    Call { failed: bool, millis: u64 },
    Wait { millis: u64 },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (any::<bool>(), 0..3_000u64).prop_map(|(failed, millis)| Step::Call { failed, millis }),
        1 => (0..40_000u64).prop_map(|millis| Step::Wait { millis }),
    ]
}

fn model_config() -> impl Strategy<Value = BreakerConfig> {
    (1..=100u8, 1..=100u8, 1..20u32, 1..20u32, 1..5u32, prop::option::of(1..6u32)).prop_map(
        |(failure_rate, slow_rate, window, min_calls, half_open_calls, consecutive_failures)| {
            let mut config = BreakerConfig::default();
            config.failure_rate = failure_rate;
            config.slow_rate = slow_rate;
            config.slow_call = Duration::from_secs(2);
            config.window = window;
            config.min_calls = min_calls;
            config.half_open_calls = half_open_calls;
            config.open_for = Duration::from_secs(10);
            config.consecutive_failures = consecutive_failures;
            config
        },
    )
}

proptest! {
    #[test]
    fn the_breaker_agrees_with_the_reference_model(config in model_config(), steps in prop::collection::vec(step(), 1..200)) {
        let (breaker, clock) = breaker(config.clone());
        let mut model = Model::new(config);
        for step in steps {
            match step {
                Step::Wait { millis } => clock.advance(Duration::from_millis(millis)),
                Step::Call { failed, millis } => {
                    let now = nanos(clock.elapsed());
                    let expected = model.admit(now);
                    let permit = breaker.try_acquire();
                    prop_assert_eq!(permit.is_ok(), expected.is_some(), "admission at {:?}", model);
                    if let (Ok(permit), Some(admitted_in)) = (permit, expected) {
                        clock.advance(Duration::from_millis(millis));
                        permit.record(failed);
                        let now = nanos(clock.elapsed());
                        model.record(admitted_in, failed, millis * 1_000_000, now);
                    }
                }
            }
            prop_assert_eq!(breaker.state(), model.state);
        }
    }
}
