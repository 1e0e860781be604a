//! What the user wrote in the `#[audited(...)]` attributes of one type, variant or field, with spans,
//! and nothing more.
//!
//! Every key is read wherever it is written; whether it belongs there, and how keys combine, is for
//! `validate`. So one reader serves every place, rather than a darling derive per place (`FromField`,
//! `FromVariant`), which would refuse `event` on a field as an unknown field where `validate` says
//! where it belongs; the list itself is read by `common::meta::read_keys`, which says why it is not
//! a `FromMeta` derive either.

use proc_macro2::Span;
use quote::ToTokens;
use syn::{Attribute, Lit, Meta, Path};

use crate::common::errors::Errors;
use crate::common::meta::{self, AttributeKeys, Spanned, read_keys};
use crate::common::suggest;
use crate::common::tokens::path_name;

/// Every key `#[audited(..)]` accepts, in the order the reference documents them.
pub(crate) const KEYS: &[&str] = &["event", "crate", "skip", "redact", "user_id", "session_id", "ip"];

/// Where an attribute is written, which decides the keys that belong there.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Place {
    Struct,
    Enum,
    Variant,
    Field,
}

impl Place {
    /// The keys that belong here.
    pub(crate) fn keys(self) -> &'static [&'static str] {
        match self {
            Place::Struct => &["event", "crate"],
            Place::Enum => &["crate"],
            Place::Variant => &["event"],
            Place::Field => &["skip", "redact", "user_id", "session_id", "ip"],
        }
    }
}

/// What `redact` asks for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Redaction {
    /// `redact`: the value is replaced by `"[redacted]"`.
    Plain,
    /// `redact = "hash"`: the value is replaced by its keyed hash.
    Hash,
}

/// The keys of every `#[audited(..)]` attribute on one node, as written.
#[derive(Default, Debug)]
pub(crate) struct Args {
    pub(crate) event: Option<Spanned<String>>,
    pub(crate) krate: Option<Path>,
    pub(crate) skip: Option<Span>,
    pub(crate) redact: Option<Redaction>,
    pub(crate) user_id: Option<Span>,
    pub(crate) session_id: Option<Span>,
    pub(crate) ip: Option<Span>,
    /// Each key and its span, in the order written, for errors about a key being there at all.
    pub(crate) keys: Vec<(&'static str, Span)>,
}

impl AttributeKeys for Place {
    const KEYS: &'static [&'static str] = KEYS;
    const VALUE: &'static str = "a string";

    /// Suggests the keys that belong here first, then every key.
    fn unknown(&self, key: &str) -> String {
        let here = self.keys();
        match suggest::closest(key, here).or_else(|| suggest::closest(key, KEYS)) {
            Some(candidate) => format!("unknown key `{key}`; did you mean `{candidate}`?"),
            None if here.len() == 1 => format!("unknown key `{key}`; expected `{}`", here[0]),
            None => format!("unknown key `{key}`; expected {}", suggest::one_of(here)),
        }
    }

    fn literal(&self, lit: &Lit) -> String {
        format!("expected a key such as `{}`, found `{}`", self.example(), lit.to_token_stream())
    }
}

impl Place {
    /// How the first key that belongs here is written.
    fn example(self) -> &'static str {
        self.keys().first().map_or("skip", |key| example(key))
    }
}

impl Args {
    /// Reads every `#[audited(..)]` among `attrs`, recording each problem in `errors` and keeping what
    /// was valid. `place` only guides the messages about a key that is not one.
    pub(crate) fn parse(attrs: &[Attribute], place: Place, errors: &mut Errors) -> Args {
        let mut args = Args::default();
        let mut keys = Vec::new();
        for attr in attrs.iter().filter(|attr| attr.path().is_ident("audited")) {
            match &attr.meta {
                Meta::List(list) if !list.tokens.is_empty() => {
                    read_keys(&place, list.tokens.clone(), &mut keys, errors, |key, meta| args.read(key, meta));
                }
                other => errors
                    .over(other, format!("expected keys in parentheses, such as `#[audited({})]`", place.example())),
            }
        }
        args.keys = keys;
        args
    }

    fn read(&mut self, key: &str, meta: &Meta) -> syn::Result<()> {
        match key {
            "event" => self.event = Some(string(meta)?),
            "crate" => self.krate = Some(meta::crate_path(meta)?),
            "skip" => self.skip = Some(meta::word(meta, "audited")?),
            "redact" => self.redact = Some(redaction(meta)?),
            "user_id" => self.user_id = Some(meta::word(meta, "audited")?),
            "session_id" => self.session_id = Some(meta::word(meta, "audited")?),
            "ip" => self.ip = Some(meta::word(meta, "audited")?),
            _ => unreachable!("`{key}` is listed in KEYS but has no reader"),
        }
        Ok(())
    }

