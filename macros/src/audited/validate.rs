//! Checks the attributes of a type, its variants and its fields against where they are written and
//! against each other, producing a [`Plan`] that expansion turns into code without further questions.

use proc_macro2::Span;
use quote::quote;
use syn::ext::IdentExt as _;
use syn::spanned::Spanned as _;
use syn::{Data, DeriveInput, Fields, Generics, Ident, Index, Member, Path, Type};

use super::args::{Args, Place, Redaction};
use crate::common::errors::Errors;
use crate::common::meta::Spanned;

/// Everything expansion needs, already checked.
pub(crate) struct Plan {
    pub(crate) krate: Path,
    pub(crate) ident: Ident,
    pub(crate) generics: Generics,
    pub(crate) shape: Shape,
}

/// The events a value of the type can describe.
pub(crate) enum Shape {
    /// A struct: always the same event.
    Struct(Event),
    /// An enum: one event per variant, in declaration order.
    Enum(Vec<Event>),
}

/// One event: a struct, or one variant of an enum.
pub(crate) struct Event {
    /// The variant, for an enum.
    pub(crate) variant: Option<Ident>,
    /// The event type's name.
    pub(crate) name: String,
    /// The fields that go into the record, in declaration order; skipped fields are not here.
    pub(crate) fields: Vec<Field>,
}

/// A field that goes into the record.
pub(crate) struct Field {
    pub(crate) member: Member,
    /// Its key in the details: the field's name, or its position for a tuple field.
    pub(crate) key: String,
    pub(crate) ty: Type,
    pub(crate) role: Role,
}

/// Where a field goes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Role {
    /// Into the details as JSON.
    Detail,
    /// Into the details as `"[redacted]"`.
    Redacted,
    /// Into the details as its keyed hash.
    Hashed,
    /// Into one of the record's actor fields; `hashed` for a pseudonymous id.
    Actor { actor: Actor, hashed: bool },
}

/// The record's actor fields.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Actor {
    UserId,
    SessionId,
    Ip,
}

impl Actor {
    const ALL: [Actor; 3] = [Actor::UserId, Actor::SessionId, Actor::Ip];

    /// The key that marks a field as this actor field.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Actor::UserId => "user_id",
            Actor::SessionId => "session_id",
            Actor::Ip => "ip",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Actor::UserId => "one user id",
            Actor::SessionId => "one session id",
            Actor::Ip => "one IP address",
        }
    }

    fn is_marked(self, args: &Args) -> bool {
        match self {
            Actor::UserId => args.user_id.is_some(),
            Actor::SessionId => args.session_id.is_some(),
            Actor::Ip => args.ip.is_some(),
        }
    }
}

