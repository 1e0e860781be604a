//! Call metrics, read back through the real registry after ok, error, cancelled and panic calls.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hardened::hardened;
use hardened_tests::{DurationHistogram, calls, duration_histogram, in_flight, sample};

#[hardened(kind = "tool")]
fn parse_number(text: &str) -> Result<u64, std::num::ParseIntError> {
    text.parse()
}

#[test]
fn ok_and_error_calls_are_counted_by_outcome() {
    for text in ["1", "2", "x", "3"] {
        let _ = parse_number(text);
    }
    assert_eq!(calls("parse_number", "ok"), 3);
    assert_eq!(calls("parse_number", "error"), 1);
    assert_eq!(calls("parse_number", "cancelled"), 0);
    assert_eq!(calls("parse_number", "panic"), 0);
    assert_eq!(in_flight("parse_number"), 0);
    let labels = [("function", "parse_number"), ("module", "metrics"), ("kind", "tool"), ("outcome", "ok")];
    assert_eq!(sample("hardened_calls_total", &labels), Some(3));
}

#[hardened(buckets = [0.001, 0.05])]
fn sleeps(duration: Duration) {
    std::thread::sleep(duration);
}

#[test]
fn durations_fall_into_the_functions_own_buckets() {
    sleeps(Duration::ZERO);
    sleeps(Duration::from_millis(10));
    sleeps(Duration::from_millis(60));

    let DurationHistogram { buckets, count, sum } = duration_histogram("sleeps").expect("histogram present");
    assert_eq!(buckets, [(0.001, 1), (0.05, 2)], "cumulative counts per bound");
    assert_eq!(count, 3, "the +Inf bucket holds every call");
    assert!((0.07..1.0).contains(&sum), "sum of durations in seconds: {sum}");
}

#[hardened]
fn default_buckets() {}

#[test]
fn the_default_buckets_span_microseconds_to_minutes() {
    default_buckets();
    let DurationHistogram { buckets, count, .. } = duration_histogram("default_buckets").expect("histogram present");
    assert_eq!(count, 1);
    assert_eq!(buckets.first().map(|bucket| bucket.0), Some(0.000_005));
    assert_eq!(buckets.last().map(|bucket| bucket.0), Some(300.0));
    assert_eq!(buckets[0].1, 1, "an empty function takes less than 5 µs");
}

#[hardened]
fn panics(should: bool) -> u8 {
    assert!(!should, "asked to panic");
    1
}

#[test]
fn a_panic_is_recorded_and_propagates_unchanged() {
    let payload = std::panic::catch_unwind(|| panics(true)).expect_err("the panic propagates");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"asked to panic"));
    assert_eq!(panics(false), 1);
    assert_eq!(calls("panics", "panic"), 1);
    assert_eq!(calls("panics", "ok"), 1);
    assert_eq!(in_flight("panics"), 0);
}

#[hardened]
async fn waits_forever(started: Arc<AtomicBool>) {
    started.store(true, Ordering::SeqCst);
    std::future::pending::<()>().await;
}

#[tokio::test]
async fn a_dropped_future_is_cancelled_and_leaves_flight() {
    let started = Arc::new(AtomicBool::new(false));
    let task = tokio::spawn(waits_forever(started.clone()));
    while !started.load(Ordering::SeqCst) {
        tokio::task::yield_now().await;
    }
    assert_eq!(in_flight("waits_forever"), 1);
    task.abort();
    assert!(task.await.expect_err("aborted").is_cancelled());
    assert_eq!(calls("waits_forever", "cancelled"), 1);
    assert_eq!(in_flight("waits_forever"), 0);
}

#[hardened]
async fn never_polled() {}

#[test]
fn a_future_that_is_never_polled_records_nothing() {
    drop(never_polled());
    for outcome in ["ok", "error", "cancelled", "panic"] {
        assert_eq!(calls("never_polled", outcome), 0, "{outcome}");
    }
}

#[hardened]
async fn panics_async() {
    tokio::task::yield_now().await;
    panic!("async panic");
}

#[tokio::test]
async fn an_async_panic_is_recorded_as_panic_not_cancellation() {
    let error = tokio::spawn(panics_async()).await.expect_err("the task panicked");
    assert!(error.is_panic());
    assert_eq!(calls("panics_async", "panic"), 1);
    assert_eq!(calls("panics_async", "cancelled"), 0);
    assert_eq!(in_flight("panics_async"), 0);
}

