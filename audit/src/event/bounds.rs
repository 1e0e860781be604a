//! The size bounds of an audit record's fields, so that no caller (an attacker's 60 KB request path, a
//! runaway error message, a huge detail) can make one record large enough to flood the audit trail.
//!
//! A string over its bound is cut on a character boundary and ends with a marker that keeps the original
//! length: `…[truncated: 60000 bytes]`, the whole at most the bound. The details are walked once, when
//! the record is sealed into its chain: past their depth, entry count or total size, what is left out is
//! replaced by a marker saying how much.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde_json::{Map, Value};

use super::{AuditEvent, Details, EventType};

/// At most this many bytes for an identifier: `user_id`, `session_id`, `service`, `trace_id`, `span_id`,
/// a custom event type's name and every key of the details.
pub(crate) const MAX_ID_BYTES: usize = 1024;
/// At most this many bytes for a text: `resource`, `outcome_details` and every string in the details.
pub(crate) const MAX_TEXT_BYTES: usize = 4 * 1024;
/// At most this many bytes for the keys and strings of the details together.
pub(crate) const MAX_DETAILS_BYTES: usize = 16 * 1024;
/// At most this many values in the details, counting those inside arrays and objects.
pub(crate) const MAX_DETAILS_ENTRIES: usize = 256;
/// At most this many levels of values in the details: a value directly in the details is at level 1.
pub(crate) const MAX_DETAILS_DEPTH: usize = 8;

/// The key under which an object of the details says how many of its entries were left out.
const CUT_KEY: &str = "…";

/// Cuts `text` to at most `max` bytes, on a character boundary, ending with the marker of its original
/// length. Only a length check when `text` fits.
pub(crate) fn bound_string(text: &mut String, max: usize) {
    if text.len() > max {
        cut(text, max);
    }
}

/// [`bound_string`] of an owned or borrowed text: a borrowed one that fits stays borrowed.
pub(crate) fn bound_cow(text: &mut Cow<'static, str>, max: usize) {
    if text.len() > max {
        cut(text.to_mut(), max);
    }
}

/// [`bound_string`] of an optional text.
pub(super) fn bound_option(text: &mut Option<String>, max: usize) {
    if let Some(text) = text {
        bound_string(text, max);
    }
}

#[cold]
fn cut(text: &mut String, max: usize) {
    let original = text.len();
    let mut marker = String::with_capacity(32);
    // Writing to a `String` cannot fail.
    let _ = write!(marker, "…[truncated: {original} bytes]");
    let keep = text.floor_char_boundary(max.saturating_sub(marker.len()));
    text.truncate(keep);
    text.push_str(&marker);
}

/// Applies every bound to `event`. Idempotent: a record within its bounds is left as it is.
pub(super) fn bound_event(event: &mut AuditEvent) {
    if let EventType::Custom(name) = &mut event.event_type {
        bound_cow(name, MAX_ID_BYTES);
    }
    bound_cow(&mut event.service, MAX_ID_BYTES);
    bound_option(&mut event.user_id, MAX_ID_BYTES);
    bound_option(&mut event.session_id, MAX_ID_BYTES);
    bound_option(&mut event.trace_id, MAX_ID_BYTES);
    bound_option(&mut event.span_id, MAX_ID_BYTES);
    if let Some(resource) = &mut event.resource {
        bound_cow(resource, MAX_TEXT_BYTES);
    }
    bound_option(&mut event.outcome_details, MAX_TEXT_BYTES);
    bound_details(&mut event.details);
}

/// What the details may still hold.
struct Budget {
    bytes: usize,
    entries: usize,
}

impl Budget {
    /// Takes one entry whose key or position costs `key_bytes`; `false` when there is no room for it.
    fn take_entry(&mut self, key_bytes: usize) -> bool {
        if self.entries == 0 || self.bytes < key_bytes {
            return false;
        }
        self.entries -= 1;
        self.bytes -= key_bytes;
        true
    }
}

/// Bounds the details' keys, strings, depth, entry count and total size.
pub(super) fn bound_details(details: &mut Details) {
    let mut budget = Budget { bytes: MAX_DETAILS_BYTES, entries: MAX_DETAILS_ENTRIES };
    bound_object(details, 1, &mut budget);
}

/// Bounds the entries of `object`, whose values are at level `depth`.
fn bound_object(object: &mut Map<String, Value>, depth: usize, budget: &mut Budget) {
    if object.keys().any(|key| key.len() > MAX_ID_BYTES) {
        let entries = std::mem::take(object);
        for (mut key, value) in entries {
            bound_string(&mut key, MAX_ID_BYTES);
            // Two long keys cut to the same text keep the first one's value.
            object.entry(key).or_insert(value);
        }
    }
    let mut kept = 0;
    for (key, value) in object.iter_mut() {
        if !budget.take_entry(key.len()) {
            break;
        }
        bound_value(value, depth, budget);
        kept += 1;
    }
    let left_out = object.len() - kept;
    if left_out > 0 {
        let doomed: Vec<String> = object.keys().skip(kept).cloned().collect();
        for key in doomed {
            object.remove(&key);
        }
        object.insert(CUT_KEY.to_owned(), Value::String(format!("…[truncated: {left_out} more entries]")));
    }
}

