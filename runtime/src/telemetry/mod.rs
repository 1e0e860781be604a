//! The tracing subscriber: filter, readable or JSON logs, and OpenTelemetry export over OTLP.
//!
//! [`init`] installs it once, at the start of `main`, from a [`TelemetryConfig`] that the standard
//! `OTEL_*` variables override ([`resolve_env`] lists them). With an OTLP endpoint set, every span, those
//! of `#[hardened]` functions included, becomes an OpenTelemetry span with the service's resource, which a
//! batch processor exports to the collector, over gRPC or HTTP/protobuf, on a thread of its own. Without
//! one, spans get their trace and span ids only ([`trace_ids_layer`]), for propagation and audit records.
//!
//! ```no_run
//! use hardened::telemetry::{self, TelemetryConfig};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), telemetry::TelemetryError> {
//!     let _telemetry = telemetry::init(&TelemetryConfig {
//!         service_name: "checkout".into(),
//!         service_version: Some(env!("CARGO_PKG_VERSION").into()),
//!         otlp_endpoint: Some("http://localhost:4317".into()),
//!         ..TelemetryConfig::default()
//!     })?;
//!     tracing::info!("started");
//!     // ... serve; the guard flushes the spans still queued when it is dropped, and so does
//!     // `hardened::shutdown::run_handlers()`.
//!     Ok(())
//! }
//! ```
//!
//! A collector that is down or slow never blocks a call: finished spans wait in a bounded queue, a batch
//! that cannot be delivered within [`TelemetryConfig::export_timeout`] is dropped and counted in
//! `hardened_telemetry_spans_dropped_total`, and a warning is logged at most every 30 seconds.
//!
//! To compose a subscriber of your own, take the pieces: [`tracer_provider`] and [`otel_layer`], and
//! register [`current_trace_ids`] with [`audit::set_trace_source`](crate::audit::set_trace_source):
//!
//! ```
//! use hardened::telemetry::{self, TelemetryConfig};
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! let provider = telemetry::tracer_provider(&TelemetryConfig::default())?;
//! let subscriber = tracing_subscriber::registry().with(telemetry::otel_layer(&provider));
//! tracing::subscriber::with_default(subscriber, || {
//!     let _span = tracing::info_span!("work").entered();
//!     assert!(telemetry::current_trace_ids().is_some());
//! });
//! # Ok::<(), telemetry::TelemetryError>(())
//! ```

mod around;
mod config;
mod exemplars;
mod export;
mod fields_when_shown;
mod filters;
mod log_fields;
mod log_trace_ids;
mod otlp_metrics;
mod sampled_spans;
mod span_life;

use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::resource::TelemetryResourceDetector;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider, TracerProviderBuilder,
};
use tracing::Metadata;
use tracing_subscriber::filter::{FilterExt as _, FilterFn, LevelFilter, filter_fn};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{Layer, Registry};

pub use self::config::{
    LogFormat, MetricsExporters, MetricsTemporality, Protocol, Resolved, TelemetryConfig, TraceSampler, UnknownValue,
    resolve_env,
};
pub use self::exemplars::{install_exemplars, sampled_span};
pub use self::export::CountingExporter;
pub use self::filters::{Filters, filters, set_filters};
pub use self::otlp_metrics::MetricsExporter;
use crate::audit::TraceIds;
pub use crate::span_context::{otel_context, set_parent};
use around::Around;
use fields_when_shown::{FieldsFilledIn, FieldsWhenShown};
use span_life::{SpanLife, Steps};