#[hardened]
async fn concurrent(index: u64) -> Result<u64, String> {
    tokio::task::yield_now().await;
    if index.is_multiple_of(10) { Err(format!("{index} is a multiple of ten")) } else { Ok(index) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_concurrent_tasks_give_exact_counts() {
    let tasks: Vec<_> = (0..20_000).map(|index| tokio::spawn(concurrent(index))).collect();
    for task in tasks {
        let _ = task.await.expect("task finished");
    }
    assert_eq!(calls("concurrent", "ok"), 18_000);
    assert_eq!(calls("concurrent", "error"), 2_000);
    assert_eq!(in_flight("concurrent"), 0);
    let histogram = duration_histogram("concurrent").expect("histogram present");
    assert_eq!(histogram.count, 20_000);
}

#[test]
fn counts_survive_the_threads_that_made_them() {
    let threads: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(|| {
                for _ in 0..1_000 {
                    let _ = parse_in_thread("7");
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("thread finished");
    }
    // Shards of exited threads are reused by new ones; nothing is lost either way.
    std::thread::spawn(|| parse_in_thread("x")).join().expect("thread finished").ok();
    assert_eq!(calls("parse_in_thread", "ok"), 8_000);
    assert_eq!(calls("parse_in_thread", "error"), 1);
}

#[hardened]
fn parse_in_thread(text: &str) -> Result<u64, std::num::ParseIntError> {
    text.parse()
}

#[hardened(kind = "tool")]
fn never_called() {}

#[hardened(metrics = false)]
fn unmeasured() {}

#[test]
fn every_site_has_series_at_zero_before_its_first_call_unless_metrics_are_off() {
    let rendered = hardened::metrics::render();
    assert!(
        rendered
            .contains(r#"hardened_calls_total{function="never_called",module="metrics",kind="tool",outcome="ok"} 0"#),
        "{rendered}"
    );
    assert!(rendered.contains(r#"hardened_in_flight{function="never_called",module="metrics",kind="tool"} 0"#));
    assert!(
        rendered.contains(
            r#"hardened_call_duration_seconds_count{function="never_called",module="metrics",kind="tool"} 0"#
        )
    );
    unmeasured();
    assert!(!rendered.contains("unmeasured"));
    assert!(!hardened::metrics::render().contains("unmeasured"));
}

#[test]
fn the_registry_carries_build_info_and_process_metrics() {
    let rendered = hardened::metrics::render();
    let version = env!("CARGO_PKG_VERSION");
    assert!(rendered.contains(&format!(r#"hardened_build_info{{version="{version}"}} 1"#)), "{rendered}");
    assert!(rendered.contains("process_resident_memory_bytes"), "{rendered}");
    assert!(rendered.contains("process_open_fds"), "{rendered}");
}

#[test]
fn an_application_can_register_its_own_collectors() {
    let jobs = prometheus::IntCounter::new("app_jobs_total", "Jobs done.").expect("valid metric");
    hardened::metrics::registry().register(Box::new(jobs.clone())).expect("registered");
    jobs.inc_by(2);
    assert!(hardened::metrics::render().contains("app_jobs_total 2"));
}

/// An error with only `Debug`.
#[derive(Debug)]
struct Opaque;

type ApiResult<T> = Result<T, Opaque>;

#[hardened]
fn aliased(fail: bool) -> ApiResult<u8> {
    if fail { Err(Opaque) } else { Ok(1) }
}

#[hardened]
fn opaque_success(fail: bool) -> Result<impl std::fmt::Display, Opaque> {
    if fail { Err(Opaque) } else { Ok(5) }
}

#[test]
fn a_result_is_recognised_by_its_type_whatever_it_is_called() {
    assert!(aliased(true).is_err());
    assert!(aliased(false).is_ok());
    assert!(opaque_success(true).is_err());
    assert_eq!(opaque_success(false).map(|value| value.to_string()).ok().as_deref(), Some("5"));
    assert_eq!((calls("aliased", "ok"), calls("aliased", "error")), (1, 1));
    assert_eq!((calls("opaque_success", "ok"), calls("opaque_success", "error")), (1, 1));
}
