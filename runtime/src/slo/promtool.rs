//! The unit tests of the rule file, for `promtool test rules`: for every objective, indicator, alert and
//! condition, a service that has served well for the longest window of the alert starts to burn its budget
//! at a constant rate. Just above the condition's burn rate (1.1 times it), the alert must be quiet two
//! samples before the long window's bad ratio crosses the threshold and firing two samples after; just
//! below it (0.9 times), it must still be quiet once both windows hold nothing but the burn, when the
//! ratio can rise no more.
//!
//! The two samples either side absorb how `rate()` extrapolates at the edges of its window, which
//! differs by a sample between Prometheus versions.

use std::fmt::Write as _;

use super::Objective;
use super::burn::{ALERTS, BurnAlert, Condition};
use super::rules::{ALERTS_GROUP, RECORDING_GROUP, annotations, quoted};
use super::sli::{Sli, budget, number};

/// The labels every input series has: one instance of one service.
const JOB: &str = "service";
const INSTANCE: &str = "service:9090";

/// Calls per sample interval.
const CALLS: f64 = 1000.0;

/// How far above and below a condition's burn rate the tests burn.
const ABOVE: f64 = 1.1;
const BELOW: f64 = 0.9;

/// The file's opening comment.
const HEADER: &str = "\
# Unit tests of slo.yml, generated with it by hardened::slo (do not edit): promtool test rules <this file>.
# For each objective, indicator and condition of one alert, a service that has served well for the alert's
# longest window starts to burn its error budget at a constant rate. At 1.1 times the condition's burn
# rate the alert is quiet two samples before the long window crosses the threshold and firing two samples
# after; at 0.9 times it is still quiet once both windows hold nothing but the burn.
";

/// One test: the burn starts at `start` (seconds), at `bad` calls of every `CALLS` per `interval`.
struct Burn<'a> {
    objective: &'a Objective,
    sli: Sli,
    interval: u64,
    start: u64,
    bad: f64,
}

impl Burn<'_> {
    fn samples_before(&self) -> u64 {
        self.start / self.interval
    }

    /// `first` until the burn, then `during` per sample, as promtool's expanding notation writes it.
    fn counter(&self, first: f64, during: f64, samples: u64) -> String {
        let before = self.samples_before();
        let at_start = first * before as f64;
        format!(
            "0+{}x{before} {}+{}x{}",
            number(first),
            number(at_start + during),
            number(during),
            samples - before - 1
        )
    }

    fn series(&self, out: &mut String, end: u64) {
        let member = &self.objective.members[0];
        let site = format!(
            "job=\"{JOB}\",instance=\"{INSTANCE}\",function=\"{}\",module=\"{}\",kind=\"{}\"",
            member.function, member.module, member.kind
        );
        // One sample past the last evaluation.
        let samples = end / self.interval + 2;
        let mut input = |series: String, values: String| {
            let _ = writeln!(out, "      - series: {}", quoted(&series));
            let _ = writeln!(out, "        values: {}", quoted(&values));
        };
        input(format!("hardened_slo_info{{{site},slo=\"{}\"}}", self.objective.name), format!("1x{samples}"));
        let good = self.counter(CALLS, CALLS - self.bad, samples);
        if let (Sli::Latency, Some(latency)) = (self.sli, self.objective.latency) {
            let le = latency.threshold.as_secs_f64().to_string();
            input(format!("hardened_call_duration_seconds_bucket{{{site},le=\"{le}\"}}"), good);
            input(format!("hardened_call_duration_seconds_count{{{site}}}"), format!("0+{}x{samples}", number(CALLS)));
        } else {
            input(format!("hardened_calls_total{{{site},outcome=\"ok\"}}"), good);
            let bad = self.counter(0.0, self.bad, samples);
            input(format!("hardened_calls_total{{{site},outcome=\"error\"}}"), bad);
        }
    }
}

/// When the condition's long window crosses its threshold at a burn of `ratio`, in seconds after the burn
/// starts; `None` when it never does.
fn crossing(condition: &Condition, budget: f64, ratio: f64) -> Option<f64> {
    let threshold = condition.factor * budget;
    (ratio > threshold).then(|| condition.long.seconds as f64 * threshold / ratio)
}

fn minutes(seconds: u64) -> String {
    format!("{}m", seconds / 60)
}

fn expectation(out: &mut String, objective: &Objective, sli: Sli, alert: &BurnAlert, at: u64, firing: bool) {
    let _ = writeln!(out, "      - eval_time: {}", minutes(at));
    let _ = writeln!(out, "        alertname: {}", alert.name);
    if !firing {
        let _ = writeln!(out, "        exp_alerts: []");
        return;
    }
    let _ = writeln!(out, "        exp_alerts:");
    let _ = writeln!(out, "          - exp_labels:");
    for (key, value) in
        [("job", JOB), ("slo", objective.name.as_str()), ("severity", alert.severity), ("sli", sli.label())]
    {
        let _ = writeln!(out, "              {key}: {}", quoted(value));
    }
    let _ = writeln!(out, "            exp_annotations:");
    for (key, value) in annotations(objective, sli, alert, JOB) {
        let _ = writeln!(out, "              {key}: {}", quoted(&value));
    }
}

