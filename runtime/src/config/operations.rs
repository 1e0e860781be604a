//! The settings of the service as a whole, one section each: `[telemetry]`, `[health]`, `[shutdown]`
//! and `[server]`. Like the guards' sections, each key is optional and only the keys written change
//! anything.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use super::Config;
use crate::keys::value::{self, Problem, Raw};
use crate::keys::{Keys, int, push};

/// A section of which there is one: `[telemetry]` and the like.
pub(super) trait Single: Keys {
    /// The top-level table.
    const SECTION: &'static str;

    /// This section in `config`.
    fn of(config: &Config) -> &Self;

    /// This section in `config`, to change.
    fn of_mut(config: &mut Config) -> &mut Self;
}

/// The protocols `[telemetry] protocol` accepts, as OpenTelemetry's `OTEL_EXPORTER_OTLP_PROTOCOL` spells
/// them.
pub const OTLP_PROTOCOLS: &[&str] = &["grpc", "http/protobuf"];

/// The names `[telemetry] metrics_exporter` lists, as OpenTelemetry's `OTEL_METRICS_EXPORTER` spells them.
pub const METRICS_EXPORTERS: &[&str] = &["prometheus", "otlp", "none"];

/// The temporalities `[telemetry] metrics_temporality` accepts, as
/// `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE` spells them.
pub const METRICS_TEMPORALITIES: &[&str] = &["cumulative", "delta", "lowmemory"];

/// The formats `[telemetry] log_format` accepts.
pub const LOG_FORMATS: &[&str] = &["readable", "json"];

/// The settings of the `[telemetry]` section; the standard `OTEL_*` variables override them. Its `Debug`
/// masks the secrets of `endpoint` as [`redact::urls`](crate::redact::urls) does.
#[derive(Clone, Default, PartialEq)]
pub struct TelemetrySettings {
    /// `service_name`: the `service.name` resource attribute.
    pub service_name: Option<String>,
    /// `service_version`: the `service.version` resource attribute.
    pub service_version: Option<String>,
    /// `environment`: the `deployment.environment` resource attribute, such as `production`.
    pub environment: Option<String>,
    /// `endpoint`: the OTLP collector's address; without one, spans are not exported.
    pub endpoint: Option<String>,
    /// `protocol`: one of [`OTLP_PROTOCOLS`].
    pub protocol: Option<String>,
    /// `sample_ratio`: the share of new traces recorded, from 0.0 to 1.0.
    pub sample_ratio: Option<f64>,
    /// `log_format`: one of [`LOG_FORMATS`].
    pub log_format: Option<String>,
    /// `log_filter`: which events and spans are logged, in `RUST_LOG`'s syntax; `RUST_LOG` overrides it.
    pub log_filter: Option<String>,
    /// `trace_filter`: which spans are traced (given ids, propagated, exported), in the same syntax.
    pub trace_filter: Option<String>,
    /// `metrics_exporter`: where metrics go, a comma-separated list of [`METRICS_EXPORTERS`].
    pub metrics_exporter: Option<String>,
    /// `metrics_endpoint`: the full URL of the collector's metrics endpoint, ahead of `endpoint`.
    pub metrics_endpoint: Option<String>,
    /// `metrics_protocol`: one of [`OTLP_PROTOCOLS`], when metrics travel apart from spans.
    pub metrics_protocol: Option<String>,
    /// `metric_export_interval`: how often metrics are pushed over OTLP.
    pub metric_export_interval: Option<Duration>,
    /// `metrics_temporality`: one of [`METRICS_TEMPORALITIES`].
    pub metrics_temporality: Option<String>,
}

impl fmt::Debug for TelemetrySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Taken apart, so that a new field is a compile error here rather than missing from the output.
        let TelemetrySettings {
            service_name,
            service_version,
            environment,
            endpoint,
            protocol,
            sample_ratio,
            log_format,
            log_filter,
            trace_filter,
            metrics_exporter,
            metrics_endpoint,
            metrics_protocol,
            metric_export_interval,
            metrics_temporality,
        } = self;
        f.debug_struct("TelemetrySettings")
            .field("service_name", service_name)
            .field("service_version", service_version)
            .field("environment", environment)
            .field("endpoint", &endpoint.as_deref().map(crate::redact::urls))
            .field("protocol", protocol)
            .field("sample_ratio", sample_ratio)
            .field("log_format", log_format)
            .field("log_filter", log_filter)
            .field("trace_filter", trace_filter)
            .field("metrics_exporter", metrics_exporter)
            .field("metrics_endpoint", &metrics_endpoint.as_deref().map(crate::redact::urls))
            .field("metrics_protocol", metrics_protocol)
            .field("metric_export_interval", metric_export_interval)
            .field("metrics_temporality", metrics_temporality)
            .finish()
    }
}

