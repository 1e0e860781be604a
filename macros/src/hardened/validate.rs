//! Checks the arguments against each other and against the function, producing a [`Plan`] of checked
//! facts that expansion turns into code without further questions.

use proc_macro2::Span;
use syn::{Block, Expr, Ident, Path, Signature};

use super::args::{Args, Field};
use super::audit::{self, AuditPlan};
use super::guards::{self, GuardPlan};
use super::labels::label_value;
use crate::common::errors::Errors;
use crate::common::meta::{Spanned, key_span};
use crate::common::signature::{self, Analysis};
use crate::common::suggest;

/// Most bucket bounds one histogram may have: the configuration's limit too.
pub(crate) const MAX_BUCKETS: usize = hardened_schema::MAX_BUCKETS;

const LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error"];

/// A span level, as the tracing constant it names.
#[derive(Clone, Copy)]
pub(crate) enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// Which predicate decides the outcome.
pub(crate) enum Predicate {
    /// `ok_if = path`: a success exactly when the function returns true.
    OkIf(Path),
    /// `error_if = path`: a failure exactly when the function returns true.
    ErrorIf(Path),
}

/// Where the attribute sits, which decides what some arguments may do.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placement {
    /// On a function or on one method.
    Function,
    /// On a method because its `impl` block is annotated.
    ImplMethod,
}

/// Everything expansion needs, already checked.
pub(crate) struct Plan {
    pub(crate) krate: Path,
    pub(crate) name: String,
    pub(crate) kind: String,
    pub(crate) level: Level,
    pub(crate) span: bool,
    pub(crate) metrics: bool,
    /// `histogram = ..`, when written: whether calls are timed into the duration histogram.
    pub(crate) histogram: Option<bool>,
    pub(crate) fields: Vec<Field>,
    pub(crate) predicate: Option<Predicate>,
    /// Histogram bounds in seconds, when the function overrides the defaults.
    pub(crate) buckets: Option<Vec<f64>>,
    pub(crate) written: String,
    pub(crate) analysis: Analysis,
    pub(crate) guards: GuardPlan,
    pub(crate) audit: Option<AuditPlan>,
    /// The objective the calls count towards, if any.
    pub(crate) slo: Option<super::slo::SloPlan>,
}

/// Checks `args` for the function with signature `sig` and body `block`; `None` when any error was found.
pub(crate) fn plan(
    args: Args,
    sig: &Signature,
    block: &Block,
    placement: Placement,
    errors: &mut Errors,
) -> Option<Plan> {
    let before = errors.is_empty();
    check_signature(sig, errors);
    if let Some(skip) = args.skip
        && placement == Placement::Function
    {
        errors.at(skip, "`skip` opts a method out of an annotated `impl` block; here there is nothing to opt out of");
    }
    let name = match &args.name {
        Some(name) => label_value("name", name, errors),
        None => sig.ident.unraw_name(),
    };
    let kind = args.kind.as_ref().map_or_else(|| "function".to_owned(), |kind| label_value("kind", kind, errors));
    let level = args.level.as_ref().map_or(Level::Info, |level| parse_level(level, errors));
    let histogram = check_histogram(&args, errors);
    let predicate = match (args.ok_if, args.error_if) {
        (Some(_), Some(_)) => {
            errors.at(
                later_key(&args.keys, "ok_if", "error_if"),
                "`ok_if` and `error_if` cannot be used together; keep one of them",
            );
            None
        }
        (Some(ok_if), None) => Some(Predicate::OkIf(ok_if)),
        (None, Some(error_if)) => Some(Predicate::ErrorIf(error_if)),
        (None, None) => None,
    };
    let fields = args.fields.map(|fields| check_fields(fields.value, sig, errors)).unwrap_or_default();
    let buckets = args.buckets.as_ref().map(|buckets| check_buckets(buckets, errors));
    let metrics_off = args.metrics.as_ref().filter(|metrics| !metrics.value);
    let histogram_off = args.histogram.as_ref().filter(|histogram| !histogram.value);
    let slo = args.slo.and_then(|slo| super::slo::plan(slo, buckets.as_deref(), metrics_off, histogram_off, errors));
    let analysis = signature::analyse(sig, block);
    let (hedge_at, audited) = (key_span(&args.keys, "hedge"), args.audit.is_some());
    let guards = guards::plan(args.guards, sig, &analysis, errors);
    if audited && guards.hedges_unmarked() {
        errors.at(
            hedge_at.unwrap_or_else(Span::call_site),
            format!(
                "`hedge` on an audited function needs its author's word that the body may run twice; write \
                 `hedge(.., idempotent)` if `{}` is safe to repeat\n  = note: a hedged call starts a second \
                 attempt while the first still runs, so the audited action can happen twice",
                sig.ident
            ),
        );
    }
    let audit = audit::plan(args.audit, &kind, sig, errors);
    if !(before && errors.is_empty()) {
        return None;
    }
    Some(Plan {
        krate: args.krate.unwrap_or_else(|| syn::parse_quote!(::hardened)),
        name,
        kind,
        level,
        span: args.span.is_none_or(|span| span.value),
        metrics: args.metrics.is_none_or(|metrics| metrics.value),
        histogram,
        fields,
        predicate,
        buckets,
        written: args.written,
        analysis,
        guards,
        audit,
        slo,
    })
}

