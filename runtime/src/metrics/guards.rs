//! Metrics of the guards, read from the guards themselves at scrape time:
//! breaker states, calls and transitions, limiter tokens and Redis errors, bulkhead permits and rejections
//! by guard.

use std::collections::HashMap;

use prometheus::core::{Collector, Desc};
use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};

use crate::guards;
use crate::guards::shards;
use crate::guards::site::sites;

struct Family {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    labels: &'static [&'static str],
}

const FAMILIES: &[Family] = &[
    Family {
        name: "hardened_circuit_breaker_state",
        help: "Circuit breaker state: 0 closed, 1 open, 2 half-open, 3 disabled.",
        kind: MetricType::GAUGE,
        labels: &["name"],
    },
    Family {
        name: "hardened_circuit_breaker_calls_total",
        help: "Calls seen by a circuit breaker, by result: success, failure, slow, not_permitted.",
        kind: MetricType::COUNTER,
        labels: &["name", "result"],
    },
    Family {
        name: "hardened_circuit_breaker_transitions_total",
        help: "Circuit breaker state transitions.",
        kind: MetricType::COUNTER,
        labels: &["name", "from", "to"],
    },
    Family {
        name: "hardened_rate_limiter_available_tokens",
        help: "Tokens a rate limiter could grant now.",
        kind: MetricType::GAUGE,
        labels: &["name"],
    },
    Family {
        name: "hardened_bulkhead_available_permits",
        help: "Free permits of a bulkhead.",
        kind: MetricType::GAUGE,
        labels: &["name"],
    },
    Family {
        name: "hardened_bulkhead_max_permits",
        help: "Permits of a bulkhead in all.",
        kind: MetricType::GAUGE,
        labels: &["name"],
    },
    Family {
        name: "hardened_rejections_total",
        help: "Calls refused by a guard: breaker, rate_limiter, bulkhead or timeout.",
        kind: MetricType::COUNTER,
        labels: &["guard", "name"],
    },
    Family {
        name: "hardened_rate_limiter_backend_errors_total",
        help: "Questions of a global rate limiter to Redis that failed or timed out.",
        kind: MetricType::COUNTER,
        labels: &["name"],
    },
];

/// Collects guard metrics at scrape time.
#[derive(Debug)]
pub(crate) struct GuardMetrics {
    descs: Vec<Desc>,
}

impl GuardMetrics {
    pub(crate) fn new() -> prometheus::Result<GuardMetrics> {
        let descs = FAMILIES
            .iter()
            .map(|family| {
                let labels = family.labels.iter().map(ToString::to_string).collect();
                Desc::new(family.name.to_owned(), family.help.to_owned(), labels, HashMap::new())
            })
            .collect::<prometheus::Result<_>>()?;
        Ok(GuardMetrics { descs })
    }
}

fn metric(labels: &[(&str, &str)], value: f64, kind: MetricType) -> Metric {
    let mut metric = Metric::default();
    metric.set_label(
        labels
            .iter()
            .map(|(name, value)| {
                let mut pair = LabelPair::default();
                pair.set_name((*name).to_owned());
                pair.set_value((*value).to_owned());
                pair
            })
            .collect(),
    );
    if kind == MetricType::COUNTER {
        let mut counter = Counter::default();
        counter.set_value(value);
        metric.set_counter(counter);
    } else {
        let mut gauge = Gauge::default();
        gauge.set_value(value);
        metric.set_gauge(gauge);
    }
    metric
}

impl Collector for GuardMetrics {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        // Every guard a site names exists from the first scrape on, so its series start at zero.
        guards::resolve_declared();
        let mut samples: Vec<Vec<Metric>> = FAMILIES.iter().map(|_| Vec::new()).collect();
        for breaker in guards::breakers() {
            let name = breaker.name();
            samples[0].push(metric(&[("name", name)], breaker.state().gauge_value() as f64, MetricType::GAUGE));
            let counts = breaker.counts();
            for (result, count) in [
                ("success", counts.success),
                ("failure", counts.failure),
                ("slow", counts.slow),
                ("not_permitted", counts.not_permitted),
            ] {
                samples[1].push(metric(&[("name", name), ("result", result)], count as f64, MetricType::COUNTER));
            }
            for (from, to, count) in breaker.transition_counts().exposed() {
                samples[2].push(metric(
                    &[("name", name), ("from", from.as_str()), ("to", to.as_str())],
                    count as f64,
                    MetricType::COUNTER,
                ));
            }
            samples[6].push(metric(
                &[("guard", "breaker"), ("name", name)],
                counts.not_permitted as f64,
                MetricType::COUNTER,
            ));
        }
        for limiter in guards::rate_limiters() {
            let name = limiter.name();
            samples[3].push(metric(&[("name", name)], f64::from(limiter.available()), MetricType::GAUGE));
            samples[6].push(metric(
                &[("guard", "rate_limiter"), ("name", name)],
                limiter.refused() as f64,
                MetricType::COUNTER,
            ));
            if limiter.backend_available().is_some() {
                samples[7].push(metric(&[("name", name)], limiter.backend_errors() as f64, MetricType::COUNTER));
            }
        }
        for bulkhead in guards::bulkheads() {
            let name = bulkhead.name();
            samples[4].push(metric(&[("name", name)], f64::from(bulkhead.available()), MetricType::GAUGE));
            samples[5].push(metric(&[("name", name)], f64::from(bulkhead.config().max), MetricType::GAUGE));
            samples[6].push(metric(
                &[("guard", "bulkhead"), ("name", name)],
                bulkhead.refused() as f64,
                MetricType::COUNTER,
            ));
        }
        for site in sites().iter().filter(|site| site.has_timeout()) {
            let name = format!("{}::{}", site.module(), site.name());
            let timeouts = shards::totals(site).timeouts;
            samples[6].push(metric(&[("guard", "timeout"), ("name", &name)], timeouts as f64, MetricType::COUNTER));
        }
        FAMILIES
            .iter()
            .zip(samples)
            .map(|(family, metrics)| {
                let mut proto = MetricFamily::default();
                proto.set_name(family.name.to_owned());
                proto.set_help(family.help.to_owned());
                proto.set_field_type(family.kind);
                proto.set_metric(metrics);
                proto
            })
            .collect()
    }
}
