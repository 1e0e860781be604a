//! Error gathering, and the guarantee that a macro bug becomes a compile error rather than a crash.

use std::panic::{self, AssertUnwindSafe};

use proc_macro2::{Span, TokenStream};
use quote::quote;

/// Gathers every independent error of one macro invocation so that one build shows them all, each
/// keeping the full range of tokens it points at.
#[derive(Default)]
pub(crate) struct Errors {
    gathered: Option<syn::Error>,
}

impl Errors {
    /// Records an error spanned at `span`.
    pub(crate) fn at(&mut self, span: Span, message: impl std::fmt::Display) {
        self.push(syn::Error::new(span, message));
    }

    /// Records an error spanned over a whole syntax node.
    pub(crate) fn over(&mut self, tokens: impl quote::ToTokens, message: impl std::fmt::Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    /// Records an error built elsewhere.
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.gathered {
            Some(gathered) => gathered.combine(error),
            None => self.gathered = Some(error),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.gathered.is_none()
    }

    /// `Ok` when nothing was recorded, otherwise every recorded error as one.
    pub(crate) fn finish(self) -> Result<(), syn::Error> {
        self.gathered.map_or(Ok(()), Err)
    }
}

/// Emits `errors` followed by the untouched `item`, so that the rest of the crate still sees the
/// item and reports no follow-on errors.
pub(crate) fn with_original(errors: syn::Error, item: &TokenStream) -> TokenStream {
    let errors = errors.into_compile_error();
    quote! { #errors #item }
}

/// Runs a macro body; a panic inside it is a bug in the macro, reported as a compile error asking for
/// a report instead of an opaque "proc macro panicked".
pub(crate) fn catch_unwind(item: &TokenStream, expand: impl FnOnce() -> TokenStream) -> TokenStream {
    match panic::catch_unwind(AssertUnwindSafe(expand)) {
        Ok(tokens) => tokens,
        Err(payload) => {
            let detail = payload
                .downcast_ref::<&str>()
                .map(ToString::to_string)
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            let message = format!(
                "internal error in `#[hardened]`: {detail}; please report this with the code that triggered it"
            );
            quote! { ::core::compile_error!(#message); #item }
        }
    }
}
