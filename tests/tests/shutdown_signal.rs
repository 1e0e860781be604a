//! The graceful shutdown of a real service, stopped with real signals: `shutdown_server` runs as a child
//! process and the test watches it from outside, as Kubernetes would.

use std::io::{BufRead, BufReader, Lines};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use hardened::audit::{AuditOutcome, JsonlRecord, read_jsonl, verify_jsonl};

/// How long any one wait may take before the test gives up; generous, since it only bounds a failure.
const PATIENCE: Duration = Duration::from_secs(30);

struct Service {
    child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
    address: SocketAddr,
}

impl Service {
    fn start(directory: &Path, settings: &[(&str, &str)]) -> Service {
        let mut child = Command::new(env!("CARGO_BIN_EXE_shutdown_server"))
            .env("AUDIT_PATH", directory.join("audit.jsonl"))
            .env("RELEASE_FILE", directory.join("release"))
            .envs(settings.iter().copied())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the service starts");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
        let line = stdout.next().expect("the service prints its port").expect("stdout is readable");
        let port = line.strip_prefix("listening ").expect("the first line is the port").parse().expect("a port");
        Service { child, stdout, address: SocketAddr::from(([127, 0, 0, 1], port)) }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill").arg(format!("-{signal}")).arg(self.child.id().to_string()).status();
        assert!(status.expect("kill runs").success(), "the signal is delivered");
    }

    fn wait(&mut self) -> (ExitStatus, Duration) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("the child can be waited for") {
                return (status, started.elapsed());
            }
            assert!(started.elapsed() < PATIENCE, "the service exits");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn remaining_output(&mut self) -> Vec<String> {
        self.stdout.by_ref().map(|line| line.expect("stdout is readable")).collect()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        // Only on a failed test is the child still running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `probe` until it returns true, up to [`PATIENCE`].
async fn until(what: &str, mut probe: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !probe().await {
        assert!(started.elapsed() < PATIENCE, "gave up waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn status(client: &reqwest::Client, url: &str) -> Option<u16> {
    client.get(url).send().await.ok().map(|response| response.status().as_u16())
}

async fn work_in_flight(client: &reqwest::Client, service: &Service) -> u64 {
    let Ok(response) = client.get(service.url("/metrics")).send().await else { return 0 };
    let text = response.text().await.unwrap_or_default();
    text.lines()
        .find(|line| line.starts_with(r#"hardened_in_flight{function="work""#))
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_turns_readiness_then_drains_then_runs_every_handler_in_order() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let deadline = Duration::from_secs(20);
    let mut service = Service::start(
        directory.path(),
        &[("PRE_STOP_MS", "1000"), ("DEADLINE_MS", "20000"), ("HANG_TIMEOUT_MS", "300")],
    );
    let client = reqwest::Client::new();
    assert_eq!(status(&client, &service.url("/health/ready")).await, Some(200), "ready before the signal");

    let requests: Vec<_> = (0..3)
        .map(|_| {
            // One client each: each request holds its own connection through the shutdown.
            let (client, url) = (reqwest::Client::new(), service.url("/work"));
            tokio::spawn(async move {
                let response = client.get(url).send().await.expect("a request begun before the signal completes");
                (response.status().as_u16(), response.text().await.expect("the body arrives"))
            })
        })
        .collect();
    until("three calls are in flight", async || work_in_flight(&client, &service).await == 3).await;

    let signalled = Instant::now();
    service.signal("TERM");
    until("readiness reports 503", async || status(&client, &service.url("/health/ready")).await == Some(503)).await;
    assert!(requests.iter().all(|request| !request.is_finished()), "readiness turned while the calls were running");
    let during_pre_stop = client.get(service.url("/health/live")).send().await.expect("still serving");
    assert_eq!(
        during_pre_stop.headers().get("connection").map(reqwest::header::HeaderValue::as_bytes),
        Some(&b"close"[..]),
        "clients are asked to leave before the listener closes"
    );

    until("new connections are refused", async || {
        TcpStream::connect(service.address).is_err_and(|error| error.kind() == std::io::ErrorKind::ConnectionRefused)
    })
    .await;
    assert!(requests.iter().all(|request| !request.is_finished()), "connections closed while the calls were running");

    std::fs::write(directory.path().join("release"), b"").expect("the release file is written");
    for request in requests {
        assert_eq!(request.await.expect("the request task ends"), (200, "done".to_owned()));
    }

    let (exit, _) = service.wait();
    assert!(exit.success(), "the service exits cleanly: {exit}");
    assert!(signalled.elapsed() < deadline, "it exits within its deadline: {:?}", signalled.elapsed());
    let output = service.remaining_output();
    assert_eq!(
        output,
        [
            "handler first done",
            "handler hangs timed-out",
            "handler audit flush done",
            "handler last done",
            "drained true",
            "clean false",
        ],
        "handlers in priority order; the one that hangs is cut and the rest still run",
    );

    let log = directory.path().join("audit.jsonl");
    let events: Vec<_> = read_jsonl(&log)
        .map(|record| match record.expect("the log reads") {
            JsonlRecord::Event(event, _) => event,
            other => panic!("only events in the log: {other:?}"),
        })
        .collect();
    assert_eq!(events.len(), 3, "one audit event per call, every one flushed");
    assert!(
        events.iter().all(|event| event.outcome == AuditOutcome::Success && event.resource.as_deref() == Some("work"))
    );
    let verification = verify_jsonl(&log).expect("the log reads");
    assert_eq!(verification.problem, None, "the chain verifies");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_forces_the_exit() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let mut service = Service::start(directory.path(), &[("PRE_STOP_MS", "60000"), ("DEADLINE_MS", "120000")]);
    let client = reqwest::Client::new();

    service.signal("TERM");
    until("readiness reports 503", async || status(&client, &service.url("/health/ready")).await == Some(503)).await;
    service.signal("INT");
    let (exit, took) = service.wait();
    assert_eq!(exit.code(), Some(hardened::shutdown::FORCED_EXIT_STATUS), "the second signal forces the exit");
    assert!(took < Duration::from_mins(1), "without waiting for the pre-stop delay");
}
