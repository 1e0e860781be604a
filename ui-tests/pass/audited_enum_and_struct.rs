//! Unit, tuple and struct variants, a struct, custom and built-in event names, every field attribute.
use std::net::IpAddr;

use hardened::Audited;
use hardened::audit::{AuditOutcome, Audited as _, EventType, REDACTED};

#[derive(serde::Serialize)]
struct Query {
    text: String,
}

#[derive(Audited)]
enum Action {
    Ping,
    Search(Query, #[audited(skip)] std::time::Instant),
    #[audited(event = "ToolExecution")]
    Run {
        #[audited(user_id)]
        user: u64,
        #[audited(session_id, redact = "hash")]
        session: Option<String>,
        #[audited(ip)]
        from: Option<IpAddr>,
        #[audited(redact)]
        token: String,
        #[audited(redact = "hash")]
        email: String,
        r#type: &'static str,
    },
}

#[derive(Audited)]
#[audited(event = "config.changed")]
struct Changed(String, u32);

fn main() {
    let ping = Action::Ping.audit_record();
    assert_eq!(ping.event_type, EventType::Custom("Ping".into()));
    assert!(ping.details.is_empty());

    let search = Action::Search(Query { text: "rust".into() }, std::time::Instant::now()).audit_record();
    assert_eq!(search.details["0"]["text"], "rust");
    assert_eq!(search.details.len(), 1);

    let run = Action::Run {
        user: 7,
        session: Some("s".into()),
        from: Some([127, 0, 0, 1].into()),
        token: "secret".into(),
        email: "ada@example.com".into(),
        r#type: "shell",
    };
    let record = run.audit_record();
    assert_eq!(record.event_type, EventType::ToolExecution);
    assert_eq!(record.user_id.as_deref(), Some("7"));
    assert_eq!(record.session_id, Some(hardened::audit::keyed_hash("s")));
    assert_eq!(record.ip_address, Some([127, 0, 0, 1].into()));
    assert_eq!(record.details["token"], REDACTED);
    assert_eq!(record.details["email"], hardened::audit::keyed_hash("ada@example.com"));
    assert_eq!(record.details["type"], "shell");
    assert_eq!(record.details.len(), 3);

    let event = record.into_event(AuditOutcome::Success);
    assert_eq!(event.user_id.as_deref(), Some("7"));

    let changed = Changed("timeout".into(), 30).audit_record();
    assert_eq!(changed.event_type, EventType::Custom("config.changed".into()));
    assert_eq!(changed.details["1"], 30);
}