/// Checks the derive's input; `None` when any error was found.
pub(crate) fn plan(input: &DeriveInput, errors: &mut Errors) -> Option<Plan> {
    let before = errors.is_empty();
    let place = match &input.data {
        Data::Struct(_) => Place::Struct,
        Data::Enum(_) => Place::Enum,
        Data::Union(union) => {
            let (keyword, ident) = (&union.union_token, &input.ident);
            errors.over(
                quote!(#keyword #ident),
                "`#[derive(Audited)]` applies to structs and enums, not to unions: a union does not know which of its fields holds a value",
            );
            return None;
        }
    };
    let args = Args::parse(&input.attrs, place, errors);
    check_place(&args, place, errors);
    let shape = match &input.data {
        Data::Struct(data) => {
            let name =
                args.event.as_ref().map_or_else(|| input.ident.unraw().to_string(), |event| event_name(event, errors));
            Shape::Struct(Event { variant: None, name, fields: fields(&data.fields, errors) })
        }
        Data::Enum(data) => Shape::Enum(
            data.variants
                .iter()
                .map(|variant| {
                    let own = Args::parse(&variant.attrs, Place::Variant, errors);
                    check_place(&own, Place::Variant, errors);
                    let name = own
                        .event
                        .as_ref()
                        .map_or_else(|| variant.ident.unraw().to_string(), |event| event_name(event, errors));
                    Event { variant: Some(variant.ident.clone()), name, fields: fields(&variant.fields, errors) }
                })
                .collect(),
        ),
        Data::Union(_) => unreachable!("unions are refused above"),
    };
    if !(before && errors.is_empty()) {
        return None;
    }
    Some(Plan {
        krate: args.krate.unwrap_or_else(|| syn::parse_quote!(::hardened)),
        ident: input.ident.clone(),
        generics: input.generics.clone(),
        shape,
    })
}

/// The path to the runtime crate the attributes of `input` ask for, ignoring every error: what the
/// fallback impl emitted next to errors names.
pub(crate) fn crate_path(input: &DeriveInput) -> Path {
    let place = if matches!(input.data, Data::Enum(_)) { Place::Enum } else { Place::Struct };
    Args::parse(&input.attrs, place, &mut Errors::default()).krate.unwrap_or_else(|| syn::parse_quote!(::hardened))
}

/// Refuses each key written where it does not belong.
fn check_place(args: &Args, place: Place, errors: &mut Errors) {
    for (key, span) in &args.keys {
        if !place.keys().contains(key) {
            errors.at(*span, misplaced(key, place));
        }
    }
}

fn misplaced(key: &str, place: Place) -> String {
    let here = match place {
        Place::Struct => "a struct",
        Place::Enum => "an enum",
        Place::Variant => "a variant",
        Place::Field => "a field",
    };
    match key {
        "event" if place == Place::Enum => {
            "`event` names the event of one variant; put it on the variants, not on the enum".to_owned()
        }
        "event" => format!("`event` names the event of a struct or of an enum variant, not of {here}"),
        "crate" => format!("`crate` is set once, on the struct or enum itself, not on {here}"),
        field_key => format!("`{field_key}` marks a field, not {here}; put it on the field"),
    }
}

/// The name of an event type as written in `event = ".."`.
fn event_name(event: &Spanned<String>, errors: &mut Errors) -> String {
    if let Err(message) = check_event_name(&event.value) {
        errors.at(event.span, message);
    }
    event.value.clone()
}

/// Event names are identifier-like, so that they read well in logs and queries: ASCII letters, digits,
/// `_`, `.` and `-`, starting with a letter (`UserLogin`, `user.login`, `document-export`).
pub(crate) fn check_event_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("an event name cannot be empty; write a name such as `event = \"UserLogin\"`".to_owned());
    }
    let starts_with_letter = name.starts_with(|first: char| first.is_ascii_alphabetic());
    let valid = name.chars().all(|part| part.is_ascii_alphanumeric() || matches!(part, '_' | '.' | '-'));
    if starts_with_letter && valid {
        Ok(())
    } else {
        Err(format!(
            "an event name is made of ASCII letters, digits, `_`, `.` and `-`, starting with a letter, such as `UserLogin` or `user.login`; found `{name}`"
        ))
    }
}

/// The fields of a struct or variant that go into the record.
fn fields(fields: &Fields, errors: &mut Errors) -> Vec<Field> {
    // Each actor field already filled, and the key of the field that fills it.
    let mut taken: Vec<(Actor, String)> = Vec::new();
    let mut planned = Vec::with_capacity(fields.len());
    for (index, field) in fields.iter().enumerate() {
        let args = Args::parse(&field.attrs, Place::Field, errors);
        check_place(&args, Place::Field, errors);
        let (member, key) = if let Some(ident) = &field.ident {
            (Member::Named(ident.clone()), ident.unraw().to_string())
        } else {
            let position = Index { index: u32::try_from(index).unwrap_or(u32::MAX), span: field.ty.span() };
            (Member::Unnamed(position), index.to_string())
        };
        let Some(role) = role(&args, errors) else { continue };
        if let Role::Actor { actor, .. } = role {
            if let Some((_, first)) = taken.iter().find(|(filled, _)| *filled == actor) {
                let span = args.key_span(actor.key()).unwrap_or_else(Span::call_site);
                errors.at(
                    span,
                    format!("`{}` already marks the field `{first}`; a record has {}", actor.key(), actor.describe()),
                );
            } else {
                taken.push((actor, key.clone()));
            }
        }
        planned.push(Field { member, key, ty: field.ty.clone(), role });
    }
    planned
}

