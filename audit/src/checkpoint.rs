//! Signed checkpoints: the writer's signature over a stream's head, so that whoever can write the log
//! but does not hold the signing key cannot rewrite, cut or shorten it without a verifier noticing.
//!
//! Like AWS `CloudTrail`'s signed digest files and Certificate Transparency's signed tree heads: every N
//! events or T seconds, at rotation, when files are deleted by retention, at a flush and at shutdown,
//! the writer signs (Ed25519) the stream's last record (sequence and hash), the time, the reason, what
//! the policy removed, and the hash of the checkpoint before, so checkpoints form a chain of their own.
//! They go to [`CheckpointSink`]s: a file of their own ([`CheckpointFile`], by default
//! `<log>.checkpoints`) or, for the `PostgreSQL` sink, the table `audit_checkpoint` (`CheckpointTable`,
//! its default), and, optionally, the tracing log ([`TracingCheckpoints`]) so that a copy leaves the
//! host.

use std::fs::File;
use std::io::{self, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::chain::GENESIS_HASH;
use super::files::{self, Line};
use super::keys::{AuditPublicKey, AuditSigningKey};
use hardened_core::support::hex;

/// What the signature covers comes after this line, so that a checkpoint's signature can never be
/// taken for a signature of anything else.
const SIGNING_CONTEXT: &[u8] = b"hardened audit checkpoint v1\n";

/// Why a checkpoint was issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckpointReason {
    /// A writer started a stream (no record yet): a stream without one was not written with this key.
    Start,
    /// N events or T seconds since the checkpoint before.
    Interval,
    /// An explicit flush.
    Flush,
    /// The log file was rotated; nothing was deleted.
    Rotation,
    /// Records were deleted by the retention policy: `removed` says which.
    Retention,
    /// The writer stopped.
    Shutdown,
}

/// Records of a stream removed by policy: every record before `first_kept` (a JSONL file deleted), or,
/// with a `run`, the records of that run only (a `PostgreSQL` month partition dropped).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Removed {
    /// The stream.
    pub stream: String,
    /// Without a `run`, the first sequence number still kept: every record before it was removed. With
    /// one, the record after the run.
    pub first_kept: u64,
    /// The consecutive records removed, where they need not be the start of the stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RemovedRun>,
}

/// A run of consecutive records of a stream removed by policy, with the hashes that link it to the
/// records kept on either side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemovedRun {
    /// The first record removed.
    pub first_sequence: u64,
    /// The `prev_hash` of the first record removed: the hash of the record before it.
    pub first_prev_hash: String,
    /// The last record removed.
    pub last_sequence: u64,
    /// The hash of the last record removed, which the record after it links to.
    pub last_hash: String,
}

/// A signed checkpoint, as one line of JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// Its position in the checkpoint chain, from 0.
    pub index: u64,
    /// The stream whose head it seals.
    pub stream: String,
    /// The sequence number of the record it seals (`None` for a `start`).
    pub sequence: Option<u64>,
    /// That record's hash.
    pub hash: Option<String>,
    /// When it was signed (RFC 3339, UTC).
    pub time: String,
    /// Why it was issued.
    pub reason: CheckpointReason,
    /// Records removed by policy (`retention`), per stream.
    pub removed: Vec<Removed>,
    /// The hash of the checkpoint before ([`GENESIS_HASH`] for the first).
    pub prev_checkpoint: String,
    /// The id of the key that signed it.
    pub key_id: String,
    /// The Ed25519 signature of everything above, in hex.
    pub signature: String,
}

/// A checkpoint's fields without its signature: what is signed.
#[derive(Serialize)]
struct Signed<'a> {
    index: u64,
    stream: &'a str,
    sequence: Option<u64>,
    hash: Option<&'a str>,
    time: &'a str,
    reason: CheckpointReason,
    removed: &'a [Removed],
    prev_checkpoint: &'a str,
    key_id: &'a str,
}

impl Checkpoint {
    fn signed_message(&self) -> Vec<u8> {
        let signed = Signed {
            index: self.index,
            stream: &self.stream,
            sequence: self.sequence,
            hash: self.hash.as_deref(),
            time: &self.time,
            reason: self.reason,
            removed: &self.removed,
            prev_checkpoint: &self.prev_checkpoint,
            key_id: &self.key_id,
        };
        let mut message = SIGNING_CONTEXT.to_vec();
        serde_json::to_writer(&mut message, &signed).expect("a checkpoint always serializes");
        message
    }

    /// The checkpoint as one line of JSON (no newline).
    ///
    /// # Panics
    ///
    /// Never: a checkpoint holds nothing that cannot be serialized.
    #[must_use]
    pub fn json(&self) -> String {
        serde_json::to_string(self).expect("a checkpoint always serializes")
    }

