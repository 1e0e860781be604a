//! The pipeline between [`Auditor::emit`] and the sinks.
//!
//! `emit` puts the event on a bounded queue and returns: no I/O, no lock. A writer thread, with a
//! runtime of its own, takes events in batches (by size, or after an interval; it sleeps while it gathers
//! one, woken by the event that makes a batch's worth queued or by a flush), places them in the
//! pipeline's hash chain and hands each batch to every sink. When the queue is full, `emit` appends the
//! event to the overflow spill file instead, which the writer takes up when it can. When a sink fails,
//! the writer retries with backoff, then keeps that sink's batches, in order, in the sink's spill file
//! and replays them when it recovers; sinks are idempotent, so a batch written twice is stored once.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::Instant;

use super::call::CallEvent;
use super::chain::{Chain, RecordRoom, SealedEvent};
use super::checkpoint::{CheckpointFile, CheckpointReason, CheckpointSink, Checkpoints, TracingCheckpoints};
use super::event::AuditEvent;
use super::files::{self, Line};
use super::keys::AuditSigningKey;
use super::metrics::{QueueDepth, metrics};
use super::schedule::{CheckpointSchedule, ScheduleSettings};
use super::sink::Sink;
use super::spill_auth::SpillAuth;
use hardened_core::clock::Clock;
use hardened_core::retry::RetryConfig;

/// Why the pipeline could not start or could not finish a flush.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The pipeline could not start.
    #[error("the audit pipeline could not start: {0}")]
    Start(String),
    /// The writer has stopped; events emitted since then wait in the overflow spill file for the next
    /// pipeline started on the same spill directory.
    #[error("the audit writer has stopped")]
    Stopped,
    /// Sinks are down: their events are safe in local spill files and will be written when they recover.
    #[error("audit sinks are down, their events kept in spill files until they recover: {}", pending_list(.0))]
    Pending(Vec<PendingSink>),
    /// A sink could not make its writes durable.
    #[error("audit sink {sink} could not make its writes durable: {message}")]
    Flush {
        /// The sink.
        sink: String,
        /// What it said.
        message: String,
    },
}

/// A sink whose events wait in its spill file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSink {
    /// The sink's name.
    pub sink: String,
    /// Events waiting.
    pub events: u64,
}

fn pending_list(pending: &[PendingSink]) -> String {
    let items: Vec<String> = pending.iter().map(|sink| format!("{} ({} events)", sink.sink, sink.events)).collect();
    items.join(", ")
}

/// Settings of a pipeline, with [`Auditor::builder`].
#[derive(Debug, Clone)]
struct Settings {
    queue_capacity: usize,
    batch_size: usize,
    batch_interval: Duration,
    /// Attempts at a batch (`attempts`, counting the first) and the backoff between them, with jitter.
    retry: RetryConfig,
}

impl Settings {
    /// The wait before retry number `failures` (from 1).
    fn backoff(&self, failures: u32) -> Duration {
        self.retry.backoff_delay(failures.saturating_sub(1))
    }
}

/// Builds an [`Auditor`].
#[must_use]
pub struct AuditorBuilder {
    sinks: Vec<Box<dyn Sink>>,
    stream: Option<String>,
    spill_dir: PathBuf,
    settings: Settings,
    signing_key: Option<AuditSigningKey>,
    checkpoint_file: Option<PathBuf>,
    checkpoints_to_tracing: bool,
    schedule: ScheduleSettings,
}

impl std::fmt::Debug for AuditorBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sinks: Vec<&str> = self.sinks.iter().map(|sink| sink.name()).collect();
        f.debug_struct("AuditorBuilder")
            .field("sinks", &sinks)
            .field("stream", &self.stream)
            .field("spill_dir", &self.spill_dir)
            .field("settings", &self.settings)
            .field("signing_key", &self.signing_key)
            .field("checkpoint_file", &self.checkpoint_file)
            .field("checkpoints_to_tracing", &self.checkpoints_to_tracing)
            .field("schedule", &self.schedule)
            .finish()
    }
}

impl AuditorBuilder {
    /// Adds a sink; every event goes to every sink.
    pub fn sink(mut self, sink: impl Sink) -> AuditorBuilder {
        self.sinks.push(Box::new(sink));
        self
    }

    /// Names the pipeline's hash chain (default: the service name, `/`, and a `UUIDv7` made at start).
    /// A stream must have one writer: give each process its own.
    pub fn stream(mut self, stream: impl Into<String>) -> AuditorBuilder {
        self.stream = Some(stream.into());
        self
    }

    /// Where spill files go (default: `audit/spill`). One pipeline per directory: a second one on the
    /// same directory fails to start.
    pub fn spill_dir(mut self, spill_dir: impl Into<PathBuf>) -> AuditorBuilder {
        self.spill_dir = spill_dir.into();
        self
    }

    /// Events the queue holds before `emit` spills to disk (default 16,384).
    pub fn queue_capacity(mut self, capacity: usize) -> AuditorBuilder {
        self.settings.queue_capacity = capacity.max(1);
        self
    }

    /// Events written in one batch at most (default 1,000).
    pub fn batch_size(mut self, batch_size: usize) -> AuditorBuilder {
        self.settings.batch_size = batch_size.max(1);
        self
    }

    /// How long the writer waits for a batch to fill before writing what it has (default 100 ms).
    pub fn batch_interval(mut self, interval: Duration) -> AuditorBuilder {
        self.settings.batch_interval = interval;
        self
    }

