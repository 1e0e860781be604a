//! Verification of a JSONL log against its signed checkpoints and the public keys that verify them.
//!
//! Every checkpoint's signature and place in the checkpoint chain is checked first; then each record:
//! its hash and link (the chain), and, where a checkpoint sealed its sequence number, that it is the
//! record sealed (same hash). A stream may begin past record 0 only where a `retention` checkpoint
//! records the removal of the records before it; the log must reach every record a checkpoint sealed;
//! every stream must have a checkpoint. Records after the last checkpoint of their stream are counted as
//! unsealed: a forger could have cut or rewritten them, at most the interval's N records or T seconds.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};

use super::chain::{ChainProblem, ChainVerifier, GENESIS_HASH, Location, Verification};
use super::checkpoint::{Checkpoint, RemovedRun};
use super::event::AuditEvent;
use super::files::sibling;
use super::files::{self, Line};
use super::jsonl::{Head, JsonlLocation, JsonlRecord, read_head, read_jsonl};
use super::keys::AuditPublicKey;

/// What [`verify_jsonl_with`] checks the log against.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    public_keys: Vec<AuditPublicKey>,
    checkpoint_file: Option<PathBuf>,
}

impl VerifyOptions {
    /// No public key: the chain alone, as [`verify_jsonl`](super::verify_jsonl).
    #[must_use]
    pub fn new() -> VerifyOptions {
        VerifyOptions::default()
    }

    /// A public key that checkpoints may be signed with; give the current key and the ones it replaced
    /// whose checkpoints are still in the file. With at least one, the checkpoints are checked.
    #[must_use]
    pub fn public_key(mut self, key: AuditPublicKey) -> VerifyOptions {
        self.public_keys.push(key);
        self
    }

    /// The public keys given.
    #[cfg(feature = "postgres")]
    pub(super) fn public_keys(&self) -> &[AuditPublicKey] {
        &self.public_keys
    }

    /// The checkpoint file given, if any.
    #[cfg(feature = "postgres")]
    pub(super) fn given_checkpoint_file(&self) -> Option<&Path> {
        self.checkpoint_file.as_deref()
    }

    /// The checkpoint file (for a JSONL log, default `<log>.checkpoints`; for the `PostgreSQL` table, none:
    /// its verifier reads the table `audit_checkpoint`, and this file too when given).
    #[must_use]
    pub fn checkpoint_file(mut self, path: impl Into<PathBuf>) -> VerifyOptions {
        self.checkpoint_file = Some(path.into());
        self
    }
}

/// Verifies a JSONL audit log and its rotated files: every record intact, every stream's sequence
/// unbroken and linked by hash, and the log reaching the last record its writer recorded in
/// `<path>.head`, with the hash recorded there.
///
/// Without public keys, a stream may begin past record 0 in the oldest rotated file kept, whose
/// predecessors were rotated out (with `keep(0)`, nothing is kept to tell); anywhere else, a stream
/// begins with record 0. This proves the log consistent, not authentic: whoever can write the files can
/// rewrite them whole. [`verify_jsonl_with`](super::verify_jsonl_with) and public keys check the signed
/// checkpoints too. A torn last line is reported in [`Verification::torn_tail`].
///
/// ```
/// # let directory = tempfile::tempdir().unwrap();
/// # let path = directory.path().join("audit.jsonl");
/// let verification = hardened::audit::verify_jsonl(&path)?;
/// assert!(verification.is_intact());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn verify_jsonl(path: impl AsRef<Path>) -> io::Result<Verification> {
    verify_jsonl_with(path, &VerifyOptions::default())
}

