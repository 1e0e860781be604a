//! What [`init`](super::init) sets up, and how the standard `OTEL_*` variables override it.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::TelemetryError;

/// What the telemetry of a service looks like: who it is, where spans go, how many are kept, and how logs
/// are written.
///
/// A plain data struct: every field has a default, and [`resolve_env`] applies the standard `OTEL_*`
/// variables over it (the environment wins).
///
/// ```
/// use hardened::telemetry::{Protocol, TelemetryConfig};
///
/// let config = TelemetryConfig {
///     service_name: "checkout".into(),
///     service_version: Some("1.4.2".into()),
///     environment: "production".into(),
///     otlp_endpoint: Some("http://otel-collector:4317".into()),
///     protocol: Protocol::Grpc,
///     sample_ratio: 0.1,
///     ..TelemetryConfig::default()
/// };
/// assert_eq!(config.log_filter, "info");
/// ```
///
/// Its `Debug` masks the secrets of the endpoints as [`redact::urls`](crate::redact::urls) does.
#[derive(Clone, PartialEq)]
pub struct TelemetryConfig {
    /// `service.name`. Default: `unknown_service:<executable name>`, as the OpenTelemetry specification
    /// says; `OTEL_SERVICE_NAME` overrides it.
    pub service_name: String,
    /// `service.version`. Default: none (the attribute is left out); set it to
    /// `env!("CARGO_PKG_VERSION")` of the application.
    pub service_version: Option<String>,
    /// `deployment.environment`, such as `development`, `staging` or `production`. Default: `development`.
    pub environment: String,
    /// `service.instance.id`, telling replicas apart. Default: a fresh UUID (v7) per process.
    pub instance_id: String,
    /// The OTLP collector's base URL, like `OTEL_EXPORTER_OTLP_ENDPOINT`: used as it is for gRPC
    /// (`http://localhost:4317`), with `/v1/traces` appended for HTTP/protobuf (`http://localhost:4318`).
    /// Default: none, so spans are not exported (logs are still written).
    pub otlp_endpoint: Option<String>,
    /// The full URL for traces, like `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`: used as it is for both
    /// protocols, and ahead of [`otlp_endpoint`](Self::otlp_endpoint). Default: none.
    pub otlp_traces_endpoint: Option<String>,
    /// How spans travel to the collector. Default: [`Protocol::Grpc`].
    pub protocol: Protocol,
    /// Which spans are recorded. Default: [`TraceSampler::ParentBasedTraceIdRatio`]: a trace continued from
    /// a caller keeps the caller's decision, a new trace is kept with probability
    /// [`sample_ratio`](Self::sample_ratio).
    pub sampler: TraceSampler,
    /// The fraction of new traces kept by the ratio samplers, from 0.0 to 1.0. Default: 1.0, right for
    /// development; 0.1 is a usual start in production.
    pub sample_ratio: f64,
    /// How log lines are written to standard output. Default: [`LogFormat::Readable`].
    pub log_format: LogFormat,
    /// Which events and spans are written to the log, in `EnvFilter` syntax (`info`,
    /// `info,my_service=debug`). Default: `info`; `RUST_LOG` overrides it. It does not decide what is
    /// traced: quieting the log (`warn`) keeps spans, their ids and their propagation.
    pub log_filter: String,
    /// Which spans (and the events recorded in them) are traced: given ids, propagated to outbound calls
    /// and exported, in `EnvFilter` syntax. Default: `info`; `HARDENED_TELEMETRY__TRACE_FILTER` overrides
    /// it. Both filters can be changed at run time ([`set_filters`](super::set_filters)).
    pub trace_filter: String,
    /// How long one export may take before it is abandoned and its spans dropped. Default: 10 seconds.
    pub export_timeout: Duration,
    /// How long finished spans wait to be exported together. Default: 5 seconds.
    pub batch_delay: Duration,
    /// How many finished spans wait for export at most; past that, new ones are dropped. Default: 2048.
    pub max_queue_size: usize,
    /// How long flushing at shutdown may take. Default: 5 seconds.
    pub flush_timeout: Duration,
    /// Further resource attributes, such as `k8s.pod.name`. Default: none. Keys set by the fields above
    /// (`service.name`, ...) are taken from the fields.
    pub resource_attributes: BTreeMap<String, String>,
    /// Where metrics go: `/metrics` for Prometheus to scrape, OTLP, both or neither. Default: Prometheus
    /// only; `OTEL_METRICS_EXPORTER` overrides it.
    pub metrics_exporters: MetricsExporters,
    /// The full URL for metrics, like `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`: used as it is for both
    /// protocols, ahead of [`otlp_endpoint`](Self::otlp_endpoint) (to which HTTP/protobuf appends
    /// `/v1/metrics`). Default: none.
    pub otlp_metrics_endpoint: Option<String>,
    /// How metrics travel to the collector. Default: none, the [`protocol`](Self::protocol) of spans.
    pub metrics_protocol: Option<Protocol>,
    /// How often metrics are exported over OTLP. Default: 60 seconds, as the OpenTelemetry SDKs.
    pub metric_export_interval: Duration,
    /// How long one metrics export may take before it is abandoned. Default: 30 seconds.
    pub metric_export_timeout: Duration,
    /// Whether counters and histograms are exported as totals since the start or as the change since the
    /// last export. Default: [`MetricsTemporality::Cumulative`].
    pub metrics_temporality: MetricsTemporality,
    /// Whether each bucket of the call duration histogram keeps the trace of its latest sampled call as
    /// an exemplar (see [`metrics::exemplars`](crate::metrics::exemplars)). Kept only when the sampler
    /// can sample at all. Default: on; `OTEL_METRICS_EXEMPLAR_FILTER=always_off` turns it off.
    pub exemplars: bool,
}

