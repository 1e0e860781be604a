//! `GET /calls`: every call site's running totals (calls by outcome, the duration histogram, calls in
//! flight) as JSON, for the live page to turn into rates and percentiles.
//!
//! The totals are the ones `/metrics` shows, read through the same registry, so the page and Prometheus
//! never disagree; JSON spares the page a parser of the text format. They only grow (until the process
//! restarts): rates and percentiles come from the difference between two snapshots, which is why each
//! carries the moment it was taken on this process's monotonic clock rather than the browser's, whose
//! timers a hidden tab slows down.
//!
//! ```json
//! {
//!   "at_seconds": 12.5,
//!   "sites": [
//!     {
//!       "function": "call_model", "module": "agent_server::model", "kind": "llm",
//!       "calls": { "ok": 40, "error": 12, "rejected": 3, "timeout": 0, "cancelled": 0, "panic": 0 },
//!       "in_flight": 1,
//!       "duration": { "le": [0.005, 0.01, 1.0], "counts": [2, 30, 52], "count": 52, "sum": 3.75 }
//!     }
//!   ]
//! }
//! ```
//!
//! `duration.counts` are cumulative, as Prometheus buckets are: `counts[i]` calls took at most `le[i]`
//! seconds; `count` includes the calls above the last bound. `duration` is `null` for a function without
//! a duration histogram (`histogram = false`). Sites are in the order of their labels.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Instant;

use axum::Json;
use axum::response::{IntoResponse, Response};
use prometheus::proto::{Bucket, Metric, MetricFamily};
use serde::Serialize;

/// One snapshot of every call site's totals.
#[derive(Debug, Serialize)]
pub(super) struct CallTotals {
    /// When the snapshot was taken: seconds on a monotonic clock of this process (only differences
    /// between snapshots mean anything).
    at_seconds: f64,
    sites: Vec<SiteTotals>,
}

/// One call site's totals, under the labels its series carry.
#[derive(Debug, Default, Serialize)]
struct SiteTotals {
    function: String,
    module: String,
    kind: String,
    /// Calls ended, by outcome.
    calls: BTreeMap<String, u64>,
    in_flight: i64,
    /// `None` for a site without a duration histogram.
    duration: Option<Duration>,
}

/// A duration histogram as Prometheus keeps it.
#[derive(Debug, Default, Serialize)]
struct Duration {
    /// Upper bounds of the buckets, in seconds (the `+Inf` bucket is `count`).
    le: Vec<f64>,
    /// Calls at or under each bound, cumulative.
    counts: Vec<u64>,
    count: u64,
    sum: f64,
}

pub(super) async fn calls() -> Response {
    (super::access::no_store(), Json(snapshot())).into_response()
}

/// Every site's totals now, from the families of `hardened::metrics::registry()`.
pub(super) fn snapshot() -> CallTotals {
    static STARTED: OnceLock<Instant> = OnceLock::new();
    let started = *STARTED.get_or_init(Instant::now);
    let families = crate::metrics::registry().gather();
    CallTotals { at_seconds: started.elapsed().as_secs_f64(), sites: from_families(&families) }
}

fn from_families(families: &[MetricFamily]) -> Vec<SiteTotals> {
    let mut sites: BTreeMap<(String, String, String), SiteTotals> = BTreeMap::new();
    for family in families {
        let name = family.name();
        for metric in family.get_metric() {
            if name == "hardened_calls_total" {
                // Counters of whole calls, kept as f64 by the text model; exact below 2^53.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "whole counts")]
                let calls = metric.get_counter().get_value() as u64;
                *site(&mut sites, metric).calls.entry(label(metric, "outcome")).or_default() += calls;
            } else if name == "hardened_in_flight" {
                #[allow(clippy::cast_possible_truncation, reason = "a whole count of calls")]
                let in_flight = metric.get_gauge().get_value() as i64;
                site(&mut sites, metric).in_flight += in_flight;
            } else if name == "hardened_call_duration_seconds" {
                let histogram = metric.get_histogram();
                let buckets = histogram.get_bucket();
                site(&mut sites, metric).duration = Some(Duration {
                    le: buckets.iter().map(Bucket::upper_bound).collect(),
                    counts: buckets.iter().map(Bucket::cumulative_count).collect(),
                    count: histogram.get_sample_count(),
                    sum: histogram.get_sample_sum(),
                });
            }
        }
    }
    sites.into_values().collect()
}

