//! What `#[derive(Audited)]` expands to calls. Not part of the public API: it changes without notice.
//!
//! Every function here takes the field by reference and the generated call is spanned at the field's
//! type, so that a type that does not fit is reported on the user's field with the note of the trait
//! it misses.

use std::borrow::Cow;
use std::fmt::Display;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::rc::Rc;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use super::audited::{AuditRecord, REDACTED, keyed_hash};
use super::event::EventType;
use super::event::bounds::{MAX_ID_BYTES, bound_string};

/// A new record of the event type named `event` (a built-in one if the name is one of theirs).
#[must_use]
pub fn record(event: &'static str) -> AuditRecord {
    AuditRecord::new(EventType::named(event))
}

/// Types whose values can go into an audit record's details: every `serde::Serialize` type.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot go into the details of an audit record: it does not implement `serde::Serialize`",
    label = "not `Serialize`, so it cannot be written into the details",
    note = "derive `serde::Serialize` for `{Self}`, or mark the field `#[audited(skip)]` to leave it out or `#[audited(redact)]` to record `\"[redacted]\"` in its place"
)]
pub trait AuditDetail: Serialize {}

#[diagnostic::do_not_recommend]
impl<T: Serialize + ?Sized> AuditDetail for T {}

/// Writes `value` as JSON into the details under `key`. A value that cannot be written as JSON (a map
/// with keys that are not strings, a `Serialize` impl that fails) becomes a string saying why, so an
/// audit event is never lost to one of its details. The value is bounded when the record is sealed,
/// off the call's path.
pub fn detail<T: AuditDetail + ?Sized>(record: &mut AuditRecord, key: &'static str, value: &T) {
    let value =
        serde_json::to_value(value).unwrap_or_else(|error| Value::String(format!("[not serializable: {error}]")));
    record.details.insert(key.to_owned(), value);
}

/// Writes the [keyed hash](keyed_hash) of `value` into the details under `key`.
pub fn hashed<T: AuditDetail + ?Sized>(record: &mut AuditRecord, key: &'static str, value: &T) {
    record.details.insert(key.to_owned(), Value::String(keyed_hash(value)));
}

/// Writes [`REDACTED`] into the details under `key`.
pub fn redacted(record: &mut AuditRecord, key: &'static str) {
    record.details.insert(key.to_owned(), Value::String(REDACTED.to_owned()));
}

/// Types that can be a user or session id: every `Display` type.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a user or session id: it does not implement `Display`",
    label = "`#[audited(user_id)]` and `#[audited(session_id)]` record the field as text",
    note = "use a type that implements `Display` (`String`, an integer, a `Uuid`, a newtype with its own `Display`) or an `Option` of one"
)]
pub trait ActorId {
    /// The id as text.
    fn actor_id(&self) -> String;
}

#[diagnostic::do_not_recommend]
impl<T: Display + ?Sized> ActorId for T {
    fn actor_id(&self) -> String {
        self.to_string()
    }
}

/// The id of a `user_id` or `session_id` field, cut to [`AuditEvent::MAX_ID_BYTES`](super::AuditEvent::MAX_ID_BYTES).
#[must_use]
pub fn id<T: ActorId + ?Sized>(value: &T) -> Option<String> {
    Some(bounded_id(value))
}

/// The id of an `Option` field: none when the field is `None`.
#[must_use]
pub fn optional_id<T: ActorId>(value: &Option<T>) -> Option<String> {
    value.as_ref().map(bounded_id)
}

fn bounded_id<T: ActorId + ?Sized>(value: &T) -> String {
    let mut id = value.actor_id();
    bound_string(&mut id, MAX_ID_BYTES);
    id
}

/// The [keyed hash](keyed_hash) of the id of a field marked `redact = "hash"` too: a pseudonymous id,
/// equal for equal ids.
#[must_use]
pub fn hashed_id<T: ActorId + ?Sized>(value: &T) -> Option<String> {
    Some(keyed_hash(&value.actor_id()))
}