/// What the keys of one field ask for; `None` for a skipped field.
fn role(args: &Args, errors: &mut Errors) -> Option<Role> {
    let actors: Vec<Actor> = Actor::ALL.into_iter().filter(|actor| actor.is_marked(args)).collect();
    if let [first, second, ..] = actors.as_slice() {
        let (first, second) = (first.key(), second.key());
        errors.at(
            later_key(args, first, second),
            format!("`{first}` and `{second}` cannot mark the same field; a field fills one actor field of the record"),
        );
    }
    let actor = actors.first().copied();
    if args.skip.is_some() {
        if args.redact.is_some() {
            errors.at(
                later_key(args, "skip", "redact"),
                "`skip` leaves the field out of the record, so `redact` has nothing to hide; keep one of them",
            );
        }
        if let Some(actor) = actor {
            let key = actor.key();
            errors.at(
                later_key(args, "skip", key),
                format!(
                    "`skip` leaves the field out of the record, but `{key}` reads it into the record; keep one of them"
                ),
            );
        }
        return None;
    }
    let redact_span = args.key_span("redact").unwrap_or_else(Span::call_site);
    Some(match (actor, args.redact) {
        (None, None) => Role::Detail,
        (None, Some(Redaction::Plain)) => Role::Redacted,
        (None, Some(Redaction::Hash)) => Role::Hashed,
        (Some(Actor::Ip), Some(_)) => {
            errors.at(
                redact_span,
                "the record keeps an IP address as an address, which cannot be redacted; drop `redact`, or drop `ip` to record the field as a redacted detail",
            );
            Role::Actor { actor: Actor::Ip, hashed: false }
        }
        (Some(actor), Some(Redaction::Plain)) => {
            let key = actor.key();
            errors.at(
                redact_span,
                format!("plain `redact` would make every `{key}` read `[redacted]`; write `redact = \"hash\"` to record a pseudonymous keyed hash of it, or drop `{key}`"),
            );
            Role::Actor { actor, hashed: false }
        }
        (Some(actor), redaction) => Role::Actor { actor, hashed: redaction == Some(Redaction::Hash) },
    })
}

/// The span of whichever of two written keys comes second, to point at the one that conflicts.
fn later_key(args: &Args, a: &str, b: &str) -> Span {
    args.keys.iter().rev().find(|(key, _)| *key == a || *key == b).map_or_else(Span::call_site, |(_, span)| *span)
}

#[cfg(test)]
mod tests {
    use syn::parse_quote;

    use super::*;

    fn planned(input: &DeriveInput) -> Result<Plan, Vec<String>> {
        let mut errors = Errors::default();
        let plan = plan(input, &mut errors);
        match errors.finish() {
            Ok(()) => Ok(plan.expect("a plan when there is no error")),
            Err(error) => Err(error.into_iter().map(|error| error.to_string()).collect()),
        }
    }

    fn errors_of(input: &DeriveInput) -> Vec<String> {
        planned(input).err().unwrap_or_default()
    }

