//! A [`Config`] as TOML text, which [`super::parse`] reads back to an equal `Config`.

use std::fmt::Write as _;

use super::Config;
use super::names::section_path;
use super::operations::{HealthSettings, ServerSettings, ShutdownSettings, Single, TelemetrySettings};
use super::settings::{EachKind, Section, each_kind};
use crate::keys::Keys;

/// The TOML text of `config`: sections in the order of the list of kinds (each kind sorted by name),
/// then telemetry, health, shutdown and server when they set anything; keys in their documented order,
/// durations as humantime strings (`"1m 30s"`), rates as `10` (per second), `"100/min"`, `"5/h"` or
/// `"N/<duration>"`.
///
/// [`parse`](super::parse) reads the text back to a `Config` equal to `config` (apart from `source`, which
/// is not part of the text, and the secrets of URLs, which are [masked](crate::redact::urls): a URL's user
/// name and password, query values and fragment are written `***`).
#[must_use]
pub fn render(config: &Config) -> String {
    let mut out = String::new();
    each_kind(&mut RenderGuardSections { config, out: &mut out });
    render_single::<TelemetrySettings>(config, &mut out);
    render_single::<HealthSettings>(config, &mut out);
    render_single::<ShutdownSettings>(config, &mut out);
    render_single::<ServerSettings>(config, &mut out);
    out
}

/// Writes the sections of every guard kind, kind by kind.
struct RenderGuardSections<'a> {
    config: &'a Config,
    out: &'a mut String,
}

impl EachKind for RenderGuardSections<'_> {
    fn kind<S: Section>(&mut self) {
        for (name, settings) in S::of(self.config) {
            render_table(&section_path(S::KIND, name), settings, self.out);
        }
    }
}

fn render_single<S: Single>(config: &Config, out: &mut String) {
    let settings = S::of(config);
    if !settings.entries().is_empty() {
        render_table(S::SECTION, settings, out);
    }
}

fn render_table(header: &str, settings: &impl Keys, out: &mut String) {
    if !out.is_empty() {
        out.push('\n');
    }
    // Writing to a `String` cannot fail.
    let _ = writeln!(out, "[{header}]");
    for (key, value) in settings.entries() {
        let _ = writeln!(out, "{key} = {value}");
    }
}
