//! W3C `traceparent` and `tracestate`, checked with generated headers: nothing panics, malformed headers
//! start a new trace, valid ones (with Trace Context Level 2's keys) survive extract and inject unchanged,
//! a repeated `tracestate` key is passed on once, and large or garbled headers take bounded time.

use hardened::propagation::{extract, inject_context};
use http::{HeaderMap, HeaderValue};
use opentelemetry::trace::{SpanContext, TraceContextExt as _};
use proptest::prelude::*;
use std::time::{Duration, Instant};

fn headers(traceparent: Option<&str>, tracestate: Option<&str>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in [("traceparent", traceparent), ("tracestate", tracestate)] {
        if let Some(value) = value {
            headers.insert(name, HeaderValue::from_str(value).expect("generated values are header-safe"));
        }
    }
    headers
}

fn remote(headers: &HeaderMap) -> SpanContext {
    extract(headers).span().span_context().clone()
}

fn hex(length: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[0-9a-f]{{{length}}}"))
        .expect("a valid pattern")
        .prop_filter("not all zeros", |id| id.bytes().any(|byte| byte != b'0'))
}

/// A `traceparent` of version `00` the specification accepts, and its parts.
fn valid_traceparent() -> impl Strategy<Value = (String, String, String, u8)> {
    (hex(32), hex(16), any::<u8>()).prop_map(|(trace_id, span_id, flags)| {
        (format!("00-{trace_id}-{span_id}-{flags:02x}"), trace_id, span_id, flags)
    })
}

/// A `tracestate` key of W3C Trace Context Level 2: `( lcalpha / DIGIT ) 0*255 ( keychar )`, `keychar` being
/// `[a-z0-9_*/@-]`. Short keys, multi-tenant keys up to the longest (241 of tenant, `@`, 14 of system),
/// keys the SDK's Level 1 check refuses (several `@`, a long system part), and keys of 256 characters.
fn level_2_key() -> impl Strategy<Value = String> {
    let pattern = |pattern: &str| proptest::string::string_regex(pattern).expect("a valid pattern");
    // Long keys are rarer: generating them is what these tests spend their time on.
    prop_oneof![
        6 => pattern("[a-z0-9][a-z0-9_*/@-]{0,12}"),
        1 => pattern("[a-z0-9][a-z0-9_*/-]{0,240}@[a-z][a-z0-9_*/-]{0,13}"),
        2 => pattern("[a-z0-9][a-z0-9_*/-]{0,20}@[a-z0-9_*/@-]{14,30}"),
        1 => pattern("[a-z0-9][a-z0-9_*/@-]{255}"),
    ]
}

/// A valid `tracestate` value: printable ASCII without `,` or `=`, not ending in a space, up to 256.
fn valid_value() -> impl Strategy<Value = String> {
    prop_oneof![
        9 => proptest::string::string_regex("[ -+--<>-~]{0,15}[!-+--<>-~]").expect("a valid pattern"),
        1 => proptest::string::string_regex("[ -+--<>-~]{255}[!-+--<>-~]").expect("a valid pattern"),
    ]
}

/// A valid `tracestate`: distinct Level 2 keys and valid values, in no particular order.
fn valid_tracestate() -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::btree_map(level_2_key(), valid_value(), 0..8)
        .prop_map(|members| members.into_iter().collect())
        .prop_shuffle()
}

/// `members` as a `tracestate` header value.
fn joined(members: &[(String, String)]) -> String {
    members.iter().map(|(key, value)| format!("{key}={value}")).collect::<Vec<_>>().join(",")
}

/// The `tracestate` extract then inject pass on for `traceparent` and `tracestate`.
fn passed_on(traceparent: &str, tracestate: &str) -> String {
    let mut outgoing = HeaderMap::new();
    inject_context(&extract(&headers(Some(traceparent), Some(tracestate))), &mut outgoing);
    outgoing.get("tracestate").map_or(String::new(), |value| value.to_str().expect("ASCII").to_owned())
}

/// A key off Level 2's grammar: a first character that is not a lowercase letter or digit, an upper-case
/// or foreign character, or 257 characters.
fn invalid_key() -> impl Strategy<Value = String> {
    let pattern = |pattern: &str| proptest::string::string_regex(pattern).expect("a valid pattern");
    prop_oneof![
        pattern("[@_*/-][a-z0-9@]{0,12}"),
        pattern("[a-z][a-z0-9]{0,6}[A-Z.:;!~][a-z0-9@]{0,6}"),
        pattern("[a-z0-9][a-z0-9_*/@-]{256}"),
    ]
}

