//! Health checks: aggregation by criticality, timeouts, caching, concurrency, recovery, the built-in
//! checks (breakers, audit pipeline, runtime watchdog, `PostgreSQL`), the startup gate and the gauge.
//!
//! Time is tokio's paused clock: a test that waits 5 s takes no time and measures exactly 5 s.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use hardened::audit::{AuditEvent, Auditor, BoxFuture, EventType, MemorySink, SealedEvent, Sink, SinkError};
use hardened::health::{
    AuditCheck, BreakerCheck, CheckResult, Component, HealthConfig, HealthRegistry, HealthStatus, PostgresCheck, Probe,
    Watchdog, check_fn,
};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;

/// A registry with `ttl` as its cache lifetime and the other settings at their defaults.
fn registry_caching_for(ttl: Duration) -> HealthRegistry {
    let mut config = HealthConfig::default();
    config.cache_ttl = ttl;
    HealthRegistry::new(config)
}

fn fixed(result: CheckResult) -> impl hardened::health::HealthCheck {
    check_fn(move || std::future::ready(result.clone()))
}

/// A check that counts its runs and answers after `delay`.
fn counting(runs: &Arc<AtomicU32>, delay: Duration) -> impl hardened::health::HealthCheck {
    let runs = Arc::clone(runs);
    check_fn(move || {
        runs.fetch_add(1, Ordering::SeqCst);
        async move {
            tokio::time::sleep(delay).await;
            CheckResult::healthy()
        }
    })
}

#[tokio::test]
async fn an_unhealthy_critical_check_fails_its_probe_and_only_its_probe() {
    let health = registry_caching_for(Duration::ZERO);
    health.register(Component::new("database", fixed(CheckResult::unhealthy("connection refused"))));
    health.register(Component::new("event-loop", fixed(CheckResult::healthy())).liveness());

    let readiness = health.readiness().await;
    assert_eq!(readiness.status, HealthStatus::Unhealthy);
    assert!(!readiness.passes());
    assert_eq!(readiness.message.as_deref(), Some("unhealthy: database"));
    let database = readiness.component("database").expect("the readiness probe ran the database check");
    assert_eq!(database.message.as_deref(), Some("connection refused"));
    assert!(readiness.component("event-loop").is_none(), "a liveness check is not part of readiness");

    let liveness = health.liveness().await;
    assert_eq!(liveness.status, HealthStatus::Healthy, "a dependency's outage must not fail liveness");
    assert_eq!(liveness.components.len(), 1);
}

#[tokio::test]
async fn an_informational_check_can_degrade_its_probe_but_never_fail_it() {
    let health = registry_caching_for(Duration::ZERO);
    health.register(Component::new("database", fixed(CheckResult::healthy())));
    health.register(Component::new("search", fixed(CheckResult::unhealthy("index offline"))).informational());

    let readiness = health.readiness().await;
    assert_eq!(readiness.status, HealthStatus::Degraded);
    assert!(readiness.passes());
    assert_eq!(readiness.message.as_deref(), Some("degraded: search"));
    let search = readiness.component("search").expect("the search check ran");
    assert_eq!(search.status, HealthStatus::Unhealthy, "the component keeps its own status");
    assert_eq!(search.weight(), HealthStatus::Degraded);
}

#[tokio::test]
async fn a_probe_is_as_bad_as_its_worst_critical_check() {
    let health = registry_caching_for(Duration::ZERO);
    health.register(Component::new("a", fixed(CheckResult::healthy())));
    health.register(Component::new("b", fixed(CheckResult::degraded("slow replies"))));
    assert_eq!(health.readiness().await.status, HealthStatus::Degraded, "a degraded critical check degrades");
    assert!(health.readiness().await.passes(), "degraded still takes traffic");

    health.register(Component::new("c", fixed(CheckResult::unhealthy("down"))));
    health.register(Component::new("d", fixed(CheckResult::unhealthy("down too"))));
    let readiness = health.readiness().await;
    assert_eq!(readiness.status, HealthStatus::Unhealthy);
    assert_eq!(readiness.message.as_deref(), Some("unhealthy: c, d"), "every check at the worst status is named");

    assert!(health.deregister("c") && health.deregister("d"));
    assert_eq!(health.readiness().await.status, HealthStatus::Degraded);
    assert_eq!(health.names(), ["a", "b"]);
}

