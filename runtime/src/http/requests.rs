//! [`RequestLayer`]: request metrics by route template, requests in flight, and the audit actor of each
//! request.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, LazyLock, OnceLock, PoisonError, RwLock};
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, Request, Response, StatusCode};
use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts};
use tokio::task::futures::TaskLocalFuture;
use tower::{Layer, Service};

use super::labels::{OTHER_METHOD, UNMATCHED_ROUTE};
use super::panics::{CatchPanic, PanicSite};
use super::request_limits::CutShort;
use crate::audit::AuditContext;

/// Measures every request and makes its caller the audit actor of everything the handler does.
///
/// - `hardened_http_requests_total{method,route,status}`, a counter, when the response's head is ready;
/// - `hardened_http_request_duration_seconds{method,route}`, a histogram of the time to that point;
/// - `hardened_http_requests_in_flight`, a gauge, also read by [`requests_in_flight`], which the shutdown
///   drain waits for.
///
/// `route` is the route template axum matched (`/users/{id}`, never `/users/7`), or
/// [`UNMATCHED_ROUTE`]; `method` is one of the nine standard methods or [`OTHER_METHOD`]; `status` the
/// numeric status code (`error` when the service failed without a response). Apply the layer with
/// [`Router::layer`](axum::Router::layer), so that it sees the matched route; outside the router every
/// request would be unmatched.
///
/// A handler that panics is answered `500 Internal Server Error` and counted as such, and the panic is
/// audited as an [`Error`](crate::audit::EventType::Error) event (outcome `Failure`, `call_outcome`
/// `panic`, the method and route template as `resource`) with the request's actor. A request that
/// [`Server`](super::Server) cuts short at its request timeout is counted with the status it answered
/// (408 or 503).
///
/// The handler runs inside an [`audit::scope`](crate::audit::scope) with an [`AuditContext`]: the user
/// and session from the function given to [`actor`](RequestLayer::actor), and the client's address
/// from axum's `ConnectInfo<SocketAddr>` (serve with `into_make_service_with_connect_info`), or from
/// `X-Forwarded-For` with [`trust_forwarded_for`](RequestLayer::trust_forwarded_for).
///
/// ```
/// use axum::{Router, routing::get};
/// use hardened::audit::AuditContext;
/// use hardened::http::RequestLayer;
///
/// let app: Router = Router::new().route("/users/{id}", get(|| async { "ada" })).layer(
///     RequestLayer::new().trust_forwarded_for(1).actor(|parts| {
///         let user = parts.headers.get("x-user").and_then(|value| value.to_str().ok());
///         user.map(AuditContext::user).unwrap_or_default()
///     }),
/// );
/// # let _ = app;
/// ```
#[derive(Clone, Default)]
pub struct RequestLayer {
    settings: Arc<Settings>,
}

type ActorFn = dyn Fn(&Parts) -> AuditContext + Send + Sync;

#[derive(Default)]
struct Settings {
    actor: Option<Arc<ActorFn>>,
    /// Proxies in front of the service that append to `X-Forwarded-For`; 0 trusts no header.
    trusted_proxies: usize,
}

impl fmt::Debug for RequestLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestLayer")
            .field("actor", &self.settings.actor.is_some())
            .field("trusted_proxies", &self.settings.trusted_proxies)
            .finish()
    }
}

impl RequestLayer {
    /// A layer that records metrics and sets the client's address as the actor's.
    #[must_use]
    pub fn new() -> RequestLayer {
        RequestLayer::default()
    }

    /// Sets the user and session of each request's actor from its head (headers, extensions such as an
    /// authentication layer's, URI). The layer fills in the client's address when the function leaves
    /// it unset. Authentication layers that put the user in the extensions must run before this one:
    /// add them with `Router::layer` after it.
    #[must_use]
    pub fn actor(self, actor: impl Fn(&Parts) -> AuditContext + Send + Sync + 'static) -> RequestLayer {
        let trusted_proxies = self.settings.trusted_proxies;
        RequestLayer { settings: Arc::new(Settings { actor: Some(Arc::new(actor)), trusted_proxies }) }
    }

    /// Takes the client's address from `X-Forwarded-For`, behind `proxies` proxies that each append the
    /// address they received from: the entry `proxies` places from the right. Entries further left were
    /// written by the client and are not trusted. When the header has fewer entries, or the entry is not
    /// an address, the connection's peer is used. Without this call (or with 0) the header is ignored.
    #[must_use]
    pub fn trust_forwarded_for(self, proxies: usize) -> RequestLayer {
        let actor = self.settings.actor.clone();
        RequestLayer { settings: Arc::new(Settings { actor, trusted_proxies: proxies }) }
    }
}

impl<S> Layer<S> for RequestLayer {
    type Service = RequestService<S>;

    fn layer(&self, inner: S) -> RequestService<S> {
        // Registered with the router, not at the first request: the in-flight gauge reads 0 from the start,
        // so that an alert or a panel on it has a series before any traffic.
        metrics();
        RequestService { inner, settings: Arc::clone(&self.settings) }
    }
}