    /// Attempts at writing a batch before it goes to the sink's spill file (default 3), and the backoff
    /// between attempts, doubling from `initial` up to `max` (defaults 100 ms and 30 s), which also
    /// paces the replays of a sink that is down.
    pub fn retries(mut self, attempts: u32, initial: Duration, max: Duration) -> AuditorBuilder {
        let retry = &mut self.settings.retry;
        retry.attempts = attempts.max(1);
        retry.backoff = initial;
        retry.max_backoff = max.max(initial);
        self
    }

    /// Signs checkpoints with `key` (see [`Checkpoint`](super::Checkpoint)): every N events or T
    /// seconds ([`checkpoint_every`](AuditorBuilder::checkpoint_every)), at rotation and retention, at
    /// each flush and at shutdown. The key also authenticates the overflow spill file. Keep it where the
    /// log's storage is not. Without a key, the chain proves the log consistent but not authentic:
    /// whoever can write the log can rewrite it whole.
    pub fn signing_key(mut self, key: AuditSigningKey) -> AuditorBuilder {
        self.signing_key = Some(key);
        self
    }

    /// Checkpoints go to this file (default: the first sink's default: `<log>.checkpoints` for the JSONL
    /// sink, the table `audit_checkpoint` for the `PostgreSQL` sink; a pipeline with a signing key and no
    /// sink that has one needs this).
    pub fn checkpoint_file(mut self, path: impl Into<PathBuf>) -> AuditorBuilder {
        self.checkpoint_file = Some(path.into());
        self
    }

    /// A checkpoint every `events` records or `interval`, whichever comes first (defaults 1,000 and
    /// 60 s): at most that many of the latest records can be cut without a verifier noticing.
    pub fn checkpoint_every(mut self, events: u64, interval: Duration) -> AuditorBuilder {
        self.schedule.events = events.max(1);
        self.schedule.interval = interval;
        self
    }

    /// Also logs every checkpoint through `tracing` (target `hardened::audit::checkpoint`), so that a
    /// copy leaves the host with the logs (default: off).
    pub fn checkpoints_to_tracing(mut self, enabled: bool) -> AuditorBuilder {
        self.checkpoints_to_tracing = enabled;
        self
    }

    /// The clock that times checkpoint intervals (default: the system's); tests step a manual one.
    pub fn clock(mut self, clock: Clock) -> AuditorBuilder {
        self.schedule.clock = clock;
        self
    }

    /// Starts the writer thread.
    ///
    /// Spill files left by an earlier pipeline on the same directory (events emitted while its queue
    /// was full, batches for a sink that was down) are written out first.
    pub fn start(self) -> Result<Auditor, AuditError> {
        let AuditorBuilder {
            mut sinks,
            stream,
            spill_dir,
            settings,
            signing_key,
            checkpoint_file,
            checkpoints_to_tracing,
            schedule,
        } = self;
        let start_error = |what: &str, error: &dyn std::fmt::Display| AuditError::Start(format!("{what}: {error}"));
        if sinks.is_empty() {
            return Err(AuditError::Start("no sink: add one with AuditorBuilder::sink".to_owned()));
        }
        let mut labels: Vec<String> = sinks.iter().map(|sink| sink.name().to_owned()).collect();
        labels.sort();
        if let Some([name, _]) = labels.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(AuditError::Start(format!("two sinks are named {name}; give one another name")));
        }
        files::create_private_dir_all(&spill_dir)
            .map_err(|error| start_error(&spill_dir.display().to_string(), &error))?;
        let lock = lock_spill_dir(&spill_dir)?;
        let leftovers =
            leftover_overflow(&spill_dir).map_err(|error| start_error("reading the spill directory", &error))?;
        let stream = stream.unwrap_or_else(|| format!("{}/{}", super::service_name(), uuid::Uuid::now_v7()));
        let checkpoints = match signing_key {
            None => None,
            Some(key) => {
                let first = match checkpoint_file {
                    Some(path) => Some(Box::new(CheckpointFile::new(path)) as Box<dyn CheckpointSink>),
                    None => sinks.iter().find_map(|sink| sink.default_checkpoint_sink(&stream)),
                };
                let Some(first) = first else {
                    return Err(AuditError::Start(
                        "a signing key needs a checkpoint file: none of the sinks has a default one; set it with \
                         AuditorBuilder::checkpoint_file"
                            .to_owned(),
                    ));
                };
                let mut checkpoint_sinks: Vec<Box<dyn CheckpointSink>> = vec![first];
                if checkpoints_to_tracing {
                    checkpoint_sinks.push(Box::new(TracingCheckpoints));
                }
                let checkpoints = Checkpoints::open(key, checkpoint_sinks)
                    .map_err(|error| start_error("the checkpoint sink", &error))?;
                checkpoints
                    .seal(&stream, None, CheckpointReason::Start, Vec::new())
                    .and_then(|_| checkpoints.sync())
                    .map_err(|error| start_error("the first checkpoint", &error))?;
                for sink in &mut sinks {
                    sink.use_checkpoints(checkpoints.clone());
                }
                Some(checkpoints)
            }
        };
        let auth = checkpoints.as_ref().map(|checkpoints| SpillAuth::new(checkpoints.spill_key()));
        let (sender, receiver) = mpsc::channel(settings.queue_capacity);
        let overflow = Arc::new(OverflowSpill::new(&spill_dir, auth));
        let slots: Vec<Slot> = sinks.into_iter().map(|sink| Slot::new(sink, &spill_dir)).collect();
        let pending = slots.iter().map(|slot| (slot.label.clone(), Arc::clone(&slot.pending))).collect();
        let wake = Arc::new(Notify::new());
        let wake_at_depth = settings.batch_size.min(settings.queue_capacity / 2).max(1);
        let shared = Arc::new(Shared {
            sender,
            wake: Arc::clone(&wake),
            wake_at_depth,
            overflow: Arc::clone(&overflow),
            stream: stream.clone(),
            pending,
        });
        metrics().add_queue(Arc::downgrade(&(Arc::clone(&shared) as Arc<dyn QueueDepth>)));
        let writer = Writer {
            receiver,
            wake,
            overflow,
            chain: Chain::new(stream),
            sealed: Vec::new(),
            spare_rooms: SpareRooms::default(),
            slots,
            settings,
            leftovers,
            lock: Some(lock),
            schedule: checkpoints.map(|checkpoints| CheckpointSchedule::new(checkpoints, schedule)),
            due: Vec::new(),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("hardened-audit")
            .build()
            .map_err(|error| start_error("the writer's runtime", &error))?;
        std::thread::Builder::new()
            .name("hardened-audit".to_owned())
            .spawn(move || runtime.block_on(writer.run()))
            .map_err(|error| start_error("the writer thread", &error))?;
        Ok(Auditor { shared })
    }
}

