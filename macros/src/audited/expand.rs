//! Turns a checked [`Plan`] into the `Audited` impl. Nothing here can fail.
//!
//! Each call that needs something of a field's type is spanned at that type, so that a type that does
//! not fit is reported on the user's field, with the note of the runtime trait it misses. Generated code
//! names only `<crate>::audit` and `<crate>::__private::audit`.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned as _;
use syn::visit::Visit;
use syn::{DeriveInput, GenericArgument, Generics, Ident, Path, PathArguments, Type, WherePredicate};

use super::validate::{Actor, Event, Field, Plan, Role, Shape};

/// The impl of `Audited` for the planned type.
pub(crate) fn derive(plan: &Plan) -> TokenStream {
    let Plan { krate, ident, .. } = plan;
    let generics = bounded(plan);
    let (impl_generics, type_generics, where_clause) = generics.split_for_impl();
    let body = match &plan.shape {
        Shape::Struct(event) => {
            let arm = arm(krate, &quote!(Self), event);
            quote!(match self { #arm })
        }
        // No variant, no value: there is nothing to describe.
        Shape::Enum(events) if events.is_empty() => quote!(match *self {}),
        Shape::Enum(events) => {
            let arms = events.iter().map(|event| {
                let variant = &event.variant;
                arm(krate, &quote!(Self::#variant), event)
            });
            quote!(match self { #(#arms)* })
        }
    };
    quote! {
        #[automatically_derived]
        impl #impl_generics #krate::audit::Audited for #ident #type_generics #where_clause {
            fn audit_record(&self) -> #krate::audit::AuditRecord {
                #body
            }
        }
    }
}

/// An impl that stands in for the real one when the input has errors, so that the rest of the crate
/// reports nothing but those errors.
pub(crate) fn fallback(input: &DeriveInput, krate: &Path) -> TokenStream {
    let ident = &input.ident;
    let (impl_generics, type_generics, where_clause) = input.generics.split_for_impl();
    quote! {
        #[automatically_derived]
        impl #impl_generics #krate::audit::Audited for #ident #type_generics #where_clause {
            fn audit_record(&self) -> #krate::audit::AuditRecord {
                ::core::unreachable!()
            }
        }
    }
}

/// One arm of the `match`: binds the fields that go into the record and fills it.
fn arm(krate: &Path, path: &TokenStream, event: &Event) -> TokenStream {
    let name = &event.name;
    let record = quote!(#krate::__private::audit::record(#name));
    let bound: Vec<(&Field, Ident)> = event
        .fields
        .iter()
        .enumerate()
        .filter(|(_, field)| field.role != Role::Redacted)
        .map(|(index, field)| (field, format_ident!("__audited_{}", index, span = field.ty.span())))
        .collect();
    let members = bound.iter().map(|(field, _)| &field.member);
    let bindings = bound.iter().map(|(_, binding)| binding);
    let pattern = quote!(#path { #(#members: #bindings,)* .. });
    if event.fields.is_empty() {
        return quote!(#pattern => #record,);
    }
    let statements = event.fields.iter().map(|field| {
        let binding = bound.iter().find(|(bound, _)| std::ptr::eq(*bound, field)).map(|(_, binding)| binding);
        statement(krate, field, binding)
    });
    quote! {
        #pattern => {
            let mut __audited_record = #record;
            #(#statements)*
            __audited_record
        }
    }
}

/// What one field writes into the record, spanned at its type.
fn statement(krate: &Path, field: &Field, binding: Option<&Ident>) -> TokenStream {
    let key = &field.key;
    let span = field.ty.span();
    let support = quote_spanned!(span=> #krate::__private::audit);
    match field.role {
        Role::Detail => quote_spanned!(span=> #support::detail(&mut __audited_record, #key, #binding);),
        Role::Hashed => quote_spanned!(span=> #support::hashed(&mut __audited_record, #key, #binding);),
        Role::Redacted => quote!(#support::redacted(&mut __audited_record, #key);),
        Role::Actor { actor: Actor::Ip, .. } => {
            quote_spanned!(span=> __audited_record.ip_address = #support::ip(#binding);)
        }
        Role::Actor { actor, hashed } => {
            let target = Ident::new(actor.key(), Span::call_site());
            let function = match (option_inner(&field.ty).is_some(), hashed) {
                (false, false) => "id",
                (true, false) => "optional_id",
                (false, true) => "hashed_id",
                (true, true) => "optional_hashed_id",
            };
            let function = Ident::new(function, span);
            quote_spanned!(span=> __audited_record.#target = #support::#function(#binding);)
        }
    }
}

/// The type's generics with the bounds its fields need, serde-style: each type parameter that appears
/// in a field written into the details must be serializable, and an actor field whose type mentions a
/// type parameter must be usable as its actor field. Fields left out or plainly redacted need nothing.
fn bounded(plan: &Plan) -> Generics {
    let mut generics = plan.generics.clone();
    let parameters: Vec<Ident> = generics.type_params().map(|parameter| parameter.ident.clone()).collect();
    if parameters.is_empty() {
        return generics;
    }
    let krate = &plan.krate;
    let events: Vec<&Event> = match &plan.shape {
        Shape::Struct(event) => vec![event],
        Shape::Enum(events) => events.iter().collect(),
    };
    let mut predicates: Vec<WherePredicate> = Vec::new();
    for field in events.iter().flat_map(|event| &event.fields) {
        match field.role {
            Role::Redacted => {}
            Role::Detail | Role::Hashed => {
                for parameter in mentioned(&field.ty, &parameters) {
                    predicates.push(syn::parse_quote!(#parameter: #krate::__private::audit::AuditDetail));
                }
            }
            Role::Actor { actor: Actor::Ip, .. } => {
                let ty = &field.ty;
                if !mentioned(ty, &parameters).is_empty() {
                    predicates.push(syn::parse_quote!(#ty: #krate::__private::audit::ActorIp));
                }
            }
            Role::Actor { .. } => {
                let ty = option_inner(&field.ty).unwrap_or(&field.ty);
                if !mentioned(ty, &parameters).is_empty() {
                    predicates.push(syn::parse_quote!(#ty: #krate::__private::audit::ActorId));
                }
            }
        }
    }
    let mut seen = Vec::new();
    predicates.retain(|predicate| {
        let written = predicate.to_token_stream().to_string();
        let new = !seen.contains(&written);
        seen.push(written);
        new
    });
    if !predicates.is_empty() {
        generics.make_where_clause().predicates.extend(predicates);
    }
    generics
}

/// The type parameters among `parameters` that `ty` mentions, in the order of `parameters`.
fn mentioned<'a>(ty: &Type, parameters: &'a [Ident]) -> Vec<&'a Ident> {
    struct Mentions<'a> {
        parameters: &'a [Ident],
        found: Vec<bool>,
    }
    impl<'ast> Visit<'ast> for Mentions<'_> {
        fn visit_path(&mut self, path: &'ast syn::Path) {
            if path.leading_colon.is_none()
                && let Some(first) = path.segments.first()
                && let Some(index) = self.parameters.iter().position(|parameter| *parameter == first.ident)
            {
                self.found[index] = true;
            }
            syn::visit::visit_path(self, path);
        }
    }
    let mut mentions = Mentions { parameters, found: vec![false; parameters.len()] };
    mentions.visit_type(ty);
    parameters.iter().zip(mentions.found).filter_map(|(parameter, found)| found.then_some(parameter)).collect()
}

/// `T` of a type written `Option<T>` (under any path), which an id field reads as "maybe an id".
fn option_inner(ty: &Type) -> Option<&Type> {
    let Type::Path(path) = ty else { return None };
    if path.qself.is_some() {
        return None;
    }
    let last = path.path.segments.last()?;
    if last.ident != "Option" {
        return None;
    }
    let PathArguments::AngleBracketed(arguments) = &last.arguments else {
        return None;
    };
    match arguments.args.iter().collect::<Vec<_>>().as_slice() {
        [GenericArgument::Type(inner)] => Some(inner),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use syn::parse_quote;

    use super::*;
    use crate::common::errors::Errors;

    fn names(found: &[&Ident]) -> Vec<String> {
        found.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn finds_the_parameters_a_type_mentions() {
        let parameters: Vec<Ident> = vec![parse_quote!(T), parse_quote!(U), parse_quote!(V)];
        assert_eq!(names(&mentioned(&parse_quote!(Vec<(U, T)>), &parameters)), ["T", "U"]);
        assert_eq!(names(&mentioned(&parse_quote!(&'a [V]), &parameters)), ["V"]);
        assert_eq!(names(&mentioned(&parse_quote!(T::Item), &parameters)), ["T"]);
        assert!(mentioned(&parse_quote!(::T::Item), &parameters).is_empty());
        assert!(mentioned(&parse_quote!(String), &parameters).is_empty());
    }

    #[test]
    fn reads_options_under_any_path() {
        let inner = |ty: Type| option_inner(&ty).map(|inner| inner.to_token_stream().to_string());
        assert_eq!(inner(parse_quote!(Option<String>)).as_deref(), Some("String"));
        assert_eq!(inner(parse_quote!(std::option::Option<u64>)).as_deref(), Some("u64"));
        assert_eq!(inner(parse_quote!(Vec<String>)), None);
        assert_eq!(inner(parse_quote!(Option)), None);
    }

    #[test]
    fn bounds_only_the_parameters_of_fields_that_are_serialized() {
        let input: DeriveInput = parse_quote! {
            enum Action<A, B, C, D, E> {
                One { a: Vec<A>, #[audited(skip)] b: B, #[audited(redact)] c: C },
                Two(#[audited(user_id)] Option<D>, #[audited(redact = "hash")] E, A),
            }
        };
        let plan = super::super::validate::plan(&input, &mut Errors::default()).expect("a valid input");
        let generics = bounded(&plan);
        let where_clause = generics.where_clause.expect("bounds");
        let predicates: Vec<String> =
            where_clause.predicates.iter().map(|predicate| predicate.to_token_stream().to_string()).collect();
        assert_eq!(
            predicates,
            [
                "A : :: hardened :: __private :: audit :: AuditDetail",
                "D : :: hardened :: __private :: audit :: ActorId",
                "E : :: hardened :: __private :: audit :: AuditDetail",
            ]
        );
    }

    #[test]
    fn expands_a_struct_into_one_arm() {
        let input: DeriveInput = parse_quote! {
            #[audited(event = "UserLogin")]
            struct Login { #[audited(user_id)] user: String, #[audited(redact)] password: String, attempts: u8 }
        };
        let plan = super::super::validate::plan(&input, &mut Errors::default()).expect("a valid input");
        let expanded = derive(&plan).to_string();
        for expected in [
            "impl :: hardened :: audit :: Audited for Login",
            "Self { user : __audited_0 , attempts : __audited_2 , .. } =>",
            "__audited_record . user_id = :: hardened :: __private :: audit :: id (__audited_0) ;",
            ":: hardened :: __private :: audit :: redacted (& mut __audited_record , \"password\") ;",
            ":: hardened :: __private :: audit :: detail (& mut __audited_record , \"attempts\" , __audited_2) ;",
        ] {
            assert!(expanded.contains(expected), "{expected}\nnot in\n{expanded}");
        }
    }
}