/// The service made by [`RequestLayer`].
#[derive(Clone)]
pub struct RequestService<S> {
    inner: S,
    settings: Arc<Settings>,
}

impl<S: fmt::Debug> fmt::Debug for RequestService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestService").field("inner", &self.inner).finish_non_exhaustive()
    }
}

impl<S, B, ResBody> Service<Request<B>> for RequestService<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = RequestFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let route = request.extensions().get::<MatchedPath>().map_or(UNMATCHED_ROUTE, MatchedPath::as_str);
        let series = series(request.method(), route);
        let cut_short = request.extensions().get::<CutShort>().cloned();
        let site = PanicSite::of(&request);
        let (request, actor) = self.settings.actor_of(request);
        let in_flight = InFlight::enter();
        RequestFuture {
            // Caught inside the audit scope, so that the panic's audit event names the request's actor.
            inner: crate::audit::scoped(actor, CatchPanic::new(self.inner.call(request), site)),
            measure: Measure { series, started: Instant::now(), cut_short, recorded: false },
            in_flight: Some(in_flight),
        }
    }
}

impl Settings {
    /// The request's actor, and the request given back whole.
    fn actor_of<B>(&self, request: Request<B>) -> (Request<B>, AuditContext) {
        let (request, mut actor) = match &self.actor {
            Some(actor) => {
                let (parts, body) = request.into_parts();
                let context = actor(&parts);
                (Request::from_parts(parts, body), context)
            }
            None => (request, AuditContext::default()),
        };
        if actor.ip_address.is_none() {
            actor.ip_address = self.client_ip(&request);
        }
        (request, actor)
    }

    fn client_ip<B>(&self, request: &Request<B>) -> Option<IpAddr> {
        let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(address)| address.ip());
        if self.trusted_proxies == 0 {
            return peer;
        }
        forwarded_client(request.headers(), self.trusted_proxies).or(peer)
    }
}

/// The entry `proxies` places from the right of the `X-Forwarded-For` entries, as an address.
fn forwarded_client(headers: &HeaderMap, proxies: usize) -> Option<IpAddr> {
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    let entry = entries.get(entries.len().checked_sub(proxies)?)?;
    entry.parse::<IpAddr>().ok().or_else(|| entry.parse::<SocketAddr>().ok().map(|address| address.ip()))
}

pin_project_lite::pin_project! {
    /// The response future of [`RequestService`]: the handler's, inside the request's audit scope, with
    /// a panic answered 500.
    pub struct RequestFuture<F> {
        #[pin]
        inner: TaskLocalFuture<Arc<AuditContext>, CatchPanic<F>>,
        measure: Measure,
        // Taken when the response head is ready; dropped with the future if it never is.
        in_flight: Option<InFlight>,
    }
}

impl<F> fmt::Debug for RequestFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestFuture").field("started", &self.measure.started).finish_non_exhaustive()
    }
}

impl<F, ResBody, E> Future for RequestFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    ResBody: Default,
{
    type Output = Result<Response<ResBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let output = ready!(this.inner.poll(cx));
        this.in_flight.take();
        this.measure.record(output.as_ref().ok().map(Response::status));
        Poll::Ready(output)
    }
}

/// The request's series, recorded once: when its response is ready, or when the server cuts it short
/// (its request timeout) and drops it with the status the client was answered.
struct Measure {
    series: &'static MethodSeries,
    started: Instant,
    cut_short: Option<CutShort>,
    recorded: bool,
}

impl Measure {
    fn record(&mut self, status: Option<StatusCode>) {
        self.recorded = true;
        self.series.record(status, self.started.elapsed().as_secs_f64());
    }
}

impl Drop for Measure {
    fn drop(&mut self) {
        // Dropped unanswered for any other reason (the client went away), the request has no status.
        if !self.recorded
            && let Some(status) = self.cut_short.as_ref().and_then(CutShort::status)
        {
            self.record(Some(status));
        }
    }
}

/// Requests inside a [`RequestLayer`] whose response head is not ready yet: what the shutdown drain
/// waits for.
#[must_use]
pub fn requests_in_flight() -> u64 {
    u64::try_from(metrics().in_flight.get()).unwrap_or(0)
}

/// One request counted in flight until dropped, however its future ends.
struct InFlight;

impl InFlight {
    fn enter() -> InFlight {
        metrics().in_flight.inc();
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics().in_flight.dec();
    }
}

struct HttpMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
    in_flight: IntGauge,
}

