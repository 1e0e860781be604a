//! The `tracestate` header: its check against W3C Trace Context Level 2, and the members the
//! OpenTelemetry SDK cannot hold, carried beside the context so that they are passed on.
//!
//! Level 2's key grammar is `key = ( lcalpha / DIGIT ) 0*255 ( keychar )`, `keychar` being a lowercase
//! letter, a digit, `_`, `-`, `*`, `/` or `@`: a multi-tenant key (`tenant@system`) is one key among
//! others, of up to 256 characters in all. The SDK's `TraceState` checks a shape of its own (one `@`, at
//! most 13 characters after it), so a valid key such as 241 characters of tenant, `@` and 14 of
//! system is one it refuses, and with it the whole header. Such members are kept in a
//! [`ReceivedTraceState`] in the extracted context instead, and written back on inject.

use opentelemetry::Context;
use opentelemetry::trace::{SpanContext, TraceId, TraceState};

/// The most list members a `tracestate` may hold.
const MAX_MEMBERS: usize = 32;
/// The longest key: `( lcalpha / DIGIT ) 0*255 ( keychar )`.
const MAX_KEY_LEN: usize = 256;
/// The longest value: `0*255 ( chr ) nblk-chr`.
const MAX_VALUE_LEN: usize = 256;

/// The members of a (joined) `tracestate` the specification accepts, in order, each key once; `None` for
/// one it rejects: a malformed member (a key or value off the grammar, no `=`) or more than 32 members.
/// Empty and whitespace-only members are allowed and skipped. A key that repeats keeps its first (left-most,
/// most recent) value: Level 2 forbids senders to repeat a key and lets a receiver discard the repeats,
/// which is better than dropping the whole header, and than passing on a list no sender may send.
pub(super) fn members(state: &str) -> Option<Vec<(&str, &str)>> {
    let mut members: Vec<(&str, &str)> = Vec::new();
    let mut count = 0;
    for member in state.split(',').map(|member| member.trim_matches([' ', '\t'])) {
        if member.is_empty() {
            continue;
        }
        count += 1;
        // Stops reading at the 33rd member: the bound on the work a long header costs.
        if count > MAX_MEMBERS {
            return None;
        }
        let (key, value) = member.split_once('=')?;
        if !is_valid_key(key) || !is_valid_value(value) {
            return None;
        }
        if members.iter().all(|(seen, _)| *seen != key) {
            members.push((key, value));
        }
    }
    Some(members)
}

/// Whether `key` follows Level 2's key grammar.
fn is_valid_key(key: &str) -> bool {
    let bytes = key.as_bytes();
    let Some(first) = bytes.first() else { return false };
    let is_keychar = |byte: &u8| byte.is_ascii_lowercase() || byte.is_ascii_digit() || b"_-*/@".contains(byte);
    bytes.len() <= MAX_KEY_LEN
        && (first.is_ascii_lowercase() || first.is_ascii_digit())
        && bytes[1..].iter().all(is_keychar)
}

/// Whether `value` follows the grammar: 1 to 256 printable ASCII characters other than `,` and `=`, the
/// last not a space.
fn is_valid_value(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_VALUE_LEN
        && value.bytes().all(|byte| (0x20..=0x7e).contains(&byte) && byte != b',' && byte != b'=')
        && !value.ends_with(' ')
}

/// Whether the SDK's `TraceState` accepts the member.
fn sdk_holds(key: &str, value: &str) -> bool {
    TraceState::from_key_value([(key, value)]).is_ok()
}

/// A received `tracestate` that holds members the SDK's `TraceState` refuses, kept as a value of the
/// extracted [`Context`] (and so of every span's context under it) for [`header_to_send`].
#[derive(Debug)]
pub(super) struct ReceivedTraceState {
    /// The trace the header came with: a span of another trace under the same context does not send it.
    trace_id: TraceId,
    /// Every member as received (checked, each key once).
    members: Vec<(String, String)>,
    /// The part of `members` the SDK holds, as the remote span context was made with it.
    held_by_sdk: TraceState,
}