/// Verifies a JSONL audit log as [`verify_jsonl`](super::verify_jsonl) does and, given public keys,
/// against its signed checkpoints (`<log>.checkpoints` unless [`VerifyOptions::checkpoint_file`] says
/// otherwise):
///
/// - every checkpoint is signed by one of the keys and in place in the checkpoint chain;
/// - a record at a sequence number a checkpoint sealed has the hash sealed ([`ChainProblem::Rewritten`]);
/// - a stream begins past record 0 only where a `retention` checkpoint records the records before it as
///   removed by policy ([`ChainProblem::Cut`]);
/// - the log reaches the last record each stream's checkpoints seal ([`ChainProblem::CutEnd`]);
/// - every stream has a checkpoint ([`ChainProblem::Unsealed`]).
///
/// The counts of records sealed and not yet sealed are in the [`Verification`]: the records after the
/// last checkpoint of their stream (at most the checkpoint interval's N records or T seconds) could be
/// cut or rewritten undetected.
///
/// ```
/// use hardened::audit::{AuditSigningKey, VerifyOptions, verify_jsonl_with};
/// # let directory = tempfile::tempdir().unwrap();
/// # let path = directory.path().join("audit.jsonl");
/// let key = AuditSigningKey::generate()?;
/// let verification = verify_jsonl_with(&path, &VerifyOptions::new().public_key(key.public_key()))?;
/// assert!(verification.is_intact());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn verify_jsonl_with(path: impl AsRef<Path>, options: &VerifyOptions) -> io::Result<Verification> {
    let path = path.as_ref();
    let head = read_head(path)?;
    let seals = match SealCheck::of_options(options, || sibling(path, "checkpoints"))? {
        None => None,
        Some(Ok(seals)) => Some(seals),
        Some(Err(problem)) => return Ok(ChainVerifier::default().finish(Some(problem), None)),
    };
    let mut walk = Walk { verifier: ChainVerifier::default(), head, seals };
    let mut torn_tail = None;
    for record in read_jsonl(path) {
        let problem = match record? {
            JsonlRecord::Event(event, location) => walk.check(*event, &location).err(),
            JsonlRecord::Malformed(location, reason) => {
                Some(ChainProblem::Malformed { location: location.to_string(), reason })
            }
            JsonlRecord::TornTail(location) => {
                torn_tail = Some(location.to_string());
                None
            }
        };
        if problem.is_some() {
            return Ok(walk.finish(problem, torn_tail));
        }
    }
    let problem = walk.end().err();
    Ok(walk.finish(problem, torn_tail))
}

/// The records read so far.
struct Walk {
    verifier: ChainVerifier,
    head: Option<Head>,
    seals: Option<SealCheck>,
}

impl Walk {
    fn check(&mut self, event: AuditEvent, location: &JsonlLocation) -> Result<(), ChainProblem> {
        let place = || location.to_string();
        let may_start_late = match &self.seals {
            None => location.in_oldest_file,
            Some(seals) if !self.verifier.knows(&event.stream) && event.sequence > 0 => {
                let expected = seals.first_kept(&event.stream);
                if event.sequence > expected {
                    return Err(ChainProblem::Cut {
                        location: place(),
                        stream: event.stream,
                        expected,
                        found: event.sequence,
                    });
                }
                true
            }
            Some(_) => false,
        };
        let sealed = self.verifier.push(event, place, may_start_late)?;
        let record = sealed.event();
        if let Some(head) = &self.head
            && head.sequence == record.sequence
            && head.stream == record.stream
            && head.hash != record.hash
        {
            return Err(ChainProblem::HeadMismatch {
                location: place(),
                stream: record.stream.clone(),
                sequence: record.sequence,
            });
        }
        match &mut self.seals {
            Some(seals) => seals.check(record, place),
            None => Ok(()),
        }
    }

    /// The checks that need the whole log: gaps, the head file, the records checkpoints sealed.
    fn end(&mut self) -> Result<(), ChainProblem> {
        self.verifier.end()?;
        if let Some(head) = &self.head {
            self.verifier.check_head(&head.stream, head.sequence)?;
        }
        let Some(seals) = &self.seals else { return Ok(()) };
        let last: HashMap<&str, u64> = self.verifier.last_records().collect();
        // Records a retention checkpoint records as removed count as reached.
        seals.check_end(|stream| {
            let present = last.get(stream).map_or(-1, |last| i128::from(*last));
            present.max(i128::from(seals.first_kept(stream)) - 1)
        })
    }

    fn finish(&self, problem: Option<ChainProblem>, torn_tail: Option<String>) -> Verification {
        let mut verification = self.verifier.finish(problem, torn_tail);
        if let Some(seals) = &self.seals {
            seals.count_into(&mut verification);
        }
        verification
    }
}

/// Checks records, as a verifier reads them, against the signed checkpoints: the JSONL log's
/// ([`verify_jsonl_with`]) and the `PostgreSQL` table's
/// (`verify_postgres_with`) alike.
#[derive(Debug)]
pub(super) struct SealCheck {
    seals: Seals,
    sealed: u64,
    unsealed: u64,
    /// Records per stream (for the error of a stream without checkpoints).
    records: HashMap<String, u64>,
}

impl SealCheck {
    /// Reads and verifies the checkpoint file with `keys`: the check, or what is wrong with the file.
    pub(super) fn read(path: &Path, keys: &[AuditPublicKey]) -> io::Result<Result<SealCheck, ChainProblem>> {
        let mut seals = Seals::default();
        Ok(seals.read(path, keys)?.map(|()| SealCheck::new(seals)))
    }