/// Bounds the items of `items`, which are at level `depth`.
fn bound_array(items: &mut Vec<Value>, depth: usize, budget: &mut Budget) {
    let mut kept = 0;
    for item in items.iter_mut() {
        if !budget.take_entry(0) {
            break;
        }
        bound_value(item, depth, budget);
        kept += 1;
    }
    let left_out = items.len() - kept;
    if left_out > 0 {
        items.truncate(kept);
        items.push(Value::String(format!("…[truncated: {left_out} more items]")));
    }
}

/// Bounds `value`, at level `depth`, whose entry has been counted.
fn bound_value(value: &mut Value, depth: usize, budget: &mut Budget) {
    match value {
        Value::String(text) => {
            bound_string(text, MAX_TEXT_BYTES.min(budget.bytes));
            budget.bytes = budget.bytes.saturating_sub(text.len());
        }
        Value::Array(_) | Value::Object(_) if depth >= MAX_DETAILS_DEPTH => {
            *value = Value::String(format!("…[truncated: nested deeper than {MAX_DETAILS_DEPTH} levels]"));
        }
        Value::Array(items) => bound_array(items, depth + 1, budget),
        Value::Object(object) => bound_object(object, depth + 1, budget),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_string_that_fits_is_left_as_it_is() {
        let mut text = "x".repeat(MAX_TEXT_BYTES);
        bound_string(&mut text, MAX_TEXT_BYTES);
        assert_eq!(text, "x".repeat(MAX_TEXT_BYTES));
    }

    #[test]
    fn a_long_string_is_cut_to_its_bound_with_its_original_length() {
        let mut text = "/".repeat(60_000);
        bound_string(&mut text, MAX_TEXT_BYTES);
        assert!(text.len() <= MAX_TEXT_BYTES, "{}", text.len());
        assert!(text.ends_with("…[truncated: 60000 bytes]"), "{}", &text[text.len() - 40..]);
        assert!(text.starts_with("////"));
    }

    #[test]
    fn a_cut_string_is_cut_again_to_itself() {
        let mut text = "é".repeat(10_000);
        bound_string(&mut text, MAX_ID_BYTES);
        let once = text.clone();
        bound_string(&mut text, MAX_ID_BYTES);
        assert_eq!(text, once);
    }

    #[test]
    fn multi_byte_characters_are_never_split() {
        for max in 30..40 {
            let mut text = "日本語".repeat(100);
            bound_string(&mut text, max);
            assert!(text.len() <= max);
            assert!(text.ends_with("…[truncated: 900 bytes]"), "{text}");
            let kept = text.trim_end_matches("…[truncated: 900 bytes]");
            assert!(kept.chars().all(|c| "日本語".contains(c)), "{kept}");
        }
    }

    #[test]
    fn details_nested_too_deep_are_cut_at_the_deepest_level() {
        let mut nested = json!("bottom");
        for _ in 0..50 {
            nested = json!({ "next": nested });
        }
        let mut details = Details::new();
        details.insert("tree".to_owned(), nested);
        bound_details(&mut details);
        let mut level = &details["tree"];
        let mut depth = 1;
        while let Some(next) = level.get("next") {
            level = next;
            depth += 1;
        }
        assert_eq!(depth, MAX_DETAILS_DEPTH);
        assert_eq!(level, &json!(format!("…[truncated: nested deeper than {MAX_DETAILS_DEPTH} levels]")));
    }

    #[test]
    fn details_with_too_many_entries_keep_the_first_and_count_the_rest() {
        let mut details = Details::new();
        details.insert("items".to_owned(), json!((0..10_000).collect::<Vec<_>>()));
        bound_details(&mut details);
        let items = details["items"].as_array().expect("an array");
        assert_eq!(items.len(), MAX_DETAILS_ENTRIES);
        assert_eq!(items[0], json!(0));
        let marker = format!("…[truncated: {} more items]", 10_000 - (MAX_DETAILS_ENTRIES - 1));
        assert_eq!(items[MAX_DETAILS_ENTRIES - 1], json!(marker));
    }

    #[test]
    fn details_over_their_total_size_are_cut_and_say_how_much() {
        let mut details = Details::new();
        for index in 0..100 {
            details.insert(format!("k{index:03}"), json!("v".repeat(1_000)));
        }
        bound_details(&mut details);
        let bytes: usize = details
            .iter()
            .filter(|(key, _)| *key != CUT_KEY)
            .map(|(key, value)| key.len() + value.as_str().map_or(0, str::len))
            .sum();
        assert!(bytes <= MAX_DETAILS_BYTES, "{bytes}");
        assert!(details[CUT_KEY].as_str().expect("a marker").ends_with("more entries]"));
    }

    #[test]
    fn long_keys_are_cut_and_keep_their_values() {
        let mut details = Details::new();
        details.insert("k".repeat(5_000), json!(1));
        bound_details(&mut details);
        let (key, value) = details.iter().next().expect("one entry");
        assert!(key.len() <= MAX_ID_BYTES);
        assert!(key.ends_with("…[truncated: 5000 bytes]"));
        assert_eq!(value, &json!(1));
    }

    #[test]
    fn details_within_their_bounds_are_left_as_they_are() {
        let mut details = Details::new();
        details.insert("query".to_owned(), json!({ "terms": ["a", "b"], "limit": 10, "exact": true }));
        let before = details.clone();
        bound_details(&mut details);
        assert_eq!(details, before);
    }
}
