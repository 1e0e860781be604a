//! What a `#[hardened]` call costs, next to a bare call and next to the same observability wired by hand.
//!
//! Four functions with the same body (cheap, fallible, opaque to the optimiser), sync and async:
//!
//! - `bare`: the body alone;
//! - `hardened`: `#[hardened(fields(n))]`, metrics on;
//! - `instrument`: plain `#[tracing::instrument]`, no metrics;
//! - `hand_wired`: what gives the same result by hand today: `#[tracing::instrument]`, and per call
//!   `with_label_values(..)` on a counter (with an `outcome` label), a histogram and an in-flight gauge
//!   registered in a prometheus `Registry`, timed with `std::time::Instant`.
//!
//! With no subscriber, `#[hardened]` is also taken apart: `hardened_metrics_only` (`span = false`) and
//! `hardened_span_only` (`metrics = false`).
//!
//! With the resilience guards, with no subscriber and with the span disabled:
//!
//! - `hardened_guards`: `#[hardened(fields(n), breaker = "overhead", rate = 1_000_000_000,
//!   burst = 1_000_000_000, bulkhead = 1000)]`, a limit no loop reaches, so every call is admitted;
//! - `hand_wired_guards`: `hand_wired` plus what a service writes by hand for the same guards today: a
//!   failsafe circuit breaker (`Config::new().build()`, `is_call_permitted` then `on_success`/`on_error`),
//!   a governor `RateLimiter::direct` with the same quota (`check()`) and a tokio `Semaphore` of 1000
//!   permits (`try_acquire`, in the async function too: `bulkhead = 1000` refuses at once when full).
//!
//! Each runs under four subscriber setups, each installed for its own benchmark group only:
//! `no_subscriber` (no dispatcher at all, measured first so nothing set before leaks in),
//! `span_disabled` (a registry whose filter rejects the spans' target), `noop_layer` (a registry with a
//! layer that implements nothing, so every span is enabled) and `recording` (a registry with a layer that
//! visits every new span's fields). Async functions are polled to completion with a no-op waker, so the
//! executor costs a few instructions.
//!
//! With no subscriber and with the span disabled, `bare`, `hardened`, `hand_wired` and the two guarded
//! functions also run on two threads at once, each calling the same function (so sharing its guards and
//! metrics) in a loop; the time reported is per call and per thread, and the voluntary context switches
//! of the two threads (a thread parked on a lock) are printed after each of these benchmarks.
//!
//! Benchmark ids read `{sync,async,sync_two_threads,async_two_threads}/{setup}/{function}`:
//!
//! ```text
//! cargo bench -p hardened --bench overhead
//! cargo bench -p hardened --bench overhead -- sync/no_subscriber
//! ```
//!
//! The same binary counts instructions for `scripts/callgrind-overhead.sh`: given
//! `--instructions ID ITERATIONS`, it installs the setup of `ID`, warms the case up, then calls it
//! `ITERATIONS` times inside `measured_loop`, the only function callgrind is told to collect. Given
//! `--two-threads ID ITERATIONS`, it runs the case on two threads ten times over and prints the time per
//! call and per thread of each round, and the voluntary context switches, to show how it spreads.
//!
//! Group `host` times what a guarded call cannot do without, on the machine of the run: a time-stamp
//! counter read (`host/clock_read`, `x86_64` only), an uncontended locked add (`host/locked_add`) and a
//! load with a compare-and-swap (`host/compare_and_swap`). A guarded call makes two of the first and
//! three of the others, so its one-thread time moves with them from one host to another.

use std::fmt;
use std::future::{Future, ready};
use std::hint::black_box;
use std::num::NonZeroU32;
use std::pin::{Pin, pin};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, LazyLock, mpsc};
use std::task::{Context, Poll, Waker};
use std::thread::Scope;
use std::time::{Duration, Instant};

use criterion::Criterion;
use failsafe::backoff::EqualJittered;
use failsafe::failure_policy::{ConsecutiveFailures, OrElse, SuccessRateOverTimeWindow};
use governor::{DefaultDirectRateLimiter, Quota};
use hardened::{Rejected, hardened};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Dispatch, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::{Context as LayerContext, SubscriberExt};

// ---------------------------------------------------------------------------------------------------
// The functions under test.

/// The error every function under test can return.
#[derive(Debug)]
struct WorkError;

impl fmt::Display for WorkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("input out of range")
    }
}

impl std::error::Error for WorkError {}

