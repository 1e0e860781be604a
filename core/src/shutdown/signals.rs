//! SIGTERM and SIGINT: the first begins the shutdown, a second one forces the process out.

use std::sync::atomic::{AtomicBool, Ordering};

/// The exit status after a second signal: 128 plus SIGINT's number, as a shell reports an interrupt.
pub const FORCED_EXIT_STATUS: i32 = 130;

/// Starts listening for SIGTERM and SIGINT (Ctrl-C elsewhere than Unix) on the current tokio runtime,
/// once per process; later calls do nothing.
///
/// The first signal [begins](super::begin) the shutdown; a second one, while the shutdown is still
/// running, logs and exits at once with [`FORCED_EXIT_STATUS`], for an operator who will not wait.
///
/// # Panics
///
/// Outside a tokio runtime, or if the signal handlers cannot be installed.
pub fn listen_for_signals() {
    static LISTENING: AtomicBool = AtomicBool::new(false);
    if LISTENING.swap(true, Ordering::AcqRel) {
        return;
    }
    let mut signals = Signals::install();
    tokio::spawn(async move {
        let first = signals.next().await;
        tracing::info!(signal = first, "shutdown requested");
        super::state::begin_because(first);
        let second = signals.next().await;
        tracing::error!(signal = second, "second signal: exiting without finishing the shutdown");
        std::process::exit(FORCED_EXIT_STATUS);
    });
}

#[cfg(unix)]
struct Signals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn install() -> Signals {
        use tokio::signal::unix::{SignalKind, signal};
        let install = |kind| signal(kind).expect("signal handlers can be installed on a tokio runtime");
        Signals { terminate: install(SignalKind::terminate()), interrupt: install(SignalKind::interrupt()) }
    }

    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn install() -> Signals {
        Signals
    }

    async fn next(&mut self) -> &'static str {
        tokio::signal::ctrl_c().await.expect("the Ctrl-C handler can be installed on a tokio runtime");
        "Ctrl-C"
    }
}
