//! The security report: what happened in a time window, and the patterns worth a look.
//!
//! Computed from a JSONL log by one streaming pass ([`SecurityReport::from_jsonl`]) or, with the feature
//! `postgres`, by queries in Postgres that count on its indexes and read the failed authentications in
//! timestamp order ([`SecurityReport::from_postgres`]); both give the same report for the same events, the
//! failed authentications summed and the bursts found by the same code.
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

use super::event::{AuditEvent, AuditOutcome, Details, EventType, timestamp};
use super::jsonl::{JsonlRecord, read_jsonl};

/// The longest `burst_window` and `tool_baseline` accepted: about a century.
const MAX_DURATION: Duration = Duration::from_hours(100 * 366 * 24);

/// The detail of an event that stands for several attempts: how many, a whole number from 1 to
/// [`MAX_ATTEMPTS`] (`20.0` is whole, as canonical JSON writes it `20`). A server that records its failed
/// authentications once per interval (rather than once per request, which would let a flood of failures
/// flood the audit trail) sets it on that event, and the security report counts the event for that many
/// failures, all at the event's timestamp.
///
/// ```
/// use hardened::audit::{ATTEMPTS_DETAIL, AuditEvent, AuditOutcome, EventType};
///
/// let failures = AuditEvent::new(EventType::AuthenticationAttempt)
///     .outcome(AuditOutcome::Failure)
///     .detail(ATTEMPTS_DETAIL, 20);
/// assert_eq!(failures.details["attempts"], 20);
/// ```
pub const ATTEMPTS_DETAIL: &str = "attempts";

/// The most attempts one event counts for in the security report. A larger [`ATTEMPTS_DETAIL`], like one
/// that is not a whole number from 1, is not believed: the event counts once.
pub const MAX_ATTEMPTS: u64 = 1_000_000_000;

/// The attempts an event stands for: its [`ATTEMPTS_DETAIL`] when that is a whole number from 1 to
/// [`MAX_ATTEMPTS`], else 1; the Postgres report computes the same in SQL (`DECLARE_FAILURES`). A number
/// written with a fraction of zero is whole: canonical JSON, which the JSONL log is written in, writes
/// `20.0` as `20`, and Postgres keeps it as written.
fn attempts(details: &Details) -> u64 {
    match details.get(ATTEMPTS_DETAIL) {
        Some(serde_json::Value::Number(number)) => number
            .as_u64()
            .or_else(|| number.as_f64().and_then(whole_attempts))
            .filter(|attempts| (1..=MAX_ATTEMPTS).contains(attempts))
            .unwrap_or(1),
        _ => 1,
    }
}

/// `float` as attempts, if it is a whole number from 1 to [`MAX_ATTEMPTS`].
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "the range is checked first")]
fn whole_attempts(float: f64) -> Option<u64> {
    // Exact: every whole number up to MAX_ATTEMPTS is a float.
    (float.fract() == 0.0 && (1.0..=MAX_ATTEMPTS as f64).contains(&float)).then_some(float as u64)
}

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

/// The most guard transitions a report lists: the latest in the window (all are counted in
/// [`SecurityReport::by_event_type`]).
pub const MAX_GUARD_TRANSITIONS: usize = 1_000;