    /// Where the key `key` was written, if it was.
    pub(crate) fn key_span(&self, key: &str) -> Option<Span> {
        meta::key_span(&self.keys, key)
    }
}

/// How a key is written in examples.
fn example(key: &str) -> &'static str {
    match key {
        "event" => "event = \"UserLogin\"",
        "crate" => "crate = \"my_framework::hardened\"",
        "redact" => "redact",
        "user_id" => "user_id",
        "session_id" => "session_id",
        "ip" => "ip",
        _ => "skip",
    }
}

/// A string, with the example that shows how its key is written.
fn string(meta: &Meta) -> syn::Result<Spanned<String>> {
    meta::string(meta, example(&path_name(meta.path())))
}

fn redaction(meta: &Meta) -> syn::Result<Redaction> {
    match meta {
        Meta::Path(_) => Ok(Redaction::Plain),
        Meta::List(list) => Err(syn::Error::new_spanned(list, "`redact` is written `redact` or `redact = \"hash\"`")),
        Meta::NameValue(_) => {
            let text = string(meta)?;
            if text.value == "hash" {
                Ok(Redaction::Hash)
            } else {
                Err(syn::Error::new(
                    text.span,
                    format!(
                        "unknown redaction `{:?}`; write `redact` to record `\"[redacted]\"`, or `redact = \"hash\"` to record a keyed hash",
                        text.value
                    ),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use syn::parse_quote;

    use super::*;

    fn parse(attrs: &[Attribute], place: Place) -> (Args, Vec<String>) {
        let mut errors = Errors::default();
        let args = Args::parse(attrs, place, &mut errors);
        let messages = match errors.finish() {
            Ok(()) => Vec::new(),
            Err(error) => error.into_iter().map(|error| error.to_string()).collect(),
        };
        (args, messages)
    }

    #[test]
    fn reads_keys_across_attributes_and_ignores_others() {
        let attrs: Vec<Attribute> = vec![
            parse_quote!(#[audited(user_id)]),
            parse_quote!(#[serde(rename = "x")]),
            parse_quote!(#[audited(redact = "hash")]),
        ];
        let (args, errors) = parse(&attrs, Place::Field);
        assert!(errors.is_empty(), "{errors:?}");
        assert!(args.user_id.is_some());
        assert_eq!(args.redact, Some(Redaction::Hash));
        assert_eq!(args.keys.iter().map(|(key, _)| *key).collect::<Vec<_>>(), ["user_id", "redact"]);
    }

    #[test]
    fn gathers_every_error_and_suggests_keys_of_the_place_first() {
        let attrs: Vec<Attribute> =
            vec![parse_quote!(#[audited(skp, redact = "sha", skip, skip, ip = true, evnt = "X")])];
        let (_, errors) = parse(&attrs, Place::Field);
        assert_eq!(
            errors,
            [
                "unknown key `skp`; did you mean `skip`?",
                "unknown redaction `\"sha\"`; write `redact` to record `\"[redacted]\"`, or `redact = \"hash\"` to record a keyed hash",
                "`skip` is given more than once",
                "`ip` takes no value; write `#[audited(ip)]`",
                "unknown key `evnt`; did you mean `event`?",
            ]
        );
    }

    #[test]
    fn asks_for_quotes_and_for_parentheses() {
        let attrs: Vec<Attribute> = vec![parse_quote!(#[audited(event = UserLogin)]), parse_quote!(#[audited])];
        let (_, errors) = parse(&attrs, Place::Variant);
        assert_eq!(
            errors,
            [
                "`event` expects a string, found `UserLogin`; write `event = \"UserLogin\"`",
                "expected keys in parentheses, such as `#[audited(event = \"UserLogin\")]`",
            ]
        );
    }

    #[test]
    fn says_which_value_is_missing() {
        let attrs: Vec<Attribute> = vec![parse_quote!(#[audited(event = , crate = "x")])];
        let (args, errors) = parse(&attrs, Place::Struct);
        assert_eq!(errors, ["`event` needs a value after `=`"]);
        assert!(args.krate.is_some());
    }

    #[test]
    fn lists_the_keys_of_the_place_when_nothing_is_close() {
        let attrs: Vec<Attribute> = vec![parse_quote!(#[audited(colour)])];
        let (_, errors) = parse(&attrs, Place::Field);
        assert_eq!(errors, ["unknown key `colour`; expected `skip`, `redact`, `user_id`, `session_id` or `ip`"]);
    }
}
