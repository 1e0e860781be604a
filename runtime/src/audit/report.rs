//! The security report: what happened in a time window, and the patterns worth a look.
//!
//! Computed from a JSONL log by one streaming pass ([`SecurityReport::from_jsonl`]) or, with the feature
//! `postgres`, by queries in Postgres that count on its indexes and read the failed authentications in
//! timestamp order ([`SecurityReport::from_postgres`]); both give the same report for the same events, the
//! bursts found by the same code.
//!
//! The definitions are on [`SecurityReport`].

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::net::IpAddr;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use serde::{Serialize, Serializer};

use super::event::{AuditEvent, AuditOutcome, EventType, timestamp};
use super::jsonl::{JsonlRecord, read_jsonl};

/// The longest `burst_window` and `tool_baseline` accepted: about a century.
const MAX_DURATION: Duration = Duration::from_hours(100 * 366 * 24);

/// The thresholds of the suspicious patterns (see [`SecurityReport`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportOptions {
    /// Failed authentications of one subject within `burst_window` that make a burst (`N`, at least 1;
    /// default 5).
    pub burst_failures: u64,
    /// The span of time of a burst (`W`, default 5 minutes; whole microseconds count).
    #[serde(serialize_with = "human_duration")]
    pub burst_window: Duration,
    /// Calls in the window below which a tool is never reported (`M`, at least 1; default 10).
    pub tool_min_calls: u64,
    /// The failure rate, in percent, from which a tool is reported (1 to 100; default 50).
    pub tool_failure_percent: u8,
    /// The time before the window whose failure rate a tool's is compared with (default 7 days; zero: no
    /// comparison).
    #[serde(serialize_with = "human_duration")]
    pub tool_baseline: Duration,
    /// The rise of a tool's failure rate over its baseline rate, in percentage points, from which it is
    /// reported (1 to 100; default 25).
    pub tool_spike_points: u8,
}

impl Default for ReportOptions {
    fn default() -> ReportOptions {
        ReportOptions {
            burst_failures: 5,
            burst_window: Duration::from_mins(5),
            tool_min_calls: 10,
            tool_failure_percent: 50,
            tool_baseline: Duration::from_hours(7 * 24),
            tool_spike_points: 25,
        }
    }
}

impl ReportOptions {
    /// Checks the thresholds; the report functions call it.
    pub fn validate(&self) -> Result<(), ReportError> {
        let invalid = |message: String| Err(ReportError::Options(message));
        if self.burst_failures == 0 {
            return invalid("`burst_failures` must be at least 1, found 0".to_owned());
        }
        if self.tool_min_calls == 0 {
            return invalid("`tool_min_calls` must be at least 1, found 0".to_owned());
        }
        for (name, percent) in
            [("tool_failure_percent", self.tool_failure_percent), ("tool_spike_points", self.tool_spike_points)]
        {
            if !(1..=100).contains(&percent) {
                return invalid(format!("`{name}` must be between 1 and 100, found {percent}"));
            }
        }
        for (name, duration) in [("burst_window", self.burst_window), ("tool_baseline", self.tool_baseline)] {
            if duration > MAX_DURATION {
                return invalid(format!(
                    "`{name}` must be at most 100 years, found {}",
                    humantime::format_duration(duration)
                ));
            }
        }
        Ok(())
    }
}

fn human_duration<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&humantime::format_duration(*duration))
}

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// A threshold is out of range.
    #[error("invalid report options: {0}")]
    Options(String),
    /// The log could not be read.
    #[error("reading the audit log: {0}")]
    Io(#[from] std::io::Error),
    /// A query failed.
    #[cfg(feature = "postgres")]
    #[error("querying the audit table: {0}")]
    Database(#[from] sqlx::Error),
}

/// Who failed to authenticate.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    /// A `user_id`.
    User(String),
    /// An `ip_address`.
    IpAddress(IpAddr),
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::User(user) => write!(f, "user {user}"),
            Subject::IpAddress(ip) => write!(f, "ip {ip}"),
        }
    }
}

