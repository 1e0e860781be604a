//! Behaviour tests of `#[hardened]`; the tests live in `tests/`, this library holds what they share:
//! a subscriber layer that captures spans as data, log lines written to memory, audit log files read and
//! rewritten, readers of the real metrics registry, and a global subscriber exporting spans to memory.

pub mod log_files;
pub mod log_lines;
pub mod otelsink;
pub mod postgres;
pub mod redis;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use prometheus::proto::MetricType;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// One span as the subscriber saw it.
#[derive(Debug, Clone, Default)]
pub struct CapturedSpan {
    /// The span's name.
    pub name: String,
    /// Every field recorded at creation or later, rendered as text.
    pub fields: BTreeMap<String, String>,
    /// The parent span's name, if any.
    pub parent: Option<String>,
    /// How many times the span was entered.
    pub enters: usize,
    /// How many times the span was exited.
    pub exits: usize,
}

/// Everything captured by a [`Capture`].
#[derive(Debug, Default)]
pub struct Captured {
    spans: Vec<(Id, CapturedSpan)>,
    /// Messages of the events emitted while capturing.
    pub events: Vec<String>,
}

impl Captured {
    /// The spans named `name`, in creation order.
    #[must_use]
    pub fn spans(&self, name: &str) -> Vec<CapturedSpan> {
        self.spans.iter().filter(|(_, span)| span.name == name).map(|(_, span)| span.clone()).collect()
    }

    /// The only span named `name`.
    ///
    /// # Panics
    /// When there is not exactly one.
    #[must_use]
    pub fn span(&self, name: &str) -> CapturedSpan {
        let spans = self.spans(name);
        assert_eq!(spans.len(), 1, "expected one span named {name}, found {spans:?}");
        spans.into_iter().next().unwrap_or_default()
    }

    fn by_id(&mut self, id: &Id) -> Option<&mut CapturedSpan> {
        self.spans.iter_mut().rev().find(|(span_id, _)| span_id == id).map(|(_, span)| span)
    }
}

/// A layer that records spans and events into shared memory, for assertions.
#[derive(Debug, Clone, Default)]
pub struct Capture {
    captured: Arc<Mutex<Captured>>,
}

impl Capture {
    /// A subscriber with this capture as its only layer, and the capture to read it back.
    #[must_use]
    pub fn subscriber() -> (impl Subscriber + Send + Sync, Capture) {
        let capture = Capture::default();
        (tracing_subscriber::registry().with(capture.clone()), capture)
    }

    /// What has been captured so far.
    pub fn captured(&self) -> MutexGuard<'_, Captured> {
        self.captured.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct FieldsVisitor<'a>(&'a mut BTreeMap<String, String>);

impl Visit for FieldsVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S> Layer<S> for Capture
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut span = CapturedSpan { name: attrs.metadata().name().to_owned(), ..CapturedSpan::default() };
        attrs.record(&mut FieldsVisitor(&mut span.fields));
        span.parent = ctx.span(id).and_then(|span| span.parent()).map(|parent| parent.name().to_owned());
        self.captured().spans.push((id.clone(), span));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        if let Some(span) = self.captured().by_id(id) {
            values.record(&mut FieldsVisitor(&mut span.fields));
        }
    }

    fn on_enter(&self, id: &Id, _: Context<'_, S>) {
        if let Some(span) = self.captured().by_id(id) {
            span.enters += 1;
        }
    }

    fn on_exit(&self, id: &Id, _: Context<'_, S>) {
        if let Some(span) = self.captured().by_id(id) {
            span.exits += 1;
        }
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut FieldsVisitor(&mut fields));
        self.captured().events.push(fields.remove("message").unwrap_or_default());
    }
}

/// The value of the sample of metric `name` whose labels include all of `labels`; `None` if absent.
///
/// Reads the real registry through `gather`, the same data `/metrics` renders. Every sample hardened
/// records is a count, so the value is an integer; for histograms it is the sample count.
#[must_use]
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "counts are non-negative integers")]
pub fn sample(name: &str, labels: &[(&str, &str)]) -> Option<u64> {
    let families = hardened::metrics::registry().gather();
    let family = families.iter().find(|family| family.name() == name)?;
    family
        .get_metric()
        .iter()
        .find(|metric| {
            labels
                .iter()
                .all(|(key, value)| metric.get_label().iter().any(|pair| pair.name() == *key && pair.value() == *value))
        })
        .and_then(|metric| match family.get_field_type() {
            MetricType::COUNTER => Some(metric.get_counter().get_value() as u64),
            MetricType::GAUGE => Some(metric.get_gauge().get_value() as u64),
            MetricType::HISTOGRAM => Some(metric.get_histogram().get_sample_count()),
            _ => None,
        })
}

