//! What the user wrote inside `#[hardened(...)]`, with spans, and nothing more.
//!
//! The list is read by `common::meta::read_keys`, and each argument by a small typed reader
//! (`common::meta`, and `guards::args` for the guards) so that a value of the wrong type gets a message
//! naming the argument and showing what would be right; `common::meta` says why these are not a
//! `darling::FromMeta` derive. Rules that look at more than one argument, or at the function, live in
//! `validate`.

use darling::ast::NestedMeta;
use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::spanned::Spanned as _;
use syn::{Expr, Ident, Lit, Meta, Path};

use super::audit::AuditArg;
use super::guards::{BURST, GUARD_ARGUMENTS, GuardArgs};
use crate::common::errors::Errors;
use crate::common::meta::{
    AttributeKeys, Spanned, boolean, crate_path, key_span, path, read_keys, string, value, word,
};
use crate::common::suggest;
use crate::common::tokens::written;

/// Every argument `#[hardened]` accepts, in the order the reference documents them.
pub(crate) const ARGUMENTS: &[&str] = &[
    "name",
    "kind",
    "level",
    "fields",
    "ok_if",
    "error_if",
    "span",
    "metrics",
    "buckets",
    "histogram",
    "crate",
    "skip",
    "breaker",
    "rate",
    BURST,
    "concurrency",
    "bulkhead",
    "timeout",
    "retry",
    "hedge",
    "fallback",
    "audit",
    "slo",
];

/// One entry of `fields(...)`: `key` alone records the argument of that name, `key = expr` an expression.
#[derive(Clone)]
pub(crate) struct Field {
    pub(crate) key: Ident,
    pub(crate) value: Option<Expr>,
}

/// The arguments of one `#[hardened(...)]` attribute, as written.
#[derive(Clone, Default)]
pub(crate) struct Args {
    pub(crate) name: Option<Spanned<String>>,
    pub(crate) kind: Option<Spanned<String>>,
    pub(crate) level: Option<Spanned<String>>,
    pub(crate) fields: Option<Spanned<Vec<Field>>>,
    pub(crate) ok_if: Option<Path>,
    pub(crate) error_if: Option<Path>,
    pub(crate) span: Option<Spanned<bool>>,
    pub(crate) metrics: Option<Spanned<bool>>,
    pub(crate) buckets: Option<Spanned<Vec<Spanned<f64>>>>,
    pub(crate) histogram: Option<Spanned<bool>>,
    pub(crate) krate: Option<Path>,
    pub(crate) skip: Option<Span>,
    pub(crate) guards: GuardArgs,
    pub(crate) audit: Option<Spanned<AuditArg>>,
    pub(crate) slo: Option<super::slo::SloArgs>,
    /// Each argument's key and its span, in the order written (a method's own before its block's), for
    /// errors about an argument being there at all.
    pub(crate) keys: Vec<(&'static str, Span)>,
    /// The attribute's tokens as written, for `hardened::sites()`.
    pub(crate) written: String,
}

/// `#[hardened(..)]`'s keys and the messages that name them.
struct Hardened;

impl AttributeKeys for Hardened {
    const KEYS: &'static [&'static str] = ARGUMENTS;
    const VALUE: &'static str = "a value";

    fn unknown(&self, key: &str) -> String {
        match suggest::closest(key, ARGUMENTS) {
            Some(candidate) => format!("unknown argument `{key}`; did you mean `{candidate}`?"),
            None => format!("unknown argument `{key}`; expected one of {}", suggest::one_of(ARGUMENTS)),
        }
    }

    /// `#[hardened("search")]`: a value without its key; a string most likely meant the name.
    fn literal(&self, lit: &Lit) -> String {
        let written = lit.to_token_stream();
        match lit {
            Lit::Str(_) => {
                format!("expected an argument, found the string `{written}`; did you mean `name = {written}`?")
            }
            _ => format!("expected an argument such as `kind = \"tool\"`, found `{written}`"),
        }
    }
}