/// Why telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TelemetryError {
    /// An `OTEL_*` variable (or `RUST_LOG`) holds a value that cannot be used.
    #[error("invalid `{variable}` value `{value}`: expected {allowed}")]
    InvalidVariable {
        /// The variable's name.
        variable: String,
        /// Its value.
        value: String,
        /// What it may be.
        allowed: String,
    },
    /// A field of [`TelemetryConfig`] holds a value that cannot be used.
    #[error("invalid telemetry setting `{setting}` = `{value}`: expected {allowed}")]
    InvalidSetting {
        /// The field's name.
        setting: &'static str,
        /// Its value.
        value: String,
        /// What it may be.
        allowed: &'static str,
    },
    /// The log filter does not parse.
    #[error("invalid log filter `{filter}`: {reason}")]
    LogFilter {
        /// The filter, from [`TelemetryConfig::log_filter`] or `RUST_LOG`.
        filter: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The trace filter does not parse.
    #[error("invalid trace filter `{filter}`: {reason}")]
    TraceFilter {
        /// The filter, from [`TelemetryConfig::trace_filter`] or `HARDENED_TELEMETRY__TRACE_FILTER`.
        filter: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The filters cannot be changed: [`init`] has not installed them.
    #[error("the log and trace filters are not installed: `telemetry::init` was not called")]
    NotInitialised,
    /// A filter could not be replaced (the subscriber is gone).
    #[error("the filter could not be replaced: {0}")]
    Reload(String),
    /// The OTLP exporter rejected its configuration (a malformed endpoint, say).
    #[error("the OTLP exporter could not be built: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    /// The thread driving the gRPC exporter could not be started.
    #[error("the OTLP export thread could not be started: {0}")]
    Runtime(#[source] std::io::Error),
    /// A global subscriber was installed before: by an earlier `init`, or by the application.
    #[error("a global tracing subscriber is already installed; compose one with `telemetry::otel_layer` instead")]
    AlreadyInstalled,
    /// Flushing or shutting down the exporter failed.
    #[error("telemetry could not be flushed: {0}")]
    Flush(String),
}

/// The instrumentation scope of the spans made through the tracing layer.
const SCOPE: &str = "hardened";

/// The sampler `config` describes.
#[must_use]
pub fn sampler(config: &TelemetryConfig) -> Sampler {
    let ratio = || Sampler::TraceIdRatioBased(config.sample_ratio);
    match config.sampler {
        TraceSampler::AlwaysOn => Sampler::AlwaysOn,
        TraceSampler::AlwaysOff => Sampler::AlwaysOff,
        TraceSampler::TraceIdRatio => ratio(),
        TraceSampler::ParentBasedAlwaysOn => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
        TraceSampler::ParentBasedAlwaysOff => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
        TraceSampler::ParentBasedTraceIdRatio => Sampler::ParentBased(Box::new(ratio())),
    }
}

/// The resource `config` describes: `service.name`, `service.version`, `service.instance.id`,
/// `deployment.environment` (and its newer name `deployment.environment.name`), the further
/// [`resource_attributes`](TelemetryConfig::resource_attributes) and the SDK's `telemetry.sdk.*`.
#[must_use]
pub fn resource(config: &TelemetryConfig) -> Resource {
    let mut attributes: Vec<KeyValue> =
        config.resource_attributes.iter().map(|(key, value)| KeyValue::new(key.clone(), value.clone())).collect();
    attributes.push(KeyValue::new("service.instance.id", config.instance_id.clone()));
    attributes.push(KeyValue::new("deployment.environment", config.environment.clone()));
    attributes.push(KeyValue::new("deployment.environment.name", config.environment.clone()));
    if let Some(version) = &config.service_version {
        attributes.push(KeyValue::new("service.version", version.clone()));
    }
    Resource::builder_empty()
        .with_detector(Box::new(TelemetryResourceDetector))
        .with_attributes(attributes)
        .with_service_name(config.service_name.clone())
        .build()
}

/// A tracer provider builder with `config`'s sampler and resource and no processor yet: add an exporter
/// of your own (an in-memory one in tests).
#[must_use]
pub fn tracer_provider_builder(config: &TelemetryConfig) -> TracerProviderBuilder {
    SdkTracerProvider::builder().with_sampler(sampler(config)).with_resource(resource(config))
}

/// The tracer provider `config` describes: with a batch processor exporting over OTLP when an endpoint is
/// set (see [`TelemetryConfig::traces_url`]), else without any, so spans still get ids to propagate.
///
/// A gRPC exporter runs on a small runtime of its own, so this may be called inside or outside tokio.
pub fn tracer_provider(config: &TelemetryConfig) -> Result<SdkTracerProvider, TelemetryError> {
    config.validate()?;
    let builder = tracer_provider_builder(config);
    let Some(url) = config.traces_url() else {
        return Ok(builder.build());
    };
    let exporter = export::otlp_exporter(config, url)?;
    let batch = BatchConfigBuilder::default()
        .with_max_queue_size(config.max_queue_size)
        .with_scheduled_delay(config.batch_delay)
        .build();
    let processor = BatchSpanProcessor::builder(exporter).with_batch_config(batch).build();
    Ok(builder.with_span_processor(processor).build())
}

/// The tracing layer that turns spans into OpenTelemetry spans of `provider`'s tracer.
///
/// It leaves out the spans of the crates that carry the export itself (`h2`, `hyper`, `tonic`, `tower`,
/// `reqwest`, `opentelemetry*`), so that exporting a span never makes another one to export.
#[must_use]
pub fn otel_layer<S>(provider: &SdkTracerProvider) -> impl Layer<S> + Send + Sync + 'static
where
    S: tracing::Subscriber + for<'span> LookupSpan<'span> + Send + Sync,
{
    otel_spans(provider).with_filter(outside_export_stack())
}

/// [`otel_layer`] without its filter.
fn otel_spans<S>(provider: &SdkTracerProvider) -> impl Layer<S> + Send + Sync + 'static
where
    S: tracing::Subscriber + for<'span> LookupSpan<'span> + Send + Sync,
{
    let scope = InstrumentationScope::builder(SCOPE).with_version(env!("CARGO_PKG_VERSION")).build();
    let tracer = sampled_spans::NotingTracer::new(provider.tracer_with_scope(scope));
    Around::new(tracing_opentelemetry::layer().with_tracer(tracer), sampled_spans::NotesEntered)
}

/// The tracing layer that gives spans OpenTelemetry trace and span ids, with `config`'s sampler, and
/// records nothing else: what [`init`] installs when no OTLP endpoint is set.
///
/// Ids, sampling decisions and trace flags are those [`otel_layer`] would give under a provider with
/// the same sampler, so [`current_trace_ids`], [`propagation`](crate::propagation), [`set_parent`] and
/// [`otel_context`] work as they do with it; but a span's fields, events, timings and status, which only
/// an exporter would read, are never looked at: each span keeps its OpenTelemetry context and nothing
/// else. `tracing-opentelemetry`'s own
/// [`OpenTelemetrySpanExt`](tracing_opentelemetry::OpenTelemetrySpanExt) does not reach this layer (its
/// `set_parent` answers `LayerNotFound`): call [`set_parent`] and [`otel_context`], which reach both. It
/// leaves out the same crates as [`otel_layer`].
#[must_use]
pub fn trace_ids_layer<S>(config: &TelemetryConfig) -> impl Layer<S> + Send + Sync + 'static
where
    S: tracing::Subscriber + for<'span> LookupSpan<'span> + Send + Sync,
{
    span_ids(config).with_filter(outside_export_stack())
}

/// [`trace_ids_layer`] without its filter.
fn span_ids<S>(config: &TelemetryConfig) -> impl Layer<S> + Send + Sync + 'static
where
    S: tracing::Subscriber + for<'span> LookupSpan<'span> + Send + Sync,
{
    crate::span_ids::SpanIdsLayer::new::<S>(sampler(config))
}

/// The layer writing log lines to `writer`, readable or JSON (without colours).
///
/// Lines show each event with its spans and their fields, leaving out the attributes meant for the
/// exported trace (`otel.*`, `code.*`, `gen_ai.*`, `hardened.*`), which repeat the span's name and the
/// event's target; a JSON line has its current span under `span`. Under the global subscriber (as
/// [`init`] installs it), a line written inside a span whose OpenTelemetry context has ids (from
/// [`otel_layer`] or [`trace_ids_layer`]) names that span's `trace_id` and `span_id`: a JSON line starts
/// with them, a readable line ends with them (`trace_id=… span_id=…`).
#[must_use]
pub fn log_layer<S, W>(format: LogFormat, writer: W) -> Box<dyn Layer<S> + Send + Sync + 'static>
where
    S: tracing::Subscriber + for<'span> LookupSpan<'span> + Send + Sync,
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    log_layer_with(format, writer, false)
}

fn log_layer_with<S, W>(format: LogFormat, writer: W, colours: bool) -> Box<dyn Layer<S> + Send + Sync + 'static>
where
    S: tracing::Subscriber + for<'span> LookupSpan<'span> + Send + Sync,
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    let layer = tracing_subscriber::fmt::layer().with_writer(writer);
    // Spans store their log fields only when they have one to show. The readable format writes a span
    // without stored fields as one without fields; the JSON format expects them of every span of a line,
    // and is given them first.
    match format {
        LogFormat::Readable => Around::new(
            layer
                .with_ansi(colours)
                .fmt_fields(log_fields::ReadableFields)
                // The format is told the colours itself: the ids are added to a line formatted into a buffer,
                // whose writer does not carry the layer's choice.
                .map_event_format(move |format| {
                    log_trace_ids::WithTraceIds::readable(format.with_ansi(colours), colours)
                }),
            FieldsWhenShown,
        )
        .boxed(),
        LogFormat::Json => Around::new(
            layer
                .json()
                .with_current_span(true)
                .fmt_fields(log_fields::JsonFields)
                .map_event_format(|format| FieldsFilledIn(log_trace_ids::WithTraceIds::json(format))),
            FieldsWhenShown,
        )
        .boxed(),
    }
}