/// A running pipeline: a cheap handle, cloned freely. When the last handle is dropped, the writer
/// writes out what it holds and stops.
#[derive(Debug, Clone)]
pub struct Auditor {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    sender: mpsc::Sender<Message>,
    /// Wakes the writer while it gathers a batch: when the queue holds a batch's worth, or a flush waits.
    wake: Arc<Notify>,
    /// The queue's depth at which an event wakes the writer: a batch's worth, at most half the queue.
    wake_at_depth: usize,
    overflow: Arc<OverflowSpill>,
    stream: String,
    /// Each sink's events waiting in its spill file, as the writer last left them.
    pending: Vec<(String, Arc<AtomicU64>)>,
}

impl QueueDepth for Shared {
    fn depth(&self) -> usize {
        self.sender.max_capacity() - self.sender.capacity()
    }
}

#[derive(Debug)]
#[allow(clippy::large_enum_variant, reason = "events are the traffic; boxing each would cost an allocation")]
enum Message {
    Event(AuditEvent),
    /// A call's event, completed by the writer.
    Call(CallEvent),
    Flush(oneshot::Sender<Result<(), AuditError>>),
    Shutdown(oneshot::Sender<Result<(), AuditError>>),
}

impl Message {
    /// The event this message carries, completed, if it carries one.
    fn into_event(self) -> Option<AuditEvent> {
        match self {
            Message::Event(event) => Some(event),
            Message::Call(call) => Some(call.into_event()),
            Message::Flush(_) | Message::Shutdown(_) => None,
        }
    }
}

impl Auditor {
    /// A builder with the defaults.
    pub fn builder() -> AuditorBuilder {
        AuditorBuilder {
            sinks: Vec::new(),
            stream: None,
            spill_dir: PathBuf::from("audit/spill"),
            settings: Settings {
                queue_capacity: 16_384,
                batch_size: 1_000,
                batch_interval: Duration::from_millis(100),
                retry: {
                    let mut retry = RetryConfig::attempts(3);
                    retry.max_backoff = Duration::from_secs(30);
                    retry.jitter = true;
                    retry
                },
            },
            signing_key: None,
            checkpoint_file: None,
            checkpoints_to_tracing: false,
            schedule: ScheduleSettings::default(),
        }
    }

    /// Queues `event` for writing. Never blocks and never drops it: when the queue is full, or the
    /// writer has stopped, the event goes to the overflow spill file.
    pub fn emit(&self, event: AuditEvent) {
        self.queue(Message::Event(event));
    }

    /// Queues a call's event, which the writer completes; as [`Auditor::emit`] otherwise.
    pub(crate) fn emit_call(&self, event: CallEvent) {
        self.queue(Message::Call(event));
    }

    fn queue(&self, message: Message) {
        let shared = &*self.shared;
        match shared.sender.try_send(message) {
            Ok(()) => {
                if shared.depth() >= shared.wake_at_depth {
                    shared.wake.notify_one();
                }
            }
            Err(mpsc::error::TrySendError::Full(message) | mpsc::error::TrySendError::Closed(message)) => {
                let Some(event) = message.into_event() else { unreachable!("only events are sent without waiting") };
                shared.overflow.spill(event);
            }
        }
    }

    /// Writes out every event emitted before this call, to every sink, and makes it durable (the JSONL
    /// sink fsyncs). A sink that is down gets one more attempt; if it fails, its events stay in its
    /// spill file and the error says so.
    pub async fn flush(&self) -> Result<(), AuditError> {
        self.request(Message::Flush).await
    }

    /// Flushes, then stops the writer. Events emitted afterwards go to the overflow spill file, for the
    /// next pipeline started on the same spill directory.
    pub async fn shutdown(&self) -> Result<(), AuditError> {
        self.request(Message::Shutdown).await
    }

    async fn request(
        &self,
        message: impl FnOnce(oneshot::Sender<Result<(), AuditError>>) -> Message,
    ) -> Result<(), AuditError> {
        let (reply, result) = oneshot::channel();
        self.shared.sender.send(message(reply)).await.map_err(|_| AuditError::Stopped)?;
        // Answered when the writer next looks at the queue: now, rather than at the end of its batch.
        self.shared.wake.notify_one();
        result.await.unwrap_or(Err(AuditError::Stopped))
    }

    /// The name of the pipeline's hash chain.
    #[must_use]
    pub fn stream(&self) -> &str {
        &self.shared.stream
    }

