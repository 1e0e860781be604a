//! W3C Trace Context and Baggage: continuing a trace from incoming headers and passing it on.
//!
//! [`extract`] reads `traceparent`, `tracestate` and `baggage` from a request's headers into an
//! OpenTelemetry [`Context`], to set as the parent of the span that serves the request (the server layer
//! `hardened::http::ServerTraceLayer`, with the `http` feature, does it for axum). [`inject`] writes the
//! current span's context into the headers of an outbound request; with the `reqwest` feature,
//! `TracedRequest::traced` sends a `reqwest` request inside a client span whose context its headers carry,
//! and measures it.
//!
//! ```
//! use hardened::propagation;
//! use opentelemetry::trace::TraceContextExt as _;
//!
//! let mut incoming = http::HeaderMap::new();
//! incoming.insert("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap());
//! let context = propagation::extract(&incoming);
//! assert_eq!(context.span().span_context().trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
//!
//! let mut outgoing = http::HeaderMap::new();
//! propagation::inject_context(&context, &mut outgoing);
//! assert_eq!(outgoing["traceparent"], incoming["traceparent"]);
//! ```
//!
//! The parsing is the OpenTelemetry SDK's, behind a check of the header against the W3C Trace Context
//! specification that the SDK is more lenient about: a `traceparent` of version `00` must be exactly 55
//! characters, every field of exactly its length in lowercase hex (no sign, no upper case), the trace and
//! parent ids not all zeros, version `ff` is invalid, and a later version is read by its first four fields
//! (anything after must follow a `-`). More than one `traceparent` header is invalid. `tracestate` headers
//! are joined and checked against Level 2's grammar (a key of up to 256 lowercase letters, digits, `_`,
//! `-`, `*`, `/` and `@`, beginning with a letter or a digit), and dropped, leaving the `traceparent`, when
//! a member is malformed or there are more than 32 members; a key that repeats keeps its first value. Keys
//! the SDK's stricter check refuses, such as a multi-tenant key of the maximum length, are passed
//! on all the same. A header that fails the check never panics: the request starts a new trace.

#[cfg(feature = "reqwest")]
mod client;
mod tracestate;

#[cfg(feature = "reqwest")]
pub use client::{TracedRequest, TracedRequestBuilder};

use std::sync::LazyLock;

use http::HeaderMap;
use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, TextMapCompositePropagator, TextMapPropagator as _};
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_http::HeaderInjector;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";
const BAGGAGE: &str = "baggage";

/// The length of a `traceparent` of version `00`: `vv-` + 32 + `-` + 16 + `-` + `ff`.
const TRACEPARENT_LEN: usize = 55;

/// W3C Trace Context then W3C Baggage, the propagator [`telemetry::init`](crate::telemetry::init) makes
/// global.
#[must_use]
pub fn propagator() -> TextMapCompositePropagator {
    TextMapCompositePropagator::new(vec![Box::new(TraceContextPropagator::new()), Box::new(BaggagePropagator::new())])
}

/// The propagator [`extract`] and [`inject_context`] use, made once: building one allocates.
fn shared_propagator() -> &'static TextMapCompositePropagator {
    static PROPAGATOR: LazyLock<TextMapCompositePropagator> = LazyLock::new(propagator);
    &PROPAGATOR
}

/// The trace context and baggage that `headers` carry, as a context of their own (not derived from the
/// current one). Without a valid `traceparent`, the context has no remote span, and a span made under it
/// starts a new trace.
#[must_use]
pub fn extract(headers: &HeaderMap) -> Context {
    let mut checked = CheckedHeaders::new(headers);
    if checked.traceparent.is_none() && checked.baggage.is_none() {
        // Most requests: nothing to read, so no propagator to run.
        return Context::new();
    }
    let context = shared_propagator().extract_with_context(&Context::new(), &checked);
    match checked.kept_aside.take() {
        Some(received) => received.attach(context),
        None => context,
    }
}

/// Writes the current tracing span's context (its trace and span id, sampling decision, trace state and
/// baggage) into `headers`, replacing what they held under those names. Outside any span, nothing is
/// written unless an OpenTelemetry context is current.
pub fn inject(headers: &mut HeaderMap) {
    let span_context = crate::telemetry::otel_context(&tracing::Span::current());
    if span_context.has_active_span() {
        inject_context(&span_context, headers);
    } else {
        inject_context(&Context::current(), headers);
    }
}