/// Characters that make any field of a `traceparent` malformed where they replace a character.
fn foreign_char() -> impl Strategy<Value = char> {
    prop_oneof![
        proptest::char::range('A', 'Z'),
        proptest::char::range('g', 'z'),
        Just('+'),
        Just(' '),
        Just('_'),
        Just('.'),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_headers_never_panic(
        traceparent in proptest::collection::vec(any::<u8>(), 0..80),
        tracestate in proptest::collection::vec(any::<u8>(), 0..80),
        baggage in proptest::collection::vec(any::<u8>(), 0..80)
    ) {
        let mut headers = HeaderMap::new();
        for (name, bytes) in [("traceparent", traceparent), ("tracestate", tracestate), ("baggage", baggage)] {
            if let Ok(value) = HeaderValue::from_bytes(&bytes) {
                headers.insert(name, value);
            }
        }
        let context = extract(&headers);
        let mut out = HeaderMap::new();
        inject_context(&context, &mut out);
    }

    #[test]
    fn arbitrary_text_is_accepted_only_in_the_shape_of_a_traceparent(text in "[ -~]{0,70}") {
        // Printable text almost never forms a valid header by chance; when it does, it must be one.
        let span = remote(&headers(Some(&text), None));
        if span.is_valid() {
            prop_assert!(text.trim().len() >= 55 && !text.starts_with("ff"), "{} was accepted", text);
        }
    }

    #[test]
    fn valid_headers_round_trip_through_inject(
        (traceparent, trace_id, span_id, flags) in valid_traceparent(),
        members in valid_tracestate()
    ) {
        let tracestate = joined(&members);
        let incoming = headers(Some(&traceparent), Some(tracestate.as_str()).filter(|state| !state.is_empty()));
        let span = remote(&incoming);
        prop_assert!(span.is_valid() && span.is_remote());
        prop_assert_eq!(span.trace_id().to_string(), trace_id.clone());
        prop_assert_eq!(span.span_id().to_string(), span_id.clone());
        prop_assert_eq!(span.is_sampled(), flags & 1 == 1);

        let mut outgoing = HeaderMap::new();
        inject_context(&extract(&incoming), &mut outgoing);
        // Flags other than `sampled` are not defined for version 00 and are not passed on.
        let expected = format!("00-{trace_id}-{span_id}-{:02x}", flags & 1);
        prop_assert_eq!(outgoing["traceparent"].to_str().ok(), Some(expected.as_str()));
        let sent_state = outgoing.get("tracestate").and_then(|value| value.to_str().ok()).unwrap_or("");
        prop_assert_eq!(sent_state, tracestate.as_str());
    }

    #[test]
    fn a_foreign_character_anywhere_starts_a_new_trace(
        (traceparent, ..) in valid_traceparent(),
        position in 0..55usize, replacement in foreign_char()
    ) {
        let mut mutated: Vec<char> = traceparent.chars().collect();
        mutated[position] = replacement;
        let mutated: String = mutated.into_iter().collect();
        prop_assert!(!remote(&headers(Some(&mutated), None)).is_valid(), "{} was accepted", mutated);
    }

    #[test]
    fn a_wrong_length_starts_a_new_trace(
        (traceparent, ..) in valid_traceparent(),
        position in 0..55usize, inserted in "[0-9a-f-]", delete in any::<bool>()
    ) {
        let mut mutated = traceparent.clone();
        if delete {
            mutated.remove(position);
        } else {
            mutated.insert_str(position, &inserted);
        }
        prop_assert!(!remote(&headers(Some(&mutated), None)).is_valid(), "{} was accepted", mutated);
    }

    #[test]
    fn a_misplaced_dash_starts_a_new_trace((traceparent, ..) in valid_traceparent(), position in 0..55usize) {
        prop_assume!(![2, 35, 52].contains(&position));
        let mut mutated: Vec<char> = traceparent.chars().collect();
        mutated[position] = '-';
        let mutated: String = mutated.into_iter().collect();
        prop_assert!(!remote(&headers(Some(&mutated), None)).is_valid(), "{} was accepted", mutated);
    }

    #[test]
    fn later_versions_are_read_by_their_first_four_fields(
        (traceparent, trace_id, ..) in valid_traceparent(),
        version in 1u8..0xff, suffix in "(-[ -~]{0,20})?"
    ) {
        let header = format!("{version:02x}{}{suffix}", &traceparent[2..]);
        let span = remote(&headers(Some(&header), None));
        prop_assert!(span.is_valid(), "{} was rejected", header);
        prop_assert_eq!(span.trace_id().to_string(), trace_id);
    }

    #[test]
    fn a_garbled_tracestate_never_costs_the_traceparent(
        (traceparent, ..) in valid_traceparent(),
        garbage in "[a-z]{1,5}(=[a-z]{1,5})?(,[a-z]{1,5})?[=,A-Z ]{1,3}",
    ) {
        let span = remote(&headers(Some(&traceparent), Some(&garbage)));
        prop_assert!(span.is_valid());
        let state = span.trace_state().header();
        // Whatever survives is a list of complete members, safe to send on.
        let complete =
            |member: &str| member.split_once('=').is_some_and(|(key, value)| !key.is_empty() && !value.is_empty());
        prop_assert!(state.is_empty() || state.split(',').all(complete), "{}", state);
    }
}

/// What one extract and inject may take, however large or garbled the headers: far above what it takes
/// (microseconds), far below what a parser quadratic in the header's length would take on these sizes.
const BOUNDED: Duration = Duration::from_secs(1);

/// Extracts `headers` and injects the result, within [`BOUNDED`]; returns the headers injected.
fn round_trip_in_bounded_time(headers: &HeaderMap) -> HeaderMap {
    let started = Instant::now();
    let context = extract(headers);
    let mut out = HeaderMap::new();
    inject_context(&context, &mut out);
    let took = started.elapsed();
    assert!(took < BOUNDED, "extract and inject took {took:?}");
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn a_repeated_key_is_passed_on_once_with_its_first_value(
        (traceparent, ..) in valid_traceparent(),
        members in valid_tracestate().prop_filter("a member to repeat", |members| !members.is_empty()),
        repeated in any::<proptest::sample::Index>(),
        value in valid_value(),
        position in any::<proptest::sample::Index>(),
    ) {
        let mut received = members.clone();
        let key = members[repeated.index(members.len())].0.clone();
        let first = received.iter().position(|(seen, _)| *seen == key).expect("the key is there");
        // The repeat goes after the first occurrence: that one is kept.
        let at = first + 1 + position.index(received.len() - first);
        received.insert(at, (key, value));
        prop_assert_eq!(passed_on(&traceparent, &joined(&received)), joined(&members));
    }

    #[test]
    fn the_longest_multi_tenant_key_is_passed_on_among_others(
        (traceparent, ..) in valid_traceparent(),
        members in valid_tracestate(),
        tenant in "[a-z0-9][a-z0-9_*/-]{240}", system in "[a-z][a-z0-9_*/-]{13}",
        value in valid_value(), position in any::<proptest::sample::Index>(),
    ) {
        let key = format!("{tenant}@{system}");
        prop_assume!(members.iter().all(|(seen, _)| *seen != key));
        let mut received = members.clone();
        received.insert(position.index(received.len() + 1), (key, value));
        prop_assert_eq!(passed_on(&traceparent, &joined(&received)), joined(&received));
    }

    #[test]
    fn a_key_off_the_grammar_drops_the_tracestate_and_keeps_the_traceparent(
        (traceparent, trace_id, ..) in valid_traceparent(),
        members in valid_tracestate(),
        key in invalid_key(), value in valid_value(), position in any::<proptest::sample::Index>(),
    ) {
        let mut received = members.clone();
        received.insert(position.index(received.len() + 1), (key, value));
        let incoming = headers(Some(&traceparent), Some(&joined(&received)));
        prop_assert_eq!(remote(&incoming).trace_id().to_string(), trace_id);
        prop_assert_eq!(passed_on(&traceparent, &joined(&received)), "");
    }


    #[test]
    fn large_arbitrary_header_bytes_never_panic_and_take_bounded_time(
        traceparents in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..2_048), 0..4),
        tracestates in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..16_384), 0..4),
    ) {
        let mut headers = HeaderMap::new();
        for (name, values) in [("traceparent", traceparents), ("tracestate", tracestates)] {
            for bytes in values {
                if let Ok(value) = HeaderValue::from_bytes(&bytes) {
                    headers.append(name, value);
                }
            }
        }
        round_trip_in_bounded_time(&headers);
    }

    #[test]
    fn a_valid_traceparent_with_arbitrary_bytes_around_it_never_panics(
        (traceparent, ..) in valid_traceparent(),
        before in proptest::collection::vec(any::<u8>(), 0..64),
        after in proptest::collection::vec(any::<u8>(), 0..4_096),
    ) {
        let bytes = [before.as_slice(), traceparent.as_bytes(), after.as_slice()].concat();
        if let Ok(value) = HeaderValue::from_bytes(&bytes) {
            let mut headers = HeaderMap::new();
            headers.insert("traceparent", value);
            round_trip_in_bounded_time(&headers);
        }
    }

    #[test]
    fn a_tracestate_of_many_members_is_passed_on_within_the_w3c_limit(
        (traceparent, ..) in valid_traceparent(),
        members in 0..5_000usize,
        value_length in 1..300usize,
    ) {
        let value = "v".repeat(value_length);
        let tracestate: Vec<String> = (0..members).map(|index| format!("k{index}={value}")).collect();
        let out = round_trip_in_bounded_time(&headers(Some(&traceparent), Some(&tracestate.join(","))));
        let passed_on = out.get("tracestate").map_or("", |value| value.to_str().expect("ASCII"));
        // W3C trace context: at most 32 list members.
        prop_assert!(passed_on.is_empty() || passed_on.split(',').count() <= 32, "{} members", passed_on.split(',').count());
    }
}

#[test]
fn the_all_zero_ids_and_version_ff_start_a_new_trace() {
    for header in [
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ] {
        assert!(!remote(&headers(Some(header), None)).is_valid(), "{header}");
    }
}