/// The span of whichever of two written keys comes second, to point at the one that conflicts.
fn later_key(keys: &[(&str, Span)], a: &str, b: &str) -> Span {
    keys.iter()
        .filter(|(key, _)| *key == a || *key == b)
        .nth(1)
        .or_else(|| keys.iter().find(|(key, _)| *key == a || *key == b))
        .map_or_else(Span::call_site, |(_, span)| *span)
}

fn check_signature(sig: &Signature, errors: &mut Errors) {
    if let Some(constness) = &sig.constness {
        errors.over(constness, "`#[hardened]` cannot wrap a `const fn`: spans and metrics happen at run time");
    }
    if let Some(abi) = &sig.abi {
        errors.over(abi, "`#[hardened]` cannot wrap an `extern` function; wrap a Rust function that it calls instead");
    }
    if let Some(variadic) = &sig.variadic {
        errors.over(variadic, "`#[hardened]` cannot wrap a variadic function");
    }
}

fn parse_level(level: &Spanned<String>, errors: &mut Errors) -> Level {
    match level.value.as_str() {
        "trace" => Level::Trace,
        "debug" => Level::Debug,
        "info" => Level::Info,
        "warn" => Level::Warn,
        "error" => Level::Error,
        other => {
            let suggestion = suggest::closest(&other.to_ascii_lowercase(), LEVELS)
                .map(|level| format!("; did you mean `{level}`?"))
                .unwrap_or_default();
            errors.at(
                level.span,
                format!(
                    "`level` must be one of {}, found `{}`{suggestion}",
                    suggest::one_of(LEVELS),
                    other.escape_debug()
                ),
            );
            Level::Info
        }
    }
}

fn check_fields(fields: Vec<Field>, sig: &Signature, errors: &mut Errors) -> Vec<Field> {
    let arguments = signature::argument_names(sig);
    let argument_list: Vec<String> = arguments.iter().map(ToString::to_string).collect();
    let argument_refs: Vec<&str> = argument_list.iter().map(String::as_str).collect();
    let mut seen: Vec<String> = Vec::new();
    if let Some(extra) = fields.get(hardened_schema::MAX_SPAN_FIELDS) {
        let most = hardened_schema::MAX_SPAN_FIELDS;
        errors.over(&extra.key, format!("`fields` records at most {most} values; this is one more"));
    }
    for field in &fields {
        let key = field.key.to_string();
        if seen.contains(&key) {
            errors.over(&field.key, format!("field `{key}` is recorded more than once"));
        }
        seen.push(key);
        let named_argument = match &field.value {
            None => Some(&field.key),
            Some(Expr::Path(path)) if path.qself.is_none() => {
                path.path.get_ident().filter(|ident| is_binding_like(ident))
            }
            Some(_) => None,
        };
        if let Some(ident) = named_argument
            && !arguments.iter().any(|argument| argument == ident)
        {
            let function = &sig.ident;
            let known = if argument_refs.is_empty() {
                format!("`{function}` takes no arguments")
            } else {
                format!("its arguments are {}", suggest::all_of(&argument_refs))
            };
            errors.over(ident, format!("`fields` names `{ident}`, which is not an argument of `{function}`; {known}"));
        }
    }
    fields
}

/// Lower-case identifiers are bindings; upper-case ones are constants, which `fields` may record too.
fn is_binding_like(ident: &Ident) -> bool {
    ident.to_string().starts_with(|c: char| c.is_lowercase() || c == '_')
}

