//! Values that describe themselves as audit events: what `#[derive(Audited)]` implements.

use std::net::IpAddr;
use std::sync::OnceLock;

use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use sha2::Sha256;

use super::context::AuditContext;
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
        let (event_type, details, actor) = self.into_parts();
        let mut event = AuditEvent::with_actor(event_type, actor).outcome(outcome);
        event.details = details;
        event
    }

    /// The record's event type, details, and actor fields (those it has).
    pub(crate) fn into_parts(self) -> (EventType, Details, AuditContext) {
        let actor = AuditContext { user_id: self.user_id, session_id: self.session_id, ip_address: self.ip_address };
        (self.event_type, self.details, actor)
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
    // The key's part of the MAC is computed once; the value's JSON is hashed as it is written.
    static KEYED: OnceLock<Hmac<Sha256>> = OnceLock::new();
    let keyed = KEYED.get_or_init(|| {
        <Hmac<Sha256> as KeyInit>::new_from_slice(redaction_key()).expect("HMAC takes a key of any length")
    });
    let mut mac = MacWriter(keyed.clone());
    if serde_json::to_writer(&mut mac, value).is_err() {
        // As the hash of no JSON at all, which is what a value that cannot be written hashed to before.
        mac.0 = keyed.clone();
    }
    let digest = mac.0.finalize().into_bytes();
    let mut text = String::with_capacity(12 + 32);
    text.push_str("hmac-sha256:");
    hardened_core::support::push_hex(&mut text, &digest[..16]);
    text
}

/// Feeds what is written into the MAC.
struct MacWriter(Hmac<Sha256>);

impl std::io::Write for MacWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keyed_hash_is_the_hmac_of_the_values_json_under_the_redaction_key() {
        let value = ("ada@example.com", [1, 2, 3]);
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(redaction_key()).expect("any key length");
        mac.update(&serde_json::to_vec(&value).expect("JSON"));
        let expected = format!("hmac-sha256:{}", hardened_core::support::hex(&mac.finalize().into_bytes()[..16]));
        assert_eq!(keyed_hash(&value), expected);
        assert_eq!(keyed_hash(&value), expected, "and again, from the key's state kept");
        assert_ne!(keyed_hash("other"), expected);
    }
}