/// Writes `context` into `headers`: `traceparent` and a non-empty `tracestate` when it has a valid span,
/// `baggage` when it has baggage.
pub fn inject_context(context: &Context, headers: &mut HeaderMap) {
    shared_propagator().inject_context(context, &mut HeaderInjector(headers));
    let received = tracestate::header_to_send(context, context.span().span_context());
    if let Some(value) = received.and_then(|state| http::HeaderValue::from_str(&state).ok()) {
        headers.insert(TRACESTATE, value);
    }
    // The SDK writes an empty `tracestate` for a span without one; the header is optional, so leave it out.
    if headers.get(TRACESTATE).is_some_and(|value| value.as_bytes().iter().all(u8::is_ascii_whitespace)) {
        headers.remove(TRACESTATE);
    }
}

/// `builder` with the current span's context in its headers (see [`inject`]): the headers only, without
/// the client span and the duration metric that [`TracedRequest::traced`] adds.
#[cfg(feature = "reqwest")]
pub fn inject_reqwest(builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    let mut headers = HeaderMap::new();
    inject(&mut headers);
    builder.headers(headers)
}

/// The propagation headers of a request, checked against the specification and normalised for the SDK.
struct CheckedHeaders {
    traceparent: Option<String>,
    /// The members of the `tracestate` the SDK can hold.
    tracestate: Option<String>,
    /// The whole `tracestate`, when it holds members the SDK cannot.
    kept_aside: Option<tracestate::ReceivedTraceState>,
    baggage: Option<String>,
}

impl CheckedHeaders {
    fn new(headers: &HeaderMap) -> Self {
        let traceparent = single_value(headers, TRACEPARENT).and_then(normalise_traceparent);
        // A `tracestate` is read only along with a valid `traceparent`.
        let joined = traceparent.as_ref().and_then(|_| joined_values(headers, TRACESTATE));
        let members = joined.as_deref().and_then(tracestate::members);
        let (tracestate, kept_aside) = match members {
            Some(members) => {
                let (for_sdk, kept_aside) = tracestate::ReceivedTraceState::split(&members);
                (Some(for_sdk), kept_aside)
            }
            None => (None, None),
        };
        let baggage = joined_values(headers, BAGGAGE);
        CheckedHeaders { traceparent, tracestate, kept_aside, baggage }
    }
}

impl Extractor for CheckedHeaders {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            TRACEPARENT => self.traceparent.as_deref(),
            TRACESTATE => self.tracestate.as_deref(),
            BAGGAGE => self.baggage.as_deref(),
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        [(TRACEPARENT, &self.traceparent), (TRACESTATE, &self.tracestate), (BAGGAGE, &self.baggage)]
            .into_iter()
            .filter_map(|(key, value)| value.as_ref().map(|_| key))
            .collect()
    }
}

/// The header's value if it occurs exactly once and is text.
fn single_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut values = headers.get_all(name).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    value.to_str().ok()
}

/// Every occurrence of the header joined by commas, as HTTP reads a repeated list header; `None` if there
/// is none or one is not text.
fn joined_values(headers: &HeaderMap, name: &str) -> Option<String> {
    let values: Option<Vec<&str>> = headers.get_all(name).iter().map(|value| value.to_str().ok()).collect();
    values.filter(|values| !values.is_empty()).map(|values| values.join(","))
}

/// A `traceparent` the specification accepts, rewritten as version `00` with its first four fields (the
/// only ones any version defines so far); `None` for one it rejects.
fn normalise_traceparent(value: &str) -> Option<String> {
    let value = value.trim_matches([' ', '\t']);
    let bytes = value.as_bytes();
    if bytes.len() < TRACEPARENT_LEN || !value.is_ascii() {
        return None;
    }
    let (version, trace_id, parent_id, flags) = (&value[0..2], &value[3..35], &value[36..52], &value[53..55]);
    let dashes = bytes[2] == b'-' && bytes[35] == b'-' && bytes[52] == b'-';
    let fields_are_hex = [version, trace_id, parent_id, flags].iter().all(|field| is_lower_hex(field));
    if !dashes || !fields_are_hex || version == "ff" {
        return None;
    }
    let length_fits = if version == "00" {
        bytes.len() == TRACEPARENT_LEN
    } else {
        bytes.get(TRACEPARENT_LEN).is_none_or(|byte| *byte == b'-')
    };
    let ids_set = !is_all_zeros(trace_id) && !is_all_zeros(parent_id);
    (length_fits && ids_set).then(|| format!("00-{trace_id}-{parent_id}-{flags}"))
}

