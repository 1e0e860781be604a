//! The guards without the macro: `hardened::tower::GuardLayer` around tower services and axum routes.
//! Each guard refuses through the layer as the caller's error, and over HTTP with its status; a refusal
//! inside the breaker gives its permit back uncounted; a timeout is a breaker failure; a `Clone` request
//! is retried, a refusal never. The guards' settings come from functions declaring them, as a layer's
//! would from the configuration.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use hardened::tower::GuardLayer;
use hardened::{Rejected, hardened};
use hardened_tests::{sample, until};
use tokio::sync::Notify;
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};

/// The configuration every test installs, the same whichever installs it first.
const CONFIG: &str = "
[bulkhead.tl_named]
max = 3

[rate.tl_http_rate]
per_second = 1
burst = 1

[bulkhead.tl_http_full]
max = 1
";

#[derive(Debug, PartialEq, thiserror::Error)]
enum AppError {
    #[error("refused: {0}")]
    Refused(#[from] Rejected),
    #[error("the upstream failed")]
    Upstream,
}

/// Declares the settings of the guards the layers below name; never called.
#[allow(dead_code, reason = "it declares guards for the layers, and is never called")]
#[hardened(
    breaker(name = "tl_named", consecutive_failures = 1),
    concurrency(name = "tl_named", limit = 1, wait = "1s"),
    rate(name = "tl_rate", per_second = 1, burst = 1),
    bulkhead(name = "tl_bulkhead", max = 1),
    retry(name = "tl_retry", attempts = 2, backoff = "10ms", jitter = false)
)]
async fn declares_layer_guards() -> Result<(), AppError> {
    Ok(())
}

/// Declares a breaker that opens at its first failure.
#[allow(dead_code, reason = "it declares guards for the layers, and is never called")]
#[hardened(breaker(name = "tl_timeout", consecutive_failures = 1))]
async fn declares_timeout_breaker() -> Result<(), AppError> {
    Ok(())
}

/// A service that answers at once, counting its calls.
fn answering(calls: Arc<AtomicU32>) -> impl Service<u32, Response = u32, Error = AppError, Future: Send> + Clone {
    tower::service_fn(move |request: u32| {
        calls.fetch_add(1, Ordering::SeqCst);
        async move { Ok::<_, AppError>(request) }
    })
}

/// A service that answers when `hold` is notified.
fn holding(hold: Arc<Notify>) -> impl Service<u32, Response = u32, Error = AppError, Future: Send> + Clone {
    tower::service_fn(move |request: u32| {
        let hold = hold.clone();
        async move {
            hold.notified().await;
            Ok::<_, AppError>(request)
        }
    })
}

#[test]
fn named_takes_the_kinds_configured_or_declared_under_the_name() {
    hardened::config::load_text(CONFIG, "test").expect("valid configuration");
    let names = GuardLayer::named("tl_named").names().clone();
    assert_eq!(names.breaker.as_deref(), Some("tl_named"), "declared by a function");
    assert_eq!(names.concurrency.as_deref(), Some("tl_named"), "declared by a function");
    assert_eq!(names.bulkhead.as_deref(), Some("tl_named"), "configured");
    assert_eq!((names.rate, names.retry), (None, None), "neither configured nor declared; a retry is never implied");
    let chosen = GuardLayer::named("tl_named").rate("tl_rate").retry("tl_retry");
    assert_eq!(chosen.names().rate.as_deref(), Some("tl_rate"));
    assert_eq!(chosen.names().retry.as_deref(), Some("tl_retry"));
    assert!(GuardLayer::named("tl_nothing_at_all").names().is_empty());
}

#[tokio::test]
async fn an_open_breaker_refuses_as_the_callers_error() {
    let calls = Arc::new(AtomicU32::new(0));
    let service = GuardLayer::new().breaker("tl_open").layer(answering(calls.clone()));
    hardened::breaker("tl_open").force_open();
    let refused = service.oneshot(1).await;
    assert_eq!(refused, Err(AppError::Refused(Rejected::CircuitOpen { name: "tl_open" })));
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the inner service is not called");
    assert_eq!(hardened::breaker("tl_open").counts().not_permitted, 1);
}