    /// What the pipeline holds back right now: what its health check reads.
    #[must_use]
    pub fn status(&self) -> AuditorStatus {
        let shared = &self.shared;
        let sinks_down = shared
            .pending
            .iter()
            .map(|(sink, events)| PendingSink { sink: sink.clone(), events: events.load(Ordering::Relaxed) })
            .filter(|pending| pending.events > 0)
            .collect();
        AuditorStatus {
            queued: shared.depth() as u64,
            overflow: shared.overflow.waiting.load(Ordering::Relaxed),
            sinks_down,
            stopped: shared.sender.is_closed(),
        }
    }
}

/// What a pipeline holds back at one moment, from [`Auditor::status`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditorStatus {
    /// Events in the queue, not yet taken by the writer.
    pub queued: u64,
    /// Events `emit` wrote to the overflow spill file because the queue was full, not yet taken by the writer.
    pub overflow: u64,
    /// Sinks that are down, with the events waiting in their spill files.
    pub sinks_down: Vec<PendingSink>,
    /// Whether the writer has stopped: events emitted now wait in the overflow spill file for the next
    /// pipeline on the same spill directory.
    pub stopped: bool,
}

/// Takes the spill directory for this pipeline alone, for as long as the writer runs.
fn lock_spill_dir(spill_dir: &Path) -> Result<File, AuditError> {
    let path = spill_dir.join(".lock");
    let file = files::private_options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|error| AuditError::Start(format!("{}: {error}", path.display())))?;
    file.try_lock().map_err(|_| {
        AuditError::Start(format!(
            "the spill directory {} is in use by another audit pipeline; give each its own",
            spill_dir.display()
        ))
    })?;
    Ok(file)
}

const OVERFLOW_FILE: &str = "overflow.jsonl";
const REPLAY_SUFFIX: &str = ".replay";
const BACKLOG_SUFFIX: &str = ".backlog.jsonl";
/// Where overflow lines that fail their check are kept, in the spill directory.
const QUARANTINE_FILE: &str = "quarantine.jsonl";

/// Overflow files an earlier pipeline left, oldest first, renamed out of the way of this one's.
fn leftover_overflow(spill_dir: &Path) -> io::Result<Vec<PathBuf>> {
    let current = spill_dir.join(OVERFLOW_FILE);
    if current.exists() {
        fs::rename(&current, spill_dir.join(format!("overflow-{}{REPLAY_SUFFIX}", uuid::Uuid::now_v7())))?;
    }
    let mut files: Vec<PathBuf> = fs::read_dir(spill_dir)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.to_string_lossy().ends_with(REPLAY_SUFFIX))
        .collect();
    files.sort();
    Ok(files)
}

/// Events `emit` could not queue: appended to a file, taken up by the writer.
#[derive(Debug)]
struct OverflowSpill {
    path: PathBuf,
    spill_dir: PathBuf,
    /// Authenticates each line, when the pipeline has a signing key.
    auth: Option<SpillAuth>,
    state: Mutex<OverflowState>,
    /// Events spilled and not yet taken by the writer.
    waiting: AtomicU64,
}

#[derive(Debug, Default)]
struct OverflowState {
    file: Option<BufWriter<File>>,
    /// Events that could not be written to the file either, kept until the writer takes them.
    memory: Vec<AuditEvent>,
}

impl OverflowSpill {
    fn new(spill_dir: &Path, auth: Option<SpillAuth>) -> OverflowSpill {
        OverflowSpill {
            path: spill_dir.join(OVERFLOW_FILE),
            spill_dir: spill_dir.to_owned(),
            auth,
            state: Mutex::new(OverflowState::default()),
            waiting: AtomicU64::new(0),
        }
    }

    fn spill(&self, event: AuditEvent) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let written = if state.memory.is_empty() { self.append(&mut state, &event) } else { Ok(()) };
        if let Err(error) = written {
            tracing::error!(%error, path = %self.path.display(), "audit overflow spill file not writable; keeping the event in memory");
            state.memory.push(event);
        } else if !state.memory.is_empty() {
            state.memory.push(event);
        }
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let metrics = metrics();
        metrics.events.with_label_values(&["queue", "spilled"]).inc();
        metrics.spilled.with_label_values(&["queue"]).inc();
    }

    fn append(&self, state: &mut OverflowState, event: &AuditEvent) -> io::Result<()> {
        if state.file.is_none() {
            let file = files::open_append_private(&self.path)?;
            state.file = Some(BufWriter::new(file));
        }
        let file = state.file.as_mut().expect("opened above");
        match &self.auth {
            // The line is `<tag> <json>`: the tag authenticates the JSON, which is not chained yet.
            Some(auth) => {
                let json = serde_json::to_vec(event)?;
                file.write_all(auth.tag(&json).as_bytes())?;
                file.write_all(b" ")?;
                file.write_all(&json)?;
            }
            None => serde_json::to_writer(&mut *file, event)?,
        }
        file.write_all(b"\n")?;
        // Into the kernel now, so a crash of the process (not of the machine) keeps it.
        file.flush()
    }

    /// An event read back from an overflow file: its tag checked when the pipeline has a key.
    fn read_back(&self, line: &[u8]) -> Result<AuditEvent, String> {
        let json = match &self.auth {
            Some(auth) => auth.check(line)?,
            // Without a key nothing can be checked: a tagged line of a keyed pipeline is read as it is.
            None => SpillAuth::strip(line),
        };
        serde_json::from_slice(json).map_err(|error| format!("not an audit event: {error}"))
    }

    /// Keeps a line that is not taken as an event in `quarantine.jsonl`, with an error log and a count
    /// (`hardened_audit_events_total{sink="queue",result="rejected"}`): refused, never silently dropped.
    fn quarantine(&self, file: &Path, line_number: u64, line: &[u8], reason: &str) {
        let quarantine = self.spill_dir.join(QUARANTINE_FILE);
        let kept = files::open_append_private(&quarantine).and_then(|mut out| {
            out.write_all(line.trim_ascii_end())?;
            out.write_all(b"\n")?;
            out.sync_data()
        });
        let kept = match kept {
            Ok(()) => quarantine.display().to_string(),
            Err(error) => format!("nowhere ({error})"),
        };
        tracing::error!(
            file = %file.display(),
            line = line_number,
            %reason,
            quarantined_in = %kept,
            "a line of an audit overflow file was refused: it is not written as a record"
        );
        metrics().events.with_label_values(&["queue", "rejected"]).inc();
    }

    /// Takes what was spilled: how many events, the file (renamed, for the writer to read) and the
    /// events in memory.
    fn take(&self) -> (u64, Option<PathBuf>, Vec<AuditEvent>) {
        if self.waiting.load(Ordering::Relaxed) == 0 {
            return (0, None, Vec::new());
        }
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let count = self.waiting.swap(0, Ordering::Relaxed);
        let file = state.file.take().and_then(|mut file| {
            let _ = file.flush();
            let taken = self.spill_dir.join(format!("overflow-{}{REPLAY_SUFFIX}", uuid::Uuid::now_v7()));
            fs::rename(&self.path, &taken).ok().map(|()| taken)
        });
        (count, file, std::mem::take(&mut state.memory))
    }
}