/// Whether readable log lines are coloured: on a terminal, or wherever `CLICOLOR_FORCE` is set to other
/// than `0` (for a pager or a CI log that shows colours); never when `NO_COLOR` is set to anything. A log
/// file or a collector would keep the escape codes.
fn log_colours(is_terminal: bool, var: impl Fn(&str) -> Option<std::ffi::OsString>) -> bool {
    let forced = var("CLICOLOR_FORCE").is_some_and(|value| !value.is_empty() && value != "0");
    let refused = var("NO_COLOR").is_some_and(|value| !value.is_empty());
    (is_terminal || forced) && !refused
}

/// The filter leaving out the spans and events of the crates that carry the export itself. It says so of
/// each call site once, and sets no bound on the level: combined with another filter by
/// [`FilterExt::and`](tracing_subscriber::filter::FilterExt::and), that filter's bound holds.
fn outside_export_stack() -> FilterFn<fn(&Metadata<'_>) -> bool> {
    let outside: fn(&Metadata<'_>) -> bool = |metadata| !is_export_stack(metadata.target());
    filter_fn(outside).with_max_level_hint(LevelFilter::TRACE)
}

fn is_export_stack(target: &str) -> bool {
    const CRATES: &[&str] = &["h2", "hyper", "hyper_util", "tonic", "tower", "reqwest", "opentelemetry_otlp"];
    let crate_name = target.split("::").next().unwrap_or(target);
    CRATES.contains(&crate_name) || crate_name.starts_with("opentelemetry")
}

/// The trace and span ids of the current tracing span, if it has an OpenTelemetry context; for
/// [`audit::set_trace_source`](crate::audit::set_trace_source).
///
/// Read from the OpenTelemetry context the layer made current when it entered the span (as
/// [`otel_layer`] and [`trace_ids_layer`] do), in place: asking the span for its context instead looks
/// the span up in the registry and clones its context, for each audit event. Under a layer that makes no
/// context current, the span is asked. A span that the trace filter leaves out has no context of its own:
/// events recorded inside it carry the trace and span of the traced span around it.
#[must_use]
pub fn current_trace_ids() -> Option<TraceIds> {
    opentelemetry::Context::map_current(trace_ids_of).or_else(|| trace_ids_of(&otel_context(&tracing::Span::current())))
}

/// The trace and span ids of an OpenTelemetry context, if it has a valid span context.
fn trace_ids_of(context: &opentelemetry::Context) -> Option<TraceIds> {
    let span = context.span();
    let span_context = span.span_context();
    // The bytes: an audit event writes them in hex where it is completed, which for a call's event is
    // the audit writer's thread.
    span_context
        .is_valid()
        .then(|| TraceIds { trace_id: span_context.trace_id().to_bytes(), span_id: span_context.span_id().to_bytes() })
}

/// Installs the global subscriber `config` describes, with the `OTEL_*` variables and `RUST_LOG` of the
/// process applied over it (see [`resolve_env`]).
///
/// It writes logs to standard output (readable or JSON) as [`TelemetryConfig::log_filter`] lets through,
/// traces the spans [`TelemetryConfig::trace_filter`] lets through (two filters, each replaceable at run
/// time with [`set_filters`]), turns spans into OpenTelemetry spans exported over OTLP when an endpoint
/// is set, makes W3C Trace
/// Context and Baggage the global propagator, lets audit events carry the current trace, and registers a
/// [shutdown handler](crate::shutdown::register) that flushes the exporter.
///
/// Keep the returned guard until the end of `main`: dropping it flushes too.
pub fn init(config: &TelemetryConfig) -> Result<TelemetryGuard, TelemetryError> {
    let vars = std::env::vars_os()
        .map(|(name, value)| (name.to_string_lossy().into_owned(), value.to_string_lossy().into_owned()));
    let Resolved { config, warnings } = resolve_env(config.clone(), vars)?;
    config.validate()?;
    // The filters are checked before anything starts, so that a bad one is reported first.
    filters::parse(filters::Which::Log, &config.log_filter)?;
    filters::parse(filters::Which::Trace, &config.trace_filter)?;
    let provider = tracer_provider(&config)?;
    let metrics = MetricsExporter::start(&config)?;
    PROMETHEUS_ENDPOINT.store(config.metrics_exporters.prometheus, Ordering::Relaxed);

    let colours = log_colours(std::io::stdout().is_terminal(), |name| std::env::var_os(name));
    let (subscriber, log_reload, trace_reload) = layered(&config, &provider, std::io::stdout, colours)?;
    tracing::subscriber::set_global_default(subscriber).map_err(|_| TelemetryError::AlreadyInstalled)?;
    filters::install(log_reload, trace_reload);

    opentelemetry::global::set_tracer_provider(provider.clone());
    opentelemetry::global::set_text_map_propagator(crate::propagation::propagator());
    crate::audit::set_trace_source(current_trace_ids);
    install_exemplars(&config);
    crate::telemetry::export::spans_dropped();
    for warning in &warnings {
        tracing::warn!(target: "hardened::telemetry", "{warning}");
    }

    let flusher = Arc::new(Flusher::new(provider, config.flush_timeout).with_metrics(metrics));
    let handler_flusher = Arc::clone(&flusher);
    crate::shutdown::register(
        "telemetry",
        crate::shutdown::priority::TELEMETRY,
        // The spans' flush, then the last metrics export, each bounded by its timeout.
        config.flush_timeout
            + if config.metrics_url().is_some() { config.metric_export_timeout } else { Duration::ZERO }
            + Duration::from_secs(1),
        move || {
            let flusher = Arc::clone(&handler_flusher);
            async move {
                // The flush blocks on the processor's thread, so it runs where blocking is allowed.
                tokio::task::spawn_blocking(move || flusher.shutdown())
                    .await
                    .map_err(|error| format!("the flush task failed: {error}"))?
                    .map_err(|error| error.to_string())
            }
        },
    );
    tracing::debug!(
        target: "hardened::telemetry",
        service = %config.service_name,
        export = config.traces_url().as_deref().unwrap_or("off"),
        metrics = %config.metrics_exporters,
        protocol = %config.protocol,
        sampler = %config.sampler,
        ratio = config.sample_ratio,
        "telemetry initialised"
    );
    Ok(TelemetryGuard { flusher })
}

/// Whether `/metrics` answers: the configuration's [`MetricsExporters::prometheus`], as [`init`] found it.
static PROMETHEUS_ENDPOINT: AtomicBool = AtomicBool::new(true);

/// The subscriber [`init`] installs for `config`, taken as it is (the `OTEL_*` variables and `RUST_LOG`
/// are not read), with its log lines written to `writer` without colours, and its spans given to
/// `provider` when `config` sets an OTLP endpoint, else given ids only ([`trace_ids_layer`]). Its two
/// filters are `config`'s, fixed: [`set_filters`] changes those of the subscriber `init` installed.
///
/// For measuring what spans and log lines cost under the subscriber a service runs with, installed for a
/// scope with [`tracing::subscriber::with_default`]:
///
/// ```
/// use hardened::telemetry::{self, TelemetryConfig};
///
/// let config = TelemetryConfig::default();
/// let provider = telemetry::tracer_provider(&config)?;
/// let subscriber = telemetry::subscriber(&config, &provider, std::io::sink)?;
/// tracing::subscriber::with_default(subscriber, || {
///     let _span = tracing::info_span!("work").entered();
///     assert!(telemetry::current_trace_ids().is_some());
/// });
/// # Ok::<(), telemetry::TelemetryError>(())
/// ```
pub fn subscriber<W>(
    config: &TelemetryConfig,
    provider: &SdkTracerProvider,
    writer: W,
) -> Result<impl tracing::Subscriber + for<'span> LookupSpan<'span> + Send + Sync + 'static + use<W>, TelemetryError>
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    config.validate()?;
    let (subscriber, _, _) = layered(config, provider, writer, false)?;
    Ok(subscriber)
}

