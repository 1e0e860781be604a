//! URLs as error texts may carry them: without userinfo, query or fragment, the places where URLs carry
//! credentials and tokens. Tool and model errors reach the caller, the transcript, the log and the audit
//! trail's `outcome_details`.

use std::error::Error as _;

/// `url` without its userinfo, query and fragment; a removed query shows as `?[redacted]`.
pub(crate) fn url(url: &reqwest::Url) -> String {
    let mut bare = url.clone();
    // Only URLs that cannot have userinfo refuse these, and those have none to remove.
    let _ = bare.set_username("");
    let _ = bare.set_password(None);
    bare.set_query(None);
    bare.set_fragment(None);
    let mut text = bare.to_string();
    if url.query().is_some() {
        text.push_str("?[redacted]");
    }
    text
}

/// `text` with every URL in it redacted as [`url`] does.
pub(crate) fn urls_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(separator) = rest.find("://") {
        // Scheme characters are ASCII, so the byte after any other is a character boundary.
        let scheme_start = rest.as_bytes()[..separator]
            .iter()
            .rposition(|byte| !(byte.is_ascii_alphanumeric() || matches!(byte, b'+' | b'-' | b'.')))
            .map_or(0, |index| index + 1);
        let token_end = rest[separator..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`' | ')'))
            .map_or(rest.len(), |offset| separator + offset);
        // Punctuation after a URL belongs to the sentence.
        let end = separator + 3 + rest[separator + 3..token_end].trim_end_matches(['.', ',', ':', ';', '!']).len();
        out.push_str(&rest[..scheme_start]);
        let candidate = &rest[scheme_start..end];
        match reqwest::Url::parse(candidate) {
            Ok(parsed) if scheme_start < separator => out.push_str(&url(&parsed)),
            // Not a URL after all: nothing in it can be told apart from the text around it.
            _ if candidate.contains(['@', '?', '#']) => out.push_str("[redacted URL]"),
            _ => out.push_str(candidate),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// A reqwest error as a caller may read it: what failed, the URL redacted, and the causes.
pub(crate) fn reqwest_error(error: reqwest::Error) -> String {
    let address = error.url().map(url);
    let error = error.without_url();
    let mut text = urls_in(&error.to_string());
    if let Some(address) = address {
        text.push_str(" for ");
        text.push_str(&address);
    }
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&urls_in(&cause.to_string()));
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn any_text_is_redacted_without_a_panic(prefix in ".{0,40}", middle in "[a-zé+.:/@?#-]{0,40}", suffix in ".{0,40}") {
            let text = format!("{prefix}é://{middle}://{suffix}");
            let redacted = urls_in(&text);
            prop_assert!(redacted.len() <= text.len() + 64);
        }
    }

    #[test]
    fn userinfo_query_and_fragment_are_removed() {
        let parsed =
            reqwest::Url::parse("https://alice:hunter2@example.com:8443/a/b?token=s3cret&x=1#part").expect("a URL");
        assert_eq!(url(&parsed), "https://example.com:8443/a/b?[redacted]");
        let plain = reqwest::Url::parse("http://example.com/page").expect("a URL");
        assert_eq!(url(&plain), "http://example.com/page");
    }

    #[test]
    fn urls_in_a_text_are_redacted_and_the_rest_is_kept() {
        assert_eq!(
            urls_in("error sending request for url (http://bob:pw@10.0.0.1/x?key=abc): connection refused"),
            "error sending request for url (http://10.0.0.1/x?[redacted]): connection refused"
        );
        assert_eq!(
            urls_in("two: https://a.example/?k=1 and ftp://u:p@b.example/f"),
            "two: https://a.example/?[redacted] and ftp://b.example/f"
        );
        assert_eq!(urls_in("no URL here: a://"), "no URL here: a://");
        assert_eq!(urls_in("://x?token=1"), "[redacted URL]");
        assert_eq!(urls_in("plain text"), "plain text");
        assert_eq!(urls_in("failed: http://h/p?k=v: refused."), "failed: http://h/p?[redacted]: refused.");
    }

    #[tokio::test]
    async fn a_reqwest_error_keeps_its_causes_and_loses_the_urls_secrets() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a port").local_addr().expect("an address");
        let error = reqwest::get(format!("http://u:pw@{closed}/x?token=planted")).await.expect_err("nothing listens");
        let text = reqwest_error(error);
        assert!(text.starts_with(&format!("error sending request for http://{closed}/x?[redacted]: ")), "{text}");
        assert!(!text.contains("planted") && !text.contains("pw@"), "{text}");
    }
}
