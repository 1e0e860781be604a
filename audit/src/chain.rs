//! Hash chains: each record carries the SHA-256 of its canonical JSON, which covers the previous
//! record's hash, so an edit, a deletion or a reordering breaks the chain where it happened.
//!
//! The canonical JSON of a record is its JSON object without `hash`: the fields in declaration order,
//! compact, with the keys of every object inside `details` sorted, and the timestamp with six fractional
//! digits. It is what the JSONL sink writes (then `hash` appended as the last key), and what a verifier
//! rebuilds from a record read back from a file or from `PostgreSQL`.

use std::fmt::Write as _;
use std::net::IpAddr;

use sha2::{Digest, Sha256};

use super::event::{AuditEvent, timestamp};
use hardened_core::support::{needs_json_escaping, push_hex};

/// The `prev_hash` of a stream's first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An event placed in its stream: sequence, previous hash and hash filled in, with its JSON line.
#[derive(Debug, Clone, PartialEq)]
pub struct SealedEvent {
    event: AuditEvent,
    json: String,
}

impl SealedEvent {
    /// The event, with `stream`, `sequence`, `prev_hash` and `hash` set.
    #[must_use]
    pub fn event(&self) -> &AuditEvent {
        &self.event
    }

    /// The event as one line of JSON (no newline): its canonical JSON with `hash` as the last key.
    #[must_use]
    pub fn json(&self) -> &str {
        &self.json
    }

    /// The room of the record's strings, for the next record the writer seals: reused rather than freed,
    /// so that sealing allocates nothing once the writer has a batch's worth.
    pub(crate) fn into_room(self) -> RecordRoom {
        let SealedEvent { event, json } = self;
        RecordRoom { line: json, stream: event.stream, prev_hash: event.prev_hash, hash: event.hash }
    }

    /// A record and its JSON line as written, trusted as they are (read back from a spill file).
    pub(crate) fn from_parts(event: AuditEvent, json: String) -> SealedEvent {
        SealedEvent { event, json }
    }

    /// Takes a record read back whole: checks that its hash is the hash of its canonical JSON, or says it
    /// was altered, at `location`.
    pub(crate) fn verified(
        event: AuditEvent,
        location: impl FnOnce() -> Location,
    ) -> Result<SealedEvent, ChainProblem> {
        let mut hash = String::new();
        let json = seal_json(&event, String::new(), &mut hash);
        if hash == event.hash {
            Ok(SealedEvent { event, json })
        } else {
            Err(ChainProblem::Altered { location: location(), stream: event.stream, sequence: event.sequence })
        }
    }
}

/// The strings a record gets when it is sealed (its JSON line, stream, previous hash and hash), emptied
/// and refilled: the room of a delivered record, given to the next.
#[derive(Debug, Default)]
pub(crate) struct RecordRoom {
    line: String,
    stream: String,
    prev_hash: String,
    hash: String,
}

impl RecordRoom {
    /// The bytes the record's JSON line has room for, the largest of its strings.
    pub(crate) fn line_capacity(&self) -> usize {
        self.line.capacity()
    }
}

/// The position of a writer in its stream.
#[derive(Debug, Clone)]
pub(crate) struct Chain {
    stream: String,
    next_sequence: u64,
    prev_hash: String,
}

impl Chain {
    /// A new stream.
    pub(crate) fn new(stream: String) -> Chain {
        Chain { stream, next_sequence: 0, prev_hash: GENESIS_HASH.to_owned() }
    }

    /// A stream that goes on after record `last_sequence`, whose hash is `last_hash`.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code, reason = "transactional writes resume a stream"))]
    pub(crate) fn resume(stream: String, last_sequence: u64, last_hash: String) -> Chain {
        Chain { stream, next_sequence: last_sequence + 1, prev_hash: last_hash }
    }

    /// The stream's name.
    pub(crate) fn stream(&self) -> &str {
        &self.stream
    }