/// The registry with the log layer and the spans' layer, each under its own filter, and what
/// [`filters::install`] keeps to replace the two filters.
fn layered<W>(
    config: &TelemetryConfig,
    provider: &SdkTracerProvider,
    writer: W,
    colours: bool,
) -> Result<
    (
        impl tracing::Subscriber + for<'span> LookupSpan<'span> + Send + Sync + 'static + use<W>,
        filters::ReloadableFilter,
        filters::ReloadableFilter,
    ),
    TelemetryError,
>
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    let (log_filter, log_reload) = filters::reloadable(filters::Which::Log, &config.log_filter)?;
    let (trace_filter, trace_reload) = filters::reloadable(filters::Which::Trace, &config.trace_filter)?;
    // Without an exporter, spans need their ids only: the SDK's spans would record attributes and events
    // that nothing reads.
    let (spans, span_steps): (Box<dyn Layer<_> + Send + Sync>, _) = if config.traces_url().is_some() {
        (Box::new(otel_spans(provider)), Steps::All)
    } else {
        (Box::new(span_ids(config)), Steps::EnterExit)
    };
    // A filter of each layer's own: the log's decides the lines, the trace's the spans, so that a quiet
    // log still traces and propagates. The spans' is one filter, the export stack's exclusion and the
    // trace filter together: a per-layer filter looks each span up at each step of its life (entered,
    // exited, closed), once a filter, and each layer is told only of the steps it or its filter uses.
    let log_life = SpanLife::new(Steps::None, log_filter.follows_spans_flag());
    let spans_life = SpanLife::new(span_steps, trace_filter.follows_spans_flag());
    let log = Around::new(log_layer_with(config.log_format, writer, colours).with_filter(log_filter), log_life);
    let spans = Around::new(spans.with_filter(outside_export_stack().and(trace_filter)), spans_life);
    let subscriber = Registry::default().with(log).with(spans);
    Ok((subscriber, log_reload, trace_reload))
}

