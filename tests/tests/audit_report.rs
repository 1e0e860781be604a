//! The security report, from JSONL and from Postgres, on a hand-made fixture whose counts are worked out
//! by hand below, with every threshold met exactly and missed by the least amount.
//!
//! The Postgres tests need a server: `DATABASE_URL=postgres://... cargo test -p hardened-tests --
//! --include-ignored`; they are ignored otherwise, and fail when run without `DATABASE_URL`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use hardened::audit::{
    ATTEMPTS_DETAIL, AuditEvent, AuditOutcome, AuthenticationBurst, EventType, FailingTool, GuardTransition, JsonlSink,
    MAX_ATTEMPTS, ReportError, ReportOptions, SecurityReport, Sink, Subject, seal_stream,
};
use hardened_tests::postgres::TestSchema;
use serde_json::{Value, json};

use AuditOutcome::{Denied, Failure, Success};

/// The start of the report window; it lasts an hour.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().expect("a valid date")
}

/// `seconds` (and `micros`) after the start of the window.
fn at(seconds: i64, micros: i64) -> DateTime<Utc> {
    t0() + TimeDelta::seconds(seconds) + TimeDelta::microseconds(micros)
}

fn window() -> Range<DateTime<Utc>> {
    t0()..at(3600, 0)
}

/// The thresholds the fixture is built around.
fn options() -> ReportOptions {
    ReportOptions {
        burst_failures: 3,
        burst_window: Duration::from_mins(1),
        tool_min_calls: 4,
        tool_failure_percent: 50,
        tool_baseline: Duration::from_hours(1),
        tool_spike_points: 25,
    }
}

fn event(event_type: EventType, outcome: AuditOutcome, timestamp: DateTime<Utc>) -> AuditEvent {
    let mut event = AuditEvent::new(event_type).outcome(outcome);
    event.timestamp = timestamp;
    event.user_id = None;
    event.session_id = None;
    event.ip_address = None;
    event
}

/// A breaker's change of state, as the audit layer records it.
fn transition(breaker: &str, from: &str, to: &str, timestamp: DateTime<Utc>) -> AuditEvent {
    let mut event = event(EventType::GuardTransition, Success, timestamp);
    event.resource = Some(format!("breaker/{breaker}").into());
    event.details.insert("from".to_owned(), json!(from));
    event.details.insert("to".to_owned(), json!(to));
    event
}

fn login(user: Option<&str>, ip: Option<&str>, outcome: AuditOutcome, timestamp: DateTime<Utc>) -> AuditEvent {
    let mut event = event(EventType::AuthenticationAttempt, outcome, timestamp);
    event.user_id = user.map(str::to_owned);
    event.ip_address = ip.map(|ip| ip.parse().expect("a valid address"));
    event
}

/// `outcomes` calls of `tool`, one a second from `start`.
fn tool_calls(tool: Option<&str>, start: DateTime<Utc>, outcomes: &[AuditOutcome]) -> Vec<AuditEvent> {
    (0_i64..)
        .zip(outcomes)
        .map(|(index, outcome)| {
            let mut call = event(EventType::ToolExecution, *outcome, start + TimeDelta::seconds(index));
            call.resource = tool.map(|tool| tool.to_owned().into());
            call
        })
        .collect()
}

fn outcomes(failures: usize, denied: usize, successes: usize) -> Vec<AuditOutcome> {
    [(Failure, failures), (Denied, denied), (Success, successes)]
        .into_iter()
        .flat_map(|(outcome, count)| std::iter::repeat_n(outcome, count))
        .collect()
}

