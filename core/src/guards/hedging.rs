//! Hedged calls: the attempts of an asynchronous call raced against each other. The first attempt
//! starts at once; while it runs longer than the hedging policy's delay, and the budget has a token,
//! another starts beside it, up to the policy's `max`. The first success is returned and the attempts
//! still running are dropped (cancelled): their permits go back uncounted, as a cancelled call's do, and
//! each hedge that did not win counts as `lost`. When every attempt of a round fails, the retry policy,
//! if the function has one, decides whether another round follows, as it does for one attempt.
//!
//! As with retries, the generated code only loops: each attempt borrows the function's arguments, so it
//! is made where they are, when [`next_hedge`] asks for one.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use crate::events;
use crate::guards::SiteGuards;
use crate::guards::guarded::{Guarded, GuardedReturn};
use crate::guards::retrying::{Retrying, retrying};
use crate::hedge::HedgePolicy;
use crate::outcome::Outcome;

/// An attempt in flight.
struct Running<A> {
    future: Pin<Box<A>>,
    /// 0 for the round's first attempt, then the hedge's number.
    hedge: u32,
    started: Instant,
}

/// A hedged call, between its steps.
///
/// ```ignore
/// let mut hedging = hedging::<R, _, _, _>(&GUARDS, is_failure, retry_when);
/// loop {
///     match next_hedge(&mut hedging).await {
///         Some(done) => break done,
///         None => hedging.start(attempt(&GUARDS, || async { body }, is_failure)),
///     }
/// }
/// ```
#[must_use = "a hedged call is made by its attempts"]
pub struct Hedging<R, P, W, A> {
    retrying: Retrying<R, P, W>,
    guards: &'static SiteGuards,
    policy: &'static HedgePolicy,
    running: Vec<Running<A>>,
    /// Whether the step asked for an attempt, which [`Hedging::start`] gives it.
    asked: bool,
    /// When the round's first attempt started, and the policy's delay then.
    round: Option<(Instant, Option<Duration>)>,
    /// Hedges started in this round.
    hedges: u32,
    /// The time the next hedge is due, while one may start.
    timer: Option<Pin<Box<Sleep>>>,
    /// The backoff before the next round.
    backoff: Option<Pin<Box<Sleep>>>,
    /// The round's last failed result, returned if no attempt succeeds.
    failed: Option<Guarded<R>>,
}

