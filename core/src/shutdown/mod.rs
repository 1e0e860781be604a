//! Graceful shutdown: a signal starts it, readiness turns false at once, servers stop accepting after a
//! pre-stop delay, calls in flight drain, then the registered handlers write out what they hold (the
//! audit pipeline, telemetry, the application's own), each within its own timeout, all within one
//! deadline.
//!
//! ```
//! use std::time::Duration;
//!
//! use hardened::shutdown::{self, Shutdown, ShutdownConfig};
//!
//! shutdown::register("close the cache", shutdown::priority::APPLICATION, Duration::from_secs(2), || async {
//!     Ok(())
//! });
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! // A service calls `shutdown::listen_for_signals()` at startup; SIGTERM then does what `begin` does here.
//! shutdown::begin();
//! let config = ShutdownConfig { pre_stop_delay: Duration::ZERO, ..ShutdownConfig::default() };
//! let summary = Shutdown::new(config).run().await;
//! assert!(summary.drained);
//! assert!(summary.handlers.iter().any(|report| report.name == "close the cache" && report.outcome.is_done()));
//! # });
//! ```
//!
//! With the `http` feature, `hardened::http::Server` runs an axum application under this sequence.

mod handlers;
mod in_flight;
mod sequence;
mod signals;
mod state;

pub use self::handlers::{HandlerOutcome, HandlerReport, priority, register, run_handlers};
pub use self::in_flight::wait_for_in_flight;
pub use self::sequence::{Shutdown, ShutdownConfig, ShutdownSummary};
pub use self::signals::{FORCED_EXIT_STATUS, listen_for_signals};
pub use self::state::{begin, closing, has_begun, reason, requested};