impl fmt::Debug for TelemetryConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Taken apart, so that a new field is a compile error here rather than missing from the output.
        let TelemetryConfig {
            service_name,
            service_version,
            environment,
            instance_id,
            otlp_endpoint,
            otlp_traces_endpoint,
            protocol,
            sampler,
            sample_ratio,
            log_format,
            log_filter,
            trace_filter,
            export_timeout,
            batch_delay,
            max_queue_size,
            flush_timeout,
            resource_attributes,
            metrics_exporters,
            otlp_metrics_endpoint,
            metrics_protocol,
            metric_export_interval,
            metric_export_timeout,
            metrics_temporality,
            exemplars,
        } = self;
        f.debug_struct("TelemetryConfig")
            .field("service_name", service_name)
            .field("service_version", service_version)
            .field("environment", environment)
            .field("instance_id", instance_id)
            .field("otlp_endpoint", &otlp_endpoint.as_deref().map(crate::redact::urls))
            .field("otlp_traces_endpoint", &otlp_traces_endpoint.as_deref().map(crate::redact::urls))
            .field("protocol", protocol)
            .field("sampler", sampler)
            .field("sample_ratio", sample_ratio)
            .field("log_format", log_format)
            .field("log_filter", log_filter)
            .field("trace_filter", trace_filter)
            .field("export_timeout", export_timeout)
            .field("batch_delay", batch_delay)
            .field("max_queue_size", max_queue_size)
            .field("flush_timeout", flush_timeout)
            .field("resource_attributes", resource_attributes)
            .field("metrics_exporters", metrics_exporters)
            .field("otlp_metrics_endpoint", &otlp_metrics_endpoint.as_deref().map(crate::redact::urls))
            .field("metrics_protocol", metrics_protocol)
            .field("metric_export_interval", metric_export_interval)
            .field("metric_export_timeout", metric_export_timeout)
            .field("metrics_temporality", metrics_temporality)
            .field("exemplars", exemplars)
            .finish()
    }
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            service_name: default_service_name(),
            service_version: None,
            environment: "development".to_owned(),
            instance_id: uuid::Uuid::now_v7().to_string(),
            otlp_endpoint: None,
            otlp_traces_endpoint: None,
            protocol: Protocol::Grpc,
            sampler: TraceSampler::ParentBasedTraceIdRatio,
            sample_ratio: 1.0,
            log_format: LogFormat::Readable,
            log_filter: "info".to_owned(),
            trace_filter: "info".to_owned(),
            export_timeout: Duration::from_secs(10),
            batch_delay: Duration::from_secs(5),
            max_queue_size: 2048,
            flush_timeout: Duration::from_secs(5),
            resource_attributes: BTreeMap::new(),
            metrics_exporters: MetricsExporters::PROMETHEUS,
            otlp_metrics_endpoint: None,
            metrics_protocol: None,
            metric_export_interval: Duration::from_mins(1),
            metric_export_timeout: Duration::from_secs(30),
            metrics_temporality: MetricsTemporality::Cumulative,
            exemplars: true,
        }
    }
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|value| !value.is_empty())
}

fn default_service_name() -> String {
    let executable =
        std::env::current_exe().ok().and_then(|path| path.file_stem().map(|stem| stem.to_string_lossy().into_owned()));
    match executable {
        Some(name) => format!("unknown_service:{name}"),
        None => "unknown_service".to_owned(),
    }
}

impl TelemetryConfig {
    /// The URL spans are sent to, if export is on: the traces endpoint as it is, else the base endpoint
    /// (with `/v1/traces` appended for HTTP/protobuf).
    #[must_use]
    pub fn traces_url(&self) -> Option<String> {
        if let Some(url) = non_empty(self.otlp_traces_endpoint.as_deref()) {
            return Some(url.to_owned());
        }
        let base = non_empty(self.otlp_endpoint.as_deref())?;
        Some(match self.protocol {
            Protocol::Grpc => base.to_owned(),
            Protocol::HttpProtobuf => format!("{}/v1/traces", base.trim_end_matches('/')),
        })
    }

