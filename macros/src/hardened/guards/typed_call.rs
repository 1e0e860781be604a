//! Calls of the runtime that name the function's return type, spanned so that a return type that cannot
//! carry a refusal is reported once, at the token at fault.

use proc_macro2::{Delimiter, Group, Span, TokenStream};
use quote::{ToTokens, quote};
use syn::spanned::Spanned as _;
use syn::{GenericArgument, PathArguments, Type};

use super::validate::peel;
use crate::common::tokens::respanned;

/// The token at fault when a return type cannot carry a refusal: the error type of a `Result<T, E>` by
/// its name (`LookupError`, `Error` of `io::Error`), otherwise the type's name (`u32`, `Option`).
pub(super) fn blame(ty: &Type) -> Span {
    let Type::Path(path) = peel(ty) else {
        return ty.to_token_stream().into_iter().next().map_or_else(Span::call_site, |token| token.span());
    };
    let Some(last) = path.path.segments.last() else { return ty.span() };
    if last.ident == "Result"
        && let PathArguments::AngleBracketed(arguments) = &last.arguments
        && let [_, GenericArgument::Type(error)] = arguments.args.iter().collect::<Vec<_>>().as_slice()
    {
        return blame(error);
    }
    last.ident.span()
}

/// A call of a runtime function that needs the return type to carry a refusal: `path::<ty more>(args)`,
/// followed by `.await` when `awaited`; `path(args)` when the type is left to inference.
///
/// Everything but the arguments is spanned at the token [`blame`] picks, the explicit type included.
/// rustc reports an unmet bound of such a call at the type argument, at the call and at its `.await`, the
/// latter after type checking; all at one token, these are one diagnostic, reported once.
pub(super) fn guarded_call(
    path: &TokenStream,
    ty: Option<&Type>,
    more: &TokenStream,
    args: &TokenStream,
    awaited: bool,
) -> TokenStream {
    let Some(ty) = ty else {
        let awaited = awaited.then(|| quote!(.await));
        return quote!(#path(#args) #awaited);
    };
    let at = blame(ty);
    let head = respanned(quote!(#path::<#ty #more>), at);
    let mut args = Group::new(Delimiter::Parenthesis, args.clone());
    args.set_span(at);
    let awaited = awaited.then(|| respanned(quote!(.await), at));
    quote!(#head #args #awaited)
}
