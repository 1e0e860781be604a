//! A [`Config`] as TOML text, which [`super::parse`] reads back to an equal `Config`.

use std::fmt::Write as _;

use super::Config;
use super::names::section_path;
use super::settings::{BreakerSettings, BulkheadSettings, RateSettings, RetrySettings, Section};

/// The TOML text of `config`: sections in the order breaker, rate, bulkhead, retry, each kind sorted by
/// name, keys in their documented order, durations as humantime strings (`"1m 30s"`), rates as `10` (per
/// second), `"100/min"`, `"5/h"` or `"N/<duration>"`.
///
/// [`parse`](super::parse) reads the text back to a `Config` equal to `config` (apart from `source`, which
/// is not part of the text).
#[must_use]
pub fn render(config: &Config) -> String {
    let mut out = String::new();
    render_kind::<BreakerSettings>(config, &mut out);
    render_kind::<RateSettings>(config, &mut out);
    render_kind::<BulkheadSettings>(config, &mut out);
    render_kind::<RetrySettings>(config, &mut out);
    out
}

fn render_kind<S: Section>(config: &Config, out: &mut String) {
    for (name, settings) in S::of(config) {
        if !out.is_empty() {
            out.push('\n');
        }
        // Writing to a `String` cannot fail.
        let _ = writeln!(out, "[{}]", section_path(S::KIND, name));
        for (key, value) in settings.entries() {
            let _ = writeln!(out, "{key} = {value}");
        }
    }
}