    /// The hash the next checkpoint names as `prev_checkpoint`: the SHA-256 of [`Checkpoint::json`].
    #[must_use]
    pub fn hash(&self) -> String {
        hex(&Sha256::digest(self.json().as_bytes()))
    }

    /// Signs the checkpoint at `index` of a checkpoint chain whose last checkpoint hashes to `prev`
    /// ([`GENESIS_HASH`] for the first).
    pub(crate) fn sign(
        key: &AuditSigningKey,
        (index, prev): (u64, String),
        stream: &str,
        head: Option<CheckpointHead<'_>>,
        reason: CheckpointReason,
        removed: Vec<Removed>,
    ) -> Checkpoint {
        let mut checkpoint = Checkpoint {
            index,
            stream: stream.to_owned(),
            sequence: head.map(|head| head.sequence),
            hash: head.map(|head| head.hash.to_owned()),
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            reason,
            removed,
            prev_checkpoint: prev,
            key_id: key.key_id().to_owned(),
            signature: String::new(),
        };
        checkpoint.signature = key.sign(&checkpoint.signed_message());
        checkpoint
    }

    /// Where the checkpoint after this one goes in its chain: its index and `prev_checkpoint`.
    pub(crate) fn next_place(last: Option<&Checkpoint>) -> (u64, String) {
        match last {
            Some(last) => (last.index + 1, last.hash()),
            None => (0, GENESIS_HASH.to_owned()),
        }
    }

    /// Whether `key` signed it: its key id is the checkpoint's, and the signature verifies.
    #[must_use]
    pub fn is_signed_by(&self, key: &AuditPublicKey) -> bool {
        key.key_id() == self.key_id && key.verifies(&self.signed_message(), &self.signature)
    }
}

/// Where checkpoints go. `write` is called by the audit writer (or a sink rotating its files), one
/// checkpoint at a time, in the chain's order; it should put the checkpoint on its way (into the kernel,
/// onto a socket) and leave durability to `sync`, which runs at each flush.
///
/// The `PostgreSQL` checkpoint table (`CheckpointTable`, feature `postgres`) is another implementation.
pub trait CheckpointSink: Send + 'static {
    /// A name for logs.
    fn name(&self) -> &str;

    /// The last checkpoint written before this process started, to chain the next one to.
    fn last(&mut self) -> io::Result<Option<Checkpoint>> {
        Ok(None)
    }

    /// Writes one checkpoint.
    fn write(&mut self, checkpoint: &Checkpoint) -> io::Result<()>;

    /// Makes the checkpoints written so far durable.
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Checkpoints appended to a file of their own, one JSON line each, created 0600.
#[derive(Debug)]
pub struct CheckpointFile {
    path: PathBuf,
    name: String,
    file: Option<File>,
}

impl CheckpointFile {
    /// Checkpoints in `path` (created at the first checkpoint, its folder 0700).
    pub fn new(path: impl Into<PathBuf>) -> CheckpointFile {
        let path = path.into();
        CheckpointFile { name: format!("checkpoints:{}", path.display()), path, file: None }
    }

    /// The file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl CheckpointSink for CheckpointFile {
    fn name(&self) -> &str {
        &self.name
    }

    fn last(&mut self) -> io::Result<Option<Checkpoint>> {
        // A line cut short by a crash is no checkpoint: set it aside, as the log does its own.
        super::files::set_aside_torn_tail(&self.path)?;
        let file = match File::open(&self.path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error),
        };
        let mut reader = BufReader::new(file);
        let mut buffer = Vec::new();
        let mut last = None;
        loop {
            match files::read_line(&mut reader, &mut buffer, files::MAX_LINE_BYTES)? {
                Line::End => return Ok(last),
                Line::Read { .. } => {
                    let line = buffer.trim_ascii_end();
                    last = Some(serde_json::from_slice(line).map_err(|error| {
                        io::Error::other(format!("{}: not a checkpoint: {error}", self.path.display()))
                    })?);
                }
                Line::TooLong(length) => {
                    return Err(io::Error::other(format!(
                        "{}: a line of {length} bytes, longer than any checkpoint",
                        self.path.display()
                    )));
                }
            }
        }
    }

    fn write(&mut self, checkpoint: &Checkpoint) -> io::Result<()> {
        if self.file.is_none() {
            if let Some(parent) = self.path.parent() {
                files::create_private_dir_all(parent)?;
            }
            self.file = Some(files::open_append_private(&self.path)?);
        }
        let mut line = checkpoint.json().into_bytes();
        line.push(b'\n');
        self.file.as_mut().expect("opened above").write_all(&line)
    }

    fn sync(&mut self) -> io::Result<()> {
        match &self.file {
            Some(file) => file.sync_data(),
            None => Ok(()),
        }
    }
}