#[tokio::test(start_paused = true)]
async fn a_check_that_does_not_answer_within_its_timeout_is_unhealthy() {
    let health = registry_caching_for(Duration::ZERO);
    let hangs = check_fn(|| async {
        tokio::time::sleep(Duration::from_hours(1)).await;
        CheckResult::healthy()
    });
    health.register(Component::new("hangs", hangs).timeout(Duration::from_secs(2)));

    let started = Instant::now();
    let readiness = health.readiness().await;
    assert_eq!(started.elapsed(), Duration::from_secs(2), "the probe waits for the timeout, no longer");
    let hangs = readiness.component("hangs").expect("the check is reported");
    assert_eq!(hangs.status, HealthStatus::Unhealthy);
    assert_eq!(hangs.message.as_deref(), Some("no answer within 2s"));
    assert_eq!(hangs.duration, Duration::from_secs(2));
    assert!(!readiness.passes());
}

#[tokio::test(start_paused = true)]
async fn the_registry_timeout_applies_to_checks_without_their_own() {
    let mut config = HealthConfig::default();
    config.check_timeout = Duration::from_millis(300);
    let health = HealthRegistry::new(config);
    let runs = Arc::new(AtomicU32::new(0));
    health.register(Component::new("slow", counting(&runs, Duration::from_secs(10))));

    let started = Instant::now();
    assert_eq!(health.readiness().await.status, HealthStatus::Unhealthy);
    assert_eq!(started.elapsed(), Duration::from_millis(300));
}

#[tokio::test(start_paused = true)]
async fn a_result_is_reused_within_the_cache_lifetime_and_renewed_after_it() {
    let health = registry_caching_for(Duration::from_secs(5));
    let runs = Arc::new(AtomicU32::new(0));
    health.register(Component::new("database", counting(&runs, Duration::ZERO)));

    let first = health.readiness().await;
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(!first.component("database").expect("reported").cached);

    tokio::time::advance(Duration::from_millis(4_999)).await;
    let second = health.readiness().await;
    assert_eq!(runs.load(Ordering::SeqCst), 1, "within the lifetime the check is not run again");
    assert!(second.component("database").expect("reported").cached);
    health.report().await;
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the detailed report shares the cache");

    tokio::time::advance(Duration::from_millis(1)).await;
    let third = health.readiness().await;
    assert_eq!(runs.load(Ordering::SeqCst), 2, "once the lifetime has passed the check runs again");
    assert!(!third.component("database").expect("reported").cached);
}