/// `histogram = false` leaves the bounds nothing to bound, and is said already by `metrics = false`.
fn check_histogram(args: &Args, errors: &mut Errors) -> Option<bool> {
    let histogram = args.histogram.as_ref()?;
    if !histogram.value {
        if args.buckets.is_some() {
            errors.at(
                later_key(&args.keys, "buckets", "histogram"),
                "`buckets` sets the bounds of the duration histogram, which `histogram = false` leaves out; remove \
                 one of the two",
            );
        }
        if args.metrics.as_ref().is_some_and(|metrics| !metrics.value) {
            errors.at(
                histogram.span,
                "`metrics = false` turns off every metric of the function, its histogram with them; remove \
                 `histogram = false`",
            );
        }
    }
    Some(histogram.value)
}

fn check_buckets(buckets: &Spanned<Vec<Spanned<f64>>>, errors: &mut Errors) -> Vec<f64> {
    let bounds = &buckets.value;
    if bounds.is_empty() {
        errors.at(buckets.span, "`buckets` needs at least one bound");
    }
    if bounds.len() > MAX_BUCKETS {
        errors.at(buckets.span, format!("`buckets` takes at most {MAX_BUCKETS} bounds, found {}", bounds.len()));
    }
    for bound in bounds {
        if !is_positive(bound.value) {
            errors
                .at(bound.span, format!("bucket bounds must be positive numbers of seconds, found `{}`", bound.value));
        } else if hardened_schema::bucket_nanos(bound.value).is_none() {
            errors.at(
                bound.span,
                format!("bucket bounds must be from 1 ns (0.000000001) to 1000000000 seconds, found `{}`", bound.value),
            );
        }
    }
    for pair in bounds.windows(2) {
        // A bound that is out of range has its own error already; bounds are compared as the nanoseconds
        // they are kept in, so that two that round to one are refused too.
        let [earlier, later] = [&pair[0], &pair[1]].map(|bound| hardened_schema::bucket_nanos(bound.value));
        if let (Some(earlier), Some(later)) = (earlier, later)
            && later <= earlier
        {
            errors.at(
                pair[1].span,
                format!("bucket bounds must increase, but `{}` follows `{}`", pair[1].value, pair[0].value),
            );
        }
    }
    bounds.iter().map(|bound| bound.value).collect()
}

fn is_positive(seconds: f64) -> bool {
    seconds.is_finite() && seconds > 0.0
}

trait UnrawName {
    fn unraw_name(&self) -> String;
}

