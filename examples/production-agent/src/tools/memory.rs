//! The memory tool: values by key, per session, within the limits of `[tools.memory]`, so that no caller
//! can grow a session's memory without bound.

use std::collections::BTreeMap;

use hardened::hardened;

use super::ToolError;
use crate::settings::MemorySettings;

/// A value by key, per session. The key and value are the caller's words: neither is a span field, and
/// neither is in an error text (error texts are recorded in the audit trail).
#[hardened(kind = "tool", audit, fields(op))]
pub(super) fn memory(
    memory: &mut BTreeMap<String, String>,
    limits: &MemorySettings,
    op: &str,
    key: &str,
    value: Option<&str>,
) -> Result<String, ToolError> {
    match (op, value) {
        ("set", Some(value)) => {
            if key.len() > limits.max_key_bytes {
                return Err(ToolError::InvalidInput(format!(
                    "`key` is {} bytes; allowed: at most {} (tools.memory.max_key_bytes)",
                    key.len(),
                    limits.max_key_bytes
                )));
            }
            if value.len() > limits.max_value_bytes {
                return Err(ToolError::InvalidInput(format!(
                    "`value` is {} bytes; allowed: at most {} (tools.memory.max_value_bytes)",
                    value.len(),
                    limits.max_value_bytes
                )));
            }
            if memory.len() >= limits.max_entries && !memory.contains_key(key) {
                return Err(ToolError::Failed(format!(
                    "this session remembers {} values already; allowed: at most {} (tools.memory.max_entries), \
                     a remembered key may be set again",
                    memory.len(),
                    limits.max_entries
                )));
            }
            memory.insert(key.to_owned(), value.to_owned());
            Ok(format!("remembered {key}"))
        }
        ("get", _) => {
            memory.get(key).cloned().ok_or_else(|| ToolError::Failed("nothing is remembered by that key".to_owned()))
        }
        ("set", None) => Err(ToolError::InvalidInput("`set` needs a `value`".to_owned())),
        (other, _) => Err(ToolError::InvalidInput(format!(
            "`op` is `{}`; allowed: \"set\", \"get\"",
            other.chars().take(16).collect::<String>()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: MemorySettings = MemorySettings { max_entries: 2, max_key_bytes: 4, max_value_bytes: 8 };

    #[test]
    fn entries_keys_and_values_are_bounded() {
        let mut store = BTreeMap::new();
        assert_eq!(memory(&mut store, &LIMITS, "set", "a", Some("1")).ok(), Some("remembered a".to_owned()));
        assert_eq!(memory(&mut store, &LIMITS, "set", "b", Some("2")).ok(), Some("remembered b".to_owned()));
        let full = memory(&mut store, &LIMITS, "set", "c", Some("3")).expect_err("a third entry is refused");
        assert_eq!(
            full.to_string(),
            "this session remembers 2 values already; allowed: at most 2 (tools.memory.max_entries), a remembered \
             key may be set again"
        );
        assert!(memory(&mut store, &LIMITS, "set", "a", Some("again")).is_ok(), "replacing is allowed when full");
        assert_eq!(memory(&mut store, &LIMITS, "get", "a", None).ok(), Some("again".to_owned()));

        let long_key = memory(&mut store, &LIMITS, "set", "abcde", Some("1")).expect_err("a long key is refused");
        assert_eq!(
            long_key.to_string(),
            "invalid input: `key` is 5 bytes; allowed: at most 4 (tools.memory.max_key_bytes)"
        );
        let long_value = memory(&mut store, &LIMITS, "set", "a", Some("123456789")).expect_err("refused");
        assert_eq!(
            long_value.to_string(),
            "invalid input: `value` is 9 bytes; allowed: at most 8 (tools.memory.max_value_bytes)"
        );
        assert_eq!(store.len(), 2);
    }

    #[test]
    fn errors_do_not_repeat_the_key() {
        let mut store = BTreeMap::new();
        let missing = memory(&mut store, &LIMITS, "get", "planted", None).expect_err("nothing remembered");
        assert!(!missing.to_string().contains("planted"));
    }
}