/// A refusal by a guard; it never happens in these benchmarks, whose limits no loop reaches.
impl From<Rejected> for WorkError {
    fn from(_: Rejected) -> WorkError {
        WorkError
    }
}

/// The body shared by every function under test: a few instructions the optimiser cannot see through.
#[inline]
fn work(n: u64) -> Result<u64, WorkError> {
    let n = black_box(n);
    if n == u64::MAX { Err(WorkError) } else { Ok(n.wrapping_mul(31).wrapping_add(7)) }
}

#[inline(never)]
fn bare_sync(n: u64) -> Result<u64, WorkError> {
    work(n)
}

#[inline(never)]
#[hardened(fields(n))]
fn hardened_sync(n: u64) -> Result<u64, WorkError> {
    work(n)
}

/// `hardened_sync` without its span: what the metrics cost.
#[inline(never)]
#[hardened(span = false)]
fn metrics_only_sync(n: u64) -> Result<u64, WorkError> {
    work(n)
}

/// `hardened_sync` without its metrics: what its span costs.
#[inline(never)]
#[hardened(metrics = false, fields(n))]
fn span_only_sync(n: u64) -> Result<u64, WorkError> {
    work(n)
}

#[inline(never)]
#[tracing::instrument]
fn instrument_sync(n: u64) -> Result<u64, WorkError> {
    work(n)
}

#[inline(never)]
#[tracing::instrument]
fn hand_wired_sync(n: u64) -> Result<u64, WorkError> {
    const LABELS: [&str; 3] = ["hand_wired_sync", module_path!(), "function"];
    let metrics = &*HAND_WIRED;
    metrics.in_flight.with_label_values(&LABELS).inc();
    let started = Instant::now();
    let result = work(n);
    let outcome = if result.is_ok() { "ok" } else { "error" };
    metrics.calls.with_label_values(&[LABELS[0], LABELS[1], LABELS[2], outcome]).inc();
    metrics.duration.with_label_values(&LABELS).observe(started.elapsed().as_secs_f64());
    metrics.in_flight.with_label_values(&LABELS).dec();
    result
}

#[inline(never)]
async fn bare_async(n: u64) -> Result<u64, WorkError> {
    work(ready(n).await)
}

#[inline(never)]
#[hardened(fields(n))]
async fn hardened_async(n: u64) -> Result<u64, WorkError> {
    work(ready(n).await)
}

/// `hardened_async` without its span: what the metrics cost.
#[inline(never)]
#[hardened(span = false)]
async fn metrics_only_async(n: u64) -> Result<u64, WorkError> {
    work(ready(n).await)
}

/// `hardened_async` without its metrics: what its span costs.
#[inline(never)]
#[hardened(metrics = false, fields(n))]
async fn span_only_async(n: u64) -> Result<u64, WorkError> {
    work(ready(n).await)
}

#[inline(never)]
#[tracing::instrument]
async fn instrument_async(n: u64) -> Result<u64, WorkError> {
    work(ready(n).await)
}

#[inline(never)]
#[tracing::instrument]
async fn hand_wired_async(n: u64) -> Result<u64, WorkError> {
    const LABELS: [&str; 3] = ["hand_wired_async", module_path!(), "function"];
    let metrics = &*HAND_WIRED;
    metrics.in_flight.with_label_values(&LABELS).inc();
    let started = Instant::now();
    let result = work(ready(n).await);
    let outcome = if result.is_ok() { "ok" } else { "error" };
    metrics.calls.with_label_values(&[LABELS[0], LABELS[1], LABELS[2], outcome]).inc();
    metrics.duration.with_label_values(&LABELS).observe(started.elapsed().as_secs_f64());
    metrics.in_flight.with_label_values(&LABELS).dec();
    result
}

/// `hardened_sync` with a breaker, a rate limiter and a bulkhead, none of which ever refuses here.
#[inline(never)]
#[hardened(fields(n), breaker = "overhead", rate = 1_000_000_000, burst = 1_000_000_000, bulkhead = 1000)]
fn hardened_guards_sync(n: u64) -> Result<u64, WorkError> {
    work(n)
}