fn is_lower_hex(field: &str) -> bool {
    field.bytes().all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
}

fn is_all_zeros(field: &str) -> bool {
    field.bytes().all(|byte| byte == b'0')
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const SPAN_ID: &str = "00f067aa0ba902b7";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, value.parse().expect("a valid header value"));
        }
        headers
    }

    fn remote_span(pairs: &[(&'static str, &str)]) -> Option<(String, String, bool, String)> {
        let context = extract(&headers(pairs));
        let span = context.span();
        let span_context = span.span_context();
        span_context.is_valid().then(|| {
            (
                span_context.trace_id().to_string(),
                span_context.span_id().to_string(),
                span_context.is_sampled(),
                span_context.trace_state().header(),
            )
        })
    }

    #[test]
    fn a_valid_traceparent_is_continued() {
        let header = format!("00-{TRACE_ID}-{SPAN_ID}-01");
        let (trace_id, span_id, sampled, _) = remote_span(&[("traceparent", &header)]).expect("valid");
        assert_eq!((trace_id.as_str(), span_id.as_str(), sampled), (TRACE_ID, SPAN_ID, true));
        let header = format!("00-{TRACE_ID}-{SPAN_ID}-00");
        assert!(!remote_span(&[("traceparent", &header)]).expect("valid").2, "flags 00 is not sampled");
    }

    #[test]
    fn the_specification_s_invalid_traceparents_start_a_new_trace() {
        let invalid = [
            format!("ff-{TRACE_ID}-{SPAN_ID}-01"),
            format!("00-{TRACE_ID}-{SPAN_ID}-01-"),
            format!("00-{TRACE_ID}-{SPAN_ID}-01-extra"),
            format!("00-{}-{SPAN_ID}-01", "0".repeat(32)),
            format!("00-{TRACE_ID}-{}-01", "0".repeat(16)),
            format!("00-{}-{SPAN_ID}-01", &TRACE_ID[1..]),
            format!("00-0{TRACE_ID}-{SPAN_ID}-01"),
            format!("00-{TRACE_ID}-{}-01", &SPAN_ID[1..]),
            format!("00-{}-{SPAN_ID}-01", TRACE_ID.to_uppercase()),
            format!("00-{TRACE_ID}-{SPAN_ID}-0A"),
            format!("0A-{TRACE_ID}-{SPAN_ID}-01"),
            format!("00-{TRACE_ID}-{SPAN_ID}-1"),
            format!("00-{TRACE_ID}-{SPAN_ID}-+1"),
            format!("+0-{TRACE_ID}-{SPAN_ID}-01"),
            format!("00-+{}-{SPAN_ID}-01", &TRACE_ID[1..]),
            format!("00-{TRACE_ID}-{SPAN_ID}-zz"),
            format!("00_{TRACE_ID}_{SPAN_ID}_01"),
            format!("01-{TRACE_ID}-{SPAN_ID}-01x"),
            String::new(),
        ];
        for header in &invalid {
            assert_eq!(remote_span(&[("traceparent", header)]), None, "{header:?} must be rejected");
        }
    }

    #[test]
    fn a_later_version_is_read_by_its_first_fields() {
        let header = format!("cc-{TRACE_ID}-{SPAN_ID}-01-what-the-future-holds");
        let (trace_id, _, sampled, _) = remote_span(&[("traceparent", &header)]).expect("lenient for later versions");
        assert_eq!((trace_id.as_str(), sampled), (TRACE_ID, true));
        let header = format!("01-{TRACE_ID}-{SPAN_ID}-01");
        assert!(remote_span(&[("traceparent", &header)]).is_some());
    }

    #[test]
    fn two_traceparents_are_invalid() {
        let header = format!("00-{TRACE_ID}-{SPAN_ID}-01");
        assert_eq!(remote_span(&[("traceparent", &header), ("traceparent", &header)]), None);
    }

    #[test]
    fn tracestate_headers_are_joined_and_an_invalid_one_is_dropped_alone() {
        let parent = format!("00-{TRACE_ID}-{SPAN_ID}-01");
        let state = remote_span(&[("traceparent", &parent), ("tracestate", "a=1, b=2"), ("tracestate", "c=3")])
            .expect("valid")
            .3;
        assert_eq!(state, "a=1,b=2,c=3");
        for bad in [
            "A=1",
            "@a=1",
            "a=1,=2",
            "a=1,novalue",
            "a=\u{7f}",
            "a=x=y",
            &(0..33).map(|i| format!("k{i}=v")).collect::<Vec<_>>().join(","),
        ] {
            let Ok(value) = http::HeaderValue::from_str(bad) else { continue };
            let mut headers = headers(&[("traceparent", &parent)]);
            headers.append("tracestate", value);
            let context = extract(&headers);
            let span = context.span();
            assert!(span.span_context().is_valid(), "the traceparent stays: {bad:?}");
            assert_eq!(span.span_context().trace_state().header(), "", "{bad:?} must be dropped");
        }
    }

    #[test]
    fn a_repeated_tracestate_key_keeps_its_first_value() {
        let parent = format!("00-{TRACE_ID}-{SPAN_ID}-01");
        let state = remote_span(&[("traceparent", &parent), ("tracestate", "a=1,b=2"), ("tracestate", "a=3")])
            .expect("valid")
            .3;
        assert_eq!(state, "a=1,b=2");
    }

    /// The `tracestate` that `extract` then `inject_context` pass on for `received`.
    fn passed_on(received: &str) -> Option<String> {
        let parent = format!("00-{TRACE_ID}-{SPAN_ID}-01");
        let mut out = HeaderMap::new();
        inject_context(&extract(&headers(&[("traceparent", &parent), ("tracestate", received)])), &mut out);
        out.get("tracestate").map(|value| value.to_str().expect("ASCII").to_owned())
    }

    #[test]
    fn level_2_keys_the_sdk_refuses_are_passed_on_in_order() {
        let longest_multi_tenant = format!("{}@{}", "t".repeat(241), "v".repeat(14));
        let received = format!("a=1,{longest_multi_tenant}=2,foo@bar@baz=3,t@{}=4,b=5", "v".repeat(15));
        assert_eq!(passed_on(&received).as_deref(), Some(received.as_str()));
        // With a repeat, the first value, once.
        let received = format!("{longest_multi_tenant}=1,a=2,{longest_multi_tenant}=3");
        assert_eq!(passed_on(&received), Some(format!("{longest_multi_tenant}=1,a=2")));
    }

    #[test]
    fn a_received_tracestate_is_not_sent_with_another_trace() {
        use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
        let parent = format!("00-{TRACE_ID}-{SPAN_ID}-01");
        let extracted = extract(&headers(&[("traceparent", &parent), ("tracestate", "foo@bar@baz=1")]));
        let other_trace = SpanContext::new(
            TraceId::from(7_u128),
            SpanId::from(9_u64),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        );
        let mut out = HeaderMap::new();
        inject_context(&extracted.with_remote_span_context(other_trace), &mut out);
        assert!(out.contains_key("traceparent"));
        assert!(!out.contains_key("tracestate"), "{out:?}");
    }

    #[test]
    fn inject_writes_what_extract_read_and_no_empty_tracestate() {
        let parent = format!("00-{TRACE_ID}-{SPAN_ID}-01");
        let mut out = HeaderMap::new();
        inject_context(&extract(&headers(&[("traceparent", &parent)])), &mut out);
        assert_eq!(out["traceparent"], parent.as_str());
        assert!(!out.contains_key("tracestate"));

        let mut out = HeaderMap::new();
        inject_context(
            &extract(&headers(&[("traceparent", &parent), ("tracestate", "v=x"), ("baggage", "user=ada")])),
            &mut out,
        );
        assert_eq!(out["tracestate"], "v=x");
        assert_eq!(out["baggage"], "user=ada");
    }

    #[test]
    fn nothing_is_injected_without_a_span() {
        let mut out = HeaderMap::new();
        inject_context(&Context::new(), &mut out);
        assert!(out.is_empty(), "{out:?}");
    }
}
