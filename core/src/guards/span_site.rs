//! The span of a call site: its tracing callsite and metadata as statics the macro writes in a few
//! lines, and the span of each call made here, in the runtime rather than in every function.
//!
//! `tracing::span!` expands to about a hundred lines per call site (a block per field name, the level
//! checks, the value set); the fields every `#[hardened]` span carries are the same for all sites, so
//! they are named here once and their values read from the [`Site`].

use tracing::callsite::{Callsite as _, DefaultCallsite};
use tracing::field::{Empty, FieldSet, Value};
use tracing::level_filters::{LevelFilter, STATIC_MAX_LEVEL};
use tracing::metadata::Kind;
use tracing::{Level, Metadata, Span};

use crate::guards::site::Site;

/// The fields of every call's span, in the order `SpanSite` gives their values.
pub const FIELDS: [&str; 6] =
    ["code.function", "code.namespace", "hardened.kind", "otel.kind", "otel.status_code", "error.message"];

/// The fields of a tool call's span: [`FIELDS`], then the OpenTelemetry `GenAI` `execute_tool` operation.
pub const TOOL_FIELDS: [&str; 8] =
    [FIELDS[0], FIELDS[1], FIELDS[2], FIELDS[3], FIELDS[4], FIELDS[5], "gen_ai.operation.name", "gen_ai.tool.name"];

/// The most fields a span names after the fixed ones (`fields(..)`); the attribute refuses more.
const MAX_EXTRA_FIELDS: usize = hardened_schema::MAX_SPAN_FIELDS;

/// The field names of a site's span: `fixed` ([`FIELDS`] or [`TOOL_FIELDS`]) followed by `extra`, the
/// names `fields(..)` adds. `N` is their sum.
///
/// # Panics
///
/// When `N` is not their sum: in the static the macro writes, a compile error.
#[must_use]
pub const fn field_names<const N: usize>(fixed: &[&'static str], extra: &[&'static str]) -> [&'static str; N] {
    assert!(fixed.len() + extra.len() == N, "the span's field count is the sum of its parts");
    let mut names = [""; N];
    let mut at = 0;
    while at < N {
        names[at] = if at < fixed.len() { fixed[at] } else { extra[at - fixed.len()] };
        at += 1;
    }
    names
}

/// The metadata of a site's span: named `name`, at `level`, written at `file:line` in `module`, with
/// the fields `names`, identified by `site`'s callsite.
#[must_use]
pub const fn span_metadata(
    name: &'static str,
    module: &'static str,
    level: Level,
    file: &'static str,
    line: u32,
    names: &'static [&'static str],
    site: &'static SpanSite,
) -> Metadata<'static> {
    let callsite = tracing::callsite::Identifier(&site.callsite);
    Metadata::new(name, module, level, Some(file), Some(line), Some(module), FieldSet::new(names, callsite), Kind::SPAN)
}

/// A call site's span callsite: what `tracing::span!` keeps in its statics, and the site it describes.
#[derive(Debug)]
pub struct SpanSite {
    callsite: DefaultCallsite,
    site: &'static Site,
}

impl SpanSite {
    /// The callsite of the span described by `metadata`, for the calls of `site`.
    #[must_use]
    pub const fn new(metadata: &'static Metadata<'static>, site: &'static Site) -> SpanSite {
        SpanSite { callsite: DefaultCallsite::new(metadata), site }
    }

    /// The span of one call, disabled when no subscriber wants it.
    #[inline]
    pub fn span(&'static self) -> Span {
        self.span_with(|record| record(&[]))
    }

    /// The span of one call with the values of the fields `fields(..)` added, which `extra` hands to
    /// the function it is given, in the order of their names; it is called only when the span is
    /// enabled, so that the values are evaluated only then.
    #[inline]
    pub fn span_with(&'static self, extra: impl FnOnce(&mut dyn FnMut(&[Option<&dyn Value>]))) -> Span {
        let metadata = self.callsite.metadata();
        if !self.enabled(metadata) {
            return Span::new_disabled(metadata);
        }
        let mut span = None;
        extra(&mut |extra| span = Some(self.new_span(metadata, extra)));
        span.unwrap_or_else(|| Span::new_disabled(metadata))
    }

    /// Whether a subscriber wants this span, as `tracing::span!` asks: the static and global level
    /// filters, then the callsite's cached interest, then the current dispatcher.
    #[inline]
    fn enabled(&'static self, metadata: &'static Metadata<'static>) -> bool {
        let level = *metadata.level();
        if level > STATIC_MAX_LEVEL || level > LevelFilter::current() {
            return false;
        }
        let interest = self.callsite.interest();
        !interest.is_never()
            && (interest.is_always() || tracing::dispatcher::get_default(|dispatch| dispatch.enabled(metadata)))
    }

    #[cold]
    fn new_span(&'static self, metadata: &'static Metadata<'static>, extra: &[Option<&dyn Value>]) -> Span {
        let site = self.site;
        let (function, module, kind, name) = (site.function(), site.module(), site.kind(), site.name());
        let fixed: [Option<&dyn Value>; TOOL_FIELDS.len()] = [
            Some(&function),
            Some(&module),
            Some(&kind),
            Some(&"internal"),
            Some(&Empty),
            Some(&Empty),
            Some(&"execute_tool"),
            Some(&name),
        ];
        let fixed = &fixed[..metadata.fields().len() - extra.len()];
        let mut values: [Option<&dyn Value>; TOOL_FIELDS.len() + MAX_EXTRA_FIELDS] =
            [None; TOOL_FIELDS.len() + MAX_EXTRA_FIELDS];
        values[..fixed.len()].copy_from_slice(fixed);
        values[fixed.len()..fixed.len() + extra.len()].copy_from_slice(extra);
        // The value set `tracing::span!` makes, through the same hidden constructor its expansion calls.
        Span::new(metadata, &metadata.fields().value_set_all(&values[..fixed.len() + extra.len()]))
    }
}