    /// The check of the checkpoints in `seals`, once every one is added.
    pub(super) fn new(mut seals: Seals) -> SealCheck {
        for runs in seals.runs.values_mut() {
            runs.sort_by_key(|run| run.first_sequence);
        }
        SealCheck { seals, sealed: 0, unsealed: 0, records: HashMap::new() }
    }

    /// The runs of records removed by policy that signed `retention` checkpoints record, per stream, in
    /// sequence order.
    #[cfg(feature = "postgres")]
    pub(super) fn take_removed_runs(&mut self) -> HashMap<String, Vec<RemovedRun>> {
        std::mem::take(&mut self.seals.runs)
    }

    /// The checkpoint file of `options` (`default_file` unless it names one) read with its public keys, if
    /// it names any key; `None` without one.
    pub(super) fn of_options(
        options: &VerifyOptions,
        default_file: impl FnOnce() -> PathBuf,
    ) -> io::Result<Option<Result<SealCheck, ChainProblem>>> {
        if options.public_keys.is_empty() {
            return Ok(None);
        }
        let file = options.checkpoint_file.clone().unwrap_or_else(default_file);
        SealCheck::read(&file, &options.public_keys).map(Some)
    }

    /// The first record of `stream` kept after removals that a signed `retention` checkpoint records.
    fn first_kept(&self, stream: &str) -> u64 {
        self.seals.first_kept.get(stream).copied().unwrap_or(0)
    }

    /// Checks a record whose chain verified: where a checkpoint sealed its sequence number, it must be
    /// the record sealed ([`ChainProblem::Rewritten`]). Counts it as sealed or not.
    pub(super) fn check(
        &mut self,
        record: &AuditEvent,
        location: impl FnOnce() -> Location,
    ) -> Result<(), ChainProblem> {
        let seals = &self.seals;
        if let Some((hash, checkpoint)) = seals.at.get(&record.stream).and_then(|at| at.get(&record.sequence))
            && *hash != record.hash
        {
            return Err(ChainProblem::Rewritten {
                location: location(),
                stream: record.stream.clone(),
                sequence: record.sequence,
                checkpoint: *checkpoint,
            });
        }
        if seals.last_sealed.get(&record.stream).is_some_and(|(sequence, _)| record.sequence <= *sequence) {
            self.sealed += 1;
        } else {
            self.unsealed += 1;
        }
        match self.records.get_mut(&record.stream) {
            Some(count) => *count += 1,
            None => {
                self.records.insert(record.stream.clone(), 1);
            }
        }
        Ok(())
    }

    /// Once every record is checked: each stream reaches the last record its checkpoints seal
    /// ([`ChainProblem::CutEnd`]), where `reached` gives the last record of a stream accounted for (present,
    /// or removed by policy; -1 for none), and every stream with records has a checkpoint
    /// ([`ChainProblem::Unsealed`]).
    pub(super) fn check_end(&self, reached: impl Fn(&str) -> i128) -> Result<(), ChainProblem> {
        let mut streams: Vec<(&String, &(u64, u64))> = self.seals.last_sealed.iter().collect();
        streams.sort();
        for (stream, (sealed, checkpoint)) in streams {
            let last = reached(stream);
            if last < i128::from(*sealed) {
                return Err(ChainProblem::CutEnd {
                    stream: stream.clone(),
                    last,
                    sealed: *sealed,
                    checkpoint: *checkpoint,
                });
            }
        }
        let mut unsealed: Vec<(&String, &u64)> =
            self.records.iter().filter(|(stream, _)| !self.seals.streams.contains(stream.as_str())).collect();
        unsealed.sort();
        if let Some((stream, records)) = unsealed.first() {
            return Err(ChainProblem::Unsealed { stream: (*stream).clone(), records: **records });
        }
        Ok(())
    }

    /// Puts the counts of checkpoints, sealed and unsealed records into `verification`.
    pub(super) fn count_into(&self, verification: &mut Verification) {
        verification.checkpoints = self.seals.count;
        verification.sealed = self.sealed;
        verification.unsealed = self.unsealed;
    }
}

/// What the signed checkpoints say, once each is verified.
#[derive(Debug, Default)]
pub(super) struct Seals {
    /// Checkpoints read.
    count: u64,
    /// For each checkpoint chain read (a file is one, a table holds one per signer), the index and the
    /// `prev_checkpoint` of the checkpoint that comes next.
    chains: HashMap<String, (u64, String)>,
    /// The runs of records removed by policy from within a stream (a month partition dropped).
    runs: HashMap<String, Vec<RemovedRun>>,
    /// The hash sealed for a stream's sequence number, and the checkpoint that sealed it.
    at: HashMap<String, HashMap<u64, (String, u64)>>,
    /// The last sequence number sealed per stream, and its checkpoint.
    last_sealed: HashMap<String, (u64, u64)>,
    /// The first record kept per stream after removals by policy.
    first_kept: HashMap<String, u64>,
    /// Streams with any checkpoint.
    streams: HashSet<String>,
}

