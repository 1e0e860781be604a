//! The `OpenMetrics` 1.0 text format, which carries exemplars: what `/metrics` answers a scraper that asks
//! for `application/openmetrics-text` (Prometheus with exemplar storage on does).
//!
//! Families are written from the registry's gathered protobufs as the Prometheus text format writes them,
//! with `OpenMetrics`' differences: a counter's family is named without `_total` and its sample with it,
//! an untyped family is `unknown`, a histogram has its `+Inf` bucket, `HELP` escapes quotes, timestamps
//! are in seconds, and the exposition ends with `# EOF`. The buckets of `hardened_call_duration_seconds`
//! carry their [exemplars](super::exemplars).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use prometheus::proto::{LabelPair, Metric, MetricFamily, MetricType};

use super::calls::{CALL_DURATION, SeriesLabels, duration_exemplars};
use super::exemplars::Exemplar;

/// The content type of the `OpenMetrics` text format, version 1.0.0.
pub const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The registry's metrics in the `OpenMetrics` text format, with the exemplars kept for the buckets of the
/// call duration histogram.
#[must_use]
pub fn render_openmetrics() -> String {
    encode(&super::registry().gather(), &duration_exemplars())
}

/// `families` in the `OpenMetrics` text format; `exemplars` are those of the call duration series.
pub(crate) fn encode(families: &[MetricFamily], exemplars: &BTreeMap<SeriesLabels, Vec<Option<Exemplar>>>) -> String {
    let mut out = String::new();
    for family in families {
        let kind = family.get_field_type();
        let name = family.name();
        let family_name = match kind {
            MetricType::COUNTER => name.strip_suffix("_total").unwrap_or(name),
            _ => name,
        };
        let _ = writeln!(out, "# TYPE {family_name} {}", type_name(kind));
        if !family.help().is_empty() {
            let _ = writeln!(out, "# HELP {family_name} {}", escape(family.help(), true));
        }
        let exemplars = (name == CALL_DURATION).then_some(exemplars);
        for metric in family.get_metric() {
            write_metric(&mut out, family_name, kind, metric, exemplars);
        }
    }
    out.push_str("# EOF\n");
    out
}

fn type_name(kind: MetricType) -> &'static str {
    match kind {
        MetricType::COUNTER => "counter",
        MetricType::GAUGE => "gauge",
        MetricType::HISTOGRAM => "histogram",
        MetricType::SUMMARY => "summary",
        MetricType::UNTYPED => "unknown",
    }
}

fn write_metric(
    out: &mut String,
    name: &str,
    kind: MetricType,
    metric: &Metric,
    exemplars: Option<&BTreeMap<SeriesLabels, Vec<Option<Exemplar>>>>,
) {
    let labels = metric.get_label();
    // A timestamp of zero is the crate's "none", as its own text encoder reads it.
    let timestamp = (metric.timestamp_ms() != 0).then(|| metric.timestamp_ms() as f64 / 1000.0);
    match kind {
        MetricType::COUNTER => {
            sample(out, &format!("{name}_total"), labels, None, metric.get_counter().get_value(), timestamp, None);
        }
        MetricType::GAUGE => sample(out, name, labels, None, metric.get_gauge().get_value(), timestamp, None),
        MetricType::UNTYPED => {
            #[allow(deprecated, reason = "the crate's only accessor of an untyped value")]
            let value = metric.get_untyped().get_value();
            sample(out, name, labels, None, value, timestamp, None);
        }
        MetricType::SUMMARY => {
            let summary = metric.get_summary();
            for quantile in summary.get_quantile() {
                let at = ("quantile", quantile.quantile());
                sample(out, name, labels, Some(at), quantile.value(), timestamp, None);
            }
            sample(out, &format!("{name}_sum"), labels, None, summary.sample_sum(), timestamp, None);
            sample(out, &format!("{name}_count"), labels, None, summary.sample_count() as f64, timestamp, None);
        }
        MetricType::HISTOGRAM => {
            let histogram = metric.get_histogram();
            let kept = exemplars.and_then(|exemplars| super::exemplars::of_series(labels, exemplars));
            let exemplar = |index: usize| kept.and_then(|kept| kept.get(index).copied().flatten());
            let bucket_name = format!("{name}_bucket");
            let buckets = histogram.get_bucket();
            let mut has_inf = false;
            for (index, bucket) in buckets.iter().enumerate() {
                has_inf |= bucket.upper_bound() == f64::INFINITY;
                let at = ("le", bucket.upper_bound());
                let count = bucket.cumulative_count() as f64;
                sample(out, &bucket_name, labels, Some(at), count, timestamp, exemplar(index));
            }
            if !has_inf {
                let at = ("le", f64::INFINITY);
                let count = histogram.get_sample_count() as f64;
                sample(out, &bucket_name, labels, Some(at), count, timestamp, exemplar(buckets.len()));
            }
            sample(out, &format!("{name}_count"), labels, None, histogram.get_sample_count() as f64, timestamp, None);
            sample(out, &format!("{name}_sum"), labels, None, histogram.get_sample_sum(), timestamp, None);
        }
    }
}

