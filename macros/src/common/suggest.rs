//! "Did you mean" suggestions for misspelled names.

/// The closest of `candidates` to `unknown`, if any is close enough to be a plausible typo.
pub(crate) fn closest<'a>(unknown: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|candidate| (strsim::jaro_winkler(unknown, candidate), *candidate))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

/// Formats names as `` `a`, `b` and `c` `` for "all of" messages.
pub(crate) fn all_of(names: &[&str]) -> String {
    listing(names, "and")
}

/// Formats names as `` `a`, `b` or `c` `` for "one of" messages.
pub(crate) fn one_of(names: &[&str]) -> String {
    listing(names, "or")
}

fn listing(names: &[&str], conjunction: &str) -> String {
    let quoted: Vec<String> = names.iter().map(|name| format!("`{name}`")).collect();
    match quoted.as_slice() {
        [] => String::new(),
        [only] => only.clone(),
        [init @ .., last] => format!("{} {conjunction} {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_a_near_miss_and_nothing_for_a_stranger() {
        assert_eq!(closest("kidn", &["name", "kind", "level"]), Some("kind"));
        assert_eq!(closest("zzzz", &["name", "kind", "level"]), None);
    }

    #[test]
    fn lists_names_in_prose() {
        assert_eq!(all_of(&["a"]), "`a`");
        assert_eq!(all_of(&["a", "b", "c"]), "`a`, `b` and `c`");
        assert_eq!(one_of(&["a", "b", "c"]), "`a`, `b` or `c`");
    }
}
