//! The live page (`GET /hardened` on the admin listener) of a real `agent-server`, run in headless
//! Chromium: the fault injection opens the `faulty` breaker, a model that answers 500 opens the `llm`
//! breaker, and the page, given the admin token in its URL's fragment, shows both open in its DOM after
//! its script ran; a screenshot of it is taken while messages keep arriving.
//!
//! Chromium is found as `$CHROMIUM`, `chromium-headless-shell` or `chromium` (Debian:
//! `apt-get install chromium-headless-shell`). Without one the test says so and passes, unless `CI` is
//! set, where it fails. `LIVE_PAGE_SCREENSHOT=docs/images/live-page.png` (a path from the repository's
//! root) keeps the screenshot, as the one in docs/observability.md was made.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use support::{Launch, PATIENCE, Server, serve_on};

const ADMIN_TOKEN: &str = "page-token-for-the-test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_page_shows_the_llm_breaker_open_in_headless_chromium() {
    let Some(chromium) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs headless Chromium for the live page: apt-get install -y chromium-headless-shell, or set CHROMIUM"
        );
        eprintln!("ignored: no headless Chromium (apt-get install chromium-headless-shell, or set CHROMIUM)");
        return;
    };
    let model = serve_on("127.0.0.1", axum::Router::new().fallback(model_answer)).await;
    let admin_port = free_port();
    let server = Launch::default()
        .env("OPENAI_BASE_URL", &format!("http://{model}/v1"))
        .env("HARDENED_SERVER__ADMIN_ADDRESS", &format!("127.0.0.1:{admin_port}"))
        .env("HARDENED_SERVER__ADMIN_TOKEN", ADMIN_TOKEN)
        // Open until the test ends, so that the page is seen while they are.
        .env("HARDENED_BREAKER__LLM__OPEN_FOR", "10m")
        .env("HARDENED_BREAKER__FAULTY__OPEN_FOR", "10m")
        .start();
    let admin = format!("http://127.0.0.1:{admin_port}");
    eventually("the admin listener answers", async || reqwest::get(format!("{admin}/livez")).await.is_ok()).await;

    // The page is open and strict; what it shows is behind the token.
    let page = reqwest::get(format!("{admin}/hardened")).await.expect("the page");
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let policy = page.headers()["content-security-policy"].to_str().expect("an ASCII policy").to_owned();
    assert!(policy.starts_with("default-src 'none'; script-src 'sha256-"), "{policy}");
    assert_eq!(reqwest::get(format!("{admin}/calls")).await.expect("an answer").status(), 401);
    let public = support::client().get(server.url("/hardened")).bearer_auth("dev-key").send().await;
    let public = public.expect("the public listener answers");
    assert_eq!(public.status(), 404, "the page is on the admin listener only");

    // The fault injection fails every call of the `faulty` tool until its breaker opens.
    let faults = json!({ "failure_percent": 100, "latency_ms": 5 });
    let (status, body) =
        server.call(reqwest::Method::PUT, "/v1/admin/faults", "dev-key", Some(faults)).await.expect("an answer");
    assert_eq!(status, 200, "{body}");
    let session = server.open_session("dev-key").await;
    for _ in 0..5 {
        server.say("dev-key", &session, "hello").await.expect("an answer");
    }
    eventually_sending(&server, &session, "inject a fault", || breaker_state(&admin, "faulty"), "open").await;
    // Then the model fails until the `llm` breaker opens.
    eventually_sending(&server, &session, "fail", || breaker_state(&admin, "llm"), "open").await;

    let calls = admin_json(&admin, "/calls").await;
    let model_calls = calls["sites"]
        .as_array()
        .and_then(|sites| sites.iter().find(|site| site["function"] == "call_model"))
        .expect("the model call's site");
    assert!(model_calls["calls"]["error"].as_u64() > Some(0), "{model_calls}");
    assert!(model_calls["duration"]["count"].as_u64() > Some(0), "{model_calls}");

    // Messages keep arriving while the browser watches, refused by the open breaker.
    let traffic = tokio::spawn({
        let url = server.url(&format!("/v1/sessions/{session}/messages"));
        async move {
            let client = support::client();
            loop {
                let _ = client.post(&url).bearer_auth("dev-key").json(&json!({ "content": "hello" })).send().await;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    });
    let url = format!("{admin}/hardened#token={ADMIN_TOKEN}");
    let browser = chromium.clone();
    let dom = tokio::task::spawn_blocking(move || dump_dom(&browser, &url)).await.expect("Chromium ran");
    let screenshot_dir = tempfile::tempdir().expect("a temporary directory");
    let screenshot = screenshot_dir.path().join("live-page.png");
    let (browser, url, path) = (chromium, format!("{admin}/hardened#token={ADMIN_TOKEN}"), screenshot.clone());
    tokio::task::spawn_blocking(move || take_screenshot(&browser, &url, &path)).await.expect("Chromium ran");
    traffic.abort();

    for breaker in ["llm", "faulty"] {
        let card = start_tag(&dom, &format!("id=\"breaker-{breaker}\""))
            .unwrap_or_else(|| panic!("no card of {breaker}: {dom}"));
        assert!(card.contains("data-state=\"open\""), "the {breaker} breaker shows open: {card}");
    }
    let llm = &dom[dom.find("id=\"breaker-llm\"").expect("the llm card")..];
    assert!(llm.contains("<span class=\"state\">open</span>"), "the llm card says open");
    assert!(dom.contains("id=\"site-"), "the call sites are drawn");
    assert!(dom.contains(">call_model<"), "the model call is listed");
    assert!(!dom.contains("answered 401"), "the page used the token from its fragment");

    let png = std::fs::read(&screenshot).expect("the screenshot was written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000, "a PNG of the page, {} bytes", png.len());
    if let Some(keep) = std::env::var_os("LIVE_PAGE_SCREENSHOT") {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        std::fs::copy(&screenshot, root.join(keep)).expect("the screenshot kept");
    }
}

/// An OpenAI-compatible model: asks for the `faulty` tool when told of a fault, answers 500 when told to
/// fail, and says something otherwise (and after a tool's result).
async fn model_answer(Json(request): Json<Value>) -> Response {
    let last = request["messages"].as_array().and_then(|messages| messages.last()).cloned().unwrap_or_default();
    let content = last["content"].as_str().unwrap_or_default();
    let message = if last["role"] == "user" && content.contains("fault") {
        json!({ "role": "assistant", "content": null, "tool_calls": [
            { "id": "call-1", "type": "function", "function": { "name": "faulty", "arguments": "{}" } }
        ] })
    } else if last["role"] == "user" && content.contains("fail") {
        return (StatusCode::INTERNAL_SERVER_ERROR, "the model is down").into_response();
    } else {
        json!({ "role": "assistant", "content": "All right." })
    };
    Json(json!({ "choices": [{ "message": message }], "usage": { "prompt_tokens": 12, "completion_tokens": 3 } }))
        .into_response()
}

/// Headless Chromium: `$CHROMIUM`, else the first of `chromium-headless-shell` and `chromium` on the path.
fn chromium() -> Option<PathBuf> {
    if let Some(given) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(given));
    }
    let path = std::env::var_os("PATH")?;
    ["chromium-headless-shell", "chromium"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// The flags of every run: headless, as root in a container, in a profile of its own, and given
/// `page_seconds` of the page's virtual time (its script polls every second) before it is read.
fn browser(chromium: &Path, profile: &Path, page_seconds: u32) -> Command {
    let mut command = Command::new(chromium);
    command.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--no-first-run",
    ]);
    command.arg(format!("--virtual-time-budget={}", page_seconds * 1000));
    command.arg(format!("--user-data-dir={}", profile.display()));
    command
}