    /// The URL metrics are sent to over OTLP, if that export is on: the metrics endpoint as it is, else
    /// the base endpoint (with `/v1/metrics` appended for HTTP/protobuf).
    #[must_use]
    pub fn metrics_url(&self) -> Option<String> {
        if !self.metrics_exporters.otlp {
            return None;
        }
        if let Some(url) = non_empty(self.otlp_metrics_endpoint.as_deref()) {
            return Some(url.to_owned());
        }
        let base = non_empty(self.otlp_endpoint.as_deref())?;
        Some(match self.metrics_protocol() {
            Protocol::Grpc => base.to_owned(),
            Protocol::HttpProtobuf => format!("{}/v1/metrics", base.trim_end_matches('/')),
        })
    }

    /// The protocol of metrics: [`metrics_protocol`](Self::metrics_protocol), else that of spans.
    #[must_use]
    pub fn metrics_protocol(&self) -> Protocol {
        self.metrics_protocol.unwrap_or(self.protocol)
    }

    /// Whether exemplars are kept: asked for, and under a sampler that can sample a call (a parent-based
    /// sampler can, from a sampled caller, whatever its own ratio).
    #[must_use]
    pub fn keeps_exemplars(&self) -> bool {
        self.exemplars
            && match self.sampler {
                TraceSampler::AlwaysOff => false,
                TraceSampler::TraceIdRatio => self.sample_ratio > 0.0,
                _ => true,
            }
    }

    /// Checks the values no type can rule out: the ratio's range and a non-empty service name.
    pub fn validate(&self) -> Result<(), TelemetryError> {
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            return Err(TelemetryError::InvalidSetting {
                setting: "sample_ratio",
                value: self.sample_ratio.to_string(),
                allowed: "a number from 0.0 to 1.0",
            });
        }
        if self.service_name.trim().is_empty() {
            return Err(TelemetryError::InvalidSetting {
                setting: "service_name",
                value: String::new(),
                allowed: "a non-empty name",
            });
        }
        if self.metric_export_interval.is_zero() {
            return Err(TelemetryError::InvalidSetting {
                setting: "metric_export_interval",
                value: "0".to_owned(),
                allowed: "a positive duration",
            });
        }
        if self.max_queue_size == 0 {
            return Err(TelemetryError::InvalidSetting {
                setting: "max_queue_size",
                value: "0".to_owned(),
                allowed: "a positive number of spans",
            });
        }
        Ok(())
    }
}

/// A value that is not one of those allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not one of {}", list(allowed))]
pub struct UnknownValue {
    /// What was given.
    pub value: String,
    /// The values allowed.
    pub allowed: &'static [&'static str],
}

/// `a`, `b`, `c`
fn list(values: &[&str]) -> String {
    values.iter().map(|value| format!("`{value}`")).collect::<Vec<_>>().join(", ")
}

macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every allowed value, as written in configuration.
            pub const ALLOWED: &'static [&'static str] = &[$($text),+];

            /// The value as written in configuration and in the `OTEL_*` variables.
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;

            fn from_str(value: &str) -> Result<Self, Self::Err> {
                match value.trim().to_ascii_lowercase().as_str() {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownValue {
                        value: value.to_owned(),
                        allowed: Self::ALLOWED,
                    }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_enum! {
    /// The OTLP transport.
    Protocol {
        /// OTLP over gRPC, usually port 4317.
        Grpc = "grpc",
        /// OTLP over HTTP with protobuf bodies, usually port 4318.
        HttpProtobuf = "http/protobuf",
    }
}

named_enum! {
    /// How log lines are written.
    LogFormat {
        /// One human-readable line per event, coloured on a terminal.
        Readable = "readable",
        /// One JSON object per event, with the current span's fields, for log collectors.
        Json = "json",
    }
}

named_enum! {
    /// Which spans are recorded, named as `OTEL_TRACES_SAMPLER` names them.
    TraceSampler {
        /// Every span.
        AlwaysOn = "always_on",
        /// No span.
        AlwaysOff = "always_off",
        /// A fraction of traces, decided from the trace id, whatever the parent decided.
        TraceIdRatio = "traceidratio",
        /// The parent's decision; every new trace.
        ParentBasedAlwaysOn = "parentbased_always_on",
        /// The parent's decision; no new trace.
        ParentBasedAlwaysOff = "parentbased_always_off",
        /// The parent's decision; a fraction of new traces.
        ParentBasedTraceIdRatio = "parentbased_traceidratio",
    }
}

named_enum! {
    /// What OTLP metrics carry for counters and histograms, as
    /// `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE` names it. Gauges are always their value now.
    MetricsTemporality {
        /// Totals since the process started: what Prometheus and most collectors expect.
        Cumulative = "cumulative",
        /// The change since the last export: what some backends (Datadog, Dynatrace) prefer.
        Delta = "delta",
        /// As `delta` for counters and histograms, the only instruments of which this makes a difference.
        LowMemory = "lowmemory",
    }
}

/// Where metrics are exported, as `OTEL_METRICS_EXPORTER` lists them: `prometheus`, `otlp`, both
/// (`prometheus,otlp`) or `none`.
///
/// ```
/// use hardened::telemetry::MetricsExporters;
///
/// let both: MetricsExporters = "otlp, prometheus".parse()?;
/// assert!(both.otlp && both.prometheus);
/// assert_eq!("none".parse::<MetricsExporters>()?, MetricsExporters::NONE);
/// assert!("console".parse::<MetricsExporters>().is_err());
/// # Ok::<(), hardened::telemetry::UnknownValue>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MetricsExporters {
    /// `/metrics` answers with the Prometheus text exposition.
    pub prometheus: bool,
    /// Metrics are pushed to the OTLP collector every [`TelemetryConfig::metric_export_interval`].
    pub otlp: bool,
}

impl MetricsExporters {
    /// The names allowed in the list.
    pub const ALLOWED: &'static [&'static str] = &["prometheus", "otlp", "none"];
    /// `/metrics` only.
    pub const PROMETHEUS: MetricsExporters = MetricsExporters { prometheus: true, otlp: false };
    /// OTLP only.
    pub const OTLP: MetricsExporters = MetricsExporters { prometheus: false, otlp: true };
    /// Both.
    pub const BOTH: MetricsExporters = MetricsExporters { prometheus: true, otlp: true };
    /// Neither.
    pub const NONE: MetricsExporters = MetricsExporters { prometheus: false, otlp: false };
}