/// Repeated failed authentications of one subject (see [`SecurityReport`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuthenticationBurst {
    /// Whose.
    pub subject: Subject,
    /// The failures in the densest span of `burst_window`.
    pub failures: u64,
    /// The first failure of that span.
    #[serde(with = "timestamp")]
    pub first: DateTime<Utc>,
    /// The last failure of that span.
    #[serde(with = "timestamp")]
    pub last: DateTime<Utc>,
    /// The subject's failed authentications in the whole report window.
    pub failures_in_window: u64,
}

/// A tool failing often, or more often than before (see [`SecurityReport`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailingTool {
    /// The tool: the events' `resource`.
    pub resource: String,
    /// Its calls in the window.
    pub calls: u64,
    /// Its failed calls in the window.
    pub failures: u64,
    /// `failures / calls`.
    pub failure_rate: f64,
    /// Its calls in the baseline, before the window.
    pub baseline_calls: u64,
    /// Its failed calls in the baseline.
    pub baseline_failures: u64,
    /// `baseline_failures / baseline_calls`, if it had calls then.
    pub baseline_failure_rate: Option<f64>,
    /// Reported because its failure rate reached `tool_failure_percent`.
    pub high_failure_rate: bool,
    /// Reported because its failure rate rose by `tool_spike_points` over the baseline.
    pub spike: bool,
}

/// What happened in a time window, and the patterns worth a look.
///
/// # What it counts
///
/// Over the events whose timestamp is in the window `[from, to)` (both bounds rounded up to the
/// microsecond, the precision of event timestamps): all events, by event type and by outcome; failed
/// authentications (`AuthenticationAttempt` with outcome `Failure`); denied authorizations
/// (`AuthorizationCheck` with outcome `Denied`).
///
/// # Suspicious patterns
///
/// **Repeated failed authentications** ([`AuthenticationBurst`]). The subjects are each `user_id` and each
/// `ip_address` of a failed authentication in the window (an event with both counts for both). A subject is
/// reported when some span of time of length `burst_window` (`W`) holds at least `burst_failures` (`N`) of
/// its failures: when for some failure at time `t`, at least `N` failures fall in the closed interval
/// `[t - W, t]`. The report gives the densest such span (the most failures; among equals, the earliest):
/// its number of failures, its first and last failure; and the subject's failures in the whole window.
///
/// **Failing tools** ([`FailingTool`]). Tool calls are the `ToolExecution` events with a `resource` (the
/// tool), a failure one with outcome `Failure` (`Denied`, a refusal by a guard, is not the tool failing). A
/// tool with at least `tool_min_calls` (`M`) calls in the window is reported when
/// - its failure rate in the window is at least `tool_failure_percent` (high failure rate), or
/// - its failure rate in the window exceeds its failure rate over the `tool_baseline` before the window,
///   `[from - tool_baseline, from)`, by at least `tool_spike_points` percentage points, and it had at least
///   `M` calls then too (a spike; a zero `tool_baseline` turns this off).
///
/// All comparisons are in integers: a rate exactly at a threshold meets it.
///
/// # Order
///
/// Maps are sorted by key, bursts by subject (users before addresses), tools by name (bytewise), so that a
/// report is the same however it was computed.
///
/// Serializes to JSON; displays as a plain-text table.
///
/// ```
/// use chrono::{TimeDelta, Utc};
/// use hardened::audit::{ReportOptions, SecurityReport};
///
/// # let directory = tempfile::tempdir().unwrap();
/// # let path = directory.path().join("audit.jsonl");
/// let now = Utc::now();
/// let report = SecurityReport::from_jsonl(&path, now - TimeDelta::days(1)..now, &ReportOptions::default())?;
/// println!("{report}");
/// # Ok::<(), hardened::audit::ReportError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SecurityReport {
    /// The start of the window, included.
    #[serde(with = "timestamp")]
    pub from: DateTime<Utc>,
    /// The end of the window, excluded.
    #[serde(with = "timestamp")]
    pub to: DateTime<Utc>,
    /// The thresholds used.
    pub options: ReportOptions,
    /// Events in the window.
    pub total_events: u64,
    /// Events by event type; only the types seen.
    pub by_event_type: BTreeMap<String, u64>,
    /// Events by outcome; every outcome.
    pub by_outcome: BTreeMap<String, u64>,
    /// `AuthenticationAttempt` events with outcome `Failure`.
    pub failed_authentications: u64,
    /// `AuthorizationCheck` events with outcome `Denied`.
    pub denied_authorizations: u64,
    /// Subjects with repeated failed authentications, by subject.
    pub authentication_bursts: Vec<AuthenticationBurst>,
    /// Tools failing often or more often than before, by name.
    pub failing_tools: Vec<FailingTool>,
}

