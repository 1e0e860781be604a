//! A tool call's input, bounded in size and taken apart before any tool parses it: the input comes from
//! the model, and the model repeats what the caller wrote.

use std::io;

use serde_json::Value;

use super::ToolError;

/// The arguments of one call, by tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arguments<'a> {
    Calculator { expression: &'a str },
    Clock,
    Fetch { url: &'a str },
    Memory { op: &'a str, key: &'a str, value: Option<&'a str> },
    Faulty,
}

/// The arguments of `tool` in `input`, refused when the input, as JSON, is over `max_input_bytes`.
pub(crate) fn extract<'a>(tool: &str, input: &'a Value, max_input_bytes: usize) -> Result<Arguments<'a>, ToolError> {
    if !fits(input, max_input_bytes) {
        return Err(ToolError::InvalidInput(format!(
            "the input is over {max_input_bytes} bytes; allowed: at most {max_input_bytes} (tools.max_input_bytes)"
        )));
    }
    if !input.is_object() {
        return Err(ToolError::InvalidInput("the input must be a JSON object".to_owned()));
    }
    let text =
        |key: &str| input[key].as_str().ok_or_else(|| ToolError::InvalidInput(format!("`{key}` must be a string")));
    Ok(match tool {
        "calculator" => Arguments::Calculator { expression: text("expression")? },
        "clock" => Arguments::Clock,
        "fetch" => Arguments::Fetch { url: text("url")? },
        "memory" => {
            let value = match &input["value"] {
                Value::Null => None,
                Value::String(value) => Some(value.as_str()),
                _ => return Err(ToolError::InvalidInput("`value` must be a string".to_owned())),
            };
            Arguments::Memory { op: text("op")?, key: text("key")?, value }
        }
        "faulty" => Arguments::Faulty,
        other => {
            return Err(ToolError::InvalidInput(format!("no tool `{}`", other.chars().take(64).collect::<String>())));
        }
    })
}

/// Whether `input` serialises to at most `limit` bytes; counted without building the text, and stopped
/// at the limit.
fn fits(input: &Value, limit: usize) -> bool {
    let mut counter = Counter { left: limit };
    serde_json::to_writer(&mut counter, input).is_ok()
}

/// A writer that counts down and fails past zero.
struct Counter {
    left: usize,
}

impl io::Write for Counter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.left = self.left.checked_sub(bytes.len()).ok_or_else(|| io::Error::other("over the limit"))?;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    #[test]
    fn each_tool_gets_its_arguments() {
        let input = json!({ "expression": "1+1" });
        assert_eq!(extract("calculator", &input, 100).ok(), Some(Arguments::Calculator { expression: "1+1" }));
        let input = json!({ "op": "set", "key": "k", "value": "v" });
        assert_eq!(
            extract("memory", &input, 100).ok(),
            Some(Arguments::Memory { op: "set", key: "k", value: Some("v") })
        );
        assert_eq!(extract("clock", &json!({}), 100).ok(), Some(Arguments::Clock));
    }

    #[test]
    fn oversized_malformed_and_unknown_inputs_are_refused_with_a_reason() {
        let error = |tool: &str, input: Value, limit: usize| extract(tool, &input, limit).err().map(|e| e.to_string());
        assert_eq!(
            error("calculator", json!({ "expression": "1".repeat(100) }), 64),
            Some("invalid input: the input is over 64 bytes; allowed: at most 64 (tools.max_input_bytes)".to_owned())
        );
        assert!(extract("calculator", &json!({ "expression": "1".repeat(47) }), 64).is_ok(), "64 bytes fit in 64");
        assert!(extract("calculator", &json!({ "expression": "1".repeat(48) }), 64).is_err(), "65 do not");
        assert_eq!(
            error("calculator", json!({ "expression": 7 }), 64),
            Some("invalid input: `expression` must be a string".to_owned())
        );
        assert_eq!(error("clock", json!([1]), 64), Some("invalid input: the input must be a JSON object".to_owned()));
        assert_eq!(
            error("memory", json!({ "op": "set", "key": "k", "value": [] }), 64),
            Some("invalid input: `value` must be a string".to_owned())
        );
        assert_eq!(error("shell", json!({}), 64), Some("invalid input: no tool `shell`".to_owned()));
    }

    /// Any JSON value, nested up to a few levels.
    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            ".{0,40}".prop_map(Value::from),
        ];
        leaf.prop_recursive(6, 256, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("expression".to_owned()),
                        Just("url".to_owned()),
                        Just("op".to_owned()),
                        Just("key".to_owned()),
                        Just("value".to_owned()),
                        ".{0,8}"
                    ],
                    inner,
                    0..8
                )
                .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn any_input_to_any_tool_is_taken_apart_or_refused_without_a_panic(
            tool in prop_oneof![
                Just("calculator".to_owned()), Just("clock".to_owned()), Just("fetch".to_owned()),
                Just("memory".to_owned()), Just("faulty".to_owned()), ".{0,200}",
            ],
            input in json_value(),
            limit in 0usize..4096,
        ) {
            let result = extract(&tool, &input, limit);
            if serde_json::to_string(&input).expect("a value serialises").len() > limit {
                prop_assert!(result.is_err(), "over the limit is refused");
            }
            if let Err(error) = result {
                prop_assert!(error.to_string().len() < 200);
            }
        }
    }
}
