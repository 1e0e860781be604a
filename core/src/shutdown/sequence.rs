//! The shutdown sequence, from the signal to the summary.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use tokio::time::Instant;

use super::handlers::{HandlerReport, run_handlers_until};
use super::in_flight;
use super::state;

/// How long each step of the shutdown may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownConfig {
    /// How long readiness reports not ready while servers still accept connections, so that load
    /// balancers stop routing before connections are refused. Default: 5 s.
    pub pre_stop_delay: Duration,
    /// How long calls and requests in flight may take to finish once servers stop accepting.
    /// Default: 15 s.
    pub drain_timeout: Duration,
    /// The whole shutdown, from the signal to the last handler; below Kubernetes' default grace period of
    /// 30 s. Default: 25 s.
    pub deadline: Duration,
}

impl Default for ShutdownConfig {
    fn default() -> ShutdownConfig {
        ShutdownConfig {
            pre_stop_delay: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(15),
            deadline: Duration::from_secs(25),
        }
    }
}

/// The settings the configuration installed last, if it did (pushed by the configuration, which this
/// module does not read).
static CONFIGURED: RwLock<Option<ShutdownConfig>> = RwLock::new(None);

impl ShutdownConfig {
    /// The defaults with the `[shutdown]` section (`hardened::config::ShutdownSettings`) of the configuration
    /// in force applied.
    #[must_use]
    pub fn configured() -> ShutdownConfig {
        CONFIGURED.read().unwrap_or_else(PoisonError::into_inner).unwrap_or_default()
    }

    /// Makes `config` what [`ShutdownConfig::configured`] returns: the configuration's `[shutdown]`.
    #[doc(hidden)]
    pub fn install(config: ShutdownConfig) {
        *CONFIGURED.write().unwrap_or_else(PoisonError::into_inner) = Some(config);
    }
}

type Pending = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A graceful shutdown waiting to run. [`run`](Shutdown::run) waits for the shutdown to be
/// [requested](super::requested) (by a signal after [`listen_for_signals`](super::listen_for_signals),
/// or by [`begin`](super::begin)), then:
///
/// 1. readiness already reports not ready (it turns at the request);
/// 2. waits the pre-stop delay, while servers still accept connections;
/// 3. tells servers to stop accepting ([`closing`](super::closing) resolves);
/// 4. waits, up to the drain timeout, until no `#[hardened]` call (and no request, with the `http`
///    feature's request layer) is in flight and every future given to [`drain`](Shutdown::drain) is
///    done;
/// 5. runs the [registered handlers](super::register) in priority order, each within its own timeout
///    and the time left before the deadline;
/// 6. logs and returns a [`ShutdownSummary`].
#[must_use = "a shutdown does nothing until it is run"]
pub struct Shutdown {
    config: ShutdownConfig,
    drain: Vec<Pending>,
}

impl fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shutdown").field("config", &self.config).field("drain", &self.drain.len()).finish()
    }
}

impl Shutdown {
    /// A shutdown with these timings.
    pub fn new(config: ShutdownConfig) -> Shutdown {
        Shutdown { config, drain: Vec::new() }
    }

    /// Something else the drain step waits for, such as a server finishing its connections.
    pub fn drain(mut self, until: impl Future<Output = ()> + Send + 'static) -> Shutdown {
        self.drain.push(Box::pin(until));
        self
    }

    /// Waits for the shutdown to be requested, then runs it; see [`Shutdown`].
    pub async fn run(self) -> ShutdownSummary {
        state::requested().await;
        let Shutdown { config, drain } = self;
        let started = Instant::now();
        let deadline = started + config.deadline;

        tokio::time::sleep_until((started + config.pre_stop_delay).min(deadline)).await;
        let pre_stop = started.elapsed();
        tracing::info!(pre_stop = ?pre_stop, "shutdown: no longer accepting connections; draining");
        state::close();

        let drain_started = Instant::now();
        let drain_deadline = (drain_started + config.drain_timeout).min(deadline);
        let drained = tokio::time::timeout_at(drain_deadline, drain_all(drain)).await.is_ok();
        let drain_took = drain_started.elapsed();
        let left_in_flight = in_flight::in_flight();

        let handlers = run_handlers_until(Some(deadline)).await;
        let summary = ShutdownSummary {
            reason: state::reason().unwrap_or("requested").to_owned(),
            pre_stop,
            drained,
            left_in_flight,
            drain_took,
            handlers,
            took: started.elapsed(),
            deadline: config.deadline,
        };
        if summary.is_clean() {
            tracing::info!("{summary}");
        } else {
            tracing::warn!("{summary}");
        }
        summary
    }
}

/// How often the drain looks at the in-flight counts: they are sums over shards, not signalled.
const DRAIN_POLL: Duration = Duration::from_millis(10);

async fn drain_all(drain: Vec<Pending>) {
    for pending in drain {
        pending.await;
    }
    while in_flight::in_flight() > 0 {
        tokio::time::sleep(DRAIN_POLL).await;
    }
}

/// What a shutdown did, logged when it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownSummary {
    /// What began it, such as `SIGTERM`.
    pub reason: String,
    /// The time between the request and servers closing.
    pub pre_stop: Duration,
    /// Whether everything in flight finished within the drain timeout.
    pub drained: bool,
    /// Calls and requests still in flight when the drain ended.
    pub left_in_flight: u64,
    /// How long the drain took.
    pub drain_took: Duration,
    /// What each handler did, in the order they ran.
    pub handlers: Vec<HandlerReport>,
    /// The whole shutdown, from the request to the last handler.
    pub took: Duration,
    /// The deadline it ran under.
    pub deadline: Duration,
}

impl ShutdownSummary {
    /// Whether everything drained, every handler finished and the deadline held.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.drained && self.handlers.iter().all(|handler| handler.outcome.is_done()) && self.took <= self.deadline
    }
}

impl fmt::Display for ShutdownSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shutdown ({}) took {:?} of its {:?} deadline; ", self.reason, self.took, self.deadline)?;
        if self.drained {
            write!(f, "drained in {:?}", self.drain_took)?;
        } else {
            write!(f, "drain cut after {:?} with {} still in flight", self.drain_took, self.left_in_flight)?;
        }
        for handler in &self.handlers {
            write!(f, "; {handler}")?;
        }
        Ok(())
    }
}