/// `hand_wired_sync` with the same guards, as a service wires them by hand: a failsafe breaker, a
/// governor rate limiter and a tokio semaphore, in hardened's order (breaker, rate limiter, bulkhead).
/// A refusal by the limiter or the semaphore is not reported to the breaker, as in hardened.
#[inline(never)]
#[tracing::instrument]
fn hand_wired_guards_sync(n: u64) -> Result<u64, WorkError> {
    const LABELS: [&str; 3] = ["hand_wired_guards_sync", module_path!(), "function"];
    let (metrics, guards) = (&*HAND_WIRED, &*HAND_GUARDS);
    metrics.in_flight.with_label_values(&LABELS).inc();
    let started = Instant::now();
    let (result, outcome) = if !guards.breaker.is_call_permitted() || guards.rate.check().is_err() {
        (Err(WorkError), "rejected")
    } else if let Ok(_permit) = guards.bulkhead.try_acquire() {
        let result = work(n);
        if result.is_ok() {
            guards.breaker.on_success();
            (result, "ok")
        } else {
            guards.breaker.on_error();
            (result, "error")
        }
    } else {
        (Err(WorkError), "rejected")
    };
    metrics.calls.with_label_values(&[LABELS[0], LABELS[1], LABELS[2], outcome]).inc();
    metrics.duration.with_label_values(&LABELS).observe(started.elapsed().as_secs_f64());
    metrics.in_flight.with_label_values(&LABELS).dec();
    result
}

/// `hardened_async` with a breaker, a rate limiter and a bulkhead, none of which ever refuses here.
#[inline(never)]
#[hardened(fields(n), breaker = "overhead", rate = 1_000_000_000, burst = 1_000_000_000, bulkhead = 1000)]
async fn hardened_guards_async(n: u64) -> Result<u64, WorkError> {
    work(ready(n).await)
}

/// `hand_wired_async` with the guards of `hand_wired_guards_sync`; the semaphore permit is taken with
/// `try_acquire` (a full bulkhead refuses at once, as `bulkhead = 1000` does) and held across the await.
#[inline(never)]
#[tracing::instrument]
async fn hand_wired_guards_async(n: u64) -> Result<u64, WorkError> {
    const LABELS: [&str; 3] = ["hand_wired_guards_async", module_path!(), "function"];
    let (metrics, guards) = (&*HAND_WIRED, &*HAND_GUARDS);
    metrics.in_flight.with_label_values(&LABELS).inc();
    let started = Instant::now();
    let (result, outcome) = if !guards.breaker.is_call_permitted() || guards.rate.check().is_err() {
        (Err(WorkError), "rejected")
    } else if let Ok(_permit) = guards.bulkhead.try_acquire() {
        let result = work(ready(n).await);
        if result.is_ok() {
            guards.breaker.on_success();
            (result, "ok")
        } else {
            guards.breaker.on_error();
            (result, "error")
        }
    } else {
        (Err(WorkError), "rejected")
    };
    metrics.calls.with_label_values(&[LABELS[0], LABELS[1], LABELS[2], outcome]).inc();
    metrics.duration.with_label_values(&LABELS).observe(started.elapsed().as_secs_f64());
    metrics.in_flight.with_label_values(&LABELS).dec();
    result
}

/// One case, whatever its kind: a plain function pointer, so every case runs the same loop.
type Case = fn(u64) -> Result<u64, WorkError>;

/// Polls a future to completion with a waker that does nothing: the cheapest executor there is. The
/// future is pinned where it is built, so that running it moves nothing.
#[inline(never)]
fn run<F: Future>(mut future: Pin<&mut F>) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}

/// The metrics of the hand-wired functions, with the same names, labels and buckets as hardened's own.
struct HandWired {
    calls: IntCounterVec,
    duration: HistogramVec,
    in_flight: IntGaugeVec,
}

static HAND_WIRED: LazyLock<HandWired> = LazyLock::new(|| {
    let labels = ["function", "module", "kind"];
    let metrics = HandWired {
        calls: IntCounterVec::new(
            Opts::new("app_calls_total", "Calls, by outcome."),
            &["function", "module", "kind", "outcome"],
        )
        .expect("valid counter"),
        duration: HistogramVec::new(
            HistogramOpts::new("app_call_duration_seconds", "Call durations.").buckets(vec![
                5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5,
                1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
            ]),
            &labels,
        )
        .expect("valid histogram"),
        in_flight: IntGaugeVec::new(Opts::new("app_in_flight", "Calls in progress."), &labels).expect("valid gauge"),
    };
    let registry = Registry::new();
    registry
        .register(Box::new(metrics.calls.clone()))
        .and_then(|()| registry.register(Box::new(metrics.duration.clone())))
        .and_then(|()| registry.register(Box::new(metrics.in_flight.clone())))
        .expect("metrics register");
    // The registry would be scraped; keeping it alive is all this benchmark needs.
    std::mem::forget(registry);
    metrics
});

