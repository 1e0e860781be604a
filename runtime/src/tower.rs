//! The guards without the macro: [`GuardLayer`] puts named guards around any [`tower::Service`].
//!
//! ```
//! use std::time::Duration;
//! use hardened::Rejected;
//! use hardened::tower::GuardLayer;
//! use tower::{Layer, Service};
//!
//! #[derive(Debug)]
//! enum CallError {
//!     Refused(Rejected),
//!     Failed,
//! }
//!
//! impl From<Rejected> for CallError {
//!     fn from(rejected: Rejected) -> CallError {
//!         CallError::Refused(rejected)
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let upstream = tower::service_fn(|prompt: String| async move {
//!     if prompt.is_empty() { Err(CallError::Failed) } else { Ok(prompt.to_uppercase()) }
//! });
//! let mut guarded = GuardLayer::new()
//!     .breaker("docs-upstream")
//!     .bulkhead("docs-upstream")
//!     .timeout(Duration::from_secs(30))
//!     .retry("docs-upstream")
//!     .layer(upstream);
//! assert_eq!(guarded.call("hi".to_owned()).await.unwrap(), "HI");
//! # });
//! ```
//!
//! # Which guards
//!
//! [`GuardLayer::named`] takes, under one name, each kind among the breaker, the rate limiter, the
//! concurrency limit and the bulkhead that the configuration in force has a section for
//! (`[breaker.llm]`, `[rate.llm]`, ...) or that a `#[hardened]` function (or a layer made before) uses
//! under that name; it reads them when it is called, so make it after `hardened::config::load`. A retry
//! is never implied: it needs a request it can send again (`Clone`), so it is chosen with
//! [`GuardLayer::retry`], as is the timeout, which has no name, with [`GuardLayer::timeout`]. The other builder methods choose or replace
//! one kind's guard by name. The guards are those of the registries (`hardened::breaker(name)`, ...):
//! shared with every function and layer naming them, made from the configuration in force, retuned when
//! it is reloaded, counted in their own metrics.
//!
//! # The chain
//!
//! The order and rules are the attribute's: retry, breaker, rate limiter, timeout, concurrency limit,
//! bulkhead, then the inner service (its readiness and its call). A refusal by a guard inside the breaker
//! gives the breaker's permit back uncounted; a timeout counts as a failure; refusals are never retried,
//! timeouts and failures are, within the policy's attempts and budget. The inner service's `Err` is a
//! failure; [`GuardLayer::failure_if`] judges results otherwise (a 5xx response, with
//! [`ServerErrors`]).
//!
//! # Keys
//!
//! [`GuardLayer::keyed_by`] keys each request (its caller's tenant, user or API key): the rate limiter
//! then takes the request's token from the key's bucket, and the bulkhead bounds the key's requests in
//! flight, once per request before the breaker, as `rate(key = ..)` and `bulkhead(key = ..)` do; the
//! breaker and the concurrency limit stay shared.
//!
//! # Refusals
//!
//! A refusal arrives as the inner service's error, `E::from(Rejected)`. Services that cannot fail, such
//! as an axum route (its error is `Infallible`), take it as a response instead:
//! [`GuardLayer::refusals_as_responses`] (feature `http`) answers with
//! [`Rejected`]'s `IntoResponse`: 429 or 503 with `Retry-After`, 504 for a timeout.
//!
//! A call through a layer has no call site: no span and no `hardened_calls_total` of its own (the
//! service's own instrumentation, such as the HTTP request layer, covers it), and its timeouts are
//! counted by the breaker, not in `hardened_rejections_total{guard="timeout"}`.

// Without `http`, the items it adds are linked on docs.rs, which documents every feature.
#![cfg_attr(
    feature = "http",
    doc = "",
    doc = "[`ServerErrors`]: ServerErrors",
    doc = "[`GuardLayer::refusals_as_responses`]: GuardLayer::refusals_as_responses"
)]
#![cfg_attr(
    not(feature = "http"),
    doc = "",
    doc = "[`ServerErrors`]: https://docs.rs/hardened/latest/hardened/tower/struct.ServerErrors.html",
    doc = "[`GuardLayer::refusals_as_responses`]: https://docs.rs/hardened/latest/hardened/tower/struct.GuardLayer.html#method.refusals_as_responses"
)]
use std::future::{Future, poll_fn};
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use ::tower::{Layer, Service};

use crate::Rejected;
/// The names a layer chose, by kind, and the guards they resolve to.
pub use crate::guards::{GuardChain, GuardNames};
use crate::rate_limit::LimitKey;