/// The settings of the `[health]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthSettings {
    /// `cache_ttl`: how long a check's result is reused before the check runs again; zero runs every check
    /// on every probe.
    pub cache_ttl: Option<Duration>,
    /// `check_timeout`: how long a check may run before it counts as unhealthy.
    pub check_timeout: Option<Duration>,
    /// `watchdog_interval`: how often the runtime watchdog measures the event loop's lag.
    pub watchdog_interval: Option<Duration>,
    /// `watchdog_max_lag`: the lag above which liveness fails.
    pub watchdog_max_lag: Option<Duration>,
    /// `audit_max_backlog`: audit events waiting to be written above which the audit check degrades.
    pub audit_max_backlog: Option<u64>,
}

/// The settings of the `[shutdown]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShutdownSettings {
    /// `pre_stop_delay`: how long readiness reports not ready before servers stop accepting; may be zero.
    pub pre_stop_delay: Option<Duration>,
    /// `drain_timeout`: how long calls and requests in flight may take to finish.
    pub drain_timeout: Option<Duration>,
    /// `deadline`: the whole shutdown, below the orchestrator's grace period.
    pub deadline: Option<Duration>,
}

/// The settings of the `[server]` section. Its `Debug` and [`render`](super::render) write `admin_token`
/// as `***`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ServerSettings {
    /// `address`: where the application listens, such as `"0.0.0.0:8080"`.
    pub address: Option<SocketAddr>,
    /// `admin_address`: where the ops endpoints listen, when apart from the application.
    pub admin_address: Option<SocketAddr>,
    /// `admin_token`: the bearer token the admin listener's operations endpoints (`/guards`, `/config`,
    /// `/loggers`) require; best given as `HARDENED_SERVER__ADMIN_TOKEN` rather than written in a file.
    pub admin_token: Option<String>,
    /// `admin_unauthenticated`: whether, without an `admin_token`, the operations endpoints answer on an
    /// admin address that is not a loopback one (they do not by default).
    pub admin_unauthenticated: Option<bool>,
    /// `trust_forwarded_for`: whether the client address is read from `X-Forwarded-For`, as it should
    /// only be behind a proxy that sets it.
    pub trust_forwarded_for: Option<bool>,
    /// `trust_incoming_trace`: whether a request's `traceparent` is continued (its trace id and sampling
    /// decision taken), as it should only be from callers inside the service's own system; otherwise the
    /// request starts a new trace linked to the caller's.
    pub trust_incoming_trace: Option<bool>,
    /// `header_read_timeout`: how long a client has to send a request's head, and how long an idle
    /// kept-alive connection stays open.
    pub header_read_timeout: Option<Duration>,
    /// `request_timeout`: how long one request may take, from its head to its response's head.
    pub request_timeout: Option<Duration>,
    /// `max_connections`: connections served at once; more wait in the listener's backlog.
    pub max_connections: Option<u32>,
    /// `body_limit`: the largest request body, in bytes.
    pub body_limit: Option<u64>,
}

impl fmt::Debug for ServerSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Taken apart, so that a new field is a compile error here rather than missing from the output.
        let ServerSettings {
            address,
            admin_address,
            admin_token,
            admin_unauthenticated,
            trust_forwarded_for,
            trust_incoming_trace,
            header_read_timeout,
            request_timeout,
            max_connections,
            body_limit,
        } = self;
        f.debug_struct("ServerSettings")
            .field("address", address)
            .field("admin_address", admin_address)
            .field("admin_token", &admin_token.as_ref().map(|_| crate::redact::MASK))
            .field("admin_unauthenticated", admin_unauthenticated)
            .field("trust_forwarded_for", trust_forwarded_for)
            .field("trust_incoming_trace", trust_incoming_trace)
            .field("header_read_timeout", header_read_timeout)
            .field("request_timeout", request_timeout)
            .field("max_connections", max_connections)
            .field("body_limit", body_limit)
            .finish()
    }
}