/// A copy of every checkpoint in the tracing log (target `hardened::audit::checkpoint`, level INFO),
/// so that it leaves the host with the logs (OTLP, a log shipper).
#[derive(Debug, Default)]
pub struct TracingCheckpoints;

impl CheckpointSink for TracingCheckpoints {
    fn name(&self) -> &'static str {
        "tracing"
    }

    fn write(&mut self, checkpoint: &Checkpoint) -> io::Result<()> {
        tracing::info!(
            target: "hardened::audit::checkpoint",
            checkpoint = %checkpoint.json(),
            index = checkpoint.index,
            stream = %checkpoint.stream,
            "audit checkpoint"
        );
        Ok(())
    }
}

/// Why a checkpoint could not be issued.
#[derive(Debug, thiserror::Error)]
#[error("audit checkpoint sink {sink}: {source}")]
pub struct CheckpointError {
    /// The checkpoint sink.
    pub sink: String,
    /// What it said.
    pub source: io::Error,
}

/// The head a checkpoint seals: a stream's last record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointHead<'a> {
    /// The stream.
    pub stream: &'a str,
    /// The record's sequence number.
    pub sequence: u64,
    /// The record's hash.
    pub hash: &'a str,
}

/// The signer of a pipeline's checkpoints, shared by its writer and its sinks (a sink that deletes
/// files signs a `retention` checkpoint first). Cheap to clone.
#[derive(Clone)]
pub struct Checkpoints {
    shared: Arc<Mutex<Signer>>,
}

impl std::fmt::Debug for Checkpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let signer = self.signer();
        let sinks: Vec<&str> = signer.sinks.iter().map(|sink| sink.name()).collect();
        f.debug_struct("Checkpoints")
            .field("key_id", &signer.key.key_id())
            .field("sinks", &sinks)
            .field("next_index", &signer.next_index)
            .finish()
    }
}

struct Signer {
    key: AuditSigningKey,
    sinks: Vec<Box<dyn CheckpointSink>>,
    next_index: u64,
    prev: String,
}

impl Checkpoints {
    /// A signer writing to `sinks` that goes on from the last checkpoint the first sink holds. The
    /// pipeline makes one from [`AuditorBuilder::signing_key`](super::AuditorBuilder::signing_key); this
    /// is for signing checkpoints outside a pipeline (a retention job, a benchmark).
    ///
    /// # Errors
    ///
    /// When the first sink cannot read its last checkpoint.
    pub fn open(key: AuditSigningKey, mut sinks: Vec<Box<dyn CheckpointSink>>) -> Result<Checkpoints, CheckpointError> {
        let last = match sinks.first_mut() {
            Some(sink) => sink.last().map_err(|source| CheckpointError { sink: sink.name().to_owned(), source })?,
            None => None,
        };
        let (next_index, prev) = Checkpoint::next_place(last.as_ref());
        Ok(Checkpoints { shared: Arc::new(Mutex::new(Signer { key, sinks, next_index, prev })) })
    }

    fn signer(&self) -> std::sync::MutexGuard<'_, Signer> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Signs a checkpoint of `stream` (its head, if it has a record) and writes it to every checkpoint
    /// sink. When the first sink (the one the chain is read back from) fails, the chain stays where it
    /// was and the error is returned; a failure of another sink is logged.
    pub fn seal(
        &self,
        stream: &str,
        head: Option<CheckpointHead<'_>>,
        reason: CheckpointReason,
        removed: Vec<Removed>,
    ) -> Result<Checkpoint, CheckpointError> {
        let mut signer = self.signer();
        let place = (signer.next_index, signer.prev.clone());
        let checkpoint = Checkpoint::sign(&signer.key, place, stream, head, reason, removed);
        for (position, sink) in signer.sinks.iter_mut().enumerate() {
            if let Err(source) = sink.write(&checkpoint) {
                tracing::error!(sink = sink.name(), error = %source, "audit checkpoint not written");
                if position == 0 {
                    return Err(CheckpointError { sink: sink.name().to_owned(), source });
                }
            }
        }
        signer.next_index += 1;
        signer.prev = checkpoint.hash();
        Ok(checkpoint)
    }

    /// Makes every checkpoint written durable.
    pub(crate) fn sync(&self) -> Result<(), CheckpointError> {
        let mut signer = self.signer();
        for sink in &mut signer.sinks {
            sink.sync().map_err(|source| CheckpointError { sink: sink.name().to_owned(), source })?;
        }
        Ok(())
    }

    /// The key for authenticating spill files.
    pub(crate) fn spill_key(&self) -> [u8; 32] {
        self.signer().key.spill_key()
    }
}