impl SecurityReport {
    /// The report of the events of a JSONL log (and its rotated files) in `window`, in one pass.
    ///
    /// Memory grows with the number of distinct users, addresses and tools, and with each subject's
    /// failures within twice `burst_window`, not with the log. Bursts are exact when each subject's failed
    /// authentications appear in the log in timestamp order, or out of it by at most `burst_window` (a log
    /// written by the pipeline is in the order events were emitted, moments after they were made); a
    /// failure later than that still counts, but may miss spans it belongs to. Lines that are not records
    /// are skipped with a warning (verify the log with [`verify_jsonl`](super::verify_jsonl)).
    pub fn from_jsonl(
        path: impl AsRef<Path>,
        window: Range<DateTime<Utc>>,
        options: &ReportOptions,
    ) -> Result<SecurityReport, ReportError> {
        options.validate()?;
        let mut tally = Tally::new(Bounds::new(window, options), options);
        let mut skipped = 0_u64;
        for record in read_jsonl(path) {
            match record? {
                JsonlRecord::Event(event, _) => tally.add(&event),
                JsonlRecord::Malformed(..) | JsonlRecord::TornTail(_) => skipped += 1,
            }
        }
        if skipped > 0 {
            tracing::warn!(skipped, "the security report skipped lines of the audit log that are not audit records");
        }
        Ok(tally.finish())
    }

    fn empty(bounds: &Bounds, options: &ReportOptions) -> SecurityReport {
        SecurityReport {
            from: bounds.from,
            to: bounds.to,
            options: options.clone(),
            total_events: 0,
            by_event_type: BTreeMap::new(),
            by_outcome: AuditOutcome::ALL.into_iter().map(|outcome| (outcome.as_str().to_owned(), 0)).collect(),
            failed_authentications: 0,
            denied_authorizations: 0,
            authentication_bursts: Vec::new(),
            failing_tools: Vec::new(),
        }
    }

    /// Counts `count` events of `event_type` with `outcome`.
    fn count(&mut self, event_type: &str, outcome: &str, count: u64) {
        self.total_events += count;
        *self.by_event_type.entry(event_type.to_owned()).or_default() += count;
        *self.by_outcome.entry(outcome.to_owned()).or_default() += count;
        if event_type == EventType::AuthenticationAttempt.as_str() && outcome == AuditOutcome::Failure.as_str() {
            self.failed_authentications += count;
        }
        if event_type == EventType::AuthorizationCheck.as_str() && outcome == AuditOutcome::Denied.as_str() {
            self.denied_authorizations += count;
        }
    }
}

/// The window and the burst span, in whole microseconds.
#[derive(Debug, Clone)]
struct Bounds {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    baseline_from: DateTime<Utc>,
    burst_window: TimeDelta,
}

impl Bounds {
    fn new(window: Range<DateTime<Utc>>, options: &ReportOptions) -> Bounds {
        let from = ceil_micros(window.start);
        let micros =
            |duration: Duration| TimeDelta::microseconds(i64::try_from(duration.as_micros()).unwrap_or(i64::MAX));
        Bounds {
            from,
            to: ceil_micros(window.end),
            baseline_from: from.checked_sub_signed(micros(options.tool_baseline)).unwrap_or(DateTime::<Utc>::MIN_UTC),
            burst_window: micros(options.burst_window),
        }
    }

    fn contains(&self, timestamp: DateTime<Utc>) -> bool {
        self.from <= timestamp && timestamp < self.to
    }
}

/// `timestamp` rounded up to the microsecond: for timestamps in whole microseconds, `t >= x` if and only if
/// `t >= ceil_micros(x)`, so that the bounds mean the same in Rust and in Postgres.
fn ceil_micros(timestamp: DateTime<Utc>) -> DateTime<Utc> {
    let truncated = timestamp.trunc_subsecs(6);
    if truncated == timestamp {
        truncated
    } else {
        truncated.checked_add_signed(TimeDelta::microseconds(1)).unwrap_or(truncated)
    }
}