    #[test]
    fn names_events_after_variants_unless_told_otherwise() {
        let input: DeriveInput = parse_quote! {
            enum Action {
                Login { #[audited(user_id)] user: String, #[audited(redact)] password: String },
                #[audited(event = "document.export")]
                Export(u64, #[audited(skip)] Vec<u8>, #[audited(redact = "hash")] String),
                r#Ping,
            }
        };
        let plan = planned(&input).expect("a valid input");
        let Shape::Enum(events) = plan.shape else { panic!("an enum") };
        let names: Vec<&str> = events.iter().map(|event| event.name.as_str()).collect();
        assert_eq!(names, ["Login", "document.export", "Ping"]);
        let login: Vec<(&str, Role)> = events[0].fields.iter().map(|field| (field.key.as_str(), field.role)).collect();
        assert_eq!(
            login,
            [("user", Role::Actor { actor: Actor::UserId, hashed: false }), ("password", Role::Redacted)]
        );
        let export: Vec<(&str, Role)> = events[1].fields.iter().map(|field| (field.key.as_str(), field.role)).collect();
        assert_eq!(export, [("0", Role::Detail), ("2", Role::Hashed)]);
    }

    #[test]
    fn names_a_struct_after_itself_and_reads_its_crate() {
        let input: DeriveInput = parse_quote! {
            #[audited(crate = "framework::hardened")]
            struct r#Search { r#type: String }
        };
        let plan = planned(&input).expect("a valid input");
        let krate = &plan.krate;
        assert_eq!(quote!(#krate).to_string(), quote!(framework::hardened).to_string());
        let Shape::Struct(event) = plan.shape else { panic!("a struct") };
        assert_eq!(event.name, "Search");
        assert_eq!(event.fields[0].key, "type");
    }

    #[test]
    fn refuses_keys_out_of_place() {
        let input: DeriveInput = parse_quote! {
            #[audited(event = "X", skip)]
            enum Action {
                #[audited(redact, crate = "x")]
                A { #[audited(event = "Y")] a: u8 },
            }
        };
        assert_eq!(
            errors_of(&input),
            [
                "`event` names the event of one variant; put it on the variants, not on the enum",
                "`skip` marks a field, not an enum; put it on the field",
                "`redact` marks a field, not a variant; put it on the field",
                "`crate` is set once, on the struct or enum itself, not on a variant",
                "`event` names the event of a struct or of an enum variant, not of a field",
            ]
        );
    }

    #[test]
    fn refuses_combinations_that_make_no_sense() {
        let input: DeriveInput = parse_quote! {
            struct Login {
                #[audited(skip, redact)] a: u8,
                #[audited(user_id, skip)] b: u8,
                #[audited(user_id, session_id)] c: u8,
                #[audited(session_id, redact)] d: u8,
                #[audited(ip, redact = "hash")] e: u8,
            }
        };
        assert_eq!(
            errors_of(&input),
            [
                "`skip` leaves the field out of the record, so `redact` has nothing to hide; keep one of them",
                "`skip` leaves the field out of the record, but `user_id` reads it into the record; keep one of them",
                "`user_id` and `session_id` cannot mark the same field; a field fills one actor field of the record",
                "plain `redact` would make every `session_id` read `[redacted]`; write `redact = \"hash\"` to record a pseudonymous keyed hash of it, or drop `session_id`",
                "the record keeps an IP address as an address, which cannot be redacted; drop `redact`, or drop `ip` to record the field as a redacted detail",
            ]
        );
    }

    #[test]
    fn allows_one_field_per_actor_field_in_each_variant() {
        let input: DeriveInput = parse_quote! {
            enum Action {
                A(#[audited(user_id)] String, #[audited(user_id, redact = "hash")] String),
                B(#[audited(user_id)] String, #[audited(session_id)] String, #[audited(ip)] String),
            }
        };
        assert_eq!(errors_of(&input), ["`user_id` already marks the field `0`; a record has one user id"]);
    }

    #[test]
    fn checks_event_names() {
        assert!(check_event_name("UserLogin").is_ok());
        assert!(check_event_name("user.login-v2_x").is_ok());
        assert!(check_event_name("").is_err_and(|message| message.contains("cannot be empty")));
        for bad in ["user login", "1st", "_x", "ünïcode", "a/b"] {
            assert!(check_event_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn refuses_unions() {
        let input: DeriveInput = parse_quote! { union U { a: u8 } };
        assert_eq!(errors_of(&input).len(), 1);
    }
}
