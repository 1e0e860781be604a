//! The span of a `#[hardened]` call, checked through a real subscriber that captures spans.

use std::fmt;

use hardened::hardened;
use hardened_tests::Capture;

#[derive(Debug)]
struct ToolError(&'static str);

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tool failed: {}", self.0)
    }
}

/// An error with `Debug` only, to check the fallback description.
#[derive(Debug)]
#[expect(dead_code, reason = "read only through Debug")]
struct OpaqueError {
    code: u16,
}

/// An error with neither `Display` nor `Debug`.
struct SilentError;

#[hardened(kind = "tool", fields(city, len = city.len()))]
fn forecast(city: &str, secret: &str) -> Result<u32, ToolError> {
    let _ = secret;
    if city == "Oslo" { Ok(4) } else { Err(ToolError("unknown city")) }
}

#[hardened]
fn opaque() -> Result<(), OpaqueError> {
    Err(OpaqueError { code: 503 })
}

#[hardened]
fn silent() -> Result<(), SilentError> {
    Err(SilentError)
}

#[allow(clippy::trivially_copy_pass_by_ref, reason = "predicates receive the return value by reference")]
fn is_server_error(status: &u16) -> bool {
    *status >= 500
}

#[hardened(error_if = is_server_error)]
fn status(code: u16) -> u16 {
    code
}

#[hardened(name = "renamed_span", level = "debug")]
fn original_name() -> u8 {
    1
}

#[hardened(span = false)]
fn spanless() -> u8 {
    2
}

#[test]
fn a_call_has_a_span_with_the_standard_attributes_and_only_the_named_fields() {
    let (subscriber, capture) = Capture::subscriber();
    tracing::subscriber::with_default(subscriber, || forecast("Oslo", "hunter2").ok());

    let span = capture.captured().span("forecast");
    assert_eq!(span.fields.get("code.function").map(String::as_str), Some("forecast"));
    assert_eq!(span.fields.get("code.namespace").map(String::as_str), Some("spans"));
    assert_eq!(span.fields.get("hardened.kind").map(String::as_str), Some("tool"));
    assert_eq!(span.fields.get("otel.kind").map(String::as_str), Some("internal"));
    assert_eq!(span.fields.get("city").map(String::as_str), Some("Oslo"));
    assert_eq!(span.fields.get("len").map(String::as_str), Some("4"));
    assert!(!span.fields.values().any(|value| value.contains("hunter2")), "arguments leak: {span:?}");
    assert!(!span.fields.contains_key("otel.status_code"), "a success has no error status: {span:?}");
    assert_eq!((span.enters, span.exits), (1, 1));
}

#[test]
fn a_failure_marks_the_span_without_emitting_an_event() {
    let (subscriber, capture) = Capture::subscriber();
    tracing::subscriber::with_default(subscriber, || forecast("Atlantis", "").err());

    let captured = capture.captured();
    let span = captured.span("forecast");
    assert_eq!(span.fields.get("otel.status_code").map(String::as_str), Some("ERROR"));
    assert_eq!(span.fields.get("error.message").map(String::as_str), Some("tool failed: unknown city"));
    assert!(captured.events.is_empty(), "no log event on failure: {:?}", captured.events);
}

#[test]
fn errors_are_described_by_display_then_debug_then_type_name() {
    let (subscriber, capture) = Capture::subscriber();
    tracing::subscriber::with_default(subscriber, || {
        let _ = opaque();
        let _ = silent();
    });

    let captured = capture.captured();
    assert_eq!(
        captured.span("opaque").fields.get("error.message").map(String::as_str),
        Some("OpaqueError { code: 503 }")
    );
    let silent = captured.span("silent");
    assert!(silent.fields.get("error.message").is_some_and(|message| message.ends_with("SilentError")), "{silent:?}");
    assert_eq!(silent.fields.get("otel.status_code").map(String::as_str), Some("ERROR"));
}

#[test]
fn a_predicate_decides_the_status_of_a_value() {
    let (subscriber, capture) = Capture::subscriber();
    tracing::subscriber::with_default(subscriber, || {
        status(200);
        status(503);
    });

    let spans = capture.captured().spans("status");
    assert_eq!(spans.len(), 2);
    assert!(!spans[0].fields.contains_key("otel.status_code"));
    assert_eq!(spans[1].fields.get("otel.status_code").map(String::as_str), Some("ERROR"));
    assert!(!spans[1].fields.contains_key("error.message"), "a plain value has no error message");
}