// The fixture. In the window, 57 events:
// - AuthenticationAttempt, 17: 13 Failure, 3 Denied, 1 Success
//   - ada: failures at 10 s, 20 s and 70 s (no address), a success at 15 s
//   - bob: failures at 0 s, 30 s and 60.000001 s
//   - carol (100 s, 120 s) and dave (110 s, 130 s), failures all from 203.0.113.9
//   - 3 failures from 2001:db8::1 at 200 s, without a user
//   - frank: 3 denied at 300 s
// - AuthorizationCheck, 5: 2 Denied, 3 Success
// - ToolExecution, 32: 15 Failure, 1 Denied, 16 Success
//   - search 10 (5 failures), fetch 4 (1), write 5 (1, and 1 denied), delete 3 (3), upload 4 (2), list 4 (1),
//     and 2 failures without a tool
// - SessionStart, 2, and a custom Transfer, 1: Success
// So by outcome: Success 1 + 3 + 16 + 3 = 23, Failure 13 + 15 = 28, Denied 3 + 2 + 1 = 6.
//
// Outside it: bob failing at -30 s (which would make bob's three failures a burst), ada failing at the
// window's end (excluded), session starts 1 µs before and 1 s after, and the tools' baseline hour:
// search 10 (5 failures), fetch 4 (none), write 5 (none), list 3 (none), and a fetch failure two hours
// before (outside the baseline, which would make fetch's rise 5 points, no spike).
/// The fixture, in timestamp order; what it holds is in the comment above.
fn fixture() -> Vec<AuditEvent> {
    let ip = Some("203.0.113.9");
    let mut events = vec![
        login(Some("bob"), None, Failure, at(-30, 0)),
        login(Some("bob"), None, Failure, at(0, 0)),
        login(Some("ada"), None, Failure, at(10, 0)),
        login(Some("ada"), None, Success, at(15, 0)),
        login(Some("ada"), None, Failure, at(20, 0)),
        login(Some("bob"), None, Failure, at(30, 0)),
        login(Some("bob"), None, Failure, at(60, 1)),
        login(Some("ada"), None, Failure, at(70, 0)),
        login(Some("carol"), ip, Failure, at(100, 0)),
        login(Some("dave"), ip, Failure, at(110, 0)),
        login(Some("carol"), ip, Failure, at(120, 0)),
        login(Some("dave"), ip, Failure, at(130, 0)),
        login(None, Some("2001:db8::1"), Failure, at(200, 0)),
        login(None, Some("2001:db8::1"), Failure, at(200, 0)),
        login(None, Some("2001:db8::1"), Failure, at(200, 0)),
        login(Some("frank"), None, Denied, at(300, 0)),
        login(Some("frank"), None, Denied, at(300, 0)),
        login(Some("frank"), None, Denied, at(300, 0)),
        login(Some("ada"), None, Failure, at(3600, 0)),
        event(EventType::SessionStart, Success, at(0, -1)),
        event(EventType::SessionStart, Success, at(400, 0)),
        event(EventType::SessionStart, Success, at(401, 0)),
        event(EventType::SessionStart, Success, at(3601, 0)),
        event(EventType::Custom("Transfer".into()), Success, at(402, 0)),
        transition("llm", "open", "half_open", at(-60, 0)),
        transition("llm", "closed", "open", at(600, 0)),
        transition("llm", "open", "half_open", at(630, 0)),
        transition("llm", "half_open", "closed", at(631, 500)),
    ];
    for outcome in outcomes(0, 2, 3) {
        events.push(event(EventType::AuthorizationCheck, outcome, at(500, 0)));
    }
    let baseline = at(-1800, 0);
    events.extend(tool_calls(Some("fetch"), at(-7200, 0), &outcomes(1, 0, 0)));
    events.extend(tool_calls(Some("search"), baseline, &outcomes(5, 0, 5)));
    events.extend(tool_calls(Some("fetch"), baseline + TimeDelta::seconds(100), &outcomes(0, 0, 4)));
    events.extend(tool_calls(Some("write"), baseline + TimeDelta::seconds(200), &outcomes(0, 0, 5)));
    events.extend(tool_calls(Some("list"), baseline + TimeDelta::seconds(300), &outcomes(0, 0, 3)));
    events.extend(tool_calls(Some("search"), at(1000, 0), &outcomes(5, 0, 5)));
    events.extend(tool_calls(Some("fetch"), at(1100, 0), &outcomes(1, 0, 3)));
    events.extend(tool_calls(Some("write"), at(1200, 0), &outcomes(1, 1, 3)));
    events.extend(tool_calls(Some("delete"), at(1300, 0), &outcomes(3, 0, 0)));
    events.extend(tool_calls(Some("upload"), at(1400, 0), &outcomes(2, 0, 2)));
    events.extend(tool_calls(Some("list"), at(1500, 0), &outcomes(1, 0, 3)));
    events.extend(tool_calls(None, at(1600, 0), &outcomes(2, 0, 0)));
    events.sort_by_key(|event| event.timestamp);
    events
}