/// The breaker `failsafe::Config::new().build()` makes: its default failure policy, no instrument.
type HandBreaker =
    failsafe::StateMachine<OrElse<SuccessRateOverTimeWindow<EqualJittered>, ConsecutiveFailures<EqualJittered>>, ()>;

/// The guards of the hand-wired functions, with the limits of hardened's: a rate and a burst of
/// 1,000,000,000, 1000 calls at once.
struct HandGuards {
    breaker: HandBreaker,
    rate: DefaultDirectRateLimiter,
    bulkhead: tokio::sync::Semaphore,
}

static HAND_GUARDS: LazyLock<HandGuards> = LazyLock::new(|| {
    let limit = NonZeroU32::new(1_000_000_000).expect("non-zero");
    HandGuards {
        breaker: failsafe::Config::new().build(),
        rate: governor::RateLimiter::direct(Quota::per_second(limit).allow_burst(limit)),
        bulkhead: tokio::sync::Semaphore::new(1000),
    }
});

/// One function under test, sync or async.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Function {
    Bare,
    Hardened,
    Instrument,
    HandWired,
    MetricsOnly,
    SpanOnly,
    HardenedGuards,
    HandWiredGuards,
}

impl Function {
    /// The functions compared in every setup.
    const COMPARED: [Function; 4] = [Function::Bare, Function::Hardened, Function::Instrument, Function::HandWired];

    /// `#[hardened]` taken apart, measured with no subscriber only.
    const PARTS: [Function; 2] = [Function::MetricsOnly, Function::SpanOnly];

    /// The guarded functions, measured with the span disabled (or no subscriber) only.
    const GUARDED: [Function; 2] = [Function::HardenedGuards, Function::HandWiredGuards];

    /// The functions measured under OpenTelemetry with nothing sampled, exemplars off and on.
    #[cfg(feature = "telemetry")]
    const UNSAMPLED: [Function; 3] = [Function::Bare, Function::Hardened, Function::HardenedGuards];

    /// The functions run on two threads at once, in the setups of [`Setup::GATED`].
    const TWO_THREADS: [Function; 5] =
        [Function::Bare, Function::Hardened, Function::HandWired, Function::HardenedGuards, Function::HandWiredGuards];

    /// Every function, for `--instructions`.
    const ALL: [Function; 8] = [
        Function::Bare,
        Function::Hardened,
        Function::Instrument,
        Function::HandWired,
        Function::MetricsOnly,
        Function::SpanOnly,
        Function::HardenedGuards,
        Function::HandWiredGuards,
    ];

