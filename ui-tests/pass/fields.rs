//! `fields(..)`: shorthand arguments, expressions, constants, and values that are tracing values, only
//! `Display` or only `Debug`.
use std::fmt;

use hardened::hardened;

const VERSION: &str = "1.0";

/// Only `Display`.
struct Shown(u8);

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shown {}", self.0)
    }
}

/// Only `Debug`.
#[derive(Debug)]
struct Debugged {
    id: u8,
}

#[hardened(fields(user_id, query, len = query.len(), version = VERSION))]
fn search(user_id: u64, query: &str) -> usize {
    query.len() + usize::try_from(user_id).unwrap_or(0)
}

#[hardened(fields(shown, debugged, id = debugged.id, both = format!("{shown}/{debugged:?}")))]
fn describe(shown: &Shown, debugged: &Debugged) -> String {
    format!("{shown} {}", debugged.id)
}

impl Debugged {
    #[hardened(fields(id = self.id, other))]
    fn same(&self, other: &Debugged) -> bool {
        self.id == other.id
    }
}

fn main() {
    assert_eq!(search(1, "abc"), 4);
    assert_eq!(describe(&Shown(1), &Debugged { id: 2 }), "shown 1 2");
    assert!(Debugged { id: 3 }.same(&Debugged { id: 3 }));
}