/// [`hashed_id`] of an `Option` field.
#[must_use]
pub fn optional_hashed_id<T: ActorId>(value: &Option<T>) -> Option<String> {
    value.as_ref().map(|value| keyed_hash(&value.actor_id()))
}

/// Types that can give the IP address of an audit record.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the IP address of an audit record",
    label = "`#[audited(ip)]` needs an IP address here",
    note = "use `IpAddr`, `Ipv4Addr`, `Ipv6Addr`, `SocketAddr`, a string holding an address, or an `Option` of one of these"
)]
pub trait ActorIp {
    /// The address, or `None` when there is none (an empty `Option`, a string that is not an address).
    fn actor_ip(&self) -> Option<IpAddr>;
}

impl ActorIp for IpAddr {
    fn actor_ip(&self) -> Option<IpAddr> {
        Some(*self)
    }
}

impl ActorIp for Ipv4Addr {
    fn actor_ip(&self) -> Option<IpAddr> {
        Some(IpAddr::V4(*self))
    }
}

impl ActorIp for Ipv6Addr {
    fn actor_ip(&self) -> Option<IpAddr> {
        Some(IpAddr::V6(*self))
    }
}

impl ActorIp for SocketAddr {
    fn actor_ip(&self) -> Option<IpAddr> {
        Some(self.ip())
    }
}

impl ActorIp for SocketAddrV4 {
    fn actor_ip(&self) -> Option<IpAddr> {
        Some(IpAddr::V4(*self.ip()))
    }
}

impl ActorIp for SocketAddrV6 {
    fn actor_ip(&self) -> Option<IpAddr> {
        Some(IpAddr::V6(*self.ip()))
    }
}

/// A string holding an address; one that does not parse gives no address.
impl ActorIp for str {
    fn actor_ip(&self) -> Option<IpAddr> {
        self.trim().parse().ok()
    }
}

impl ActorIp for String {
    fn actor_ip(&self) -> Option<IpAddr> {
        self.as_str().actor_ip()
    }
}

impl ActorIp for Cow<'_, str> {
    fn actor_ip(&self) -> Option<IpAddr> {
        (**self).actor_ip()
    }
}

impl<T: ActorIp + ?Sized> ActorIp for &T {
    fn actor_ip(&self) -> Option<IpAddr> {
        (**self).actor_ip()
    }
}

impl<T: ActorIp + ?Sized> ActorIp for Box<T> {
    fn actor_ip(&self) -> Option<IpAddr> {
        (**self).actor_ip()
    }
}

impl<T: ActorIp + ?Sized> ActorIp for Rc<T> {
    fn actor_ip(&self) -> Option<IpAddr> {
        (**self).actor_ip()
    }
}

impl<T: ActorIp + ?Sized> ActorIp for Arc<T> {
    fn actor_ip(&self) -> Option<IpAddr> {
        (**self).actor_ip()
    }
}

impl<T: ActorIp> ActorIp for Option<T> {
    fn actor_ip(&self) -> Option<IpAddr> {
        self.as_ref().and_then(ActorIp::actor_ip)
    }
}

/// The address of an `ip` field.
#[must_use]
pub fn ip<T: ActorIp + ?Sized>(value: &T) -> Option<IpAddr> {
    value.actor_ip()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn a_detail_that_cannot_be_json_says_why_instead_of_panicking() {
        let mut record = record("Custom");
        let map: BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into_iter().collect();
        detail(&mut record, "map", &map);
        let written = record.details["map"].as_str().expect("a string");
        assert!(written.starts_with("[not serializable: "), "{written}");
    }

    #[test]
    fn reads_addresses_from_every_supported_shape() {
        let v4: IpAddr = "192.0.2.1".parse().expect("an address");
        assert_eq!(ip(&v4), Some(v4));
        assert_eq!(ip("192.0.2.1"), Some(v4));
        assert_eq!(ip(&Some("192.0.2.1".to_owned())), Some(v4));
        assert_eq!(ip(&SocketAddr::new(v4, 80)), Some(v4));
        assert_eq!(ip("not an address"), None);
        assert_eq!(ip(&None::<IpAddr>), None);
    }
}
