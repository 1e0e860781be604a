//! `agent-server` as a real process on a loopback port: authentication, conversations with tools, per-key
//! tool restrictions, the breaker of the fault tool, the audit trail those leave, and a clean SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const PATIENCE: Duration = Duration::from_secs(30);

struct Server {
    child: Child,
    base: String,
    directory: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("an address").port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_agent-server"))
            .current_dir(directory.path())
            .env("HARDENED_SERVER__ADDRESS", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "info")
            .env_remove("DATABASE_URL")
            .env_remove("ANTHROPIC_API_KEY")
            .env_remove("OPENAI_BASE_URL")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("agent-server starts");
        // Its log goes to standard output; read it on a thread so the pipe never fills.
        let stdout = child.stdout.take().expect("stdout is piped");
        std::thread::spawn(move || for _ in BufReader::new(stdout).lines() {});
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < PATIENCE, "the server listens");
            std::thread::sleep(Duration::from_millis(20));
        }
        Server { child, base, directory }
    }

    fn audit_path(&self) -> PathBuf {
        self.directory.path().join("data/audit/audit.jsonl")
    }

    fn stop(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        assert!(status.expect("kill runs").success());
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("the child can be waited for") {
                return status;
            }
            assert!(started.elapsed() < PATIENCE, "the server exits after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn call(method: reqwest::Method, url: String, key: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let mut request = reqwest::Client::new().request(method, url);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

async fn open_session(server: &Server, key: &str) -> String {
    let (status, body) = call(reqwest::Method::POST, format!("{}/v1/sessions", server.base), Some(key), None).await;
    assert_eq!(status, 201);
    body["id"].as_str().expect("a session id").to_owned()
}

async fn say(server: &Server, key: &str, session: &str, content: &str) -> (u16, Value) {
    let url = format!("{}/v1/sessions/{session}/messages", server.base);
    call(reqwest::Method::POST, url, Some(key), Some(json!({ "content": content }))).await
}

fn audit_events(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .expect("the audit log is readable")
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON record"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_is_authenticated_restricted_guarded_and_audited() {
    let mut server = Server::start();

    let (status, _) = call(reqwest::Method::POST, format!("{}/v1/sessions", server.base), Some("wrong"), None).await;
    assert_eq!(status, 401, "an unknown key is refused");

    let session = open_session(&server, "dev-key").await;
    let (status, reply) = say(&server, "dev-key", &session, "what is 2 + 3 * 4?").await;
    assert_eq!(status, 200);
    assert_eq!(reply["answer"], "calculator: 14");
    assert_eq!(reply["tools"][0], json!({ "tool": "calculator", "ok": true, "output": "14" }));
    let (status, _) = say(&server, "reader-key", &session, "hello").await;
    assert_eq!(status, 404, "another key cannot use the session");

    let reader = open_session(&server, "reader-key").await;
    let (_, allowed) = say(&server, "reader-key", &reader, "what time is it").await;
    assert_eq!(allowed["tools"][0]["ok"], true, "the reader key may use the clock");
    let (_, denied) = say(&server, "reader-key", &reader, "remember colour is blue").await;
    assert_eq!(denied["tools"][0]["ok"], false, "but not the memory");
    assert_eq!(denied["tools"][0]["output"], "the tool `memory` is not available to this key");

    let faults = format!("{}/v1/admin/faults", server.base);
    let (status, _) = call(
        reqwest::Method::PUT,
        faults.clone(),
        Some("reader-key"),
        Some(json!({ "failure_percent": 100, "latency_ms": 0 })),
    )
    .await;
    assert_eq!(status, 403, "only an admin key sets faults");
    let (status, _) =
        call(reqwest::Method::PUT, faults, Some("dev-key"), Some(json!({ "failure_percent": 100, "latency_ms": 0 })))
            .await;
    assert_eq!(status, 200);
    let mut refused = false;
    for _ in 0..30 {
        let (_, reply) = say(&server, "dev-key", &session, "inject a fault").await;
        if reply["tools"][0]["output"]
            .as_str()
            .is_some_and(|output| output.contains("circuit breaker `faulty` is open"))
        {
            refused = true;
            break;
        }
    }
    assert!(refused, "the breaker opens and refuses calls");
    let (status, health) = call(reqwest::Method::GET, format!("{}/health", server.base), None, None).await;
    assert_eq!(health["checks"]["breakers"]["status"], "degraded", "{health}");
    assert!(status == 200 || status == 503);
    let (status, _) = call(reqwest::Method::GET, format!("{}/health/ready", server.base), None, None).await;
    assert_eq!(status, 200, "an open breaker degrades the service without taking it out of rotation");

    let exit = server.stop();
    assert!(exit.success(), "a clean exit after SIGTERM: {exit}");

    let events = audit_events(&server.audit_path());
    let count = |event_type: &str, outcome: &str| {
        events.iter().filter(|event| event["event_type"] == event_type && event["outcome"] == outcome).count()
    };
    assert_eq!(count("AuthenticationAttempt", "Failure"), 1, "the wrong key");
    assert!(count("AuthorizationCheck", "Denied") >= 1, "the memory tool refused to the reader key");
    let message = events.iter().find(|event| event["event_type"] == "UserMessage").expect("a user message event");
    assert_eq!(message["user_id"], "developer");
    assert_eq!(message["session_id"], session.as_str());
    assert_ne!(message["details"]["content"], "what is 2 + 3 * 4?", "a message is recorded as a keyed hash");
    let tool = events
        .iter()
        .find(|event| event["event_type"] == "ToolExecution" && event["resource"] == "calculator")
        .expect("the calculator's event");
    assert_eq!((&tool["user_id"], &tool["outcome"]), (&json!("developer"), &json!("Success")));
    assert!(count("ToolExecution", "Denied") >= 1, "calls the breaker refused are audited as denied");

    let verify = Command::new(env!("CARGO_BIN_EXE_agent-server"))
        .args(["audit", "verify"])
        .current_dir(server.directory.path())
        // The file the server wrote, as the server saw no database either.
        .env_remove("DATABASE_URL")
        .output()
        .expect("audit verify runs");
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));
    assert!(String::from_utf8_lossy(&verify.stdout).contains("every chain verifies"));
}

#[test]
fn config_check_prints_the_settings_in_force_and_rejects_invalid_ones() {
    let output = Command::new(env!("CARGO_BIN_EXE_agent-server"))
        .args(["config", "check"])
        .env("HARDENED_SHUTDOWN__DEADLINE", "12s")
        .output()
        .expect("config check runs");
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("[breaker.llm]") && text.contains("deadline = \"12s\""), "{text}");
    assert!(text.contains("key = \"[redacted]\"") && !text.contains("dev-key"), "keys are never printed");

    let invalid = Command::new(env!("CARGO_BIN_EXE_agent-server"))
        .args(["config", "check"])
        .env("HARDENED_BREAKER__LLM__FAILURE_RATE", "101")
        .output()
        .expect("config check runs");
    assert_eq!(invalid.status.code(), Some(2));
    let error = String::from_utf8_lossy(&invalid.stderr);
    assert!(
        error.contains("HARDENED_BREAKER__LLM__FAILURE_RATE=101 (breaker.llm.failure_rate) is out of range"),
        "{error}"
    );
}