/// Named guards around a [`tower::Service`], in the attribute's order; see the [module](self) docs.
///
/// `Retry` is [`Once`] or [`Retried`] (after [`GuardLayer::retry`], which asks for a `Clone` request),
/// `Refuse` how a refusal arrives ([`AsError`] unless [`GuardLayer::refusals_as_responses`]), `Judge`
/// which results the breaker counts as failures ([`ErrIsFailure`] unless [`GuardLayer::failure_if`]).
#[cfg_attr(
    feature = "http",
    doc = "",
    doc = "[`GuardLayer::refusals_as_responses`]: GuardLayer::refusals_as_responses"
)]
#[cfg_attr(
    not(feature = "http"),
    doc = "",
    doc = "[`GuardLayer::refusals_as_responses`]: https://docs.rs/hardened/latest/hardened/tower/struct.GuardLayer.html#method.refusals_as_responses"
)]
#[derive(Debug, Clone)]
#[must_use = "a layer guards nothing until it wraps a service"]
pub struct GuardLayer<Retry = Once, Refuse = AsError, Judge = ErrIsFailure, Key = Unkeyed> {
    names: GuardNames,
    timeout: Option<Duration>,
    judge: Judge,
    key: Key,
    marker: PhantomData<fn() -> (Retry, Refuse)>,
}

/// Each call is one attempt: any request will do.
#[derive(Debug, Clone, Copy, Default)]
pub struct Once;

/// A call retries under a policy: the request is cloned for each attempt.
#[derive(Debug, Clone, Copy, Default)]
pub struct Retried;

impl GuardLayer {
    /// A layer with no guards yet; choose them with the builder methods.
    pub fn new() -> GuardLayer {
        GuardLayer {
            names: GuardNames::default(),
            timeout: None,
            judge: ErrIsFailure,
            key: Unkeyed,
            marker: PhantomData,
        }
    }

    /// The breaker, rate limiter, concurrency limit and bulkhead called `name` that the configuration in
    /// force has a section for or a `#[hardened]` function declares; see the [module](self) docs. Naming
    /// none is logged as a warning: the layer would guard nothing.
    pub fn named(name: &str) -> GuardLayer {
        let mut names = GuardNames::configured_or_declared(name);
        // A retry needs a request that can be sent again: chosen with `retry`, which asks for one.
        names.retry = None;
        if names.is_empty() {
            tracing::warn!(
                target: "hardened::tower",
                "GuardLayer::named(\"{name}\") finds no breaker, rate, concurrency or bulkhead section or function using that name; it guards nothing"
            );
        }
        GuardLayer { names, ..GuardLayer::new() }
    }
}

impl Default for GuardLayer {
    fn default() -> Self {
        GuardLayer::new()
    }
}

impl<Retry, Refuse, Judge, Key> GuardLayer<Retry, Refuse, Judge, Key> {
    /// The circuit breaker called `name` (`hardened::breaker(name)`).
    pub fn breaker(mut self, name: &str) -> Self {
        self.names.breaker = Some(name.to_owned());
        self
    }

    /// The rate limiter called `name` (`hardened::rate_limiter(name)`).
    pub fn rate(mut self, name: &str) -> Self {
        self.names.rate = Some(name.to_owned());
        self
    }

    /// The concurrency limit called `name` (`hardened::concurrency_limit(name)`).
    pub fn concurrency(mut self, name: &str) -> Self {
        self.names.concurrency = Some(name.to_owned());
        self
    }

    /// The bulkhead called `name` (`hardened::bulkhead(name)`).
    pub fn bulkhead(mut self, name: &str) -> Self {
        self.names.bulkhead = Some(name.to_owned());
        self
    }

    /// A timeout around each attempt, covering the wait for the concurrency limit's and the bulkhead's
    /// permits; it counts as a failure and is refused as [`Rejected::TimedOut`].
    pub fn timeout(mut self, after: Duration) -> Self {
        self.timeout = Some(after);
        self
    }

    /// Retries under the policy called `name` (`hardened::retry_policy(name)`: attempts, backoff, budget),
    /// sending a clone of the request each time: the service then needs a `Clone` request.
    pub fn retry(mut self, name: &str) -> GuardLayer<Retried, Refuse, Judge, Key> {
        self.names.retry = Some(name.to_owned());
        GuardLayer { names: self.names, timeout: self.timeout, judge: self.judge, key: self.key, marker: PhantomData }
    }

