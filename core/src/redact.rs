//! Secrets taken out of text before it is recorded: the user name and password of a URL, and the values
//! of its query string and its fragment.
//!
//! Error messages carry URLs (an HTTP client's error names the URL it failed on, a configuration error
//! quotes the value at fault) and URLs carry secrets (`redis://:password@host`, `?api_key=...`). Every
//! place where hardened records or prints text that can hold a URL (an error's message in a span or an
//! audit event, a configuration error, a Redis limiter's error) passes it through [`urls`] first.
//!
//! ```
//! assert_eq!(
//!     hardened::redact::urls("error sending request for url (https://ada:s3cret@api.example.com/v1?key=abc&q=1)"),
//!     "error sending request for url (https://***@api.example.com/v1?key=***&q=***)",
//! );
//! assert_eq!(hardened::redact::urls("no URL here"), "no URL here");
//! ```

use std::borrow::Cow;

/// What replaces each secret.
pub const MASK: &str = "***";

/// `text` with every URL's user name and password, query values and fragment replaced by [`MASK`]; the
/// scheme, host, port, path and query parameter names stay, so the message still says where.
///
/// A URL is a scheme followed by `://`; it ends at white space, a quote, `<`, `>` or a backquote, and
/// trailing punctuation (`.`, `,`, `;`, `:`, `!`, `?`) or an unmatched closing bracket is not part of it.
/// Text without `://` is returned as it is, without copying.
#[must_use]
pub fn urls(text: &str) -> Cow<'_, str> {
    if !text.contains("://") {
        return Cow::Borrowed(text);
    }
    let mut redacted = String::new();
    let mut copied = 0;
    let mut search_from = 0;
    while let Some(found) = text[search_from..].find("://") {
        let separator = search_from + found;
        let rest_start = separator + 3;
        let end = url_end(text, rest_start);
        search_from = end.max(rest_start);
        if !has_scheme(&text[..separator]) {
            continue;
        }
        if let Some(rest) = redact_after_scheme(&text[rest_start..end]) {
            redacted.push_str(&text[copied..rest_start]);
            redacted.push_str(&rest);
            copied = end;
        }
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    redacted.push_str(&text[copied..]);
    Cow::Owned(redacted)
}

/// Whether `before` ends with a URL scheme: a letter, then letters, digits, `+`, `-` or `.`.
fn has_scheme(before: &str) -> bool {
    let scheme_len = before
        .bytes()
        .rev()
        .take_while(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'+' | b'-' | b'.'))
        .count();
    before[before.len() - scheme_len..].bytes().next().is_some_and(|first| first.is_ascii_alphabetic())
}

/// Where the URL whose text after `://` starts at `from` ends.
fn url_end(text: &str, from: usize) -> usize {
    let rest = &text[from..];
    let mut end = from
        + rest
            .find(|c: char| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '<' | '>' | '`'))
            .unwrap_or(rest.len());
    // Brackets opened and closed in the URL, counted once and updated as its end moves back, so that a
    // URL ending in many brackets costs time in proportion to its length.
    let count = |bracket: char| text[from..end].matches(bracket).count();
    let open = [count('('), count('['), count('{')];
    let mut close = [count(')'), count(']'), count('}')];
    while let Some(last) = text[from..end].chars().next_back() {
        let bracket = match last {
            ')' => Some(0),
            ']' => Some(1),
            '}' => Some(2),
            _ => None,
        };
        let unmatched = bracket.is_some_and(|kind| open[kind] < close[kind]);
        if !(unmatched || matches!(last, '.' | ',' | ';' | ':' | '!' | '?')) {
            break;
        }
        if let Some(kind) = bracket {
            close[kind] -= 1;
        }
        end -= last.len_utf8();
    }
    end
}