/// One sink and, while it is down, its backlog.
struct Slot {
    sink: Box<dyn Sink>,
    label: String,
    backlog: Backlog,
    /// `backlog.events`, published for [`Auditor::status`].
    pending: Arc<AtomicU64>,
}

/// Batches a sink has not taken yet, in order: in its spill file, then (if the file could not be
/// written) in memory.
struct Backlog {
    path: PathBuf,
    /// Lines of the file already written to the sink.
    delivered: u64,
    /// Events waiting, in the file and in memory.
    events: u64,
    memory: Vec<SealedEvent>,
    failures: u32,
    retry_at: Option<Instant>,
}

impl Slot {
    fn new(sink: Box<dyn Sink>, spill_dir: &Path) -> Slot {
        let label = sink.name().to_owned();
        let file_name: String =
            label.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
        let path = spill_dir.join(format!("{file_name}{BACKLOG_SUFFIX}"));
        // Batches an earlier pipeline could not write to this sink come first.
        let events = File::open(&path).map_or(0, |file| count_lines(BufReader::new(file)));
        let retry_at = (events > 0).then(Instant::now);
        metrics().add_sink(&label);
        if events > 0 {
            metrics().spilled.with_label_values(&[&label]).add(i64::try_from(events).unwrap_or(i64::MAX));
        }
        let backlog = Backlog { path, delivered: 0, events, memory: Vec::new(), failures: 0, retry_at };
        Slot { sink, label, backlog, pending: Arc::new(AtomicU64::new(events)) }
    }

    fn is_down(&self) -> bool {
        self.backlog.events > 0
    }

    async fn deliver(&mut self, events: &[SealedEvent], settings: &Settings) {
        if events.is_empty() {
            return;
        }
        if self.is_down() {
            self.spill(events, settings);
            return;
        }
        for attempt in 0..settings.retry.attempts {
            if attempt > 0 {
                tokio::time::sleep(settings.backoff(attempt)).await;
            }
            if self.write(events, "written").await {
                return;
            }
        }
        self.spill(events, settings);
    }

    /// One write; counts it.
    async fn write(&mut self, events: &[SealedEvent], result: &str) -> bool {
        let started = std::time::Instant::now();
        let written = self.sink.write(events).await;
        let metrics = metrics();
        let count = events.len() as u64;
        match written {
            Ok(()) => {
                metrics.batch_duration.with_label_values(&[&self.label]).observe(started.elapsed().as_secs_f64());
                metrics.events.with_label_values(&[&self.label, result]).inc_by(count);
                true
            }
            Err(error) => {
                metrics.events.with_label_values(&[&self.label, "failed"]).inc_by(count);
                tracing::warn!(sink = %self.label, %error, events = count, "audit write failed");
                false
            }
        }
    }

