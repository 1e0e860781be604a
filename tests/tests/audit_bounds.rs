//! Every audited string field has a bound: a 60,000-character request path, error message, user id or
//! detail is stored cut to its maximum, with a marker of its original length, on every path into the
//! trail (the builder, fields set directly, `#[derive(Audited)]` records, `#[hardened(audit)]` calls),
//! and the JSONL log written from such events still verifies.

use std::path::PathBuf;
use std::sync::OnceLock;

use hardened::audit::{AuditEvent, Auditor, EventType, JsonlRecord, JsonlSink, read_jsonl, verify_jsonl};
use hardened::{Audited, Rejected, hardened};
use serde_json::{Value, json};

/// The process-wide pipeline of this test binary, into a JSONL file of its own.
fn log_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let directory = tempfile::tempdir().expect("a temporary directory").keep();
        let path = directory.join("audit.jsonl");
        let auditor = Auditor::builder()
            .sink(JsonlSink::open(&path).expect("the log opens"))
            .spill_dir(directory.join("spill"))
            .start()
            .expect("the pipeline starts");
        hardened::audit::install(auditor).expect("the first pipeline installed");
        path
    })
}

/// Every record of the log whose `resource` starts with `resource`, after writing out what was emitted.
async fn stored(resource: &str) -> Vec<AuditEvent> {
    let path = log_path();
    hardened::audit::flush().await.expect("every event is written");
    read_jsonl(path)
        .filter_map(|record| match record.expect("the log reads") {
            JsonlRecord::Event(event, _) => Some(*event),
            _ => None,
        })
        .filter(|event| event.resource.as_deref().is_some_and(|stored| stored.starts_with(resource)))
        .collect()
}

async fn the_log_verifies() {
    hardened::audit::flush().await.expect("every event is written");
    let verification = verify_jsonl(log_path()).expect("the log reads");
    assert!(verification.is_intact(), "{verification:?}");
}

fn marker(original: usize) -> String {
    format!("…[truncated: {original} bytes]")
}

#[tokio::test]
async fn a_60000_character_resource_from_the_builder_is_stored_cut_with_its_length() {
    log_path();
    let path = format!("/builder{}", "a".repeat(60_000 - 8));
    hardened::audit::emit(
        AuditEvent::new(EventType::AuthenticationAttempt).resource(path.clone()).user_id("u".repeat(5_000)),
    );

    let events = stored("/builder").await;
    assert_eq!(events.len(), 1);
    let resource = events[0].resource.as_deref().expect("a resource");
    assert!(resource.len() <= AuditEvent::MAX_TEXT_BYTES, "{}", resource.len());
    assert!(resource.ends_with(&marker(60_000)), "{}", &resource[resource.len() - 40..]);
    assert!(path.starts_with(resource.trim_end_matches(&marker(60_000))));
    let user_id = events[0].user_id.as_deref().expect("a user");
    assert!(user_id.len() <= AuditEvent::MAX_ID_BYTES && user_id.ends_with(&marker(5_000)));
    the_log_verifies().await;
}

#[tokio::test]
async fn fields_set_directly_and_huge_details_are_bounded_when_sealed() {
    log_path();
    let mut deep = json!("bottom");
    for _ in 0..100 {
        deep = json!([deep]);
    }
    let mut event = AuditEvent::new(EventType::named("Direct"));
    event.resource = Some(format!("/direct{}", "é".repeat(30_000)).into());
    event.outcome_details = Some("x".repeat(1_000_000));
    event.session_id = Some("s".repeat(70_000));
    event.details.insert("deep".to_owned(), deep);
    event.details.insert("many".to_owned(), json!((0..100_000).collect::<Vec<_>>()));
    event.details.insert("k".repeat(10_000), json!("v".repeat(50_000)));
    hardened::audit::emit(event);

    let events = stored("/direct").await;
    assert_eq!(events.len(), 1);
    let event = &events[0];
    let resource = event.resource.as_deref().expect("a resource");
    let original = "/direct".len() + "é".len() * 30_000;
    assert!(resource.len() <= AuditEvent::MAX_TEXT_BYTES);
    assert!(resource.ends_with(&marker(original)), "a multi-byte text is cut on a character boundary");
    assert!(resource.trim_end_matches(&marker(original)).trim_start_matches("/direct").chars().all(|c| c == 'é'));
    assert!(event.outcome_details.as_deref().expect("details").ends_with(&marker(1_000_000)));
    assert!(event.session_id.as_deref().expect("a session").len() <= AuditEvent::MAX_ID_BYTES);

    let details = serde_json::to_string(&event.details).expect("JSON");
    assert!(details.len() < 2 * AuditEvent::MAX_DETAILS_BYTES, "{} bytes of details", details.len());
    let mut level = &event.details["deep"];
    let mut depth = 1;
    while let Value::Array(items) = level {
        level = &items[0];
        depth += 1;
    }
    assert_eq!(depth, AuditEvent::MAX_DETAILS_DEPTH);
    assert!(level.as_str().expect("a marker").contains("nested deeper than"));
    let values = count_values(&Value::Object(event.details.clone()));
    assert!(values <= AuditEvent::MAX_DETAILS_ENTRIES + 8, "{values} values, markers included");
    the_log_verifies().await;
}

