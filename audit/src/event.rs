//! The audit event: who did what, when, with what outcome, and where it sits in its hash chain.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use super::context;

pub(crate) mod bounds;

/// The details of an event: a JSON object.
pub type Details = serde_json::Map<String, serde_json::Value>;

/// What kind of thing happened.
///
/// Serialized as its name (`"ToolExecution"`); a name that is none of the built-in ones is a
/// [`EventType::Custom`] event type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EventType {
    /// A user session began.
    SessionStart,
    /// A user session ended.
    SessionEnd,
    /// A user sent a message.
    UserMessage,
    /// The agent answered.
    AgentResponse,
    /// A tool ran.
    ToolExecution,
    /// Someone tried to authenticate.
    AuthenticationAttempt,
    /// An authorization decision was made.
    AuthorizationCheck,
    /// The configuration changed.
    ConfigurationChange,
    /// A guard changed state on its own: a circuit breaker opened, half-opened or closed.
    GuardTransition,
    /// Something failed.
    Error,
    /// An event type of the application's own.
    Custom(Cow<'static, str>),
}

impl EventType {
    /// Every built-in event type.
    pub const BUILT_IN: [EventType; 10] = [
        EventType::SessionStart,
        EventType::SessionEnd,
        EventType::UserMessage,
        EventType::AgentResponse,
        EventType::ToolExecution,
        EventType::AuthenticationAttempt,
        EventType::AuthorizationCheck,
        EventType::ConfigurationChange,
        EventType::GuardTransition,
        EventType::Error,
    ];

    /// The event type with this name: a built-in one if the name is one of theirs, else a custom one.
    /// A name longer than [`AuditEvent::MAX_ID_BYTES`] is cut to it.
    #[must_use]
    pub fn named(name: impl Into<Cow<'static, str>>) -> EventType {
        let mut name = name.into();
        bounds::bound_cow(&mut name, bounds::MAX_ID_BYTES);
        // A match rather than a search of `BUILT_IN`, which would make (and drop) the ten values per call.
        match &*name {
            "SessionStart" => EventType::SessionStart,
            "SessionEnd" => EventType::SessionEnd,
            "UserMessage" => EventType::UserMessage,
            "AgentResponse" => EventType::AgentResponse,
            "ToolExecution" => EventType::ToolExecution,
            "AuthenticationAttempt" => EventType::AuthenticationAttempt,
            "AuthorizationCheck" => EventType::AuthorizationCheck,
            "ConfigurationChange" => EventType::ConfigurationChange,
            "GuardTransition" => EventType::GuardTransition,
            "Error" => EventType::Error,
            _ => EventType::Custom(name),
        }
    }

    /// The event type's place in [`EventType::BUILT_IN`]; `None` for a custom one.
    pub(crate) fn built_in_index(&self) -> Option<usize> {
        Some(match self {
            EventType::SessionStart => 0,
            EventType::SessionEnd => 1,
            EventType::UserMessage => 2,
            EventType::AgentResponse => 3,
            EventType::ToolExecution => 4,
            EventType::AuthenticationAttempt => 5,
            EventType::AuthorizationCheck => 6,
            EventType::ConfigurationChange => 7,
            EventType::GuardTransition => 8,
            EventType::Error => 9,
            EventType::Custom(_) => return None,
        })
    }

    /// The event type's name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            EventType::SessionStart => "SessionStart",
            EventType::SessionEnd => "SessionEnd",
            EventType::UserMessage => "UserMessage",
            EventType::AgentResponse => "AgentResponse",
            EventType::ToolExecution => "ToolExecution",
            EventType::AuthenticationAttempt => "AuthenticationAttempt",
            EventType::AuthorizationCheck => "AuthorizationCheck",
            EventType::ConfigurationChange => "ConfigurationChange",
            EventType::GuardTransition => "GuardTransition",
            EventType::Error => "Error",
            EventType::Custom(name) => name,
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EventType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(EventType::named)
    }
}

/// How the audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AuditOutcome {
    /// It was done.
    Success,
    /// It was attempted and failed.
    Failure,
    /// It was refused: by an authorization check, or by a guard (open breaker, rate limit, full bulkhead).
    Denied,
}

impl AuditOutcome {
    /// Every outcome.
    pub const ALL: [AuditOutcome; 3] = [AuditOutcome::Success, AuditOutcome::Failure, AuditOutcome::Denied];

    /// The outcome's name, as serialized.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Success => "Success",
            AuditOutcome::Failure => "Failure",
            AuditOutcome::Denied => "Denied",
        }
    }
}

