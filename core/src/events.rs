//! Guard events: what the guards do, as a stream of typed events for whoever subscribes. A circuit
//! breaker that changes state, a call refused by any guard, a retry, a hedge, a limit that changes.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let mut events = hardened::events();
//! let breaker = hardened::breaker("events-doc");
//! breaker.force_open();
//! let event = events.recv().await.expect("nothing missed");
//! assert_eq!((event.guard, event.name), ("breaker", "events-doc"));
//! assert_eq!(event.kind, hardened::events::GuardEventKind::Transition { from: "closed", to: "forced_open" });
//! # });
//! ```
//!
//! The stream is bounded: a subscriber that falls more than [`CAPACITY`] events behind loses the oldest
//! and is told how many ([`Missed`]); it never slows a call down. Events are published on the paths that
//! are rare by nature (a refusal, a retry, a hedge, a transition, a retune), and only while someone subscribes: the
//! path of an admitted call has nothing to publish.

use std::time::{Duration, SystemTime};

use tokio::sync::broadcast;

use crate::rejected::Rejected;

/// How many events a subscriber may fall behind before it misses the oldest.
pub const CAPACITY: usize = 1024;

/// One thing a guard did.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct GuardEvent {
    /// When it happened.
    pub at: SystemTime,
    /// The kind of guard: `breaker`, `rate_limiter`, `concurrency`, `bulkhead`, `timeout`, `retry` or
    /// `hedge`, as the `guard` label of `hardened_rejections_total` says it.
    pub guard: &'static str,
    /// The guard's name; a timeout's and a retry's are their function's.
    pub name: &'static str,
    /// The `#[hardened]` function whose call it was, when it happened to a call (a transition or a
    /// retune happens to the guard, whichever functions share it).
    pub function: Option<&'static str>,
    /// What happened.
    pub kind: GuardEventKind,
}

/// What happened to a guard.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum GuardEventKind {
    /// A circuit breaker changed state: `closed`, `open`, `half_open`, `forced_open` or `disabled`.
    Transition {
        /// The state it left.
        from: &'static str,
        /// The state it entered.
        to: &'static str,
    },
    /// A call was refused, or abandoned at its timeout.
    Refused {
        /// What its caller received.
        rejected: Rejected,
    },
    /// A failed attempt is retried after `delay`.
    Retry {
        /// The retry's number: 1 for the second attempt.
        retry: u32,
        /// The backoff before it.
        delay: Duration,
    },
    /// A call's first attempt ran longer than `after`, and hedge number `hedge` started beside it.
    Hedge {
        /// The hedge's number: 1 for the first extra attempt.
        hedge: u32,
        /// How long the call had run when it started.
        after: Duration,
    },
    /// A limit of calls in flight changed (configuration, or an adaptive limit).
    LimitChanged {
        /// The limit before.
        from: u32,
        /// The limit now.
        to: u32,
    },
}

/// Events a subscriber missed because it fell more than [`CAPACITY`] behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} guard events were missed: the subscriber fell behind")]
pub struct Missed(pub u64);

/// A subscription to the guards' events, from the moment it was made.
#[derive(Debug)]
pub struct GuardEvents {
    receiver: broadcast::Receiver<GuardEvent>,
}

impl GuardEvents {
    /// The next event, waiting for one; `Err(Missed(n))` once after `n` events were lost to a subscriber
    /// that fell behind, then the events after them.
    pub async fn recv(&mut self) -> Result<GuardEvent, Missed> {
        loop {
            match self.receiver.recv().await {
                Ok(event) => return Ok(event),
                Err(broadcast::error::RecvError::Lagged(missed)) => return Err(Missed(missed)),
                // The sender is a static and never closes; wait on.
                Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
            }
        }
    }

    /// The next event if one is waiting, without waiting; `Ok(None)` when there is none.
    pub fn try_recv(&mut self) -> Result<Option<GuardEvent>, Missed> {
        match self.receiver.try_recv() {
            Ok(event) => Ok(Some(event)),
            Err(broadcast::error::TryRecvError::Lagged(missed)) => Err(Missed(missed)),
            Err(broadcast::error::TryRecvError::Empty | broadcast::error::TryRecvError::Closed) => Ok(None),
        }
    }
}