    /// The last record placed: its sequence number and hash.
    pub(crate) fn head(&self) -> Option<(u64, &str)> {
        self.next_sequence.checked_sub(1).map(|sequence| (sequence, self.prev_hash.as_str()))
    }

    /// Places `event` next in the stream. (The pipeline's writer seals into kept rooms instead.)
    #[cfg(any(test, feature = "postgres", feature = "testing"))]
    pub(crate) fn seal(&mut self, event: AuditEvent) -> SealedEvent {
        self.seal_into(event, RecordRoom::default())
    }

    /// Places `event` next in the stream, writing its strings into `room`, whose allocations are reused.
    pub(crate) fn seal_into(&mut self, mut event: AuditEvent, room: RecordRoom) -> SealedEvent {
        let RecordRoom { line, mut stream, prev_hash: spare_hash, mut hash } = room;
        // Here every path into the trail meets: fields set directly are bounded too.
        event.bound();
        stream.clone_from(&self.stream);
        event.stream = stream;
        event.sequence = self.next_sequence;
        // The previous hash moves into the record; the chain keeps this one's in the spare room.
        event.prev_hash = std::mem::replace(&mut self.prev_hash, spare_hash);
        let json = seal_json(&event, line, &mut hash);
        self.prev_hash.clone_from(&hash);
        self.next_sequence += 1;
        event.hash = hash;
        SealedEvent { event, json }
    }
}

/// Seals `events` as records 0, 1, ... of a new stream, as the pipeline's writer would: for tests and
/// benchmarks of sinks, which take sealed events.
#[cfg(feature = "testing")]
pub fn seal_stream(stream: &str, events: impl IntoIterator<Item = AuditEvent>) -> Vec<SealedEvent> {
    let mut chain = Chain::new(stream.to_owned());
    events.into_iter().map(|event| chain.seal(event)).collect()
}

