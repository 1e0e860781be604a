//! The steps a call takes once, before its chain, and undoes after it: the tokens of a keyed or weighted
//! rate limiter (taken, then settled with what the call used) and the permit of a keyed bulkhead (taken,
//! then given back). Their keys and costs are expressions over the arguments, read before the body may
//! move them: each borrow ends with the statement that takes the tokens or the permit.

use proc_macro2::{Delimiter, Group, TokenStream};
use quote::{ToTokens, quote};
use syn::spanned::Spanned as _;
use syn::{Expr, Path, Type};

use super::args::RateArgs;
use super::typed_call::guarded_call;
use super::validate::GuardPlan;
use crate::common::tokens::respanned;

/// `hashed_key(&(key))`, spanned at the key, so that a key of the wrong type is reported there.
fn hashed_key(key: &Expr, private: &TokenStream) -> TokenStream {
    let head = respanned(quote!(#private::hashed_key), key.span());
    let key = borrowed_key(key);
    quote!(#head(#key))
}

/// `&(key)`, with the borrow and its parentheses spanned at the key as well: rustc underlines the whole
/// argument of an unmet bound, which is then the key alone.
fn borrowed_key(key: &Expr) -> TokenStream {
    let at = key.span();
    let borrow = respanned(quote!(&), at);
    let mut key = Group::new(Delimiter::Parenthesis, key.to_token_stream());
    key.set_span(at);
    quote!(#borrow #key)
}

/// What a call of a keyed or weighted limiter takes: `Demand::keyed(&(key), cost)`, spanned at the key so
/// that a key that cannot select a bucket is reported there, or `Demand::tokens(cost)`.
fn demand(rate: &RateArgs, private: &TokenStream) -> TokenStream {
    let cost = rate.cost.as_ref().map_or_else(|| quote!(1u32), |(_, cost)| cost.to_token_stream());
    match &rate.key {
        Some((_, key)) => {
            let head = respanned(quote!(#private::Demand::keyed), key.span());
            let key = borrowed_key(key);
            quote!(#head(#key, #cost))
        }
        None if rate.cost.is_some() => quote!(#private::Demand::tokens(#cost)),
        None => quote!(#private::Demand::ONE),
    }
}

/// `path(args)` settling a call's tokens with `settle = ..` (or `KeepCost`), the whole call spanned at the
/// path written, so that a function of the wrong type is reported there.
fn settle_call(rate: &RateArgs, private: &TokenStream, path: &TokenStream, args: &TokenStream) -> TokenStream {
    let Some(settle) = &rate.settle else { return quote!(#private::#path(#args, &#private::KeepCost)) };
    respanned(quote!(#private::#path(#args, &#settle)), settle.span())
}

/// The rate limiter whose tokens a call takes by key or cost, if any.
fn token_rate(plan: &GuardPlan) -> Option<&RateArgs> {
    plan.rate.as_ref().filter(|rate| rate.per_call())
}

/// The key of a keyed bulkhead, if any.
fn bulkhead_key(plan: &GuardPlan) -> Option<&Expr> {
    plan.bulkhead.as_ref().and_then(|bulkhead| bulkhead.key.as_ref()).map(|(_, key)| key)
}

/// The runtime functions a call's steps go through, synchronous or asynchronous.
struct Flavour {
    take: TokenStream,
    enter: TokenStream,
    settle: TokenStream,
    /// Whether each call is awaited.
    awaited: bool,
}

/// A synchronous call, `run` (the chain, yielding the value and its outcome), within its steps: a refusal
/// by one of them is the call's value and outcome.
pub(super) fn sync_steps(plan: &GuardPlan, krate: &Path, output: Option<&Type>, run: TokenStream) -> TokenStream {
    if !has_steps(plan) {
        return run;
    }
    let private = quote!(#krate::__private);
    let flavour = Flavour {
        take: quote!(#private::try_take_tokens),
        enter: quote!(#private::try_enter_keyed),
        settle: quote!(settle_tokens_now),
        awaited: false,
    };
    steps(
        plan,
        &private,
        output,
        &flavour,
        &run,
        |refused| quote!(break '__hardened_steps #refused),
        |body| quote!('__hardened_steps: { #body }),
    )
}

/// The future of an asynchronous call whose attempts (`inner`, a future) run within its steps: a refusal
/// by one of them is the call's value, with the outcome it imposed.
pub(super) fn async_steps(plan: &GuardPlan, private: &TokenStream, inner: TokenStream) -> TokenStream {
    if !has_steps(plan) {
        return inner;
    }
    let flavour = Flavour {
        take: quote!(#private::take_tokens),
        enter: quote!(#private::enter_keyed),
        settle: quote!(settle_tokens),
        awaited: true,
    };
    let output = plan.output.as_ref();
    steps(
        plan,
        private,
        output,
        &flavour,
        &quote!(#inner.await),
        |refused| quote!(return #refused),
        |body| quote!(async move { #body }),
    )
}

/// Whether a call takes tokens or a keyed permit before its chain.
fn has_steps(plan: &GuardPlan) -> bool {
    token_rate(plan).is_some() || bulkhead_key(plan).is_some()
}

/// `run` within the steps the plan asks for (it has some), in `wrap` (a block or a future), leaving it by
/// `exit` with a refusal.
fn steps(
    plan: &GuardPlan,
    private: &TokenStream,
    output: Option<&Type>,
    flavour: &Flavour,
    run: &TokenStream,
    exit: impl Fn(TokenStream) -> TokenStream,
    wrap: impl FnOnce(TokenStream) -> TokenStream,
) -> TokenStream {
    let (rate, key) = (token_rate(plan), bulkhead_key(plan));
    let awaited = flavour.awaited.then(|| quote!(.await));
    let settle = |value: TokenStream| {
        rate.map(|rate| {
            let call =
                settle_call(rate, private, &flavour.settle, &quote!(&__HARDENED_GUARDS, __hardened_ticket, &#value));
            quote!(#call #awaited;)
        })
    };
    let refused = exit(quote!(__hardened_refused));
    let take = rate.map(|rate| {
        let demand = demand(rate, private);
        let take = guarded_call(
            &flavour.take,
            output,
            &TokenStream::new(),
            &quote!(&__HARDENED_GUARDS, #demand),
            flavour.awaited,
        );
        quote! {
            let __hardened_taken = #take;
            let __hardened_ticket = match __hardened_taken {
                ::core::result::Result::Ok(__hardened_ticket) => __hardened_ticket,
                ::core::result::Result::Err(__hardened_refused) => #refused,
            };
        }
    });
    let enter = key.map(|key| {
        let key = hashed_key(key, private);
        let enter = guarded_call(
            &flavour.enter,
            output,
            &TokenStream::new(),
            &quote!(&__HARDENED_GUARDS, #key),
            flavour.awaited,
        );
        let settle_refused = settle(quote!(__hardened_refused));
        quote! {
            let __hardened_entered = #enter;
            let __hardened_keyed = match __hardened_entered {
                ::core::result::Result::Ok(__hardened_keyed) => __hardened_keyed,
                ::core::result::Result::Err(__hardened_refused) => {
                    #settle_refused
                    #refused;
                }
            };
        }
    });
    let give_back = key.map(|_| quote!(::core::mem::drop(__hardened_keyed);));
    let settle_done = settle(quote!(__hardened_done));
    wrap(quote! {
        #take
        #enter
        let __hardened_done = #run;
        #give_back
        #settle_done
        __hardened_done
    })
}
