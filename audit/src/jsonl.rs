//! The JSONL file sink (the default), its reader and its verifier.
//!
//! One event per line. When the file would grow past its size limit it is rotated: `audit.jsonl`
//! becomes `audit.jsonl.1`, `.1` becomes `.2`, and so on up to the number of files kept, the oldest
//! deleted. Next to the log, `audit.jsonl.head` names the last record written (rewritten at most once
//! a second, and at each flush), so that a verifier can tell a log whose end was cut off; with a
//! signing key, signed checkpoints in `audit.jsonl.checkpoints` do that job against a forger too, and a
//! rotation that deletes the oldest file signs a checkpoint of what it deletes first.
//!
//! Files are created 0600 and folders 0700.

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File};
use std::io::{self, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::chain::SealedEvent;
use super::checkpoint::{CheckpointReason, Checkpoints, Removed};
use super::event::AuditEvent;
use super::files::{self, Line, set_aside_torn_tail, sibling};
use super::sink::{Sink, SinkError};
use hardened_core::support::BoxFuture;

/// How often the head file is rewritten while records are written (it is also written at each flush).
const HEAD_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Default size at which the file is rotated: 100 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 100 * 1024 * 1024;
/// Default number of rotated files kept besides the current one.
pub const DEFAULT_KEEP: usize = 10;

/// Appends events to a JSONL file, rotating it by size; [`Sink::flush`] fsyncs it.
#[derive(Debug)]
pub struct JsonlSink {
    path: PathBuf,
    name: String,
    file: File,
    size: u64,
    max_bytes: u64,
    keep: usize,
    /// The last sequence number written per stream, so that a batch written again is not duplicated.
    written: HashMap<String, u64>,
    /// The last record written, for the head file.
    last: Option<Head>,
    /// `written` and `last` as of the last complete write to the file.
    committed: (HashMap<String, u64>, Option<Head>),
    buffer: Vec<u8>,
    /// The pipeline's checkpoint signer, when it signs.
    checkpoints: Option<Checkpoints>,
    /// The last sequence number of each stream in each file, the current one first (`None`: not known,
    /// the file was written before this process opened the log).
    file_streams: VecDeque<Option<HashMap<String, u64>>>,
    /// When the head file was last written.
    head_written_at: Option<std::time::Instant>,
}

/// The last record a writer wrote: `<log>.head`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Head {
    pub(crate) stream: String,
    pub(crate) sequence: u64,
    pub(crate) hash: String,
}