impl FromStr for MetricsExporters {
    type Err = UnknownValue;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let mut exporters = MetricsExporters::NONE;
        for name in value.split(',').map(|name| name.trim().to_ascii_lowercase()) {
            match name.as_str() {
                "prometheus" => exporters.prometheus = true,
                "otlp" => exporters.otlp = true,
                "none" => {}
                _ => return Err(UnknownValue { value: value.to_owned(), allowed: Self::ALLOWED }),
            }
        }
        Ok(exporters)
    }
}

impl fmt::Display for MetricsExporters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match (self.prometheus, self.otlp) {
            (true, true) => "prometheus,otlp",
            (true, false) => "prometheus",
            (false, true) => "otlp",
            (false, false) => "none",
        })
    }
}

/// A configuration with the environment applied, and what was skipped on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// The configuration to use.
    pub config: TelemetryConfig,
    /// Entries that were malformed and skipped (of `OTEL_RESOURCE_ATTRIBUTES`), for logging once logging
    /// is set up.
    pub warnings: Vec<String>,
}

/// Applies the standard OpenTelemetry variables among `vars` over `config`; a variable that is set wins
/// over the field it overrides, and an empty one counts as unset.
///
/// | variable | field |
/// | --- | --- |
/// | `OTEL_SERVICE_NAME` | `service_name` (ahead of `service.name` in `OTEL_RESOURCE_ATTRIBUTES`) |
/// | `OTEL_RESOURCE_ATTRIBUTES` | `key=value,...`, percent-decoded; `service.name`, `service.version`, `service.instance.id` and `deployment.environment` set their fields, other keys go to `resource_attributes` |
/// | `OTEL_EXPORTER_OTLP_ENDPOINT` | `otlp_endpoint` |
/// | `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` | `otlp_traces_endpoint` |
/// | `OTEL_EXPORTER_OTLP_PROTOCOL`, `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` | `protocol`: `grpc` or `http/protobuf` |
/// | `OTEL_EXPORTER_OTLP_TIMEOUT`, `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT` | `export_timeout`, in milliseconds |
/// | `OTEL_TRACES_SAMPLER` | `sampler` |
/// | `OTEL_TRACES_SAMPLER_ARG` | `sample_ratio`, from 0 to 1 |
/// | `OTEL_BSP_SCHEDULE_DELAY` | `batch_delay`, in milliseconds |
/// | `OTEL_BSP_MAX_QUEUE_SIZE` | `max_queue_size` |
/// | `OTEL_TRACES_EXPORTER` | `none` turns export off; `otlp` is the only exporter |
/// | `OTEL_SDK_DISABLED` | `true` turns export off |
/// | `OTEL_METRICS_EXEMPLAR_FILTER` | `exemplars`: `always_off` turns them off; `trace_based` and `always_on` keep them (of sampled calls only, as an exemplar without a trace leads nowhere) |
/// | `RUST_LOG` | `log_filter` |
/// | `HARDENED_TELEMETRY__TRACE_FILTER` | `trace_filter` (the configuration's own variable for `[telemetry] trace_filter`) |
/// | `OTEL_METRICS_EXPORTER` | `metrics_exporters`: `prometheus`, `otlp`, both comma-separated, or `none` |
/// | `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` | `otlp_metrics_endpoint` |
/// | `OTEL_EXPORTER_OTLP_METRICS_PROTOCOL` | `metrics_protocol` |
/// | `OTEL_METRIC_EXPORT_INTERVAL` | `metric_export_interval`, in milliseconds |
/// | `OTEL_METRIC_EXPORT_TIMEOUT`, `OTEL_EXPORTER_OTLP_METRICS_TIMEOUT` | `metric_export_timeout`, in milliseconds |
/// | `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE` | `metrics_temporality`: `cumulative`, `delta` or `lowmemory` |
///
/// A value that cannot be used is an error naming the variable, the value and what is allowed. A
/// malformed entry of `OTEL_RESOURCE_ATTRIBUTES` is skipped and reported in [`Resolved::warnings`], as the
/// specification asks.
///
/// ```
/// use hardened::telemetry::{Protocol, TelemetryConfig, resolve_env};
///
/// let vars = [
///     ("OTEL_SERVICE_NAME", "checkout"),
///     ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
///     ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
///     ("OTEL_RESOURCE_ATTRIBUTES", "k8s.pod.name=checkout-7d9,broken"),
/// ];
/// let resolved = resolve_env(TelemetryConfig::default(), vars.map(|(k, v)| (k.to_owned(), v.to_owned())))?;
/// assert_eq!(resolved.config.service_name, "checkout");
/// assert_eq!(resolved.config.protocol, Protocol::HttpProtobuf);
/// assert_eq!(resolved.config.traces_url().as_deref(), Some("http://collector:4318/v1/traces"));
/// assert_eq!(resolved.config.resource_attributes["k8s.pod.name"], "checkout-7d9");
/// assert_eq!(resolved.warnings.len(), 1);
/// # Ok::<(), hardened::telemetry::TelemetryError>(())
/// ```
pub fn resolve_env(
    mut config: TelemetryConfig,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Resolved, TelemetryError> {
    let vars: BTreeMap<String, String> =
        vars.into_iter().filter(|(name, value)| is_relevant(name) && !value.trim().is_empty()).collect();
    let get = |name: &str| vars.get(name).map(|value| value.trim());
    let mut warnings = Vec::new();

    if let Some(attributes) = get("OTEL_RESOURCE_ATTRIBUTES") {
        for (key, value) in parse_resource_attributes(attributes, &mut warnings) {
            match key.as_str() {
                "service.name" => config.service_name = value,
                "service.version" => config.service_version = Some(value),
                "service.instance.id" => config.instance_id = value,
                "deployment.environment" | "deployment.environment.name" => config.environment = value,
                _ => {
                    config.resource_attributes.insert(key, value);
                }
            }
        }
    }
    if let Some(name) = get("OTEL_SERVICE_NAME") {
        name.clone_into(&mut config.service_name);
    }
    if let Some(endpoint) = get("OTEL_EXPORTER_OTLP_ENDPOINT") {
        config.otlp_endpoint = Some(endpoint.to_owned());
    }
    if let Some(endpoint) = get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
        config.otlp_traces_endpoint = Some(endpoint.to_owned());
    }
    for variable in ["OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] {
        if let Some(value) = get(variable) {
            config.protocol = parse_named(variable, value)?;
        }
    }
    for variable in ["OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"] {
        if let Some(value) = get(variable) {
            config.export_timeout = parse_millis(variable, value)?;
        }
    }
    if let Some(value) = get("OTEL_TRACES_SAMPLER") {
        config.sampler = parse_named("OTEL_TRACES_SAMPLER", value)?;
    }
    if let Some(value) = get("OTEL_TRACES_SAMPLER_ARG") {
        config.sample_ratio = value
            .parse::<f64>()
            .ok()
            .filter(|ratio| (0.0..=1.0).contains(ratio))
            .ok_or_else(|| invalid("OTEL_TRACES_SAMPLER_ARG", value, "a number from 0 to 1"))?;
    }
    if let Some(value) = get("OTEL_BSP_SCHEDULE_DELAY") {
        config.batch_delay = parse_millis("OTEL_BSP_SCHEDULE_DELAY", value)?;
    }
    if let Some(value) = get("OTEL_BSP_MAX_QUEUE_SIZE") {
        config.max_queue_size = value
            .parse::<usize>()
            .ok()
            .filter(|size| *size > 0)
            .ok_or_else(|| invalid("OTEL_BSP_MAX_QUEUE_SIZE", value, "a positive whole number"))?;
    }
    let exporter_off = match get("OTEL_TRACES_EXPORTER") {
        None => false,
        Some(value) => match value.to_ascii_lowercase().as_str() {
            "otlp" => false,
            "none" => true,
            _ => return Err(invalid("OTEL_TRACES_EXPORTER", value, "`otlp` or `none`")),
        },
    };
    let sdk_off = match get("OTEL_SDK_DISABLED") {
        None => false,
        Some(value) => match value.to_ascii_lowercase().as_str() {
            "true" => true,
            "false" => false,
            _ => return Err(invalid("OTEL_SDK_DISABLED", value, "`true` or `false`")),
        },
    };
    apply_metrics_env(&mut config, &get)?;
    if exporter_off && !sdk_off {
        // Spans only: metrics keep the base endpoint they would have used.
        config.otlp_metrics_endpoint = config.metrics_url().or(config.otlp_metrics_endpoint);
    }
    if exporter_off || sdk_off {
        config.otlp_endpoint = None;
        config.otlp_traces_endpoint = None;
    }
    if sdk_off {
        config.metrics_exporters.otlp = false;
    }
    if let Some(filter) = get("RUST_LOG") {
        filter.clone_into(&mut config.log_filter);
    }
    if let Some(filter) = get(TRACE_FILTER_VARIABLE) {
        filter.clone_into(&mut config.trace_filter);
    }
    Ok(Resolved { config, warnings })
}

