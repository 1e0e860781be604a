//! Where the process is in its shutdown: one state for the whole process, moving forward only.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, OnceLock};

use tokio::sync::watch;

/// The steps of a shutdown that others wait for, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Running,
    /// Readiness reports not ready; connections are still accepted while load balancers catch up.
    Begun,
    /// Servers stop accepting connections and finish the requests they hold.
    Closing,
}

static PHASE: LazyLock<watch::Sender<Phase>> = LazyLock::new(|| watch::Sender::new(Phase::Running));

static REASON: OnceLock<String> = OnceLock::new();

/// [`has_begun`] without the channel's lock: read on every request by servers.
static BEGUN: AtomicBool = AtomicBool::new(false);

/// Starts the shutdown: from now on readiness reports the service as not ready and every [`requested`]
/// future resolves. Returns whether this call started it (false when it had begun).
#[allow(clippy::must_use_candidate, reason = "most callers only want the shutdown begun")]
pub fn begin() -> bool {
    begin_because("requested")
}

/// [`begin`], keeping `reason` (such as `SIGTERM`) for the summary.
pub(super) fn begin_because(reason: &str) -> bool {
    let started = advance(Phase::Begun);
    if started {
        // Only the call that started the shutdown gets here, so the cell is empty.
        let _ = REASON.set(reason.to_owned());
    }
    started
}

/// Whether the shutdown has begun.
#[must_use]
pub fn has_begun() -> bool {
    BEGUN.load(Ordering::Acquire)
}

/// Why the shutdown began, once it has.
#[must_use]
pub fn reason() -> Option<&'static str> {
    REASON.get().map(String::as_str)
}

/// Resolves once the shutdown has begun (at once if it has).
pub async fn requested() {
    reached(Phase::Begun).await;
}

/// Resolves once servers are to stop accepting connections: after the pre-stop delay of a running
/// [`Shutdown`](super::Shutdown). What a server's graceful shutdown awaits.
pub async fn closing() {
    reached(Phase::Closing).await;
}

/// Moves on to closing; the shutdown sequence calls it after the pre-stop delay.
pub(super) fn close() {
    advance(Phase::Closing);
}

/// Moves the phase forward to `to` (never back); returns whether it moved.
fn advance(to: Phase) -> bool {
    PHASE.send_if_modified(|phase| {
        let moved = *phase < to;
        if moved {
            *phase = to;
            // Every phase after `Running` is a shutdown begun; set before the waiters wake.
            BEGUN.store(true, Ordering::Release);
        }
        moved
    })
}

async fn reached(wanted: Phase) {
    let mut phase = PHASE.subscribe();
    // The sender lives in a static, so the channel never closes and `wait_for` cannot fail.
    let _ = phase.wait_for(|phase| *phase >= wanted).await;
}
