//! `hardened`'s request layers (`serve::with_request_layers`: the request's metrics and audit context,
//! its server span) around a handler that answers at once, against the same router without them, under
//! the development telemetry. The difference includes one root span, the request's.

use agent_server::Settings;
use agent_server::serve;
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::routing::get;
use criterion::Criterion;
use tower::ServiceExt as _;

use crate::allocations::{self, PerUnit};
use crate::subscribers::Telemetry;

/// The router without the layers and with them: `http/bare`, `http/layers`.
fn routers(settings: &Settings) -> [(&'static str, Router); 2] {
    let bare = Router::new().route("/v1/ping", get(|| async { "pong" }));
    let layered = serve::with_request_layers(bare.clone(), settings);
    [("bare", bare), ("layers", layered)]
}

pub(crate) fn bench(c: &mut Criterion, settings: &Settings, runtime: &tokio::runtime::Runtime) {
    let mut group = c.benchmark_group("http");
    tracing::subscriber::with_default(Telemetry::Development.subscriber(settings), || {
        for (id, router) in routers(settings) {
            group.bench_function(id, |b| {
                b.iter(|| {
                    let response = runtime.block_on(router.clone().oneshot(request()));
                    response.unwrap_or_else(|never| match never {})
                });
            });
        }
    });
    group.finish();
}

/// What a request allocates through each router: `http/bare`, `http/layers`.
pub(crate) fn allocations(
    settings: &Settings,
    runtime: &tokio::runtime::Runtime,
    units: usize,
) -> Vec<(String, PerUnit)> {
    tracing::subscriber::with_default(Telemetry::Development.subscriber(settings), || {
        routers(settings)
            .into_iter()
            .map(|(id, router)| {
                let send =
                    || runtime.block_on(router.clone().oneshot(request())).unwrap_or_else(|never| match never {});
                send();
                let requests: Vec<_> = (0..units).map(|_| request()).collect();
                let allocated = allocations::per_unit(units, || {
                    for request in requests {
                        let response = runtime.block_on(router.clone().oneshot(request));
                        drop(response.unwrap_or_else(|never| match never {}));
                    }
                });
                (format!("http/{id}"), allocated)
            })
            .collect()
    })
}

fn request() -> Request<Body> {
    let mut request = Request::get("/v1/ping").body(Body::empty()).expect("a valid request");
    request.extensions_mut().insert(ConnectInfo(std::net::SocketAddr::from(([127, 0, 0, 1], 40_000))));
    request
}