#[tokio::test(start_paused = true)]
async fn a_component_can_cache_for_longer_than_the_registry() {
    let health = registry_caching_for(Duration::ZERO);
    let runs = Arc::new(AtomicU32::new(0));
    health.register(Component::new("costly", counting(&runs, Duration::ZERO)).cache_for(Duration::from_mins(1)));
    for _ in 0..3 {
        health.readiness().await;
        tokio::time::advance(Duration::from_secs(10)).await;
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn checks_run_concurrently_so_a_probe_takes_as_long_as_its_slowest_check() {
    let health = registry_caching_for(Duration::ZERO);
    let runs = Arc::new(AtomicU32::new(0));
    health.register(
        Component::new("three-seconds", counting(&runs, Duration::from_secs(3))).timeout(Duration::from_mins(1)),
    );
    health.register(
        Component::new("five-seconds", counting(&runs, Duration::from_secs(5))).timeout(Duration::from_mins(1)),
    );

    let started = Instant::now();
    let readiness = health.readiness().await;
    assert_eq!(started.elapsed(), Duration::from_secs(5), "3 s and 5 s checks together take 5 s, not 8 s");
    assert_eq!(readiness.component("three-seconds").expect("reported").duration, Duration::from_secs(3));
    assert_eq!(readiness.component("five-seconds").expect("reported").duration, Duration::from_secs(5));
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn probes_arriving_together_share_one_run_of_each_check() {
    let health = registry_caching_for(Duration::from_secs(1));
    let runs = Arc::new(AtomicU32::new(0));
    health.register(Component::new("database", counting(&runs, Duration::from_millis(200))));

    let probes: Vec<_> = (0..20).map(|_| health.readiness()).collect();
    let reports = futures::future::join_all(probes).await;
    assert!(reports.iter().all(|report| report.status == HealthStatus::Healthy));
    assert_eq!(runs.load(Ordering::SeqCst), 1, "a storm of probes is one query against the dependency");
}

#[tokio::test(start_paused = true)]
async fn a_component_recovers_once_its_check_passes_again() {
    let health = registry_caching_for(Duration::from_secs(1));
    let up = Arc::new(AtomicBool::new(false));
    let check = {
        let up = Arc::clone(&up);
        check_fn(move || {
            let up = up.load(Ordering::SeqCst);
            async move { if up { CheckResult::healthy() } else { CheckResult::unhealthy("down") } }
        })
    };
    health.register(Component::new("queue", check));

    assert!(!health.readiness().await.passes());
    up.store(true, Ordering::SeqCst);
    assert!(!health.readiness().await.passes(), "the failure is cached for its lifetime");
    tokio::time::advance(Duration::from_secs(1)).await;
    let readiness = health.readiness().await;
    assert!(readiness.passes());
    assert_eq!(readiness.status, HealthStatus::Healthy);
    assert_eq!(readiness.message, None);
}

#[tokio::test]
async fn a_check_that_panics_is_unhealthy_and_the_others_still_answer() {
    let health = registry_caching_for(Duration::ZERO);
    health.register(Component::new("broken", check_fn(|| async { panic!("a bug in the check") })));
    health.register(Component::new("fine", fixed(CheckResult::healthy())));

    let readiness = health.readiness().await;
    let broken = readiness.component("broken").expect("reported");
    assert_eq!(broken.status, HealthStatus::Unhealthy);
    assert_eq!(broken.message.as_deref(), Some("the check panicked"));
    assert_eq!(readiness.component("fine").expect("reported").status, HealthStatus::Healthy);
}

#[tokio::test]
async fn the_startup_probe_fails_until_the_gate_is_complete_then_follows_its_checks() {
    let health = registry_caching_for(Duration::ZERO);
    let migrated = Arc::new(AtomicBool::new(false));
    let check = {
        let migrated = Arc::clone(&migrated);
        check_fn(move || {
            let done = migrated.load(Ordering::SeqCst);
            async move { if done { CheckResult::healthy() } else { CheckResult::unhealthy("migrations pending") } }
        })
    };
    health.register(Component::new("migrations", check).startup());

    let starting = health.startup().await;
    assert_eq!(starting.status, HealthStatus::Unhealthy);
    assert_eq!(starting.message.as_deref(), Some("starting: initialisation not complete"));
    assert!(starting.components.is_empty(), "no check runs before the gate opens");

    health.startup_gate().complete();
    assert_eq!(health.startup().await.message.as_deref(), Some("unhealthy: migrations"));
    migrated.store(true, Ordering::SeqCst);
    assert!(health.startup().await.passes());
    assert!(health.readiness().await.passes(), "startup checks are not readiness checks");
}

#[tokio::test]
async fn the_detailed_report_holds_every_check_and_probe() {
    let health = registry_caching_for(Duration::ZERO);
    health.register(Component::new("database", fixed(CheckResult::healthy().detail("connections", 4))));
    health.register(Component::new("search", fixed(CheckResult::degraded("slow"))).informational());
    health.register(Component::new("event-loop", fixed(CheckResult::healthy())).liveness());
    health.startup_gate().complete();

    let report = health.report().await;
    assert_eq!(report.status, HealthStatus::Degraded);
    assert_eq!(report.liveness.status, HealthStatus::Healthy);
    assert_eq!(report.readiness.status, HealthStatus::Degraded);
    assert_eq!(report.startup.status, HealthStatus::Healthy);
    assert!(!report.shutting_down);

    let json = serde_json::to_value(&report).expect("the report serialises");
    assert_eq!(json["status"], "degraded");
    assert_eq!(json["shutting_down"], false);
    assert_eq!(json["probes"]["readiness"]["status"], "degraded");
    assert_eq!(json["probes"]["readiness"]["message"], "degraded: search");
    assert_eq!(json["probes"]["liveness"]["message"], serde_json::Value::Null);
    let database = &json["checks"]["database"];
    assert_eq!(database["status"], "healthy");
    assert_eq!(database["probe"], "readiness");
    assert_eq!(database["criticality"], "critical");
    assert_eq!(database["details"]["connections"], 4);
    assert!(database["duration_ms"].as_f64().is_some());
    assert_eq!(database["cached"], false);
    assert_eq!(json["checks"]["search"]["criticality"], "informational");
    assert_eq!(json["checks"]["event-loop"]["probe"], "liveness");

    let probe = serde_json::to_value(health.readiness().await).expect("a probe serialises");
    assert_eq!(
        probe,
        serde_json::json!({
            "probe": "readiness",
            "status": "degraded",
            "message": "degraded: search",
            "checks": {"database": "healthy", "search": "degraded"},
        })
    );
}

/// `hardened_health_status{component}`, read from the real registry.
fn gauge(component: &str) -> Option<f64> {
    let families = hardened::metrics::registry().gather();
    let family = families.iter().find(|family| family.name() == "hardened_health_status")?;
    family
        .get_metric()
        .iter()
        .find(|metric| metric.get_label().iter().any(|label| label.name() == "component" && label.value() == component))
        .map(|metric| metric.get_gauge().get_value())
}

#[tokio::test]
async fn each_run_sets_the_status_gauge_of_its_component() {
    let health = registry_caching_for(Duration::ZERO);
    health.register(Component::new("gauge-healthy", fixed(CheckResult::healthy())));
    health.register(Component::new("gauge-degraded", fixed(CheckResult::degraded("slow"))));
    health.register(Component::new("gauge-unhealthy", fixed(CheckResult::unhealthy("down"))).informational());
    assert_eq!(gauge("gauge-healthy"), None, "no series before the first run");

    health.report().await;
    assert_eq!(gauge("gauge-healthy"), Some(1.0));
    assert_eq!(gauge("gauge-degraded"), Some(0.5));
    assert_eq!(gauge("gauge-unhealthy"), Some(0.0), "the gauge is the component's own status, not its weight");

    assert!(hardened::metrics::render().contains("# TYPE hardened_health_status gauge"));
    health.deregister("gauge-healthy");
    assert_eq!(gauge("gauge-healthy"), None, "a deregistered check leaves no stale series");
}

#[tokio::test]
async fn an_open_breaker_degrades_readiness_without_failing_it() {
    let health = registry_caching_for(Duration::ZERO);
    health.register(Component::new("breakers", BreakerCheck).informational());
    let payments = hardened::breaker("health-test-payments");
    assert_eq!(health.readiness().await.status, HealthStatus::Healthy);

    payments.force_open();
    let readiness = health.readiness().await;
    assert_eq!(readiness.status, HealthStatus::Degraded);
    assert!(readiness.passes());
    let breakers = readiness.component("breakers").expect("reported");
    assert_eq!(breakers.message.as_deref(), Some("circuit breakers not closed: health-test-payments (forced_open)"));
    assert_eq!(breakers.details["breakers"]["health-test-payments"], "forced_open");

    payments.close();
    let readiness = health.readiness().await;
    assert_eq!(readiness.status, HealthStatus::Healthy);
    assert_eq!(
        readiness.component("breakers").expect("reported").details["breakers"]["health-test-payments"],
        "closed"
    );
}

#[tokio::test(start_paused = true)]
async fn the_watchdog_fails_liveness_while_the_event_loop_lags_and_recovers_after() {
    let health = registry_caching_for(Duration::ZERO);
    let watchdog = Watchdog::start(Duration::from_millis(100), Duration::from_secs(1));
    health.register(Component::new("runtime", watchdog.clone()).liveness());

    tokio::time::sleep(Duration::from_millis(350)).await;
    let liveness = health.liveness().await;
    assert_eq!(liveness.status, HealthStatus::Healthy);
    assert!(watchdog.lag() < Duration::from_millis(5), "an idle loop wakes the watchdog on time: {:?}", watchdog.lag());

    // The clock moves 5 s while the runtime runs nothing: to the watchdog, a worker blocked for 5 s.
    tokio::time::advance(Duration::from_secs(5)).await;
    let liveness = health.liveness().await;
    assert_eq!(liveness.status, HealthStatus::Unhealthy);
    assert!(!liveness.passes());
    let runtime = liveness.component("runtime").expect("reported");
    assert!(runtime.message.as_deref().is_some_and(|message| message.contains("event loop lags")), "{runtime:?}");
    assert!(runtime.details["lag_ms"].as_f64().expect("a number") >= 4_800.0, "{runtime:?}");
    assert!(health.readiness().await.passes(), "the watchdog is a liveness check only");

    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(health.liveness().await.status, HealthStatus::Healthy, "lag back to normal, liveness recovers");
    assert!(watchdog.max_lag() >= Duration::from_millis(4_800));
}

#[test]
fn the_watchdog_counts_the_time_its_task_is_overdue_before_it_gets_to_measure() {
    // A runtime that is not driven any more: its watchdog task never runs again, as on a stuck worker.
    let stuck = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let watchdog = stuck.block_on(async { Watchdog::start(Duration::from_millis(10), Duration::from_millis(50)) });
    std::thread::sleep(Duration::from_millis(80));
    assert!(
        watchdog.lag() >= Duration::from_millis(70),
        "overdue by at least 80 ms less one interval: {:?}",
        watchdog.lag()
    );

    let health = registry_caching_for(Duration::ZERO);
    health.register(Component::new("runtime", watchdog).liveness());
    let probing = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    assert_eq!(probing.block_on(health.liveness()).status, HealthStatus::Unhealthy);
}

/// A sink whose writes wait for a permit, and which says when a write starts.
struct GatedSink {
    permits: Arc<Semaphore>,
    entered: mpsc::UnboundedSender<()>,
}

impl Sink for GatedSink {
    fn name(&self) -> &'static str {
        "gated"
    }

    fn write<'a>(&'a mut self, _: &'a [SealedEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            let _ = self.entered.send(());
            self.permits.acquire().await.expect("the semaphore stays open").forget();
            Ok(())
        })
    }
}

