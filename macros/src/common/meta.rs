//! Readers of one attribute argument (`key = value`) that report a value of the wrong type in words
//! naming the key and showing what would be right. Shared by `#[hardened(..)]` and `#[audited(..)]`.

use proc_macro2::Span;
use syn::spanned::Spanned as _;
use syn::{Expr, Lit, Meta, Path};

use super::tokens::{path_name, written};

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