/// A server's one failed authentication for an address's failures of an interval, with `details.attempts`.
fn aggregated(user: Option<&str>, ip: &str, attempts: impl Into<Value>, timestamp: DateTime<Utc>) -> AuditEvent {
    let mut event = login(user, Some(ip), Failure, timestamp);
    event.details.insert(ATTEMPTS_DETAIL.to_owned(), attempts.into());
    event
}

/// `details.attempts` that are not a whole number from 1 to `MAX_ATTEMPTS`, each of which counts once.
fn unbelievable_attempts() -> Vec<Value> {
    vec![
        json!(0),
        json!(-20),
        json!(2.5),
        json!(1e300),
        json!("20"),
        json!(null),
        json!(true),
        json!([20]),
        json!({ "attempts": 20 }),
        json!(MAX_ATTEMPTS + 1),
        json!(u64::MAX),
    ]
}

// Aggregated failures, all after the fixture's window (so that its report does not change), in the hour
// `aggregated_window`:
// - 198.51.100.20: one event of 20 attempts at 4000 s
// - 198.51.100.21, user eve: 2 attempts at 4100 s, a plain failure at 4130 s, 3 attempts at 4200 s
// - 198.51.100.22: the unbelievable attempts (11, once each) and MAX_ATTEMPTS, all at 4300 s
// So 20 + 6 + 11 + MAX_ATTEMPTS failed authentications in 16 events.
fn aggregated_fixture() -> Vec<AuditEvent> {
    let mut events = vec![
        aggregated(None, "198.51.100.20", 20, at(4000, 0)),
        aggregated(Some("eve"), "198.51.100.21", 2, at(4100, 0)),
        login(Some("eve"), Some("198.51.100.21"), Failure, at(4130, 0)),
        // Written with a fraction of zero, as a float.
        aggregated(Some("eve"), "198.51.100.21", 3.0, at(4200, 0)),
    ];
    events.extend(
        unbelievable_attempts().into_iter().map(|attempts| aggregated(None, "198.51.100.22", attempts, at(4300, 0))),
    );
    events.push(aggregated(None, "198.51.100.22", MAX_ATTEMPTS, at(4300, 0)));
    events
}

fn aggregated_window() -> Range<DateTime<Utc>> {
    at(3600, 0)..at(7200, 0)
}

/// Checks the report of [`aggregated_fixture`] in [`aggregated_window`] with [`options`] (at least 3 failures
/// within a minute): the events counted once each, their attempts counted in the failed authentications and
/// the bursts.
fn assert_aggregated(report: &SecurityReport) {
    assert_eq!(report.total_events, 16);
    assert_eq!(report.by_outcome["Failure"], 16);
    assert_eq!(report.failed_authentications, 20 + 6 + 11 + MAX_ATTEMPTS);
    let burst = |subject: Subject, failures: u64, first: DateTime<Utc>, last: DateTime<Utc>, total: u64| {
        AuthenticationBurst { subject, failures, first, last, failures_in_window: total }
    };
    assert_eq!(
        report.authentication_bursts,
        [
            // 2 at 4100 s and 1 at 4130 s make 3 within a minute; 1 at 4130 s and 3 at 4200 s are 70 s apart.
            // [4140 s, 4200 s] holds 3 too, later.
            burst(Subject::User("eve".to_owned()), 3, at(4100, 0), at(4130, 0), 6),
            burst(Subject::IpAddress(ip("198.51.100.20")), 20, at(4000, 0), at(4000, 0), 20),
            burst(Subject::IpAddress(ip("198.51.100.21")), 3, at(4100, 0), at(4130, 0), 6),
            burst(
                Subject::IpAddress(ip("198.51.100.22")),
                11 + MAX_ATTEMPTS,
                at(4300, 0),
                at(4300, 0),
                11 + MAX_ATTEMPTS
            ),
        ]
    );
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("a valid address")
}

