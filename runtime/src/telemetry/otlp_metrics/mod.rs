//! OpenTelemetry metrics over OTLP: every family of [`crate::metrics::registry`] pushed to a collector,
//! beside or instead of the Prometheus endpoint.
//!
//! The export reads what a scrape of `/metrics` reads (the per-site cells of the call metrics, the
//! guards', the audit pipeline's, the HTTP layers', the process's), at each interval, on a thread of its
//! own: calls count once, whichever way their counts leave the process. Families take the OpenTelemetry
//! semantic conventions' names where one exists (`http.server.request.duration`, `process.cpu.time`), and
//! keep a mechanical form of their Prometheus name otherwise (`hardened.call.duration`,
//! `hardened.audit_events`); docs/metrics.md has the table.
//!
//! A collector that is down costs one failed request per interval: the export is counted in
//! `hardened_telemetry_metric_exports_failed_total`, logged at most every 30 seconds, and the next one
//! sends the totals again (cumulative), or the change since the last delivered export (delta).

mod convert;
mod names;
mod transport;

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{ResourceMetrics, ScopeMetrics};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prometheus::IntCounter;

use self::convert::{Delivered, Window, convert};
use self::transport::Transport;
use super::export::WarningLimiter;
use super::{MetricsTemporality, TelemetryConfig, TelemetryError};

/// How often at most a failed export is logged.
const WARNING_INTERVAL: Duration = Duration::from_secs(30);

/// `hardened_telemetry_metric_exports_failed_total`, registered in [`crate::metrics::registry()`] on first
/// use.
fn exports_failed() -> &'static IntCounter {
    static COUNTER: OnceLock<IntCounter> = OnceLock::new();
    COUNTER.get_or_init(|| {
        super::export::registered_counter(
            "hardened_telemetry_metric_exports_failed_total",
            "OTLP metric exports the collector did not take: refused, unreachable or too slow.",
        )
    })
}

/// What the export thread is asked to do besides its periodic export; each answers on `reply`.
enum Command {
    /// Export now.
    Export(mpsc::Sender<Result<(), String>>),
    /// Export one last time, then end.
    Stop(mpsc::Sender<Result<(), String>>),
}

/// Pushes the registry's metrics to an OTLP collector every
/// [`metric_export_interval`](TelemetryConfig::metric_export_interval), on a thread of its own, and once
/// more when it is shut down. [`init`](super::init) starts one when the configuration asks for OTLP
/// metrics; start one yourself when you compose your own subscriber.
///
/// ```no_run
/// use hardened::telemetry::{MetricsExporter, MetricsExporters, TelemetryConfig};
///
/// let config = TelemetryConfig {
///     otlp_endpoint: Some("http://otel-collector:4317".into()),
///     metrics_exporters: MetricsExporters::BOTH,
///     ..TelemetryConfig::default()
/// };
/// let exporter = MetricsExporter::start(&config)?.expect("OTLP metrics are on and have an endpoint");
/// // ... serve; at the end:
/// exporter.shutdown()?;
/// # Ok::<(), hardened::telemetry::TelemetryError>(())
/// ```
#[derive(Debug)]
pub struct MetricsExporter {
    commands: Mutex<Option<mpsc::Sender<Command>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    timeout: Duration,
}

impl MetricsExporter {
    /// Starts exporting as `config` says: `None` when OTLP metrics are off or have no endpoint
    /// ([`TelemetryConfig::metrics_url`]).
    pub fn start(config: &TelemetryConfig) -> Result<Option<MetricsExporter>, TelemetryError> {
        config.validate()?;
        let Some(url) = config.metrics_url() else {
            return Ok(None);
        };
        exports_failed();
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(TelemetryError::Runtime)?;
        // A gRPC channel spawns its connection on the runtime it is made in: the export thread's.
        let transport = {
            let _entered = runtime.enter();
            Transport::new(config.metrics_protocol(), &url, config.metric_export_timeout)?
        };
        let export = Export {
            transport,
            resource: resource(config),
            temporality: config.metrics_temporality,
            started: unix_nanos(SystemTime::now()),
            delivered: Delivered::default(),
            delivered_at: None,
            timeout: config.metric_export_timeout,
            warnings: WarningLimiter::new(WARNING_INTERVAL),
        };
        let (commands, received) = mpsc::channel();
        let interval = config.metric_export_interval;
        let thread = std::thread::Builder::new()
            .name("hardened-otlp-metrics".to_owned())
            .spawn(move || export.run(&runtime, &received, interval))
            .map_err(TelemetryError::Runtime)?;
        tracing::debug!(
            target: "hardened::telemetry",
            endpoint = %crate::redact::urls(&url),
            protocol = %config.metrics_protocol(),
            interval_ms = interval.as_millis(),
            temporality = %config.metrics_temporality,
            "OTLP metrics export started"
        );
        Ok(Some(MetricsExporter {
            commands: Mutex::new(Some(commands)),
            thread: Mutex::new(Some(thread)),
            timeout: config.metric_export_timeout,
        }))
    }

