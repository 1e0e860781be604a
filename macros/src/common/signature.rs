//! What a function's signature and body say about how to wrap it.
//!
//! Everything here reads the syntax tree; nothing matches token strings.

use syn::visit_mut::VisitMut;
use syn::{
    Block, Expr, FnArg, GenericArgument, Ident, Pat, PathArguments, ReturnType, Signature, Stmt, Type, TypeParamBound,
};

/// How the function runs.
pub(crate) enum Execution {
    /// A plain `fn`.
    Sync,
    /// An `async fn`.
    Async,
    /// A method already rewritten by `#[async_trait]`: a plain `fn` returning
    /// `Pin<Box<dyn Future<Output = T>>>` whose body ends in `Box::pin(async move { .. })`.
    AsyncTrait,
}

/// How a returned value maps to an outcome.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Returns {
    /// `Result<T, E>` under any path (`std::io::Result`, an alias named `Result`...): `Err` is a failure.
    Result,
    /// Anything else: every return is a success unless a predicate says otherwise.
    Value,
}

/// What the wrapper needs to know about a function.
pub(crate) struct Analysis {
    pub(crate) execution: Execution,
    /// The type the caller receives (for `async`, the future's output), `None` for `()`.
    pub(crate) output: Option<Type>,
    pub(crate) returns: Returns,
    /// The output as it can be written in a `let` or closure type: each `impl Trait` becomes `_`, and no
    /// output is `()`. Written out, it tells inference what `?` converts to and what a body that only
    /// panics returns.
    pub(crate) annotation: Option<Type>,
}

/// Analyses a signature and its body.
pub(crate) fn analyse(sig: &Signature, block: &Block) -> Analysis {
    let declared = match &sig.output {
        ReturnType::Default => None,
        ReturnType::Type(_, ty) => Some((**ty).clone()),
    };
    let (execution, output) = if sig.asyncness.is_some() {
        (Execution::Async, declared)
    } else if let Some(output) = declared.as_ref().and_then(boxed_future_output)
        && async_trait_body(block).is_some()
    {
        (Execution::AsyncTrait, Some(output))
    } else {
        (Execution::Sync, declared)
    };
    let returns = match &output {
        Some(ty) if is_result(ty) => Returns::Result,
        _ => Returns::Value,
    };
    let annotation = Some(output.as_ref().map_or_else(|| syn::parse_quote!(()), without_impl_trait));
    Analysis { execution, output, returns, annotation }
}

/// The `async move { .. }` block inside the trailing `Box::pin(..)` of an `#[async_trait]` body.
pub(crate) fn async_trait_body(block: &Block) -> Option<&syn::ExprAsync> {
    let Some(Stmt::Expr(Expr::Call(call), None)) = block.stmts.last() else {
        return None;
    };
    if !is_box_pin(&call.func) || call.args.len() != 1 {
        return None;
    }
    match call.args.first() {
        Some(Expr::Async(body)) => Some(body),
        _ => None,
    }
}

/// Mutable access to the same block as [`async_trait_body`].
pub(crate) fn async_trait_body_mut(block: &mut Block) -> Option<&mut syn::ExprAsync> {
    let Some(Stmt::Expr(Expr::Call(call), None)) = block.stmts.last_mut() else {
        return None;
    };
    if !is_box_pin(&call.func) {
        return None;
    }
    match call.args.first_mut() {
        Some(Expr::Async(body)) => Some(body),
        _ => None,
    }
}

fn is_box_pin(func: &Expr) -> bool {
    let Expr::Path(path) = func else { return false };
    let segments: Vec<&Ident> = path.path.segments.iter().map(|segment| &segment.ident).collect();
    matches!(segments.as_slice(), [.., boxed, pin] if *boxed == "Box" && *pin == "pin")
}

/// `T` out of `Pin<Box<dyn Future<Output = T> + ..>>`.
fn boxed_future_output(ty: &Type) -> Option<Type> {
    let pinned = single_generic_type(ty, "Pin")?;
    let boxed = single_generic_type(pinned, "Box")?;
    let Type::TraitObject(object) = boxed else {
        return None;
    };
    object.bounds.iter().find_map(|bound| {
        let TypeParamBound::Trait(bound) = bound else {
            return None;
        };
        let last = bound.path.segments.last()?;
        if last.ident != "Future" {
            return None;
        }
        let PathArguments::AngleBracketed(arguments) = &last.arguments else {
            return None;
        };
        arguments.args.iter().find_map(|argument| match argument {
            GenericArgument::AssocType(assoc) if assoc.ident == "Output" => Some(assoc.ty.clone()),
            _ => None,
        })
    })
}

