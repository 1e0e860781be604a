//! Graceful shutdown: a signal starts it, readiness turns false at once, in-flight calls drain, then the
//! registered handlers write out what they hold.
//!
//! ```
//! use std::time::Duration;
//!
//! hardened::shutdown::register("close the cache", hardened::shutdown::priority::APPLICATION, Duration::from_secs(2), || async {
//!     Ok(())
//! });
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let reports = hardened::shutdown::run_handlers().await;
//! assert!(reports.iter().any(|report| report.name == "close the cache" && report.outcome.is_done()));
//! # });
//! ```

mod handlers;
mod state;

pub use self::handlers::{HandlerOutcome, HandlerReport, priority, register, run_handlers};
pub use self::state::{begin, has_begun, requested};