#[tokio::test]
async fn a_rate_refusal_gives_the_breaker_permit_back_uncounted() {
    let calls = Arc::new(AtomicU32::new(0));
    let layer = GuardLayer::new().breaker("tl_order").rate("tl_rate");
    let mut service = layer.layer(answering(calls.clone()));
    assert_eq!(service.ready().await.expect("ready").call(1).await, Ok(1));
    let refused = service.ready().await.expect("ready").call(2).await;
    let Err(AppError::Refused(Rejected::RateLimited { name: "tl_rate", retry_after })) = refused else {
        panic!("refused by the rate limiter, found {refused:?}");
    };
    assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_secs(1), "{retry_after:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let counts = hardened::breaker("tl_order").counts();
    assert_eq!((counts.success, counts.failure, counts.not_permitted), (1, 0, 0), "the refusal is not counted");
    let refusals = [("guard", "rate_limiter"), ("name", "tl_rate")];
    assert_eq!(sample("hardened_rejections_total", &refusals), Some(1), "the limiter's own metric counts it");
}

#[tokio::test(start_paused = true)]
async fn a_full_concurrency_limit_queues_then_refuses() {
    let hold = Arc::new(Notify::new());
    let service = GuardLayer::new().concurrency("tl_named").layer(holding(hold.clone()));
    let first = tokio::spawn(service.clone().oneshot(1));
    until(|| hardened::concurrency_limit("tl_named").in_flight() == 1).await;
    let start = Instant::now();
    let second = service.clone().oneshot(2).await;
    assert_eq!(second, Err(AppError::Refused(Rejected::ConcurrencyLimited { name: "tl_named" })));
    assert_eq!(start.elapsed(), Duration::from_secs(1), "it waited its turn for the configured second");
    hold.notify_one();
    assert_eq!(first.await.expect("finished"), Ok(1));
    assert_eq!(hardened::concurrency_limit("tl_named").in_flight(), 0, "the permit went back");
}