    fn name(self) -> &'static str {
        match self {
            Function::Bare => "bare",
            Function::Hardened => "hardened",
            Function::Instrument => "instrument",
            Function::HandWired => "hand_wired",
            Function::MetricsOnly => "hardened_metrics_only",
            Function::SpanOnly => "hardened_span_only",
            Function::HardenedGuards => "hardened_guards",
            Function::HandWiredGuards => "hand_wired_guards",
        }
    }

    /// The functions measured on one thread in `setup`.
    fn measured_in(setup: Setup) -> impl Iterator<Item = Function> {
        #[cfg(feature = "telemetry")]
        if setup.unsampled() {
            return Function::UNSAMPLED.to_vec().into_iter();
        }
        let parts: &[Function] = if setup == Setup::NoSubscriber { &Function::PARTS } else { &[] };
        let guarded: &[Function] = if setup.gated() { &Function::GUARDED } else { &[] };
        let measured: Vec<Function> =
            Function::COMPARED.into_iter().chain(parts.iter().copied()).chain(guarded.iter().copied()).collect();
        measured.into_iter()
    }

    /// The function, sync or polled to completion.
    fn call(self, asynchronous: bool) -> Case {
        match (self, asynchronous) {
            (Function::Bare, false) => bare_sync,
            (Function::Hardened, false) => hardened_sync,
            (Function::Instrument, false) => instrument_sync,
            (Function::HandWired, false) => hand_wired_sync,
            (Function::MetricsOnly, false) => metrics_only_sync,
            (Function::SpanOnly, false) => span_only_sync,
            (Function::HardenedGuards, false) => hardened_guards_sync,
            (Function::HandWiredGuards, false) => hand_wired_guards_sync,
            (Function::Bare, true) => |n| run(pin!(bare_async(n))),
            (Function::Hardened, true) => |n| run(pin!(hardened_async(n))),
            (Function::Instrument, true) => |n| run(pin!(instrument_async(n))),
            (Function::HandWired, true) => |n| run(pin!(hand_wired_async(n))),
            (Function::MetricsOnly, true) => |n| run(pin!(metrics_only_async(n))),
            (Function::SpanOnly, true) => |n| run(pin!(span_only_async(n))),
            (Function::HardenedGuards, true) => |n| run(pin!(hardened_guards_async(n))),
            (Function::HandWiredGuards, true) => |n| run(pin!(hand_wired_guards_async(n))),
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Subscriber setups.

/// A layer that implements nothing: every span is enabled and nothing is done with it.
struct NoopLayer;

impl<S: Subscriber> Layer<S> for NoopLayer {}

/// A layer that visits the fields of every new span and every recorded value, as any exporter must.
struct RecordingLayer;

/// Fields seen by [`RecordingLayer`], so that its work is observable.
static FIELDS_SEEN: AtomicUsize = AtomicUsize::new(0);

impl<S: Subscriber> Layer<S> for RecordingLayer {
    fn on_new_span(&self, attrs: &Attributes<'_>, _id: &Id, _ctx: LayerContext<'_, S>) {
        let mut counter = FieldCounter(0);
        attrs.record(&mut counter);
        FIELDS_SEEN.fetch_add(counter.0, Ordering::Relaxed);
    }

    fn on_record(&self, _id: &Id, values: &Record<'_>, _ctx: LayerContext<'_, S>) {
        let mut counter = FieldCounter(0);
        values.record(&mut counter);
        FIELDS_SEEN.fetch_add(counter.0, Ordering::Relaxed);
    }
}

/// Counts the fields it visits.
struct FieldCounter(usize);

impl Visit for FieldCounter {
    fn record_debug(&mut self, _field: &Field, _value: &dyn fmt::Debug) {
        self.0 += 1;
    }
}

/// A subscriber configuration, installed for one benchmark group at a time.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Setup {
    NoSubscriber,
    SpanDisabled,
    NoopLayer,
    Recording,
    /// The runtime's OpenTelemetry layer with a sampler that samples no root span: every span enabled,
    /// none sampled; exporting (the SDK's tracer, `otel_layer`) or ids only (`trace_ids_layer`); with
    /// exemplars on or off, for what a call pays for them when its trace is not sampled.
    #[cfg(feature = "telemetry")]
    Unsampled {
        export: bool,
        exemplars: bool,
    },
}

impl Setup {
    /// In the order they run: `NoSubscriber` first, before any dispatcher has ever been set.
    const ALL: &[Setup] = &[
        Setup::NoSubscriber,
        Setup::SpanDisabled,
        Setup::NoopLayer,
        Setup::Recording,
        #[cfg(feature = "telemetry")]
        Setup::Unsampled { export: true, exemplars: false },
        #[cfg(feature = "telemetry")]
        Setup::Unsampled { export: true, exemplars: true },
        #[cfg(feature = "telemetry")]
        Setup::Unsampled { export: false, exemplars: false },
        #[cfg(feature = "telemetry")]
        Setup::Unsampled { export: false, exemplars: true },
    ];

    fn name(self) -> &'static str {
        match self {
            Setup::NoSubscriber => "no_subscriber",
            Setup::SpanDisabled => "span_disabled",
            Setup::NoopLayer => "noop_layer",
            Setup::Recording => "recording",
            #[cfg(feature = "telemetry")]
            Setup::Unsampled { export, exemplars } => match (export, exemplars) {
                (true, false) => "otel_unsampled",
                (true, true) => "otel_unsampled_exemplars",
                (false, false) => "ids_unsampled",
                (false, true) => "ids_unsampled_exemplars",
            },
        }
    }

    /// The dispatcher to install, `None` for no subscriber at all (not even a scoped `Dispatch::none()`).
    fn dispatch(self) -> Option<Dispatch> {
        match self {
            Setup::NoSubscriber => None,
            // Everything enabled except this benchmark's module, as `RUST_LOG=trace,overhead=off` would.
            Setup::SpanDisabled => Some(Dispatch::new(
                tracing_subscriber::registry()
                    .with(Targets::new().with_default(LevelFilter::TRACE).with_target(module_path!(), LevelFilter::OFF))
                    .with(NoopLayer),
            )),
            Setup::NoopLayer => Some(Dispatch::new(tracing_subscriber::registry().with(NoopLayer))),
            Setup::Recording => Some(Dispatch::new(tracing_subscriber::registry().with(RecordingLayer))),
            #[cfg(feature = "telemetry")]
            Setup::Unsampled { export, .. } => Some(unsampled::dispatch(export)),
        }
    }

    /// Whether the setup samples nothing, for the exemplars' cost.
    #[cfg(feature = "telemetry")]
    fn unsampled(self) -> bool {
        matches!(self, Setup::Unsampled { .. })
    }

    /// Turns exemplars on for the setups that keep them, off for every other.
    fn keep_exemplars(self) {
        #[cfg(feature = "telemetry")]
        unsampled::keep_exemplars(matches!(self, Setup::Unsampled { exemplars: true, .. }));
    }

    /// The setups the targets are about: metrics on, span disabled.
    const GATED: [Setup; 2] = [Setup::NoSubscriber, Setup::SpanDisabled];

    fn gated(self) -> bool {
        Setup::GATED.contains(&self)
    }
}

