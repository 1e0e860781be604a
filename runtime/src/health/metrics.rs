//! `hardened_health_status{component}`, in hardened's registry.

use std::sync::OnceLock;

use prometheus::{GaugeVec, Opts};

use super::status::HealthStatus;

fn gauge() -> &'static GaugeVec {
    static GAUGE: OnceLock<GaugeVec> = OnceLock::new();
    GAUGE.get_or_init(|| {
        let gauge = GaugeVec::new(
            Opts::new(
                "hardened_health_status",
                "Latest status of each health check: 1 healthy, 0.5 degraded, 0 unhealthy.",
            ),
            &["component"],
        )
        .expect("valid metric options");
        if let Err(error) = crate::metrics::registry().register(Box::new(gauge.clone())) {
            tracing::error!(%error, "the health metric could not be registered");
        }
        gauge
    })
}

/// Records the latest status of `component`.
pub(super) fn record(component: &str, status: HealthStatus) {
    gauge().with_label_values(&[component]).set(status.gauge_value());
}

/// Drops the series of a check that is no longer registered.
pub(super) fn forget(component: &str) {
    let _ = gauge().remove_label_values(&[component]);
}
