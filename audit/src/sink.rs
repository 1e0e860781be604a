//! Where sealed events go: the [`Sink`] trait, and the stdout and in-memory sinks.

use std::io::Write as _;

use std::path::PathBuf;

use super::chain::SealedEvent;
use super::checkpoint::{CheckpointFile, CheckpointSink, Checkpoints};
use hardened_core::support::BoxFuture;

/// Why a sink could not take a batch. The pipeline retries it, then keeps the batch in the sink's spill
/// file until the sink takes it.
#[derive(Debug, thiserror::Error)]
#[error("audit sink {sink}: {message}")]
pub struct SinkError {
    /// The sink's name.
    pub sink: String,
    /// What went wrong.
    pub message: String,
}

impl SinkError {
    /// An error of the sink named `sink`.
    pub fn new(sink: impl Into<String>, message: impl std::fmt::Display) -> SinkError {
        SinkError { sink: sink.into(), message: message.to_string() }
    }
}

/// A destination of audit events, driven by the pipeline's writer, one call at a time.
///
/// `write` must be idempotent per event: a batch may be written again after an error that left part
/// of it written (the pipeline retries whole batches), and the sink must then not duplicate what it
/// already holds (by event id, or by each stream's sequence number).
pub trait Sink: Send + 'static {
    /// A name for metrics, logs and the sink's spill file; unique within a pipeline.
    fn name(&self) -> &str;

    /// Writes a batch, in order.
    fn write<'a>(&'a mut self, events: &'a [SealedEvent]) -> BoxFuture<'a, Result<(), SinkError>>;

    /// Makes everything written so far durable.
    fn flush(&mut self) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async { Ok(()) })
    }

    /// Where this sink's checkpoints go when the pipeline signs them and no checkpoint file is given
    /// (the JSONL sink: `<log>.checkpoints`).
    fn default_checkpoint_file(&self) -> Option<PathBuf> {
        None
    }

    /// Where this sink's checkpoints go when the pipeline signs them and no checkpoint file is given:
    /// by default a [`CheckpointFile`] at [`Sink::default_checkpoint_file`]; the `PostgreSQL` sink's
    /// is the table `audit_checkpoint`, in a chain named after the pipeline's `stream`.
    fn default_checkpoint_sink(&self, stream: &str) -> Option<Box<dyn CheckpointSink>> {
        let _ = stream;
        self.default_checkpoint_file().map(|path| Box::new(CheckpointFile::new(path)) as Box<dyn CheckpointSink>)
    }

    /// Hands the sink the pipeline's checkpoint signer, when it has a signing key: a sink that rotates or
    /// deletes records by policy signs a checkpoint saying so first, so that a verifier can tell records
    /// deleted by policy from records cut.
    fn use_checkpoints(&mut self, checkpoints: Checkpoints) {
        let _ = checkpoints;
    }
}

/// Writes each event as a line of JSON to standard output, for containers whose log collector is the
/// audit store.
#[derive(Debug, Default)]
pub struct StdoutSink;

impl Sink for StdoutSink {
    fn name(&self) -> &'static str {
        "stdout"
    }

    fn write<'a>(&'a mut self, events: &'a [SealedEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            let mut out = std::io::stdout().lock();
            for event in events {
                writeln!(out, "{}", event.json()).map_err(|error| SinkError::new("stdout", error))?;
            }
            out.flush().map_err(|error| SinkError::new("stdout", error))
        })
    }
}

#[cfg(feature = "testing")]
pub use memory::MemorySink;

#[cfg(feature = "testing")]
mod memory {
    use std::collections::HashSet;
    use std::sync::{Arc, Mutex, PoisonError};

    use super::{BoxFuture, SealedEvent, Sink, SinkError};

    /// Keeps events in memory, for tests; can be told to fail, to test what happens during an outage.
    /// Clones share the same events: keep one to read them after giving the other to the pipeline.
    #[derive(Debug, Clone, Default)]
    pub struct MemorySink {
        shared: Arc<Mutex<Shared>>,
    }

    #[derive(Debug, Default)]
    struct Shared {
        events: Vec<SealedEvent>,
        ids: HashSet<uuid::Uuid>,
        failing: bool,
        writes: u64,
    }

    impl MemorySink {
        /// An empty sink that works.
        #[must_use]
        pub fn new() -> MemorySink {
            MemorySink::default()
        }

        fn shared(&self) -> std::sync::MutexGuard<'_, Shared> {
            self.shared.lock().unwrap_or_else(PoisonError::into_inner)
        }

        /// The events written, in order.
        #[must_use]
        pub fn events(&self) -> Vec<SealedEvent> {
            self.shared().events.clone()
        }

        /// How many batches were written successfully.
        #[must_use]
        pub fn writes(&self) -> u64 {
            self.shared().writes
        }

        /// Makes every write fail (`true`) or succeed again (`false`).
        pub fn set_failing(&self, failing: bool) {
            self.shared().failing = failing;
        }
    }

    impl Sink for MemorySink {
        fn name(&self) -> &'static str {
            "memory"
        }

        fn write<'a>(&'a mut self, events: &'a [SealedEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
            Box::pin(async move {
                let mut shared = self.shared();
                if shared.failing {
                    return Err(SinkError::new("memory", "failing on purpose"));
                }
                for event in events {
                    if shared.ids.insert(event.event().id) {
                        shared.events.push(event.clone());
                    }
                }
                shared.writes += 1;
                Ok(())
            })
        }
    }
}