    /// Judges which results are failures, for the breaker and the retries, with `judge` (a
    /// `Fn(&Result<Response, Error>) -> bool`, or [`ServerErrors`]) instead of every `Err`.
    #[cfg_attr(feature = "http", doc = "", doc = "[`ServerErrors`]: ServerErrors")]
    #[cfg_attr(
        not(feature = "http"),
        doc = "",
        doc = "[`ServerErrors`]: https://docs.rs/hardened/latest/hardened/tower/struct.ServerErrors.html"
    )]
    pub fn failure_if<J>(self, judge: J) -> GuardLayer<Retry, Refuse, J, Key> {
        GuardLayer { names: self.names, timeout: self.timeout, judge, key: self.key, marker: PhantomData }
    }

    /// Keys each request with `key_of` (a `Fn(&Request) -> Option<K>`: the caller's tenant, user or API
    /// key): the rate limiter then takes the request's token from the key's bucket, and the bulkhead
    /// bounds the key's requests in flight, as `rate(key = ..)` and `bulkhead(key = ..)` do; a request
    /// without a key goes through the guards as a whole. See [`GuardChain::call_keyed`].
    pub fn keyed_by<F>(self, key_of: F) -> GuardLayer<Retry, Refuse, Judge, F> {
        GuardLayer { names: self.names, timeout: self.timeout, judge: self.judge, key: key_of, marker: PhantomData }
    }

    /// Answers a refusal with [`Rejected`]'s response (429, 503, 504) rather than an error: for axum
    /// routes, whose error is `Infallible`.
    #[cfg(feature = "http")]
    pub fn refusals_as_responses(self) -> GuardLayer<Retry, AsResponse, Judge, Key> {
        GuardLayer { names: self.names, timeout: self.timeout, judge: self.judge, key: self.key, marker: PhantomData }
    }

    /// The names of the guards the layer puts around a service.
    #[must_use]
    pub fn names(&self) -> &GuardNames {
        &self.names
    }
}

impl<S, Retry, Refuse, Judge: Clone, Key: Clone> Layer<S> for GuardLayer<Retry, Refuse, Judge, Key> {
    type Service = GuardService<S, Retry, Refuse, Judge, Key>;

    /// Wraps `inner`; the guards are looked up (or made) here, once per distinct set of names.
    fn layer(&self, inner: S) -> Self::Service {
        GuardService {
            inner,
            chain: GuardChain::new(&self.names, self.timeout),
            judge: self.judge.clone(),
            key: self.key.clone(),
            marker: PhantomData,
        }
    }
}

/// Requests have no key: each goes through the guards as a whole.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unkeyed;

/// The key of a request, for a layer [keyed](GuardLayer::keyed_by) by it.
pub trait KeyOf<Req> {
    /// The key's type.
    type Key: LimitKey + Send + 'static;
    /// The request's key, if it has one.
    fn key_of(&self, request: &Req) -> Option<Self::Key>;
}

impl<Req> KeyOf<Req> for Unkeyed {
    type Key = ();

    fn key_of(&self, _: &Req) -> Option<()> {
        None
    }
}

impl<Req, K: LimitKey + Send + 'static, F: Fn(&Req) -> Option<K>> KeyOf<Req> for F {
    type Key = K;

    fn key_of(&self, request: &Req) -> Option<K> {
        self(request)
    }
}

/// Runs `attempt` through `chain`, by `key` when the request has one; a refusal arrives as `Refuse` says.
async fn through<Refuse, K, T, E, F, Fut>(
    chain: GuardChain,
    key: Option<K>,
    attempt: F,
    is_failure: impl Fn(&Result<T, E>) -> bool,
) -> Result<T, E>
where
    Refuse: Refusals<T, E>,
    K: LimitKey,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let guarded = match key {
        Some(key) => chain.call_keyed(&key, attempt, is_failure).await,
        None => chain.call(attempt, is_failure).await,
    };
    guarded.unwrap_or_else(Refuse::refused)
}

/// A service behind a [`GuardLayer`].
#[derive(Debug)]
pub struct GuardService<S, Retry = Once, Refuse = AsError, Judge = ErrIsFailure, Key = Unkeyed> {
    inner: S,
    chain: GuardChain,
    judge: Judge,
    key: Key,
    marker: PhantomData<fn() -> (Retry, Refuse)>,
}

impl<S: Clone, Retry, Refuse, Judge: Clone, Key: Clone> Clone for GuardService<S, Retry, Refuse, Judge, Key> {
    fn clone(&self) -> Self {
        GuardService {
            inner: self.inner.clone(),
            chain: self.chain,
            judge: self.judge.clone(),
            key: self.key.clone(),
            marker: PhantomData,
        }
    }
}

impl<S, Retry, Refuse, Judge, Key> GuardService<S, Retry, Refuse, Judge, Key> {
    /// The guards the service goes through.
    #[must_use]
    pub fn chain(&self) -> &GuardChain {
        &self.chain
    }