/// The single type argument of a path type whose last segment is `name`.
fn single_generic_type<'a>(ty: &'a Type, name: &str) -> Option<&'a Type> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    if last.ident != name {
        return None;
    }
    let PathArguments::AngleBracketed(arguments) = &last.arguments else {
        return None;
    };
    arguments.args.iter().find_map(|argument| match argument {
        GenericArgument::Type(ty) => Some(ty),
        _ => None,
    })
}

/// Whether a type is spelled as a `Result` (any path whose last segment is `Result`).
fn is_result(ty: &Type) -> bool {
    match ty {
        Type::Path(path) if path.qself.is_none() => {
            path.path.segments.last().is_some_and(|segment| segment.ident == "Result")
        }
        Type::Paren(inner) => is_result(&inner.elem),
        Type::Group(inner) => is_result(&inner.elem),
        _ => false,
    }
}

/// `ty` with every `impl Trait` written `_`, so that it can annotate a `let` or a closure and still
/// guide inference (`Result<_, E>` tells `?` where to convert errors to).
pub(crate) fn without_impl_trait(ty: &Type) -> Type {
    struct Replace;
    impl VisitMut for Replace {
        fn visit_type_mut(&mut self, ty: &mut Type) {
            if let Type::ImplTrait(opaque) = ty {
                let at = opaque.impl_token.span;
                *ty = Type::Infer(syn::parse_quote_spanned!(at=> _));
            } else {
                syn::visit_mut::visit_type_mut(self, ty);
            }
        }
    }
    let mut ty = ty.clone();
    Replace.visit_type_mut(&mut ty);
    ty
}

/// The plain identifiers the arguments are bound to (`self` included); patterns bind no single name.
pub(crate) fn argument_names(sig: &Signature) -> Vec<Ident> {
    sig.inputs
        .iter()
        .filter_map(|input| match input {
            FnArg::Receiver(receiver) => Some(Ident::new("self", receiver.self_token.span)),
            FnArg::Typed(typed) => match &*typed.pat {
                Pat::Ident(binding) => Some(binding.ident.clone()),
                _ => None,
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use quote::ToTokens;
    use syn::{ItemFn, parse_quote};

    use super::*;

    fn analysed(item: &ItemFn) -> Analysis {
        analyse(&item.sig, &item.block)
    }

    #[test]
    fn tells_result_from_value_and_async_from_sync() {
        let item: ItemFn = parse_quote! { fn f() -> std::io::Result<u8> { Ok(1) } };
        let analysis = analysed(&item);
        assert!(matches!(analysis.execution, Execution::Sync));
        assert!(analysis.returns == Returns::Result);

        let item: ItemFn = parse_quote! { async fn f() -> u8 { 1 } };
        let analysis = analysed(&item);
        assert!(matches!(analysis.execution, Execution::Async));
        assert!(analysis.returns == Returns::Value);
    }

    #[test]
    fn recognises_an_async_trait_body() {
        let item: ItemFn = parse_quote! {
            fn f<'life0, 'async_trait>(&'life0 self)
                -> ::core::pin::Pin<Box<dyn ::core::future::Future<Output = Result<u8, E>>
                    + ::core::marker::Send + 'async_trait>>
            {
                Box::pin(async move { let __self = self; Ok(1) })
            }
        };
        let analysis = analysed(&item);
        assert!(matches!(analysis.execution, Execution::AsyncTrait));
        assert!(analysis.returns == Returns::Result);
    }

    #[test]
    fn a_boxed_future_without_the_body_shape_stays_sync() {
        let item: ItemFn = parse_quote! {
            fn f() -> Pin<Box<dyn Future<Output = u8>>> { let fut = async { 1 }; Box::pin(fut) }
        };
        assert!(matches!(analysed(&item).execution, Execution::Sync));
    }

    #[test]
    fn writes_opaque_outputs_with_placeholders() {
        let item: ItemFn = parse_quote! { fn f() -> Result<impl Clone, E> { Ok(1) } };
        let annotation = analysed(&item).annotation.expect("an output");
        assert_eq!(annotation.to_token_stream().to_string(), "Result < _ , E >");
    }
}