impl fmt::Display for AuditOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One audit record.
///
/// Build it with [`AuditEvent::new`] and the builder methods, then hand it to
/// [`emit`](super::emit). The pipeline fills `stream`, `sequence`, `prev_hash` and `hash` when it
/// writes the event out, in the order it writes.
///
/// ```
/// use hardened::audit::{AuditEvent, AuditOutcome, EventType};
///
/// let event = AuditEvent::new(EventType::AuthenticationAttempt)
///     .user_id("ada")
///     .ip_address("203.0.113.9".parse().unwrap())
///     .detail("method", "password")
///     .outcome(AuditOutcome::Failure);
/// assert_eq!(event.details["method"], "password");
/// ```
///
/// # Bounds
///
/// No field can make a record large: a string over its bound is cut on a character boundary and ends
/// with `…[truncated: N bytes]`, `N` its original length, the whole within the bound. Identifiers
/// (`user_id`, `session_id`, `service`, `trace_id`, `span_id`, a custom event type's name, the keys of
/// the details) hold at most [`MAX_ID_BYTES`](Self::MAX_ID_BYTES); `resource`, `outcome_details` and each
/// string in the details at most [`MAX_TEXT_BYTES`](Self::MAX_TEXT_BYTES). The details hold at most
/// [`MAX_DETAILS_ENTRIES`](Self::MAX_DETAILS_ENTRIES) values nested at most
/// [`MAX_DETAILS_DEPTH`](Self::MAX_DETAILS_DEPTH) levels deep, whose keys and strings add up to at most
/// [`MAX_DETAILS_BYTES`](Self::MAX_DETAILS_BYTES); what is left out is replaced by a marker that counts
/// it. The builder methods cut what they are given; the pipeline applies every bound when it seals the
/// record into its chain, so fields set directly are bounded too.
///
/// ```
/// use hardened::audit::{AuditEvent, EventType};
///
/// let event = AuditEvent::new(EventType::AuthenticationAttempt).resource("/".repeat(60_000));
/// let resource = event.resource.unwrap();
/// assert!(resource.len() <= AuditEvent::MAX_TEXT_BYTES);
/// assert!(resource.ends_with("…[truncated: 60000 bytes]"));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// `UUIDv7`: unique and ordered by creation time.
    pub id: Uuid,
    /// When the event was created, in UTC, to the microsecond (RFC 3339 in JSON).
    #[serde(with = "timestamp")]
    pub timestamp: DateTime<Utc>,
    /// What happened.
    pub event_type: EventType,
    /// The service that recorded it: the process's [`service_name`](crate::service_name), shared by its
    /// events rather than copied into each.
    pub service: Cow<'static, str>,
    /// Who did it.
    pub user_id: Option<String>,
    /// The session it belongs to.
    pub session_id: Option<String>,
    /// Where the request came from.
    pub ip_address: Option<IpAddr>,
    /// The function or resource acted on: borrowed when it is a name known at compile time (an audited
    /// function's), so that recording it copies nothing.
    pub resource: Option<Cow<'static, str>>,
    /// Anything else worth recording, after redaction.
    pub details: Details,
    /// How it ended.
    pub outcome: AuditOutcome,
    /// Why it ended so: the error message of a failure, the reason of a denial.
    pub outcome_details: Option<String>,
    /// The trace the event was recorded in (32 hex digits), to jump from the audit log to the trace.
    pub trace_id: Option<String>,
    /// The span the event was recorded in (16 hex digits).
    pub span_id: Option<String>,
    /// The hash chain this record belongs to: one per writer (process run).
    pub stream: String,
    /// Position in the stream, from 0.
    pub sequence: u64,
    /// The hash of the stream's previous record; 64 zeros for the first.
    pub prev_hash: String,
    /// SHA-256, in hex, of this record's canonical JSON without `hash` (see the `audit` module).
    pub hash: String,
}

/// The time an event is made, to the microsecond its records keep.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

impl AuditEvent {
    /// The most bytes of an identifier: `user_id`, `session_id`, `service`, `trace_id`, `span_id`, a
    /// custom event type's name, and each key of the details (1 KiB).
    pub const MAX_ID_BYTES: usize = bounds::MAX_ID_BYTES;
    /// The most bytes of `resource`, `outcome_details` and each string in the details (4 KiB).
    pub const MAX_TEXT_BYTES: usize = bounds::MAX_TEXT_BYTES;
    /// The most bytes of the details' keys and strings together (16 KiB).
    pub const MAX_DETAILS_BYTES: usize = bounds::MAX_DETAILS_BYTES;
    /// The most values in the details, counting those inside arrays and objects (256).
    pub const MAX_DETAILS_ENTRIES: usize = bounds::MAX_DETAILS_ENTRIES;
    /// The most levels of values in the details; a value directly in the details is at level 1 (8).
    pub const MAX_DETAILS_DEPTH: usize = bounds::MAX_DETAILS_DEPTH;