/// The report of the fixture with [`options`], worked out by hand from the table above.
fn expected_report() -> SecurityReport {
    let counts = |pairs: &[(&str, u64)]| -> BTreeMap<String, u64> {
        pairs.iter().map(|(key, count)| ((*key).to_owned(), *count)).collect()
    };
    let tool =
        |resource: &str, (calls, failures): (u64, u64), (baseline_calls, baseline_failures): (u64, u64)| FailingTool {
            resource: resource.to_owned(),
            calls,
            failures,
            failure_rate: failures as f64 / calls as f64,
            baseline_calls,
            baseline_failures,
            baseline_failure_rate: (baseline_calls > 0).then(|| baseline_failures as f64 / baseline_calls as f64),
            high_failure_rate: false,
            spike: false,
        };
    SecurityReport {
        from: t0(),
        to: at(3600, 0),
        options: options(),
        total_events: 60,
        by_event_type: counts(&[
            ("AuthenticationAttempt", 17),
            ("AuthorizationCheck", 5),
            ("GuardTransition", 3),
            ("SessionStart", 2),
            ("ToolExecution", 32),
            ("Transfer", 1),
        ]),
        by_outcome: counts(&[("Denied", 6), ("Failure", 28), ("Success", 26)]),
        failed_authentications: 13,
        denied_authorizations: 2,
        authentication_bursts: vec![
            // 10 s, 20 s and 70 s: 70 - 60 = 10, the span's edge, included.
            AuthenticationBurst {
                subject: Subject::User("ada".to_owned()),
                failures: 3,
                first: at(10, 0),
                last: at(70, 0),
                failures_in_window: 3,
            },
            // Two users, one address.
            AuthenticationBurst {
                subject: Subject::IpAddress(ip("203.0.113.9")),
                failures: 4,
                first: at(100, 0),
                last: at(130, 0),
                failures_in_window: 4,
            },
            AuthenticationBurst {
                subject: Subject::IpAddress(ip("2001:db8::1")),
                failures: 3,
                first: at(200, 0),
                last: at(200, 0),
                failures_in_window: 3,
            },
        ],
        failing_tools: vec![
            // 25% now, 0% in the baseline: exactly 25 points.
            FailingTool { spike: true, ..tool("fetch", (4, 1), (4, 0)) },
            // Exactly 50%, as before: high, no spike.
            FailingTool { high_failure_rate: true, ..tool("search", (10, 5), (10, 5)) },
            // Exactly 50% with exactly the minimum of calls.
            FailingTool { high_failure_rate: true, ..tool("upload", (4, 2), (0, 0)) },
        ],
        // The LLM breaker opened at 600 s and closed again after one probe; the transition before the
        // window is not listed.
        guard_transitions: vec![
            guard_transition("closed", "open", at(600, 0)),
            guard_transition("open", "half_open", at(630, 0)),
            guard_transition("half_open", "closed", at(631, 500)),
        ],
    }
}

fn guard_transition(from: &str, to: &str, at: DateTime<Utc>) -> GuardTransition {
    GuardTransition { at, guard: "breaker/llm".to_owned(), from: from.to_owned(), to: to.to_owned() }
}

async fn write_jsonl(path: &Path, events: Vec<AuditEvent>) {
    let mut sink = JsonlSink::open(path).expect("the log opens");
    let sealed = seal_stream("fixture", events);
    for batch in sealed.chunks(16) {
        sink.write(batch).await.expect("the write succeeds");
    }
    sink.flush().await.expect("the flush succeeds");
}

fn from_jsonl(path: &Path, options: &ReportOptions) -> SecurityReport {
    SecurityReport::from_jsonl(path, window(), options).expect("the report is made")
}

#[tokio::test]
async fn the_report_of_a_jsonl_log_counts_what_the_fixture_holds() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().join("audit.jsonl");
    write_jsonl(&path, fixture()).await;
    assert_eq!(from_jsonl(&path, &options()), expected_report());
}

#[tokio::test]
async fn the_jsonl_report_does_not_depend_on_the_order_of_the_log() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().join("audit.jsonl");
    let mut events = fixture();
    events.reverse();
    write_jsonl(&path, events).await;
    assert_eq!(from_jsonl(&path, &options()), expected_report());
}

#[tokio::test]
async fn an_aggregated_failure_counts_for_its_attempts() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().join("audit.jsonl");
    write_jsonl(&path, aggregated_fixture()).await;
    assert_aggregated(&SecurityReport::from_jsonl(&path, aggregated_window(), &options()).expect("the report is made"));
}