fn sample(
    out: &mut String,
    name: &str,
    labels: &[LabelPair],
    extra: Option<(&str, f64)>,
    value: f64,
    timestamp: Option<f64>,
    exemplar: Option<Exemplar>,
) {
    out.push_str(name);
    if !labels.is_empty() || extra.is_some() {
        out.push('{');
        let mut first = true;
        for pair in labels {
            if !first {
                out.push(',');
            }
            first = false;
            let _ = write!(out, "{}=\"{}\"", pair.name(), escape(pair.value(), true));
        }
        if let Some((label, bound)) = extra {
            if !first {
                out.push(',');
            }
            let _ = write!(out, "{label}=\"{}\"", number(bound));
        }
        out.push('}');
    }
    out.push(' ');
    out.push_str(&number(value));
    if let Some(seconds) = timestamp {
        out.push(' ');
        out.push_str(&number(seconds));
    }
    if let Some(exemplar) = exemplar {
        let _ = write!(
            out,
            " # {{trace_id=\"{}\",span_id=\"{}\"}} {} {}",
            exemplar.trace_id_hex(),
            exemplar.span_id_hex(),
            number(exemplar.value_nanos as f64 / 1e9),
            unix_seconds(exemplar.unix_nanos),
        );
    }
    out.push('\n');
}

/// A number as `OpenMetrics` writes it: `+Inf`, `-Inf`, `NaN`, or Rust's shortest exact decimal.
fn number(value: f64) -> String {
    if value == f64::INFINITY {
        "+Inf".to_owned()
    } else if value == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else if value.is_nan() {
        "NaN".to_owned()
    } else {
        format!("{value}")
    }
}

/// Nanoseconds since the epoch as seconds with their fraction, exact to the nanosecond.
fn unix_seconds(nanos: u64) -> String {
    format!("{}.{:09}", nanos / 1_000_000_000, nanos % 1_000_000_000)
}

/// Escapes a label value or `HELP` text: backslash, newline and double quote.
fn escape(text: &str, quotes: bool) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '\\' => escaped.push_str("\\\\"),
            '\n' => escaped.push_str("\\n"),
            '"' if quotes => escaped.push_str("\\\""),
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts};

    use super::*;

    fn gathered(collector: &dyn prometheus::core::Collector) -> Vec<MetricFamily> {
        collector.collect()
    }

    #[test]
    fn a_counter_family_is_named_without_total_and_its_sample_with_it() {
        let counter =
            IntCounterVec::new(Opts::new("jobs_total", "Jobs \"done\".\nAll."), &["queue"]).expect("a valid counter");
        counter.with_label_values(&["a\\b"]).inc_by(3);
        let text = encode(&gathered(&counter), &BTreeMap::new());
        assert_eq!(
            text,
            "# TYPE jobs counter\n# HELP jobs Jobs \\\"done\\\".\\nAll.\njobs_total{queue=\"a\\\\b\"} 3\n# EOF\n"
        );
    }

    #[test]
    fn a_gauge_is_written_as_is() {
        let gauge = IntGauge::new("sessions", "Open sessions.").expect("a valid gauge");
        gauge.set(-2);
        let text = encode(&gathered(&gauge), &BTreeMap::new());
        assert_eq!(text, "# TYPE sessions gauge\n# HELP sessions Open sessions.\nsessions -2\n# EOF\n");
    }

    #[test]
    fn a_histogram_has_its_inf_bucket_count_and_sum() {
        let histogram = Histogram::with_opts(HistogramOpts::new("wait_seconds", "Wait.").buckets(vec![0.5, 1.0]))
            .expect("a valid histogram");
        histogram.observe(0.25);
        histogram.observe(2.0);
        let text = encode(&gathered(&histogram), &BTreeMap::new());
        assert_eq!(
            text,
            "# TYPE wait_seconds histogram\n# HELP wait_seconds Wait.\n\
             wait_seconds_bucket{le=\"0.5\"} 1\nwait_seconds_bucket{le=\"1\"} 1\nwait_seconds_bucket{le=\"+Inf\"} 2\n\
             wait_seconds_count 2\nwait_seconds_sum 2.25\n# EOF\n"
        );
    }

    #[test]
    fn numbers_and_timestamps_are_written_as_openmetrics_reads_them() {
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(f64::NEG_INFINITY), "-Inf");
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(0.005), "0.005");
        assert_eq!(unix_seconds(1_700_000_000_000_000_007), "1700000000.000000007");
    }
}