    /// The inner service, ready (it was polled ready by the caller) and taken; a clone stays in its place.
    fn take_ready(&mut self) -> S
    where
        S: Clone,
    {
        let fresh = self.inner.clone();
        std::mem::replace(&mut self.inner, fresh)
    }
}

/// The future of a call through a [`GuardService`].
pub type GuardFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, Req, Refuse, Judge, Key> Service<Req> for GuardService<S, Once, Refuse, Judge, Key>
where
    Key: KeyOf<Req>,
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
    Req: Send + 'static,
    Refuse: Refusals<S::Response, S::Error>,
    Judge: Classify<S::Response, S::Error> + Clone + Send + Sync + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = GuardFuture<S::Response, S::Error>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let key = self.key.key_of(&request);
        let mut ready = Some((self.take_ready(), request));
        let (chain, judge) = (self.chain, self.judge.clone());
        Box::pin(async move {
            let attempt = move || {
                let taken = ready.take();
                async move {
                    let (mut service, request) = taken.expect("a chain without a retry policy makes one attempt");
                    service.call(request).await
                }
            };
            through::<Refuse, _, _, _, _, _>(chain, key, attempt, |result| judge.is_failure(result)).await
        })
    }
}

impl<S, Req, Refuse, Judge, Key> Service<Req> for GuardService<S, Retried, Refuse, Judge, Key>
where
    Key: KeyOf<Req>,
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
    Req: Clone + Send + 'static,
    Refuse: Refusals<S::Response, S::Error>,
    Judge: Classify<S::Response, S::Error> + Clone + Send + Sync + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = GuardFuture<S::Response, S::Error>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let key = self.key.key_of(&request);
        let fresh = self.inner.clone();
        let mut ready = Some(self.take_ready());
        let (chain, judge) = (self.chain, self.judge.clone());
        Box::pin(async move {
            // The first attempt uses the service its caller readied; each retry a clone, readied here,
            // inside the guards.
            let attempt = move || {
                let readied = ready.take();
                let retry = readied.is_none();
                let mut service = readied.unwrap_or_else(|| fresh.clone());
                let request = request.clone();
                async move {
                    if retry {
                        poll_fn(|context| service.poll_ready(context)).await?;
                    }
                    service.call(request).await
                }
            };
            through::<Refuse, _, _, _, _, _>(chain, key, attempt, |result| judge.is_failure(result)).await
        })
    }
}

/// How a refusal reaches the caller of a [`GuardService`].
pub trait Refusals<T, E> {
    /// The result standing for `rejected`.
    fn refused(rejected: Rejected) -> Result<T, E>;
}

/// A refusal is the service's error, `E::from(Rejected)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct AsError;

impl<T, E: From<Rejected>> Refusals<T, E> for AsError {
    fn refused(rejected: Rejected) -> Result<T, E> {
        Err(E::from(rejected))
    }
}

/// A refusal is a response: [`Rejected`]'s `IntoResponse` (429 or 503 with `Retry-After`, 504).
#[cfg(feature = "http")]
#[derive(Debug, Clone, Copy, Default)]
pub struct AsResponse;

#[cfg(feature = "http")]
impl<E> Refusals<axum::response::Response, E> for AsResponse {
    fn refused(rejected: Rejected) -> Result<axum::response::Response, E> {
        Ok(axum::response::IntoResponse::into_response(rejected))
    }
}

/// Which results of a service are failures, for the breaker and the retries.
pub trait Classify<T, E> {
    /// Whether `result` is a failure.
    fn is_failure(&self, result: &Result<T, E>) -> bool;
}

/// Every `Err` is a failure, every `Ok` a success.
#[derive(Debug, Clone, Copy, Default)]
pub struct ErrIsFailure;

impl<T, E> Classify<T, E> for ErrIsFailure {
    fn is_failure(&self, result: &Result<T, E>) -> bool {
        result.is_err()
    }
}

impl<T, E, F: Fn(&Result<T, E>) -> bool> Classify<T, E> for F {
    fn is_failure(&self, result: &Result<T, E>) -> bool {
        self(result)
    }
}

/// Every `Err` and every 5xx response is a failure: for HTTP services.
#[cfg(feature = "http")]
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerErrors;

#[cfg(feature = "http")]
impl<B, E> Classify<axum::http::Response<B>, E> for ServerErrors {
    fn is_failure(&self, result: &Result<axum::http::Response<B>, E>) -> bool {
        result.as_ref().is_ok_and(|response| response.status().is_server_error()) || result.is_err()
    }
}
