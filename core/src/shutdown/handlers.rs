//! Work to do when the service stops: handlers registered by the parts that hold something to write out
//! (the audit pipeline, telemetry) and by the application, run in priority order, each within its own
//! timeout, so that one that hangs cannot keep the rest from running.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// Where a handler runs among the others: lower first; handlers of equal priority run in the order
/// they were registered.
pub mod priority {
    /// The application's own handlers: first, since they may still record audit events.
    pub const APPLICATION: i32 = 0;
    /// The audit pipeline's flush: after the application's handlers.
    pub const AUDIT: i32 = 1_000;
    /// The telemetry exporters' flush: last, so that it carries what the others traced.
    pub const TELEMETRY: i32 = 2_000;
}

type HandlerFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
type Handler = Box<dyn Fn() -> HandlerFuture + Send + Sync>;

struct Registered {
    name: String,
    priority: i32,
    timeout: Duration,
    handler: Handler,
}

static HANDLERS: Mutex<Vec<Registered>> = Mutex::new(Vec::new());

/// Registers a handler to run at shutdown, within `timeout`.
pub fn register<F>(
    name: impl Into<String>,
    priority: i32,
    timeout: Duration,
    handler: impl Fn() -> F + Send + Sync + 'static,
) where
    F: Future<Output = Result<(), String>> + Send + 'static,
{
    let handler: Handler = Box::new(move || Box::pin(handler()));
    let registered = Registered { name: name.into(), priority, timeout, handler };
    HANDLERS.lock().unwrap_or_else(PoisonError::into_inner).push(registered);
}

/// How one handler ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandlerOutcome {
    /// It finished.
    Done,
    /// It returned an error.
    Failed(String),
    /// It did not finish within its timeout, or the time left before the shutdown's deadline, and was
    /// abandoned.
    TimedOut,
    /// It was not started: the shutdown's deadline had passed.
    NotStarted,
}

impl HandlerOutcome {
    /// Whether the handler finished without error.
    #[must_use]
    pub fn is_done(&self) -> bool {
        matches!(self, HandlerOutcome::Done)
    }
}

/// What one handler did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerReport {
    /// The name it was registered with.
    pub name: String,
    /// How it ended.
    pub outcome: HandlerOutcome,
    /// How long it ran.
    pub took: Duration,
}

impl fmt::Display for HandlerReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            HandlerOutcome::Done => write!(f, "{}: done in {:?}", self.name, self.took),
            HandlerOutcome::Failed(error) => write!(f, "{}: failed after {:?}: {error}", self.name, self.took),
            HandlerOutcome::TimedOut => write!(f, "{}: cut at its timeout of {:?}", self.name, self.took),
            HandlerOutcome::NotStarted => write!(f, "{}: not started, the shutdown deadline had passed", self.name),
        }
    }
}

/// Runs every registered handler once, in priority order, each within its timeout, and logs and
/// returns what each did. Handlers are taken from the registry: a second call runs only those
/// registered since.
pub async fn run_handlers() -> Vec<HandlerReport> {
    run_handlers_until(None).await
}

/// [`run_handlers`], cutting each handler at `deadline` too, and starting none after it.
pub(super) async fn run_handlers_until(deadline: Option<Instant>) -> Vec<HandlerReport> {
    let mut handlers = std::mem::take(&mut *HANDLERS.lock().unwrap_or_else(PoisonError::into_inner));
    handlers.sort_by_key(|handler| handler.priority);
    let mut reports = Vec::with_capacity(handlers.len());
    for Registered { name, timeout, handler, .. } in handlers {
        let started = Instant::now();
        let left = deadline.map_or(timeout, |deadline| deadline.saturating_duration_since(started));
        let outcome = if left.is_zero() {
            HandlerOutcome::NotStarted
        } else {
            match tokio::time::timeout(timeout.min(left), handler()).await {
                Ok(Ok(())) => HandlerOutcome::Done,
                Ok(Err(error)) => HandlerOutcome::Failed(error),
                Err(_) => HandlerOutcome::TimedOut,
            }
        };
        let took = started.elapsed();
        let report = HandlerReport { name, outcome, took };
        if report.outcome.is_done() {
            tracing::info!(handler = %report.name, took = ?report.took, "shutdown handler done");
        } else {
            tracing::warn!(handler = %report.name, "{report}");
        }
        reports.push(report);
    }
    reports
}