/// Opens a hedged call of the site of `guards`, adding its share to the budget hedges spend (the retry
/// policy's, or the hedging policy's own). `is_failure` and `retry_when` are as for [`retrying`].
///
/// # Panics
///
/// When the site has no hedging policy, which the macro never generates.
#[inline]
pub fn hedging<R, P, W, A>(guards: &'static SiteGuards, is_failure: P, retry_when: W) -> Hedging<R, P, W, A>
where
    R: GuardedReturn,
    P: Fn(&R) -> bool,
    W: Fn(&R) -> bool,
    A: Future<Output = Guarded<R>>,
{
    let policy = guards.hedge().expect("a hedged call site has a hedging policy");
    if guards.retry().is_none() {
        policy.deposit();
    }
    Hedging {
        retrying: retrying(guards, is_failure, retry_when),
        guards,
        policy,
        running: Vec::with_capacity(2),
        asked: true,
        round: None,
        hedges: 0,
        timer: None,
        backoff: None,
        failed: None,
    }
}

impl<R, P, W, A> Hedging<R, P, W, A>
where
    R: GuardedReturn,
    P: Fn(&R) -> bool,
    W: Fn(&R) -> bool,
    A: Future<Output = Guarded<R>>,
{
    /// Starts the attempt [`next_hedge`] asked for: the first of a round, or a hedge.
    pub fn start(&mut self, attempt: A) {
        debug_assert!(self.asked, "an attempt is started when the step asks for one");
        self.asked = false;
        let now = Instant::now();
        if self.running.is_empty() && self.round.is_none() {
            let delay = self.policy.delay();
            self.round = Some((now, delay));
            self.hedges = 0;
            self.timer = delay.map(|delay| Box::pin(tokio::time::sleep_until(now + delay)));
        }
        self.running.push(Running { future: Box::pin(attempt), hedge: self.hedges, started: now });
    }

    /// One step: `Ready(Some(done))` with the call's result, `Ready(None)` when an attempt should start.
    fn poll_step(&mut self, context: &mut Context<'_>) -> Poll<Option<Guarded<R>>> {
        if self.asked {
            return Poll::Ready(None);
        }
        if let Some(backoff) = &mut self.backoff {
            if backoff.as_mut().poll(context).is_pending() {
                return Poll::Pending;
            }
            self.backoff = None;
            self.retrying.retried();
            self.asked = true;
            return Poll::Ready(None);
        }
        let mut index = 0;
        while index < self.running.len() {
            let Poll::Ready((value, imposed)) = self.running[index].future.as_mut().poll(context) else {
                index += 1;
                continue;
            };
            let finished = self.running.swap_remove(index);
            if imposed != Some(Outcome::Rejected) {
                self.policy.observe(nanos(finished.started.elapsed()));
            }
            if imposed.is_none() && !(self.retrying.is_failure())(&value) {
                self.end_round(finished.hedge != 0);
                return Poll::Ready(Some((value, imposed)));
            }
            self.failed = Some((value, imposed));
        }
        if self.running.is_empty() {
            self.end_round(false);
            let (value, imposed) = self.failed.take().expect("a round's attempts ended, the last one failed");
            let Some(delay) = self.retrying.delay(&value, imposed) else { return Poll::Ready(Some((value, imposed))) };
            self.backoff = Some(Box::pin(tokio::time::sleep(delay)));
            return self.poll_step(context);
        }
        self.poll_timer(context)
    }

    /// Starts a hedge when its time has come and the budget has a token for it.
    fn poll_timer(&mut self, context: &mut Context<'_>) -> Poll<Option<Guarded<R>>> {
        let Some(timer) = &mut self.timer else { return Poll::Pending };
        if timer.as_mut().poll(context).is_pending() {
            return Poll::Pending;
        }
        self.timer = None;
        if !self.take_token() {
            return Poll::Pending;
        }
        self.hedges += 1;
        let (started, delay) = self.round.expect("a hedge is due in a round");
        let after = started.elapsed();
        events::hedge(self.guards.site().name(), self.policy.name(), self.hedges, after);
        if self.hedges < self.policy.max()
            && let Some(delay) = delay
        {
            let next = started + delay * (self.hedges + 1);
            self.timer = Some(Box::pin(tokio::time::sleep_until(next)));
        }
        self.asked = true;
        Poll::Ready(None)
    }

    /// A token of the budget hedges spend: the retry policy's when the function has one, otherwise the
    /// hedging policy's own.
    fn take_token(&self) -> bool {
        match self.guards.retry() {
            Some(retry) => {
                let granted = retry.withdraw();
                if !granted {
                    self.policy.count_denied();
                }
                granted
            }
            None => self.policy.withdraw(),
        }
    }

    /// Ends the round: the attempts still running are dropped, a first attempt among them observed at
    /// the time it had run (which it took at least), and its hedges counted as won or lost.
    fn end_round(&mut self, hedge_won: bool) {
        for cancelled in self.running.drain(..) {
            let ran = cancelled.started.elapsed();
            if cancelled.hedge == 0 {
                self.policy.observe(nanos(ran));
            }
            cancelled_attempt(cancelled.hedge, ran);
        }
        self.timer = None;
        self.round = None;
        if self.hedges > 0 {
            let won = u64::from(hedge_won);
            self.policy.count(self.guards.site().name(), won, u64::from(self.hedges) - won);
        }
        self.hedges = 0;
    }
}

/// Records, on the call's span, an attempt dropped because another finished first: outcome `cancelled`.
#[cold]
fn cancelled_attempt(hedge: u32, ran: Duration) {
    tracing::debug!(
        hedge,
        ran_ms = nanos(ran) / 1_000_000,
        outcome = "cancelled",
        "hedged attempt cancelled: another attempt finished first"
    );
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// The next step of `hedging`'s call: its result, or `None` when the caller should
/// [`start`](Hedging::start) an attempt. A function for the same reason as
/// [`retrying`](super::retrying::retrying): an unmet bound on the return type is one error at one token.
pub async fn next_hedge<R, P, W, A>(hedging: &mut Hedging<R, P, W, A>) -> Option<Guarded<R>>
where
    R: GuardedReturn,
    P: Fn(&R) -> bool,
    W: Fn(&R) -> bool,
    A: Future<Output = Guarded<R>>,
{
    std::future::poll_fn(|context| hedging.poll_step(context)).await
}

impl<R, P, W, A> Drop for Hedging<R, P, W, A> {
    /// A call dropped in the middle of a round (its caller gave up) drops its attempts: the hedges it
    /// started lost.
    fn drop(&mut self) {
        if self.hedges > 0 {
            self.policy.count(self.guards.site().name(), 0, u64::from(self.hedges));
        }
    }
}

impl<R, P, W, A> std::fmt::Debug for Hedging<R, P, W, A> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Hedging")
            .field("site", &self.guards.site().name())
            .field("policy", &self.policy.name())
            .field("running", &self.running.len())
            .field("hedges", &self.hedges)
            .finish_non_exhaustive()
    }
}
