//! When the writer signs checkpoints: every N records or T seconds (timed by the runtime's clock, so
//! tests step a manual one), at each flush and at shutdown.

use std::time::Duration;

use tokio::time::Instant;

use super::chain::Chain;
use super::checkpoint::{CheckpointError, CheckpointHead, CheckpointReason, Checkpoints};
use super::event::AuditEvent;
use hardened_core::clock::{Clock, duration_nanos};

/// The checkpoint interval, set on the [`AuditorBuilder`](super::AuditorBuilder).
#[derive(Debug, Clone)]
pub(crate) struct ScheduleSettings {
    /// Records between checkpoints at most (default 1,000).
    pub(crate) events: u64,
    /// Time between checkpoints at most, while records come (default 60 s).
    pub(crate) interval: Duration,
    /// The clock that times `interval`.
    pub(crate) clock: Clock,
}

impl Default for ScheduleSettings {
    fn default() -> Self {
        ScheduleSettings { events: 1_000, interval: Duration::from_mins(1), clock: Clock::system() }
    }
}

/// The writer's checkpoint state.
#[derive(Debug)]
pub(crate) struct CheckpointSchedule {
    checkpoints: Checkpoints,
    settings: ScheduleSettings,
    /// Records sealed in the chain since the last checkpoint of its head.
    since: u64,
    /// The clock's reading at the last checkpoint.
    last_nanos: u64,
    /// When the writer wakes to look at the interval, if records wait for a checkpoint.
    wake_at: Instant,
}

impl CheckpointSchedule {
    pub(crate) fn new(checkpoints: Checkpoints, settings: ScheduleSettings) -> CheckpointSchedule {
        let last_nanos = settings.clock.now_nanos();
        let wake_at = Instant::now() + settings.interval;
        CheckpointSchedule { checkpoints, settings, since: 0, last_nanos, wake_at }
    }

    /// Counts a record sealed in the chain; whether it is the one a checkpoint is due at.
    #[inline]
    pub(crate) fn count_record(&mut self) -> bool {
        self.since += 1;
        if self.since >= self.settings.events {
            self.since = 0;
            return true;
        }
        false
    }

    /// When the writer should wake to sign the records that wait, if any wait.
    pub(crate) fn next_at(&self) -> Option<Instant> {
        (self.since > 0).then_some(self.wake_at)
    }

    /// Signs a checkpoint of `record`; a failure is logged (the checkpoint sink logs it too) and the
    /// next checkpoint tries again.
    pub(crate) fn seal_record(&mut self, record: &AuditEvent, reason: CheckpointReason) {
        let head = CheckpointHead { stream: &record.stream, sequence: record.sequence, hash: &record.hash };
        if let Err(error) = self.checkpoints.seal(&record.stream, Some(head), reason, Vec::new()) {
            tracing::error!(%error, "audit checkpoint failed; the records since the last one are not sealed yet");
        }
        self.sealed_now();
    }

    fn sealed_now(&mut self) {
        self.last_nanos = self.settings.clock.now_nanos();
        self.wake_at = Instant::now() + self.settings.interval;
    }

    /// Signs the chain's head if records wait and the interval has passed.
    pub(crate) fn seal_head_if_due(&mut self, chain: &Chain) {
        if self.since == 0 {
            return;
        }
        let elapsed = self.settings.clock.now_nanos().saturating_sub(self.last_nanos);
        let interval = duration_nanos(self.settings.interval);
        if elapsed < interval {
            // Woken by tokio's clock before the checkpoint clock says the interval has passed: wake again
            // when it should have.
            if Instant::now() >= self.wake_at {
                self.wake_at = Instant::now() + Duration::from_nanos(interval - elapsed);
            }
            return;
        }
        if let Some(head) = chain.head() {
            self.since = 0;
            let head = CheckpointHead { stream: chain.stream(), sequence: head.0, hash: head.1 };
            if let Err(error) =
                self.checkpoints.seal(chain.stream(), Some(head), CheckpointReason::Interval, Vec::new())
            {
                tracing::error!(%error, "audit checkpoint failed; the records since the last one are not sealed yet");
            }
            self.sealed_now();
        }
    }

    /// At a flush: signs the head if records wait (always at shutdown), then makes the checkpoints durable.
    pub(crate) fn seal_at_flush(&mut self, chain: &Chain, stop: bool) -> Result<(), CheckpointError> {
        if self.since > 0 || stop {
            let reason = if stop { CheckpointReason::Shutdown } else { CheckpointReason::Flush };
            let head = chain.head().map(|(sequence, hash)| CheckpointHead { stream: chain.stream(), sequence, hash });
            self.checkpoints.seal(chain.stream(), head, reason, Vec::new())?;
            self.since = 0;
            self.sealed_now();
        }
        self.checkpoints.sync()
    }
}
