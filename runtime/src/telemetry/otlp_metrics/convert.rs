//! Prometheus families, as the registry gathers them, into OTLP metrics: counters as monotonic sums,
//! gauges as gauges, histograms as explicit-bucket histograms, each cumulative or as the change since the
//! last export.

use std::collections::HashMap;

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Exemplar as OtlpExemplar, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    Sum, Summary, SummaryDataPoint, metric, number_data_point, summary_data_point::ValueAtQuantile,
};
use prometheus::proto::{MetricFamily, MetricType};

use super::names::{OtlpName, otlp_name};
use crate::telemetry::MetricsTemporality;

/// When the data points of one export start and end, in nanoseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Window {
    /// When counting began: the exporter's start for cumulative points, the last delivered export's time
    /// for delta points.
    pub(super) start: u64,
    /// When the values were read.
    pub(super) now: u64,
}

/// The totals of every counter and histogram series as the last delivered export read them: what delta
/// points are the change from.
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct Delivered {
    series: HashMap<String, Totals>,
}

#[derive(Debug, Clone, PartialEq)]
enum Totals {
    Counter(f64),
    Histogram { count: u64, sum: f64, buckets: Vec<u64> },
}

/// The exemplars of the duration histogram's series, by `function`, `module` and `kind`.
pub(super) type Exemplars = crate::metrics::exemplars::BySeries;

/// The family whose buckets keep exemplars.
const CALL_DURATION: &str = "hardened_call_duration_seconds";

/// One export's metrics, and the totals to remember once the collector has taken them.
#[derive(Debug)]
pub(super) struct Converted {
    pub(super) metrics: Vec<Metric>,
    pub(super) totals: Delivered,
}

/// Converts `families`; with delta temporality, each counter and histogram point is the change since
/// `delivered` (a series whose total went down, a process that restarted its count, starts again).
pub(super) fn convert(
    families: &[MetricFamily],
    window: Window,
    temporality: MetricsTemporality,
    delivered: &Delivered,
    exemplars: &Exemplars,
) -> Converted {
    let delta = temporality != MetricsTemporality::Cumulative;
    let temporality = if delta { AggregationTemporality::Delta } else { AggregationTemporality::Cumulative } as i32;
    let mut totals = Delivered::default();
    let mut metrics = Vec::with_capacity(families.len());
    for family in families {
        let kind = family.get_field_type();
        let name = otlp_name(family.name(), kind == MetricType::COUNTER);
        let data = match kind {
            MetricType::COUNTER => {
                let data_points = family
                    .get_metric()
                    .iter()
                    .map(|metric| {
                        let key = series_key(family.name(), metric.get_label());
                        let total = metric.get_counter().get_value();
                        let previous = match delivered.series.get(&key) {
                            Some(Totals::Counter(previous)) if delta && *previous <= total => *previous,
                            _ => 0.0,
                        };
                        totals.series.insert(key, Totals::Counter(total));
                        number_point(&name, metric.get_label(), window, total - previous)
                    })
                    .collect();
                metric::Data::Sum(Sum { data_points, aggregation_temporality: temporality, is_monotonic: true })
            }
            MetricType::HISTOGRAM => {
                let data_points = family
                    .get_metric()
                    .iter()
                    .map(|metric| {
                        let key = series_key(family.name(), metric.get_label());
                        let mut point = histogram_point(&name, metric, window);
                        if family.name() == CALL_DURATION {
                            point.exemplars = series_exemplars(metric.get_label(), exemplars, window, delta);
                        }
                        let current = Totals::Histogram {
                            count: point.count,
                            sum: point.sum.unwrap_or_default(),
                            buckets: point.bucket_counts.clone(),
                        };
                        let point = match delivered.series.get(&key) {
                            Some(previous) if delta => subtract(point, previous),
                            _ => point,
                        };
                        totals.series.insert(key, current);
                        point
                    })
                    .collect();
                metric::Data::Histogram(Histogram { data_points, aggregation_temporality: temporality })
            }
            MetricType::GAUGE | MetricType::UNTYPED => {
                let data_points = family
                    .get_metric()
                    .iter()
                    .map(|metric| number_point(&name, metric.get_label(), window, gauge_value(kind, metric)))
                    .collect();
                metric::Data::Gauge(Gauge { data_points })
            }
            // Nothing hardened records is a summary; an application's collector may register one.
            MetricType::SUMMARY => {
                let data_points = family
                    .get_metric()
                    .iter()
                    .map(|metric| {
                        let summary = metric.get_summary();
                        SummaryDataPoint {
                            attributes: attributes(&name, metric.get_label()),
                            start_time_unix_nano: window.start,
                            time_unix_nano: window.now,
                            count: summary.sample_count(),
                            sum: summary.sample_sum(),
                            quantile_values: summary
                                .get_quantile()
                                .iter()
                                .map(|quantile| ValueAtQuantile {
                                    quantile: quantile.quantile(),
                                    value: quantile.value(),
                                })
                                .collect(),
                            flags: 0,
                        }
                    })
                    .collect();
                metric::Data::Summary(Summary { data_points })
            }
        };
        metrics.push(Metric {
            name: name.name.clone().into_owned(),
            description: family.help().to_owned(),
            unit: name.unit.to_owned(),
            metadata: Vec::new(),
            data: Some(data),
        });
    }
    // Cumulative exports need no memory; a delta one keeps what it sent.
    if !delta {
        totals = Delivered::default();
    }
    Converted { metrics, totals }
}