fn count_values(value: &Value) -> usize {
    match value {
        Value::Array(items) => items.iter().map(|item| 1 + count_values(item)).sum(),
        Value::Object(entries) => entries.values().map(|item| 1 + count_values(item)).sum(),
        _ => 0,
    }
}

#[derive(Debug, Clone, serde::Serialize, Audited)]
#[audited(event = "BigAction")]
struct BigAction {
    #[audited(session_id)]
    session: String,
    content: String,
}

#[derive(Debug, thiserror::Error)]
enum ToolError {
    #[error("refused: {0}")]
    Refused(#[from] Rejected),
    #[error("upstream said: {0}")]
    Upstream(String),
}

#[hardened(kind = "tool", audit = action)]
fn act_on(action: BigAction) -> Result<(), ToolError> {
    Err(ToolError::Upstream(format!("{}{}", action.content, "z".repeat(60_000))))
}

#[tokio::test]
async fn derived_records_and_audited_calls_are_bounded() {
    log_path();
    let action = BigAction { session: "s".repeat(60_000), content: "c".repeat(60_000) };
    assert!(act_on(action).is_err());

    let events = stored("act_on").await;
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event.event_type, EventType::named("BigAction"));
    let session = event.session_id.as_deref().expect("a session");
    assert!(session.len() <= AuditEvent::MAX_ID_BYTES && session.ends_with(&marker(60_000)));
    let content = event.details["content"].as_str().expect("the content");
    assert!(content.len() <= AuditEvent::MAX_TEXT_BYTES && content.ends_with(&marker(60_000)));
    let message = event.outcome_details.as_deref().expect("the error");
    let original = "upstream said: ".len() + 120_000;
    assert!(message.len() <= AuditEvent::MAX_TEXT_BYTES && message.ends_with(&marker(original)), "{}", message.len());
    the_log_verifies().await;
}

fn depth_of(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth_of).max().unwrap_or(0),
        Value::Object(entries) => 1 + entries.values().map(depth_of).max().unwrap_or(0),
        _ => 1,
    }
}

fn arbitrary_json() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
        (0..9_000usize).prop_map(|length| Value::from("é".repeat(length))),
    ];
    leaf.prop_recursive(14, 2_000, 300, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..300).prop_map(Value::Array),
            proptest::collection::btree_map(".{0,1500}", inner, 0..40)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, ..proptest::prelude::ProptestConfig::default() })]

    #[test]
    fn any_text_is_cut_to_a_prefix_within_its_bound_and_cut_again_to_itself(text in ".{0,3000}", repeat in 1..4usize) {
        let text = text.repeat(repeat);
        let mut event = AuditEvent::new(EventType::Error).resource(text.clone()).user_id(text.clone());
        let resource = event.resource.clone().expect("a resource");
        proptest::prop_assert!(resource.len() <= AuditEvent::MAX_TEXT_BYTES);
        let kept = resource.strip_suffix(&marker(text.len())).unwrap_or(&resource);
        proptest::prop_assert!(text.starts_with(kept));
        proptest::prop_assert!(event.user_id.as_deref().expect("a user").len() <= AuditEvent::MAX_ID_BYTES);
        let before = event.clone();
        event.bound();
        proptest::prop_assert_eq!(event, before);
    }

    #[test]
    fn any_details_are_bounded_without_a_panic(details in arbitrary_json()) {
        let mut event = AuditEvent::new(EventType::Error);
        event.details.insert("value".to_owned(), details);
        event.bound();
        let whole = Value::Object(event.details.clone());
        proptest::prop_assert!(depth_of(&whole) <= AuditEvent::MAX_DETAILS_DEPTH + 1);
        proptest::prop_assert!(count_values(&whole) <= 2 * AuditEvent::MAX_DETAILS_ENTRIES);
        let bytes = serde_json::to_string(&whole).expect("JSON").len();
        proptest::prop_assert!(bytes < 4 * AuditEvent::MAX_DETAILS_BYTES, "{} bytes", bytes);
    }
}
