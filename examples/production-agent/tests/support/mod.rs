//! `agent-server` as a real process on a loopback port, for the security tests: started with the
//! variables and configuration a test asks for, called over HTTP, its log and audit file read back.

#![allow(dead_code, reason = "each test file uses its own part of the harness")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub(crate) const PATIENCE: Duration = Duration::from_secs(30);

/// The development `hardened.toml`, for a configuration directory that changes only `agent.toml`.
pub(crate) const DEVELOPMENT_HARDENED: &str = include_str!("../../config/development/hardened.toml");

/// The development `agent.toml`, for a configuration directory that changes only `hardened.toml`.
pub(crate) const DEVELOPMENT_AGENT: &str = include_str!("../../config/development/agent.toml");

/// A running `agent-server`, killed when dropped.
pub(crate) struct Server {
    child: Child,
    pub(crate) base: String,
    pub(crate) directory: tempfile::TempDir,
    log: Arc<Mutex<String>>,
}

/// How a server is started: its environment, and `agent.toml` when not the embedded one.
#[derive(Default)]
pub(crate) struct Launch {
    env: Vec<(String, String)>,
    agent_toml: Option<String>,
    hardened_toml: Option<String>,
}

impl Launch {
    pub(crate) fn env(mut self, variable: &str, value: &str) -> Launch {
        self.env.push((variable.to_owned(), value.to_owned()));
        self
    }

    /// Runs with a configuration directory holding the development `hardened.toml` and this `agent.toml`.
    pub(crate) fn agent_toml(mut self, text: &str) -> Launch {
        self.agent_toml = Some(text.to_owned());
        self
    }

    /// Runs with a configuration directory holding this `hardened.toml` (and the development `agent.toml`
    /// unless [`agent_toml`](Self::agent_toml) says otherwise).
    pub(crate) fn hardened_toml(mut self, text: &str) -> Launch {
        self.hardened_toml = Some(text.to_owned());
        self
    }

