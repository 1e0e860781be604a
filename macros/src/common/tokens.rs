//! Tokens as text for messages, and tokens moved to another span.

use proc_macro2::{Group, Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::Path;

/// Tokens as the user would have written them (`a::b`, `-5`), for quoting in messages.
pub(crate) fn written(tokens: &impl ToTokens) -> String {
    let text = tokens.to_token_stream().to_string().replace(" :: ", "::").replace(":: ", "::");
    match text.strip_prefix("- ") {
        Some(rest) => format!("-{rest}"),
        None => text,
    }
}

/// A path's names joined by `::`, without generic arguments: the key of an argument such as `breaker`.
pub(crate) fn path_name(path: &Path) -> String {
    path.segments.iter().map(|segment| segment.ident.to_string()).collect::<Vec<_>>().join("::")
}

/// `tokens` with every span set to `at`.
pub(crate) fn respanned(tokens: TokenStream, at: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut token| {
            if let TokenTree::Group(group) = &token {
                let mut inner = Group::new(group.delimiter(), respanned(group.stream(), at));
                inner.set_span(at);
                token = TokenTree::Group(inner);
            }
            token.set_span(at);
            token
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;

    #[test]
    fn writes_paths_and_negative_numbers_as_a_user_would() {
        assert_eq!(written(&quote!(a::b::c)), "a::b::c");
        assert_eq!(written(&quote!(::hardened)), "::hardened");
        assert_eq!(written(&syn::parse_quote!(-5) as &syn::Expr), "-5");
        assert_eq!(written(&quote!(x + 1)), "x + 1");
    }
}