/// A tool's calls, in the window and in the baseline.
#[derive(Debug, Default, Clone, Copy)]
struct ToolCounts {
    calls: u64,
    failures: u64,
    baseline_calls: u64,
    baseline_failures: u64,
}

impl ToolCounts {
    /// The tool's entry in the report, if it is to be reported.
    fn judge(self, resource: String, options: &ReportOptions) -> Option<FailingTool> {
        let ToolCounts { calls, failures, baseline_calls, baseline_failures } = self;
        if calls < options.tool_min_calls {
            return None;
        }
        let high_failure_rate =
            u128::from(failures) * 100 >= u128::from(options.tool_failure_percent) * u128::from(calls);
        // failures / calls - baseline_failures / baseline_calls >= points / 100, without division.
        let spike = !options.tool_baseline.is_zero()
            && baseline_calls >= options.tool_min_calls
            && 100
                * (i128::from(failures) * i128::from(baseline_calls)
                    - i128::from(baseline_failures) * i128::from(calls))
                >= i128::from(options.tool_spike_points) * i128::from(calls) * i128::from(baseline_calls);
        (high_failure_rate || spike).then(|| FailingTool {
            resource,
            calls,
            failures,
            failure_rate: failures as f64 / calls as f64,
            baseline_calls,
            baseline_failures,
            baseline_failure_rate: (baseline_calls > 0).then(|| baseline_failures as f64 / baseline_calls as f64),
            high_failure_rate,
            spike,
        })
    }
}

/// The report of a stream of events, one at a time.
struct Tally {
    bounds: Bounds,
    report: SecurityReport,
    bursts: HashMap<Subject, Failures>,
    tools: HashMap<String, ToolCounts>,
}

impl Tally {
    fn new(bounds: Bounds, options: &ReportOptions) -> Tally {
        Tally { report: SecurityReport::empty(&bounds, options), bounds, bursts: HashMap::new(), tools: HashMap::new() }
    }

    fn add(&mut self, event: &AuditEvent) {
        let timestamp = event.timestamp;
        if event.event_type == EventType::ToolExecution
            && let Some(resource) = &event.resource
            && self.bounds.baseline_from <= timestamp
            && timestamp < self.bounds.to
        {
            let failed = u64::from(event.outcome == AuditOutcome::Failure);
            let counts = match self.tools.get_mut(resource) {
                Some(counts) => counts,
                None => self.tools.entry(resource.clone()).or_default(),
            };
            if timestamp >= self.bounds.from {
                counts.calls += 1;
                counts.failures += failed;
            } else {
                counts.baseline_calls += 1;
                counts.baseline_failures += failed;
            }
        }
        if !self.bounds.contains(timestamp) {
            return;
        }
        self.report.count(event.event_type.as_str(), event.outcome.as_str(), 1);
        if event.event_type == EventType::AuthenticationAttempt && event.outcome == AuditOutcome::Failure {
            let subjects = [event.user_id.clone().map(Subject::User), event.ip_address.map(Subject::IpAddress)];
            for subject in subjects.into_iter().flatten() {
                self.bursts.entry(subject).or_default().push(timestamp, self.bounds.burst_window);
            }
        }
    }

    fn finish(self) -> SecurityReport {
        let Tally { mut report, bursts, tools, .. } = self;
        report.authentication_bursts = bursts_of(bursts, report.options.burst_failures);
        report.failing_tools =
            tools.into_iter().filter_map(|(tool, counts)| counts.judge(tool, &report.options)).collect();
        report.sort();
        report
    }
}

/// The subjects whose densest span holds at least `threshold` failures, unsorted.
fn bursts_of(bursts: HashMap<Subject, Failures>, threshold: u64) -> Vec<AuthenticationBurst> {
    bursts
        .into_iter()
        .filter_map(|(subject, failures)| {
            let (count, first, last) = failures.densest?;
            (count >= threshold).then_some(AuthenticationBurst {
                subject,
                failures: count,
                first,
                last,
                failures_in_window: failures.total,
            })
        })
        .collect()
}