/// The OpenTelemetry setups: the runtime's span layers and exemplar source as `hardened::telemetry::init`
/// installs them, with a parent-based sampler that samples no root span (the functions' spans are roots).
#[cfg(feature = "telemetry")]
mod unsampled {
    use tracing::Dispatch;
    use tracing_subscriber::layer::SubscriberExt as _;

    use hardened::metrics::exemplars;
    use hardened::telemetry::{self, TelemetryConfig, TraceSampler};

    fn config(exemplars: bool) -> TelemetryConfig {
        TelemetryConfig { sampler: TraceSampler::ParentBasedAlwaysOff, exemplars, ..TelemetryConfig::default() }
    }

    /// `otel_layer` over the SDK's tracer (`export`, the provider without a processor) or `trace_ids_layer`.
    pub(super) fn dispatch(export: bool) -> Dispatch {
        let config = config(true);
        if export {
            let provider = telemetry::tracer_provider_builder(&config).build();
            Dispatch::new(tracing_subscriber::registry().with(telemetry::otel_layer(&provider)))
        } else {
            Dispatch::new(tracing_subscriber::registry().with(telemetry::trace_ids_layer(&config)))
        }
    }

    pub(super) fn keep_exemplars(on: bool) {
        telemetry::install_exemplars(&config(on));
        assert_eq!(exemplars::enabled(), on, "exemplars should be {}", if on { "on" } else { "off" });
    }
}

/// Runs `body` with `dispatch` installed on the current thread, and only for its duration; with nothing
/// installed at all for `None`.
fn within<T>(dispatch: Option<&Dispatch>, body: impl FnOnce() -> T) -> T {
    match dispatch {
        None => body(),
        Some(dispatch) => tracing::dispatcher::with_default(dispatch, body),
    }
}

// ---------------------------------------------------------------------------------------------------
// Wall clock, with criterion.

fn wall_clock(criterion: &mut Criterion) {
    for &setup in Setup::ALL {
        let dispatch = setup.dispatch();
        setup.keep_exemplars();
        within(dispatch.as_ref(), || {
            for asynchronous in [false, true] {
                let mode = if asynchronous { "async" } else { "sync" };
                let mut group = criterion.benchmark_group(format!("{mode}/{}", setup.name()));
                for function in Function::measured_in(setup) {
                    let call = function.call(asynchronous);
                    group.bench_function(function.name(), |bencher| {
                        let mut n = 0u64;
                        bencher.iter(|| {
                            n = n.wrapping_add(1);
                            call(black_box(n))
                        });
                    });
                }
                group.finish();
            }
        });
        if setup.gated() {
            for asynchronous in [false, true] {
                let mode = if asynchronous { "async_two_threads" } else { "sync_two_threads" };
                let group_name = format!("{mode}/{}", setup.name());
                let mut group = criterion.benchmark_group(&group_name);
                for function in Function::TWO_THREADS {
                    let call = function.call(asynchronous);
                    let mut parked = Parked::default();
                    std::thread::scope(|scope| {
                        let pair = Pair::start(scope, call, dispatch.as_ref());
                        group.bench_function(function.name(), |bencher| {
                            bencher.iter_custom(|iterations| pair.run(iterations, &mut parked));
                        });
                    });
                    // A benchmark that the filter left out made no call: nothing to report.
                    if parked.calls > 0 {
                        println!("{group_name}/{}: {parked}", function.name());
                    }
                }
                group.finish();
            }
        }
    }
}