#[cfg(feature = "telemetry")]
impl TelemetrySettings {
    /// Sets in `config` what these settings say, and nothing else. The standard `OTEL_*` variables,
    /// which [`telemetry::init`](crate::telemetry::init) reads, still win over them.
    pub fn apply_to(&self, config: &mut crate::telemetry::TelemetryConfig) {
        use crate::support::overlay as set;
        set(&mut config.service_name, self.service_name.clone());
        if self.service_version.is_some() {
            config.service_version.clone_from(&self.service_version);
        }
        set(&mut config.environment, self.environment.clone());
        if self.endpoint.is_some() {
            config.otlp_endpoint.clone_from(&self.endpoint);
        }
        // Both were checked against the same names when they were read.
        set(&mut config.protocol, self.protocol.as_deref().and_then(|protocol| protocol.parse().ok()));
        set(&mut config.log_format, self.log_format.as_deref().and_then(|format| format.parse().ok()));
        set(&mut config.sample_ratio, self.sample_ratio);
        set(&mut config.log_filter, self.log_filter.clone());
        set(&mut config.trace_filter, self.trace_filter.clone());
        // The names were checked when they were read.
        set(&mut config.metrics_exporters, self.metrics_exporter.as_deref().and_then(|list| list.parse().ok()));
        if self.metrics_endpoint.is_some() {
            config.otlp_metrics_endpoint.clone_from(&self.metrics_endpoint);
        }
        if let Some(protocol) = self.metrics_protocol.as_deref().and_then(|protocol| protocol.parse().ok()) {
            config.metrics_protocol = Some(protocol);
        }
        set(&mut config.metric_export_interval, self.metric_export_interval);
        set(
            &mut config.metrics_temporality,
            self.metrics_temporality.as_deref().and_then(|temporality| temporality.parse().ok()),
        );
    }
}

#[cfg(feature = "http")]
impl ServerSettings {
    /// Sets in `limits` what these settings say, and nothing else.
    pub fn apply_to(&self, limits: &mut crate::http::ServerLimits) {
        use crate::support::overlay as set;
        set(&mut limits.header_read_timeout, self.header_read_timeout);
        set(&mut limits.request_timeout, self.request_timeout);
        set(&mut limits.max_connections, self.max_connections.map(|max| usize::try_from(max).unwrap_or(usize::MAX)));
        set(&mut limits.body_limit, self.body_limit.map(|limit| usize::try_from(limit).unwrap_or(usize::MAX)));
    }
}

impl HealthSettings {
    /// Sets in `config` what these settings say, and nothing else.
    pub fn apply_to(&self, config: &mut crate::health::HealthConfig) {
        use crate::support::overlay as set;
        set(&mut config.cache_ttl, self.cache_ttl);
        set(&mut config.check_timeout, self.check_timeout);
        set(&mut config.watchdog_interval, self.watchdog_interval);
        set(&mut config.watchdog_max_lag, self.watchdog_max_lag);
        set(&mut config.audit_max_backlog, self.audit_max_backlog);
    }
}

impl ShutdownSettings {
    /// Sets in `config` what these settings say, and nothing else.
    pub fn apply_to(&self, config: &mut crate::shutdown::ShutdownConfig) {
        use crate::support::overlay as set;
        set(&mut config.pre_stop_delay, self.pre_stop_delay);
        set(&mut config.drain_timeout, self.drain_timeout);
        set(&mut config.deadline, self.deadline);
    }
}

fn string(raw: Raw<'_>) -> Result<String, Problem> {
    match raw {
        Raw::Toml(toml::Value::String(text)) => Ok(text.clone()),
        Raw::Toml(_) => Err(Problem::new("is not a string", "a string")),
        Raw::Env(text) => Ok(text.to_owned()),
    }
}

