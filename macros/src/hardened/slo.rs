//! `slo = "chat"` and `slo(name = "chat", success = 99.9, latency = "2s", latency_target = 99)`: the
//! function's calls count towards a service level objective.
//!
//! Not a guard: nothing is added to the call. The expansion places one `SloMember` beside the call site
//! in a link-time list, from which the runtime makes `hardened_slo_info` and the Prometheus rules.

use std::time::Duration;

use darling::ast::NestedMeta;
use hardened_schema::slo::Key;
use hardened_schema::{DEFAULT_BUCKETS_NANOS, is_objective_percent};
use proc_macro2::TokenStream;
use quote::quote;
use syn::spanned::Spanned as _;
use syn::{Expr, Lit, Meta, Path};

use crate::common::errors::Errors;
use crate::common::meta::{Spanned, key, string, value};
use crate::common::suggest;
use crate::common::tokens::written;

/// `slo` as written.
#[derive(Clone, Default)]
pub(crate) struct SloArgs {
    pub(crate) name: Option<Spanned<String>>,
    pub(crate) success: Option<Spanned<f64>>,
    pub(crate) latency: Option<Spanned<Duration>>,
    pub(crate) latency_target: Option<Spanned<f64>>,
}

/// The objective a function's calls count towards, checked.
pub(crate) struct SloPlan {
    name: String,
    success: Option<f64>,
    latency: Option<Duration>,
    latency_target: Option<f64>,
}

const FORMS: &str = "`slo = \"chat\"` or `slo(name = \"chat\", success = 99.9)`";

/// Reads `slo = "name"` or `slo(..)`.
pub(crate) fn read(meta: &Meta) -> syn::Result<SloArgs> {
    let mut args = SloArgs::default();
    match meta {
        Meta::Path(path) => {
            return Err(syn::Error::new_spanned(path, format!("`slo` needs the objective's name: {FORMS}")));
        }
        Meta::NameValue(_) => args.name = Some(string(meta, "slo = \"chat\"")?),
        Meta::List(list) => {
            let accepted: Vec<&str> = Key::ALL.iter().map(|key| key.name()).collect();
            let mut errors = Errors::default();
            let mut seen: Vec<Key> = Vec::new();
            for item in NestedMeta::parse_meta_list(list.tokens.clone())? {
                let NestedMeta::Meta(inner) = &item else {
                    errors.over(&item, "expected an `slo` setting such as `success = 99.9`");
                    continue;
                };
                let written_key = key(inner);
                let Some(setting) = Key::from_name(&written_key) else {
                    let message = match suggest::closest(&written_key, &accepted) {
                        Some(candidate) => {
                            format!("unknown `slo` setting `{written_key}`; did you mean `{candidate}`?")
                        }
                        None => format!(
                            "unknown `slo` setting `{written_key}`; expected one of {}",
                            suggest::one_of(&accepted)
                        ),
                    };
                    errors.at(inner.path().span(), message);
                    continue;
                };
                if seen.contains(&setting) {
                    errors
                        .at(inner.path().span(), format!("`{}` is given more than once in `slo(..)`", setting.name()));
                    continue;
                }
                seen.push(setting);
                let example = format!("{} = {}", setting.name(), setting.spec().example);
                let read = match setting {
                    Key::Name => string(inner, &example).map(|name| args.name = Some(name)),
                    Key::Success => percent(inner, &example).map(|success| args.success = Some(success)),
                    Key::Latency => duration(inner, &example).map(|latency| args.latency = Some(latency)),
                    Key::LatencyTarget => percent(inner, &example).map(|target| args.latency_target = Some(target)),
                };
                if let Err(error) = read {
                    errors.push(error);
                }
            }
            errors.finish()?;
            if args.name.is_none() {
                return Err(syn::Error::new_spanned(
                    &list.path,
                    "`slo(..)` needs the objective's `name`, such as `slo(name = \"chat\", success = 99.9)`",
                ));
            }
        }
    }
    Ok(args)
}

/// A percentage above 0 and below 100, written as a number: `99.9` or `99`.
fn percent(meta: &Meta, example: &str) -> syn::Result<Spanned<f64>> {
    let expr = value(meta, example)?;
    let number = match expr {
        Expr::Lit(syn::ExprLit { lit: Lit::Float(float), .. }) => Some((float.base10_parse::<f64>()?, float.span())),
        Expr::Lit(syn::ExprLit { lit: Lit::Int(int), .. }) => Some((int.base10_parse::<f64>()?, int.span())),
        _ => None,
    };
    let Some((number, span)) = number else {
        return Err(syn::Error::new_spanned(
            expr,
            format!("`{}` expects a percentage such as `{example}`, found `{}`", key(meta), written(expr)),
        ));
    };
    if !is_objective_percent(number) {
        return Err(syn::Error::new(
            span,
            format!(
                "`{}` must be above 0 and below 100, found {}; 100 would leave no error budget",
                key(meta),
                written(expr)
            ),
        ));
    }
    Ok(Spanned { value: number, span })
}