impl SecurityReport {
    fn sort(&mut self) {
        self.authentication_bursts.sort_by(|left, right| left.subject.cmp(&right.subject));
        self.failing_tools.sort_by(|left, right| left.resource.cmp(&right.resource));
    }
}

/// One subject's failed authentications, for finding its densest span of `W`.
#[derive(Debug, Default)]
struct Failures {
    /// The failures since twice `W` before the latest, sorted.
    held: VecDeque<DateTime<Utc>>,
    latest: Option<DateTime<Utc>>,
    total: u64,
    /// The most failures in `[t - W, t]` for a failure at `t`, the first of them, and `t` (the earliest `t`
    /// among equal counts).
    densest: Option<(u64, DateTime<Utc>, DateTime<Utc>)>,
}

impl Failures {
    fn push(&mut self, timestamp: DateTime<Utc>, window: TimeDelta) {
        self.total += 1;
        let index = self.held.partition_point(|held| *held <= timestamp);
        self.held.insert(index, timestamp);
        let latest = self.latest.map_or(timestamp, |latest| latest.max(timestamp));
        self.latest = Some(latest);
        // The spans that gained a failure: those ending at a failure in [timestamp, timestamp + W]. In
        // timestamp order that is only the one ending at this failure.
        let reach = timestamp.checked_add_signed(window).unwrap_or(DateTime::<Utc>::MAX_UTC);
        let mut at = index;
        while let Some(&end) = self.held.get(at)
            && end <= reach
        {
            let start = end.checked_sub_signed(window).unwrap_or(DateTime::<Utc>::MIN_UTC);
            let upper = self.held.partition_point(|held| *held <= end);
            let lower = self.held.partition_point(|held| *held < start);
            let count = (upper - lower) as u64;
            let better = match self.densest {
                None => true,
                Some((best, _, best_end)) => count > best || (count == best && end < best_end),
            };
            if better {
                self.densest = Some((count, self.held[lower], end));
            }
            at = upper;
        }
        // A failure up to W late still finds every failure of the spans it joins.
        let keep_from = latest.checked_sub_signed(window * 2).unwrap_or(DateTime::<Utc>::MIN_UTC);
        while self.held.front().is_some_and(|held| *held < keep_from) {
            self.held.pop_front();
        }
    }
}