/// The exemplars of the duration series labelled `labels`, as OTLP carries them (the value in seconds);
/// in a delta export, only those of calls that ended within its window.
fn series_exemplars(
    labels: &[prometheus::proto::LabelPair],
    exemplars: &Exemplars,
    window: Window,
    delta: bool,
) -> Vec<OtlpExemplar> {
    let Some(kept) = crate::metrics::exemplars::of_series(labels, exemplars) else {
        return Vec::new();
    };
    kept.iter()
        .flatten()
        .filter(|exemplar| !delta || exemplar.unix_nanos > window.start)
        .map(|exemplar| OtlpExemplar {
            filtered_attributes: Vec::new(),
            time_unix_nano: exemplar.unix_nanos,
            span_id: exemplar.span_id.to_vec(),
            trace_id: exemplar.trace_id.to_vec(),
            #[allow(clippy::cast_precision_loss, reason = "a duration in nanoseconds, far below 2^52")]
            value: Some(opentelemetry_proto::tonic::metrics::v1::exemplar::Value::AsDouble(
                exemplar.value_nanos as f64 / 1e9,
            )),
        })
        .collect()
}

/// A gauge's value, or an untyped one's (which only an application's own collector can register).
fn gauge_value(kind: MetricType, metric: &prometheus::proto::Metric) -> f64 {
    if kind == MetricType::GAUGE {
        return metric.get_gauge().get_value();
    }
    #[allow(deprecated, reason = "the crate offers no other accessor of an untyped value")]
    metric.get_untyped().get_value()
}

/// The change from `previous` to `point`, or `point` itself when a total went down (a restarted count).
fn subtract(mut point: HistogramDataPoint, previous: &Totals) -> HistogramDataPoint {
    let Totals::Histogram { count, sum, buckets } = previous else {
        return point;
    };
    let comparable = buckets.len() == point.bucket_counts.len()
        && *count <= point.count
        && buckets.iter().zip(&point.bucket_counts).all(|(before, now)| before <= now);
    if comparable {
        point.count -= count;
        point.sum = point.sum.map(|now| now - sum);
        for (now, before) in point.bucket_counts.iter_mut().zip(buckets) {
            *now -= before;
        }
    }
    point
}

fn histogram_point(name: &OtlpName, metric: &prometheus::proto::Metric, window: Window) -> HistogramDataPoint {
    let histogram = metric.get_histogram();
    let count = histogram.get_sample_count();
    let mut explicit_bounds = Vec::new();
    let mut bucket_counts = Vec::new();
    let mut below = 0u64;
    for bucket in histogram.get_bucket() {
        if bucket.upper_bound().is_infinite() {
            continue;
        }
        explicit_bounds.push(bucket.upper_bound());
        // Prometheus counts are cumulative; OTLP counts each bucket on its own.
        bucket_counts.push(bucket.cumulative_count().saturating_sub(below));
        below = bucket.cumulative_count().max(below);
    }
    bucket_counts.push(count.saturating_sub(below));
    HistogramDataPoint {
        attributes: attributes(name, metric.get_label()),
        start_time_unix_nano: window.start,
        time_unix_nano: window.now,
        count,
        sum: Some(histogram.get_sample_sum()),
        bucket_counts,
        explicit_bounds,
        exemplars: Vec::new(),
        flags: 0,
        min: None,
        max: None,
    }
}

fn number_point(
    name: &OtlpName,
    labels: &[prometheus::proto::LabelPair],
    window: Window,
    value: f64,
) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attributes(name, labels),
        start_time_unix_nano: window.start,
        time_unix_nano: window.now,
        exemplars: Vec::new(),
        flags: 0,
        value: Some(number_data_point::Value::AsDouble(value)),
    }
}

/// The labels as OTLP attributes, under their OTLP names; an HTTP status code is a number there.
fn attributes(name: &OtlpName, labels: &[prometheus::proto::LabelPair]) -> Vec<KeyValue> {
    labels
        .iter()
        .map(|label| {
            let key = name.attribute(label.name());
            let value = match (key, label.value().parse::<i64>()) {
                ("http.response.status_code", Ok(code)) => any_value::Value::IntValue(code),
                _ => any_value::Value::StringValue(label.value().to_owned()),
            };
            KeyValue { key: key.to_owned(), value: Some(AnyValue { value: Some(value) }), ..KeyValue::default() }
        })
        .collect()
}