impl Seals {
    /// Reads and verifies the checkpoint file, one chain; a missing file holds no checkpoint.
    pub(super) fn read(&mut self, path: &Path, keys: &[AuditPublicKey]) -> io::Result<Result<(), ChainProblem>> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Ok(())),
            Err(error) => return Err(error),
        };
        let mut reader = BufReader::new(file);
        let mut buffer = Vec::new();
        let chain = format!("file {}", path.display());
        let mut line_number = 0_u64;
        loop {
            let line = files::read_line(&mut reader, &mut buffer, files::MAX_LINE_BYTES)?;
            line_number += 1;
            let location = || format!("{}:{line_number}", path.display());
            let complete = match line {
                Line::End => return Ok(Ok(())),
                Line::TooLong(length) => {
                    return Ok(Err(ChainProblem::Checkpoint {
                        location: location(),
                        reason: format!("not a checkpoint: a line of {length} bytes"),
                    }));
                }
                Line::Read { complete } => complete,
            };
            let checkpoint: Checkpoint = match serde_json::from_slice(buffer.trim_ascii_end()) {
                Ok(checkpoint) => checkpoint,
                // A last line cut short by a crash was never a checkpoint; the writer sets it aside.
                Err(_) if !complete => return Ok(Ok(())),
                Err(error) => {
                    return Ok(Err(ChainProblem::Checkpoint {
                        location: location(),
                        reason: format!("not a checkpoint: {error}"),
                    }));
                }
            };
            if let Err(reason) = self.add(&chain, checkpoint, keys) {
                return Ok(Err(ChainProblem::Checkpoint { location: location(), reason }));
            }
        }
    }

    /// Verifies the next checkpoint of `chain` and takes in what it seals.
    pub(super) fn add(&mut self, chain: &str, checkpoint: Checkpoint, keys: &[AuditPublicKey]) -> Result<(), String> {
        let index = checkpoint.index;
        let next = self.chains.entry(chain.to_owned()).or_insert_with(|| (0, GENESIS_HASH.to_owned()));
        if index != next.0 {
            return Err(format!(
                "checkpoint #{index} where #{} should come next: checkpoints were removed, inserted or reordered",
                next.0
            ));
        }
        let Some(key) = keys.iter().find(|key| key.key_id() == checkpoint.key_id) else {
            let given: Vec<&str> = keys.iter().map(AuditPublicKey::key_id).collect();
            return Err(format!(
                "checkpoint #{index} is signed with key {}, which is not among the public keys given ({})",
                checkpoint.key_id,
                given.join(", ")
            ));
        };
        if !checkpoint.is_signed_by(key) {
            return Err(format!(
                "the signature of checkpoint #{index} does not verify with key {}: the checkpoint was altered or forged",
                checkpoint.key_id
            ));
        }
        if checkpoint.prev_checkpoint != next.1 {
            return Err(format!(
                "checkpoint #{index} does not follow the checkpoint before it: the checkpoint chain was broken"
            ));
        }
        *next = (index + 1, checkpoint.hash());
        self.count += 1;
        for removed in &checkpoint.removed {
            if let Some(run) = &removed.run {
                self.runs.entry(removed.stream.clone()).or_default().push(run.clone());
            } else {
                let first_kept = self.first_kept.entry(removed.stream.clone()).or_insert(0);
                *first_kept = (*first_kept).max(removed.first_kept);
            }
        }
        let Checkpoint { stream, sequence, hash, .. } = checkpoint;
        if stream.is_empty() {
            return Ok(());
        }
        if let (Some(sequence), Some(hash)) = (sequence, hash) {
            let at = self.at.entry(stream.clone()).or_default();
            if let Some((earlier, by)) = at.get(&sequence)
                && *earlier != hash
            {
                return Err(format!(
                    "checkpoint #{index} seals another hash for record {sequence} of stream {stream} than checkpoint #{by}"
                ));
            }
            at.insert(sequence, (hash, index));
            let last = self.last_sealed.entry(stream.clone()).or_insert((sequence, index));
            if sequence >= last.0 {
                *last = (sequence, index);
            }
        }
        self.streams.insert(stream);
        Ok(())
    }
}