#[tokio::test]
async fn one_aggregated_failure_of_20_attempts_is_a_burst() {
    // The flood a server records as one event: 20 failed requests of one address in an interval.
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().join("audit.jsonl");
    write_jsonl(&path, vec![aggregated(None, "192.0.2.7", 20, at(100, 0))]).await;
    let report = SecurityReport::from_jsonl(&path, window(), &ReportOptions::default()).expect("the report is made");
    assert_eq!((report.total_events, report.failed_authentications), (1, 20));
    assert_eq!(
        report.authentication_bursts,
        [AuthenticationBurst {
            subject: Subject::IpAddress(ip("192.0.2.7")),
            failures: 20,
            first: at(100, 0),
            last: at(100, 0),
            failures_in_window: 20,
        }]
    );
}

#[tokio::test]
async fn unbelievable_attempts_count_once() {
    // A forged count, of any kind, cannot make one event weigh more than MAX_ATTEMPTS, nor less than 1.
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().join("audit.jsonl");
    let unbelievable = unbelievable_attempts();
    let count = unbelievable.len() as u64;
    let mut events: Vec<AuditEvent> = unbelievable
        .into_iter()
        .map(|attempts| aggregated(Some("mallory"), "192.0.2.8", attempts, at(10, 0)))
        .collect();
    write_jsonl(&path, events.clone()).await;
    let report = from_jsonl(&path, &options());
    assert_eq!(report.failed_authentications, count);
    assert_eq!(report.authentication_bursts.len(), 2);
    assert!(report.authentication_bursts.iter().all(|burst| burst.failures == count), "{report:?}");

    // The largest count believed, twice.
    events.extend([1, 2].map(|_| aggregated(Some("mallory"), "192.0.2.8", MAX_ATTEMPTS, at(20, 0))));
    let path = directory.path().join("largest.jsonl");
    write_jsonl(&path, events).await;
    let report = from_jsonl(&path, &options());
    assert_eq!(report.failed_authentications, count + 2 * MAX_ATTEMPTS);
    assert!(report.authentication_bursts.iter().all(|burst| burst.failures == count + 2 * MAX_ATTEMPTS));
}

/// A threshold moved past an edge of the fixture: its name, the options, and what it changes in the report.
type Edge = (&'static str, ReportOptions, fn(&mut SecurityReport));

/// The thresholds moved by the least amount past the fixture's edges, and what each drops.
fn edges() -> Vec<Edge> {
    vec![
        ("one more failure per burst", ReportOptions { burst_failures: 4, ..options() }, |report| {
            // Only the address with four failures remains.
            report.authentication_bursts.retain(|burst| burst.failures >= 4);
        }),
        (
            "a span 1 µs shorter",
            ReportOptions { burst_window: Duration::from_mins(1) - Duration::from_micros(1), ..options() },
            |report| {
                report.options.burst_window = Duration::from_mins(1) - Duration::from_micros(1);
                report.authentication_bursts.retain(|burst| burst.subject != Subject::User("ada".to_owned()));
            },
        ),
        (
            "a span 1 µs longer",
            ReportOptions { burst_window: Duration::from_mins(1) + Duration::from_micros(1), ..options() },
            |report| {
                // bob's 0 s, 30 s and 60.000001 s now fit.
                report.options.burst_window = Duration::from_mins(1) + Duration::from_micros(1);
                report.authentication_bursts.insert(
                    1,
                    AuthenticationBurst {
                        subject: Subject::User("bob".to_owned()),
                        failures: 3,
                        first: at(0, 0),
                        last: at(60, 1),
                        failures_in_window: 3,
                    },
                );
            },
        ),
        ("a higher failure rate", ReportOptions { tool_failure_percent: 51, ..options() }, |report| {
            report.failing_tools.retain(|tool| tool.spike);
        }),
        ("one more call", ReportOptions { tool_min_calls: 5, ..options() }, |report| {
            report.failing_tools.retain(|tool| tool.calls >= 5);
        }),
        ("a higher spike", ReportOptions { tool_spike_points: 26, ..options() }, |report| {
            report.failing_tools.retain(|tool| tool.high_failure_rate);
        }),
        ("no baseline", ReportOptions { tool_baseline: Duration::ZERO, ..options() }, |report| {
            report.failing_tools.retain(|tool| tool.high_failure_rate);
            for tool in &mut report.failing_tools {
                (tool.baseline_calls, tool.baseline_failures, tool.baseline_failure_rate) = (0, 0, None);
            }
        }),
    ]
}

fn expected_with(options: ReportOptions, change: fn(&mut SecurityReport)) -> SecurityReport {
    let mut expected = expected_report();
    expected.options = options;
    change(&mut expected);
    expected
}

#[tokio::test]
async fn each_pattern_stops_just_past_its_threshold() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().join("audit.jsonl");
    write_jsonl(&path, fixture()).await;
    for (edge, options, change) in edges() {
        assert_eq!(from_jsonl(&path, &options), expected_with(options, change), "{edge}");
    }
}