fn auditor(directory: &tempfile::TempDir, sink: impl Sink) -> Auditor {
    Auditor::builder()
        .sink(sink)
        .spill_dir(directory.path().join("spill"))
        .retries(1, Duration::from_millis(1), Duration::from_millis(1))
        .batch_interval(Duration::from_millis(1))
        .start()
        .expect("the pipeline starts")
}

fn audit_status(report: &hardened::health::ProbeReport) -> (HealthStatus, Option<String>) {
    let audit = report.component("audit").expect("the audit check ran");
    (audit.status, audit.message.clone())
}

#[tokio::test]
async fn a_sink_that_is_down_degrades_the_audit_check_until_it_recovers() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let sink = MemorySink::new();
    let pipeline = auditor(&directory, sink.clone());
    let health = registry_caching_for(Duration::ZERO);
    health.register(Component::new("audit", AuditCheck::new(pipeline.clone())));
    assert_eq!(audit_status(&health.readiness().await), (HealthStatus::Healthy, None));

    sink.set_failing(true);
    pipeline.emit(AuditEvent::new(EventType::ToolExecution));
    assert!(pipeline.flush().await.is_err(), "the sink is down, its event spilled");
    let (status, message) = audit_status(&health.readiness().await);
    assert_eq!(status, HealthStatus::Degraded);
    assert_eq!(
        message.as_deref(),
        Some("audit sinks down, their events kept in spill files: memory (1 events spilled)")
    );

    sink.set_failing(false);
    pipeline.flush().await.expect("the sink is back and its backlog replayed");
    assert_eq!(audit_status(&health.readiness().await), (HealthStatus::Healthy, None));
    assert_eq!(sink.events().len(), 1);
}