    /// A new event of `event_type`, now, with a fresh id, outcome `Success`, and the actor of the
    /// current [`scope`](super::scope) and the current trace if there are any.
    #[must_use]
    pub fn new(event_type: EventType) -> AuditEvent {
        AuditEvent::with_actor(event_type, context::AuditContext::default())
    }

    /// A new event as [`AuditEvent::new`] makes it, with the actor fields `actor` has, and those it lacks
    /// from the current scope: only those are copied from the scope.
    pub(crate) fn with_actor(event_type: EventType, actor: context::AuditContext) -> AuditEvent {
        // The scope is read only when the actor lacks a field.
        let scope = if actor.lacks_any() { context::shared() } else { None };
        let actor = match scope {
            Some(scope) => actor.or_from(&scope),
            None => actor,
        };
        AuditEvent::made(Uuid::now_v7(), now(), event_type, actor, super::trace::current())
    }

    /// An event of `event_type` made at `timestamp` with `id`, `actor` and `trace`, outcome `Success`,
    /// nothing else set: the one place the fields of a new event are chosen.
    pub(crate) fn made(
        id: Uuid,
        timestamp: DateTime<Utc>,
        event_type: EventType,
        actor: context::AuditContext,
        trace: Option<super::TraceIds>,
    ) -> AuditEvent {
        let context::AuditContext { user_id, session_id, ip_address } = actor;
        AuditEvent {
            id,
            timestamp,
            event_type,
            service: Cow::Borrowed(super::service_name()),
            user_id,
            session_id,
            ip_address,
            resource: None,
            details: Details::new(),
            outcome: AuditOutcome::Success,
            outcome_details: None,
            trace_id: trace.as_ref().map(super::TraceIds::trace_id_hex),
            span_id: trace.as_ref().map(super::TraceIds::span_id_hex),
            stream: String::new(),
            sequence: 0,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    /// Sets who did it, cut to [`MAX_ID_BYTES`](Self::MAX_ID_BYTES).
    #[must_use]
    pub fn user_id(mut self, user_id: impl Into<String>) -> Self {
        let mut user_id = user_id.into();
        bounds::bound_string(&mut user_id, bounds::MAX_ID_BYTES);
        self.user_id = Some(user_id);
        self
    }

    /// Sets the session, cut to [`MAX_ID_BYTES`](Self::MAX_ID_BYTES).
    #[must_use]
    pub fn session_id(mut self, session_id: impl Into<String>) -> Self {
        let mut session_id = session_id.into();
        bounds::bound_string(&mut session_id, bounds::MAX_ID_BYTES);
        self.session_id = Some(session_id);
        self
    }

    /// Sets where the request came from.
    #[must_use]
    pub fn ip_address(mut self, ip_address: IpAddr) -> Self {
        self.ip_address = Some(ip_address);
        self
    }

    /// Sets the function or resource acted on, cut to [`MAX_TEXT_BYTES`](Self::MAX_TEXT_BYTES).
    #[must_use]
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        let mut resource = resource.into();
        bounds::bound_string(&mut resource, bounds::MAX_TEXT_BYTES);
        self.resource = Some(Cow::Owned(resource));
        self
    }

    /// Adds one detail: the key cut to [`MAX_ID_BYTES`](Self::MAX_ID_BYTES), a string value to
    /// [`MAX_TEXT_BYTES`](Self::MAX_TEXT_BYTES). Arrays and objects are bounded when the record is
    /// sealed.
    #[must_use]
    pub fn detail(mut self, key: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        let mut key = key.into();
        bounds::bound_string(&mut key, bounds::MAX_ID_BYTES);
        let mut value = value.into();
        if let serde_json::Value::String(text) = &mut value {
            bounds::bound_string(text, bounds::MAX_TEXT_BYTES);
        }
        self.details.insert(key, value);
        self
    }

    /// Sets the outcome.
    #[must_use]
    pub fn outcome(mut self, outcome: AuditOutcome) -> Self {
        self.outcome = outcome;
        self
    }

    /// Sets why it ended so, cut to [`MAX_TEXT_BYTES`](Self::MAX_TEXT_BYTES).
    #[must_use]
    pub fn outcome_details(mut self, outcome_details: impl Into<String>) -> Self {
        let mut outcome_details = outcome_details.into();
        bounds::bound_string(&mut outcome_details, bounds::MAX_TEXT_BYTES);
        self.outcome_details = Some(outcome_details);
        self
    }

    /// Applies every [bound](AuditEvent#bounds) to the fields, however they were set: the pipeline does
    /// it when it seals the record into its chain. A record within its bounds is left as it is.
    pub fn bound(&mut self) {
        bounds::bound_event(self);
    }
}

/// Timestamps as RFC 3339 in UTC with exactly six fractional digits, so that a record read back (from
/// JSON or from `PostgreSQL`, which keeps microseconds) hashes as it was written.
pub(crate) mod timestamp {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(crate) fn serialize<S: Serializer>(timestamp: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
        with_text(timestamp, |text| serializer.serialize_str(text))
    }

