//! The values of metric labels written in the attribute: `name`, `kind` and the guards' names.

use crate::common::errors::Errors;
use crate::common::meta::Spanned;

/// Label values are limited to a safe character set so that they never need escaping anywhere.
pub(crate) fn label_value(argument: &str, value: &Spanned<String>, errors: &mut Errors) -> String {
    if value.value.is_empty() {
        errors.at(value.span, format!("`{argument}` cannot be empty"));
    } else if let Some(bad) = value.value.chars().find(|c| !(c.is_ascii_alphanumeric() || "_.:-".contains(*c))) {
        let found = match bad {
            ' ' => "a space".to_owned(),
            _ => format!("`{}`", bad.escape_debug()),
        };
        errors.at(
            value.span,
            format!(
                "`{argument}` may contain only ASCII letters, digits, `_`, `.`, `:` and `-`, found {found} in `{}`",
                value.value.escape_debug()
            ),
        );
    }
    value.value.clone()
}