#[tokio::test]
async fn a_full_bulkhead_refuses_at_once() {
    let hold = Arc::new(Notify::new());
    let service = GuardLayer::new().bulkhead("tl_bulkhead").layer(holding(hold.clone()));
    let first = tokio::spawn(service.clone().oneshot(1));
    until(|| hardened::bulkhead("tl_bulkhead").available() == 0).await;
    let mut events = hardened::events();
    let second = service.clone().oneshot(2).await;
    let refusal = Rejected::BulkheadFull { name: "tl_bulkhead" };
    assert_eq!(second, Err(AppError::Refused(refusal.clone())));
    // A guard event like any refusal's, with no function: a layer's call has no call site.
    let event = loop {
        let event = events.recv().await.expect("nothing missed");
        if event.name == "tl_bulkhead" {
            break event;
        }
    };
    assert_eq!((event.guard, event.function), ("bulkhead", None));
    assert_eq!(event.kind, hardened::events::GuardEventKind::Refused { rejected: refusal });
    hold.notify_one();
    assert_eq!(first.await.expect("finished"), Ok(1));
    assert_eq!(hardened::bulkhead("tl_bulkhead").available(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_timeout_is_refused_and_counted_as_a_breaker_failure() {
    let hold = Arc::new(Notify::new());
    let service = GuardLayer::new().breaker("tl_timeout").timeout(Duration::from_secs(2)).layer(holding(hold.clone()));
    let start = Instant::now();
    let timed_out = service.clone().oneshot(1).await;
    assert_eq!(timed_out, Err(AppError::Refused(Rejected::TimedOut { after: Duration::from_secs(2) })));
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    let breaker = hardened::breaker("tl_timeout");
    assert_eq!(breaker.counts().failure, 1, "a timeout is a failure");
    assert_eq!(breaker.state(), hardened::BreakerState::Open, "one failure opens this breaker");
    assert_eq!(service.oneshot(2).await, Err(AppError::Refused(Rejected::CircuitOpen { name: "tl_timeout" })));
}

#[tokio::test(start_paused = true)]
async fn a_clone_request_is_retried_and_a_refusal_is_not() {
    let calls = Arc::new(AtomicU32::new(0));
    let counted = calls.clone();
    // Fails twice, then answers.
    let flaky = tower::service_fn(move |request: u32| {
        let attempt = counted.fetch_add(1, Ordering::SeqCst);
        async move { if attempt < 2 { Err(AppError::Upstream) } else { Ok(request) } }
    });
    let layer = GuardLayer::new().retry("tl_retry");
    assert_eq!(layer.layer(flaky).oneshot(7).await, Ok(7), "the third attempt answers");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(hardened::retry_policy("tl_retry").counts().0, 2, "two retries");

    let untouched = Arc::new(AtomicU32::new(0));
    hardened::breaker("tl_retry_open").force_open();
    let refused = layer.breaker("tl_retry_open").layer(answering(untouched.clone())).oneshot(1).await;
    assert_eq!(refused, Err(AppError::Refused(Rejected::CircuitOpen { name: "tl_retry_open" })));
    assert_eq!(hardened::retry_policy("tl_retry").counts().0, 2, "the refusal was not retried");
    assert_eq!(hardened::breaker("tl_retry_open").counts().not_permitted, 1, "one attempt only");
}

#[tokio::test]
async fn a_failure_verdict_can_be_the_callers() {
    // Odd answers are failures, for the breaker: one opens it.
    let calls = Arc::new(AtomicU32::new(0));
    let service = GuardLayer::new()
        .breaker("tl_judged")
        .failure_if(|result: &Result<u32, AppError>| result.as_ref().map_or(true, |answer| answer % 2 == 1))
        .layer(answering(calls));
    assert_eq!(service.clone().oneshot(2).await, Ok(2));
    assert_eq!(service.oneshot(3).await, Ok(3), "the answer is the service's; the verdict is the breaker's");
    let counts = hardened::breaker("tl_judged").counts();
    assert_eq!((counts.success, counts.failure), (1, 1));
}

/// Serves `app` on a loopback port.
async fn serve(app: Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let address = listener.local_addr().expect("an address");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("served") });
    address
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http_each_refusal_has_its_status() {
    let (started, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let (starting, released) = (started.clone(), release.clone());
    let wait = move || {
        let (starting, released) = (starting.clone(), released.clone());
        async move {
            starting.notify_one();
            released.notified().await;
            "done"
        }
    };
    let app = Router::new()
        .route(
            "/rate",
            get(|| async { "ok" }).route_layer(GuardLayer::new().rate("tl_http_rate").refusals_as_responses()),
        )
        .route(
            "/open",
            get(|| async { "ok" }).route_layer(GuardLayer::new().breaker("tl_http_open").refusals_as_responses()),
        )
        .route(
            "/full",
            get(wait.clone()).route_layer(GuardLayer::new().bulkhead("tl_http_full").refusals_as_responses()),
        )
        .route(
            "/slow",
            get(std::future::pending::<&'static str>)
                .route_layer(GuardLayer::new().timeout(Duration::from_millis(50)).refusals_as_responses()),
        );
    // Installed after the layers made their guards: the configuration retunes them.
    hardened::config::load_text(CONFIG, "test").expect("valid configuration");
    hardened::breaker("tl_http_open").force_open();
    let address = serve(app).await;
    let client = reqwest::Client::new();
    let get = |path: &str| client.get(format!("http://{address}{path}")).send();

    assert_eq!(get("/rate").await.expect("an answer").status(), 200);
    // Axum wraps the routes when it starts serving them: the layers' names now count as used.
    let unused: Vec<String> = hardened::config::unused().iter().map(|unused| unused.name.clone()).collect();
    assert!(!unused.iter().any(|name| name.starts_with("tl_http")), "the layers' sections are used: {unused:?}");
    let limited = get("/rate").await.expect("an answer");
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "1");
    let body: serde_json::Value = limited.json().await.expect("JSON");
    assert_eq!((&body["guard"], &body["name"]), (&"rate_limiter".into(), &"tl_http_rate".into()));

    let open = get("/open").await.expect("an answer");
    assert_eq!(open.status(), 503);
    assert_eq!(open.headers()["retry-after"], "1");

    let first = tokio::spawn(get("/full"));
    // The handler runs inside the bulkhead: once it has started, the one permit is held.
    started.notified().await;
    let full = get("/full").await.expect("an answer");
    assert_eq!(full.status(), 503);
    assert!(full.headers().contains_key("retry-after"));
    release.notify_one();
    assert_eq!(first.await.expect("finished").expect("an answer").status(), 200);

    let slow = get("/slow").await.expect("an answer");
    assert_eq!(slow.status(), 504);
    assert!(!slow.headers().contains_key("retry-after"));
}

#[tokio::test(start_paused = true)]
async fn a_timeout_is_retried() {
    let calls = Arc::new(AtomicU32::new(0));
    let counted = calls.clone();
    // Hangs on the first attempt, answers on the second.
    let hanging_once = tower::service_fn(move |request: u32| {
        let attempt = counted.fetch_add(1, Ordering::SeqCst);
        async move {
            if attempt == 0 {
                std::future::pending::<()>().await;
            }
            Ok::<_, AppError>(request)
        }
    });
    let service = GuardLayer::new().timeout(Duration::from_secs(1)).retry("tl_retry_timeout").layer(hanging_once);
    assert_eq!(service.oneshot(5).await, Ok(5));
    assert_eq!(calls.load(Ordering::SeqCst), 2, "the timed-out attempt was retried");
}

#[tokio::test]
async fn server_errors_are_failures_for_the_breaker() {
    let statuses = tower::service_fn(|status: u16| async move {
        let response = http::Response::builder().status(status).body(()).expect("a response");
        Ok::<_, AppError>(response)
    });
    let service =
        GuardLayer::new().breaker("tl_server_errors").failure_if(hardened::tower::ServerErrors).layer(statuses);
    assert_eq!(service.clone().oneshot(200).await.expect("a response").status(), 200);
    assert_eq!(service.clone().oneshot(404).await.expect("a response").status(), 404);
    assert_eq!(service.oneshot(503).await.expect("a response").status(), 503, "the response is still the caller's");
    let counts = hardened::breaker("tl_server_errors").counts();
    assert_eq!((counts.success, counts.failure), (2, 1), "a 4xx is the client's; a 5xx is a failure");
}

/// Declares the keyed layer's guards: a token a minute for each key, one request in flight for each key.
#[allow(dead_code, reason = "it declares guards for the layers, and is never called")]
#[hardened(rate(name = "tl_keyed", per_minute = 2, burst = 2), bulkhead(name = "tl_keyed", max = 1))]
async fn declares_keyed_guards() -> Result<(), AppError> {
    Ok(())
}

#[tokio::test]
async fn a_keyed_layer_gives_each_key_its_own_bucket_and_places() {
    // Requests are `(tenant, hold)`: a held request waits for the notification.
    let release = Arc::new(Notify::new());
    let upstream = tower::service_fn({
        let release = Arc::clone(&release);
        move |(_, hold): (String, bool)| {
            let release = Arc::clone(&release);
            async move {
                if hold {
                    release.notified().await;
                }
                Ok::<_, AppError>(())
            }
        }
    });
    let layer = GuardLayer::named("tl_keyed").keyed_by(|(tenant, _): &(String, bool)| Some(tenant.clone()));
    let service = layer.layer(upstream);
    let call = |tenant: &str, hold: bool| service.clone().oneshot((tenant.to_owned(), hold));

    let held = tokio::spawn(call("acme", true));
    until(|| hardened::bulkhead("tl_keyed").keys_in_flight() == 1).await;
    assert_eq!(call("acme", false).await, Err(AppError::Refused(Rejected::BulkheadFull { name: "tl_keyed" })));
    assert_eq!(call("globex", false).await, Ok(()), "another tenant has its own place");
    release.notify_one();
    assert_eq!(held.await.expect("the call ends"), Ok(()));

    // The refused call gave its token back: acme has one left, then none.
    assert_eq!(call("acme", false).await, Ok(()));
    let limited = call("acme", false).await;
    assert!(matches!(limited, Err(AppError::Refused(Rejected::RateLimited { name: "tl_keyed", .. }))), "{limited:?}");
    assert_eq!(call("globex", false).await, Ok(()));
    assert_eq!(hardened::rate_limiter("tl_keyed").keys(), 2);
    assert_eq!(hardened::rate_limiter("tl_keyed").available(), 2, "the limiter's own bucket is untouched");
}
