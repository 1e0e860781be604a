//! Error texts without the secrets URLs carry: tool and model errors reach the caller, the transcript,
//! the log and the audit trail's `outcome_details`. The masking itself is `hardened::redact::urls`; what
//! is here is how a reqwest error is put into words around it.

use std::error::Error as _;

pub(crate) use hardened::redact::urls;

/// A reqwest error as a caller may read it: what failed, the URL with its secrets masked, and the causes.
pub(crate) fn reqwest_error(error: reqwest::Error) -> String {
    let address = error.url().map(|url| urls(url.as_str()).into_owned());
    let error = error.without_url();
    let mut text = urls(&error.to_string()).into_owned();
    if let Some(address) = address {
        text.push_str(" for ");
        text.push_str(&address);
    }
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&urls(&cause.to_string()));
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_reqwest_error_keeps_its_causes_and_loses_the_urls_secrets() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a port").local_addr().expect("an address");
        let error = reqwest::get(format!("http://u:pw@{closed}/x?token=planted")).await.expect_err("nothing listens");
        let text = reqwest_error(error);
        // reqwest moves the userinfo into a header before the request, so its error names the URL without it.
        assert!(text.starts_with(&format!("error sending request for http://{closed}/x?token=***: ")), "{text}");
        assert!(!text.contains("planted") && !text.contains("pw@"), "{text}");
    }
}
