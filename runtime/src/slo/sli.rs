//! The two indicators an objective can have, the series that record them, and the numbers rules write.

use super::Objective;
use super::burn::Window;

/// An indicator: which calls are bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sli {
    /// Calls that end in an error, a panic, a timeout or a rejection, among those not cancelled.
    Success,
    /// Calls slower than the latency threshold, among all calls.
    Latency,
}

/// The outcomes the success indicator counts as bad. `cancelled` is neither good nor bad: the caller
/// gave up, and the call says nothing of the service.
pub(crate) const BAD_OUTCOMES: &str = "error|panic|timeout|rejected";

impl Sli {
    /// The `sli` label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Sli::Success => "success",
            Sli::Latency => "latency",
        }
    }

    /// The recorded ratio of bad calls over `window`.
    pub(crate) fn ratio(self, window: Window) -> String {
        format!("hardened:slo_{}_bad_ratio:rate{}", self.label(), window.name)
    }

    /// The percentage `objective` promises for this indicator, if it has it.
    pub(crate) fn target(self, objective: &Objective) -> Option<f64> {
        match self {
            Sli::Success => objective.success,
            Sli::Latency => objective.latency.map(|latency| latency.target),
        }
    }

    /// What the objective promises, in words: `99.9% of calls succeed`.
    pub(crate) fn promise(self, objective: &Objective) -> Option<String> {
        let target = self.target(objective)?;
        Some(match (self, objective.latency) {
            (Sli::Latency, Some(latency)) => {
                format!("{}% of calls within {}", number(target), humantime::format_duration(latency.threshold))
            }
            _ => format!("{}% of calls succeed", number(target)),
        })
    }

    /// The indicators `objective` has, success first.
    pub(crate) fn of(objective: &Objective) -> impl Iterator<Item = Sli> + '_ {
        [Sli::Success, Sli::Latency].into_iter().filter(|sli| sli.target(objective).is_some())
    }
}

/// The error budget of a percentage target: the share of calls that may be bad (99.9 gives 0.001).
pub(crate) fn budget(target: f64) -> f64 {
    (100.0 - target) / 100.0
}

/// A number as rules write it: at most ten decimals, without trailing zeros (0.001, 14.4, 6).
pub(crate) fn number(value: f64) -> String {
    let fixed = format!("{value:.10}");
    let trimmed = fixed.trim_end_matches('0').trim_end_matches('.');
    if trimmed.is_empty() || trimmed == "-" { "0".to_owned() } else { trimmed.to_owned() }
}

/// A regular expression matching the `le` label of a histogram bound of `seconds`, as hardened writes
/// it (`2`, `0.25`) and as Prometheus 3 normalises it on ingestion (`2.0`).
pub(crate) fn le_pattern(seconds: f64) -> String {
    let written = seconds.to_string();
    let escaped = written.replace('.', "\\\\.");
    if written.contains(['.', 'e']) { escaped } else { format!("{escaped}|{escaped}\\\\.0") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_short_and_exact() {
        assert_eq!(number(budget(99.9)), "0.001");
        assert_eq!(number(budget(99.0)), "0.01");
        assert_eq!(number(14.4), "14.4");
        assert_eq!(number(6.0), "6");
        assert_eq!(number(0.0), "0");
    }

    #[test]
    fn the_le_pattern_matches_both_spellings_of_a_bound() {
        assert_eq!(le_pattern(2.0), "2|2\\\\.0");
        assert_eq!(le_pattern(0.25), "0\\\\.25");
    }
}