fn duration(meta: &Meta, example: &str) -> syn::Result<Spanned<Duration>> {
    let text = string(meta, example)?;
    match humantime::parse_duration(&text.value) {
        Ok(duration) if !duration.is_zero() => Ok(Spanned { value: duration, span: text.span }),
        _ => Err(syn::Error::new(
            text.span,
            format!(
                "`{}` expects a duration longer than zero such as `\"2s\"` or `\"250ms\"`, found `\"{}\"`",
                key(meta),
                text.value.escape_debug()
            ),
        )),
    }
}

fn seconds(nanos: u64) -> String {
    humantime::format_duration(Duration::from_nanos(nanos)).to_string()
}

/// Checks `args` against the function: its histogram's bounds (`buckets`, in seconds, when it sets
/// them), and whether it records metrics (`metrics_off`, `metrics = false` when written) and a histogram
/// (`histogram_off`, `histogram = false` when written) at all.
pub(crate) fn plan(
    args: SloArgs,
    buckets: Option<&[f64]>,
    metrics_off: Option<&Spanned<bool>>,
    histogram_off: Option<&Spanned<bool>>,
    errors: &mut Errors,
) -> Option<SloPlan> {
    let name = args.name?;
    let before = errors.is_empty();
    if name.value.is_empty() {
        errors.at(name.span, "the objective's name is empty; name it, such as `slo = \"chat\"`");
    }
    if let Some(metrics) = metrics_off {
        errors.at(
            metrics.span,
            "`slo` judges the calls by their metrics, which `metrics = false` turns off; remove one of the two",
        );
    }
    if let Some(histogram) = histogram_off.filter(|_| args.latency.is_some()) {
        errors.at(
            histogram.span,
            "`slo(latency = ..)` judges the calls by their duration histogram, which `histogram = false` leaves \
             out; remove one of the two",
        );
    }
    match (&args.latency, &args.latency_target) {
        (Some(latency), None) => errors.at(
            latency.span,
            "`latency` needs `latency_target` too: the percentage of calls that must finish within it, such as \
             `latency_target = 99`",
        ),
        (None, Some(target)) => errors.at(
            target.span,
            "`latency_target` needs `latency` too: the threshold the calls are judged against, such as \
             `latency = \"2s\"`",
        ),
        _ => {}
    }
    if let Some(latency) = args.latency.as_ref().filter(|_| histogram_off.is_none()) {
        let nanos = u64::try_from(latency.value.as_nanos()).unwrap_or(u64::MAX);
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "validated positive and finite")]
        let bounds: Vec<u64> = match buckets {
            Some(bounds) => bounds.iter().map(|seconds| (seconds * 1e9).round() as u64).collect(),
            None => DEFAULT_BUCKETS_NANOS.to_vec(),
        };
        if !bounds.contains(&nanos) {
            let which = if buckets.is_some() { "its `buckets`" } else { "the default buckets" };
            let listed: Vec<String> = bounds.iter().map(|bound| format!("\"{}\"", seconds(*bound))).collect();
            errors.at(
                latency.span,
                format!(
                    "`latency` must be a bound of the function's duration histogram, so that a series counts the \
                     calls within it; \"{}\" is not one of {which}: {}\n  = help: choose one of them, or add {} to \
                     `buckets = [..]`",
                    seconds(nanos),
                    listed.join(", "),
                    latency.value.as_secs_f64()
                ),
            );
        }
    }
    (before && errors.is_empty()).then(|| SloPlan {
        name: name.value,
        success: args.success.map(|success| success.value),
        latency: args.latency.map(|latency| latency.value),
        latency_target: args.latency_target.map(|target| target.value),
    })
}

/// `Some(value)` or `None`, as the expansion writes an optional setting.
fn optional(value: Option<TokenStream>) -> TokenStream {
    value.map_or_else(|| quote!(::core::option::Option::None), |value| quote!(::core::option::Option::Some(#value)))
}

/// `static __HARDENED_SLO`: the function's place among its objective's members, beside its call site.
pub(crate) fn member_static(plan: &SloPlan, krate: &Path) -> TokenStream {
    let name = &plan.name;
    let success = optional(plan.success.map(|success| quote!(#success)));
    let target = optional(plan.latency_target.map(|target| quote!(#target)));
    let latency = optional(plan.latency.map(|latency| {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        quote!(#krate::__private::Duration::from_nanos(#nanos))
    }));
    quote! {
        #[#krate::__private::linkme::distributed_slice(#krate::__private::SLO_MEMBERS)]
        #[linkme(crate = #krate::__private::linkme)]
        static __HARDENED_SLO: #krate::__private::SloMember = #krate::__private::SloMember {
            site: &__HARDENED_SITE,
            name: #name,
            settings: #krate::__private::SloSettings { success: #success, latency: #latency, latency_target: #target },
        };
    }
}