/// Whether the Prometheus endpoint is on: true unless [`init`] was told to export metrics over OTLP only
/// (or not at all), in which case the ops router's `/metrics` answers 404.
#[must_use]
pub fn prometheus_endpoint_enabled() -> bool {
    PROMETHEUS_ENDPOINT.load(Ordering::Relaxed)
}

/// Flushes and shuts the tracer provider (and the OTLP metrics export, if any) down once, however many
/// times it is asked to.
#[derive(Debug)]
struct Flusher {
    provider: Mutex<Option<SdkTracerProvider>>,
    metrics: Option<MetricsExporter>,
    timeout: Duration,
    done: AtomicBool,
}

impl Flusher {
    fn new(provider: SdkTracerProvider, timeout: Duration) -> Self {
        Flusher { provider: Mutex::new(Some(provider)), metrics: None, timeout, done: AtomicBool::new(false) }
    }

    fn with_metrics(self, metrics: Option<MetricsExporter>) -> Self {
        Flusher { metrics, ..self }
    }

    fn provider(&self) -> Option<SdkTracerProvider> {
        self.provider.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn flush(&self) -> Result<(), TelemetryError> {
        let spans = match self.provider() {
            Some(provider) => provider.force_flush().map_err(|error| TelemetryError::Flush(error.to_string())),
            None => Ok(()),
        };
        let metrics = self.metrics.as_ref().map_or(Ok(()), MetricsExporter::export_now);
        spans.and(metrics)
    }

    fn shutdown(&self) -> Result<(), TelemetryError> {
        if self.done.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let spans = match self.provider.lock().unwrap_or_else(PoisonError::into_inner).take() {
            // Shutting down exports what is queued; a flush first would only export it in two steps.
            Some(provider) => {
                provider.shutdown_with_timeout(self.timeout).map_err(|error| TelemetryError::Flush(error.to_string()))
            }
            None => Ok(()),
        };
        // After the spans: the last metrics export counts the spans that could not be delivered.
        let metrics = self.metrics.as_ref().map_or(Ok(()), MetricsExporter::shutdown);
        spans.and(metrics)
    }
}

/// Keeps telemetry running; dropping it flushes the spans still queued and stops the exporter.
///
/// The shutdown handler [`init`] registers does the same; whichever comes second does nothing.
#[derive(Debug)]
#[must_use = "dropping the guard stops span export"]
pub struct TelemetryGuard {
    flusher: Arc<Flusher>,
}

impl TelemetryGuard {
    /// Exports every finished span now, waiting for the collector (up to the export timeout). Blocks:
    /// call it from a blocking context, such as `tokio::task::spawn_blocking`, inside a runtime.
    pub fn flush(&self) -> Result<(), TelemetryError> {
        self.flusher.flush()
    }

