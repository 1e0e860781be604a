//! `#[derive(Audited)]`: read the attributes, check them against the type, expand.

mod args;
mod expand;
mod validate;

pub(crate) use self::validate::check_event_name;

use proc_macro2::TokenStream;
use quote::quote;
use syn::DeriveInput;

use crate::common::errors::Errors;

/// Entry point of the derive.
pub(crate) fn derive(input: TokenStream) -> TokenStream {
    let input = match syn::parse2::<DeriveInput>(input) {
        Ok(input) => input,
        Err(error) => return error.into_compile_error(),
    };
    let mut errors = Errors::default();
    let plan = validate::plan(&input, &mut errors);
    match (errors.finish(), plan) {
        (Ok(()), Some(plan)) => expand::derive(&plan),
        (Err(errors), _) => {
            let errors = errors.into_compile_error();
            let fallback = expand::fallback(&input, &validate::crate_path(&input));
            quote!(#errors #fallback)
        }
        (Ok(()), None) => unreachable!("a derive without a plan has reported why"),
    }
}