/// A guard's change of state in the window, such as the LLM breaker opening (a `GuardTransition` event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GuardTransition {
    /// When it changed.
    #[serde(with = "timestamp")]
    pub at: DateTime<Utc>,
    /// The guard, as the event's resource: `breaker/<name>`.
    pub guard: String,
    /// The state it left: `closed`, `open`, `half_open`, ...
    pub from: String,
    /// The state it entered.
    pub to: String,
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
/// A failed authentication that stands for several attempts, such as a server's one event for an address's
/// failures of an interval, says how many in its [`ATTEMPTS_DETAIL`] (`details.attempts`), and counts for
/// that many in the failed authentications and the bursts (but once among the events): a whole number from
/// 1 to [`MAX_ATTEMPTS`]; any other value, or none, counts once, and the sums saturate, so that a forged
/// count can neither overflow them nor hide the events.
///
/// # Suspicious patterns
///
/// **Repeated failed authentications** ([`AuthenticationBurst`]). The subjects are each `user_id` and each
/// `ip_address` of a failed authentication in the window (an event with both counts for both). A subject is
/// reported when some span of time of length `burst_window` (`W`) holds at least `burst_failures` (`N`) of
/// its failures: when for some failure at time `t`, at least `N` failures fall in the closed interval
/// `[t - W, t]`. The report gives the densest such span (the most failures; among equals, the earliest):
/// its number of failures, its first and last failure; and the subject's failures in the whole window.
/// The attempts of an event that stands for several all fall at its timestamp: where the event sums an
/// interval of failures (written when it ends), a burst spanning the edges of intervals is found to within
/// the length of an interval.
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
    /// The attempts of the `AuthenticationAttempt` events with outcome `Failure`: each event counts for its
    /// [`ATTEMPTS_DETAIL`], or once.
    pub failed_authentications: u64,
    /// `AuthorizationCheck` events with outcome `Denied`.
    pub denied_authorizations: u64,
    /// Subjects with repeated failed authentications, by subject.
    pub authentication_bursts: Vec<AuthenticationBurst>,
    /// Tools failing often or more often than before, by name.
    pub failing_tools: Vec<FailingTool>,
    /// The guards' changes of state (a breaker opening, closing), in time order: the latest
    /// [`MAX_GUARD_TRANSITIONS`] of the window.
    pub guard_transitions: Vec<GuardTransition>,
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
            guard_transitions: Vec::new(),
        }
    }

    /// Counts `count` events of `event_type` with `outcome`.
    fn count(&mut self, event_type: &str, outcome: &str, count: u64) {
        self.total_events += count;
        *self.by_event_type.entry(event_type.to_owned()).or_default() += count;
        *self.by_outcome.entry(outcome.to_owned()).or_default() += count;
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
    /// The latest transitions seen, at most [`MAX_GUARD_TRANSITIONS`].
    transitions: VecDeque<GuardTransition>,
}

impl Tally {
    fn new(bounds: Bounds, options: &ReportOptions) -> Tally {
        Tally {
            report: SecurityReport::empty(&bounds, options),
            bounds,
            bursts: HashMap::new(),
            tools: HashMap::new(),
            transitions: VecDeque::new(),
        }
    }

