//! `#[hardened]`: parse the arguments, check them against the item, expand.

mod args;
mod audit;
mod expand;
mod guards;
mod labels;
mod slo;
mod validate;

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::{AttrStyle, Attribute, ImplItem, Item, ItemFn, ItemImpl, Meta, Signature, Token, Visibility};

use self::args::Args;
use self::validate::Placement;
use crate::common::errors::{Errors, with_original};

/// Entry point of the attribute.
pub(crate) fn attribute(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let args = Args::parse(args, &mut errors);
    let parsed = match syn::parse2::<Item>(item.clone()) {
        Ok(parsed) => parsed,
        Err(error) => return with_original(error, &item),
    };
    let expanded = match parsed {
        Item::Fn(function) => expand_function(args, function, &mut errors),
        Item::Impl(block) => expand_impl(&args, block, &mut errors),
        other => {
            errors.over(
                item_keyword(&other),
                format!("`#[hardened]` applies to functions, methods and `impl` blocks, not to {}", describe(&other)),
            );
            None
        }
    };
    match (errors.finish(), expanded) {
        (Ok(()), Some(expanded)) => expanded,
        (Err(errors), _) => with_original(errors, &item),
        (Ok(()), None) => item,
    }
}

fn expand_function(args: Args, function: ItemFn, errors: &mut Errors) -> Option<TokenStream> {
    let plan = validate::plan(args, &function.sig, &function.block, Placement::Function, errors)?;
    let ItemFn { attrs, vis, mut sig, block, .. } = function;
    let may_return_future = expand::may_return_future(&attrs);
    let body = expand::body(&plan, &mut sig, *block, may_return_future);
    Some(function_tokens(&attrs, &vis, None, &sig, &body))
}

/// A function or method written out with its new body: the item's tokens without parsing the body again.
fn function_tokens(
    attrs: &[Attribute],
    vis: &Visibility,
    defaultness: Option<&Token![default]>,
    sig: &Signature,
    body: &TokenStream,
) -> TokenStream {
    let (outer, inner): (Vec<&Attribute>, Vec<&Attribute>) =
        attrs.iter().partition(|attr| matches!(attr.style, AttrStyle::Outer));
    quote!(#(#outer)* #vis #defaultness #sig { #(#inner)* #body })
}

/// Applies the attribute to every method; a method's own `#[hardened(..)]` refines the block's
/// arguments, and `#[hardened(skip)]` leaves the method alone.
fn expand_impl(args: &Args, mut block: ItemImpl, errors: &mut Errors) -> Option<TokenStream> {
    if let Some(name) = args.key_span("name") {
        errors.at(name, "`name` names one function; set it on a method, not on the `impl` block");
    }
    if let Some(fields) = &args.fields {
        errors.at(fields.span, "`fields` names one function's arguments; set it on a method, not on the `impl` block");
    }
    if let Some(skip) = args.skip {
        errors.at(skip, "`skip` opts a method out of an annotated `impl` block; put it on the method");
    }
    // Reported once above; the methods must not report them again.
    let args = &Args { name: None, fields: None, skip: None, ..args.clone() };
    // `#[async_trait]` still to come rewrites `async fn`s only: the methods must stay `async fn`s for it.
    let async_trait_follows = !expand::may_return_future(&block.attrs);
    for item in &mut block.items {
        let ImplItem::Fn(method) = item else { continue };
        let own = take_own_attribute(&mut method.attrs, errors);
        let merged = match own {
            Some(own) if own.skip.is_some() => continue,
            Some(own) => own.over(args),
            None => args.clone(),
        };
        let Some(plan) = validate::plan(merged, &method.sig, &method.block, Placement::ImplMethod, errors) else {
            continue;
        };
        let may_return_future = !async_trait_follows && expand::may_return_future(&method.attrs);
        let body = std::mem::replace(&mut method.block, syn::parse_quote!({}));
        let body = expand::body(&plan, &mut method.sig, body, may_return_future);
        let defaultness = method.modifiers.defaultness.as_ref();
        *item = ImplItem::Verbatim(function_tokens(&method.attrs, &method.vis, defaultness, &method.sig, &body));
    }
    errors.is_empty().then(|| block.into_token_stream())
}

/// Removes a method's own `#[hardened(..)]` and reads its arguments.
fn take_own_attribute(attrs: &mut Vec<Attribute>, errors: &mut Errors) -> Option<Args> {
    let position =
        attrs.iter().position(|attr| attr.path().segments.last().is_some_and(|segment| segment.ident == "hardened"))?;
    let attr = attrs.remove(position);
    let tokens = match attr.meta {
        Meta::List(list) => list.tokens,
        Meta::Path(_) => TokenStream::new(),
        Meta::NameValue(name_value) => {
            errors.over(&name_value, "expected `#[hardened]` or `#[hardened(..)]`");
            return None;
        }
    };
    Some(Args::parse(tokens, errors))
}

/// The tokens an "unsupported item" error points at: the item's keyword and name.
fn item_keyword(item: &Item) -> TokenStream {
    match item {
        Item::Struct(item) => {
            let (keyword, ident) = (&item.struct_token, &item.ident);
            quote!(#keyword #ident)
        }
        Item::Enum(item) => {
            let (keyword, ident) = (&item.enum_token, &item.ident);
            quote!(#keyword #ident)
        }
        Item::Trait(item) => {
            let (keyword, ident) = (&item.trait_token, &item.ident);
            quote!(#keyword #ident)
        }
        other => other.to_token_stream(),
    }
}

fn describe(item: &Item) -> &'static str {
    match item {
        Item::Const(_) => "a constant",
        Item::Enum(_) => "an enum",
        Item::ExternCrate(_) => "an `extern crate` item",
        Item::ForeignMod(_) => "an `extern` block",
        Item::Macro(_) => "a macro invocation",
        Item::Mod(_) => "a module",
        Item::Static(_) => "a static",
        Item::Struct(_) => "a struct",
        Item::Trait(_) | Item::TraitAlias(_) => "a trait; put it on the methods of an `impl` instead",
        Item::Type(_) => "a type alias",
        Item::Union(_) => "a union",
        Item::Use(_) => "a `use` item",
        Item::Verbatim(tokens) if syn::parse2::<syn::TraitItemFn>(tokens.clone()).is_ok() => {
            "a function without a body; put it on the function in each `impl`"
        }
        _ => "this item",
    }
}
