//! `audit`, `audit = arg` and `audit(event = "..")`: one audit event per call.
//!
//! The event is recorded outside everything else the macro generates (retries included), so a call
//! makes one event whatever its guards did, with the outcome the call's metrics record.

use darling::ast::NestedMeta;
use proc_macro2::TokenStream;
use quote::{ToTokens as _, quote, quote_spanned};
use syn::spanned::Spanned as _;
use syn::{Expr, Ident, Lit, Meta, Path, Signature};

use crate::audited::check_event_name;
use crate::common::errors::Errors;
use crate::common::meta::{self, Spanned, key};
use crate::common::signature;
use crate::common::suggest;
use crate::common::tokens::respanned;

/// The event type of `audit` on a function of kind `tool`.
const TOOL_EVENT: &str = "ToolExecution";

/// `audit` as written.
#[derive(Clone)]
pub(crate) enum AuditArg {
    /// `audit` or `audit(event = "..")`.
    Call { event: Option<Spanned<String>> },
    /// `audit = arg`.
    Argument(Ident),
}

/// Reads `audit`, `audit = arg` or `audit(event = "..")`.
pub(crate) fn read(meta: &Meta) -> syn::Result<Spanned<AuditArg>> {
    let span = meta.path().span();
    match meta {
        Meta::Path(_) => Ok(Spanned { value: AuditArg::Call { event: None }, span }),
        Meta::NameValue(name_value) => match &name_value.value {
            Expr::Path(path) if path.qself.is_none() && path.path.get_ident().is_some() => {
                let ident = path.path.get_ident().cloned().expect("checked above");
                Ok(Spanned { value: AuditArg::Argument(ident), span })
            }
            Expr::Lit(syn::ExprLit { lit: Lit::Str(text), .. }) => Err(syn::Error::new(
                text.span(),
                format!(
                    "`audit = ..` names the argument whose `Audited` event to record, such as `audit = action`; \
                     for an event type, write `audit(event = {})`",
                    quote!(#text)
                ),
            )),
            other => Err(syn::Error::new_spanned(
                other,
                "`audit = ..` names an argument of the function, such as `audit = action`",
            )),
        },
        Meta::List(list) => {
            let items = NestedMeta::parse_meta_list(list.tokens.clone())?;
            let mut event = None;
            for item in &items {
                match item {
                    NestedMeta::Meta(meta) if key(meta) == "event" => {
                        if event.is_some() {
                            return Err(syn::Error::new_spanned(meta.path(), "`event` is given more than once"));
                        }
                        event = Some(meta::string(meta, "event = \"AgentResponse\"")?);
                    }
                    NestedMeta::Meta(meta) => {
                        let written = key(meta);
                        let hint = suggest::closest(&written, &["event"])
                            .map_or(String::new(), |_| "; did you mean `event`?".to_owned());
                        return Err(syn::Error::new_spanned(
                            meta.path(),
                            format!("unknown key `{written}` in `audit(..)`{hint} `audit(..)` takes `event = \"..\"`"),
                        ));
                    }
                    other => {
                        return Err(syn::Error::new_spanned(other, "`audit(..)` takes `event = \"..\"`"));
                    }
                }
            }
            if event.is_none() {
                return Err(syn::Error::new_spanned(
                    list,
                    "`audit(..)` takes `event = \"..\"`; or write `audit` alone",
                ));
            }
            Ok(Spanned { value: AuditArg::Call { event }, span })
        }
    }
}

/// What expansion records.
pub(crate) enum AuditPlan {
    /// An event of this type per call.
    Call { event: String },
    /// The `Audited` event of this argument per call.
    Argument(Ident),
}

/// Checks `audit` against the function.
pub(crate) fn plan(
    audit: Option<Spanned<AuditArg>>,
    kind: &str,
    sig: &Signature,
    errors: &mut Errors,
) -> Option<AuditPlan> {
    let audit = audit?;
    match audit.value {
        AuditArg::Call { event: Some(event) } => match check_event_name(&event.value) {
            Ok(()) => Some(AuditPlan::Call { event: event.value }),
            Err(message) => {
                errors.at(event.span, message);
                None
            }
        },
        AuditArg::Call { event: None } if kind == "tool" => Some(AuditPlan::Call { event: TOOL_EVENT.to_owned() }),
        AuditArg::Call { event: None } => {
            errors.at(
                audit.span,
                format!(
                    "`audit` records a `ToolExecution` event on a function of `kind = \"tool\"`; for this `{kind}` \
                     function, name the event type: `audit(event = \"AgentResponse\")`, or record an argument's \
                     event with `audit = action`"
                ),
            );
            None
        }
        AuditArg::Argument(ident) => {
            let names = signature::argument_names(sig);
            if names.contains(&ident) {
                return Some(AuditPlan::Argument(ident));
            }
            let written = ident.to_string();
            let candidates: Vec<String> = names.iter().map(ToString::to_string).collect();
            let candidates: Vec<&str> = candidates.iter().map(String::as_str).collect();
            let message = match suggest::closest(&written, &candidates) {
                Some(candidate) => {
                    format!("`{written}` is not an argument of this function; did you mean `{candidate}`?")
                }
                None if candidates.is_empty() => {
                    format!("`audit = {written}` names an argument, but this function has none")
                }
                None => format!(
                    "`{written}` is not an argument of this function; expected one of {}",
                    suggest::one_of(&candidates)
                ),
            };
            errors.at(ident.span(), message);
            None
        }
    }
}

/// The statements that start an audited call, before everything else the macro generates.
pub(crate) fn start(plan: &AuditPlan, krate: &Path, function: &str) -> TokenStream {
    let (event, record) = match plan {
        AuditPlan::Call { event } => (event.as_str(), quote!(::core::option::Option::None)),
        AuditPlan::Argument(argument) => {
            // The whole call points at the argument, so that an argument that is not `Audited` is
            // underlined alone.
            let at = argument.span();
            let krate = respanned(krate.to_token_stream(), at);
            let record = quote_spanned!(at=> ::core::option::Option::Some(#krate::__private::audit_record(&#argument)));
            ("", record)
        }
    };
    quote! {
        static __HARDENED_AUDIT: #krate::__private::AuditSite =
            #krate::__private::AuditSite { function: #function, event: #event };
        #[allow(unused_mut)]
        let mut __hardened_audit =
            ::core::option::Option::Some(#krate::__private::AuditCall::start(&__HARDENED_AUDIT, #record));
    }
}
