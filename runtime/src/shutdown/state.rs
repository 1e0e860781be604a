//! Whether the process is shutting down: one flag for the whole process, set once and never cleared.

use std::sync::LazyLock;

use tokio::sync::watch;

static BEGUN: LazyLock<watch::Sender<bool>> = LazyLock::new(|| watch::Sender::new(false));

/// Starts the shutdown: from now on readiness reports the service as not ready, and every
/// [`requested`] future resolves. Returns whether this call started it (false when it had begun).
pub fn begin() -> bool {
    BEGUN.send_if_modified(|begun| !std::mem::replace(begun, true))
}

/// Whether the shutdown has begun.
#[must_use]
pub fn has_begun() -> bool {
    *BEGUN.borrow()
}

/// Resolves once the shutdown has begun (at once if it has): what a server's graceful shutdown awaits
/// to stop taking new connections.
pub async fn requested() {
    let mut begun = BEGUN.subscribe();
    // The sender lives in a static, so the channel never closes and `wait_for` cannot fail.
    let _ = begun.wait_for(|begun| *begun).await;
}