impl UnrawName for Ident {
    /// `r#type` is named `type` in labels and span names.
    fn unraw_name(&self) -> String {
        let name = self.to_string();
        name.strip_prefix("r#").map_or_else(|| name.clone(), ToOwned::to_owned)
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;
    use syn::{ItemFn, parse_quote};

    use super::*;

    fn check(args: proc_macro2::TokenStream, item: &ItemFn) -> Result<Plan, Vec<String>> {
        let mut errors = Errors::default();
        let args = Args::parse(args, &mut errors);
        let plan = plan(args, &item.sig, &item.block, Placement::Function, &mut errors);
        match errors.finish() {
            Ok(()) => Ok(plan.expect("a plan when there are no errors")),
            Err(error) => Err(error.into_iter().map(|error| error.to_string()).collect()),
        }
    }

    #[test]
    fn defaults_name_and_kind_from_the_function() {
        let item: ItemFn = parse_quote! { fn r#type(x: u8) -> u8 { x } };
        let plan = check(quote! {}, &item).expect("valid");
        assert_eq!(plan.name, "type");
        assert_eq!(plan.kind, "function");
        assert!(plan.span && plan.metrics);
    }

    #[test]
    fn rejects_bad_labels_fields_and_buckets_together() {
        let item: ItemFn = parse_quote! { fn lookup(key: &str) -> u8 { 1 } };
        let errors = check(
            quote! { name = "", kind = "a b", fields(query), ok_if = a, error_if = b, buckets = [1.0, 0.5, -1.0] },
            &item,
        )
        .err()
        .expect("invalid");
        assert_eq!(
            errors,
            [
                "`name` cannot be empty",
                "`kind` may contain only ASCII letters, digits, `_`, `.`, `:` and `-`, found a space in `a b`",
                "`ok_if` and `error_if` cannot be used together; keep one of them",
                "`fields` names `query`, which is not an argument of `lookup`; its arguments are `key`",
                "bucket bounds must be positive numbers of seconds, found `-1`",
                "bucket bounds must increase, but `0.5` follows `1`",
            ]
        );
    }

    #[test]
    fn a_histogram_left_out_takes_no_buckets_and_says_nothing_that_metrics_off_does_not() {
        let item: ItemFn = parse_quote! { fn f() {} };
        let plan = check(quote! { histogram = false }, &item).expect("valid");
        assert_eq!(plan.histogram, Some(false));
        assert_eq!(check(quote! {}, &item).expect("valid").histogram, None);
        let errors = check(quote! { histogram = false, buckets = [1.0] }, &item).err().expect("invalid");
        assert_eq!(
            errors,
            [
                "`buckets` sets the bounds of the duration histogram, which `histogram = false` leaves out; remove one of the two"
            ]
        );
        let errors = check(quote! { metrics = false, histogram = false }, &item).err().expect("invalid");
        assert_eq!(
            errors,
            [
                "`metrics = false` turns off every metric of the function, its histogram with them; remove `histogram = false`"
            ]
        );
        assert!(check(quote! { histogram = true, buckets = [1.0] }, &item).is_ok());
    }

    #[test]
    fn an_objectives_latency_needs_the_histogram() {
        let item: ItemFn = parse_quote! { fn f() {} };
        let errors =
            check(quote! { histogram = false, slo(name = "chat", latency = "1s", latency_target = 99) }, &item)
                .err()
                .expect("invalid");
        assert_eq!(
            errors,
            [
                "`slo(latency = ..)` judges the calls by their duration histogram, which `histogram = false` leaves out; remove one of the two"
            ]
        );
        assert!(check(quote! { histogram = false, slo(name = "chat", success = 99.9) }, &item).is_ok());
    }

    #[test]
    fn bucket_bounds_are_compared_in_the_nanoseconds_they_are_kept_in() {
        let item: ItemFn = parse_quote! { fn f() {} };
        let errors = check(quote! { buckets = [0.0000000001, 0.000000001, 0.0000000012] }, &item).err();
        assert_eq!(
            errors.expect("invalid"),
            [
                "bucket bounds must be from 1 ns (0.000000001) to 1000000000 seconds, found `0.0000000001`",
                "bucket bounds must increase, but `0.0000000012` follows `0.000000001`",
            ]
        );
    }

    #[test]
    fn constants_may_be_recorded_but_unknown_bindings_may_not() {
        let item: ItemFn = parse_quote! { fn f(a: u8) {} };
        assert!(check(quote! { fields(version = VERSION, a) }, &item).is_ok());
        assert!(check(quote! { fields(b = missing) }, &item).is_err());
    }

    #[test]
    fn suggests_a_level_and_lists_the_others() {
        let item: ItemFn = parse_quote! { fn f() {} };
        let errors = check(quote! { level = "Warning" }, &item).err().expect("invalid");
        assert_eq!(
            errors,
            [
                "`level` must be one of `trace`, `debug`, `info`, `warn` or `error`, found `Warning`; did you mean `warn`?"
            ]
        );
        let errors = check(quote! { level = "loud" }, &item).err().expect("invalid");
        assert_eq!(errors, ["`level` must be one of `trace`, `debug`, `info`, `warn` or `error`, found `loud`"]);
    }

    #[test]
    fn a_method_predicate_replaces_the_block_predicate() {
        let item: ItemFn = parse_quote! { fn f() -> u8 { 1 } };
        let mut errors = Errors::default();
        let outer = Args::parse(quote! { ok_if = a }, &mut errors);
        let inner = Args::parse(quote! { error_if = b }, &mut errors);
        let merged = inner.over(&outer);
        let plan = plan(merged, &item.sig, &item.block, Placement::ImplMethod, &mut errors);
        assert!(errors.is_empty());
        assert!(matches!(
            plan.and_then(|plan| plan.predicate),
            Some(Predicate::ErrorIf(path)) if path.is_ident("b")
        ));
    }

    #[test]
    fn refuses_const_and_extern_functions() {
        let item: ItemFn = parse_quote! { const fn f() {} };
        assert!(check(quote! {}, &item).is_err());
        let item: ItemFn = parse_quote! { extern "C" fn f() {} };
        assert!(check(quote! {}, &item).is_err());
    }
}
