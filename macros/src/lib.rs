//! Procedural macros behind the [`hardened`](https://docs.rs/hardened) crate.
//!
//! Depend on `hardened`, not on this crate: it re-exports the macros together with the runtime they
//! expand to, and documents them there.

mod audited;
mod common;
mod hardened;

use proc_macro::TokenStream;

/// Wraps a function, method or `impl` block with a span, metrics and the call-site registry.
///
/// See the documentation on the `hardened` crate's re-export.
#[proc_macro_attribute]
pub fn hardened(args: TokenStream, item: TokenStream) -> TokenStream {
    if cfg!(hardened_disabled) {
        // Built with `--cfg hardened_disabled`: the instrumentation compiled out, the function as written.
        drop(args);
        return item;
    }
    let original = item.clone().into();
    common::errors::catch_unwind(&original, || hardened::attribute(args.into(), item.into())).into()
}

/// Implements `hardened::audit::Audited` for a struct or an enum, mapping each value to an audit record.
///
/// See the documentation on the `hardened` crate's re-export.
#[proc_macro_derive(Audited, attributes(audited))]
pub fn audited(item: TokenStream) -> TokenStream {
    common::errors::catch_unwind(&proc_macro2::TokenStream::new(), || audited::derive(item.into())).into()
}