/// The page's DOM after its script ran.
fn dump_dom(chromium: &Path, url: &str) -> String {
    let profile = tempfile::tempdir().expect("a profile directory");
    let output = browser(chromium, profile.path(), 5).arg("--dump-dom").arg(url).output().expect("Chromium starts");
    assert!(output.status.success(), "Chromium: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("an HTML document")
}

/// A 1400 x 1100 screenshot of the page at `path`.
fn take_screenshot(chromium: &Path, url: &str, path: &Path) {
    let profile = tempfile::tempdir().expect("a profile directory");
    // Long enough for the sparklines to show a few dozen polls.
    let output = browser(chromium, profile.path(), 30)
        .arg(format!("--screenshot={}", path.display()))
        .arg("--window-size=1400,1100")
        .arg(url)
        .output()
        .expect("Chromium starts");
    assert!(output.status.success(), "Chromium: {}", String::from_utf8_lossy(&output.stderr));
}

/// The start tag of the element whose tag holds `attribute`.
fn start_tag<'a>(dom: &'a str, attribute: &str) -> Option<&'a str> {
    let at = dom.find(attribute)?;
    let start = dom[..at].rfind('<')?;
    let end = at + dom[at..].find('>')?;
    Some(&dom[start..=end])
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("an address").port()
}

async fn admin_json(admin: &str, path: &str) -> Value {
    let response =
        support::client().get(format!("{admin}{path}")).bearer_auth(ADMIN_TOKEN).send().await.expect("an answer");
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.expect("a JSON body")
}

async fn breaker_state(admin: &str, name: &str) -> String {
    admin_json(admin, "/guards").await["breaker"][name]["state"].as_str().unwrap_or_default().to_owned()
}

/// Sends `content` until `state` reads `wanted`, at most [`PATIENCE`].
async fn eventually_sending<F: Future<Output = String>>(
    server: &Server,
    session: &str,
    content: &str,
    state: impl Fn() -> F,
    wanted: &str,
) {
    let started = Instant::now();
    loop {
        let seen = state().await;
        if seen == wanted {
            return;
        }
        assert!(started.elapsed() < PATIENCE, "still {seen} after sending {content:?} for {PATIENCE:?}");
        server.say("dev-key", session, content).await.expect("an answer");
    }
}

/// Waits until `done` holds, checking every 20 ms, at most [`PATIENCE`].
async fn eventually(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !done().await {
        assert!(started.elapsed() < PATIENCE, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
