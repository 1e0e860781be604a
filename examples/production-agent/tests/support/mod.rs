//! `agent-server` as a real process on a loopback port, with the configuration a test chooses, and the
//! calls a test makes to it.

#![allow(dead_code, reason = "each test file uses the part of the harness it needs")]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const PATIENCE: Duration = Duration::from_secs(30);

/// The development `hardened.toml`, for configuration directories that change only `agent.toml`.
pub(crate) const DEVELOPMENT_HARDENED: &str = include_str!("../../config/development/hardened.toml");

/// A running `agent-server`, killed when dropped.
pub(crate) struct Server {
    child: Child,
    pub(crate) base: String,
    pub(crate) directory: tempfile::TempDir,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// The server with its embedded development configuration.
    pub(crate) fn start() -> Server {
        Server::launch(None, &[])
    }

    /// The server with `agent_toml` as its `agent.toml` (and the development `hardened.toml`), and `env`
    /// set.
    pub(crate) fn with_agent_toml(agent_toml: &str, env: &[(&str, &str)]) -> Server {
        Server::launch(Some(agent_toml), env)
    }

    /// The server with the embedded configuration and `env` set.
    pub(crate) fn with_env(env: &[(&str, &str)]) -> Server {
        Server::launch(None, env)
    }

    fn launch(agent_toml: Option<&str>, env: &[(&str, &str)]) -> Server {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("an address").port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_agent-server"));
        command
            .current_dir(directory.path())
            .env("HARDENED_SERVER__ADDRESS", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "info")
            .env_remove("DATABASE_URL")
            .env_remove("ANTHROPIC_API_KEY")
            .env_remove("OPENAI_BASE_URL")
            .env_remove("OPENAI_API_KEY")
            .env_remove("AGENT_CONFIG_DIR")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(agent_toml) = agent_toml {
            let config = directory.path().join("config");
            std::fs::create_dir_all(&config).expect("a configuration directory");
            std::fs::write(config.join("hardened.toml"), DEVELOPMENT_HARDENED).expect("hardened.toml is written");
            std::fs::write(config.join("agent.toml"), agent_toml).expect("agent.toml is written");
            command.arg("--config").arg(&config);
        }
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("agent-server starts");
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
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = child.try_wait().expect("the child can be waited for") {
                panic!("the server exited at start with {status}: {}", log.lock().expect("the log").as_str());
            }
            assert!(started.elapsed() < PATIENCE, "the server listens");
            std::thread::sleep(Duration::from_millis(20));
        }
        Server { child, base, directory, log }
    }

    /// Stops the server with SIGTERM and waits for it, so that its audit trail is flushed.
    pub(crate) fn stop(&mut self) -> std::process::ExitStatus {
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

    /// The audit trail the server wrote, as text.
    pub(crate) fn audit_text(&self) -> String {
        std::fs::read_to_string(self.directory.path().join("data/audit/audit.jsonl")).unwrap_or_default()
    }

    /// Whether the process is still running.
    pub(crate) fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("the child can be waited for").is_none()
    }

    /// What the server wrote to standard output and standard error so far.
    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Opens a session with `key`.
    pub(crate) async fn open_session(&self, key: &str) -> String {
        let (status, body) = self.call(reqwest::Method::POST, "/v1/sessions", key, None).await.expect("an answer");
        assert_eq!(status, 201, "{body}");
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
        let mut request = reqwest::Client::new().request(method, format!("{}{path}", self.base)).bearer_auth(key);
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

/// Serves `router` on a free loopback port of `ip` until the test ends, and returns its address.
pub(crate) async fn serve_on(ip: &str, router: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.expect("a free loopback port");
    let address = listener.local_addr().expect("an address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    address
}

/// An `agent.toml` with the development keys, the audit file in the working directory, and `sections`.
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

{sections}
"#
    )
}
