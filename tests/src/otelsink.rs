//! A real OTLP receiver on loopback: `otelsink` of the `oteltest` Python package, listening for gRPC and
//! HTTP/protobuf on free ports and reporting every span and metric data point it receives.
//!
//! The receiver runs as a child process of the test; it is installed with pip when missing and killed
//! when the [`OtelSink`] is dropped.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Runs oteltest's gRPC and HTTP sinks on the ports given as arguments, with a handler that prints one
/// JSON line per span and per metric data point received, ids in hex, then `ready` once both ports accept
/// connections.
const SINK_SCRIPT: &str = r#"
import http.server, json, logging, socket, sys, threading, time
from oteltest.sink import GrpcSink, HttpSink
from oteltest.sink.handler import RequestHandler

def plain(value):
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [plain(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {pair.key: plain(pair.value) for pair in value.kvlist_value.values}
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, kind)

lock = threading.Lock()

class Printer(RequestHandler):
    def __init__(self, transport):
        self.transport = transport
    def handle_logs(self, request, headers):
        pass
    def handle_metrics(self, request, headers):
        for resource_metrics in request.resource_metrics:
            resource = {kv.key: plain(kv.value) for kv in resource_metrics.resource.attributes}
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    kind = metric.WhichOneof("data")
                    data = getattr(metric, kind)
                    for point in data.data_points:
                        line = {
                            "signal": "metric",
                            "transport": self.transport,
                            "scope": scope_metrics.scope.name,
                            "resource": resource,
                            "name": metric.name,
                            "unit": metric.unit,
                            "kind": kind,
                            "temporality": getattr(data, "aggregation_temporality", 0),
                            "monotonic": getattr(data, "is_monotonic", False),
                            "attributes": {kv.key: plain(kv.value) for kv in point.attributes},
                            "start": point.start_time_unix_nano,
                            "time": point.time_unix_nano,
                            "exemplars": [
                                {"trace_id": e.trace_id.hex(), "span_id": e.span_id.hex(), "value": getattr(e, e.WhichOneof("value")) if e.WhichOneof("value") else None}
                                for e in getattr(point, "exemplars", [])
                            ],
                        }
                        if kind in ("sum", "gauge"):
                            line["value"] = getattr(point, point.WhichOneof("value"))
                        elif kind == "histogram":
                            line["count"] = point.count
                            line["sum"] = point.sum
                            line["bucket_counts"] = list(point.bucket_counts)
                            line["explicit_bounds"] = list(point.explicit_bounds)
                        with lock:
                            print(json.dumps(line), flush=True)
    def handle_trace(self, request, headers):
        for resource_spans in request.resource_spans:
            resource = {kv.key: plain(kv.value) for kv in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    line = json.dumps({
                        "transport": self.transport,
                        "scope": scope_spans.scope.name,
                        "resource": resource,
                        "name": span.name,
                        "trace_id": span.trace_id.hex(),
                        "span_id": span.span_id.hex(),
                        "parent_span_id": span.parent_span_id.hex(),
                        "kind": span.kind,
                        "status_code": span.status.code,
                        "attributes": {kv.key: plain(kv.value) for kv in span.attributes},
                    })
                    with lock:
                        print(line, flush=True)

# Quiet the HTTP sink's access log; errors still reach stderr.
http.server.BaseHTTPRequestHandler.log_message = lambda *args: None
logging.basicConfig(level=logging.WARNING)
logger = logging.getLogger("otelsink")
grpc_port, http_port = int(sys.argv[1]), int(sys.argv[2])
grpc_sink = GrpcSink(Printer("grpc"), logger, port=grpc_port)
grpc_sink.start()
http_sink = HttpSink(Printer("http"), logger, port=http_port, daemon=True)
http_sink.start()
deadline = time.time() + 20
for port in (grpc_port, http_port):
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.05)
print("ready", flush=True)
threading.Event().wait()
"#;

/// One span as the receiver decoded it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedSpan {
    /// `grpc` or `http`: the port it arrived on.
    pub transport: String,
    /// The instrumentation scope's name.
    pub scope: String,
    /// The resource's attributes.
    pub resource: BTreeMap<String, Value>,
    /// The span's name.
    pub name: String,
    /// 32 hex digits.
    pub trace_id: String,
    /// 16 hex digits.
    pub span_id: String,
    /// 16 hex digits, or empty for a root span.
    pub parent_span_id: String,
    /// The OTLP span kind: 1 internal, 2 server, 3 client.
    pub kind: i64,
    /// The OTLP status code: 0 unset, 1 ok, 2 error.
    pub status_code: i64,
    /// The span's attributes.
    pub attributes: BTreeMap<String, Value>,
}

