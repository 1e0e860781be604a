//! The request layer's in-flight gauge is there, at 0, once a router has the layer, before any request:
//! alone in its binary, so that no other test's request made it first.

use axum::Router;
use axum::routing::get;
use hardened::http::RequestLayer;
use hardened_tests::sample;

#[test]
fn the_in_flight_gauge_reads_zero_before_the_first_request() {
    assert_eq!(sample("hardened_http_requests_in_flight", &[]), None, "nothing registered it yet");
    let app: Router = Router::new().route("/", get(|| async { "ok" })).layer(RequestLayer::new());
    assert_eq!(sample("hardened_http_requests_in_flight", &[]), Some(0));
    assert!(hardened::metrics::render().contains("hardened_http_requests_in_flight 0"));
    drop(app);
}
