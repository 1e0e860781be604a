//! The subscribers the benchmarks run under: the one `telemetry::init` installs with the development or
//! the production configuration's telemetry, and the same taken apart (the registry alone, its filter,
//! the trace-id layer, the log layer); and a census layer that counts what a message makes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use agent_server::Settings;
use agent_server::serve;
use hardened::telemetry::{self, LogFormat, TelemetryConfig};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::{EnvFilter, FilterExt as _};
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{Layer, Registry, reload};

/// Which configuration's telemetry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Telemetry {
    /// The embedded development configuration: every trace sampled, readable log lines.
    Development,
    /// The production configuration's telemetry: a tenth of the traces sampled, JSON log lines (what
    /// `overhead.sh --env HARDENED_TELEMETRY__SAMPLE_RATIO=0.1 --env HARDENED_TELEMETRY__LOG_FORMAT=json`
    /// runs).
    Production,
}

impl Telemetry {
    pub(crate) const ALL: [Telemetry; 2] = [Telemetry::Development, Telemetry::Production];

    /// The name in benchmark ids and the table.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Telemetry::Development => "development",
            Telemetry::Production => "production",
        }
    }

    /// The telemetry configuration `serve` would run with.
    pub(crate) fn config(self, settings: &Settings) -> TelemetryConfig {
        let mut config = serve::telemetry_config(settings);
        if self == Telemetry::Production {
            config.sample_ratio = 0.1;
            config.log_format = LogFormat::Json;
        }
        config
    }

    /// The subscriber `telemetry::init` installs with this telemetry, its log lines written to
    /// `io::sink`; and what `init` sets beside it: audit events carry the current trace, and calls keep
    /// exemplars as the configuration says.
    pub(crate) fn subscriber(
        self,
        settings: &Settings,
    ) -> impl Subscriber + for<'span> LookupSpan<'span> + Send + Sync + 'static {
        let config = self.config(settings);
        hardened::audit::set_trace_source(telemetry::current_trace_ids);
        telemetry::install_exemplars(&config);
        let provider = telemetry::tracer_provider(&config).expect("no exporter to build");
        telemetry::subscriber(&config, &provider, std::io::sink).expect("a valid configuration")
    }
}

/// The filter `init` puts on each of its two layers: the configuration's, replaceable at run time.
fn filter<S: Subscriber>(text: &str) -> reload::Layer<EnvFilter, S> {
    reload::Layer::new(EnvFilter::try_new(text).expect("a valid filter")).0
}

/// The registry alone: every span created and closed in it, no layer.
pub(crate) fn registry() -> Registry {
    Registry::default()
}

/// The registry and a layer that does nothing, under the trace filter: what the filter adds.
pub(crate) fn filtered(config: &TelemetryConfig) -> impl Subscriber + Send + Sync + 'static {
    Registry::default().with(Nothing.with_filter(filter(&config.trace_filter)))
}

/// The registry and the trace-id layer under its filter, as `init` sets it up without an OTLP endpoint.
pub(crate) fn trace_ids(config: &TelemetryConfig) -> impl Subscriber + Send + Sync + 'static {
    Registry::default().with(telemetry::trace_ids_layer(config).with_filter(filter(&config.trace_filter)))
}

/// The registry and the log layer under its filter, its lines written to `io::sink`.
pub(crate) fn log(config: &TelemetryConfig) -> impl Subscriber + Send + Sync + 'static {
    Registry::default()
        .with(telemetry::log_layer(config.log_format, std::io::sink).with_filter(filter(&config.log_filter)))
}

/// A layer that implements nothing.
#[derive(Debug)]
struct Nothing;

impl<S: Subscriber> Layer<S> for Nothing {}

/// Counts what passes either filter of `config`, as the registry sees it: spans created (by name),
/// spans entered, and events.
#[derive(Debug, Clone, Default)]
pub(crate) struct Census(Arc<Mutex<Counts>>);

/// What a [`Census`] counted.
#[derive(Debug, Clone, Default)]
pub(crate) struct Counts {
    pub(crate) spans: BTreeMap<&'static str, u64>,
    pub(crate) entered: u64,
    pub(crate) events: u64,
}

impl Census {
    /// The census as a layer, under the union of `config`'s two filters, so that adding it changes no
    /// decision of the subscriber it is added to.
    pub(crate) fn layer<S>(&self, config: &TelemetryConfig) -> impl Layer<S> + Send + Sync + 'static
    where
        S: Subscriber + for<'span> LookupSpan<'span>,
    {
        let either = EnvFilter::try_new(&config.log_filter)
            .expect("a valid filter")
            .or(EnvFilter::try_new(&config.trace_filter).expect("a valid filter"));
        self.clone().with_filter(either)
    }

    /// What was counted since the last take, and counting from zero again.
    pub(crate) fn take(&self) -> Counts {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn count(&self, update: impl FnOnce(&mut Counts)) {
        update(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

impl<S: Subscriber> Layer<S> for Census {
    fn on_new_span(&self, attributes: &Attributes<'_>, _: &Id, _: Context<'_, S>) {
        self.count(|counts| *counts.spans.entry(attributes.metadata().name()).or_default() += 1);
    }

    fn on_enter(&self, _: &Id, _: Context<'_, S>) {
        self.count(|counts| counts.entered += 1);
    }

    fn on_event(&self, _: &Event<'_>, _: Context<'_, S>) {
        self.count(|counts| counts.events += 1);
    }
}