#[tokio::test]
async fn the_report_renders_as_json_and_as_a_table() {
    let report = expected_report();
    let json = serde_json::to_value(&report).expect("the report serializes");
    assert_eq!(json["from"], "2026-01-01T00:00:00.000000Z");
    assert_eq!(json["options"]["burst_window"], "1m");
    assert_eq!(json["by_outcome"]["Failure"], 28);
    assert_eq!(json["authentication_bursts"][0]["subject"], serde_json::json!({"user": "ada"}));
    assert_eq!(json["authentication_bursts"][1]["subject"], serde_json::json!({"ip_address": "203.0.113.9"}));
    assert_eq!(json["failing_tools"][0]["resource"], "fetch");
    assert_eq!(json["failing_tools"][0]["baseline_failure_rate"], 0.0);
    assert_eq!(json["failing_tools"][2]["baseline_failure_rate"], serde_json::Value::Null);

    let table = report.to_string();
    assert!(table.lines().all(|line| line == line.trim_end()), "trailing spaces in\n{table}");
    for line in [
        "Security report from 2026-01-01T00:00:00.000000Z to 2026-01-01T01:00:00.000000Z",
        "Events                          60",
        "  Failure                       28",
        "By event type",
        "  AuthorizationCheck             5",
        "Failed authentications          13",
        "Repeated failed authentications (at least 3 within 1m): 3",
        "  user ada               3  2026-01-01T00:00:10.000000Z  2026-01-01T00:01:10.000000Z          3",
        "  ip 203.0.113.9         4  2026-01-01T00:01:40.000000Z  2026-01-01T00:02:10.000000Z          4",
        "Failing tools (at least 4 calls, and at least 50% failures or 25 points more than in the 1h before): 3",
        "  fetch          4         1    25.0%         0.0% of 4  spike",
        "  search        10         5    50.0%       50.0% of 10  high rate",
        "  upload         4         2    50.0%                 -  high rate",
        "Guard transitions: 3",
        "  2026-01-01T00:10:00.000000Z  breaker/llm  closed -> open",
        "  2026-01-01T00:10:31.000500Z  breaker/llm  half_open -> closed",
    ] {
        assert!(table.lines().any(|candidate| candidate == line), "no line {line:?} in\n{table}");
    }
}

#[test]
fn an_empty_or_missing_log_reports_nothing() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let report = from_jsonl(&directory.path().join("missing.jsonl"), &options());
    assert_eq!(report.total_events, 0);
    assert_eq!(report.by_outcome.values().sum::<u64>(), 0);
    assert_eq!(report.by_outcome.len(), 3);
    assert!(report.authentication_bursts.is_empty() && report.failing_tools.is_empty());
}

#[test]
fn thresholds_out_of_range_are_refused() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().join("audit.jsonl");
    for (options, message) in [
        (ReportOptions { burst_failures: 0, ..options() }, "`burst_failures` must be at least 1, found 0"),
        (ReportOptions { tool_min_calls: 0, ..options() }, "`tool_min_calls` must be at least 1, found 0"),
        (
            ReportOptions { tool_failure_percent: 101, ..options() },
            "`tool_failure_percent` must be between 1 and 100, found 101",
        ),
        (ReportOptions { tool_spike_points: 0, ..options() }, "`tool_spike_points` must be between 1 and 100, found 0"),
    ] {
        let error = SecurityReport::from_jsonl(&path, window(), &options).expect_err("the options are refused");
        assert!(matches!(&error, ReportError::Options(found) if found == message), "{error}");
    }
}

