//! `GET /hardened`: the live page, one self-contained HTML file ([`page.html`](PAGE)) whose script polls
//! `/calls` and `/guards` every second and draws every call site and every guard.
//!
//! The page itself holds nothing secret and is served to anyone who can reach the listener (a browser
//! cannot send a bearer token with a navigation); the data it fetches is behind the admin token. The
//! operator gives the token in the URL's fragment (`/hardened#token=...`, which browsers never send to
//! a server) or types it into the page; it is kept in the tab's `sessionStorage` and sent as
//! `Authorization: Bearer` with each fetch.
//!
//! A strict Content-Security-Policy allows exactly the page's own inline script and style (by their
//! SHA-256 hashes), fetches to this origin, and nothing else: no other script, no frame, no form target.

use std::sync::LazyLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// The page: HTML, one `<style>` and one `<script>`, no external resource.
const PAGE: &str = include_str!("page.html");

/// The Content-Security-Policy of [`PAGE`], computed once from its inline script and style.
static POLICY: LazyLock<HeaderValue> =
    LazyLock::new(|| HeaderValue::from_str(&policy(PAGE)).expect("a policy of ASCII sources is a valid header value"));

pub(super) async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
            (header::CONTENT_SECURITY_POLICY, POLICY.clone()),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        ],
        PAGE,
    )
        .into_response()
}

/// The policy for `html`: its one inline script and its one inline style by hash, fetches to the page's
/// own origin, nothing else.
fn policy(html: &str) -> String {
    format!(
        "default-src 'none'; script-src '{}'; style-src '{}'; connect-src 'self'; img-src 'self' data:; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        source_hash(inline(html, "script")),
        source_hash(inline(html, "style")),
    )
}

/// The text between `<tag>` and `</tag>`, as the browser hashes it.
fn inline<'a>(html: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = html.find(&open).map_or(0, |at| at + open.len());
    let end = html[start..].find(&close).map_or(start, |at| start + at);
    &html[start..end]
}

/// A CSP hash source: `sha256-` and the base64 of the text's SHA-256.
fn source_hash(text: &str) -> String {
    format!("sha256-{}", base64(&Sha256::digest(text.as_bytes())))
}

/// Standard base64 with padding (RFC 4648, section 4), as CSP hash sources are written.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut encoded = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let triple = chunk.iter().enumerate().fold(0u32, |triple, (index, byte)| {
            triple | u32::from(*byte) << (16 - 8 * u32::try_from(index).unwrap_or(0))
        });
        for position in 0..4 {
            if position <= chunk.len() {
                let sextet = (triple >> (18 - 6 * position)) & 0x3f;
                encoded.push(char::from(ALPHABET[sextet as usize]));
            } else {
                encoded.push('=');
            }
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::{PAGE, base64, inline, policy};

    #[test]
    fn base64_follows_rfc_4648_test_vectors() {
        let vectors =
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("foobar", "Zm9vYmFy")];
        for (plain, encoded) in vectors {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain:?}");
        }
    }

    #[test]
    fn the_policy_allows_the_inline_script_and_style_by_hash_and_nothing_from_elsewhere() {
        // The hash of `alert(1)` as the CSP specification's examples give it.
        let html = "<style>p{}</style><script>alert(1)</script>";
        let policy = policy(html);
        assert!(policy.contains("script-src 'sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI='"), "{policy}");
        assert!(policy.starts_with("default-src 'none';"), "{policy}");
        assert!(policy.contains("connect-src 'self'"), "{policy}");
        assert!(!policy.contains("unsafe"), "{policy}");
    }

    #[test]
    fn the_page_has_one_inline_script_and_style_and_loads_nothing() {
        assert_eq!(PAGE.matches("<script").count(), 1, "one script, the one the policy hashes");
        assert_eq!(PAGE.matches("<style").count(), 1, "one style, the one the policy hashes");
        assert!(!inline(PAGE, "script").is_empty() && !inline(PAGE, "style").is_empty());
        for loads in ["src=", "href=", "@import", "url(", " style="] {
            assert!(!PAGE.contains(loads), "the page loads nothing and has no inline style: found {loads:?}");
        }
        let handler = PAGE.match_indices(" on").find(|(at, _)| {
            let name = PAGE[at + 3..].split(|c: char| !c.is_ascii_alphabetic()).next().unwrap_or_default();
            PAGE[at + 3 + name.len()..].starts_with('=')
        });
        assert_eq!(handler, None, "no inline event handler (the policy would block it)");
    }
}
