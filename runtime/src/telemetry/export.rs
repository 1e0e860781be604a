//! The exporter stack under the batch processor: the OTLP exporter of the chosen protocol, a tokio runtime
//! of its own for gRPC, and a wrapper that counts what a collector did not take.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use prometheus::IntCounter;

use super::{Protocol, TelemetryConfig, TelemetryError};

/// How often at most an export failure is logged.
const WARNING_INTERVAL: Duration = Duration::from_secs(30);

/// `hardened_telemetry_spans_dropped_total`, registered in [`crate::metrics::registry()`] on first use.
pub(crate) fn spans_dropped() -> &'static IntCounter {
    static COUNTER: OnceLock<IntCounter> = OnceLock::new();
    COUNTER.get_or_init(|| {
        registered_counter(
            "hardened_telemetry_spans_dropped_total",
            "Finished spans that were not exported: the collector refused them, was unreachable or too slow.",
        )
    })
}

/// A counter of the export's own, registered in [`crate::metrics::registry()`]; a registration that fails
/// is logged, and the counter still counts.
pub(crate) fn registered_counter(name: &'static str, help: &'static str) -> IntCounter {
    let counter = IntCounter::new(name, help).expect("the metric's name and help are valid");
    if let Err(error) = crate::metrics::registry().register(Box::new(counter.clone())) {
        tracing::error!(%error, metric = name, "an export metric could not be registered");
    }
    counter
}

/// Builds the OTLP exporter for `config`'s protocol and URL, counting what it fails to deliver.
pub(crate) fn otlp_exporter(
    config: &TelemetryConfig,
    url: String,
) -> Result<CountingExporter<OtlpExporter>, TelemetryError> {
    let (exporter, runtime) = match config.protocol {
        Protocol::Grpc => {
            let runtime = ExportRuntime::start()?;
            // The channel spawns its connection tasks where it is built, so it is built on its own runtime:
            // the batch processor's thread has none, and the application's may be a current-thread one
            // blocked in a flush.
            let exporter = {
                let _entered = runtime.handle.enter();
                opentelemetry_otlp::SpanExporter::builder()
                    .with_tonic()
                    .with_endpoint(url)
                    .with_timeout(config.export_timeout)
                    .build()?
            };
            (exporter, Some(runtime))
        }
        // The blocking client runs its own thread and needs no runtime from the caller.
        Protocol::HttpProtobuf => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(url)
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_timeout(config.export_timeout)
                .build()?;
            (exporter, None)
        }
    };
    Ok(CountingExporter::new(OtlpExporter { exporter: Arc::new(exporter), runtime }))
}

/// The OTLP exporter of either protocol; a gRPC one with the runtime that drives it.
#[derive(Debug)]
pub(crate) struct OtlpExporter {
    exporter: Arc<opentelemetry_otlp::SpanExporter>,
    runtime: Option<ExportRuntime>,
}

impl SpanExporter for OtlpExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let Some(runtime) = &self.runtime else {
            return self.exporter.export(batch).await;
        };
        let exporter = Arc::clone(&self.exporter);
        match runtime.handle.spawn(async move { exporter.export(batch).await }).await {
            Ok(result) => result,
            Err(error) => Err(OTelSdkError::InternalFailure(format!("the export task failed: {error}"))),
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let result = self.exporter.shutdown_with_timeout(timeout);
        if let Some(runtime) = &self.runtime {
            runtime.stop();
        }
        result
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.exporter.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        // Called while the processor is built, before any export shares the exporter.
        if let Some(exporter) = Arc::get_mut(&mut self.exporter) {
            exporter.set_resource(resource);
        }
    }
}

/// A current-thread tokio runtime on a thread of its own, for the gRPC channel's connection and timers.
pub(crate) struct ExportRuntime {
    handle: tokio::runtime::Handle,
    stop: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

impl fmt::Debug for ExportRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExportRuntime").finish_non_exhaustive()
    }
}

impl ExportRuntime {
    fn start() -> Result<Self, TelemetryError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("hardened-otlp")
            .build()
            .map_err(TelemetryError::Runtime)?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("hardened-otlp".to_owned())
            .spawn(move || {
                // Either a stop or the sender's drop ends it.
                let _ = runtime.block_on(stopped);
            })
            .map_err(TelemetryError::Runtime)?;
        Ok(ExportRuntime { handle, stop: Mutex::new(Some(stop)) })
    }

    fn stop(&self) {
        if let Some(stop) = self.stop.lock().unwrap_or_else(PoisonError::into_inner).take() {
            let _ = stop.send(());
        }
    }
}

/// A [`SpanExporter`] that counts the spans of every batch its inner exporter fails to deliver in
/// `hardened_telemetry_spans_dropped_total`, and logs the failure at most once every 30 seconds.
///
/// The processor calling it drops a failed batch rather than retrying it, so that a collector that is
/// down costs the application memory for one queue and nothing more.
pub struct CountingExporter<E> {
    inner: E,
    warnings: WarningLimiter,
    shut_down: AtomicBool,
}

impl<E: fmt::Debug> fmt::Debug for CountingExporter<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CountingExporter").field("inner", &self.inner).finish_non_exhaustive()
    }
}

impl<E> CountingExporter<E> {
    /// Wraps `inner`, registering the metric if it is not yet.
    #[must_use]
    pub fn new(inner: E) -> Self {
        spans_dropped();
        CountingExporter { inner, warnings: WarningLimiter::new(WARNING_INTERVAL), shut_down: AtomicBool::new(false) }
    }
}

impl<E: SpanExporter> SpanExporter for CountingExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len() as u64;
        let result = self.inner.export(batch).await;
        if let Err(error) = &result {
            spans_dropped().inc_by(spans);
            // The warning is an event, not a span, and is emitted on the processor's thread, outside any
            // span: nothing it produces is exported, so a failing export cannot feed itself.
            if let Some(suppressed) = self.warnings.permit(Instant::now()) {
                tracing::warn!(
                    target: "hardened::telemetry",
                    %error,
                    spans,
                    failures_since_last_warning = suppressed,
                    "spans could not be exported and were dropped; \
                     counted in `hardened_telemetry_spans_dropped_total`"
                );
            }
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        if self.shut_down.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// Lets one warning through per interval and counts the ones held back.
#[derive(Debug)]
pub(crate) struct WarningLimiter {
    interval: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl WarningLimiter {
    pub(crate) fn new(interval: Duration) -> Self {
        WarningLimiter { interval, state: Mutex::new((None, 0)) }
    }

    /// `Some(held back since the last warning)` if a warning may be logged at `now`.
    pub(crate) fn permit(&self, now: Instant) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (last, held_back) = &mut *state;
        if last.is_some_and(|last| now.saturating_duration_since(last) < self.interval) {
            *held_back += 1;
            return None;
        }
        *last = Some(now);
        Some(std::mem::take(held_back))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_warning_passes_per_interval_and_reports_those_held_back() {
        let limiter = WarningLimiter::new(Duration::from_secs(30));
        let start = Instant::now();
        assert_eq!(limiter.permit(start), Some(0));
        assert_eq!(limiter.permit(start + Duration::from_secs(1)), None);
        assert_eq!(limiter.permit(start + Duration::from_secs(29)), None);
        assert_eq!(limiter.permit(start + Duration::from_secs(30)), Some(2));
        assert_eq!(limiter.permit(start + Duration::from_secs(31)), None);
        assert_eq!(limiter.permit(start + Duration::from_secs(90)), Some(1));
    }
}