impl fmt::Display for SecurityReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let time = |timestamp: &DateTime<Utc>| timestamp.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        writeln!(f, "Security report from {} to {}", time(&self.from), time(&self.to))?;
        writeln!(f)?;
        let width = self
            .by_event_type
            .keys()
            .chain(self.by_outcome.keys())
            .map(String::len)
            .chain([22])
            .max()
            .unwrap_or_default();
        writeln!(f, "{:<width$}  {:>10}", "Events", self.total_events)?;
        for (outcome, count) in &self.by_outcome {
            writeln!(f, "  {outcome:<w$}  {count:>10}", w = width - 2)?;
        }
        writeln!(f, "By event type")?;
        for (event_type, count) in &self.by_event_type {
            writeln!(f, "  {event_type:<w$}  {count:>10}", w = width - 2)?;
        }
        writeln!(f, "{:<width$}  {:>10}", "Failed authentications", self.failed_authentications)?;
        writeln!(f, "{:<width$}  {:>10}", "Denied authorizations", self.denied_authorizations)?;
        writeln!(f)?;

        let options = &self.options;
        writeln!(
            f,
            "Repeated failed authentications (at least {} within {}): {}",
            options.burst_failures,
            humantime::format_duration(options.burst_window),
            self.authentication_bursts.len()
        )?;
        if !self.authentication_bursts.is_empty() {
            let subjects: Vec<String> =
                self.authentication_bursts.iter().map(|burst| burst.subject.to_string()).collect();
            let width = subjects.iter().map(String::len).chain([7]).max().unwrap_or_default();
            writeln!(
                f,
                "  {:<width$}  {:>8}  {:<27}  {:<27}  {:>9}",
                "SUBJECT", "FAILURES", "FIRST", "LAST", "IN WINDOW"
            )?;
            for (burst, subject) in self.authentication_bursts.iter().zip(&subjects) {
                writeln!(
                    f,
                    "  {subject:<width$}  {:>8}  {:<27}  {:<27}  {:>9}",
                    burst.failures,
                    time(&burst.first),
                    time(&burst.last),
                    burst.failures_in_window
                )?;
            }
        }
        writeln!(f)?;

        write!(
            f,
            "Failing tools (at least {} calls, and at least {}% failures",
            options.tool_min_calls, options.tool_failure_percent
        )?;
        if !options.tool_baseline.is_zero() {
            write!(
                f,
                " or {} points more than in the {} before",
                options.tool_spike_points,
                humantime::format_duration(options.tool_baseline)
            )?;
        }
        writeln!(f, "): {}", self.failing_tools.len())?;
        if !self.failing_tools.is_empty() {
            let width = self.failing_tools.iter().map(|tool| tool.resource.len()).chain([4]).max().unwrap_or_default();
            writeln!(
                f,
                "  {:<width$}  {:>8}  {:>8}  {:>7}  {:>16}  REASON",
                "TOOL", "CALLS", "FAILURES", "RATE", "BEFORE"
            )?;
            for tool in &self.failing_tools {
                let before = tool
                    .baseline_failure_rate
                    .map_or_else(|| "-".to_owned(), |rate| format!("{:.1}% of {}", rate * 100.0, tool.baseline_calls));
                let reason = match (tool.high_failure_rate, tool.spike) {
                    (true, true) => "high rate, spike",
                    (true, false) => "high rate",
                    _ => "spike",
                };
                writeln!(
                    f,
                    "  {:<width$}  {:>8}  {:>8}  {:>6.1}%  {before:>16}  {reason}",
                    tool.resource,
                    tool.calls,
                    tool.failures,
                    tool.failure_rate * 100.0
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(feature = "postgres")]
mod sql {
    use std::collections::HashMap;
    use std::ops::Range;

    use chrono::{DateTime, Utc};
    use sqlx::PgPool;

    use super::{Bounds, Failures, ReportError, ReportOptions, SecurityReport, Subject, ToolCounts, bursts_of};

    /// Events by type and outcome: an index-only scan of `audit_log_timestamp`.
    const COUNTS: &str = "SELECT event_type, outcome, count(*) FROM audit_log \
         WHERE \"timestamp\" >= $1 AND \"timestamp\" < $2 GROUP BY event_type, outcome";

    /// The failed authentications of the window in timestamp order, for finding bursts as the JSONL report
    /// does: an index-only scan of the partial index `audit_log_failed_authentication`, which is in that order.
    const DECLARE_FAILURES: &str = "DECLARE failures NO SCROLL CURSOR FOR \
         SELECT \"timestamp\", user_id, host(ip_address) FROM audit_log \
         WHERE event_type = 'AuthenticationAttempt' AND outcome = 'Failure' \
           AND \"timestamp\" >= $1 AND \"timestamp\" < $2 \
         ORDER BY \"timestamp\"";

    /// Failed authentications read per round trip: memory holds one page, not the window's failures.
    const FETCH_FAILURES: &str = "FETCH 10000 FROM failures";
    /// The rows of a full page of [`FETCH_FAILURES`].
    const FAILURES_PAGE: usize = 10_000;

    /// Each tool's calls and failures in the window ($2..$3) and in the baseline ($1..$2), for tools with at
    /// least $4 calls in the window: an index-only scan of `audit_log_event_type`.
    const TOOLS: &str = "SELECT resource, \
             count(*) FILTER (WHERE \"timestamp\" >= $2) AS calls, \
             count(*) FILTER (WHERE \"timestamp\" >= $2 AND outcome = 'Failure') AS failures, \
             count(*) FILTER (WHERE \"timestamp\" < $2) AS baseline_calls, \
             count(*) FILTER (WHERE \"timestamp\" < $2 AND outcome = 'Failure') AS baseline_failures \
         FROM audit_log \
         WHERE event_type = 'ToolExecution' AND resource IS NOT NULL AND \"timestamp\" >= $1 AND \"timestamp\" < $3 \
         GROUP BY resource HAVING count(*) FILTER (WHERE \"timestamp\" >= $2) >= $4";

    const BEGIN_SNAPSHOT: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";

    /// Plans each query for its window. A prepared statement's generic plan, which Postgres adopts after a
    /// few runs, estimates a default fraction of the table for any window: a plan without parallel workers,
    /// which counts a large window at about half the speed.
    const PLAN_FOR_THE_WINDOW: &str = "SET LOCAL plan_cache_mode = force_custom_plan";

    /// A failed authentication: timestamp, user, address.
    type FailureRow = (DateTime<Utc>, Option<String>, Option<String>);

    fn count(value: i64) -> u64 {
        u64::try_from(value).unwrap_or_default()
    }

    impl SecurityReport {
        /// The report of the events of the audit table in `window`, in one snapshot, from index-only
        /// scans of the table's indexes: Postgres counts the events and the tool calls, and sends one row
        /// per tool and one per failed authentication in the window, in timestamp order, from which bursts
        /// are found as [`from_jsonl`](SecurityReport::from_jsonl) finds them (memory holds one page of
        /// failures and each subject's failures within twice `burst_window`).
        ///
        /// Index-only scans read the table only for pages not marked all-visible in its visibility map,
        /// which autovacuum keeps up to date (an insert-only table included, since Postgres 13); where
        /// autovacuum is off, run `VACUUM audit_log` from time to time, or the report reads the table.
        pub async fn from_postgres(
            pool: &PgPool,
            window: Range<DateTime<Utc>>,
            options: &ReportOptions,
        ) -> Result<SecurityReport, ReportError> {
            options.validate()?;
            let bounds = Bounds::new(window, options);
            let mut report = SecurityReport::empty(&bounds, options);
            if bounds.from >= bounds.to {
                return Ok(report);
            }
            let mut transaction = pool.begin_with(BEGIN_SNAPSHOT).await?;
            sqlx::query(PLAN_FOR_THE_WINDOW).execute(&mut *transaction).await?;

            let counts: Vec<(String, String, i64)> =
                sqlx::query_as(COUNTS).bind(bounds.from).bind(bounds.to).fetch_all(&mut *transaction).await?;
            for (event_type, outcome, events) in counts {
                report.count(&event_type, &outcome, count(events));
            }

            // The bursts as the JSONL report finds them, from the failures in timestamp order: the same code,
            // the same results.
            let mut bursts = HashMap::<Subject, Failures>::new();
            sqlx::query(DECLARE_FAILURES).bind(bounds.from).bind(bounds.to).execute(&mut *transaction).await?;
            loop {
                let page: Vec<FailureRow> = sqlx::query_as(FETCH_FAILURES).fetch_all(&mut *transaction).await?;
                for (timestamp, user_id, ip_address) in &page {
                    let ip_address = match ip_address {
                        Some(ip) => Some(Subject::IpAddress(
                            ip.parse()
                                .map_err(|error| sqlx::Error::Decode(format!("ip_address `{ip}`: {error}").into()))?,
                        )),
                        None => None,
                    };
                    for subject in [user_id.clone().map(Subject::User), ip_address].into_iter().flatten() {
                        bursts.entry(subject).or_default().push(*timestamp, bounds.burst_window);
                    }
                }
                if page.len() < FAILURES_PAGE {
                    break;
                }
            }
            report.authentication_bursts = bursts_of(bursts, options.burst_failures);

            let tools: Vec<(String, i64, i64, i64, i64)> = sqlx::query_as(TOOLS)
                .bind(bounds.baseline_from)
                .bind(bounds.from)
                .bind(bounds.to)
                .bind(i64::try_from(options.tool_min_calls).unwrap_or(i64::MAX))
                .fetch_all(&mut *transaction)
                .await?;
            transaction.commit().await?;
            let tools: HashMap<String, ToolCounts> = tools
                .into_iter()
                .map(|(tool, calls, failures, baseline_calls, baseline_failures)| {
                    let counts = ToolCounts {
                        calls: count(calls),
                        failures: count(failures),
                        baseline_calls: count(baseline_calls),
                        baseline_failures: count(baseline_failures),
                    };
                    (tool, counts)
                })
                .collect();
            report.failing_tools =
                tools.into_iter().filter_map(|(tool, counts)| counts.judge(tool, &report.options)).collect();
            report.sort();
            Ok(report)
        }
    }
}