fn one_of(raw: Raw<'_>, allowed: &[&str]) -> Result<String, Problem> {
    let text = string(raw)?;
    let list = || allowed.iter().map(|choice| format!("\"{choice}\"")).collect::<Vec<_>>().join(", ");
    if allowed.contains(&text.trim()) {
        Ok(text.trim().to_owned())
    } else {
        Err(Problem::new("is not one of the choices", format!("one of {}", list())))
    }
}

/// A comma-separated list of names from `allowed`, as `OTEL_METRICS_EXPORTER` is written.
fn list_of(raw: Raw<'_>, allowed: &[&str]) -> Result<String, Problem> {
    let text = string(raw)?;
    let names: Vec<&str> = text.split(',').map(str::trim).collect();
    if names.iter().all(|name| allowed.contains(name)) {
        Ok(names.join(","))
    } else {
        let list = allowed.iter().map(|choice| format!("\"{choice}\"")).collect::<Vec<_>>().join(", ");
        Err(Problem::new("names an exporter it does not know", format!("a comma-separated list of {list}")))
    }
}

fn address(raw: Raw<'_>) -> Result<SocketAddr, Problem> {
    const ALLOWED: &str = "an IP address and port, such as \"0.0.0.0:8080\" or \"[::1]:9090\"";
    string(raw)?.trim().parse().map_err(|_| Problem::new("is not an address", ALLOWED))
}

/// The most connections `[server] max_connections` may allow: tokio's limit on a semaphore's permits is
/// far above it, and so is any file-descriptor limit.
const MAX_CONNECTIONS: u32 = 1 << 24;

fn text_value(text: &str) -> toml::Value {
    toml::Value::String(text.to_owned())
}

impl Single for TelemetrySettings {
    const SECTION: &'static str = "telemetry";

    fn of(config: &Config) -> &Self {
        &config.telemetry
    }

    fn of_mut(config: &mut Config) -> &mut Self {
        &mut config.telemetry
    }
}

impl Keys for TelemetrySettings {
    fn keys() -> &'static [&'static str] {
        &[
            "service_name",
            "service_version",
            "environment",
            "endpoint",
            "protocol",
            "sample_ratio",
            "log_format",
            "log_filter",
            "trace_filter",
            "metrics_exporter",
            "metrics_endpoint",
            "metrics_protocol",
            "metric_export_interval",
            "metrics_temporality",
        ]
    }

    fn set(&mut self, key: &str, raw: Raw<'_>) -> Result<(), Problem> {
        match key {
            "service_name" => self.service_name = Some(string(raw)?),
            "service_version" => self.service_version = Some(string(raw)?),
            "environment" => self.environment = Some(string(raw)?),
            "endpoint" => self.endpoint = Some(string(raw)?),
            "protocol" => self.protocol = Some(one_of(raw, OTLP_PROTOCOLS)?),
            "sample_ratio" => self.sample_ratio = Some(value::fraction(raw)?),
            "log_format" => self.log_format = Some(one_of(raw, LOG_FORMATS)?),
            "log_filter" => self.log_filter = Some(string(raw)?),
            "trace_filter" => self.trace_filter = Some(string(raw)?),
            "metrics_exporter" => self.metrics_exporter = Some(list_of(raw, METRICS_EXPORTERS)?),
            "metrics_endpoint" => self.metrics_endpoint = Some(string(raw)?),
            "metrics_protocol" => self.metrics_protocol = Some(one_of(raw, OTLP_PROTOCOLS)?),
            "metric_export_interval" => self.metric_export_interval = Some(value::duration(raw)?),
            "metrics_temporality" => self.metrics_temporality = Some(one_of(raw, METRICS_TEMPORALITIES)?),
            _ => unreachable!("`{key}` is not a telemetry key"),
        }
        Ok(())
    }

    fn entries(&self) -> Vec<(&'static str, toml::Value)> {
        let mut entries = Vec::new();
        push(&mut entries, "service_name", self.service_name.as_deref(), text_value);
        push(&mut entries, "service_version", self.service_version.as_deref(), text_value);
        push(&mut entries, "environment", self.environment.as_deref(), text_value);
        push(&mut entries, "endpoint", self.endpoint.as_deref(), |url| text_value(&crate::redact::urls(url)));
        push(&mut entries, "protocol", self.protocol.as_deref(), text_value);
        push(&mut entries, "sample_ratio", self.sample_ratio, toml::Value::Float);
        push(&mut entries, "log_format", self.log_format.as_deref(), text_value);
        push(&mut entries, "log_filter", self.log_filter.as_deref(), text_value);
        push(&mut entries, "trace_filter", self.trace_filter.as_deref(), text_value);
        push(&mut entries, "metrics_exporter", self.metrics_exporter.as_deref(), text_value);
        push(&mut entries, "metrics_endpoint", self.metrics_endpoint.as_deref(), |url| {
            text_value(&crate::redact::urls(url))
        });
        push(&mut entries, "metrics_protocol", self.metrics_protocol.as_deref(), text_value);
        push(&mut entries, "metric_export_interval", self.metric_export_interval, value::duration_value);
        push(&mut entries, "metrics_temporality", self.metrics_temporality.as_deref(), text_value);
        entries
    }
}