/// A schema of the test's own holding the fixture, dropped when the test ends (even by a panic).
async fn schema_with(events: Vec<AuditEvent>) -> TestSchema {
    let schema = TestSchema::new().await;
    let mut sink = schema.sink();
    for batch in seal_stream("fixture", events).chunks(16) {
        sink.write(batch).await.unwrap_or_else(|error| panic!("cannot write to DATABASE_URL: {error}"));
    }
    schema
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored"]
async fn the_report_of_the_audit_table_counts_what_the_fixture_holds() {
    let schema = schema_with(fixture()).await;
    let report = SecurityReport::from_postgres(&schema.pool, window(), &options()).await.expect("the report is made");
    assert_eq!(report, expected_report());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored"]
async fn the_report_of_the_audit_table_counts_aggregated_failures_by_their_attempts() {
    let schema = schema_with(aggregated_fixture()).await;
    let report =
        SecurityReport::from_postgres(&schema.pool, aggregated_window(), &options()).await.expect("the report is made");
    assert_aggregated(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored"]
async fn the_reports_of_jsonl_and_postgres_are_identical() {
    let mut events = fixture();
    events.extend(aggregated_fixture());
    let schema = schema_with(events.clone()).await;
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().join("audit.jsonl");
    write_jsonl(&path, events).await;

    let windows = [
        window(),
        // Bounds between microseconds, rounded up alike.
        at(10, 0) - TimeDelta::nanoseconds(1)..at(130, 0) + TimeDelta::nanoseconds(500),
        at(-7200, 0)..at(7200, 0),
        at(100, 0)..at(100, 0),
        aggregated_window(),
        // eve's first span without its first event, the second whole.
        at(4100, 1)..at(4300, 0),
    ];
    let mut all_edges = vec![("defaults", ReportOptions::default()), ("fixture", options())];
    all_edges.extend(edges().into_iter().map(|(edge, options, _)| (edge, options)));
    for window in windows {
        for (edge, options) in &all_edges {
            let from_postgres =
                SecurityReport::from_postgres(&schema.pool, window.clone(), options).await.expect("the report is made");
            let from_jsonl = SecurityReport::from_jsonl(&path, window.clone(), options).expect("the report is made");
            assert_eq!(from_postgres, from_jsonl, "{edge}, {window:?}");
        }
    }
    for (edge, options, change) in edges() {
        let report = SecurityReport::from_postgres(&schema.pool, window(), &options).await.expect("the report is made");
        assert_eq!(report, expected_with(options, change), "{edge}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored"]
async fn the_reports_agree_over_more_failures_than_postgres_sends_at_once() {
    // 25,000 failed logins (the Postgres report reads them 10,000 at a time) of 7 users from 11 addresses,
    // in timestamp order, at uneven intervals (some at the same microsecond), so that bursts form and break.
    let mut state = 0x2545_f491_u64;
    let mut micros = 0_i64;
    let events: Vec<AuditEvent> = (0..25_000_u64)
        .map(|index| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            micros += i64::try_from(state >> 60).expect("four bits") * 10_000;
            let user = format!("user-{}", index % 7);
            let ip = format!("198.51.100.{}", index % 11);
            login(Some(&user), Some(&ip), Failure, at(0, micros))
        })
        .collect();
    let schema = schema_with(events.clone()).await;
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().join("audit.jsonl");
    write_jsonl(&path, events).await;

    let mut bursts = Vec::new();
    for burst_failures in [3, 15, 20, 23] {
        let options = ReportOptions { burst_failures, burst_window: Duration::from_secs(10), ..options() };
        let from_postgres =
            SecurityReport::from_postgres(&schema.pool, window(), &options).await.expect("the report is made");
        let from_jsonl = SecurityReport::from_jsonl(&path, window(), &options).expect("the report is made");
        assert_eq!(from_postgres.failed_authentications, 25_000);
        assert_eq!(from_postgres, from_jsonl, "{options:?}");
        bursts.push(from_postgres.authentication_bursts.len());
    }
    // Every subject, the users alone (a failure about every half second each, the addresses every 0.8 s),
    // no one: the thresholds cross the bursts.
    assert_eq!(bursts, [18, 7, 7, 0]);
}