#[tokio::test]
async fn a_backlog_over_the_threshold_degrades_the_audit_check() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let permits = Arc::new(Semaphore::new(0));
    let (entered, mut writes) = mpsc::unbounded_channel();
    let pipeline = auditor(&directory, GatedSink { permits: Arc::clone(&permits), entered });
    let health = registry_caching_for(Duration::ZERO);
    health.register(Component::new("audit", AuditCheck::new(pipeline.clone()).backlog_threshold(3)));

    pipeline.emit(AuditEvent::new(EventType::ToolExecution));
    writes.recv().await.expect("the writer starts writing the first event, and waits");
    for _ in 0..5 {
        pipeline.emit(AuditEvent::new(EventType::ToolExecution));
    }
    let readiness = health.readiness().await;
    let (status, message) = audit_status(&readiness);
    assert_eq!(status, HealthStatus::Degraded);
    assert_eq!(message.as_deref(), Some("5 audit events waiting to be written, over the threshold of 3"));
    assert_eq!(readiness.component("audit").expect("reported").details["queued"], 5);

    permits.add_permits(1_000);
    pipeline.flush().await.expect("everything is written");
    assert_eq!(audit_status(&health.readiness().await), (HealthStatus::Healthy, None));
}

#[tokio::test]
async fn a_stopped_audit_writer_is_unhealthy() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let pipeline = auditor(&directory, MemorySink::new());
    let health = registry_caching_for(Duration::ZERO);
    health.register(Component::new("audit", AuditCheck::new(pipeline.clone())));

    pipeline.shutdown().await.expect("the writer stops cleanly");
    let readiness = health.readiness().await;
    assert_eq!(
        audit_status(&readiness),
        (
            HealthStatus::Unhealthy,
            Some("the audit writer has stopped; events wait in the overflow spill file".to_owned())
        )
    );
    assert!(!readiness.passes(), "the audit check is critical unless registered as informational");
}

