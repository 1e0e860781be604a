//! Layering optional settings over a configuration.

/// Sets `target` to `value` when there is one: a setting written over a default.
pub fn overlay<T>(target: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *target = value;
    }
}