/// The variable that sets the trace filter: the configuration's for `[telemetry] trace_filter`.
const TRACE_FILTER_VARIABLE: &str = "HARDENED_TELEMETRY__TRACE_FILTER";
/// The `OTEL_*` variables of metrics export.
fn apply_metrics_env<'a>(
    config: &mut TelemetryConfig,
    get: &impl Fn(&str) -> Option<&'a str>,
) -> Result<(), TelemetryError> {
    if let Some(value) = get("OTEL_METRICS_EXPORTER") {
        config.metrics_exporters = parse_named("OTEL_METRICS_EXPORTER", value)?;
    }
    if let Some(endpoint) = get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") {
        config.otlp_metrics_endpoint = Some(endpoint.to_owned());
    }
    if let Some(value) = get("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL") {
        config.metrics_protocol = Some(parse_named("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", value)?);
    }
    if let Some(value) = get("OTEL_METRIC_EXPORT_INTERVAL") {
        config.metric_export_interval = parse_millis("OTEL_METRIC_EXPORT_INTERVAL", value)?;
    }
    for variable in ["OTEL_METRIC_EXPORT_TIMEOUT", "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT"] {
        if let Some(value) = get(variable) {
            config.metric_export_timeout = parse_millis(variable, value)?;
        }
    }
    if let Some(value) = get("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE") {
        config.metrics_temporality = parse_named("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", value)?;
    }
    if let Some(value) = get("OTEL_METRICS_EXEMPLAR_FILTER") {
        config.exemplars = match value.to_ascii_lowercase().as_str() {
            "always_off" => false,
            "trace_based" | "always_on" => true,
            _ => {
                return Err(invalid(
                    "OTEL_METRICS_EXEMPLAR_FILTER",
                    value,
                    "`always_on`, `always_off` or `trace_based`",
                ));
            }
        };
    }
    Ok(())
}