/// The `host` group: see the module's documentation.
fn host(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("host");
    #[cfg(target_arch = "x86_64")]
    group.bench_function("clock_read", |bencher| bencher.iter(read_time_stamp_counter));
    let word = AtomicU64::new(0);
    group.bench_function("locked_add", |bencher| bencher.iter(|| black_box(&word).fetch_add(1, Ordering::Relaxed)));
    group.bench_function("compare_and_swap", |bencher| {
        bencher.iter(|| {
            let word = black_box(&word);
            let seen = word.load(Ordering::Relaxed);
            word.compare_exchange(seen, seen + 1, Ordering::AcqRel, Ordering::Relaxed)
        });
    });
    group.finish();
}

/// What hardened's clock reads on `x86_64`.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code, reason = "`_rdtsc` is an unsafe intrinsic with no precondition on x86_64")]
fn read_time_stamp_counter() -> u64 {
    // SAFETY: `rdtsc` exists on every x86_64 CPU and reads no memory.
    unsafe { std::arch::x86_64::_rdtsc() }
}

// ---------------------------------------------------------------------------------------------------
// Two threads sharing one function, its guards and its metrics.

/// Context switches of the calling thread so far, voluntary (the thread blocked: parked on a lock, for
/// one) and involuntary (preempted: another process wanted the core), when the system says (Linux).
fn context_switches() -> Option<Switches> {
    let status = std::fs::read_to_string("/proc/thread-self/status").ok()?;
    let field = |name: &str| {
        status.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(':')?.trim().parse::<u64>().ok())
    };
    Some(Switches { voluntary: field("voluntary_ctxt_switches")?, involuntary: field("nonvoluntary_ctxt_switches")? })
}

/// Context switches of a thread.
#[derive(Clone, Copy, Default)]
struct Switches {
    voluntary: u64,
    involuntary: u64,
}

/// What one thread of a [`Pair`] reports for one round.
struct Round {
    elapsed: Duration,
    /// Context switches during the round, if known.
    switches: Option<Switches>,
}

/// Context switches over the rounds of a [`Pair`], and the calls they made.
#[derive(Default)]
struct Parked {
    switches: Switches,
    unknown: bool,
    calls: u64,
}

impl Parked {
    fn add(&mut self, round: &Round, calls: u64) {
        self.calls += calls;
        match round.switches {
            Some(switches) => {
                self.switches.voluntary += switches.voluntary;
                self.switches.involuntary += switches.involuntary;
            }
            None => self.unknown = true,
        }
    }
}

impl fmt::Display for Parked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.unknown {
            write!(f, "{} calls on two threads; context switches unknown", self.calls)
        } else {
            let Switches { voluntary, involuntary } = self.switches;
            write!(
                f,
                "{voluntary} voluntary context switches (parked), {involuntary} involuntary (preempted), \
                 in {} calls on two threads",
                self.calls
            )
        }
    }
}

/// Two threads that call the same function in a loop, started together by a barrier, each with the
/// benchmark's subscriber setup installed. They live as long as the scope they are started in, so that
/// each keeps its thread-local state (metric shard, span stack) from one round to the next.
struct Pair {
    rounds: [mpsc::Sender<u64>; 2],
    reports: mpsc::Receiver<Round>,
}

impl Pair {
    fn start<'scope>(scope: &'scope Scope<'scope, '_>, call: Case, dispatch: Option<&'scope Dispatch>) -> Pair {
        let barrier = Arc::new(Barrier::new(2));
        let (report, reports) = mpsc::channel();
        let rounds = [(); 2].map(|()| {
            let (round, rounds) = mpsc::channel::<u64>();
            let (barrier, report) = (Arc::clone(&barrier), report.clone());
            scope.spawn(move || {
                within(dispatch, || {
                    // Lazy initialisation (this thread's shard, callsite interest) before any round.
                    for n in 0..100 {
                        black_box(call(black_box(n)).is_ok());
                    }
                    for iterations in rounds {
                        barrier.wait();
                        let before = context_switches();
                        let started = Instant::now();
                        for n in 0..iterations {
                            black_box(call(black_box(n)).is_ok());
                        }
                        let elapsed = started.elapsed();
                        let switches = before.zip(context_switches()).map(|(before, after)| Switches {
                            voluntary: after.voluntary - before.voluntary,
                            involuntary: after.involuntary - before.involuntary,
                        });
                        if report.send(Round { elapsed, switches }).is_err() {
                            break;
                        }
                    }
                });
            });
            round
        });
        Pair { rounds, reports }
    }

    /// Makes `iterations` calls on each thread at once; returns the mean of the two threads' times, which
    /// is `iterations` times the time per call and per thread.
    fn run(&self, iterations: u64, parked: &mut Parked) -> Duration {
        for round in &self.rounds {
            round.send(iterations).expect("benchmark thread alive");
        }
        let mut total = Duration::ZERO;
        for _ in 0..2 {
            let round = self.reports.recv().expect("benchmark thread reports");
            parked.add(&round, iterations);
            total += round.elapsed;
        }
        total / 2
    }
}