/// One function's `hardened_call_duration_seconds` histogram.
#[derive(Debug, Clone, PartialEq)]
pub struct DurationHistogram {
    /// `(upper bound in seconds, cumulative count)` per bucket, without `+Inf`.
    pub buckets: Vec<(f64, u64)>,
    /// Number of observations (the `+Inf` bucket).
    pub count: u64,
    /// Sum of observed durations in seconds.
    pub sum: f64,
}

/// The duration histogram of one function, if it has one.
#[must_use]
pub fn duration_histogram(function: &str) -> Option<DurationHistogram> {
    let families = hardened::metrics::registry().gather();
    let family = families.iter().find(|family| family.name() == "hardened_call_duration_seconds")?;
    let metric = family
        .get_metric()
        .iter()
        .find(|metric| metric.get_label().iter().any(|pair| pair.name() == "function" && pair.value() == function))?;
    let histogram = metric.get_histogram();
    let buckets =
        histogram.get_bucket().iter().map(|bucket| (bucket.upper_bound(), bucket.cumulative_count())).collect();
    Some(DurationHistogram { buckets, count: histogram.get_sample_count(), sum: histogram.get_sample_sum() })
}

/// `hardened_calls_total` of one function and outcome.
#[must_use]
pub fn calls(function: &str, outcome: &str) -> u64 {
    sample("hardened_calls_total", &[("function", function), ("outcome", outcome)]).unwrap_or(0)
}

/// `hardened_in_flight` of one function.
#[must_use]
pub fn in_flight(function: &str) -> u64 {
    sample("hardened_in_flight", &[("function", function)]).unwrap_or(0)
}

/// The `PostgreSQL` server of the tests that need one, from `DATABASE_URL`.
///
/// Those tests are `#[ignore]`d, so that the workspace's tests pass without a server; run with
/// `--include-ignored`, they must find one, and fail here, saying so, when the variable is not set.
///
/// # Panics
///
/// When `DATABASE_URL` is not set.
#[must_use]
pub fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| {
        panic!(
            "DATABASE_URL is not set: this test needs a PostgreSQL server, \
             e.g. DATABASE_URL=postgres://postgres@127.0.0.1:5432/test"
        )
    })
}

/// The Redis server of the tests that need one, from `REDIS_URL`.
///
/// Those tests are `#[ignore]`d, so that the workspace's tests pass without a server; run with
/// `--include-ignored`, they must find one, and fail here, saying so, when the variable is not set.
///
/// # Panics
///
/// When `REDIS_URL` is not set.
#[must_use]
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").ok().filter(|url| !url.is_empty()).unwrap_or_else(|| {
        panic!("REDIS_URL is not set: this test needs a Redis server, e.g. REDIS_URL=redis://127.0.0.1:6379")
    })
}

/// Lets spawned tasks run until `done` holds: on a current-thread runtime they run only while the caller
/// yields, so this is how a test waits for them to reach a state, without sleeping.
///
/// # Panics
///
/// When `done` still does not hold after 10,000 yields.
pub async fn until(mut done: impl FnMut() -> bool) {
    for _ in 0..10_000 {
        if done() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("the tasks did not get there");
}

/// The in-memory exporter behind a global subscriber of `hardened::telemetry::otel_layer`, installed on
/// first use with the default sampler (every trace kept): for a test binary whose spans are made on any
/// worker thread.
///
/// # Panics
///
/// When another global subscriber was installed first: it must be the binary's only one.
pub fn global_span_exporter() -> &'static opentelemetry_sdk::trace::InMemorySpanExporter {
    static EXPORTER: OnceLock<opentelemetry_sdk::trace::InMemorySpanExporter> = OnceLock::new();
    EXPORTER.get_or_init(|| {
        let exporter = opentelemetry_sdk::trace::InMemorySpanExporter::default();
        let provider = hardened::telemetry::tracer_provider_builder(&hardened::telemetry::TelemetryConfig::default())
            .with_simple_exporter(exporter.clone())
            .build();
        let subscriber = tracing_subscriber::registry().with(hardened::telemetry::otel_layer(&provider));
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber of this binary");
        exporter
    })
}