impl ReceivedTraceState {
    /// What the SDK should parse of `members` (the members it holds, joined), and, if it cannot hold them
    /// all, the whole list to keep beside the context.
    pub(super) fn split(members: &[(&str, &str)]) -> (String, Option<Self>) {
        let join = |members: &mut dyn Iterator<Item = &(&str, &str)>| {
            members.map(|(key, value)| format!("{key}={value}")).collect::<Vec<_>>().join(",")
        };
        if members.iter().all(|(key, value)| sdk_holds(key, value)) {
            return (join(&mut members.iter()), None);
        }
        let held = join(&mut members.iter().filter(|(key, value)| sdk_holds(key, value)));
        // The trace and what the SDK made of `held` are known once the context is extracted (`attach`).
        let received = ReceivedTraceState {
            trace_id: TraceId::INVALID,
            members: members.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned())).collect(),
            held_by_sdk: TraceState::NONE,
        };
        (held, Some(received))
    }

    /// `context` (extracted from headers that came with this list) with the list as a value, if the
    /// context has the remote span it belongs to.
    pub(super) fn attach(mut self, context: Context) -> Context {
        use opentelemetry::trace::TraceContextExt as _;
        let remote = context.span().span_context().clone();
        if !remote.is_valid() {
            return context;
        }
        self.trace_id = remote.trace_id();
        self.held_by_sdk = remote.trace_state().clone();
        context.with_value(self)
    }
}

/// The `tracestate` to send for `span` in `context`: the list received with the trace when the context
/// carries one the SDK could not hold; `None` to leave the SDK's own. If the trace state was changed since
/// (by a sampler), the SDK's members go first, then the received members it could not hold, within 32.
pub(super) fn header_to_send(context: &Context, span: &SpanContext) -> Option<String> {
    let received = context.get::<ReceivedTraceState>()?;
    if !span.is_valid() || span.trace_id() != received.trace_id {
        return None;
    }
    let current = span.trace_state();
    let members: Vec<String> = if *current == received.held_by_sdk {
        received.members.iter().map(|(key, value)| format!("{key}={value}")).collect()
    } else {
        let held = current.header();
        let kept_aside = received
            .members
            .iter()
            .filter(|(key, value)| !sdk_holds(key, value))
            .map(|(key, value)| format!("{key}={value}"));
        held.split(',').filter(|member| !member.is_empty()).map(str::to_owned).chain(kept_aside).collect()
    };
    Some(members.into_iter().take(MAX_MEMBERS).collect::<Vec<_>>().join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(state: &str) -> Option<Vec<&str>> {
        members(state).map(|members| members.into_iter().map(|(key, _)| key).collect())
    }

    #[test]
    fn level_2_keys_are_valid() {
        let tenant = "t".repeat(241);
        let longest_multi_tenant = format!("{tenant}@{}", "v".repeat(14));
        assert_eq!(longest_multi_tenant.len(), 256);
        for key in [
            "foo",
            "1foo",
            "foo@",
            "foo@@bar",
            "foo@bar@baz",
            "a_b-c*d/e",
            &"z".repeat(256),
            &longest_multi_tenant,
            &format!("{}@v", "t".repeat(242)),
            &format!("t@{}", "v".repeat(15)),
        ] {
            assert_eq!(keys(&format!("{key}=1,bar=2")), Some(vec![key, "bar"]), "{key}");
        }
    }

    #[test]
    fn keys_off_the_grammar_are_invalid() {
        for key in ["@foo", "Foo", "_foo", "foo.bar", "foo ", "f\u{e9}", &"z".repeat(257), ""] {
            assert_eq!(keys(&format!("{key}=1,bar=2")), None, "{key:?}");
        }
    }

    #[test]
    fn a_repeated_key_keeps_its_first_value() {
        assert_eq!(members("foo=1,bar=2,foo=3"), Some(vec![("foo", "1"), ("bar", "2")]));
    }

    #[test]
    fn more_than_32_members_are_invalid_and_empty_ones_do_not_count() {
        let list = |count: usize| (0..count).map(|index| format!("k{index}=v")).collect::<Vec<_>>().join(", ,");
        assert_eq!(members(&list(32)).map(|members| members.len()), Some(32));
        assert_eq!(members(&list(33)), None);
    }

    #[test]
    fn what_the_sdk_refuses_is_kept_aside_and_the_rest_given_to_it() {
        let longest_multi_tenant = format!("{}@{}", "t".repeat(241), "v".repeat(14));
        let received = [("a", "1"), (longest_multi_tenant.as_str(), "2"), ("b", "3")];
        let (for_sdk, kept) = ReceivedTraceState::split(&received);
        assert_eq!(for_sdk, "a=1,b=3");
        assert_eq!(kept.expect("kept aside").members.len(), 3);
        let (for_sdk, kept) = ReceivedTraceState::split(&[("a", "1"), ("t@vendor", "2")]);
        assert_eq!((for_sdk.as_str(), kept.is_none()), ("a=1,t@vendor=2", true));
    }
}