impl JsonlSink {
    /// Opens (or creates) the log at `path` for appending, creating its directory.
    ///
    /// A last line cut short by a crash is moved out of the log into `<path>.torn`, with a warning, so
    /// that the next record starts on a line of its own.
    pub fn open(path: impl Into<PathBuf>) -> io::Result<JsonlSink> {
        let path = path.into();
        if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
            files::create_private_dir_all(parent)?;
        }
        set_aside_torn_tail(&path)?;
        let file = files::open_append_private(&path)?;
        let size = file.metadata()?.len();
        Ok(JsonlSink {
            name: format!("jsonl:{}", path.display()),
            path,
            file,
            size,
            max_bytes: DEFAULT_MAX_BYTES,
            keep: DEFAULT_KEEP,
            written: HashMap::new(),
            last: None,
            committed: (HashMap::new(), None),
            buffer: Vec::new(),
            checkpoints: None,
            file_streams: VecDeque::from([(size == 0).then(HashMap::new)]),
            head_written_at: None,
        })
    }

    /// Rotates the file when it would grow past `max_bytes` (at least one record is always written to a
    /// fresh file).
    #[must_use]
    pub fn max_bytes(mut self, max_bytes: u64) -> JsonlSink {
        self.max_bytes = max_bytes;
        self
    }

    /// Keeps `keep` rotated files besides the current one; older ones are deleted.
    #[must_use]
    pub fn keep(mut self, keep: usize) -> JsonlSink {
        self.keep = keep;
        self
    }

    /// Names the sink in metrics and its spill file (default: `jsonl:<path>`).
    #[must_use]
    pub fn named(mut self, name: impl Into<String>) -> JsonlSink {
        self.name = name.into();
        self
    }

    fn append(&mut self, events: &[SealedEvent]) -> io::Result<()> {
        let result = self.append_all(events);
        if result.is_err() {
            // Part of a write may have reached the file, cut off mid-line: cut the file back to its last
            // complete write and forget what was not written, so that the batch written again is whole.
            self.buffer.clear();
            let _ = self.file.set_len(self.size);
            (self.written, self.last) = self.committed.clone();
        } else if self.head_written_at.is_none_or(|at| at.elapsed() >= HEAD_EVERY) {
            // Rewritten now and then, so that a crash leaves a recent one; the checkpoints are what a
            // forger cannot redo.
            if let Err(error) = self.write_head(false) {
                tracing::warn!(%error, path = %self.path.display(), "the audit head file could not be written");
            }
        }
        result
    }

    fn append_all(&mut self, events: &[SealedEvent]) -> io::Result<()> {
        let mut last = None;
        // The last record written of the stream of the record before, looked up when the stream changes or
        // a record is noted rather than for each record.
        let mut written: Option<(&str, Option<u64>)> = None;
        for sealed in events {
            let event = sealed.event();
            let stream_written = match written {
                Some((stream, sequence)) if stream == event.stream => sequence,
                _ => {
                    let sequence = self.written.get(event.stream.as_str()).copied();
                    written = Some((event.stream.as_str(), sequence));
                    sequence
                }
            };
            if stream_written.is_some_and(|last_written| last_written >= event.sequence) {
                continue;
            }
            let line = sealed.json().len() as u64 + 1;
            let pending = self.size + self.buffer.len() as u64;
            if pending > 0 && pending + line > self.max_bytes {
                self.note_written(last.take());
                written = None;
                self.write_buffer()?;
                self.rotate()?;
            }
            self.buffer.extend_from_slice(sealed.json().as_bytes());
            self.buffer.push(b'\n');
            // A batch is one stream but for replays after a restart: note a stream's last record once.
            if last.is_some_and(|previous: &AuditEvent| previous.stream != event.stream) {
                self.note_written(last);
                written = None;
            }
            last = Some(event);
        }
        self.note_written(last);
        self.write_buffer()
    }

    /// Notes `event` as the last record written of its stream, and of the log.
    fn note_written(&mut self, event: Option<&AuditEvent>) {
        let Some(event) = event else { return };
        match self.written.get_mut(event.stream.as_str()) {
            Some(sequence) => *sequence = event.sequence,
            None => {
                self.written.insert(event.stream.clone(), event.sequence);
            }
        }
        if let Some(Some(streams)) = self.file_streams.front_mut() {
            match streams.get_mut(event.stream.as_str()) {
                Some(sequence) => *sequence = event.sequence,
                None => {
                    streams.insert(event.stream.clone(), event.sequence);
                }
            }
        }
        self.last = Some(Head { stream: event.stream.clone(), sequence: event.sequence, hash: event.hash.clone() });
    }

    fn write_buffer(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        self.file.write_all(&self.buffer)?;
        self.size += self.buffer.len() as u64;
        self.buffer.clear();
        self.committed.0.clone_from(&self.written);
        self.committed.1.clone_from(&self.last);
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.sync_all()?;
        if self.checkpoints.is_some() {
            self.checkpoint_rotation()?;
        }
        if self.keep == 0 {
            fs::remove_file(&self.path)?;
        } else {
            let _ = fs::remove_file(rotated(&self.path, self.keep));
            for index in (1..self.keep).rev() {
                let from = rotated(&self.path, index);
                if from.exists() {
                    fs::rename(&from, rotated(&self.path, index + 1))?;
                }
            }
            fs::rename(&self.path, rotated(&self.path, 1))?;
        }
        self.file = files::open_append_private(&self.path)?;
        self.size = 0;
        self.file_streams.push_front(Some(HashMap::new()));
        self.file_streams.truncate(self.keep + 1);
        sync_directory(&self.path)
    }

    /// Signs a checkpoint of the rotation before it happens: `retention` with what the file about to be
    /// deleted held (every stream's first record kept after it), else `rotation`. If it cannot be
    /// signed, nothing is deleted: the write fails and the pipeline keeps the batch in its spill file.
    fn checkpoint_rotation(&mut self) -> io::Result<()> {
        let Some(checkpoints) = &self.checkpoints else { return Ok(()) };
        let deleted_index = self.keep;
        let deleted = if self.keep == 0 { self.path.clone() } else { rotated(&self.path, self.keep) };
        let (reason, removed) = if deleted.exists() {
            let streams = match self.file_streams.get(deleted_index) {
                Some(Some(streams)) => streams.clone(),
                _ => last_sequences(&deleted)?,
            };
            let mut removed: Vec<Removed> =
                streams.into_iter().map(|(stream, last)| Removed { stream, first_kept: last + 1, run: None }).collect();
            removed.sort_by(|a, b| a.stream.cmp(&b.stream));
            (CheckpointReason::Retention, removed)
        } else {
            (CheckpointReason::Rotation, Vec::new())
        };
        let head = self.last.as_ref().map(|head| super::checkpoint::CheckpointHead {
            stream: &head.stream,
            sequence: head.sequence,
            hash: &head.hash,
        });
        let stream = self.last.as_ref().map_or("", |head| head.stream.as_str());
        checkpoints.seal(stream, head, reason, removed).map_err(io::Error::other)?;
        checkpoints.sync().map_err(io::Error::other)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()?;
        self.write_head(true)
    }

    /// Writes `<log>.head` (through a temporary file and a rename), fsynced when `durable`.
    fn write_head(&mut self, durable: bool) -> io::Result<()> {
        let Some(head) = &self.last else { return Ok(()) };
        let head_path = sibling(&self.path, "head");
        let temporary = sibling(&self.path, "head.tmp");
        let mut file = files::create_private(&temporary)?;
        serde_json::to_writer(&mut file, head)?;
        if durable {
            file.sync_all()?;
        }
        fs::rename(&temporary, &head_path)?;
        self.head_written_at = Some(std::time::Instant::now());
        Ok(())
    }
}

