//! The fetch tool's reach: the allow-list checked on the first URL and on every redirect, and every
//! address a host resolves to checked before a connection is made to it.
//!
//! Redirects are followed, each hop checked like the first URL (a model asking for a page expects the
//! page, and the check costs the same on every hop). The addresses are checked in the client's own DNS
//! resolver, so the address checked is the address connected to: a name that resolves to a public
//! address for a check and to an internal one for the connection (DNS rebinding) cannot pass, since there
//! is one resolution and its refused addresses are dropped from it. Literal addresses, which need no
//! resolution, are checked with the URL.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hardened::hardened;
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect;

use super::ToolError;
use super::address::{self, classify};
use super::redact;
use crate::settings::FetchSettings;

/// Where the fetch tool may go: the hosts of `fetch.allow_hosts`, at public addresses or those of
/// `fetch.allow_private` (and addresses listed in `allow_hosts` themselves).
#[derive(Debug)]
pub(crate) struct FetchPolicy {
    /// Host names, lowercase.
    hosts: Vec<String>,
    /// Literal addresses of `allow_hosts`.
    listed_addresses: Vec<IpAddr>,
    /// Addresses reachable although not public.
    allow_private: Vec<IpAddr>,
}

/// A refusal by the policy, told apart from other errors in a reqwest error's causes.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Refused(String);

impl FetchPolicy {
    /// The policy of `settings`; its addresses were checked when the settings were loaded.
    pub(crate) fn new(settings: &FetchSettings) -> Result<FetchPolicy, String> {
        let mut hosts = Vec::new();
        let mut listed_addresses = Vec::new();
        for host in &settings.allow_hosts {
            match host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
                Ok(ip) => listed_addresses.push(address::canonical(ip)),
                Err(_) => hosts.push(host.to_ascii_lowercase()),
            }
        }
        let allow_private = settings.allow_private_addresses()?.into_iter().map(address::canonical).collect();
        Ok(FetchPolicy { hosts, listed_addresses, allow_private })
    }

    /// Whether `url` may be fetched: http or https, a listed host, and for a literal address, a permitted
    /// one.
    pub(crate) fn check_url(&self, url: &Url) -> Result<(), String> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("`{}` URLs are refused; allowed: http and https", url.scheme()));
        }
        let Some(host) = url.host_str() else { return Err("the URL has no host".to_owned()) };
        let Ok(literal) = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() else {
            if self.hosts.iter().any(|listed| listed.eq_ignore_ascii_case(host)) {
                return Ok(());
            }
            return Err(format!("{host} is not on the fetch allow-list"));
        };
        let literal = address::canonical(literal);
        if !self.listed_addresses.contains(&literal) {
            return Err(format!("{literal} is not on the fetch allow-list"));
        }
        Ok(())
    }

    /// Whether a connection to `ip` (an address `host` resolved to) is permitted.
    fn check_address(&self, host: &str, ip: IpAddr) -> Result<(), String> {
        let ip = address::canonical(ip);
        let class = classify(ip);
        if class.is_public() || self.allow_private.contains(&ip) || self.listed_addresses.contains(&ip) {
            return Ok(());
        }
        Err(format!(
            "{host} resolves to {ip}, {class}; allowed: public addresses, and those listed in fetch.allow_private"
        ))
    }
}

/// The system resolver, with the addresses the policy refuses removed from every answer.
#[derive(Debug)]
struct CheckedResolver {
    policy: Arc<FetchPolicy>,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.policy);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let (permitted, refusal) = permitted_addresses(&policy, &host, resolved);
            if permitted.is_empty() {
                let reason = refusal.unwrap_or_else(|| format!("{host} resolves to no address"));
                return Err(Box::new(Refused(reason)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(permitted.into_iter()) as Addrs)
        })
    }
}

/// The addresses of `resolved` the policy permits, and the first refusal's reason.
fn permitted_addresses(
    policy: &FetchPolicy,
    host: &str,
    resolved: impl Iterator<Item = SocketAddr>,
) -> (Vec<SocketAddr>, Option<String>) {
    let mut permitted = Vec::new();
    let mut refusal = None;
    for address in resolved {
        match policy.check_address(host, address.ip()) {
            Ok(()) => permitted.push(address),
            Err(reason) => {
                refusal.get_or_insert(reason);
            }
        }
    }
    (permitted, refusal)
}

/// The fetch tool's HTTP client and policy.
#[derive(Debug)]
pub(crate) struct Fetcher {
    client: reqwest::Client,
    policy: Arc<FetchPolicy>,
    max_bytes: usize,
}

impl Fetcher {
    /// A client that resolves through the policy, checks every redirect and uses no proxy (a proxy would
    /// resolve names itself, past the check).
    pub(crate) fn new(settings: &FetchSettings) -> Result<Fetcher, String> {
        let policy = Arc::new(FetchPolicy::new(settings)?);
        let hops = Arc::clone(&policy);
        let max_redirects = settings.max_redirects;
        let redirects = redirect::Policy::custom(move |attempt| {
            // `previous` holds the first URL and every hop followed so far.
            if attempt.previous().len() > max_redirects {
                let reason = format!(
                    "more than {max_redirects} redirects; allowed: at most {max_redirects} (fetch.max_redirects)"
                );
                return attempt.error(Refused(reason));
            }
            let checked = hops.check_url(attempt.url());
            let host = attempt.url().host_str().unwrap_or_default().to_owned();
            super::authorization(&format!("fetch:{host}"), checked.is_ok(), "the fetch allow-list, on a redirect");
            match checked {
                Ok(()) => attempt.follow(),
                Err(reason) => attempt.error(Refused(format!("a redirect was refused: {reason}"))),
            }
        });
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(redirects)
            .dns_resolver(CheckedResolver { policy: Arc::clone(&policy) })
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|error| format!("the fetch tool's HTTP client: {error}"))?;
        Ok(Fetcher { client, policy, max_bytes: settings.max_bytes })
    }

    /// Fetches `url` if the policy allows it; the decision on the first URL is audited.
    pub(crate) async fn get(&self, url: &str) -> Result<String, ToolError> {
        let parsed =
            Url::parse(url).map_err(|error| ToolError::InvalidInput(format!("`url` is not a URL: {error}")))?;
        let host = parsed.host_str().unwrap_or_default().to_owned();
        let checked = self.policy.check_url(&parsed);
        super::authorization(&format!("fetch:{host}"), checked.is_ok(), "the fetch allow-list");
        checked.map_err(ToolError::Failed)?;
        fetch(&self.client, parsed, &host, self.max_bytes).await
    }
}