/// The JSON line of `event` with its hash, written into `line` (emptied); the hash of `event` (ignoring
/// its `hash` field) into `hash` (emptied).
fn seal_json(event: &AuditEvent, mut line: String, hash: &mut String) -> String {
    line.clear();
    // Room for a typical record and its hash, so that the line is not copied as it grows.
    line.reserve(1024);
    write_canonical(&mut line, event);
    hash.clear();
    push_hex(hash, &Sha256::digest(line.as_bytes()));
    line.pop(); // the closing brace
    line.push_str(r#","hash":""#);
    line.push_str(hash);
    line.push_str(r#""}"#);
    line
}

/// Writes `event` in canonical form, without its hash, as `serde_json` writes the record's fields in
/// declaration order (the tests hold the two equal byte for byte). Written field by field into a
/// `String`: the identifiers and hashes that fill most of a record need no escaping, which [`write_str`]
/// sees in one pass where `serde_json` looks at each byte in turn, and text written as text needs no
/// check that the line is UTF-8 at the end.
fn write_canonical(out: &mut String, event: &AuditEvent) {
    out.push_str(r#"{"id":""#);
    out.push_str(event.id.hyphenated().encode_lower(&mut uuid::Uuid::encode_buffer()));
    out.push_str(r#"","timestamp":""#);
    timestamp::push_rfc3339(out, &event.timestamp);
    out.push_str(r#"","event_type":"#);
    write_str(out, event.event_type.as_str());
    out.push_str(r#","service":"#);
    write_str(out, &event.service);
    out.push_str(r#","user_id":"#);
    write_optional_str(out, event.user_id.as_deref());
    out.push_str(r#","session_id":"#);
    write_optional_str(out, event.session_id.as_deref());
    out.push_str(r#","ip_address":"#);
    write_ip_address(out, event.ip_address);
    out.push_str(r#","resource":"#);
    write_optional_str(out, event.resource.as_deref());
    out.push_str(r#","details":"#);
    write_object(out, &event.details);
    out.push_str(r#","outcome":"#);
    write_str(out, event.outcome.as_str());
    out.push_str(r#","outcome_details":"#);
    write_optional_str(out, event.outcome_details.as_deref());
    out.push_str(r#","trace_id":"#);
    write_optional_str(out, event.trace_id.as_deref());
    out.push_str(r#","span_id":"#);
    write_optional_str(out, event.span_id.as_deref());
    out.push_str(r#","stream":"#);
    write_str(out, &event.stream);
    out.push_str(r#","sequence":"#);
    write_number(out, &event.sequence);
    out.push_str(r#","prev_hash":"#);
    write_str(out, &event.prev_hash);
    out.push('}');
}

/// An address as serde writes one for a human-readable format: its `Display`, which needs no escaping;
/// an IPv4 address's four numbers without `fmt`, which takes a `write!` a number.
fn write_ip_address(out: &mut String, address: Option<IpAddr>) {
    match address {
        Some(IpAddr::V4(address)) => {
            out.push('"');
            for (index, octet) in address.octets().iter().enumerate() {
                if index > 0 {
                    out.push('.');
                }
                write_number(out, octet);
            }
            out.push('"');
        }
        Some(address @ IpAddr::V6(_)) => {
            let _ = write!(out, "\"{address}\"");
        }
        None => out.push_str("null"),
    }
}

/// A string as `serde_json` writes it: as it is between quotes when no byte of it needs escaping (a
/// control character, a quote, a backslash), else through `serde_json`.
fn write_str(out: &mut String, text: &str) {
    if needs_json_escaping(text) {
        out.push_str(&serde_json::to_string(text).expect("a string always serializes"));
    } else {
        out.push('"');
        out.push_str(text);
        out.push('"');
    }
}

/// An optional string as `serde_json` writes it: `null` or the string.
fn write_optional_str(out: &mut String, text: Option<&str>) {
    match text {
        Some(text) => write_str(out, text),
        None => out.push_str("null"),
    }
}

/// A number as `serde_json` writes it, through a buffer on the stack: its integer and float formatting,
/// without the `fmt` machinery a `write!` into the line would go through (a third of the seal's cost
/// of a number).
fn write_number<T: serde::Serialize + ?Sized>(out: &mut String, number: &T) {
    let mut digits = Digits { bytes: [0; 40], len: 0 };
    serde_json::to_writer(&mut digits, number).expect("a number is written in at most 40 bytes");
    out.push_str(std::str::from_utf8(digits.written()).expect("a number is written in ASCII"));
}

/// Room on the stack for a number as JSON: an integer takes at most 20 bytes, a float's shortest form 24.
struct Digits {
    bytes: [u8; 40],
    len: usize,
}

impl Digits {
    fn written(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl std::io::Write for Digits {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let end = self.len + buf.len();
        let room = self.bytes.get_mut(self.len..end).ok_or(std::io::ErrorKind::WriteZero)?;
        room.copy_from_slice(buf);
        self.len = end;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A JSON object with its keys sorted, whatever order the map keeps them in, and its values canonical.
fn write_object(out: &mut String, object: &serde_json::Map<String, serde_json::Value>) {
    out.push('{');
    let mut write_entry = |index: usize, key: &str, value: &serde_json::Value| {
        if index > 0 {
            out.push(',');
        }
        write_str(out, key);
        out.push(':');
        write_value(out, value);
    };
    // A map that keeps its keys sorted (serde_json's default) is written as it is.
    if object.keys().is_sorted() {
        for (index, (key, value)) in object.iter().enumerate() {
            write_entry(index, key, value);
        }
    } else {
        let mut entries: Vec<_> = object.iter().collect();
        entries.sort_unstable_by_key(|(key, _)| *key);
        for (index, (key, value)) in entries.into_iter().enumerate() {
            write_entry(index, key, value);
        }
    }
    out.push('}');
}

/// A JSON value as `serde_json` writes it, with the keys of its objects sorted and its whole floats
/// written as integers.
fn write_value(out: &mut String, value: &serde_json::Value) {
    match value {
        serde_json::Value::Null => out.push_str("null"),
        serde_json::Value::Bool(true) => out.push_str("true"),
        serde_json::Value::Bool(false) => out.push_str("false"),
        serde_json::Value::Number(number) => match number.as_f64() {
            // A whole float is written as the integer it equals, as PostgreSQL's jsonb gives it back
            // (`2.0`, `1e16` and `-0.0` read back as `2`, `10000000000000000` and `0`).
            Some(float) if !number.is_i64() && !number.is_u64() && float.fract() == 0.0 => {
                write_number(out, whole(float).as_ref().unwrap_or(number));
            }
            _ => write_number(out, number),
        },
        serde_json::Value::String(text) => write_str(out, text),
        serde_json::Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        serde_json::Value::Object(object) => write_object(out, object),
    }
}

/// A whole float as an integer, when one can hold it exactly.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "the range is checked first")]
fn whole(float: f64) -> Option<serde_json::Number> {
    const TWO_TO_THE_64: f64 = 18_446_744_073_709_551_616.0;
    if float < 0.0 && float >= i64::MIN as f64 {
        Some((float as i64).into())
    } else if (0.0..TWO_TO_THE_64).contains(&float) || float == 0.0 {
        Some((float as u64).into())
    } else {
        None
    }
}

/// Where a record was read from, for reports: a file and line, or a database row.
pub type Location = String;

/// The first thing wrong with a log, as a verifier finds it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainProblem {
    /// A record could not be read as an audit event.
    #[error("{location}: not an audit record: {reason}")]
    Malformed {
        /// Where.
        location: Location,
        /// What the parser said.
        reason: String,
    },
    /// A record's content does not match its hash: it was edited.
    #[error("{location}: record {sequence} of stream {stream} was altered: its hash does not match its content")]
    Altered {
        /// Where.
        location: Location,
        /// The stream.
        stream: String,
        /// Its sequence number as written.
        sequence: u64,
    },
    /// Records are missing before this one: its sequence number skips ahead.
    #[error("{location}: stream {stream} is missing records {expected}..{found} before this one")]
    Missing {
        /// Where.
        location: Location,
        /// The stream.
        stream: String,
        /// The sequence number that should have come next.
        expected: u64,
        /// The sequence number found.
        found: u64,
    },
    /// A record is out of order: its sequence number goes back, or repeats.
    #[error("{location}: stream {stream} is out of order: record {found} where {expected} should come next")]
    Reordered {
        /// Where.
        location: Location,
        /// The stream.
        stream: String,
        /// The sequence number that should have come next.
        expected: u64,
        /// The sequence number found.
        found: u64,
    },
    /// A record's `prev_hash` is not the hash of the record before it.
    #[error("{location}: record {sequence} of stream {stream} does not follow the record before it")]
    BrokenLink {
        /// Where.
        location: Location,
        /// The stream.
        stream: String,
        /// Its sequence number.
        sequence: u64,
    },
    /// The log ends before the last record its writer recorded as written.
    #[error("stream {stream} ends at record {last}, but its writer recorded {head} as written: the end was removed")]
    Truncated {
        /// The stream.
        stream: String,
        /// The last sequence number present, if any record of the stream is.
        last: i128,
        /// The last sequence number the writer recorded.
        head: u64,
    },
    /// A record is not the one the head file names: same sequence number, another hash.
    #[error(
        "{location}: record {sequence} of stream {stream} is not the record the head file names (their hashes \
         differ): the log was rewritten"
    )]
    HeadMismatch {
        /// Where.
        location: Location,
        /// The stream.
        stream: String,
        /// Its sequence number.
        sequence: u64,
    },
    /// A checkpoint is malformed, not signed by any of the public keys given, or out of the checkpoint
    /// chain.
    #[error("{location}: {reason}")]
    Checkpoint {
        /// Where: the checkpoint file and line.
        location: Location,
        /// What is wrong with it.
        reason: String,
    },
    /// A record is not the one a signed checkpoint sealed: it, or a record before it, was rewritten and
    /// the hashes after it recomputed.
    #[error(
        "{location}: record {sequence} of stream {stream} is not the record signed checkpoint #{checkpoint} \
         sealed (their hashes differ): it or a record before it was rewritten and the later hashes recomputed"
    )]
    Rewritten {
        /// Where.
        location: Location,
        /// The stream.
        stream: String,
        /// Its sequence number.
        sequence: u64,
        /// The checkpoint that sealed it.
        checkpoint: u64,
    },
    /// A stream begins past the records its signed checkpoints say were removed by policy.
    #[error(
        "{location}: stream {stream} begins at record {found}, but no signed checkpoint records the removal of \
         records {expected}..{found} by policy (rotation or retention): they were cut"
    )]
    Cut {
        /// Where.
        location: Location,
        /// The stream.
        stream: String,
        /// The first record the checkpoints allow to be missing no more: 0, or the first kept by policy.
        expected: u64,
        /// The sequence number of its first record.
        found: u64,
    },
    /// The log ends before a record a signed checkpoint sealed.
    #[error(
        "stream {stream} ends at record {last}, but signed checkpoint #{checkpoint} seals record {sealed}: the end \
         was removed"
    )]
    CutEnd {
        /// The stream.
        stream: String,
        /// The last sequence number present (-1 when no record of the stream is).
        last: i128,
        /// The sequence number sealed.
        sealed: u64,
        /// The checkpoint.
        checkpoint: u64,
    },
    /// A stream has records and no signed checkpoint at all, not even the one its writer signs at start.
    #[error(
        "stream {stream} has {records} records but no signed checkpoint: its checkpoints were removed, or it was \
         not written with a signing key"
    )]
    Unsealed {
        /// The stream.
        stream: String,
        /// Its records in the log.
        records: u64,
    },
}

/// What a verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// Records read.
    pub records: u64,
    /// Streams seen.
    pub streams: usize,
    /// The first problem, if any; `None` means every record is intact and in place.
    pub problem: Option<ChainProblem>,
    /// A last line cut short (a writer stopped mid-write): reported, not counted as a problem, since the
    /// record on it was never acknowledged as written.
    pub torn_tail: Option<Location>,
    /// Signed checkpoints verified (0 without public keys).
    pub checkpoints: u64,
    /// Records sealed by a signed checkpoint: at or before the last record of their stream a checkpoint
    /// sealed.
    pub sealed: u64,
    /// Records after the last checkpoint of their stream: intact as a chain, but a forger could have cut
    /// or rewritten them (at most the checkpoint interval's N records or T seconds per stream).
    pub unsealed: u64,
}

impl Verification {
    /// Whether the log verified.
    #[must_use]
    pub fn is_intact(&self) -> bool {
        self.problem.is_none()
    }
}

/// The state of a streaming verification: feed records in log order.
#[derive(Debug, Default)]
pub(crate) struct ChainVerifier {
    streams: std::collections::HashMap<String, (u64, String)>,
    records: u64,
    /// A stream that skipped ahead: the records skipped are missing, unless the stream's next record is
    /// one of them, which makes the skip a reordering.
    gap: Option<ChainProblem>,
}

impl ChainVerifier {
    /// Checks the next record. `may_start_late` allows a stream's first record here to have a sequence
    /// number past 0 (its earlier records rotated out of the files kept).
    pub(crate) fn push(
        &mut self,
        event: AuditEvent,
        location: impl Fn() -> Location,
        may_start_late: bool,
    ) -> Result<SealedEvent, ChainProblem> {
        self.records += 1;
        if let Some(ChainProblem::Missing { location: gap_at, stream, expected, found }) = self.gap.take() {
            if stream != event.stream {
                self.gap = Some(ChainProblem::Missing { location: gap_at, stream, expected, found });
            } else if event.sequence < found {
                return Err(ChainProblem::Reordered { location: gap_at, stream, expected, found });
            } else {
                return Err(ChainProblem::Missing { location: gap_at, stream, expected, found });
            }
        }
        let sealed = SealedEvent::verified(event, &location)?;
        let event = sealed.event();
        match self.streams.get_mut(&event.stream) {
            None => {
                let anchored = event.sequence == 0 && event.prev_hash == GENESIS_HASH;
                if !anchored && !may_start_late {
                    return Err(if event.sequence == 0 {
                        ChainProblem::BrokenLink { location: location(), stream: event.stream.clone(), sequence: 0 }
                    } else {
                        ChainProblem::Missing {
                            location: location(),
                            stream: event.stream.clone(),
                            expected: 0,
                            found: event.sequence,
                        }
                    });
                }
                self.streams.insert(event.stream.clone(), (event.sequence + 1, event.hash.clone()));
            }
            Some((next, prev_hash)) => {
                let (expected, found) = (*next, event.sequence);
                let stream = || event.stream.clone();
                if found > expected {
                    self.gap = Some(ChainProblem::Missing { location: location(), stream: stream(), expected, found });
                    *next = found + 1;
                    prev_hash.clone_from(&event.hash);
                    return Ok(sealed);
                }
                if found < expected {
                    return Err(ChainProblem::Reordered { location: location(), stream: stream(), expected, found });
                }
                if event.prev_hash != *prev_hash {
                    return Err(ChainProblem::BrokenLink { location: location(), stream: stream(), sequence: found });
                }
                *next = found + 1;
                prev_hash.clone_from(&event.hash);
            }
        }
        Ok(sealed)
    }

    /// Whether a record of `stream` was seen.
    pub(crate) fn knows(&self, stream: &str) -> bool {
        self.streams.contains_key(stream)
    }

    /// Every stream seen, with the sequence number of its last record.
    pub(crate) fn last_records(&self) -> impl Iterator<Item = (&str, u64)> {
        self.streams.iter().map(|(stream, (next, _))| (stream.as_str(), next - 1))
    }

    /// The end of the log: a skip that no later record explained is a gap.
    pub(crate) fn end(&mut self) -> Result<(), ChainProblem> {
        self.gap.take().map_or(Ok(()), Err)
    }

    /// Checks that `stream` reaches at least record `head`, as its writer recorded.
    pub(crate) fn check_head(&self, stream: &str, head: u64) -> Result<(), ChainProblem> {
        let last = self.streams.get(stream).map_or(-1, |(next, _)| i128::from(*next) - 1);
        if last < i128::from(head) {
            return Err(ChainProblem::Truncated { stream: stream.to_owned(), last, head });
        }
        Ok(())
    }

    /// The verification so far.
    pub(crate) fn finish(&self, problem: Option<ChainProblem>, torn_tail: Option<Location>) -> Verification {
        Verification {
            records: self.records,
            streams: self.streams.len(),
            problem,
            torn_tail,
            checkpoints: 0,
            sealed: 0,
            unsealed: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone as _, Utc};
    use serde::ser::{SerializeMap as _, SerializeStruct as _};
    use serde::{Serialize, Serializer};

    use super::{AuditEvent, whole, write_canonical};
    use crate::event::{AuditOutcome, EventType, timestamp};

    struct Timestamp<'a>(&'a chrono::DateTime<chrono::Utc>);

    impl Serialize for Timestamp<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            timestamp::serialize(self.0, serializer)
        }
    }

    /// JSON with the keys of every object sorted, whatever order the map keeps them in.
    enum Sorted<'a> {
        Object(&'a serde_json::Map<String, serde_json::Value>),
        Value(&'a serde_json::Value),
    }

    impl Serialize for Sorted<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            match self {
                // A map that keeps its keys sorted (serde_json's default) is written as it is.
                Sorted::Object(object) if object.keys().is_sorted() => {
                    serializer.collect_map(object.iter().map(|(key, value)| (key, Sorted::Value(value))))
                }
                Sorted::Object(object) => {
                    let mut entries: Vec<_> = object.iter().collect();
                    entries.sort_unstable_by_key(|(key, _)| *key);
                    let mut map = serializer.serialize_map(Some(entries.len()))?;
                    for (key, value) in entries {
                        map.serialize_entry(key, &Sorted::Value(value))?;
                    }
                    map.end()
                }
                Sorted::Value(serde_json::Value::Object(object)) => Sorted::Object(object).serialize(serializer),
                Sorted::Value(serde_json::Value::Array(items)) => {
                    serializer.collect_seq(items.iter().map(Sorted::Value))
                }
                Sorted::Value(serde_json::Value::Number(number)) => match number.as_f64() {
                    // A whole float is written as the integer it equals, as PostgreSQL's jsonb gives it back
                    // (`2.0`, `1e16` and `-0.0` read back as `2`, `10000000000000000` and `0`).
                    Some(float) if !number.is_i64() && !number.is_u64() && float.fract() == 0.0 => match whole(float) {
                        Some(whole) => whole.serialize(serializer),
                        None => number.serialize(serializer),
                    },
                    _ => number.serialize(serializer),
                },
                Sorted::Value(value) => value.serialize(serializer),
            }
        }
    }

    /// The canonical form as `serde_json` writes a struct of the record's fields without `hash`: what
    /// `write_canonical` must write byte for byte, or every chain written before would stop verifying.
    struct ThroughSerde<'a>(&'a AuditEvent);

    impl Serialize for ThroughSerde<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let event = self.0;
            let mut record = serializer.serialize_struct("AuditEvent", 16)?;
            record.serialize_field("id", &event.id)?;
            record.serialize_field("timestamp", &Timestamp(&event.timestamp))?;
            record.serialize_field("event_type", &event.event_type)?;
            record.serialize_field("service", &event.service)?;
            record.serialize_field("user_id", &event.user_id)?;
            record.serialize_field("session_id", &event.session_id)?;
            record.serialize_field("ip_address", &event.ip_address)?;
            record.serialize_field("resource", &event.resource)?;
            record.serialize_field("details", &Sorted::Object(&event.details))?;
            record.serialize_field("outcome", &event.outcome)?;
            record.serialize_field("outcome_details", &event.outcome_details)?;
            record.serialize_field("trace_id", &event.trace_id)?;
            record.serialize_field("span_id", &event.span_id)?;
            record.serialize_field("stream", &event.stream)?;
            record.serialize_field("sequence", &event.sequence)?;
            record.serialize_field("prev_hash", &event.prev_hash)?;
            record.end()
        }
    }

    fn canonical(event: &AuditEvent) -> String {
        let mut out = String::new();
        write_canonical(&mut out, event);
        out
    }

    #[test]
    fn the_canonical_form_is_what_serde_json_writes() {
        let texts = [
            "",
            "plain",
            "quote \" backslash \\ slash /",
            "line\nbreak\ttab\r\u{1}\u{1f}",
            "héllo ✓ 𝄞 \u{7f} \u{2028}",
        ];
        let mut events = vec![AuditEvent::new(EventType::Error)];
        for text in texts {
            let mut event = AuditEvent::new(EventType::named(format!("Custom {text}")))
                .user_id(text)
                .session_id(text)
                .resource(text)
                .outcome_details(text)
                .outcome(AuditOutcome::Denied)
                .ip_address("2001:db8::1".parse().expect("an address"))
                .detail(text, text)
                .detail("number", 2.0)
                .detail("nested", serde_json::json!({"z": [1, 2.5, null, {"b": text, "a": true}], "a": -0.0}))
                .detail(
                    "numbers",
                    serde_json::json!([
                        u64::MAX,
                        i64::MIN,
                        -7,
                        1e16,
                        1.5e300,
                        0.1,
                        -1.25e-7,
                        18_446_744_073_709_551_616.0,
                        -9.3e18,
                        -1e19,
                        123_456_789.0,
                        f64::MAX,
                        f64::MIN_POSITIVE,
                        [[[false]]],
                        {}
                    ]),
                );
            event.service = text.to_owned().into();
            event.trace_id = Some(text.to_owned());
            event.span_id = Some(text.to_owned());
            event.stream = text.to_owned();
            event.prev_hash = text.to_owned();
            event.sequence = u64::MAX;
            events.push(event);
        }
        for address in
            ["0.0.0.0", "255.255.255.255", "10.200.3.45", "::", "::ffff:192.0.2.1", "2001:db8::8a2e:370:7334"]
        {
            events.push(AuditEvent::new(EventType::UserMessage).ip_address(address.parse().expect("an address")));
        }
        let mut event = AuditEvent::new(EventType::UserMessage).ip_address("203.0.113.9".parse().expect("an address"));
        event.timestamp = Utc.with_ymd_and_hms(2026, 12, 7, 9, 5, 7).single().expect("a date");
        events.push(event);
        for event in &events {
            let expected = serde_json::to_string(&ThroughSerde(event)).expect("serializes");
            assert_eq!(canonical(event), expected);
        }
    }

    #[test]
    fn records_written_before_the_canonical_form_was_written_by_hand_still_verify() {
        // Written by the seal of the release before, which serialized the record through `serde_json`.
        let lines = [
            r#"{"id":"01a251c1-ce40-779d-9434-82f40a80f19a","timestamp":"2026-12-07T18:26:25.472893Z","event_type":"ToolExecution","service":"agent-server","user_id":"developer","session_id":"01a251c1-c4de-71c7-80b8-36be1a066ee1","ip_address":"127.0.0.1","resource":"clock","details":{"call_outcome":"ok","duration_ms":3.3166290000000003},"outcome":"Success","outcome_details":null,"trace_id":"095646342e4422d4aab0e5564ccc66f9","span_id":"ed23ca63e8f73b39","stream":"agent-server/vm:49081/01a251c1-c067-70e6-b07a-2652250360b6","sequence":101,"prev_hash":"3ef620f5a454073b801f1494540a1bb15dccfdc6aa22f26eb8a251d77e07fb57","hash":"6bd4b3aa31b51826ed7d8bee7c5a5ed336abd6d4488261e75121e3593b231b4d"}"#,
            r#"{"id":"01a251c1-c39d-734d-a977-e1058d0feecd","timestamp":"2026-12-07T18:26:22.749459Z","event_type":"SessionStart","service":"agent-server","user_id":"developer","session_id":"01a251c1-c399-747e-9d35-4e0369e2e28a","ip_address":"127.0.0.1","resource":"session","details":{},"outcome":"Success","outcome_details":null,"trace_id":"4aa056f8cc30535530a9b3413262b2d6","span_id":"3f1d18d88fec0402","stream":"agent-server/vm:49081/01a251c1-c067-70e6-b07a-2652250360b6","sequence":1,"prev_hash":"76c748c9e6c3241f4ab016fe2b4c6818af12693ce33b2ec0320b3df9d9af5f36","hash":"e5437b4b34625493700b124ca67176856606bf89b2c0563618799039dfe43a39"}"#,
        ];
        for line in lines {
            let event: AuditEvent = serde_json::from_str(line).expect("a record");
            let sealed = super::SealedEvent::verified(event, || "line".to_owned()).expect("its hash verifies");
            assert_eq!(sealed.json(), line, "and it is written again byte for byte");
        }
        let altered = lines[0].replace("3.3166290000000003", "3.316629");
        let event: AuditEvent = serde_json::from_str(&altered).expect("a record");
        assert!(super::SealedEvent::verified(event, || "line".to_owned()).is_err(), "an altered detail does not");
    }
}
