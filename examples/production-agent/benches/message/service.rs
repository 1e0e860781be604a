//! `agent-server` in-process: the router `serve` builds (the API behind its keys, the ops endpoints and
//! `hardened`'s request layers) from the embedded development configuration, its audit trail installed
//! as the process's pipeline (JSONL in a temporary directory, checkpoints signed with a development key),
//! and the sessions and messages of `scripts/load.sh`.

use std::net::SocketAddr;

use agent_server::Settings;
use agent_server::serve::{self, Application};
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use tower::ServiceExt as _;

/// The messages of `scripts/lib.sh`'s `MESSAGE_MIX`: the calculator, the clock, the memory set and get,
/// and no tool.
pub(crate) const MESSAGE_MIX: [&str; 5] =
    ["what is 2 + 3 * 4?", "what time is it", "remember colour is blue", "recall colour", "hello there"];

/// Sessions, as `load.sh` opens them by default: session `i` is sent message `i % 5` of the mix.
const SESSIONS: usize = 10;

/// The development key of the embedded `agent.toml`, which `load.sh` sends.
const API_KEY: &str = "Bearer dev-key";

/// The client's address, as the server's connections hand it to the router.
const PEER: ([u8; 4], u16) = ([127, 0, 0, 1], 40_000);

/// The service, its sessions and its audit directory.
#[derive(Debug)]
pub(crate) struct Agent {
    pub(crate) settings: Settings,
    router: Router,
    sessions: Vec<String>,
    /// Where the audit trail and the development signing key are: kept for the service's life, removed
    /// when the benchmark ends.
    _directory: tempfile::TempDir,
}

impl Agent {
    /// Sets the environment the scripts run the server with: the model's rate limit raised out of the
    /// way (`load.sh --llm-rate`, so that the server is measured rather than its configuration), and the
    /// audit trail in a temporary directory. Call before any other thread exists.
    pub(crate) fn prepare_environment() -> tempfile::TempDir {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let audit = directory.path().join("audit").join("audit.jsonl");
        // SAFETY: called first thing in `main`, while the process has one thread.
        #[allow(unsafe_code, reason = "the environment is set before any other thread reads it")]
        unsafe {
            std::env::set_var("HARDENED_RATE__LLM__PER_SECOND", "1000000");
            std::env::set_var("HARDENED_RATE__LLM__BURST", "1000000");
            std::env::set_var("AGENT_AUDIT_PATH", audit);
        }
        directory
    }

    /// The service as `serve` builds it, its audit pipeline installed; the sessions are opened by
    /// [`Agent::open_sessions`], inside the subscriber the benchmark runs with.
    pub(crate) fn start(directory: tempfile::TempDir) -> Agent {
        let settings = Settings::load(None).expect("the embedded configuration is valid");
        hardened::audit::set_service_name("agent-server");
        serve::start_audit(&settings, None, "bench").expect("the audit trail starts");
        let application = Application::new(&settings).expect("the application starts");
        let router =
            serve::with_request_layers(application.api_router().merge(hardened::http::ops_router()), &settings);
        Agent { settings, router, sessions: Vec::new(), _directory: directory }
    }

    /// Opens the sessions, each with `remember colour is blue` sent once, as `load.sh` does.
    pub(crate) async fn open_sessions(&mut self) {
        for _ in 0..SESSIONS {
            let response = self.router.clone().oneshot(request(Method::POST, "/v1/sessions", Body::empty())).await;
            let response = response.unwrap_or_else(|never| match never {});
            assert_eq!(response.status(), StatusCode::CREATED, "a session opens");
            let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("a body");
            let opened: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
            let id = opened["id"].as_str().expect("an id").to_owned();
            self.sessions.push(id);
            let index = self.sessions.len() - 1;
            let remember = self.message_to(index, MESSAGE_MIX[2]);
            assert_eq!(self.send(remember).await, StatusCode::OK);
        }
    }

    /// Message `n` of the load: the `n % 10`-th session's message of the mix.
    pub(crate) fn message(&self, n: usize) -> Request<Body> {
        let session = n % self.sessions.len();
        self.message_to(session, MESSAGE_MIX[session % MESSAGE_MIX.len()])
    }

    fn message_to(&self, session: usize, content: &str) -> Request<Body> {
        let body = serde_json::json!({ "content": content }).to_string();
        request(Method::POST, &format!("/v1/sessions/{}/messages", self.sessions[session]), Body::from(body))
    }

    /// Sends `request` through the router and reads the answer's body, as a client would; its status.
    pub(crate) async fn send(&self, request: Request<Body>) -> StatusCode {
        let response = self.router.clone().oneshot(request).await.unwrap_or_else(|never| match never {});
        let status = response.status();
        axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("the answer's body");
        status
    }

    /// Sends `requests` one after the other; panics at an answer other than 200.
    pub(crate) async fn send_all(&self, requests: Vec<Request<Body>>) {
        for request in requests {
            let status = self.send(request).await;
            assert_eq!(status, StatusCode::OK, "a message is answered");
        }
    }
}

/// A request as the server's connections hand it to the router: with the client's address and the key.
fn request(method: Method, path: &str, body: Body) -> Request<Body> {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, API_KEY)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .expect("a valid request");
    request.extensions_mut().insert(ConnectInfo(SocketAddr::from(PEER)));
    request
}