    /// The command in `directory`, with the variables of a test run.
    fn command(&self, directory: &Path) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_agent-server"));
        command
            .current_dir(directory)
            .env("RUST_LOG", "info")
            .env_remove("DATABASE_URL")
            .env_remove("ANTHROPIC_API_KEY")
            .env_remove("OPENAI_BASE_URL")
            .env_remove("OPENAI_API_KEY")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("AGENT_API_KEYS")
            .env_remove("AGENT_ENV")
            .env_remove("AGENT_CONFIG_DIR");
        if self.agent_toml.is_some() || self.hardened_toml.is_some() {
            let config = directory.join("config");
            let hardened_toml = self.hardened_toml.as_deref().unwrap_or(DEVELOPMENT_HARDENED);
            let agent_toml = self.agent_toml.as_deref().unwrap_or(DEVELOPMENT_AGENT);
            std::fs::create_dir_all(&config).expect("a configuration directory");
            std::fs::write(config.join("hardened.toml"), hardened_toml).expect("hardened.toml written");
            std::fs::write(config.join("agent.toml"), agent_toml).expect("agent.toml written");
            command.arg("--config").arg(&config);
        }
        for (variable, value) in &self.env {
            command.env(variable, value);
        }
        command
    }

    /// Runs `agent-server ARGS` to the end, such as `config check`.
    pub(crate) fn run(&self, args: &[&str]) -> Output {
        let directory = tempfile::tempdir().expect("a temporary directory");
        self.command(directory.path()).args(args).output().expect("agent-server runs")
    }

    /// Spawns the server in a new directory on a free loopback port, its standard error piped and its
    /// standard output as `stdout` says.
    fn spawn(&self, stdout: Stdio) -> (Child, u16, tempfile::TempDir) {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("an address").port();
        let child = self
            .command(directory.path())
            .env("HARDENED_SERVER__ADDRESS", format!("127.0.0.1:{port}"))
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .expect("agent-server starts");
        (child, port, directory)
    }

    /// Starts the server on a free loopback port and waits until it listens.
    pub(crate) fn start(self) -> Server {
        let (mut child, port, directory) = self.spawn(Stdio::piped());
        // Its log goes to standard output and standard error; read both on threads so no pipe fills.
        let log = Arc::new(Mutex::new(String::new()));
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        for stream in [Box::new(stdout) as Box<dyn std::io::Read + Send>, Box::new(stderr)] {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = child.try_wait().expect("the child can be waited for") {
                let log = log.lock().unwrap_or_else(PoisonError::into_inner);
                panic!("the server exited at start with {status}: {log}");
            }
            assert!(started.elapsed() < PATIENCE, "the server listens");
            std::thread::sleep(Duration::from_millis(20));
        }
        Server { child, base: format!("http://127.0.0.1:{port}"), directory, log }
    }

    /// Starts the server and waits up to `patience` for it to exit: its exit status and standard error,
    /// or `None` if it was still running (it is then killed).
    pub(crate) fn start_expecting_exit(self, patience: Duration) -> Option<(std::process::ExitStatus, String)> {
        let (mut child, _, _directory) = self.spawn(Stdio::null());
        let started = Instant::now();
        while started.elapsed() < patience {
            if let Some(status) = child.try_wait().expect("the child can be waited for") {
                let mut stderr = String::new();
                std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr is piped"), &mut stderr)
                    .expect("stderr is readable");
                return Some((status, stderr));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }
}

impl Server {
    /// The server with the embedded development configuration.
    pub(crate) fn start() -> Server {
        Launch::default().start()
    }

    /// The server with `agent_toml` as its `agent.toml` (and the development `hardened.toml`), and `env`
    /// set.
    pub(crate) fn with_agent_toml(agent_toml: &str, env: &[(&str, &str)]) -> Server {
        env.iter()
            .fold(Launch::default().agent_toml(agent_toml), |launch, (name, value)| launch.env(name, value))
            .start()
    }

    /// The server with the embedded configuration and `env` set.
    pub(crate) fn with_env(env: &[(&str, &str)]) -> Server {
        env.iter().fold(Launch::default(), |launch, (name, value)| launch.env(name, value)).start()
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) fn audit_path(&self) -> PathBuf {
        self.directory.path().join("data/audit/audit.jsonl")
    }

    /// Stops the server with SIGTERM and waits for it to exit, so that every audit event is written;
    /// a clean exit is asserted.
    pub(crate) fn stop(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        assert!(status.expect("kill runs").success());
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("the child can be waited for") {
                assert!(status.success(), "a clean exit after SIGTERM: {status}");
                return status;
            }
            assert!(started.elapsed() < PATIENCE, "the server exits after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends the process `signal` (`HUP`, `TERM`, ...) with `kill`.
    pub(crate) fn signal(&self, signal: &str) {
        let status = Command::new("kill").arg(format!("-{signal}")).arg(self.child.id().to_string()).status();
        assert!(status.expect("kill runs").success(), "SIG{signal} sent");
    }

    /// The configuration directory of a server started with one (`config` in its working directory).
    pub(crate) fn config_dir(&self) -> PathBuf {
        self.directory.path().join("config")
    }

    /// Whether the process is still running.
    pub(crate) fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("the child can be waited for").is_none()
    }

    /// What the server wrote to standard output and standard error so far.
    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The audit trail the server wrote, as text.
    pub(crate) fn audit_text(&self) -> String {
        std::fs::read_to_string(self.audit_path()).unwrap_or_default()
    }

    /// Every record of the audit file.
    pub(crate) fn audit_events(&self) -> Vec<Value> {
        std::fs::read_to_string(self.audit_path())
            .expect("the audit log is readable")
            .lines()
            .map(|line| serde_json::from_str(line).expect("a JSON record"))
            .collect()
    }

    /// The size of the audit file in bytes (0 before the first event).
    pub(crate) fn audit_bytes(&self) -> u64 {
        std::fs::metadata(self.audit_path()).map_or(0, |metadata| metadata.len())
    }

    /// Opens a session with `key`; panics unless it is created.
    pub(crate) async fn open_session(&self, key: &str) -> String {
        let (status, body) = self.call(reqwest::Method::POST, "/v1/sessions", key, None).await.expect("an answer");
        assert_eq!(status, 201, "a session is opened: {body}");
        body["id"].as_str().expect("a session id").to_owned()
    }

    /// Sends `content` to `session`; `None` when the server did not answer.
    pub(crate) async fn say(&self, key: &str, session: &str, content: &str) -> Option<(u16, Value)> {
        let path = format!("/v1/sessions/{session}/messages");
        self.call(reqwest::Method::POST, &path, key, Some(json!({ "content": content }))).await
    }

    /// One request with `key`; `None` when the server did not answer.
    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> Option<(u16, Value)> {
        let mut request = client().request(method, self.url(path)).bearer_auth(key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.timeout(PATIENCE).send().await.ok()?;
        let status = response.status().as_u16();
        Some((status, response.json().await.unwrap_or(Value::Null)))
    }

    /// The first tool outcome of a reply, asserting the reply is a 200.
    pub(crate) async fn tool_outcome(&self, key: &str, session: &str, content: &str) -> Value {
        let (status, reply) = self.say(key, session, content).await.expect("the server answers");
        assert_eq!(status, 200, "{reply}");
        reply["tools"][0].clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client that keeps its connection, so that a flood is not a flood of connections.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// The events of `event_type` with `outcome`.
pub(crate) fn events_of<'a>(events: &'a [Value], event_type: &str, outcome: &str) -> Vec<&'a Value> {
    events.iter().filter(|event| event["event_type"] == event_type && event["outcome"] == outcome).collect()
}

/// Serves `router` on a free loopback port of `ip` until the test ends, and returns its address.
pub(crate) async fn serve_on(ip: &str, router: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.expect("a free loopback port");
    let address = listener.local_addr().expect("an address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    address
}

/// An `agent.toml` with the development keys, the audit file in the working directory signed with a
/// development key, and `sections`.
pub(crate) fn agent_toml(sections: &str) -> String {
    format!(
        r#"
[[keys]]
name = "developer"
key = "dev-key"
tools = ["*"]
admin = true

[[keys]]
name = "reader"
key = "reader-key"
tools = ["calculator", "clock"]

[audit]
path = "data/audit/audit.jsonl"
signing = "development"

{sections}
"#
    )
}