// ---------------------------------------------------------------------------------------------------
// Instruction counts, for callgrind.

/// Calls `call` `iterations` times; callgrind collects this function only.
#[inline(never)]
fn measured_loop(call: Case, iterations: u64) -> u64 {
    let mut ok = 0u64;
    for n in 0..iterations {
        ok += u64::from(call(black_box(n)).is_ok());
    }
    ok
}

/// The case named `id` (`{sync,async}/{setup}/{function}`): its setup, and the function to call.
fn case(id: &str) -> Option<(Setup, Case)> {
    let mut parts = id.split('/');
    let asynchronous = match parts.next()? {
        "sync" => false,
        "async" => true,
        _ => return None,
    };
    let setup_name = parts.next()?;
    let setup = Setup::ALL.iter().copied().find(|setup| setup.name() == setup_name)?;
    let function_name = parts.next()?;
    let function = Function::ALL.into_iter().find(|function| function.name() == function_name)?;
    parts.next().is_none().then(|| (setup, function.call(asynchronous)))
}

/// The case and the iteration count of `--instructions` and `--two-threads`, or why not.
fn parse_case(args: &[String]) -> Result<(&str, Setup, Case, u64), ExitCode> {
    let usage = "usage: overhead {--instructions,--two-threads} \
                 {sync,async}/{no_subscriber,span_disabled,noop_layer,recording}/\
                 {bare,hardened,instrument,hand_wired,hardened_metrics_only,hardened_span_only,\
                 hardened_guards,hand_wired_guards} ITERATIONS";
    if let [id, iterations] = args
        && let (Some((setup, call)), Ok(iterations)) = (case(id), iterations.parse::<u64>())
    {
        return Ok((id, setup, call, iterations));
    }
    eprintln!("{usage}");
    Err(ExitCode::from(2))
}

fn instructions(args: &[String]) -> ExitCode {
    let (id, setup, call, iterations) = match parse_case(args) {
        Ok(case) => case,
        Err(code) => return code,
    };
    setup.keep_exemplars();
    within(setup.dispatch().as_ref(), || {
        // Lazy initialisation (metric layout, thread shard, clock calibration, callsite registration,
        // label series, guards) happens here, outside the collected function.
        for n in 0..100 {
            black_box(call(black_box(n)).is_ok());
        }
        let ok = measured_loop(call, iterations);
        println!("{id}: {ok} of {iterations} calls ok");
    });
    ExitCode::SUCCESS
}

/// Ten rounds of `ITERATIONS` calls on each of two threads: the time per call and per thread of each
/// round, to show how it spreads, where criterion gives one estimate.
fn two_threads(args: &[String]) -> ExitCode {
    let (id, setup, call, iterations) = match parse_case(args) {
        Ok(case) => case,
        Err(code) => return code,
    };
    let dispatch = setup.dispatch();
    let mut parked = Parked::default();
    let per_call: Vec<String> = std::thread::scope(|scope| {
        let pair = Pair::start(scope, call, dispatch.as_ref());
        (0..10)
            .map(|_| {
                let elapsed = pair.run(iterations, &mut parked);
                format!("{:.1}", elapsed.as_secs_f64() * 1e9 / iterations.max(1) as f64)
            })
            .collect()
    });
    println!("{id}, two threads: ns per call per thread, by round: {}", per_call.join(" "));
    println!("{id}, two threads: {parked}");
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--instructions") => return instructions(&args[1..]),
        Some("--two-threads") => return two_threads(&args[1..]),
        _ => {}
    }
    let mut criterion = Criterion::default().configure_from_args();
    wall_clock(&mut criterion);
    host(&mut criterion);
    criterion.final_summary();
    ExitCode::SUCCESS
}