/// The part of a URL after `://` with its secrets masked, or `None` when it has none.
fn redact_after_scheme(rest: &str) -> Option<String> {
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, after_authority) = rest.split_at(authority_end);
    let (before_fragment, fragment) = match after_authority.split_once('#') {
        Some((before, fragment)) => (before, Some(fragment)),
        None => (after_authority, None),
    };
    let (path, query) = match before_fragment.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (before_fragment, None),
    };
    let userinfo_end = authority.rfind('@');
    let has_query = query.is_some_and(|query| !query.is_empty());
    let has_fragment = fragment.is_some_and(|fragment| !fragment.is_empty());
    if userinfo_end.is_none() && !has_query && !has_fragment {
        return None;
    }
    let mut redacted = String::with_capacity(rest.len());
    match userinfo_end {
        Some(at) => {
            redacted.push_str(MASK);
            redacted.push_str(&authority[at..]);
        }
        None => redacted.push_str(authority),
    }
    redacted.push_str(path);
    if let Some(query) = query {
        redacted.push('?');
        for (index, pair) in query.split('&').enumerate() {
            if index > 0 {
                redacted.push('&');
            }
            match pair.split_once('=') {
                Some((name, _)) => {
                    redacted.push_str(name);
                    redacted.push('=');
                    redacted.push_str(MASK);
                }
                None if pair.is_empty() => {}
                None => redacted.push_str(MASK),
            }
        }
    }
    if let Some(fragment) = fragment {
        redacted.push('#');
        if !fragment.is_empty() {
            redacted.push_str(MASK);
        }
    }
    Some(redacted)
}

#[cfg(test)]
mod tests {
    use super::urls;

    #[test]
    fn masks_the_user_name_and_password() {
        assert_eq!(urls("redis://:hunter2@cache:6379/0"), "redis://***@cache:6379/0");
        assert_eq!(urls("redis://app:hunter2@cache:6379"), "redis://***@cache:6379");
        assert_eq!(urls("https://ghp_token@github.com/org/repo"), "https://***@github.com/org/repo");
    }

    #[test]
    fn a_password_holding_an_at_sign_is_masked_whole() {
        assert_eq!(urls("redis://:p@ss@cache:6379"), "redis://***@cache:6379");
    }

    #[test]
    fn masks_query_values_and_keeps_their_names() {
        assert_eq!(
            urls("GET https://api.example.com/search?key=abc123&q=cats&flag failed"),
            "GET https://api.example.com/search?key=***&q=***&*** failed"
        );
        assert_eq!(urls("https://host/?"), "https://host/?");
    }

    #[test]
    fn masks_the_fragment() {
        assert_eq!(urls("https://app/callback#access_token=abc"), "https://app/callback#***");
    }

    #[test]
    fn urls_in_brackets_and_quotes_end_where_they_close() {
        assert_eq!(
            urls("error sending request for url (https://u:p@api.example.com/?key=s3cret): timed out"),
            "error sending request for url (https://***@api.example.com/?key=***): timed out"
        );
        assert_eq!(urls(r#"url: "https://h/?k=v", source"#), r#"url: "https://h/?k=***", source"#);
        assert_eq!(urls("see https://h/?k=v."), "see https://h/?k=***.");
        assert_eq!(urls("at http://[::1]:8080/?k=v"), "at http://[::1]:8080/?k=***");
    }

    #[test]
    fn every_url_in_the_text_is_masked() {
        assert_eq!(
            urls("redirect from https://a/?t=1 to https://b:c@d/ failed"),
            "redirect from https://a/?t=*** to https://***@d/ failed"
        );
    }

    #[test]
    fn text_without_secrets_is_not_copied() {
        for text in ["plain text", "https://example.com/path", "://no scheme?k=v", "1://digit first?k=v"] {
            assert!(matches!(urls(text), std::borrow::Cow::Borrowed(same) if same == text), "{text}");
        }
    }

    #[test]
    fn multi_byte_text_around_urls_is_kept() {
        assert_eq!(urls("échec: https://é:ü@hôte/?clé=värde — fin"), "échec: https://***@hôte/?clé=*** — fin");
    }
}
