//! The reader of an attribute's `key = value, key(..), key` list, and readers of one value that report
//! a value of the wrong type in words naming the key and showing what would be right. Shared by
//! `#[hardened(..)]` and `#[audited(..)]`.
//!
//! Hand-written rather than `#[derive(darling::FromMeta)]`, which would make the messages worse: its
//! own are not in rustc's style and name no argument (`` Unknown field: `kidn`. Did you mean `kind`? ``,
//! `` Duplicate field `name` ``, `` Unexpected meta-item format `literal` ``, `` Unexpected type `path` ``
//! for `kind = tool`), and a `darling::Error` keeps one `Span`, which stable Rust cannot join, so an
//! error over `skip = true` or `::hardened` would underline its first token only. darling still
//! splits the list into items (`NestedMeta`).

use darling::ast::NestedMeta;
use proc_macro2::{Span, TokenStream};
use syn::spanned::Spanned as _;
use syn::{Expr, Lit, Meta, Path};

use super::errors::Errors;
use super::tokens::{path_name, written};

/// One attribute's keys and the messages that depend on them.
pub(crate) trait AttributeKeys {
    /// Every key the attribute accepts.
    const KEYS: &'static [&'static str];

    /// What every value of the attribute is, for a value that is not an expression: `a value`, `a string`.
    const VALUE: &'static str;

    /// The message for `key`, which is not one of [`Self::KEYS`].
    fn unknown(&self, key: &str) -> String;

    /// The message for a literal written where a key belongs.
    fn literal(&self, lit: &Lit) -> String;
}

/// Reads `tokens` as a list of keys, each alone, with `= value` or with `(..)`: hands each known key
/// written once to `read`, and records it with the span of its key in `written`, which may already
/// hold the keys of another attribute on the same item. Every problem goes to `errors`.
pub(crate) fn read_keys<A: AttributeKeys>(
    attribute: &A,
    tokens: TokenStream,
    written: &mut Vec<(&'static str, Span)>,
    errors: &mut Errors,
    mut read: impl FnMut(&'static str, &Meta) -> syn::Result<()>,
) {
    let items = match NestedMeta::parse_meta_list(tokens) {
        Ok(items) => items,
        Err(error) => return errors.push(error),
    };
    for item in &items {
        let meta = match item {
            NestedMeta::Meta(meta) => meta,
            NestedMeta::Lit(lit) => {
                errors.over(lit, attribute.literal(lit));
                continue;
            }
            NestedMeta::NameValueInvalidExpr(invalid) => {
                let key = path_name(&invalid.path);
                if !A::KEYS.contains(&key.as_str()) {
                    errors.at(invalid.path.span(), attribute.unknown(&key));
                } else if invalid.value.is_empty() {
                    errors.over(invalid.eq_token, format!("`{key}` needs a value after `=`"));
                } else {
                    errors
                        .over(&invalid.value, format!("expected {} for `{key}`, found `{}`", A::VALUE, invalid.value));
                }
                continue;
            }
        };
        let key = path_name(meta.path());
        let at = meta.path().span();
        let Some(known) = A::KEYS.iter().copied().find(|known| *known == key) else {
            errors.at(at, attribute.unknown(&key));
            continue;
        };
        if written.iter().any(|(seen, _)| *seen == known) {
            errors.at(at, format!("`{key}` is given more than once"));
            continue;
        }
        written.push((known, at));
        if let Err(error) = read(known, meta) {
            errors.push(error);
        }
    }
}

/// Where `key` was written, among keys recorded by [`read_keys`].
pub(crate) fn key_span(written: &[(&'static str, Span)], key: &str) -> Option<Span> {
    written.iter().find(|(seen, _)| *seen == key).map(|(_, span)| *span)
}

/// A value together with the span of the tokens it was read from.
#[derive(Clone, Debug)]
pub(crate) struct Spanned<T> {
    pub(crate) value: T,
    pub(crate) span: Span,
}

/// The argument's key as written, such as `breaker`.
pub(crate) fn key(meta: &Meta) -> String {
    path_name(meta.path())
}

/// The expression of `key = value`, or an error showing `example` when the argument has another form.
pub(crate) fn value<'a>(meta: &'a Meta, example: &str) -> syn::Result<&'a Expr> {
    match meta {
        Meta::NameValue(name_value) => Ok(&name_value.value),
        _ => Err(syn::Error::new_spanned(meta, format!("`{}` needs a value, such as `{example}`", key(meta)))),
    }
}

/// A string literal, such as `kind = "tool"`.
pub(crate) fn string(meta: &Meta, example: &str) -> syn::Result<Spanned<String>> {
    let expr = value(meta, example)?;
    match expr {
        Expr::Lit(syn::ExprLit { lit: Lit::Str(text), .. }) => Ok(Spanned { value: text.value(), span: text.span() }),
        // `kind = tool`: the quotes are missing.
        Expr::Path(path) if path.qself.is_none() => {
            let (key, written) = (key(meta), written(path));
            Err(syn::Error::new_spanned(
                path,
                format!("`{key}` expects a string, found `{written}`; write `{key} = \"{written}\"`"),
            ))
        }
        other => Err(syn::Error::new_spanned(
            other,
            format!("`{}` expects a string such as `{example}`, found `{}`", key(meta), written(other)),
        )),
    }
}

/// A path to a function, such as `ok_if = is_success`.
pub(crate) fn path(meta: &Meta, example: &str) -> syn::Result<Path> {
    let expr = value(meta, example)?;
    match expr {
        Expr::Path(path) if path.qself.is_none() => Ok(path.path.clone()),
        other => Err(syn::Error::new_spanned(
            other,
            format!("`{}` expects a path to a function such as `{example}`, found `{}`", key(meta), written(other)),
        )),
    }
}

/// A key that takes no value, such as `skip`: its span when written alone, an error when given a value.
/// `attribute` is the attribute's name, for the message's `#[attribute(key)]`.
pub(crate) fn word(meta: &Meta, attribute: &str) -> syn::Result<Span> {
    match meta {
        Meta::Path(path) => Ok(path.span()),
        other => {
            let key = key(other);
            Err(syn::Error::new_spanned(other, format!("`{key}` takes no value; write `#[{attribute}({key})]`")))
        }
    }
}

/// `crate = "path"`: the path to the runtime crate, for crates that re-export it.
pub(crate) fn crate_path(meta: &Meta) -> syn::Result<Path> {
    let text = string(meta, "crate = \"my_framework::hardened\"")?;
    syn::parse_str::<Path>(&text.value).map_err(|_| {
        syn::Error::new(text.span, format!("`crate` expects a path such as `::hardened`, found `{}`", text.value))
    })
}

/// `key` alone (true) or `key = true` / `key = false`.
pub(crate) fn boolean(meta: &Meta) -> syn::Result<Spanned<bool>> {
    if let Meta::Path(path) = meta {
        return Ok(Spanned { value: true, span: path.span() });
    }
    let example = format!("{} = false", key(meta));
    let expr = value(meta, &example)?;
    match expr {
        Expr::Lit(syn::ExprLit { lit: Lit::Bool(flag), .. }) => Ok(Spanned { value: flag.value, span: flag.span }),
        other => Err(syn::Error::new_spanned(
            other,
            format!("`{}` expects `true` or `false`, found `{}`", key(meta), written(other)),
        )),
    }
}
