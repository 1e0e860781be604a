//! `#[derive(Audited)]`: event types, details, redaction, actor fields and generics, read back from the
//! records and events the derived impls make.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hardened::Audited;
use hardened::audit::{self, AuditContext, AuditOutcome, AuditRecord, Audited as _, EventType, REDACTED};
use serde::Serialize;
use serde_json::{Value, json};

#[derive(Serialize)]
struct Document {
    id: u64,
    title: String,
}

#[derive(Audited)]
enum Action {
    Ping,
    Search(String, u32),
    #[audited(event = "document.export")]
    Export {
        document: Document,
        format: &'static str,
    },
    #[audited(event = "AuthenticationAttempt")]
    Login {
        #[audited(user_id)]
        user: String,
        #[audited(session_id)]
        session: Option<u64>,
        #[audited(ip)]
        from: IpAddr,
        #[audited(redact)]
        password: String,
        method: &'static str,
    },
    ToolExecution(#[audited(skip)] NotSerializable, #[audited(redact)] NotSerializable, bool),
}

/// Neither `Serialize` nor `Display`: only skipped or plainly redacted fields may have it.
struct NotSerializable;

fn login() -> Action {
    Action::Login {
        user: "ada".to_owned(),
        session: Some(42),
        from: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        password: "hunter2".to_owned(),
        method: "password",
    }
}

/// Every string anywhere in a record, to prove a secret is nowhere.
fn everything(record: &AuditRecord) -> String {
    format!("{record:?} {}", Value::Object(record.details.clone()))
}

#[test]
fn unit_variants_are_events_without_details() {
    let record = Action::Ping.audit_record();
    assert_eq!(record, AuditRecord::new(EventType::Custom("Ping".into())));
}

#[test]
fn tuple_fields_are_keyed_by_position() {
    let record = Action::Search("rust".to_owned(), 10).audit_record();
    assert_eq!(record.event_type, EventType::named("Search"));
    assert_eq!(Value::Object(record.details), json!({ "0": "rust", "1": 10 }));
}

#[test]
fn struct_fields_are_keyed_by_name_and_written_as_json() {
    let export = Action::Export { document: Document { id: 7, title: "Q3".to_owned() }, format: "pdf" };
    let record = export.audit_record();
    assert_eq!(record.event_type, EventType::Custom("document.export".into()));
    assert_eq!(Value::Object(record.details), json!({ "document": { "id": 7, "title": "Q3" }, "format": "pdf" }));
}

#[test]
fn built_in_names_map_to_built_in_event_types() {
    assert_eq!(login().audit_record().event_type, EventType::AuthenticationAttempt);
    let tool = Action::ToolExecution(NotSerializable, NotSerializable, true).audit_record();
    assert_eq!(tool.event_type, EventType::ToolExecution);
}

#[test]
fn skipped_fields_are_left_out_and_redacted_ones_say_only_that_they_were_there() {
    let record = Action::ToolExecution(NotSerializable, NotSerializable, true).audit_record();
    assert_eq!(Value::Object(record.details), json!({ "1": REDACTED, "2": true }));
}

#[test]
fn actor_fields_fill_the_record_and_stay_out_of_the_details() {
    let record = login().audit_record();
    assert_eq!(record.user_id.as_deref(), Some("ada"));
    assert_eq!(record.session_id.as_deref(), Some("42"));
    assert_eq!(record.ip_address, Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))));
    assert_eq!(Value::Object(record.details.clone()), json!({ "password": REDACTED, "method": "password" }));
    assert!(!everything(&record).contains("hunter2"));
}

#[test]
fn an_absent_optional_actor_leaves_the_field_unset() {
    let Action::Login { user, from, password, method, .. } = login() else { unreachable!() };
    let record = Action::Login { user, session: None, from, password, method }.audit_record();
    assert_eq!(record.session_id, None);
    assert!(!record.details.contains_key("session"));
}

#[test]
fn into_event_carries_the_record_and_the_outcome() {
    let event = login().audit_record().into_event(AuditOutcome::Failure);
    assert_eq!(event.event_type, EventType::AuthenticationAttempt);
    assert_eq!(event.outcome, AuditOutcome::Failure);
    assert_eq!(event.user_id.as_deref(), Some("ada"));
    assert_eq!(event.session_id.as_deref(), Some("42"));
    assert_eq!(event.details["method"], "password");
    assert_eq!(event.details["password"], REDACTED);
}

#[test]
fn into_event_takes_the_scope_actor_for_what_the_record_leaves_unset() {
    let context = AuditContext::user("scoped").session("s-1");
    let (search, login) = audit::sync_scope(context, || {
        (
            Action::Search("q".to_owned(), 1).audit_record().into_event(AuditOutcome::Success),
            login().audit_record().into_event(AuditOutcome::Success),
        )
    });
    assert_eq!(search.user_id.as_deref(), Some("scoped"));
    assert_eq!(search.session_id.as_deref(), Some("s-1"));
    assert_eq!(login.user_id.as_deref(), Some("ada"));
}

#[derive(Audited)]
#[audited(event = "UserMessage")]
struct Message {
    #[audited(user_id, redact = "hash")]
    author: String,
    #[audited(redact = "hash")]
    email: String,
    #[audited(redact = "hash")]
    tags: Vec<&'static str>,
    length: usize,
}