impl ReceivedSpan {
    /// A string attribute of the span.
    #[must_use]
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).and_then(Value::as_str)
    }

    /// A string attribute of the resource.
    #[must_use]
    pub fn resource_attribute(&self, key: &str) -> Option<&str> {
        self.resource.get(key).and_then(Value::as_str)
    }

    fn from_json(line: &str) -> Option<Self> {
        let value: Value = serde_json::from_str(line).ok()?;
        let (text, map) = (|key: &str| text_field(&value, key), |key: &str| object_field(&value, key));
        Some(ReceivedSpan {
            transport: text("transport")?,
            scope: text("scope")?,
            resource: map("resource"),
            name: text("name")?,
            trace_id: text("trace_id")?,
            span_id: text("span_id")?,
            parent_span_id: text("parent_span_id")?,
            kind: value.get("kind").and_then(Value::as_i64)?,
            status_code: value.get("status_code").and_then(Value::as_i64)?,
            attributes: map("attributes"),
        })
    }
}

/// One metric data point as the receiver decoded it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedPoint {
    /// `grpc` or `http`: the port it arrived on.
    pub transport: String,
    /// The metric's name.
    pub name: String,
    /// The metric's unit.
    pub unit: String,
    /// `sum`, `gauge`, `histogram` or `summary`.
    pub kind: String,
    /// The OTLP aggregation temporality: 1 delta, 2 cumulative (0 for gauges).
    pub temporality: i64,
    /// The resource's attributes.
    pub resource: BTreeMap<String, Value>,
    /// The point's attributes.
    pub attributes: BTreeMap<String, Value>,
    /// The whole line: `value` of sums and gauges, `count`, `sum`, `bucket_counts`, `explicit_bounds` and
    /// `exemplars` of histograms.
    pub line: Value,
}

impl ReceivedPoint {
    /// A string attribute of the point.
    #[must_use]
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).and_then(Value::as_str)
    }

    /// The value of a sum or gauge point.
    #[must_use]
    pub fn value(&self) -> Option<f64> {
        self.line.get("value").and_then(Value::as_f64)
    }

    /// The count of a histogram point.
    #[must_use]
    pub fn count(&self) -> Option<u64> {
        self.line.get("count").and_then(Value::as_u64)
    }

    fn from_json(line: &str) -> Option<Self> {
        let value: Value = serde_json::from_str(line).ok()?;
        if value.get("signal").and_then(Value::as_str) != Some("metric") {
            return None;
        }
        let (text, map) = (|key: &str| text_field(&value, key), |key: &str| object_field(&value, key));
        Some(ReceivedPoint {
            transport: text("transport")?,
            name: text("name")?,
            unit: text("unit")?,
            kind: text("kind")?,
            temporality: value.get("temporality").and_then(Value::as_i64)?,
            resource: map("resource"),
            attributes: map("attributes"),
            line: value,
        })
    }
}