/// The tests of one condition of `alert` for `sli` of `objective`, above and below its burn rate.
fn condition_tests(out: &mut String, objective: &Objective, sli: Sli, alert: &BurnAlert, index: usize) {
    let condition = &alert.conditions[index];
    let sibling = &alert.conditions[1 - index];
    let budget = budget(sli.target(objective).unwrap_or_default());
    let interval = interval(alert);
    let start = alert.conditions.iter().map(|condition| condition.long.seconds).max().unwrap_or_default();
    // Whole samples: the crossing times are positive and at most days long.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "positive, at most days")]
    let floor = |seconds: f64| (seconds / interval as f64).floor() as u64 * interval;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "positive, at most days")]
    let ceil = |seconds: f64| (seconds / interval as f64).ceil() as u64 * interval;
    for (factor, above) in [(ABOVE, true), (BELOW, false)] {
        let ratio = condition.factor * budget * factor;
        if ratio >= 1.0 {
            let _ = writeln!(
                out,
                "  # {} {}: a burn of {}x needs more bad calls than there are calls; not tested.",
                objective.name,
                sli.label(),
                number(condition.factor)
            );
            return;
        }
        let bad = (ratio * CALLS * 1e6).round() / 1e6;
        let ratio = bad / CALLS;
        let sibling_at = crossing(sibling, budget, ratio);
        let name = format!(
            "{} {}: {} at {}x the budget's rate ({} x {}x over {} and {})",
            objective.name,
            sli.label(),
            alert.name,
            number(ratio / budget),
            number(factor),
            number(condition.factor),
            condition.long.name,
            condition.short.name
        );
        let mut checks = Vec::new();
        if above {
            let at = crossing(condition, budget, ratio).unwrap_or_default();
            let quiet = start + floor(at) - 2 * interval;
            if sibling_at.is_none_or(|sibling| start + floor(sibling) - 2 * interval >= quiet) {
                checks.push((quiet, false));
            }
            checks.push((start + ceil(at) + 2 * interval, true));
        } else {
            let full = start + condition.long.seconds + condition.short.seconds + interval;
            let quiet = sibling_at.map_or(full, |sibling| full.min(start + floor(sibling) - 2 * interval));
            checks.push((quiet, false));
        }
        let end = checks.iter().map(|(at, _)| *at).max().unwrap_or_default();
        let _ = writeln!(out, "  - name: {}", quoted(&name));
        let _ = writeln!(out, "    interval: {}", minutes(interval));
        let _ = writeln!(out, "    input_series:");
        Burn { objective, sli, interval, start, bad }.series(out, end);
        let _ = writeln!(out, "    alert_rule_test:");
        for (at, firing) in checks {
            expectation(out, objective, sli, alert, at, firing);
        }
    }
}

/// Seconds between two samples of the tests of `alert`, and between two evaluations of the rules: a fifth
/// of its shortest window, in whole minutes. Rules are evaluated no more often than the samples change,
/// which keeps the tests of the slow alert (whose series span days) quick.
fn interval(alert: &BurnAlert) -> u64 {
    let shortest = alert.conditions.iter().map(|condition| condition.short.seconds).min().unwrap_or(300);
    (shortest / 5 / 60).max(1) * 60
}

/// The file of `alert`'s tests: `slo_page_test.yml`, `slo_ticket_test.yml`.
pub(crate) fn file_name(alert: &BurnAlert) -> String {
    format!("slo_{}_test.yml", alert.severity)
}

/// The unit tests of `alert` (one file each, since each evaluates the rules at its own interval) for
/// `objectives`; `rules` names the rule file beside it.
pub(crate) fn render(objectives: &[Objective], rules: &str, alert: &BurnAlert) -> String {
    let mut out = String::from(HEADER);
    let _ = writeln!(out, "\nrule_files:\n  - {rules}\nevaluation_interval: {}", minutes(interval(alert)));
    // The alerts read what the recording rules wrote at the same evaluation: at an interval longer than
    // the 5 minutes a sample stays fresh, the other order would leave them nothing to read.
    let _ = writeln!(out, "group_eval_order:\n  - {RECORDING_GROUP}\n  - {ALERTS_GROUP}\ntests:");
    for objective in objectives.iter().filter(|objective| !objective.members.is_empty()) {
        for sli in Sli::of(objective) {
            for index in 0..alert.conditions.len() {
                condition_tests(&mut out, objective, sli, alert, index);
            }
        }
    }
    out
}

/// Every alert's tests: file name and text.
pub(crate) fn render_all(objectives: &[Objective], rules: &str) -> Vec<(String, String)> {
    ALERTS.iter().map(|alert| (file_name(alert), render(objectives, rules, alert))).collect()
}
