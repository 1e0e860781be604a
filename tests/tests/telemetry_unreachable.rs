//! A collector that hangs, refuses or is not there never holds up a call: spans are dropped, counted in
//! `hardened_telemetry_spans_dropped_total`, and warned about once per interval.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use hardened::hardened;
use hardened::telemetry::{self, Protocol, TelemetryConfig};
use hardened_tests::Capture;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt as _;

const DROPPED: &str = "hardened_telemetry_spans_dropped_total";
const WARNING: &str = "spans could not be exported and were dropped";

/// The metric is process-wide, so the tests that read it take turns.
static SERIAL: Mutex<()> = Mutex::new(());

#[hardened]
fn record_reading(value: u32) -> u32 {
    value + 1
}

fn dropped() -> u64 {
    hardened_tests::sample(DROPPED, &[]).expect("the metric is registered with the first exporter")
}

/// A global subscriber capturing events, so the export thread's warnings are seen.
fn warnings() -> usize {
    static CAPTURE: OnceLock<Capture> = OnceLock::new();
    let capture = CAPTURE.get_or_init(|| {
        let (subscriber, capture) = Capture::subscriber();
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber of this binary");
        capture
    });
    capture.captured().events.iter().filter(|message| message.starts_with(WARNING)).count()
}

fn calls_traced_by(provider: &SdkTracerProvider, calls: u32) {
    let subscriber = tracing_subscriber::registry().with(telemetry::otel_layer(provider));
    tracing::subscriber::with_default(subscriber, || {
        for value in 0..calls {
            assert_eq!(record_reading(value), value + 1);
        }
    });
}

/// Reads one HTTP request off `stream`: headers, then the body `content-length` announces.
fn read_request(stream: &TcpStream) {
    let mut reader = BufReader::new(stream);
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("the exporter sends a request");
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().expect("a numeric content-length");
        }
        if line == "\r\n" || line.is_empty() {
            break;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).expect("the exporter sends the body");
}

fn refuse(mut stream: TcpStream) {
    read_request(&stream);
    stream
        .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        .expect("the exporter waits for the answer");
}

#[test]
fn calls_complete_while_the_collector_holds_an_export_and_refused_spans_are_counted() {
    let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    let warnings_before = warnings();
    let collector = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let config = TelemetryConfig {
        otlp_traces_endpoint: Some(format!("http://{}/v1/traces", collector.local_addr().expect("bound"))),
        protocol: Protocol::HttpProtobuf,
        export_timeout: Duration::from_mins(2),
        batch_delay: Duration::from_mins(2),
        ..TelemetryConfig::default()
    };
    let provider = telemetry::tracer_provider(&config).expect("a valid configuration");
    let before = dropped();

    calls_traced_by(&provider, 1);
    let flushing = std::thread::spawn({
        let provider = provider.clone();
        move || provider.force_flush()
    });
    // The export is under way once the collector has the request, and waits for its answer.
    let (held, _) = collector.accept().expect("the exporter connects");
    read_request(&held);

    calls_traced_by(&provider, 50);
    assert!(!flushing.is_finished(), "the calls completed while the collector still held the export");

    drop(held);
    std::thread::spawn(move || {
        for stream in collector.incoming().flatten() {
            refuse(stream);
        }
    });
    assert!(flushing.join().expect("the flush thread ends").is_err(), "the held batch is lost");
    assert!(provider.force_flush().is_err(), "the collector refuses the rest");
    assert_eq!(dropped() - before, 51, "every span of every failed batch is counted");
    assert_eq!(warnings() - warnings_before, 1, "two failures within the interval make one warning");
    let _ = provider.shutdown_with_timeout(Duration::from_secs(5));
}

#[test]
fn spans_for_a_collector_that_is_not_there_are_dropped_and_counted() {
    let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    warnings();
    let closed_port = TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("bound").port();
    let config = TelemetryConfig {
        otlp_endpoint: Some(format!("http://127.0.0.1:{closed_port}")),
        protocol: Protocol::Grpc,
        export_timeout: Duration::from_secs(1),
        ..TelemetryConfig::default()
    };
    let provider = telemetry::tracer_provider(&config).expect("a valid configuration");
    let before = dropped();

    calls_traced_by(&provider, 3);
    assert!(provider.force_flush().is_err(), "nothing listens there");
    assert_eq!(dropped() - before, 3);
    let _ = provider.shutdown_with_timeout(Duration::from_secs(5));
}