impl Args {
    /// Reads the attribute's tokens, recording every problem in `errors` and keeping what was valid.
    pub(crate) fn parse(tokens: TokenStream, errors: &mut Errors) -> Args {
        let mut args = Args { written: tokens.to_string(), ..Args::default() };
        let mut keys = Vec::new();
        read_keys(&Hardened, tokens, &mut keys, errors, |key, meta| args.read(key, meta));
        args.keys = keys;
        args
    }

    fn read(&mut self, key: &str, meta: &Meta) -> syn::Result<()> {
        match key {
            "name" => self.name = Some(string(meta, "name = \"search\"")?),
            "kind" => self.kind = Some(string(meta, "kind = \"tool\"")?),
            "level" => self.level = Some(string(meta, "level = \"debug\"")?),
            "fields" => self.fields = Some(fields(meta)?),
            "ok_if" => self.ok_if = Some(path(meta, "ok_if = is_success")?),
            "error_if" => self.error_if = Some(path(meta, "error_if = is_failure")?),
            "span" => self.span = Some(boolean(meta)?),
            "metrics" => self.metrics = Some(boolean(meta)?),
            "buckets" => self.buckets = Some(buckets(meta)?),
            "histogram" => self.histogram = Some(boolean(meta)?),
            "crate" => self.krate = Some(crate_path(meta)?),
            "skip" => self.skip = Some(word(meta, "hardened")?),
            "audit" => self.audit = Some(super::audit::read(meta)?),
            "slo" => self.slo = Some(super::slo::read(meta)?),
            guard if GUARD_ARGUMENTS.contains(&guard) => self.guards.read(guard, meta)?,
            _ => unreachable!("`{key}` is listed in ARGUMENTS but has no reader"),
        }
        Ok(())
    }

    /// Where the argument `key` was written, if it was.
    pub(crate) fn key_span(&self, key: &str) -> Option<Span> {
        key_span(&self.keys, key)
    }