/// The last sequence number of each stream in a log file, read through.
fn last_sequences(path: &Path) -> io::Result<HashMap<String, u64>> {
    #[derive(Deserialize)]
    struct Position {
        stream: String,
        sequence: u64,
    }
    let mut reader = BufReader::new(File::open(path)?);
    let mut buffer = Vec::new();
    let mut streams = HashMap::new();
    loop {
        match files::read_line(&mut reader, &mut buffer, files::MAX_LINE_BYTES)? {
            Line::End => return Ok(streams),
            Line::TooLong(_) => {}
            Line::Read { .. } => {
                if let Ok(position) = serde_json::from_slice::<Position>(buffer.trim_ascii_end()) {
                    let last = streams.entry(position.stream).or_insert(position.sequence);
                    *last = (*last).max(position.sequence);
                }
            }
        }
    }
}

impl Sink for JsonlSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn write<'a>(&'a mut self, events: &'a [SealedEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move { self.append(events).map_err(|error| SinkError::new(&self.name, error)) })
    }

    fn flush(&mut self) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async move { self.sync().map_err(|error| SinkError::new(&self.name, error)) })
    }

    fn default_checkpoint_file(&self) -> Option<PathBuf> {
        Some(sibling(&self.path, "checkpoints"))
    }

    fn use_checkpoints(&mut self, checkpoints: Checkpoints) {
        self.checkpoints = Some(checkpoints);
    }
}

/// `<path>.<index>`.
fn rotated(path: &Path, index: usize) -> PathBuf {
    sibling(path, &index.to_string())
}

fn sync_directory(path: &Path) -> io::Result<()> {
    match path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        Some(parent) => File::open(parent)?.sync_all(),
        None => File::open(".")?.sync_all(),
    }
}

/// The files of a rotation set, oldest first: `<path>.<keep>` .. `<path>.1`, then `<path>`.
fn rotation_set(path: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> =
        (1..=usize::MAX).map(|index| rotated(path, index)).take_while(|file| file.exists()).collect();
    files.reverse();
    if path.exists() {
        files.push(path.to_owned());
    }
    files
}

