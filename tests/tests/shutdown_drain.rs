//! The drain waits for the calls of `#[hardened]` functions in flight and for what else registered a
//! count, on tokio's paused clock. The shutdown is once per process, so this binary holds one test.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hardened::hardened;
use hardened::shutdown::{self, Shutdown, ShutdownConfig};
use tokio::sync::oneshot;

#[hardened(kind = "tool")]
async fn slow_tool(done: oneshot::Receiver<()>) -> Result<(), oneshot::error::RecvError> {
    done.await
}

/// Jobs of the application's own, counted outside any `#[hardened]` function.
static JOBS: AtomicU64 = AtomicU64::new(0);

fn jobs() -> u64 {
    JOBS.load(Ordering::SeqCst)
}

#[tokio::test(start_paused = true)]
async fn the_drain_waits_for_calls_in_flight_and_for_registered_counts() {
    let config = ShutdownConfig {
        pre_stop_delay: Duration::ZERO,
        drain_timeout: Duration::from_secs(30),
        deadline: Duration::from_mins(1),
    };
    let (finish_call, done) = oneshot::channel();
    let call = tokio::spawn(slow_tool(done));
    tokio::task::yield_now().await;
    shutdown::wait_for_in_flight(jobs);
    shutdown::wait_for_in_flight(jobs);

    let running = tokio::spawn(Shutdown::new(config).run());
    assert!(shutdown::begin());

    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!running.is_finished(), "the call is still in flight");
    JOBS.store(1, Ordering::SeqCst);
    finish_call.send(()).expect("the call waits");
    call.await.expect("the call ends").expect("it was answered");

    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(!running.is_finished(), "the job is still in flight");
    JOBS.store(0, Ordering::SeqCst);

    let summary = running.await.expect("the shutdown runs");
    assert!(summary.drained, "{summary}");
    assert_eq!(summary.left_in_flight, 0);
    let took = summary.drain_took;
    assert!(took >= Duration::from_secs(7) && took < Duration::from_secs(8), "drained after the job: {took:?}");
}