    /// Exports now and waits for the collector's answer (up to the export timeout). Blocks: call it from
    /// a blocking context inside a runtime.
    pub fn export_now(&self) -> Result<(), TelemetryError> {
        self.ask(Command::Export)
    }

    /// Exports one last time and stops the thread; later calls do nothing. Blocks as
    /// [`export_now`](Self::export_now) does.
    pub fn shutdown(&self) -> Result<(), TelemetryError> {
        let result = self.ask(Command::Stop);
        self.commands.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(thread) = self.thread.lock().unwrap_or_else(PoisonError::into_inner).take() {
            // The thread ends right after answering the stop.
            let _ = thread.join();
        }
        result
    }

    fn ask(&self, command: fn(mpsc::Sender<Result<(), String>>) -> Command) -> Result<(), TelemetryError> {
        let Some(commands) = self.commands.lock().unwrap_or_else(PoisonError::into_inner).clone() else {
            return Ok(());
        };
        let (reply, answer) = mpsc::channel();
        if commands.send(command(reply)).is_err() {
            return Ok(());
        }
        // The export bounds itself by the timeout; the margin covers reading the registry.
        match answer.recv_timeout(self.timeout + Duration::from_secs(1)) {
            Ok(result) => result.map_err(TelemetryError::Flush),
            Err(_) => Err(TelemetryError::Flush("the metrics export thread did not answer in time".to_owned())),
        }
    }
}

impl Drop for MetricsExporter {
    fn drop(&mut self) {
        if let Err(error) = self.shutdown() {
            tracing::warn!(target: "hardened::telemetry", %error, "the last OTLP metrics export failed");
        }
    }
}

/// The export thread's state.
struct Export {
    transport: Transport,
    resource: Resource,
    temporality: MetricsTemporality,
    /// When counting began, for cumulative points.
    started: u64,
    /// The totals of the last export the collector took, for delta points.
    delivered: Delivered,
    delivered_at: Option<u64>,
    timeout: Duration,
    warnings: WarningLimiter,
}

impl Export {
    fn run(mut self, runtime: &tokio::runtime::Runtime, commands: &mpsc::Receiver<Command>, interval: Duration) {
        let mut next = Instant::now() + interval;
        loop {
            match commands.recv_timeout(next.saturating_duration_since(Instant::now())) {
                Err(RecvTimeoutError::Timeout) => {
                    next += interval;
                    let _ = self.export(runtime);
                }
                Ok(Command::Export(reply)) => {
                    let _ = reply.send(self.export(runtime));
                }
                Ok(Command::Stop(reply)) => {
                    let _ = reply.send(self.export(runtime));
                    return;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = self.export(runtime);
                    return;
                }
            }
        }
    }

    /// Reads the registry and sends it; a failure is counted and logged (at most every 30 seconds).
    fn export(&mut self, runtime: &tokio::runtime::Runtime) -> Result<(), String> {
        let now = unix_nanos(SystemTime::now());
        let start = match self.temporality {
            MetricsTemporality::Cumulative => self.started,
            MetricsTemporality::Delta | MetricsTemporality::LowMemory => self.delivered_at.unwrap_or(self.started),
        };
        let converted = convert(
            &crate::metrics::registry().gather(),
            Window { start, now },
            self.temporality,
            &self.delivered,
            &crate::metrics::exemplars::by_series(),
        );
        let request = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(self.resource.clone()),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(InstrumentationScope {
                        name: super::SCOPE.to_owned(),
                        version: env!("CARGO_PKG_VERSION").to_owned(),
                        ..InstrumentationScope::default()
                    }),
                    metrics: converted.metrics,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        };
        let sent = runtime.block_on(async {
            tokio::time::timeout(self.timeout, self.transport.send(request))
                .await
                .unwrap_or_else(|_| Err(format!("no answer within {:?}", self.timeout)))
        });
        match &sent {
            Ok(()) => {
                self.delivered = converted.totals;
                self.delivered_at = Some(now);
            }
            Err(error) => {
                exports_failed().inc();
                if let Some(suppressed) = self.warnings.permit(Instant::now()) {
                    tracing::warn!(
                        target: "hardened::telemetry",
                        %error,
                        failures_since_last_warning = suppressed,
                        "metrics could not be exported over OTLP; counted in \
                         `hardened_telemetry_metric_exports_failed_total`"
                    );
                }
            }
        }
        sent
    }
}

/// The resource of `config` ([`super::resource`]) as OTLP sends it.
fn resource(config: &TelemetryConfig) -> Resource {
    let attributes = super::resource(config)
        .iter()
        .map(|(key, value)| {
            let value = match value {
                opentelemetry::Value::Bool(flag) => any_value::Value::BoolValue(*flag),
                opentelemetry::Value::I64(number) => any_value::Value::IntValue(*number),
                opentelemetry::Value::F64(number) => any_value::Value::DoubleValue(*number),
                other => any_value::Value::StringValue(other.to_string()),
            };
            KeyValue { key: key.to_string(), value: Some(AnyValue { value: Some(value) }), ..KeyValue::default() }
        })
        .collect();
    Resource { attributes, ..Resource::default() }
}

fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| u64::try_from(since.as_nanos()).unwrap_or(u64::MAX))
}