fn metrics() -> &'static HttpMetrics {
    static METRICS: OnceLock<HttpMetrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let requests = IntCounterVec::new(
            Opts::new("hardened_http_requests_total", "HTTP requests answered, by method, route template and status."),
            &["method", "route", "status"],
        )
        .expect("valid metric options");
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "hardened_http_request_duration_seconds",
                "Time from a request's arrival to its response head, by method and route template.",
            )
            .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            &["method", "route"],
        )
        .expect("valid metric options");
        let in_flight =
            IntGauge::new("hardened_http_requests_in_flight", "HTTP requests received and not yet answered.")
                .expect("valid metric options");
        let registry = crate::metrics::registry();
        let registered = registry
            .register(Box::new(requests.clone()))
            .and_then(|()| registry.register(Box::new(duration.clone())))
            .and_then(|()| registry.register(Box::new(in_flight.clone())));
        if let Err(error) = registered {
            tracing::error!(%error, "the HTTP request metrics could not be registered");
        }
        crate::shutdown::wait_for_in_flight(requests_in_flight);
        HttpMetrics { requests, duration, in_flight }
    })
}

const METHODS: [&str; 10] =
    ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", OTHER_METHOD];

fn method_label(method: &Method) -> usize {
    METHODS[..METHODS.len() - 1].iter().position(|standard| *standard == method.as_str()).unwrap_or(METHODS.len() - 1)
}

/// The series of one route, made on its first request and kept for the process's life: routes are
/// bounded by the application's route table.
struct RouteSeries {
    route: Box<str>,
    by_method: [OnceLock<MethodSeries>; METHODS.len()],
}

/// The series of one method on one route: its histogram, and a counter per status seen so far.
struct MethodSeries {
    method: &'static str,
    route: &'static str,
    duration: Histogram,
    by_status: RwLock<Vec<(Option<StatusCode>, IntCounter)>>,
}

static ROUTES: LazyLock<RwLock<HashMap<Box<str>, &'static RouteSeries>>> = LazyLock::new(RwLock::default);

thread_local! {
    /// The routes this thread has answered: found by comparing a few strings, without the shared map's
    /// lock (a cache line every request of every thread writes) or a hash of the route.
    static KNOWN_ROUTES: RefCell<Vec<&'static RouteSeries>> = const { RefCell::new(Vec::new()) };
}

fn series(method: &Method, route: &str) -> &'static MethodSeries {
    let known = KNOWN_ROUTES.with_borrow(|known| known.iter().copied().find(|series| *series.route == *route));
    let route_series = known.unwrap_or_else(|| {
        let series = shared_route_series(route);
        KNOWN_ROUTES.with_borrow_mut(|known| known.push(series));
        series
    });
    let index = method_label(method);
    route_series.by_method[index].get_or_init(|| {
        let (method, route) = (METHODS[index], &*route_series.route);
        MethodSeries {
            method,
            route,
            duration: metrics().duration.with_label_values(&[method, route]),
            by_status: RwLock::default(),
        }
    })
}

/// The series of `route`, made on the first request of any thread to it.
fn shared_route_series(route: &str) -> &'static RouteSeries {
    let known = ROUTES.read().unwrap_or_else(PoisonError::into_inner).get(route).copied();
    known.unwrap_or_else(|| {
        let mut routes = ROUTES.write().unwrap_or_else(PoisonError::into_inner);
        *routes.entry(route.into()).or_insert_with(|| {
            Box::leak(Box::new(RouteSeries {
                route: route.into(),
                by_method: std::array::from_fn(|_| OnceLock::new()),
            }))
        })
    })
}

impl MethodSeries {
    /// Counts one answer (`None`: the service failed without one) and observes its duration.
    fn record(&self, status: Option<StatusCode>, seconds: f64) {
        self.duration.observe(seconds);
        if let Some((_, counter)) =
            self.by_status.read().unwrap_or_else(PoisonError::into_inner).iter().find(|(seen, _)| *seen == status)
        {
            counter.inc();
            return;
        }
        self.add_status(status).inc();
    }

    /// The counter of `status`, made on its first answer.
    fn add_status(&self, status: Option<StatusCode>) -> IntCounter {
        let mut by_status = self.by_status.write().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, counter)) = by_status.iter().find(|(seen, _)| *seen == status) {
            return counter.clone();
        }
        let label = status.as_ref().map_or("error", StatusCode::as_str);
        let counter = metrics().requests.with_label_values(&[self.method, self.route, label]);
        by_status.push((status, counter.clone()));
        counter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_thread_finds_the_one_series_of_a_route_and_method() {
        let here = |method: Method, route: &'static str| std::ptr::from_ref(series(&method, route)) as usize;
        let elsewhere = |method: Method, route: &'static str| {
            std::thread::spawn(move || std::ptr::from_ref(series(&method, route)) as usize).join().expect("joined")
        };
        let orders = elsewhere(Method::GET, "/series-test/orders/{id}");
        assert_eq!(here(Method::GET, "/series-test/orders/{id}"), orders, "made on another thread, found here");
        assert_eq!(here(Method::GET, "/series-test/orders/{id}"), orders, "and again, from this thread's routes");
        assert_ne!(here(Method::POST, "/series-test/orders/{id}"), orders, "another method");
        let items = here(Method::GET, "/series-test/items");
        assert_ne!(items, orders, "another route");
        assert_eq!(elsewhere(Method::GET, "/series-test/items"), items);
        assert_eq!(series(&Method::GET, "/series-test/items").route, "/series-test/items");
    }
}