    fn spill(&mut self, events: &[SealedEvent], settings: &Settings) {
        let backlog = &mut self.backlog;
        if backlog.events == 0 {
            backlog.failures = 1;
            backlog.retry_at = Some(Instant::now() + settings.backoff(1));
            tracing::warn!(sink = %self.label, spill = %backlog.path.display(), "audit sink down; keeping its events in a spill file until it recovers");
        }
        let appended = if backlog.memory.is_empty() { append_lines(&backlog.path, events) } else { Ok(()) };
        match appended {
            Ok(()) if backlog.memory.is_empty() => {}
            Ok(()) => backlog.memory.extend_from_slice(events),
            Err(error) => {
                tracing::error!(sink = %self.label, %error, "audit spill file not writable; keeping the events in memory");
                backlog.memory.extend_from_slice(events);
            }
        }
        let count = events.len() as u64;
        backlog.events += count;
        self.pending.store(backlog.events, Ordering::Relaxed);
        let metrics = metrics();
        metrics.events.with_label_values(&[&self.label, "spilled"]).inc_by(count);
        metrics.spilled.with_label_values(&[&self.label]).add(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// Writes the backlog to the sink, in order. Returns whether it is empty now.
    async fn replay(&mut self, settings: &Settings) -> bool {
        while self.is_down() {
            let chunk = match self.backlog.next_chunk(settings.batch_size) {
                Ok(chunk) => chunk,
                Err(error) => {
                    tracing::error!(sink = %self.label, %error, "audit spill file unreadable; will try again");
                    Vec::new()
                }
            };
            if chunk.is_empty() || !self.write(&chunk, "replayed").await {
                let backlog = &mut self.backlog;
                backlog.failures += 1;
                backlog.retry_at = Some(Instant::now() + settings.backoff(backlog.failures));
                return false;
            }
            self.backlog.delivered(chunk.len() as u64);
            self.pending.store(self.backlog.events, Ordering::Relaxed);
            metrics().spilled.with_label_values(&[&self.label]).sub(i64::try_from(chunk.len()).unwrap_or(i64::MAX));
        }
        tracing::info!(sink = %self.label, "audit sink recovered; its spilled events are written");
        true
    }
}

impl Backlog {
    /// The next events to replay: from the file after the lines delivered, then from memory.
    fn next_chunk(&self, size: usize) -> io::Result<Vec<SealedEvent>> {
        let in_file = self.events - self.memory.len() as u64;
        if self.delivered < in_file {
            let mut file = BufReader::new(File::open(&self.path)?);
            let mut buffer = Vec::new();
            let mut chunk = Vec::with_capacity(size);
            let mut line_number = 0;
            while chunk.len() < size {
                let line = files::read_line(&mut file, &mut buffer, files::MAX_LINE_BYTES)?;
                line_number += 1;
                if line == Line::End {
                    break;
                }
                if line_number <= self.delivered {
                    continue;
                }
                let Line::Read { .. } = line else {
                    return Err(io::Error::other(format!("line {line_number} is longer than any record")));
                };
                let text = String::from_utf8(buffer.trim_ascii_end().to_vec()).map_err(io::Error::other)?;
                let event = serde_json::from_str(&text).map_err(io::Error::other)?;
                chunk.push(SealedEvent::from_parts(event, text));
            }
            return Ok(chunk);
        }
        let from = usize::try_from(self.delivered - in_file).unwrap_or(usize::MAX);
        Ok(self.memory.iter().skip(from).take(size).cloned().collect())
    }

    fn delivered(&mut self, count: u64) {
        self.delivered += count;
        if self.delivered >= self.events {
            if let Err(error) = fs::remove_file(&self.path)
                && error.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!(%error, path = %self.path.display(), "could not remove a replayed audit spill file");
            }
            *self = Backlog {
                path: std::mem::take(&mut self.path),
                delivered: 0,
                events: 0,
                memory: Vec::new(),
                failures: 0,
                retry_at: None,
            };
        }
    }
}

/// The lines of a file, each read with the bound on its length.
fn count_lines(mut reader: impl BufRead) -> u64 {
    let mut buffer = Vec::new();
    let mut count = 0;
    while let Ok(Line::Read { .. } | Line::TooLong(_)) =
        files::read_line(&mut reader, &mut buffer, files::MAX_LINE_BYTES)
    {
        count += 1;
    }
    count
}

/// Appends sealed events to a spill file and makes them durable.
fn append_lines(path: &Path, events: &[SealedEvent]) -> io::Result<()> {
    let mut file = BufWriter::new(files::open_append_private(path)?);
    for event in events {
        file.write_all(event.json().as_bytes())?;
        file.write_all(b"\n")?;
    }
    file.into_inner().map_err(io::IntoInnerError::into_error)?.sync_data()
}

/// The rooms of delivered records (their JSON lines, streams and hashes), kept for the records of the
/// next batches.
///
/// A record's JSON line is about a kilobyte: allocated for each record and freed with its batch, lines
/// empty whole pages of the allocator on every batch, which it hands back to the system and then faults
/// in again (at 1,000 messages a second, a fifth of a page fault a message, all on this thread); its
/// stream and two hashes would be three more allocations a record. Kept, the writer allocates nothing for
/// a record in a steady stream. At most [`SpareRooms::MAX_ROOMS`] rooms whose line has room for at most
/// [`SpareRooms::MAX_BYTES`] each are kept: an unusually large record's room is freed.
#[derive(Debug, Default)]
struct SpareRooms {
    rooms: Vec<RecordRoom>,
}

impl SpareRooms {
    /// The most rooms kept: more than a batch holds at 10,000 events a second.
    const MAX_ROOMS: usize = 1024;
    /// The most bytes a kept room's line holds room for.
    const MAX_BYTES: usize = 4096;

    /// Room for the next record: a kept one, or a new one.
    fn take(&mut self) -> RecordRoom {
        self.rooms.pop().unwrap_or_default()
    }