/// A reqwest error as the tool reports it: the policy's refusal when that is the cause, else the error
/// with its URL redacted.
fn failure(error: reqwest::Error) -> ToolError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(current) = cause {
        if let Some(refused) = current.downcast_ref::<Refused>() {
            return ToolError::Failed(refused.to_string());
        }
        cause = current.source();
    }
    ToolError::Failed(redact::reqwest_error(error))
}

/// A GET from an allowed host: a breaker per host set, a rate limit, a bulkhead and a timeout, since the
/// network is the tool most likely to hang.
#[hardened(
    kind = "tool",
    audit,
    fields(host),
    breaker(name = "fetch", consecutive_failures = 5, open_for = "30s"),
    rate(name = "fetch", per_second = 20, burst = 40),
    bulkhead(name = "fetch", max = 8),
    timeout = "10s"
)]
async fn fetch(http: &reqwest::Client, url: Url, host: &str, max_bytes: usize) -> Result<String, ToolError> {
    let mut response = http.get(url).send().await.map_err(failure)?;
    let status = response.status();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(failure)? {
        body.extend_from_slice(&chunk);
        if body.len() >= max_bytes {
            body.truncate(max_bytes);
            break;
        }
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    if status.is_success() { Ok(text) } else { Err(ToolError::Failed(format!("{host} answered {status}"))) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow_hosts: &[&str], allow_private: &[&str]) -> FetchPolicy {
        let settings = FetchSettings {
            allow_hosts: allow_hosts.iter().map(|host| (*host).to_owned()).collect(),
            allow_private: allow_private.iter().map(|address| (*address).to_owned()).collect(),
            ..FetchSettings::default()
        };
        FetchPolicy::new(&settings).expect("valid settings")
    }

    fn url(text: &str) -> Url {
        Url::parse(text).expect("a URL")
    }

    #[test]
    fn urls_are_checked_for_scheme_host_and_literal_address() {
        let policy = policy(&["Example.com", "127.0.0.1", "[::1]"], &[]);
        assert_eq!(policy.check_url(&url("https://example.COM/x")), Ok(()));
        assert_eq!(policy.check_url(&url("http://127.0.0.1:8080/")), Ok(()));
        assert_eq!(policy.check_url(&url("http://[::1]/")), Ok(()));
        assert_eq!(policy.check_url(&url("http://[::ffff:127.0.0.1]/")), Ok(()), "the same address, mapped");
        assert_eq!(
            policy.check_url(&url("http://evil.example/")),
            Err("evil.example is not on the fetch allow-list".to_owned())
        );
        assert_eq!(
            policy.check_url(&url("http://169.254.169.254/latest/meta-data/")),
            Err("169.254.169.254 is not on the fetch allow-list".to_owned())
        );
        assert_eq!(
            policy.check_url(&url("http://2130706433/")),
            Ok(()),
            "127.0.0.1 written as a number is still 127.0.0.1"
        );
        assert_eq!(
            policy.check_url(&url("file:///etc/passwd")),
            Err("`file` URLs are refused; allowed: http and https".to_owned())
        );
    }

    #[test]
    fn resolved_addresses_are_kept_only_when_public_or_listed() {
        let strict = policy(&["internal.example"], &[]);
        let resolved = ["127.0.0.1:0", "10.0.0.7:0", "93.184.215.14:0", "[fd00:ec2::254]:0"]
            .map(|address| address.parse::<SocketAddr>().expect("an address"));
        let (permitted, refusal) = permitted_addresses(&strict, "internal.example", resolved.into_iter());
        assert_eq!(permitted, vec![resolved[2]], "only the public address is connected to");
        assert_eq!(
            refusal.as_deref(),
            Some(
                "internal.example resolves to 127.0.0.1, a loopback address; allowed: public addresses, and those \
                 listed in fetch.allow_private"
            )
        );

        let (permitted, _) = permitted_addresses(&strict, "internal.example", resolved[..2].iter().copied());
        assert!(permitted.is_empty(), "a name resolving only to internal addresses gets no connection");

        let listed = policy(&["internal.example"], &["10.0.0.7", "fd00:ec2::254"]);
        let (permitted, _) = permitted_addresses(&listed, "internal.example", resolved.into_iter());
        assert_eq!(permitted, vec![resolved[1], resolved[2], resolved[3]]);
    }

    /// The resolver the connection uses is the one that checks, so there is no second resolution a
    /// rebinding name could answer differently.
    #[tokio::test]
    async fn the_resolver_refuses_a_name_resolving_only_to_loopback() {
        let resolver = CheckedResolver { policy: Arc::new(policy(&["localhost"], &[])) };
        let name: Name = "localhost".parse().expect("a name");
        let error = resolver.resolve(name).await.err().expect("localhost is loopback only");
        assert!(error.to_string().contains("a loopback address"), "{error}");
    }
}
