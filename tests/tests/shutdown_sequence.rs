//! The shutdown sequence on tokio's paused clock: its steps, their order and their time limits. The
//! shutdown is once per process, so this binary holds one test.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hardened::shutdown::{self, HandlerOutcome, Shutdown, ShutdownConfig, priority};
use tokio::time::Instant;

type Log = Arc<Mutex<Vec<(&'static str, Duration)>>>;

fn note(log: &Log, started: Instant, what: &'static str) {
    log.lock().expect("not poisoned").push((what, started.elapsed()));
}

#[tokio::test(start_paused = true)]
async fn the_steps_run_in_order_each_within_its_limit_and_all_within_the_deadline() {
    let config = ShutdownConfig {
        pre_stop_delay: Duration::from_secs(5),
        drain_timeout: Duration::from_secs(10),
        deadline: Duration::from_secs(20),
    };
    let log: Log = Arc::default();
    let started = Instant::now();

    for (name, at, timeout) in
        [("flush", priority::AUDIT, 3), ("hangs", priority::APPLICATION, 3), ("late", priority::TELEMETRY, 1)]
    {
        let log = Arc::clone(&log);
        shutdown::register(name, at, Duration::from_secs(timeout), move || {
            let log = Arc::clone(&log);
            async move {
                note(&log, started, name);
                if name != "late" {
                    std::future::pending::<()>().await;
                }
                Ok(())
            }
        });
    }
    let closing = {
        let log = Arc::clone(&log);
        tokio::spawn(async move {
            shutdown::closing().await;
            note(&log, started, "closing");
        })
    };
    let running = tokio::spawn(
        Shutdown::new(config)
            // A connection that never finishes: the drain is cut at its timeout.
            .drain(std::future::pending())
            .run(),
    );

    tokio::time::sleep(Duration::from_mins(1)).await;
    assert!(!shutdown::has_begun() && !running.is_finished(), "nothing happens until the shutdown is requested");

    let requested = Instant::now();
    assert!(shutdown::begin(), "this call begins the shutdown");
    assert!(!shutdown::begin(), "a second call changes nothing");
    assert!(shutdown::has_begun());
    assert_eq!(shutdown::reason(), Some("requested"));
    let summary = running.await.expect("the shutdown runs");
    closing.await.expect("closing resolves");

    let since_request = |at: Duration| at.saturating_sub(requested - started);
    let log: Vec<(&str, Duration)> =
        log.lock().expect("not poisoned").iter().map(|(what, at)| (*what, since_request(*at))).collect();
    assert_eq!(
        log,
        [("closing", Duration::from_secs(5)), ("hangs", Duration::from_secs(15)), ("flush", Duration::from_secs(18)),],
        "closing after the pre-stop delay, handlers after the drain timeout, each cut at its own timeout or at the \
         deadline; the last one never started"
    );
    assert_eq!(summary.pre_stop, Duration::from_secs(5));
    assert!(!summary.drained);
    assert_eq!(summary.drain_took, Duration::from_secs(10));
    let outcomes: Vec<(&str, &HandlerOutcome)> =
        summary.handlers.iter().map(|handler| (handler.name.as_str(), &handler.outcome)).collect();
    assert_eq!(
        outcomes,
        [
            ("hangs", &HandlerOutcome::TimedOut),
            ("flush", &HandlerOutcome::TimedOut),
            ("late", &HandlerOutcome::NotStarted)
        ]
    );
    assert_eq!(summary.handlers[1].took, Duration::from_secs(2), "cut at the deadline, before its own timeout");
    assert_eq!(summary.took, Duration::from_secs(20), "the deadline holds");
    assert!(!summary.is_clean());
    assert!(summary.to_string().starts_with("shutdown (requested) took 20s of its 20s deadline; drain cut after 10s"));
}