    /// Flushes and stops the exporter; later spans are not exported. A second call does nothing.
    pub fn shutdown(&self) -> Result<(), TelemetryError> {
        self.flusher.shutdown()
    }

    /// The tracer provider, until shutdown; for making spans with the OpenTelemetry API directly.
    #[must_use]
    pub fn provider(&self) -> Option<SdkTracerProvider> {
        self.flusher.provider()
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Err(error) = self.flusher.shutdown() {
            tracing::warn!(target: "hardened::telemetry", %error, "telemetry shutdown failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_export_stack_is_recognised_by_crate() {
        for target in ["h2::proto", "hyper", "hyper_util::client", "tonic::transport", "opentelemetry_sdk", "reqwest"] {
            assert!(is_export_stack(target), "{target}");
        }
        for target in ["tower_http::trace", "my_service::tools", "hardened::telemetry", "hypertext"] {
            assert!(!is_export_stack(target), "{target}");
        }
    }

    #[test]
    fn spans_are_traced_as_the_trace_filter_says_and_never_in_the_export_stack() {
        use tracing::Subscriber as _;

        let config = TelemetryConfig {
            log_filter: "error".to_owned(),
            trace_filter: "info,noisy=warn".to_owned(),
            ..TelemetryConfig::default()
        };
        let provider = tracer_provider(&config).expect("a provider");
        let subscriber = subscriber(&config, &provider, std::io::sink).expect("a subscriber");
        // The level bound is the trace filter's, the more verbose of the two: the export stack's filter
        // sets none of its own.
        assert_eq!(subscriber.max_level_hint(), Some(LevelFilter::INFO));
        tracing::subscriber::with_default(subscriber, || {
            let traced = |span: tracing::Span| {
                let _entered = span.enter();
                current_trace_ids().is_some()
            };
            assert!(traced(tracing::info_span!(target: "my_service::tools", "call")));
            assert!(!traced(tracing::info_span!(target: "hyper::proto", "connection")), "the export stack");
            assert!(!traced(tracing::info_span!(target: "opentelemetry_sdk", "export")), "the export stack");
            assert!(!traced(tracing::info_span!(target: "noisy", "step")), "below the trace filter's level");
            assert!(traced(tracing::warn_span!(target: "noisy", "step")));
            assert!(!traced(tracing::debug_span!(target: "my_service::tools", "detail")));
        });
    }

    /// Log lines written into a shared buffer.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("not poisoned").extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn filters_naming_spans_decide_by_the_spans_entered_under_the_whole_subscriber() {
        let config = TelemetryConfig {
            log_filter: "warn,[wanted]=debug".to_owned(),
            trace_filter: "warn,[traced]=debug".to_owned(),
            ..TelemetryConfig::default()
        };
        let provider = tracer_provider(&config).expect("a provider");
        let captured = Captured::default();
        let writer = {
            let captured = captured.clone();
            move || captured.clone()
        };
        let subscriber = subscriber(&config, &provider, writer).expect("a subscriber");
        tracing::subscriber::with_default(subscriber, || {
            tracing::info_span!("wanted").in_scope(|| tracing::debug!("inside the wanted span"));
            tracing::debug!("outside any span");
            tracing::info_span!("other").in_scope(|| tracing::debug!("inside another span"));

            let traced = |span: tracing::Span| {
                let _entered = span.enter();
                current_trace_ids().is_some()
            };
            assert!(tracing::warn_span!("traced").in_scope(|| traced(tracing::debug_span!("step"))));
            assert!(!traced(tracing::debug_span!("step")), "outside the span the trace filter names");
        });
        let lines = String::from_utf8(captured.0.lock().expect("not poisoned").clone()).expect("text");
        assert!(lines.contains("inside the wanted span"), "{lines}");
        assert!(!lines.contains("outside any span"), "{lines}");
        assert!(!lines.contains("inside another span"), "{lines}");
    }

    #[test]
    fn colours_on_a_terminal_or_when_forced_and_never_against_no_color() {
        let colours = |is_terminal: bool, vars: &[(&str, &str)]| {
            log_colours(is_terminal, |name| {
                vars.iter().find(|(key, _)| *key == name).map(|(_, value)| std::ffi::OsString::from(value))
            })
        };
        assert!(colours(true, &[]));
        assert!(!colours(false, &[]));
        assert!(colours(false, &[("CLICOLOR_FORCE", "1")]));
        assert!(!colours(false, &[("CLICOLOR_FORCE", "0")]));
        assert!(!colours(false, &[("CLICOLOR_FORCE", "")]));
        assert!(!colours(true, &[("NO_COLOR", "1")]));
        assert!(!colours(false, &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]));
        assert!(colours(true, &[("NO_COLOR", "")]), "an empty NO_COLOR is unset");
    }

    #[test]
    fn shutting_down_twice_is_harmless() {
        let flusher =
            Flusher::new(tracer_provider(&TelemetryConfig::default()).expect("no exporter"), Duration::from_secs(1));
        flusher.flush().expect("nothing to flush");
        flusher.shutdown().expect("first shutdown");
        flusher.shutdown().expect("second shutdown does nothing");
        flusher.flush().expect("flushing after shutdown does nothing");
    }
}
