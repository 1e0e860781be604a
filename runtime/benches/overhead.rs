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
//! Each runs under four subscriber setups, each installed for its own benchmark group only:
//! `no_subscriber` (no dispatcher at all, measured first so nothing set before leaks in),
//! `span_disabled` (a registry whose filter rejects the spans' target), `noop_layer` (a registry with a
//! layer that implements nothing, so every span is enabled) and `recording` (a registry with a layer that
//! visits every new span's fields). Async functions are polled to completion with a no-op waker, so the
//! executor costs a few instructions.
//!
//! Benchmark ids read `{sync,async}/{setup}/{function}`:
//!
//! ```text
//! cargo bench -p hardened --bench overhead
//! cargo bench -p hardened --bench overhead -- sync/no_subscriber
//! ```
//!
//! The same binary counts instructions for `scripts/callgrind-overhead.sh`: given
//! `--instructions ID ITERATIONS`, it installs the setup of `ID`, warms the case up, then calls it
//! `ITERATIONS` times inside `measured_loop`, the only function callgrind is told to collect.

use std::fmt;
use std::future::{Future, ready};
use std::hint::black_box;
use std::pin::{Pin, pin};
use std::process::ExitCode;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use criterion::Criterion;
use hardened::hardened;
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

/// One function under test, sync or async.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Function {
    Bare,
    Hardened,
    Instrument,
    HandWired,
    MetricsOnly,
    SpanOnly,
}

impl Function {
    /// The functions compared in every setup.
    const COMPARED: [Function; 4] = [Function::Bare, Function::Hardened, Function::Instrument, Function::HandWired];

    /// `#[hardened]` taken apart, measured with no subscriber only.
    const PARTS: [Function; 2] = [Function::MetricsOnly, Function::SpanOnly];

    /// Every function, for `--instructions`.
    const ALL: [Function; 6] = [
        Function::Bare,
        Function::Hardened,
        Function::Instrument,
        Function::HandWired,
        Function::MetricsOnly,
        Function::SpanOnly,
    ];

    fn name(self) -> &'static str {
        match self {
            Function::Bare => "bare",
            Function::Hardened => "hardened",
            Function::Instrument => "instrument",
            Function::HandWired => "hand_wired",
            Function::MetricsOnly => "hardened_metrics_only",
            Function::SpanOnly => "hardened_span_only",
        }
    }

    /// The functions measured in `setup`.
    fn measured_in(setup: Setup) -> impl Iterator<Item = Function> {
        let parts: &[Function] = if setup == Setup::NoSubscriber { &Function::PARTS } else { &[] };
        Function::COMPARED.into_iter().chain(parts.iter().copied())
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
            (Function::Bare, true) => |n| run(pin!(bare_async(n))),
            (Function::Hardened, true) => |n| run(pin!(hardened_async(n))),
            (Function::Instrument, true) => |n| run(pin!(instrument_async(n))),
            (Function::HandWired, true) => |n| run(pin!(hand_wired_async(n))),
            (Function::MetricsOnly, true) => |n| run(pin!(metrics_only_async(n))),
            (Function::SpanOnly, true) => |n| run(pin!(span_only_async(n))),
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
}

impl Setup {
    /// In the order they run: `NoSubscriber` first, before any dispatcher has ever been set.
    const ALL: [Setup; 4] = [Setup::NoSubscriber, Setup::SpanDisabled, Setup::NoopLayer, Setup::Recording];

    fn name(self) -> &'static str {
        match self {
            Setup::NoSubscriber => "no_subscriber",
            Setup::SpanDisabled => "span_disabled",
            Setup::NoopLayer => "noop_layer",
            Setup::Recording => "recording",
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
        }
    }

    /// Runs `body` with this setup installed on the current thread, and only for its duration.
    fn run<T>(self, body: impl FnOnce() -> T) -> T {
        match self.dispatch() {
            None => body(),
            Some(dispatch) => tracing::dispatcher::with_default(&dispatch, body),
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Wall clock, with criterion.

fn wall_clock(criterion: &mut Criterion) {
    for setup in Setup::ALL {
        setup.run(|| {
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

/// The case named `id` (`{sync,async}/{setup}/{function}`).
fn case(id: &str) -> Option<(Setup, Case)> {
    let mut parts = id.split('/');
    let asynchronous = match parts.next()? {
        "sync" => false,
        "async" => true,
        _ => return None,
    };
    let setup_name = parts.next()?;
    let setup = Setup::ALL.into_iter().find(|setup| setup.name() == setup_name)?;
    let function_name = parts.next()?;
    let function = Function::ALL.into_iter().find(|function| function.name() == function_name)?;
    parts.next().is_none().then(|| (setup, function.call(asynchronous)))
}

fn instructions(args: &[String]) -> ExitCode {
    let usage = "usage: overhead --instructions {sync,async}/{no_subscriber,span_disabled,noop_layer,recording}/\
                 {bare,hardened,instrument,hand_wired,hardened_metrics_only,hardened_span_only} ITERATIONS";
    let [id, iterations] = args else {
        eprintln!("{usage}");
        return ExitCode::from(2);
    };
    let (Some((setup, call)), Ok(iterations)) = (case(id), iterations.parse::<u64>()) else {
        eprintln!("{usage}");
        return ExitCode::from(2);
    };
    setup.run(|| {
        // Lazy initialisation (metric layout, thread shard, clock calibration, callsite registration,
        // label series) happens here, outside the collected function.
        for n in 0..100 {
            black_box(call(black_box(n)).is_ok());
        }
        let ok = measured_loop(call, iterations);
        println!("{id}: {ok} of {iterations} calls ok");
    });
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--instructions") {
        return instructions(&args[1..]);
    }
    let mut criterion = Criterion::default().configure_from_args();
    wall_clock(&mut criterion);
    criterion.final_summary();
    ExitCode::SUCCESS
}