    /// Keeps the rooms of `delivered`, within the bounds.
    fn keep(&mut self, delivered: impl Iterator<Item = SealedEvent>) {
        for record in delivered {
            let room = record.into_room();
            if self.rooms.len() < Self::MAX_ROOMS && room.line_capacity() <= Self::MAX_BYTES {
                self.rooms.push(room);
            }
        }
    }
}

/// The writer: owns the chain and the sinks.
struct Writer {
    receiver: mpsc::Receiver<Message>,
    /// What senders wake the writer with while it gathers (see [`Shared::wake`]).
    wake: Arc<Notify>,
    overflow: Arc<OverflowSpill>,
    chain: Chain,
    /// The sealed events of the batch being delivered; empty between batches, its room kept.
    sealed: Vec<SealedEvent>,
    /// The rooms of delivered records, for the next batch's records (see [`SpareRooms`]).
    spare_rooms: SpareRooms,
    slots: Vec<Slot>,
    settings: Settings,
    /// Overflow files of an earlier pipeline, to write first.
    leftovers: Vec<PathBuf>,
    /// The spill directory's lock, held until the writer stops.
    lock: Option<File>,
    /// When to sign checkpoints, when the pipeline has a signing key.
    schedule: Option<CheckpointSchedule>,
    /// Positions in `sealed` of records whose checkpoint is due once the batch is delivered.
    due: Vec<usize>,
}

impl Writer {
    async fn run(mut self) {
        let leftovers = std::mem::take(&mut self.leftovers);
        for file in leftovers {
            self.write_overflow_file(&file).await;
        }
        let mut replies = Vec::new();
        // Kept from batch to batch: a batch's worth of events is large enough that the allocator would
        // hand fresh pages back and forth on every batch.
        let mut batch = Vec::with_capacity(self.settings.batch_size.min(4096));
        loop {
            let mut stop = false;
            let wake_at = match (self.next_retry(), self.schedule.as_ref().and_then(CheckpointSchedule::next_at)) {
                (Some(retry), Some(checkpoint)) => Some(retry.min(checkpoint)),
                (retry, checkpoint) => retry.or(checkpoint),
            };
            let first = match wake_at {
                Some(at) => tokio::select! {
                    message = self.receiver.recv() => Some(message),
                    () = tokio::time::sleep_until(at) => None,
                },
                None => Some(self.receiver.recv().await),
            };
            match first {
                None => {
                    self.replay_due(false).await;
                    self.checkpoint_if_due();
                    continue;
                }
                Some(None) => stop = true,
                Some(Some(message)) => receive(message, &mut batch, &mut replies, &mut stop),
            }
            // Gather the batch by taking what is queued, then sleeping until the batch's time is up or a
            // sender wakes the writer (a batch's worth queued, a flush waiting), rather than waiting on the
            // queue: a waiting receiver would make every `emit` wake this thread.
            let deadline = Instant::now() + self.settings.batch_interval;
            loop {
                while !stop && replies.is_empty() && batch.len() < self.settings.batch_size {
                    match self.receiver.try_recv() {
                        Ok(message) => receive(message, &mut batch, &mut replies, &mut stop),
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Err(mpsc::error::TryRecvError::Disconnected) => stop = true,
                    }
                }
                let now = Instant::now();
                if stop || !replies.is_empty() || batch.len() >= self.settings.batch_size || now >= deadline {
                    break;
                }
                tokio::select! {
                    () = tokio::time::sleep_until(deadline) => {}
                    () = self.wake.notified() => {}
                }
            }
            if stop {
                // From now on `emit` spills to the overflow file; what is already queued is written.
                self.receiver.close();
                while let Ok(message) = self.receiver.try_recv() {
                    receive(message, &mut batch, &mut replies, &mut stop);
                }
            }
            self.write_batch(&mut batch).await;
            self.absorb_overflow().await;
            self.replay_due(false).await;
            if stop || !replies.is_empty() {
                let result = self.flush(stop).await;
                if stop {
                    // Free the directory before answering, so that a pipeline started right after a
                    // shutdown can take it.
                    self.lock = None;
                }
                for reply in replies.drain(..) {
                    let _ = reply.send(result.clone());
                }
            }
            if stop {
                return;
            }
        }
    }

    fn next_retry(&self) -> Option<Instant> {
        self.slots.iter().filter(|slot| slot.is_down()).filter_map(|slot| slot.backlog.retry_at).min()
    }

    /// Seals and delivers the events of `batch`, leaving it empty.
    async fn write_batch(&mut self, batch: &mut Vec<AuditEvent>) {
        if batch.is_empty() {
            return;
        }
        let mut sealed = std::mem::take(&mut self.sealed);
        let metrics = metrics();
        for event in batch.drain(..) {
            metrics.count_recorded(&event.event_type, event.outcome);
            sealed.push(self.chain.seal_into(event, self.spare_rooms.take()));
            if let Some(schedule) = &mut self.schedule
                && schedule.count_record()
            {
                self.due.push(sealed.len() - 1);
            }
        }
        for slot in &mut self.slots {
            slot.deliver(&sealed, &self.settings).await;
        }
        if let Some(schedule) = &mut self.schedule {
            for index in self.due.drain(..) {
                schedule.seal_record(sealed[index].event(), CheckpointReason::Interval);
            }
        }
        self.spare_rooms.keep(sealed.drain(..));
        self.sealed = sealed;
        self.checkpoint_if_due();
    }

    /// Seals the chain's head when the checkpoint interval has passed since the last checkpoint.
    fn checkpoint_if_due(&mut self) {
        if let Some(schedule) = &mut self.schedule {
            schedule.seal_head_if_due(&self.chain);
        }
    }

    async fn replay_due(&mut self, force: bool) {
        let now = Instant::now();
        for slot in &mut self.slots {
            if slot.is_down() && (force || slot.backlog.retry_at.is_some_and(|at| at <= now)) {
                slot.replay(&self.settings).await;
            }
        }
    }

    /// Writes what `emit` spilled while the queue was full.
    async fn absorb_overflow(&mut self) {
        let (count, file, memory) = self.overflow.take();
        if let Some(file) = file {
            self.write_overflow_file(&file).await;
        }
        for chunk in memory.chunks(self.settings.batch_size) {
            self.write_batch(&mut chunk.to_vec()).await;
        }
        metrics().spilled.with_label_values(&["queue"]).sub(i64::try_from(count).unwrap_or(i64::MAX));
    }