/// The channel, made by the first subscription: until then publishing is one load and a branch.
static CHANNEL: std::sync::OnceLock<broadcast::Sender<GuardEvent>> = std::sync::OnceLock::new();

/// Subscribes to the guards' events from now on.
#[must_use]
pub fn subscribe() -> GuardEvents {
    GuardEvents { receiver: CHANNEL.get_or_init(|| broadcast::channel(CAPACITY).0).subscribe() }
}

/// Publishes the event `make` builds, if anyone subscribes; `make` is not called otherwise.
#[cold]
fn publish(make: impl FnOnce() -> GuardEvent) {
    if let Some(sender) = CHANNEL.get()
        && sender.receiver_count() > 0
    {
        // An error means every subscriber left since the count was read: nobody to tell.
        let _ = sender.send(make());
    }
}

/// Who is told of every circuit breaker's transition as it happens, besides the subscribers: the audit
/// trail, which records them. A plain function, called on the transition's own path (rare by nature),
/// rather than a subscriber, which every refusal would make take the channel's lock.
pub type TransitionObserver = fn(name: &'static str, from: &'static str, to: &'static str);

static TRANSITION_OBSERVER: std::sync::OnceLock<TransitionObserver> = std::sync::OnceLock::new();

/// Makes `observer` the one told of every breaker transition from now on; the first one set stays.
#[doc(hidden)]
pub fn observe_transitions(observer: TransitionObserver) {
    let _ = TRANSITION_OBSERVER.set(observer);
}

/// A circuit breaker called `name` went from `from` to `to`.
#[cold]
#[inline(never)]
pub(crate) fn transition(name: &'static str, from: &'static str, to: &'static str) {
    if let Some(observer) = TRANSITION_OBSERVER.get() {
        observer(name, from, to);
    }
    publish(|| GuardEvent {
        at: SystemTime::now(),
        guard: "breaker",
        name,
        function: None,
        kind: GuardEventKind::Transition { from, to },
    });
}

/// A call (of `function`, when it has one: a tower layer's calls have none) was refused with `rejected`.
#[cold]
#[inline(never)]
pub(crate) fn refused(function: Option<&'static str>, rejected: &Rejected) {
    publish(|| GuardEvent {
        at: SystemTime::now(),
        guard: rejected.guard(),
        name: match rejected.name() {
            "" => function.unwrap_or_default(),
            name => name,
        },
        function,
        kind: GuardEventKind::Refused { rejected: rejected.clone() },
    });
}

/// A call of `function` retries for the `retry`th time after `delay`, under the retry policy `name`.
#[cold]
#[inline(never)]
pub(crate) fn retry(function: &'static str, name: &'static str, retry: u32, delay: Duration) {
    publish(|| GuardEvent {
        at: SystemTime::now(),
        guard: "retry",
        name,
        function: Some(function),
        kind: GuardEventKind::Retry { retry, delay },
    });
}

/// A call of `function` started hedge number `hedge` after `after`, under the hedging policy `name`.
#[cold]
#[inline(never)]
pub(crate) fn hedge(function: &'static str, name: &'static str, hedge: u32, after: Duration) {
    publish(|| GuardEvent {
        at: SystemTime::now(),
        guard: "hedge",
        name,
        function: Some(function),
        kind: GuardEventKind::Hedge { hedge, after },
    });
}

/// The limit of calls in flight of the `guard` called `name` changed from `from` to `to`.
#[cold]
#[inline(never)]
pub(crate) fn limit_changed(guard: &'static str, name: &'static str, from: u32, to: u32) {
    if from != to {
        publish(|| GuardEvent {
            at: SystemTime::now(),
            guard,
            name,
            function: None,
            kind: GuardEventKind::LimitChanged { from, to },
        });
    }
}
