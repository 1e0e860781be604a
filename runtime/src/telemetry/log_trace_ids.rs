//! Log lines that name their trace: `trace_id` and `span_id`, first in a JSON line and last in a readable
//! one, for going from a line to its trace in the tracing backend, and for finding every line of one
//! request.

use std::cell::RefCell;
use std::fmt;

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// An event format with the ids of the current span's OpenTelemetry context added to each line written
/// inside a span: first in a JSON line, as its first two keys; last in a readable one, as two more
/// fields. A line outside every span, or whose span has no OpenTelemetry context, is the inner format's
/// as it is.
///
/// The context is asked of the default dispatcher, which a subscriber callback sees only when it is the
/// global one (inside a callback, a scoped dispatcher set with `with_default` is not visible): so under
/// [`init`](super::init), not under a scoped subscriber.
#[derive(Debug, Clone)]
pub(crate) struct WithTraceIds<F> {
    inner: F,
    placement: Placement,
}

/// Where the ids go in a line.
#[derive(Debug, Clone, Copy)]
enum Placement {
    /// The first keys of a JSON object.
    JsonFirst,
    /// The last fields of a readable line, before its newline; styled as its other fields when coloured.
    ReadableLast { colours: bool },
}

impl<F> WithTraceIds<F> {
    /// Ids first in each JSON line of `inner`.
    pub(crate) fn json(inner: F) -> Self {
        WithTraceIds { inner, placement: Placement::JsonFirst }
    }

    /// Ids last in each readable line of `inner`, with escape codes if `colours`.
    pub(crate) fn readable(inner: F, colours: bool) -> Self {
        WithTraceIds { inner, placement: Placement::ReadableLast { colours } }
    }
}

thread_local! {
    /// One line as the inner format writes it, kept between lines so that formatting allocates nothing.
    static LINE: RefCell<String> = const { RefCell::new(String::new()) };
}

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
    N: for<'writer> FormatFields<'writer> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        // The subscriber's current span, not the log filter's: a line the log keeps inside a span only the
        // trace filter lets through still names its trace.
        let ids = tracing::dispatcher::get_default(|dispatch| {
            let span = dispatch.current_span().id().cloned().or_else(|| ctx.lookup_current().map(|span| span.id()))?;
            crate::span_context::context_of(&span, dispatch)
        })
        .as_ref()
        .and_then(super::trace_ids_of);
        let Some(ids) = ids else {
            return self.inner.format_event(ctx, writer, event);
        };
        LINE.with(|line| {
            // A line logged while this one is formatted (from a field's `Debug`, say) finds the buffer in
            // use, and goes out without ids.
            let Ok(mut line) = line.try_borrow_mut() else {
                return self.inner.format_event(ctx, writer, event);
            };
            line.clear();
            self.inner.format_event(ctx, Writer::new(&mut *line), event)?;
            let (trace_id, span_id) = (ids.trace_id_hex(), ids.span_id_hex());
            match self.placement {
                Placement::JsonFirst => match line.strip_prefix('{') {
                    Some(rest) => write!(writer, "{{\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\",{rest}"),
                    None => writer.write_str(&line),
                },
                Placement::ReadableLast { colours } => {
                    let body = line.strip_suffix('\n').unwrap_or(&line);
                    // Italic names and a dimmed `=`, as the readable fields are written.
                    let (name, equals) = if colours { ("\x1b[3m", "\x1b[0m\x1b[2m=\x1b[0m") } else { ("", "=") };
                    writeln!(writer, "{body} {name}trace_id{equals}{trace_id} {name}span_id{equals}{span_id}")
                }
            }
        })
    }
}