fn message(author: &str, email: &str) -> Message {
    Message { author: author.to_owned(), email: email.to_owned(), tags: vec!["greeting"], length: 5 }
}

#[test]
fn hashed_fields_correlate_without_revealing_the_value() {
    let first = message("ada", "ada@example.com").audit_record();
    let again = message("ada", "ada@example.com").audit_record();
    let other = message("grace", "grace@example.com").audit_record();
    assert_eq!(first.event_type, EventType::UserMessage);

    let hash = first.details["email"].as_str().expect("a string");
    assert!(hash.starts_with("hmac-sha256:"), "{hash}");
    assert_eq!(hash, audit::keyed_hash("ada@example.com"));
    assert_eq!(first.details["email"], again.details["email"]);
    assert_ne!(first.details["email"], other.details["email"]);
    assert_eq!(first.details["tags"], Value::String(audit::keyed_hash(&vec!["greeting"])));
    assert_eq!(first.details["length"], 5);

    // The author whole, quoted: a hash's hex digits may end in "ada".
    for secret in ["ada@example.com", "\"ada\"", "greeting"] {
        assert!(!everything(&first).contains(secret), "{secret} in {first:?}");
    }
}

#[test]
fn a_hashed_user_id_is_a_pseudonymous_id() {
    let first = message("ada", "a").audit_record();
    let again = message("ada", "b").audit_record();
    let other = message("grace", "a").audit_record();
    let id = first.user_id.clone().expect("a user id");
    assert_eq!(id, audit::keyed_hash("ada"));
    assert_eq!(first.user_id, again.user_id);
    assert_ne!(first.user_id, other.user_id);
    assert!(!first.details.contains_key("author"));
}

#[derive(Audited)]
enum Generic<T, U, K: Ord, R> {
    Item {
        value: T,
        #[audited(skip)]
        #[expect(dead_code, reason = "a skipped field is read neither by the derive nor by this test")]
        ignored: R,
    },
    Owner(#[audited(user_id)] Option<U>, #[audited(redact)] R),
    Map(BTreeMap<K, T>),
}

#[test]
fn generic_types_bound_only_what_they_serialize() {
    // `R` is only in a skipped field and a redacted one, so it needs nothing.
    let item: Generic<Vec<u8>, UserId, u8, NotSerializable> =
        Generic::Item { value: vec![1, 2], ignored: NotSerializable };
    let record = item.audit_record();
    assert_eq!(record.event_type, EventType::Custom("Item".into()));
    assert_eq!(Value::Object(record.details), json!({ "value": [1, 2] }));

    let owner: Generic<u8, UserId, u8, NotSerializable> = Generic::Owner(Some(UserId(9)), NotSerializable);
    let record = owner.audit_record();
    assert_eq!(record.user_id.as_deref(), Some("user-9"));
    assert_eq!(Value::Object(record.details), json!({ "1": REDACTED }));
}

#[test]
fn a_detail_that_cannot_be_json_is_recorded_as_why() {
    let map: Generic<u8, u8, (u8, u8), ()> = Generic::Map([((1, 2), 3)].into_iter().collect());
    let record = map.audit_record();
    let written = record.details["0"].as_str().expect("a string");
    assert!(written.starts_with("[not serializable: "), "{written}");
}

/// A newtype id with its own `Display`, which is all `user_id` needs.
struct UserId(u32);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "user-{}", self.0)
    }
}

#[derive(Audited)]
struct Request<'a> {
    #[audited(user_id)]
    user: UserId,
    #[audited(session_id)]
    session: &'a str,
    #[audited(ip)]
    forwarded_for: &'a str,
    path: &'a str,
}

#[derive(Audited)]
struct Connection(#[audited(ip)] Option<Ipv6Addr>, u16);

#[test]
fn actor_fields_accept_display_types_borrowed_strings_and_addresses_as_text() {
    let record = Request { user: UserId(3), session: "s-9", forwarded_for: " 2001:db8::1 ", path: "/" }.audit_record();
    assert_eq!(record.event_type, EventType::Custom("Request".into()));
    assert_eq!(record.user_id.as_deref(), Some("user-3"));
    assert_eq!(record.session_id.as_deref(), Some("s-9"));
    assert_eq!(record.ip_address, Some("2001:db8::1".parse().expect("an address")));
    assert_eq!(Value::Object(record.details), json!({ "path": "/" }));

    let unparsable = Request { user: UserId(3), session: "s", forwarded_for: "unknown", path: "/" }.audit_record();
    assert_eq!(unparsable.ip_address, None);

    let connection = Connection(Some(Ipv6Addr::LOCALHOST), 443).audit_record();
    assert_eq!(connection.ip_address, Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    assert_eq!(Value::Object(connection.details), json!({ "1": 443 }));
    assert_eq!(Connection(None, 443).audit_record().ip_address, None);
}

#[derive(Audited)]
enum Empty {}

#[test]
fn an_enum_without_variants_still_derives() {
    fn assert_audited<T: hardened::audit::Audited>() {}
    assert_audited::<Empty>();
}
