//! Prometheus metrics: one registry of hardened's own, holding the call metrics of every site, process
//! metrics and `hardened_build_info`.
//!
//! [`render`] writes the Prometheus text format; [`render_openmetrics`] writes `OpenMetrics`, with the
//! [exemplars] of the call duration histogram: the trace of a recent call in each bucket.
//!
//! Each function's duration histogram has the built-in bounds, its attribute's (`buckets = [..]`), or
//! none (`histogram = false`); the configuration's `[metrics.<name>]` sections
//! ([`configure_histograms`]) override them by kind or function. They are fixed at the first call or
//! scrape, for the life of the process.
//!
//! The registry is not the prometheus crate's default one, so it never collides with an application's
//! metrics. Render it alone with [`render`], or register the application's collectors in it:
//!
//! ```
//! let requests = prometheus::IntCounter::new("app_requests_total", "Requests served.").unwrap();
//! hardened::metrics::registry().register(Box::new(requests.clone())).unwrap();
//! requests.inc();
//! assert!(hardened::metrics::render().contains("app_requests_total 1"));
//! ```

mod calls;
pub mod exemplars;
mod guards;
mod openmetrics;
mod slo;

use std::sync::OnceLock;

use prometheus::{Encoder, IntGaugeVec, Opts, Registry, TextEncoder};

pub use self::openmetrics::{OPENMETRICS_CONTENT_TYPE, render_openmetrics};
pub use crate::guards::histograms::{
    MetricsSections, MetricsSettings, configure as configure_histograms, pending as histograms_pending,
};
pub use crate::guards::shards::in_flight;

/// The registry holding every metric hardened records.
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let registry = Registry::new();
        let registered = calls::CallMetrics::new()
            .and_then(|collector| registry.register(Box::new(collector)))
            .and_then(|()| guards::GuardMetrics::new())
            .and_then(|collector| registry.register(Box::new(collector)))
            .and_then(|()| slo::SloInfo::new())
            .and_then(|collector| registry.register(Box::new(collector)))
            .and_then(|()| build_info())
            .and_then(|collector| registry.register(Box::new(collector)))
            .and_then(|()| process_metrics(&registry));
        if let Err(error) = registered {
            tracing::error!(%error, "a built-in hardened metric could not be registered");
        }
        registry
    })
}

/// The registry's metrics in the Prometheus text exposition format.
#[must_use]
pub fn render() -> String {
    let encoder = TextEncoder::new();
    let mut buffer = Vec::new();
    for family in registry().gather() {
        if let Err(error) = encoder.encode(std::slice::from_ref(&family), &mut buffer) {
            tracing::error!(%error, family = family.name(), "a metric family could not be rendered");
        }
    }
    String::from_utf8(buffer).unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned())
}

fn build_info() -> prometheus::Result<IntGaugeVec> {
    let gauge = IntGaugeVec::new(
        Opts::new("hardened_build_info", "Always 1; labelled with the hardened version in use."),
        &["version"],
    )?;
    gauge.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
    Ok(gauge)
}

#[cfg(target_os = "linux")]
fn process_metrics(registry: &Registry) -> prometheus::Result<()> {
    registry.register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))
}

#[cfg(not(target_os = "linux"))]
fn process_metrics(_: &Registry) -> prometheus::Result<()> {
    Ok(())
}