fn is_relevant(name: &str) -> bool {
    name.starts_with("OTEL_") || name == "RUST_LOG" || name == TRACE_FILTER_VARIABLE
}

fn invalid(variable: &str, value: &str, allowed: &str) -> TelemetryError {
    TelemetryError::InvalidVariable {
        variable: variable.to_owned(),
        value: value.to_owned(),
        allowed: allowed.to_owned(),
    }
}

fn parse_named<T: FromStr<Err = UnknownValue>>(variable: &str, value: &str) -> Result<T, TelemetryError> {
    value.parse().map_err(|error: UnknownValue| invalid(variable, value, &format!("one of {}", list(error.allowed))))
}

fn parse_millis(variable: &str, value: &str) -> Result<Duration, TelemetryError> {
    value
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| invalid(variable, value, "a whole number of milliseconds"))
}

/// The entries of `OTEL_RESOURCE_ATTRIBUTES`: `key=value` pairs separated by commas, both sides
/// percent-decoded and trimmed. An entry without `=`, with an empty key or with a broken escape is skipped
/// with a warning; the later of two equal keys wins.
pub(super) fn parse_resource_attributes(text: &str, warnings: &mut Vec<String>) -> Vec<(String, String)> {
    let mut attributes = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|entry| !entry.is_empty()) {
        let Some((key, value)) = entry.split_once('=') else {
            warnings.push(format!("`OTEL_RESOURCE_ATTRIBUTES` entry `{entry}` has no `=`; skipped"));
            continue;
        };
        match (percent_decode(key.trim()), percent_decode(value.trim())) {
            (Some(key), Some(value)) if !key.is_empty() => attributes.push((key, value)),
            (Some(key), Some(_)) if key.is_empty() => {
                warnings.push(format!("`OTEL_RESOURCE_ATTRIBUTES` entry `{entry}` has an empty key; skipped"));
            }
            _ => warnings.push(format!(
                "`OTEL_RESOURCE_ATTRIBUTES` entry `{entry}` has a malformed percent escape or is not UTF-8; skipped"
            )),
        }
    }
    attributes
}