    fn add(&mut self, event: &AuditEvent) {
        let timestamp = event.timestamp;
        if event.event_type == EventType::ToolExecution
            && let Some(resource) = event.resource.as_deref()
            && self.bounds.baseline_from <= timestamp
            && timestamp < self.bounds.to
        {
            let failed = u64::from(event.outcome == AuditOutcome::Failure);
            let counts = match self.tools.get_mut(resource) {
                Some(counts) => counts,
                None => self.tools.entry(resource.to_owned()).or_default(),
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
        if event.event_type == EventType::GuardTransition {
            let detail =
                |key: &str| event.details.get(key).and_then(serde_json::Value::as_str).unwrap_or_default().to_owned();
            if self.transitions.len() == MAX_GUARD_TRANSITIONS {
                self.transitions.pop_front();
            }
            self.transitions.push_back(GuardTransition {
                at: timestamp,
                guard: event.resource.as_deref().unwrap_or_default().to_owned(),
                from: detail("from"),
                to: detail("to"),
            });
        }
        if event.event_type == EventType::AuthenticationAttempt && event.outcome == AuditOutcome::Failure {
            let attempts = attempts(&event.details);
            self.report.failed_authentications = self.report.failed_authentications.saturating_add(attempts);
            let subjects = [event.user_id.clone().map(Subject::User), event.ip_address.map(Subject::IpAddress)];
            for subject in subjects.into_iter().flatten() {
                self.bursts.entry(subject).or_default().push(timestamp, attempts, self.bounds.burst_window);
            }
        }
    }

    fn finish(self) -> SecurityReport {
        let Tally { mut report, bursts, tools, transitions, .. } = self;
        report.guard_transitions = transitions.into();
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
        self.guard_transitions.sort_by(|left, right| left.at.cmp(&right.at).then_with(|| left.guard.cmp(&right.guard)));
    }
}

/// Failed attempts at one timestamp, from one event.
#[derive(Debug, Clone, Copy)]
struct Held {
    timestamp: DateTime<Utc>,
    attempts: u64,
    /// The attempts of this entry and of all before it (those dropped included), so that a span's attempts
    /// are one subtraction: a `u128` never overflows, with at most `MAX_ATTEMPTS` per event.
    running: u128,
}

/// One subject's failed authentications, for finding its densest span of `W`.
#[derive(Debug, Default)]
struct Failures {
    /// The failures since twice `W` before the latest, sorted.
    held: VecDeque<Held>,
    latest: Option<DateTime<Utc>>,
    total: u64,
    /// The most failures in `[t - W, t]` for a failure at `t`, the first of them, and `t` (the earliest `t`
    /// among equal counts).
    densest: Option<(u64, DateTime<Utc>, DateTime<Utc>)>,
}

impl Failures {
    /// Adds `attempts` failures at `timestamp`.
    fn push(&mut self, timestamp: DateTime<Utc>, attempts: u64, window: TimeDelta) {
        self.total = self.total.saturating_add(attempts);
        let index = self.held.partition_point(|held| held.timestamp <= timestamp);
        let before = match (index.checked_sub(1).and_then(|previous| self.held.get(previous)), self.held.get(index)) {
            (Some(previous), _) => previous.running,
            (None, Some(next)) => next.running - u128::from(next.attempts),
            (None, None) => 0,
        };
        self.held.insert(index, Held { timestamp, attempts, running: before + u128::from(attempts) });
        // Only a failure out of timestamp order has failures after it, counted again.
        for later in self.held.range_mut(index + 1..) {
            later.running += u128::from(attempts);
        }
        let latest = self.latest.map_or(timestamp, |latest| latest.max(timestamp));
        self.latest = Some(latest);
        // The spans that gained a failure: those ending at a failure in [timestamp, timestamp + W]. In
        // timestamp order that is only the one ending at this failure.
        let reach = timestamp.checked_add_signed(window).unwrap_or(DateTime::<Utc>::MAX_UTC);
        let mut at = index;
        while let Some(end) = self.held.get(at).map(|held| held.timestamp)
            && end <= reach
        {
            let start = end.checked_sub_signed(window).unwrap_or(DateTime::<Utc>::MIN_UTC);
            let upper = self.held.partition_point(|held| held.timestamp <= end);
            let lower = self.held.partition_point(|held| held.timestamp < start);
            let (first, last) = (self.held[lower], self.held[upper - 1]);
            let count = u64::try_from(last.running - first.running + u128::from(first.attempts)).unwrap_or(u64::MAX);
            let better = match self.densest {
                None => true,
                Some((best, _, best_end)) => count > best || (count == best && end < best_end),
            };
            if better {
                self.densest = Some((count, first.timestamp, end));
            }
            at = upper;
        }
        // A failure up to W late still finds every failure of the spans it joins.
        let keep_from = latest.checked_sub_signed(window * 2).unwrap_or(DateTime::<Utc>::MIN_UTC);
        while self.held.front().is_some_and(|held| held.timestamp < keep_from) {
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
        self.fmt_transitions(f)
    }
}

impl SecurityReport {
    /// The "Guard transitions" section of the table.
    fn fmt_transitions(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let time = |timestamp: &DateTime<Utc>| timestamp.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        writeln!(f)?;
        let transitions = self.by_event_type.get(EventType::GuardTransition.as_str()).copied().unwrap_or_default();
        writeln!(f, "Guard transitions: {transitions}")?;
        if u64::try_from(self.guard_transitions.len()).unwrap_or(u64::MAX) < transitions {
            writeln!(f, "  the latest {}:", self.guard_transitions.len())?;
        }
        let width =
            self.guard_transitions.iter().map(|transition| transition.guard.len()).chain([5]).max().unwrap_or(5);
        for transition in &self.guard_transitions {
            writeln!(
                f,
                "  {}  {:<width$}  {} -> {}",
                time(&transition.at),
                transition.guard,
                transition.from,
                transition.to
            )?;
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

    use super::{
        ATTEMPTS_DETAIL, Bounds, Failures, GuardTransition, MAX_ATTEMPTS, MAX_GUARD_TRANSITIONS, ReportError,
        ReportOptions, SecurityReport, Subject, ToolCounts, bursts_of,
    };

    /// The latest guard transitions of the window, latest first: a scan of `audit_log_event_type`, reading
    /// the details of at most `$3` rows.
    const TRANSITIONS: &str = "SELECT \"timestamp\", coalesce(resource, ''), \
             coalesce(details ->> 'from', ''), coalesce(details ->> 'to', '') FROM audit_log \
         WHERE event_type = 'GuardTransition' AND \"timestamp\" >= $1 AND \"timestamp\" < $2 \
         ORDER BY \"timestamp\" DESC LIMIT $3";

    /// Events by type and outcome: an index-only scan of `audit_log_timestamp`.
    const COUNTS: &str = "SELECT event_type, outcome, count(*) FROM audit_log \
         WHERE \"timestamp\" >= $1 AND \"timestamp\" < $2 GROUP BY event_type, outcome";

    /// The failed authentications of the window in timestamp order, for the failed authentications and the
    /// bursts as the JSONL report finds them: a scan of the partial index `audit_log_failed_authentication`,
    /// which is in that order, reading each row's details from the table. With each, the attempts it stands
    /// for, as `attempts` computes them in Rust: its detail `$3` (`ATTEMPTS_DETAIL`) when that is a JSON
    /// number with a whole value from 1 to `$4` (`MAX_ATTEMPTS`), else 1. A `numeric` holds any JSON
    /// number exactly; the inner `CASE` casts only numbers, the `bigint` cast only values in range.
    const DECLARE_FAILURES: &str = "DECLARE failures NO SCROLL CURSOR FOR \
         SELECT \"timestamp\", user_id, host(ip_address), \
             CASE WHEN jsonb_typeof(details -> $3::text) = 'number' \
             THEN CASE WHEN (details -> $3::text)::numeric BETWEEN 1 AND $4::bigint \
                       AND (details -> $3::text)::numeric = trunc((details -> $3::text)::numeric) \
                   THEN (details -> $3::text)::numeric::bigint ELSE 1 END \
             ELSE 1 END \
         FROM audit_log \
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

    /// A failed authentication: timestamp, user, address, the attempts it stands for.
    type FailureRow = (DateTime<Utc>, Option<String>, Option<String>, i64);

    fn count(value: i64) -> u64 {
        u64::try_from(value).unwrap_or_default()
    }

    impl SecurityReport {
        /// The report of the events of the audit table in `window`, in one snapshot, from scans of the
        /// table's indexes: Postgres counts the events and the tool calls, and sends one row per tool and
        /// one per failed authentication in the window, with the attempts it stands for, in timestamp order,
        /// from which the failed authentications are summed and bursts found as
        /// [`from_jsonl`](SecurityReport::from_jsonl) finds them (memory holds one page of failures and each
        /// subject's failures within twice `burst_window`). The failed authentications' details are read
        /// from the table, the other scans are index-only.
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

            // The failed authentications and the bursts as the JSONL report finds them, from the failures in
            // timestamp order: the same code, the same results.
            let mut bursts = HashMap::<Subject, Failures>::new();
            sqlx::query(DECLARE_FAILURES)
                .bind(bounds.from)
                .bind(bounds.to)
                .bind(ATTEMPTS_DETAIL)
                .bind(i64::try_from(MAX_ATTEMPTS).unwrap_or(i64::MAX))
                .execute(&mut *transaction)
                .await?;
            loop {
                let page: Vec<FailureRow> = sqlx::query_as(FETCH_FAILURES).fetch_all(&mut *transaction).await?;
                for (timestamp, user_id, ip_address, attempts) in &page {
                    // At least 1 and at most `MAX_ATTEMPTS` by the query.
                    let attempts = count(*attempts).max(1);
                    report.failed_authentications = report.failed_authentications.saturating_add(attempts);
                    let ip_address = match ip_address {
                        Some(ip) => Some(Subject::IpAddress(
                            ip.parse()
                                .map_err(|error| sqlx::Error::Decode(format!("ip_address `{ip}`: {error}").into()))?,
                        )),
                        None => None,
                    };
                    for subject in [user_id.clone().map(Subject::User), ip_address].into_iter().flatten() {
                        bursts.entry(subject).or_default().push(*timestamp, attempts, bounds.burst_window);
                    }
                }
                if page.len() < FAILURES_PAGE {
                    break;
                }
            }
            report.authentication_bursts = bursts_of(bursts, options.burst_failures);

            let transitions: Vec<(DateTime<Utc>, String, String, String)> = sqlx::query_as(TRANSITIONS)
                .bind(bounds.from)
                .bind(bounds.to)
                .bind(i64::try_from(MAX_GUARD_TRANSITIONS).unwrap_or(i64::MAX))
                .fetch_all(&mut *transaction)
                .await?;
            report.guard_transitions =
                transitions.into_iter().map(|(at, guard, from, to)| GuardTransition { at, guard, from, to }).collect();

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

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_767_225_600 + seconds, 0).single().expect("a valid time")
    }

    #[test]
    fn an_event_counts_for_its_attempts_when_they_are_believable() {
        for (value, expected) in [
            (json!(1), 1),
            (json!(20), 20),
            (json!(MAX_ATTEMPTS), MAX_ATTEMPTS),
            (json!(MAX_ATTEMPTS + 1), 1),
            (json!(u64::MAX), 1),
            (json!(0), 1),
            (json!(-3), 1),
            (json!(20.0), 20),
            (json!(20.5), 1),
            (json!(1e300), 1),
            (json!("20"), 1),
            (json!(null), 1),
        ] {
            let mut details = Details::new();
            details.insert(ATTEMPTS_DETAIL.to_owned(), value.clone());
            assert_eq!(attempts(&details), expected, "{value}");
        }
        assert_eq!(attempts(&Details::new()), 1);
    }

    #[test]
    fn the_sums_of_attempts_saturate() {
        let options = ReportOptions { burst_failures: 1, ..ReportOptions::default() };
        let mut tally = Tally::new(Bounds::new(at(0)..at(3600), &options), &options);
        let event = |seconds| {
            let mut event = AuditEvent::new(EventType::AuthenticationAttempt)
                .outcome(AuditOutcome::Failure)
                .user_id("mallory")
                .detail(ATTEMPTS_DETAIL, MAX_ATTEMPTS);
            event.timestamp = at(seconds);
            event
        };
        tally.add(&event(10));
        tally.report.failed_authentications = u64::MAX - 1;
        let subject = Subject::User("mallory".to_owned());
        tally.bursts.get_mut(&subject).expect("followed").total = u64::MAX - 1;
        tally.add(&event(20));
        let report = tally.finish();
        assert_eq!(report.failed_authentications, u64::MAX);
        assert_eq!(report.authentication_bursts[0].failures_in_window, u64::MAX);
        assert_eq!(report.authentication_bursts[0].failures, 2 * MAX_ATTEMPTS);
    }

    /// The most attempts in `[t - W, t]` for each held `t`, counted one by one.
    fn densest_by_hand(failures: &[(i64, u64)], window: i64) -> (u64, DateTime<Utc>, DateTime<Utc>) {
        let mut best: Option<(u64, DateTime<Utc>, DateTime<Utc>)> = None;
        for &(end, _) in failures {
            let inside = failures.iter().filter(|(time, _)| end - window <= *time && *time <= end);
            let count = inside.clone().map(|(_, attempts)| attempts).sum();
            let first = inside.map(|(time, _)| *time).min().expect("the end itself");
            if best.is_none_or(|(most, _, last)| count > most || (count == most && at(end) < last)) {
                best = Some((count, at(first), at(end)));
            }
        }
        best.expect("failures")
    }

    #[test]
    fn weighted_failures_out_of_order_find_the_densest_span() {
        let window = 60;
        // Out of order by less than the window; weights that make the lighter, more numerous span lose.
        let failures = [(100, 1), (130, 1), (90, 1), (160, 2), (150, 7), (200, 1), (185, 3), (250, 20), (240, 1)];
        let mut held = Failures::default();
        for (count, &(time, attempts)) in failures.iter().enumerate() {
            held.push(at(time), attempts, TimeDelta::seconds(window));
            assert_eq!(held.densest, Some(densest_by_hand(&failures[..=count], window)), "after {count}");
        }
        assert_eq!(held.total, failures.iter().map(|(_, attempts)| attempts).sum::<u64>());
    }
}