/// One item of [`read_jsonl`]: a record, or why a line is not one.
#[derive(Debug)]
pub enum JsonlRecord {
    /// A record, and where it was.
    Event(Box<AuditEvent>, JsonlLocation),
    /// A line that is not an audit record (not the last line of the log: see `TornTail`).
    Malformed(JsonlLocation, String),
    /// The last line of the log, cut short: a writer stopped in the middle of it.
    TornTail(JsonlLocation),
}

/// A line of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonlLocation {
    /// The file.
    pub file: PathBuf,
    /// The line, from 1.
    pub line: u64,
    /// Whether this file is the oldest rotated file still kept, whose streams may begin past their
    /// first record (the records before it were rotated out).
    pub in_oldest_file: bool,
}

impl std::fmt::Display for JsonlLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// Reads a JSONL audit log and its rotated files, oldest record first, one line at a time (memory does
/// not grow with the log: a line longer than [`MAX_LINE_BYTES`](super::MAX_LINE_BYTES) is reported as
/// not a record without being held). I/O errors end the iteration with an `Err`.
pub fn read_jsonl(path: impl AsRef<Path>) -> impl Iterator<Item = io::Result<JsonlRecord>> {
    let files = rotation_set(path.as_ref());
    let count = files.len();
    files.into_iter().enumerate().flat_map(move |(index, file)| {
        let is_last_file = index + 1 == count;
        // Only a rotated file can follow records that were rotated out; the current file of a log that
        // never rotated holds every record from the first.
        LinesOf::open(file, index == 0 && !is_last_file, is_last_file)
    })
}

/// The records of one file.
struct LinesOf {
    file: PathBuf,
    reader: Option<BufReader<File>>,
    line: u64,
    in_oldest_file: bool,
    is_last_file: bool,
    error: Option<io::Error>,
    buffer: Vec<u8>,
}

impl LinesOf {
    fn open(file: PathBuf, in_oldest_file: bool, is_last_file: bool) -> LinesOf {
        let (reader, error) = match File::open(&file) {
            Ok(opened) => (Some(BufReader::with_capacity(256 * 1024, opened)), None),
            Err(error) => (None, Some(error)),
        };
        LinesOf { file, reader, line: 0, in_oldest_file, is_last_file, error, buffer: Vec::new() }
    }
}

impl Iterator for LinesOf {
    type Item = io::Result<JsonlRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(error) = self.error.take() {
            return Some(Err(error));
        }
        let reader = self.reader.as_mut()?;
        match files::read_line(reader, &mut self.buffer, files::MAX_LINE_BYTES) {
            Err(error) => {
                self.reader = None;
                Some(Err(error))
            }
            Ok(Line::End) => None,
            Ok(Line::TooLong(length)) => {
                self.line += 1;
                let location =
                    JsonlLocation { file: self.file.clone(), line: self.line, in_oldest_file: self.in_oldest_file };
                let reason = format!(
                    "a line of {length} bytes, longer than the {} bytes a record read back may have",
                    files::MAX_LINE_BYTES
                );
                Some(Ok(JsonlRecord::Malformed(location, reason)))
            }
            Ok(Line::Read { complete }) => {
                self.line += 1;
                let location =
                    JsonlLocation { file: self.file.clone(), line: self.line, in_oldest_file: self.in_oldest_file };
                match serde_json::from_slice::<AuditEvent>(self.buffer.trim_ascii_end()) {
                    Ok(event) => Some(Ok(JsonlRecord::Event(Box::new(event), location))),
                    Err(_) if !complete && self.is_last_file => Some(Ok(JsonlRecord::TornTail(location))),
                    Err(error) => Some(Ok(JsonlRecord::Malformed(location, error.to_string()))),
                }
            }
        }
    }
}

/// The head file next to the log at `path`, if there is one.
pub(crate) fn read_head(path: &Path) -> io::Result<Option<Head>> {
    match fs::read(sibling(path, "head")) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|error| {
            io::Error::other(format!("{}: not a head file: {error}", sibling(path, "head").display()))
        }),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}
