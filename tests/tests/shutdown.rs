//! Shutdown handlers: priority order, a timeout per handler, failures reported, and the audit
//! pipeline's flush among them. On tokio's paused clock: a handler that hangs is cut without waiting.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hardened::shutdown::{self, HandlerOutcome, priority};

#[tokio::test(start_paused = true)]
async fn handlers_run_in_priority_order_each_within_its_timeout() {
    let order = Arc::new(Mutex::new(Vec::new()));
    let step = |name: &'static str| {
        let order = Arc::clone(&order);
        move || {
            let order = Arc::clone(&order);
            async move {
                order.lock().expect("not poisoned").push(name);
                Ok(())
            }
        }
    };
    shutdown::register("telemetry", priority::TELEMETRY, Duration::from_secs(1), step("telemetry"));
    shutdown::register("first", priority::APPLICATION, Duration::from_secs(1), step("first"));
    shutdown::register("hangs", priority::APPLICATION, Duration::from_secs(3), || async {
        std::future::pending::<()>().await;
        Ok(())
    });
    shutdown::register("fails", priority::APPLICATION + 1, Duration::from_secs(1), || async {
        Err("the cache is gone".to_owned())
    });
    shutdown::register("audit", priority::AUDIT, Duration::from_secs(1), step("audit"));

    let started = tokio::time::Instant::now();
    let reports = shutdown::run_handlers().await;

    let names: Vec<&str> = reports.iter().map(|report| report.name.as_str()).collect();
    assert_eq!(names, ["first", "hangs", "fails", "audit", "telemetry"], "priority, then registration order");
    assert_eq!(*order.lock().expect("not poisoned"), ["first", "audit", "telemetry"], "the rest ran after the hang");
    assert_eq!(reports[1].outcome, HandlerOutcome::TimedOut);
    assert_eq!(reports[1].took, Duration::from_secs(3));
    assert_eq!(reports[2].outcome, HandlerOutcome::Failed("the cache is gone".to_owned()));
    assert_eq!(reports[2].to_string(), "fails: failed after 0ns: the cache is gone");
    assert_eq!(started.elapsed(), Duration::from_secs(3), "only the hanging handler took time");
    assert!(shutdown::run_handlers().await.is_empty(), "each handler runs once");
}