/// Decodes `%XX` escapes; `None` for a broken escape or bytes that are not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = bytes.get(index + 1..index + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            if !hex.bytes().all(|byte| byte.is_ascii_hexdigit()) {
                return None;
            }
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(vars: &[(&str, &str)]) -> Result<Resolved, TelemetryError> {
        resolve_env(TelemetryConfig::default(), vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
    }

    #[test]
    fn without_variables_the_config_is_unchanged() {
        let config = TelemetryConfig::default();
        let resolved = resolve_env(config.clone(), Vec::new()).expect("no variables");
        assert_eq!(resolved.config, config);
        assert!(resolved.warnings.is_empty());
        assert_eq!(config.traces_url(), None, "no endpoint, no export");
    }

    #[test]
    fn the_environment_wins_over_the_config() {
        let config = TelemetryConfig {
            service_name: "from-config".into(),
            otlp_endpoint: Some("http://config:4317".into()),
            sample_ratio: 0.5,
            ..TelemetryConfig::default()
        };
        let vars = [
            ("OTEL_SERVICE_NAME", "from-env"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://env:4317"),
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "1500"),
            ("RUST_LOG", "debug"),
            ("UNRELATED", "x"),
        ];
        let resolved =
            resolve_env(config, vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))).expect("valid");
        let config = resolved.config;
        assert_eq!(config.service_name, "from-env");
        assert_eq!(config.traces_url().as_deref(), Some("http://env:4317"));
        assert_eq!(config.sampler, TraceSampler::TraceIdRatio);
        assert!((config.sample_ratio - 0.25).abs() < f64::EPSILON);
        assert_eq!(config.export_timeout, Duration::from_millis(1500));
        assert_eq!(config.log_filter, "debug");
    }

    #[test]
    fn the_traces_endpoint_is_used_as_it_is_and_wins_over_the_base_endpoint() {
        let resolved = resolve(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://base:4318/"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ])
        .expect("valid");
        assert_eq!(resolved.config.traces_url().as_deref(), Some("http://base:4318/v1/traces"));

        let resolved = resolve(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://base:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces:9999/custom"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ])
        .expect("valid");
        assert_eq!(resolved.config.traces_url().as_deref(), Some("http://traces:9999/custom"));
    }

    #[test]
    fn every_sampler_name_is_accepted() {
        for sampler in [
            TraceSampler::AlwaysOn,
            TraceSampler::AlwaysOff,
            TraceSampler::TraceIdRatio,
            TraceSampler::ParentBasedAlwaysOn,
            TraceSampler::ParentBasedAlwaysOff,
            TraceSampler::ParentBasedTraceIdRatio,
        ] {
            let resolved = resolve(&[("OTEL_TRACES_SAMPLER", sampler.as_str())]).expect("a known sampler");
            assert_eq!(resolved.config.sampler, sampler);
        }
    }

    #[test]
    fn invalid_values_name_the_variable_the_value_and_what_is_allowed() {
        let error = resolve(&[("OTEL_TRACES_SAMPLER", "sometimes")]).expect_err("unknown sampler");
        let message = error.to_string();
        assert!(message.contains("OTEL_TRACES_SAMPLER") && message.contains("sometimes"), "{message}");
        assert!(message.contains("parentbased_traceidratio"), "{message}");

        let error = resolve(&[("OTEL_TRACES_SAMPLER_ARG", "1.5")]).expect_err("out of range");
        assert!(error.to_string().contains("from 0 to 1"), "{error}");

        let error = resolve(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")]).expect_err("unsupported");
        assert!(error.to_string().contains("`grpc`, `http/protobuf`"), "{error}");

        let error = resolve(&[("OTEL_EXPORTER_OTLP_TIMEOUT", "10s")]).expect_err("not milliseconds");
        assert!(error.to_string().contains("milliseconds"), "{error}");
    }

    #[test]
    fn resource_attributes_are_percent_decoded_and_malformed_entries_skipped() {
        let resolved = resolve(&[(
            "OTEL_RESOURCE_ATTRIBUTES",
            "team=pay%20ments, service.version=2.0 ,deployment.environment=staging,novalue,=empty,bad=%zz,x=%e2%82%ac",
        )])
        .expect("malformed entries are skipped, not fatal");
        let config = &resolved.config;
        assert_eq!(config.resource_attributes["team"], "pay ments");
        assert_eq!(config.resource_attributes["x"], "€");
        assert_eq!(config.service_version.as_deref(), Some("2.0"));
        assert_eq!(config.environment, "staging");
        assert_eq!(config.resource_attributes.len(), 2, "{:?}", config.resource_attributes);
        assert_eq!(resolved.warnings.len(), 3, "{:?}", resolved.warnings);
    }

    #[test]
    fn the_service_name_variable_wins_over_the_resource_attribute() {
        let resolved =
            resolve(&[("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attributes"), ("OTEL_SERVICE_NAME", "named")])
                .expect("valid");
        assert_eq!(resolved.config.service_name, "named");
        let resolved = resolve(&[("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attributes")]).expect("valid");
        assert_eq!(resolved.config.service_name, "from-attributes");
    }

    #[test]
    fn export_can_be_turned_off_and_empty_values_count_as_unset() {
        let on = [("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317")];
        for off in [("OTEL_SDK_DISABLED", "true"), ("OTEL_TRACES_EXPORTER", "none")] {
            let resolved = resolve(&[on[0], off]).expect("valid");
            assert_eq!(resolved.config.traces_url(), None, "{off:?}");
        }
        let resolved = resolve(&[("OTEL_SERVICE_NAME", "  "), ("OTEL_TRACES_SAMPLER", "")]).expect("empty is unset");
        assert_eq!(resolved.config, TelemetryConfig { ..resolved.config.clone() });
        assert_eq!(resolved.config.sampler, TraceSampler::ParentBasedTraceIdRatio);
        assert!(resolved.config.service_name.starts_with("unknown_service"));
    }

    #[test]
    fn names_round_trip_and_unknown_ones_list_what_is_allowed() {
        for format in [LogFormat::Readable, LogFormat::Json] {
            assert_eq!(format.as_str().parse::<LogFormat>(), Ok(format));
        }
        assert_eq!("GRPC".parse::<Protocol>(), Ok(Protocol::Grpc));
        let error = "xml".parse::<LogFormat>().expect_err("unknown");
        assert_eq!(error.to_string(), "`xml` is not one of `readable`, `json`");
    }

    #[test]
    fn metrics_export_follows_the_standard_variables() {
        let base = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ];
        let resolved = resolve(&base).expect("valid");
        assert_eq!(resolved.config.metrics_url(), None, "Prometheus only unless asked");

        let resolved = resolve(&[base[0], base[1], ("OTEL_METRICS_EXPORTER", "otlp,prometheus")]).expect("valid");
        assert_eq!(resolved.config.metrics_exporters, MetricsExporters::BOTH);
        assert_eq!(resolved.config.metrics_url().as_deref(), Some("http://collector:4318/v1/metrics"));

        let resolved = resolve(&[
            base[0],
            ("OTEL_METRICS_EXPORTER", "otlp"),
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://metrics:4317"),
            ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "grpc"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "5000"),
            ("OTEL_METRIC_EXPORT_TIMEOUT", "2000"),
            ("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "delta"),
        ])
        .expect("valid");
        let config = resolved.config;
        assert_eq!(config.metrics_exporters, MetricsExporters::OTLP);
        assert_eq!(config.metrics_url().as_deref(), Some("http://metrics:4317"));
        assert_eq!(config.metrics_protocol(), Protocol::Grpc);
        assert_eq!(config.metric_export_interval, Duration::from_secs(5));
        assert_eq!(config.metric_export_timeout, Duration::from_secs(2));
        assert_eq!(config.metrics_temporality, MetricsTemporality::Delta);

        // Spans off keeps metrics on the base endpoint; the SDK off turns both off.
        let otlp = ("OTEL_METRICS_EXPORTER", "otlp");
        let resolved = resolve(&[base[0], base[1], otlp, ("OTEL_TRACES_EXPORTER", "none")]).expect("valid");
        assert_eq!(resolved.config.traces_url(), None);
        assert_eq!(resolved.config.metrics_url().as_deref(), Some("http://collector:4318/v1/metrics"));
        let resolved = resolve(&[base[0], otlp, ("OTEL_SDK_DISABLED", "true")]).expect("valid");
        assert_eq!(resolved.config.metrics_url(), None);

        let error = resolve(&[("OTEL_METRICS_EXPORTER", "console")]).expect_err("unsupported");
        let message = error.to_string();
        assert!(
            message.contains("OTEL_METRICS_EXPORTER") && message.contains("`prometheus`, `otlp`, `none`"),
            "{message}"
        );
        let error =
            resolve(&[("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "sometimes")]).expect_err("unknown");
        assert!(error.to_string().contains("`cumulative`, `delta`, `lowmemory`"), "{error}");
    }

    #[test]
    fn the_config_is_validated() {
        assert!(TelemetryConfig::default().validate().is_ok());
        let config = TelemetryConfig { sample_ratio: -0.1, ..TelemetryConfig::default() };
        assert!(config.validate().expect_err("out of range").to_string().contains("sample_ratio"));
    }
}