    /// Arguments set here take the place of those in `outer` (a method's own attribute inside an
    /// annotated `impl` block). `ok_if` and `error_if` are one choice: a method that sets either
    /// replaces the block's predicate, whichever of the two the block used.
    pub(crate) fn over(self, outer: &Args) -> Args {
        let outer = outer.clone();
        let (ok_if, error_if) = if self.ok_if.is_some() || self.error_if.is_some() {
            (self.ok_if, self.error_if)
        } else {
            (outer.ok_if, outer.error_if)
        };
        Args {
            name: self.name.or(outer.name),
            kind: self.kind.or(outer.kind),
            level: self.level.or(outer.level),
            fields: self.fields.or(outer.fields),
            ok_if,
            error_if,
            span: self.span.or(outer.span),
            metrics: self.metrics.or(outer.metrics),
            buckets: self.buckets.or(outer.buckets),
            histogram: self.histogram.or(outer.histogram),
            krate: self.krate.or(outer.krate),
            skip: self.skip,
            guards: self.guards.over(outer.guards),
            audit: self.audit.or(outer.audit),
            slo: self.slo.or(outer.slo),
            keys: self.keys.into_iter().chain(outer.keys).collect(),
            written: [outer.written, self.written]
                .into_iter()
                .filter(|written| !written.is_empty())
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

fn fields(meta: &Meta) -> syn::Result<Spanned<Vec<Field>>> {
    let Meta::List(list) = meta else {
        return Err(syn::Error::new_spanned(
            meta,
            "`fields` expects a list such as `fields(user_id, len = query.len())`",
        ));
    };
    let items = NestedMeta::parse_meta_list(list.tokens.clone()).map_err(|error| match dotted_key(&list.tokens) {
        Some((dot, written)) => syn::Error::new(
            dot,
            format!(
                "field names are identifiers such as `user_id`, found `{written}`; write `{}` instead",
                written.replace('.', "_")
            ),
        ),
        None => syn::Error::new(
            error.span(),
            format!("{error}; `fields` takes argument names such as `user_id` and `key = expression`"),
        ),
    })?;
    let mut parsed = Vec::with_capacity(items.len());
    for item in items {
        let field = match &item {
            NestedMeta::Meta(Meta::Path(path)) => path.get_ident().map(|key| Field { key: key.clone(), value: None }),
            NestedMeta::Meta(Meta::NameValue(name_value)) => {
                name_value.path.get_ident().map(|key| Field { key: key.clone(), value: Some(name_value.value.clone()) })
            }
            _ => None,
        };
        match field {
            Some(field) => parsed.push(field),
            None => {
                return Err(syn::Error::new_spanned(
                    &item,
                    "expected an argument name such as `user_id`, or `key = expression`",
                ));
            }
        }
    }
    Ok(Spanned { value: parsed, span: list.path.span() })
}

/// The first `a.b` written where `fields(..)` expects a key, with the span of its first dot.
fn dotted_key(tokens: &TokenStream) -> Option<(Span, String)> {
    let tokens: Vec<TokenTree> = tokens.clone().into_iter().collect();
    let mut at_key = true;
    for (index, token) in tokens.iter().enumerate() {
        if at_key
            && let TokenTree::Ident(first) = token
            && let Some(TokenTree::Punct(dot)) = tokens.get(index + 1)
            && dot.as_char() == '.'
        {
            let mut written = first.to_string();
            for pair in tokens[index + 1..].chunks(2) {
                match pair {
                    [TokenTree::Punct(dot), TokenTree::Ident(part)] if dot.as_char() == '.' => {
                        written.push('.');
                        written.push_str(&part.to_string());
                    }
                    _ => break,
                }
            }
            return Some((dot.span(), written));
        }
        at_key = matches!(token, TokenTree::Punct(comma) if comma.as_char() == ',');
    }
    None
}

fn buckets(meta: &Meta) -> syn::Result<Spanned<Vec<Spanned<f64>>>> {
    let expr = value(meta, "buckets = [0.001, 0.01, 0.1, 1.0]")?;
    let Expr::Array(array) = expr else {
        return Err(syn::Error::new_spanned(
            expr,
            format!("`buckets` expects a list of seconds such as `[0.001, 0.01, 0.1]`, found `{}`", written(expr)),
        ));
    };
    let mut bounds = Vec::with_capacity(array.elems.len());
    for element in &array.elems {
        // A negative bound is a number too; `validate` says why it is refused.
        let (negative, unsigned) = match element {
            Expr::Unary(syn::ExprUnary { op: syn::UnOp::Neg(_), expr, .. }) => (true, &**expr),
            other => (false, other),
        };
        let magnitude = match unsigned {
            Expr::Lit(syn::ExprLit { lit: Lit::Float(float), .. }) => Some(float.base10_parse::<f64>()?),
            Expr::Lit(syn::ExprLit { lit: Lit::Int(int), .. }) => Some(int.base10_parse::<f64>()?),
            _ => None,
        };
        let seconds = match magnitude {
            Some(magnitude) if negative => -magnitude,
            Some(magnitude) => magnitude,
            None => {
                let other = element;
                return Err(syn::Error::new_spanned(
                    other,
                    format!("bucket bounds are numbers of seconds, found `{}`", written(other)),
                ));
            }
        };
        bounds.push(Spanned { value: seconds, span: element.span() });
    }
    Ok(Spanned { value: bounds, span: array.span() })
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;

    fn parse(tokens: TokenStream) -> (Args, Vec<String>) {
        let mut errors = Errors::default();
        let args = Args::parse(tokens, &mut errors);
        let messages = match errors.finish() {
            Ok(()) => Vec::new(),
            Err(error) => error.into_iter().map(|error| error.to_string()).collect(),
        };
        (args, messages)
    }

    #[test]
    fn reads_every_argument() {
        let (args, errors) = parse(quote! {
            name = "search", kind = "tool", level = "debug", fields(query, len = query.len()),
            ok_if = is_ok, span = false, metrics, buckets = [0.5, 1], histogram, crate = "::hardened"
        });
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(args.name.map(|name| name.value).as_deref(), Some("search"));
        assert_eq!(args.kind.map(|kind| kind.value).as_deref(), Some("tool"));
        assert_eq!(args.fields.map(|fields| fields.value.len()), Some(2));
        assert_eq!(args.span.map(|span| span.value), Some(false));
        assert_eq!(args.metrics.map(|metrics| metrics.value), Some(true));
        let bounds: Vec<f64> = args.buckets.expect("buckets").value.iter().map(|bound| bound.value).collect();
        assert_eq!(bounds, [0.5, 1.0]);
        assert_eq!(args.histogram.map(|histogram| histogram.value), Some(true));
    }

    #[test]
    fn gathers_every_error_of_one_attribute() {
        let (_, errors) = parse(quote! { kidn = "x", name = 5, name = "y", span = "no" });
        assert_eq!(
            errors,
            [
                "unknown argument `kidn`; did you mean `kind`?",
                "`name` expects a string such as `name = \"search\"`, found `5`",
                "`name` is given more than once",
                "`span` expects `true` or `false`, found `\"no\"`",
            ]
        );
    }

    #[test]
    fn lists_alternatives_and_reads_a_bare_literal_as_a_name() {
        let (_, errors) = parse(quote! { colour = 5, "search", 5 });
        assert_eq!(
            errors,
            [
                "unknown argument `colour`; expected one of `name`, `kind`, `level`, `fields`, `ok_if`, `error_if`, `span`, `metrics`, `buckets`, `histogram`, `crate`, `skip`, `breaker`, `rate`, `burst`, `concurrency`, `bulkhead`, `timeout`, `retry`, `hedge`, `fallback`, `audit` or `slo`",
                "expected an argument, found the string `\"search\"`; did you mean `name = \"search\"`?",
                "expected an argument such as `kind = \"tool\"`, found `5`",
            ]
        );
    }

    #[test]
    fn reads_negative_bucket_bounds_for_validate_to_refuse() {
        let (args, errors) = parse(quote! { buckets = [-1, -0.5, 2] });
        assert!(errors.is_empty(), "{errors:?}");
        let bounds: Vec<f64> = args.buckets.expect("buckets").value.iter().map(|bound| bound.value).collect();
        assert_eq!(bounds, [-1.0, -0.5, 2.0]);
    }

    #[test]
    fn asks_for_quotes_around_a_bare_word() {
        let (_, errors) = parse(quote! { kind = tool, crate = ::hardened, name = -5 });
        assert_eq!(
            errors,
            [
                "`kind` expects a string, found `tool`; write `kind = \"tool\"`",
                "`crate` expects a string, found `::hardened`; write `crate = \"::hardened\"`",
                "`name` expects a string such as `name = \"search\"`, found `-5`",
            ]
        );
    }

    #[test]
    fn says_which_value_is_missing() {
        let (_, errors) = parse(quote! { name = , kind = "tool" });
        assert_eq!(errors, ["`name` needs a value after `=`"]);
    }

    #[test]
    fn explains_dotted_field_names() {
        let (_, errors) = parse(quote! { fields(id, user.id = id) });
        assert_eq!(errors, ["field names are identifiers such as `user_id`, found `user.id`; write `user_id` instead"]);
        let (_, errors) = parse(quote! { fields(a b) });
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].ends_with("; `fields` takes argument names such as `user_id` and `key = expression`"),
            "{errors:?}"
        );
    }

    #[test]
    fn remembers_where_each_key_was_written() {
        let (args, _) = parse(quote! { kind = "tool", ok_if = a });
        assert!(args.key_span("kind").is_some());
        assert!(args.key_span("ok_if").is_some());
        assert!(args.key_span("name").is_none());
    }

    #[test]
    fn a_method_attribute_overrides_its_impl_block() {
        let (outer, _) = parse(quote! { kind = "tool", level = "debug" });
        let (inner, _) = parse(quote! { kind = "llm" });
        let merged = inner.over(&outer);
        assert_eq!(merged.kind.map(|kind| kind.value).as_deref(), Some("llm"));
        assert_eq!(merged.level.map(|level| level.value).as_deref(), Some("debug"));
    }
}