#[test]
fn name_renames_the_span_and_span_false_removes_it() {
    let (subscriber, capture) = Capture::subscriber();
    tracing::subscriber::with_default(subscriber, || {
        original_name();
        spanless();
    });

    let captured = capture.captured();
    let renamed = captured.span("renamed_span");
    assert_eq!(renamed.fields.get("code.function").map(String::as_str), Some("original_name"));
    assert!(captured.spans("spanless").is_empty());
}

#[hardened(kind = "llm")]
async fn model_call(prompt: &str) -> Result<usize, ToolError> {
    tokio::task::yield_now().await;
    tracing::info!("inside the model call");
    Ok(prompt.len())
}

#[hardened(kind = "handler")]
async fn handle(prompt: &str) -> Result<usize, ToolError> {
    let first = model_call(prompt).await?;
    tokio::task::yield_now().await;
    let second = model_call(prompt).await?;
    Ok(first + second)
}

#[tokio::test(flavor = "current_thread")]
async fn async_spans_nest_across_await_and_are_entered_per_poll() {
    let (subscriber, capture) = Capture::subscriber();
    let _default = tracing::subscriber::set_default(subscriber);

    assert_eq!(handle("four").await.ok(), Some(8));

    let captured = capture.captured();
    let handler = captured.span("handle");
    let calls = captured.spans("model_call");
    assert_eq!(calls.len(), 2);
    for call in &calls {
        assert_eq!(call.parent.as_deref(), Some("handle"));
        // Entered once per poll: the yield makes each call take two polls.
        assert_eq!((call.enters, call.exits), (2, 2), "{call:?}");
    }
    // The handler is polled once per suspension of its children plus its own yield.
    assert!(handler.enters >= 3 && handler.enters == handler.exits, "{handler:?}");
}

#[hardened]
async fn suspended() {
    tokio::task::yield_now().await;
}

#[tokio::test(flavor = "current_thread")]
async fn an_async_span_is_not_current_while_its_call_is_suspended() {
    let (subscriber, capture) = Capture::subscriber();
    let _default = tracing::subscriber::set_default(subscriber);

    let mut call = Box::pin(suspended());
    let waker = futures::task::noop_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    assert!(call.as_mut().poll(&mut cx).is_pending());
    assert!(tracing::Span::current().is_none(), "the span leaked past the await");
    assert!(call.as_mut().poll(&mut cx).is_ready());

    let span = capture.captured().span("suspended");
    assert_eq!((span.enters, span.exits), (2, 2));
}

#[hardened(kind = "tool", name = "web.search")]
async fn renamed_tool(query: &str) -> Result<usize, ToolError> {
    Ok(query.len())
}

#[tokio::test(flavor = "current_thread")]
async fn tool_spans_carry_the_gen_ai_attributes_and_other_kinds_do_not() {
    let (subscriber, capture) = Capture::subscriber();
    let _default = tracing::subscriber::set_default(subscriber);

    forecast("Oslo", "").ok();
    renamed_tool("rust").await.ok();
    handle("four").await.ok();
    original_name();

    let captured = capture.captured();
    let forecast = captured.span("forecast");
    assert_eq!(forecast.fields.get("gen_ai.operation.name").map(String::as_str), Some("execute_tool"));
    assert_eq!(forecast.fields.get("gen_ai.tool.name").map(String::as_str), Some("forecast"));
    let renamed = captured.span("web.search");
    assert_eq!(renamed.fields.get("gen_ai.operation.name").map(String::as_str), Some("execute_tool"));
    assert_eq!(renamed.fields.get("gen_ai.tool.name").map(String::as_str), Some("web.search"), "the `name` argument");

    let others =
        [captured.span("handle"), captured.span("renamed_span")].into_iter().chain(captured.spans("model_call"));
    for span in others {
        assert!(!span.fields.keys().any(|key| key.starts_with("gen_ai.")), "only tools are GenAI tools: {span:?}");
    }
}