/// The totals of the site `metric` is labelled with, made empty on first sight.
fn site<'a>(sites: &'a mut BTreeMap<(String, String, String), SiteTotals>, metric: &Metric) -> &'a mut SiteTotals {
    let key = (label(metric, "function"), label(metric, "module"), label(metric, "kind"));
    sites.entry(key.clone()).or_insert_with(|| SiteTotals {
        function: key.0,
        module: key.1,
        kind: key.2,
        ..SiteTotals::default()
    })
}

fn label(metric: &Metric, name: &str) -> String {
    metric.get_label().iter().find(|pair| pair.name() == name).map(|pair| pair.value().to_owned()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use prometheus::core::Collector;
    use prometheus::{CounterVec, HistogramOpts, HistogramVec, IntGaugeVec, Opts};
    use serde_json::json;

    use super::from_families;

    #[test]
    fn each_site_gathers_its_outcomes_histogram_and_in_flight_under_its_labels() {
        let labels = ["function", "module", "kind"];
        let outcome_labels = ["function", "module", "kind", "outcome"];
        let calls =
            CounterVec::new(Opts::new("hardened_calls_total", "calls"), &outcome_labels).expect("a valid counter");
        let in_flight = IntGaugeVec::new(Opts::new("hardened_in_flight", "in flight"), &labels).expect("a valid gauge");
        let duration = HistogramVec::new(
            HistogramOpts::new("hardened_call_duration_seconds", "duration").buckets(vec![0.1, 1.0]),
            &labels,
        )
        .expect("a valid histogram");
        let other = IntGaugeVec::new(Opts::new("hardened_build_info", "build"), &["version"]).expect("a valid gauge");
        calls.with_label_values(&["call_model", "agent::model", "llm", "ok"]).inc_by(3.0);
        calls.with_label_values(&["call_model", "agent::model", "llm", "error"]).inc_by(2.0);
        calls.with_label_values(&["clock", "agent::tools", "tool", "ok"]).inc();
        in_flight.with_label_values(&["call_model", "agent::model", "llm"]).set(1);
        for seconds in [0.05, 0.5, 0.5, 2.0, 3.0] {
            duration.with_label_values(&["call_model", "agent::model", "llm"]).observe(seconds);
        }
        other.with_label_values(&["1.0"]).set(1);
        let families: Vec<_> =
            [calls.collect(), in_flight.collect(), duration.collect(), other.collect()].into_iter().flatten().collect();

        let sites = serde_json::to_value(from_families(&families)).expect("serializable");

        let model = &sites[0];
        assert_eq!((&model["function"], &model["kind"]), (&json!("call_model"), &json!("llm")));
        assert_eq!(model["calls"], json!({ "ok": 3, "error": 2 }));
        assert_eq!(model["in_flight"], 1);
        assert_eq!(model["duration"]["le"], json!([0.1, 1.0]));
        assert_eq!(model["duration"]["counts"], json!([1, 3]), "cumulative, as Prometheus keeps them");
        assert_eq!(model["duration"]["count"], 5, "the calls over the last bound are counted too");
        assert_eq!(model["duration"]["sum"].as_f64().map(|sum| (sum * 100.0).round()), Some(605.0));
        let clock = &sites[1];
        assert_eq!((&clock["function"], &clock["calls"]), (&json!("clock"), &json!({ "ok": 1 })));
        assert_eq!(clock["duration"], json!(null), "a site without a duration series has no histogram");
        assert_eq!(sites.as_array().map(Vec::len), Some(2), "no site is made of other families: {sites}");
    }
}