/// A series' identity: the family's name and its label pairs, which the registry gathers sorted.
fn series_key(family: &str, labels: &[prometheus::proto::LabelPair]) -> String {
    let mut key = family.to_owned();
    for label in labels {
        key.push('\u{0}');
        key.push_str(label.name());
        key.push('=');
        key.push_str(label.value());
    }
    key
}

#[cfg(test)]
mod tests {
    use prometheus::{HistogramOpts, IntCounterVec, Opts, Registry};

    use super::*;
    use crate::metrics::exemplars::Exemplar;

    fn registry() -> (Registry, IntCounterVec, prometheus::Histogram) {
        let registry = Registry::new();
        let calls =
            IntCounterVec::new(Opts::new("hardened_calls_total", "Calls."), &["function", "outcome"]).expect("present");
        let duration = prometheus::Histogram::with_opts(
            HistogramOpts::new("hardened_call_duration_seconds", "Durations.").buckets(vec![0.1, 1.0]),
        )
        .expect("present");
        registry.register(Box::new(calls.clone())).expect("present");
        registry.register(Box::new(duration.clone())).expect("present");
        (registry, calls, duration)
    }

    fn find<'a>(metrics: &'a [Metric], name: &str) -> &'a metric::Data {
        metrics.iter().find(|metric| metric.name == name).and_then(|metric| metric.data.as_ref()).expect(name)
    }

    fn sum_values(data: &metric::Data) -> Vec<f64> {
        let metric::Data::Sum(sum) = data else { panic!("not a sum: {data:?}") };
        sum.data_points
            .iter()
            .map(|point| match point.value {
                Some(number_data_point::Value::AsDouble(value)) => value,
                ref other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn counters_and_histograms_keep_their_counts_under_their_otlp_names() {
        let (registry, calls, duration) = registry();
        calls.with_label_values(&["ask", "ok"]).inc_by(3);
        for seconds in [0.05, 0.5, 0.7, 5.0] {
            duration.observe(seconds);
        }
        let window = Window { start: 10, now: 20 };
        let converted = convert(
            &registry.gather(),
            window,
            MetricsTemporality::Cumulative,
            &Delivered::default(),
            &Exemplars::new(),
        );

        let metric = converted.metrics.iter().find(|metric| metric.name == "hardened.calls").expect("calls");
        assert_eq!(metric.unit, "{call}");
        let metric::Data::Sum(sum) = metric.data.as_ref().expect("present") else { panic!("a sum") };
        assert!(sum.is_monotonic);
        assert_eq!(sum.aggregation_temporality, AggregationTemporality::Cumulative as i32);
        assert_eq!(sum_values(metric.data.as_ref().expect("present")), [3.0]);
        let point = &sum.data_points[0];
        assert_eq!((point.start_time_unix_nano, point.time_unix_nano), (10, 20));
        let keys: Vec<_> = point.attributes.iter().map(|pair| pair.key.as_str()).collect();
        assert_eq!(keys, ["function", "outcome"]);

        let metric::Data::Histogram(histogram) = find(&converted.metrics, "hardened.call.duration") else {
            panic!("a histogram")
        };
        let point = &histogram.data_points[0];
        assert_eq!(point.explicit_bounds, [0.1, 1.0]);
        assert_eq!(point.bucket_counts, [1, 2, 1], "per bucket, not cumulative, with the overflow bucket");
        assert_eq!(point.count, 4);
        assert!((point.sum.expect("present") - 6.25).abs() < 1e-9);
        assert!(converted.totals.series.is_empty(), "cumulative exports remember nothing");
    }

    #[test]
    fn delta_points_are_the_change_since_the_last_delivered_export() {
        let (registry, calls, duration) = registry();
        calls.with_label_values(&["ask", "ok"]).inc_by(3);
        duration.observe(0.5);
        let first = convert(
            &registry.gather(),
            Window { start: 0, now: 1 },
            MetricsTemporality::Delta,
            &Delivered::default(),
            &Exemplars::new(),
        );
        assert_eq!(sum_values(find(&first.metrics, "hardened.calls")), [3.0]);

        calls.with_label_values(&["ask", "ok"]).inc_by(2);
        duration.observe(5.0);
        duration.observe(0.05);
        let second = convert(
            &registry.gather(),
            Window { start: 1, now: 2 },
            MetricsTemporality::Delta,
            &first.totals,
            &Exemplars::new(),
        );
        assert_eq!(sum_values(find(&second.metrics, "hardened.calls")), [2.0]);
        let metric::Data::Histogram(histogram) = find(&second.metrics, "hardened.call.duration") else { panic!() };
        assert_eq!(histogram.aggregation_temporality, AggregationTemporality::Delta as i32);
        let point = &histogram.data_points[0];
        assert_eq!((point.count, point.bucket_counts.as_slice()), (2, &[1, 0, 1][..]));
        assert!((point.sum.expect("present") - 5.05).abs() < 1e-9);

        // An export the collector did not take is not remembered: the next delta covers both intervals.
        calls.with_label_values(&["ask", "ok"]).inc();
        let third = convert(
            &registry.gather(),
            Window { start: 1, now: 3 },
            MetricsTemporality::Delta,
            &first.totals,
            &Exemplars::new(),
        );
        assert_eq!(sum_values(find(&third.metrics, "hardened.calls")), [3.0]);
    }

    #[test]
    fn duration_points_carry_the_exemplars_of_their_series() {
        let registry = Registry::new();
        let duration = prometheus::HistogramVec::new(
            HistogramOpts::new(CALL_DURATION, "Durations.").buckets(vec![0.1, 1.0]),
            &["function", "kind", "module"],
        )
        .expect("valid");
        registry.register(Box::new(duration.clone())).expect("registered");
        duration.with_label_values(&["ask", "function", "agent"]).observe(0.5);
        let exemplar =
            |unix_nanos| Exemplar { trace_id: [7; 16], span_id: [9; 8], value_nanos: 500_000_000, unix_nanos };
        let exemplars: Exemplars = [(("ask", "agent", "function"), vec![None, Some(exemplar(50)), None])].into();

        let converted = convert(
            &registry.gather(),
            Window { start: 10, now: 100 },
            MetricsTemporality::Cumulative,
            &Delivered::default(),
            &exemplars,
        );
        let metric::Data::Histogram(histogram) = find(&converted.metrics, "hardened.call.duration") else { panic!() };
        let kept = &histogram.data_points[0].exemplars;
        assert_eq!(kept.len(), 1);
        assert_eq!((kept[0].trace_id.as_slice(), kept[0].span_id.as_slice()), (&[7; 16][..], &[9; 8][..]));
        assert_eq!(kept[0].time_unix_nano, 50);
        assert_eq!(kept[0].value, Some(opentelemetry_proto::tonic::metrics::v1::exemplar::Value::AsDouble(0.5)));

        // A delta export sends only the exemplars of its own window.
        let converted = convert(
            &registry.gather(),
            Window { start: 60, now: 100 },
            MetricsTemporality::Delta,
            &Delivered::default(),
            &exemplars,
        );
        let metric::Data::Histogram(histogram) = find(&converted.metrics, "hardened.call.duration") else { panic!() };
        assert!(histogram.data_points[0].exemplars.is_empty());
    }

    #[test]
    fn a_count_that_went_down_starts_again() {
        let mut delivered = Delivered::default();
        delivered.series.insert(series_key("hardened_calls_total", &[]), Totals::Counter(10.0));
        let registry = Registry::new();
        let counter = prometheus::IntCounter::new("hardened_calls_total", "Calls.").expect("present");
        registry.register(Box::new(counter.clone())).expect("present");
        counter.inc_by(4);
        let converted = convert(
            &registry.gather(),
            Window { start: 0, now: 1 },
            MetricsTemporality::LowMemory,
            &delivered,
            &Exemplars::new(),
        );
        assert_eq!(sum_values(find(&converted.metrics, "hardened.calls")), [4.0]);
    }

    #[test]
    fn http_status_codes_are_numbers_and_labels_take_their_convention_names() {
        let registry = Registry::new();
        let requests =
            IntCounterVec::new(Opts::new("hardened_http_requests_total", "Requests."), &["method", "route", "status"])
                .expect("present");
        registry.register(Box::new(requests.clone())).expect("present");
        requests.with_label_values(&["GET", "/v1/sessions", "200"]).inc();
        let converted = convert(
            &registry.gather(),
            Window { start: 0, now: 1 },
            MetricsTemporality::Cumulative,
            &Delivered::default(),
            &Exemplars::new(),
        );
        let metric::Data::Sum(sum) = find(&converted.metrics, "hardened.http.server.requests") else { panic!() };
        let attributes: Vec<_> = sum.data_points[0]
            .attributes
            .iter()
            .map(|pair| (pair.key.as_str(), pair.value.as_ref().and_then(|value| value.value.clone())))
            .collect();
        assert_eq!(
            attributes,
            [
                ("http.request.method", Some(any_value::Value::StringValue("GET".into()))),
                ("http.route", Some(any_value::Value::StringValue("/v1/sessions".into()))),
                ("http.response.status_code", Some(any_value::Value::IntValue(200))),
            ]
        );
    }
}