impl Single for HealthSettings {
    const SECTION: &'static str = "health";

    fn of(config: &Config) -> &Self {
        &config.health
    }

    fn of_mut(config: &mut Config) -> &mut Self {
        &mut config.health
    }
}

impl Keys for HealthSettings {
    fn keys() -> &'static [&'static str] {
        &["cache_ttl", "check_timeout", "watchdog_interval", "watchdog_max_lag", "audit_max_backlog"]
    }

    fn set(&mut self, key: &str, raw: Raw<'_>) -> Result<(), Problem> {
        match key {
            "cache_ttl" => self.cache_ttl = Some(value::duration_or_zero(raw)?),
            "check_timeout" => self.check_timeout = Some(value::duration(raw)?),
            "watchdog_interval" => self.watchdog_interval = Some(value::duration(raw)?),
            "watchdog_max_lag" => self.watchdog_max_lag = Some(value::duration(raw)?),
            "audit_max_backlog" => self.audit_max_backlog = Some(value::whole_from(raw, 1, u64::from(u32::MAX))?),
            _ => unreachable!("`{key}` is not a health key"),
        }
        Ok(())
    }

    fn entries(&self) -> Vec<(&'static str, toml::Value)> {
        let mut entries = Vec::new();
        push(&mut entries, "cache_ttl", self.cache_ttl, value::duration_value);
        push(&mut entries, "check_timeout", self.check_timeout, value::duration_value);
        push(&mut entries, "watchdog_interval", self.watchdog_interval, value::duration_value);
        push(&mut entries, "watchdog_max_lag", self.watchdog_max_lag, value::duration_value);
        push(&mut entries, "audit_max_backlog", self.audit_max_backlog, |backlog| {
            int(i64::try_from(backlog).unwrap_or(i64::MAX))
        });
        entries
    }
}

impl Single for ShutdownSettings {
    const SECTION: &'static str = "shutdown";

    fn of(config: &Config) -> &Self {
        &config.shutdown
    }

    fn of_mut(config: &mut Config) -> &mut Self {
        &mut config.shutdown
    }
}

impl Keys for ShutdownSettings {
    fn keys() -> &'static [&'static str] {
        &["pre_stop_delay", "drain_timeout", "deadline"]
    }

    fn set(&mut self, key: &str, raw: Raw<'_>) -> Result<(), Problem> {
        match key {
            "pre_stop_delay" => self.pre_stop_delay = Some(value::duration_or_zero(raw)?),
            "drain_timeout" => self.drain_timeout = Some(value::duration(raw)?),
            "deadline" => self.deadline = Some(value::duration(raw)?),
            _ => unreachable!("`{key}` is not a shutdown key"),
        }
        Ok(())
    }

    fn check(&self, written: &dyn Fn(&str) -> bool) -> Option<(&'static str, Problem)> {
        let defaults = crate::shutdown::ShutdownConfig::default();
        let pre_stop_delay = self.pre_stop_delay.unwrap_or(defaults.pre_stop_delay);
        let deadline = self.deadline.unwrap_or(defaults.deadline);
        if pre_stop_delay < deadline {
            return None;
        }
        Some(if written("pre_stop_delay") || !written("deadline") {
            let problem = format!("is not shorter than the deadline ({})", humantime::format_duration(deadline));
            ("pre_stop_delay", Problem::new(problem, "a duration shorter than deadline"))
        } else {
            let problem = format!("is not longer than pre_stop_delay ({})", humantime::format_duration(pre_stop_delay));
            ("deadline", Problem::new(problem, "a duration longer than pre_stop_delay"))
        })
    }

    fn entries(&self) -> Vec<(&'static str, toml::Value)> {
        let mut entries = Vec::new();
        push(&mut entries, "pre_stop_delay", self.pre_stop_delay, value::duration_value);
        push(&mut entries, "drain_timeout", self.drain_timeout, value::duration_value);
        push(&mut entries, "deadline", self.deadline, value::duration_value);
        entries
    }
}