    /// Appends the timestamp as [`serialize`] writes it, without the quotes.
    pub(crate) fn push_rfc3339(out: &mut String, timestamp: &DateTime<Utc>) {
        with_text(timestamp, |text| out.push_str(text));
    }

    /// Calls `write` with the timestamp's text: from a buffer on the stack for the years
    /// [`rfc3339_micros`] writes, from chrono's formatter for the rest.
    fn with_text<R>(timestamp: &DateTime<Utc>, write: impl FnOnce(&str) -> R) -> R {
        match rfc3339_micros(timestamp) {
            Some(text) => write(std::str::from_utf8(&text).unwrap_or_default()),
            None => write(&timestamp.to_rfc3339_opts(SecondsFormat::Micros, true)),
        }
    }

    /// `YYYY-MM-DDTHH:MM:SS.ffffffZ` without allocating, for years 0 to 9999 (the rest go through
    /// chrono's formatter, which writes the same for these).
    fn rfc3339_micros(timestamp: &DateTime<Utc>) -> Option<[u8; 27]> {
        use chrono::{Datelike as _, Timelike as _};
        let timestamp = timestamp.naive_utc();
        let year = u32::try_from(timestamp.year()).ok().filter(|year| *year <= 9999)?;
        let micros = timestamp.nanosecond() / 1_000;
        if micros >= 1_000_000 {
            return None; // a leap second, which chrono writes its own way
        }
        let mut text = *b"0000-00-00T00:00:00.000000Z";
        let mut put = |at: usize, width: usize, mut value: u32| {
            for index in (at..at + width).rev() {
                text[index] = b'0' + u8::try_from(value % 10).unwrap_or_default();
                value /= 10;
            }
        };
        put(0, 4, year);
        put(5, 2, timestamp.month());
        put(8, 2, timestamp.day());
        put(11, 2, timestamp.hour());
        put(14, 2, timestamp.minute());
        put(17, 2, timestamp.second());
        put(20, 6, micros);
        Some(text)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        DateTime::parse_from_rfc3339(&text).map(|timestamp| timestamp.with_timezone(&Utc)).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

    use super::{AuditEvent, EventType};

    #[test]
    fn each_built_in_type_is_found_by_its_name_and_its_place() {
        for (index, event_type) in EventType::BUILT_IN.iter().enumerate() {
            assert_eq!(&EventType::named(event_type.as_str()), event_type);
            assert_eq!(event_type.built_in_index(), Some(index), "{event_type}");
        }
        assert_eq!(EventType::named("Quota"), EventType::Custom("Quota".into()));
        assert_eq!(EventType::named("Quota").built_in_index(), None);
        assert_eq!(EventType::named("userMessage"), EventType::Custom("userMessage".into()), "names match exactly");
    }

    #[test]
    fn timestamps_are_written_as_chrono_writes_them_with_microseconds() {
        let instants = [
            Utc.with_ymd_and_hms(2026, 11, 27, 9, 5, 7).single().expect("a valid date"),
            Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).single().expect("a valid date"),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).single().expect("a valid date")
                + chrono::TimeDelta::microseconds(999_999),
            DateTime::from_timestamp_micros(1_764_234_567_123_456).expect("in range"),
        ];
        for instant in instants {
            let mut event = AuditEvent::new(EventType::Error);
            event.timestamp = instant;
            let json = serde_json::to_value(&event).expect("an event serializes");
            assert_eq!(json["timestamp"], instant.to_rfc3339_opts(SecondsFormat::Micros, true));
        }
    }
}
