//! Values that describe themselves as audit events: what `#[derive(Audited)]` implements.

use std::net::IpAddr;
use std::sync::OnceLock;

use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use sha2::Sha256;

use super::event::{AuditEvent, AuditOutcome, Details, EventType};

/// A value that maps to an audit event: an action enum or struct, usually through
/// `#[derive(Audited)]`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not describe itself as an audit event: it does not implement `hardened::audit::Audited`",
    label = "not `Audited`",
    note = "derive it with `#[derive(hardened::Audited)]`, or record a plain event per call with `audit` alone"
)]
pub trait Audited {
    /// The event this value describes: its type, its details (redacted) and its actor fields.
    fn audit_record(&self) -> AuditRecord;
}

/// What an [`Audited`] value says about itself; [`AuditRecord::into_event`] completes it into an event.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// The event type.
    pub event_type: EventType,
    /// The fields, redacted where asked, keyed by name (or position, for tuple fields).
    pub details: Details,
    /// The value of the field marked `#[audited(user_id)]`.
    pub user_id: Option<String>,
    /// The value of the field marked `#[audited(session_id)]`.
    pub session_id: Option<String>,
    /// The value of the field marked `#[audited(ip)]`.
    pub ip_address: Option<IpAddr>,
}

impl AuditRecord {
    /// A record of `event_type` with no details and no actor.
    #[must_use]
    pub fn new(event_type: EventType) -> AuditRecord {
        AuditRecord { event_type, details: Details::new(), user_id: None, session_id: None, ip_address: None }
    }

    /// The event: a new [`AuditEvent`] of this type with these details and outcome, whose actor fields
    /// are the record's where it has them and the current scope's otherwise.
    #[must_use]
    pub fn into_event(self, outcome: AuditOutcome) -> AuditEvent {
        let mut event = AuditEvent::new(self.event_type).outcome(outcome);
        event.details = self.details;
        if self.user_id.is_some() {
            event.user_id = self.user_id;
        }
        if self.session_id.is_some() {
            event.session_id = self.session_id;
        }
        if self.ip_address.is_some() {
            event.ip_address = self.ip_address;
        }
        event
    }
}

/// What `#[audited(redact)]` writes instead of the value.
pub const REDACTED: &str = "[redacted]";

/// Sets the key of `#[audited(redact = "hash")]`. Without one, a random key is made per process, so
/// equal values correlate within one run only; set the same key on every replica (from a secret) to
/// correlate across them. Returns whether this call set it: the key cannot change once used.
pub fn set_redaction_key(key: impl Into<Vec<u8>>) -> bool {
    REDACTION_KEY.set(key.into()).is_ok()
}

static REDACTION_KEY: OnceLock<Vec<u8>> = OnceLock::new();

fn redaction_key() -> &'static [u8] {
    REDACTION_KEY.get_or_init(|| {
        let mut key = vec![0; 32];
        if let Err(error) = getrandom::fill(&mut key) {
            // Without randomness, a fixed key still hides the values; only the unlinkability across
            // processes is lost.
            tracing::warn!(%error, "no randomness for the audit redaction key; set one with set_redaction_key");
        }
        key
    })
}

/// The keyed hash that `#[audited(redact = "hash")]` writes instead of a value: `hmac-sha256:` and 32
/// hex digits of HMAC-SHA-256 over the value's JSON, under the [redaction key](set_redaction_key).
/// Equal values give equal hashes; the value cannot be read back.
///
/// # Panics
///
/// Never: HMAC takes keys of any length.
#[must_use]
pub fn keyed_hash<T: Serialize + ?Sized>(value: &T) -> String {
    let json = serde_json::to_vec(value).unwrap_or_default();
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(redaction_key()).expect("HMAC takes a key of any length");
    mac.update(&json);
    let digest = mac.finalize().into_bytes();
    let mut text = String::with_capacity(12 + 32);
    text.push_str("hmac-sha256:");
    text.push_str(&super::chain::hex(&digest[..16]));
    text
}