#[tokio::test]
async fn the_process_wide_registry_has_the_built_in_checks() {
    let names = hardened::health::registry().names();
    assert!(names.contains(&"breakers".to_owned()) && names.contains(&"audit".to_owned()), "{names:?}");
    let report = hardened::health::registry().report().await;
    let audit = report.component("audit").expect("the audit check ran");
    assert_eq!(audit.status, HealthStatus::Healthy);
    assert_eq!(audit.details["started"], false, "the check never starts the pipeline it watches");
    assert_eq!(report.component("breakers").expect("the breaker check ran").probe, Probe::Readiness);
}

#[tokio::test]
async fn an_unreachable_database_is_unhealthy() {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(Duration::from_millis(500))
        .connect_lazy("postgres://hardened@127.0.0.1:1/nothing")
        .expect("a valid URL");
    let health = registry_caching_for(Duration::ZERO);
    health.register(Component::new("database", PostgresCheck::new(pool)).timeout(Duration::from_secs(5)));

    let readiness = health.readiness().await;
    let database = readiness.component("database").expect("reported");
    assert_eq!(database.status, HealthStatus::Unhealthy);
    assert!(database.message.as_deref().is_some_and(|message| message.starts_with("SELECT 1 failed")), "{database:?}");
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored"]
async fn a_reachable_database_answers_select_1() {
    let pool = sqlx::PgPool::connect(&hardened_tests::database_url()).await.expect("the database is reachable");
    let health = registry_caching_for(Duration::ZERO);
    health.register(Component::new("database", PostgresCheck::new(pool.clone())).timeout(Duration::from_secs(5)));

    let readiness = health.readiness().await;
    let database = readiness.component("database").expect("reported");
    assert_eq!(database.status, HealthStatus::Healthy, "{database:?}");
    assert!(database.details["connections"].as_u64().expect("a count") >= 1);

    pool.close().await;
    let readiness = health.readiness().await;
    assert_eq!(
        readiness.component("database").expect("reported").message.as_deref(),
        Some("the connection pool is closed")
    );
}
