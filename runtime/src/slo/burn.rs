//! The multiwindow, multi-burn-rate alerts of Google's SRE workbook (chapter 5, "Alerting on SLOs"), for
//! an objective over 30 days.
//!
//! A burn rate is how many times faster than the objective allows the error budget is spent: at 1x it
//! lasts exactly the 30 days. Each condition asks for a burn rate over a long window, which proves the
//! burn significant (14.4x for an hour spends 2% of the budget), and over a short window a twelfth as
//! long, which proves it still going on, so that the alert stops soon after the burn does.

/// A window of the rules, as `PromQL` writes it, and in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    /// `5m`, `1h`, `3d`.
    pub(crate) name: &'static str,
    pub(crate) seconds: u64,
}

const fn window(name: &'static str, seconds: u64) -> Window {
    Window { name, seconds }
}

/// The period the error budget is spent over.
pub(crate) const PERIOD: Window = window("30d", 30 * 86_400);

/// Every window a ratio is recorded over: the alerts' and the period's.
pub(crate) const WINDOWS: [Window; 8] = [
    window("5m", 300),
    window("30m", 1_800),
    window("1h", 3_600),
    window("2h", 7_200),
    window("6h", 21_600),
    window("1d", 86_400),
    window("3d", 259_200),
    PERIOD,
];

/// One condition of an alert: the bad ratio above `factor` times the budget over both windows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Condition {
    pub(crate) factor: f64,
    pub(crate) long: Window,
    pub(crate) short: Window,
}

/// One alert: either of its conditions fires it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct BurnAlert {
    pub(crate) name: &'static str,
    /// `page` or `ticket`, as deploy/prometheus/alerts.yml labels severities.
    pub(crate) severity: &'static str,
    /// How fast, in words, for the annotations.
    pub(crate) pace: &'static str,
    pub(crate) conditions: [Condition; 2],
}

/// Page when 2% of the budget goes in an hour or 5% in six; open a ticket when 10% goes in a day or in
/// three days.
pub(crate) const ALERTS: [BurnAlert; 2] = [
    BurnAlert {
        name: "HardenedSLOFastBurn",
        severity: "page",
        pace: "fast: at this rate it is gone in 2 to 5 days",
        conditions: [
            Condition { factor: 14.4, long: WINDOWS[2], short: WINDOWS[0] },
            Condition { factor: 6.0, long: WINDOWS[4], short: WINDOWS[1] },
        ],
    },
    BurnAlert {
        name: "HardenedSLOSlowBurn",
        severity: "ticket",
        pace: "steadily: at this rate it is gone before the 30 days are over",
        conditions: [
            Condition { factor: 3.0, long: WINDOWS[5], short: WINDOWS[3] },
            Condition { factor: 1.0, long: WINDOWS[6], short: WINDOWS[4] },
        ],
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_condition_spends_the_workbooks_share_of_the_budget() {
        // Budget spent = factor x long window / period: 2%, 5%, 10%, 10%.
        let spent: Vec<f64> = ALERTS
            .iter()
            .flat_map(|alert| alert.conditions)
            .map(|condition| condition.factor * condition.long.seconds as f64 / PERIOD.seconds as f64)
            .collect();
        for (spent, expected) in spent.iter().zip([0.02, 0.05, 0.10, 0.10]) {
            assert!((spent - expected).abs() < 1e-9, "{spent} != {expected}");
        }
        for condition in ALERTS.iter().flat_map(|alert| alert.conditions) {
            assert_eq!(condition.short.seconds * 12, condition.long.seconds);
        }
    }
}