/// A string field of a line the receiver printed.
fn text_field(line: &Value, key: &str) -> Option<String> {
    line.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// An object field of a line the receiver printed (attributes), empty when absent.
fn object_field(line: &Value, key: &str) -> BTreeMap<String, Value> {
    line.get(key).and_then(Value::as_object).map(|object| object.clone().into_iter().collect()).unwrap_or_default()
}

#[derive(Debug, Default)]
struct Received {
    spans: Vec<ReceivedSpan>,
    points: Vec<ReceivedPoint>,
    ready: bool,
    closed: bool,
}

/// The running receiver; dropping it kills the process.
#[derive(Debug)]
pub struct OtelSink {
    child: Child,
    grpc_port: u16,
    http_port: u16,
    received: Arc<(Mutex<Received>, Condvar)>,
}

impl OtelSink {
    /// Starts the receiver on two free loopback ports, installing `oteltest` with pip first if it is
    /// missing, and returns once both ports accept connections.
    ///
    /// # Panics
    ///
    /// When Python or `oteltest` cannot be found or installed, or the receiver does not start within 30
    /// seconds.
    #[must_use]
    pub fn start() -> OtelSink {
        ensure_installed();
        let (grpc_port, http_port) = free_ports();
        let mut child = Command::new("python3")
            .args(["-c", SINK_SCRIPT, &grpc_port.to_string(), &http_port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs");
        let stdout = child.stdout.take().expect("stdout is piped");
        let received = Arc::new((Mutex::new(Received::default()), Condvar::new()));
        read_in_background(stdout, Arc::clone(&received));
        let sink = OtelSink { child, grpc_port, http_port, received };
        let ready = sink.wait_until(Duration::from_secs(30), |received| received.ready);
        assert!(ready, "otelsink did not start listening within 30 seconds");
        sink
    }

    /// The gRPC endpoint, `http://127.0.0.1:<port>`.
    #[must_use]
    pub fn grpc_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc_port)
    }

    /// The HTTP base endpoint, `http://127.0.0.1:<port>` (spans go to `/v1/traces`).
    #[must_use]
    pub fn http_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// Every span received so far.
    #[must_use]
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.lock().spans.clone()
    }

    /// The spans received once `enough` holds of them, or all received when `within` has passed.
    ///
    /// An exporter's flush returns when the receiver has answered, which it does after handling the
    /// request; the wait covers only the hop from the receiver's output to this process.
    #[must_use]
    pub fn spans_when(&self, within: Duration, enough: impl Fn(&[ReceivedSpan]) -> bool) -> Vec<ReceivedSpan> {
        self.wait_until(within, |received| enough(&received.spans));
        self.spans()
    }

    /// Every metric data point received so far.
    #[must_use]
    pub fn points(&self) -> Vec<ReceivedPoint> {
        self.lock().points.clone()
    }

    /// The metric data points received once `enough` holds of them, or all received when `within` has
    /// passed.
    #[must_use]
    pub fn points_when(&self, within: Duration, enough: impl Fn(&[ReceivedPoint]) -> bool) -> Vec<ReceivedPoint> {
        self.wait_until(within, |received| enough(&received.points));
        self.points()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Received> {
        self.received.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait_until(&self, within: Duration, done: impl Fn(&Received) -> bool) -> bool {
        let deadline = Instant::now() + within;
        let (lock, changed) = &*self.received;
        let mut received = lock.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if done(&received) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || received.closed {
                return false;
            }
            received = changed.wait_timeout(received, left).unwrap_or_else(PoisonError::into_inner).0;
        }
    }
}

impl Drop for OtelSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_in_background(stdout: ChildStdout, received: Arc<(Mutex<Received>, Condvar)>) {
    std::thread::spawn(move || {
        let (lock, changed) = &*received;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let mut state = lock.lock().unwrap_or_else(PoisonError::into_inner);
            if line.trim() == "ready" {
                state.ready = true;
            } else if let Some(point) = ReceivedPoint::from_json(&line) {
                state.points.push(point);
            } else if let Some(span) = ReceivedSpan::from_json(&line) {
                state.spans.push(span);
            }
            changed.notify_all();
        }
        lock.lock().unwrap_or_else(PoisonError::into_inner).closed = true;
        changed.notify_all();
    });
}

fn ensure_installed() {
    let importable = || {
        Command::new("python3")
            .args(["-c", "import oteltest.sink, grpc"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    };
    if importable() {
        return;
    }
    let installed = Command::new("python3")
        .args(["-m", "pip", "install", "--quiet", "oteltest"])
        .status()
        .is_ok_and(|status| status.success());
    assert!(installed && importable(), "`python3 -m pip install --quiet oteltest` failed; the OTLP tests need it");
}

/// Two ports free on loopback now; held together while chosen, so they differ.
fn free_ports() -> (u16, u16) {
    let first = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let second = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let ports = (first.local_addr().expect("bound").port(), second.local_addr().expect("bound").port());
    drop((first, second));
    ports
}