    async fn write_overflow_file(&mut self, path: &Path) {
        let mut file = match File::open(path) {
            Ok(file) => BufReader::new(file),
            Err(error) => {
                tracing::error!(%error, path = %path.display(), "audit overflow file unreadable; left in place");
                return;
            }
        };
        let mut batch = Vec::with_capacity(self.settings.batch_size);
        let mut buffer = Vec::new();
        let mut line_number = 0_u64;
        loop {
            let line = match files::read_line(&mut file, &mut buffer, files::MAX_LINE_BYTES) {
                Ok(Line::End) => break,
                Ok(line) => line,
                Err(error) => {
                    tracing::error!(%error, path = %path.display(), "audit overflow file unreadable; left in place");
                    self.write_batch(&mut batch).await;
                    return;
                }
            };
            line_number += 1;
            let parsed = match line {
                Line::TooLong(length) => Err(format!("a line of {length} bytes, longer than any record")),
                _ => self.overflow.read_back(buffer.trim_ascii_end()),
            };
            match parsed {
                Ok(event) => batch.push(event),
                Err(reason) => self.overflow.quarantine(path, line_number, &buffer, &reason),
            }
            if batch.len() == self.settings.batch_size {
                self.write_batch(&mut batch).await;
            }
        }
        self.write_batch(&mut batch).await;
        if let Err(error) = fs::remove_file(path) {
            tracing::warn!(%error, path = %path.display(), "could not remove a written audit overflow file");
        }
    }

    async fn flush(&mut self, stop: bool) -> Result<(), AuditError> {
        self.absorb_overflow().await;
        self.replay_due(true).await;
        let mut pending = Vec::new();
        let mut flush_error = None;
        for slot in &mut self.slots {
            if slot.is_down() {
                pending.push(PendingSink { sink: slot.label.clone(), events: slot.backlog.events });
            } else if let Err(error) = slot.sink.flush().await {
                flush_error.get_or_insert(AuditError::Flush { sink: slot.label.clone(), message: error.message });
            }
        }
        // Sealed after the records are durable, so that a checkpoint never names a record lost in a crash.
        if let Some(schedule) = &mut self.schedule
            && let Err(error) = schedule.seal_at_flush(&self.chain, stop)
        {
            flush_error.get_or_insert(AuditError::Flush { sink: error.sink, message: error.source.to_string() });
        }
        if !pending.is_empty() {
            return Err(AuditError::Pending(pending));
        }
        flush_error.map_or(Ok(()), Err)
    }
}

/// Sorts one message into the batch being gathered, or the flushes waiting for it.
fn receive(
    message: Message,
    batch: &mut Vec<AuditEvent>,
    replies: &mut Vec<oneshot::Sender<Result<(), AuditError>>>,
    stop: &mut bool,
) {
    match message {
        Message::Event(event) => batch.push(event),
        Message::Call(call) => batch.push(call.into_event()),
        Message::Flush(reply) => replies.push(reply),
        Message::Shutdown(reply) => {
            replies.push(reply);
            *stop = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Chain, SpareRooms};
    use crate::event::{AuditEvent, EventType};

    #[test]
    fn a_record_sealed_into_a_kept_room_reuses_it_and_reads_the_same() {
        let event = AuditEvent::new(EventType::UserMessage).detail("words", "a kept room");
        let mut reusing = Chain::new("stream".to_owned());
        let mut fresh = Chain::new("stream".to_owned());
        let mut spare = SpareRooms::default();
        let first = reusing.seal_into(event.clone(), spare.take());
        assert_eq!(first, fresh.seal(event.clone()));
        let line = first.json().as_ptr();
        let (stream, hash) = (first.event().stream.as_ptr(), first.event().hash.as_ptr());
        spare.keep(std::iter::once(first));
        let second = reusing.seal_into(event.clone(), spare.take());
        assert_eq!(second.json().as_ptr(), line, "the second line is written where the first was");
        assert_eq!(second.event().stream.as_ptr(), stream, "and its stream");
        assert_eq!(second.event().hash.as_ptr(), hash, "and its hash");
        assert_eq!(second, fresh.seal(event.clone()), "and is the record a new room would have held");
        // The first record's previous hash went to the chain; the third record takes it as its own.
        spare.keep(std::iter::once(second));
        let third = reusing.seal_into(event.clone(), spare.take());
        assert_eq!(third, fresh.seal(event), "a third record, its previous hash moved from the chain");
    }

    #[test]
    fn spare_rooms_are_kept_within_their_bounds() {
        let mut chain = Chain::new("stream".to_owned());
        let mut spare = SpareRooms::default();
        let small = (0..SpareRooms::MAX_ROOMS + 100)
            .map(|_| chain.seal(AuditEvent::new(EventType::UserMessage)))
            .collect::<Vec<_>>();
        spare.keep(small.into_iter());
        assert_eq!(spare.rooms.len(), SpareRooms::MAX_ROOMS);

        let mut spare = SpareRooms::default();
        let large = AuditEvent::new(EventType::Error).outcome_details("x".repeat(SpareRooms::MAX_BYTES));
        spare.keep(std::iter::once(chain.seal(large)));
        assert!(spare.rooms.is_empty(), "a line over {} bytes is freed", SpareRooms::MAX_BYTES);
        assert_eq!(spare.take().line_capacity(), 0, "without a kept room, a new one");
    }
}