impl Single for ServerSettings {
    const SECTION: &'static str = "server";

    fn of(config: &Config) -> &Self {
        &config.server
    }

    fn of_mut(config: &mut Config) -> &mut Self {
        &mut config.server
    }
}

impl Keys for ServerSettings {
    fn keys() -> &'static [&'static str] {
        &[
            "address",
            "admin_address",
            "admin_token",
            "admin_unauthenticated",
            "trust_forwarded_for",
            "trust_incoming_trace",
            "header_read_timeout",
            "request_timeout",
            "max_connections",
            "body_limit",
        ]
    }

    fn set(&mut self, key: &str, raw: Raw<'_>) -> Result<(), Problem> {
        match key {
            "address" => self.address = Some(address(raw)?),
            "admin_address" => self.admin_address = Some(address(raw)?),
            "admin_token" => self.admin_token = Some(string(raw)?),
            "admin_unauthenticated" => self.admin_unauthenticated = Some(value::boolean(raw)?),
            "trust_forwarded_for" => self.trust_forwarded_for = Some(value::boolean(raw)?),
            "trust_incoming_trace" => self.trust_incoming_trace = Some(value::boolean(raw)?),
            "header_read_timeout" => self.header_read_timeout = Some(value::duration(raw)?),
            "request_timeout" => self.request_timeout = Some(value::duration(raw)?),
            "max_connections" => self.max_connections = Some(value::whole_from(raw, 1, MAX_CONNECTIONS)?),
            "body_limit" => self.body_limit = Some(value::byte_size(raw)?),
            _ => unreachable!("`{key}` is not a server key"),
        }
        Ok(())
    }

    fn entries(&self) -> Vec<(&'static str, toml::Value)> {
        let address_value = |address: SocketAddr| toml::Value::String(address.to_string());
        let mut entries = Vec::new();
        push(&mut entries, "address", self.address, address_value);
        push(&mut entries, "admin_address", self.admin_address, address_value);
        push(&mut entries, "admin_token", self.admin_token.as_deref(), |_| text_value(crate::redact::MASK));
        push(&mut entries, "admin_unauthenticated", self.admin_unauthenticated, toml::Value::Boolean);
        push(&mut entries, "trust_forwarded_for", self.trust_forwarded_for, toml::Value::Boolean);
        push(&mut entries, "trust_incoming_trace", self.trust_incoming_trace, toml::Value::Boolean);
        push(&mut entries, "header_read_timeout", self.header_read_timeout, value::duration_value);
        push(&mut entries, "request_timeout", self.request_timeout, value::duration_value);
        push(&mut entries, "max_connections", self.max_connections, int);
        push(&mut entries, "body_limit", self.body_limit, |limit| int(i64::try_from(limit).unwrap_or(i64::MAX)));
        entries
    }
}

#[cfg(all(test, feature = "telemetry"))]
mod telemetry_names {
    use crate::telemetry::{LogFormat, MetricsExporters, MetricsTemporality, Protocol};

    #[test]
    fn the_configuration_file_accepts_exactly_the_names_telemetry_knows() {
        // `[telemetry]` is read without that feature, so this module keeps its own lists of the names.
        assert_eq!(super::OTLP_PROTOCOLS, Protocol::ALLOWED);
        assert_eq!(super::LOG_FORMATS, LogFormat::ALLOWED);
        assert_eq!(super::METRICS_EXPORTERS, MetricsExporters::ALLOWED);
        assert_eq!(super::METRICS_TEMPORALITIES, MetricsTemporality::ALLOWED);
    }
}
