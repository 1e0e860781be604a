//! The operations endpoints of a real `agent-server` on its admin listener: `/guards` and `/config`
//! there and never on the public listener, and `SIGHUP` reading `hardened.toml` again: a new rate limit
//! is in force, audited; a bad file is refused, logged and audited, and the old limits stay.

mod support;

use std::time::Instant;

use serde_json::Value;
use support::{DEVELOPMENT_HARDENED, Launch, PATIENCE};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("an address").port()
}

async fn get_json(url: &str) -> Value {
    let response = reqwest::get(url).await.expect("an answer");
    assert_eq!(response.status(), 200, "{url}");
    response.json().await.expect("a JSON body")
}

/// The `llm` rate limiter's calls per period, as `/guards` shows it.
async fn llm_rate(admin: &str) -> Value {
    get_json(&format!("{admin}/guards")).await["rate"]["llm"]["calls"].clone()
}

/// Waits until `done` holds, checking every 20 ms, at most [`PATIENCE`].
async fn eventually(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !done().await {
        assert!(started.elapsed() < PATIENCE, "{what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_hardened_toml_and_a_bad_file_leaves_the_old_limits() {
    let admin_port = free_port();
    let mut server = Launch::default()
        .hardened_toml(DEVELOPMENT_HARDENED)
        .env("HARDENED_SERVER__ADMIN_ADDRESS", &format!("127.0.0.1:{admin_port}"))
        .env("HARDENED_BREAKER__LLM__OPEN_FOR", "20s")
        .start();
    let admin = format!("http://127.0.0.1:{admin_port}");
    let file = server.config_dir().join("hardened.toml");
    eventually("the admin listener answers", async || reqwest::get(format!("{admin}/livez")).await.is_ok()).await;

    // The operations endpoints are on the admin listener only: not there for the public listener's
    // admin key either.
    for path in ["/guards", "/config", "/loggers"] {
        let public = reqwest::Client::new().get(server.url(path)).bearer_auth("dev-key").send().await;
        assert_eq!(public.expect("the public listener answers").status(), 404, "{path} is not on the public listener");
    }
    assert_eq!(llm_rate(&admin).await, 5000);
    let config = get_json(&format!("{admin}/config")).await;
    let origin = file.display().to_string();
    assert_eq!(config["file"], origin.as_str());
    let settings = &config["settings"];
    assert_eq!(settings["rate.llm.per_second"]["source"], "file");
    assert_eq!(settings["rate.llm.per_second"]["file"], origin.as_str());
    assert_eq!(settings["breaker.llm.open_for"]["value"], "20s");
    assert_eq!(settings["breaker.llm.open_for"]["source"], "env");
    assert_eq!(settings["breaker.llm.open_for"]["variable"], "HARDENED_BREAKER__LLM__OPEN_FOR");

    std::fs::write(&file, DEVELOPMENT_HARDENED.replace("per_second = 5000", "per_second = 4000"))
        .expect("hardened.toml rewritten");
    server.signal("HUP");
    eventually("the new rate is in force", async || llm_rate(&admin).await == 4000).await;
    let config = get_json(&format!("{admin}/config")).await;
    assert_eq!(config["settings"]["breaker.llm.open_for"]["value"], "20s", "the environment still applies");

    std::fs::write(&file, DEVELOPMENT_HARDENED.replace("per_second = 5000", "per_second = \"fast\""))
        .expect("hardened.toml broken");
    server.signal("HUP");
    eventually("the refusal is logged", async || server.log().contains("configuration not reloaded")).await;
    assert!(server.log().contains("rate.llm.per_second"), "the log names the key: {}", server.log());
    assert!(server.is_running(), "a bad file never stops the process");
    assert_eq!(llm_rate(&admin).await, 4000, "the old limits stay");

    server.stop();
    let events = server.audit_events();
    let changes: Vec<&Value> = events.iter().filter(|event| event["event_type"] == "ConfigurationChange").collect();
    assert_eq!(changes.len(), 2, "{changes:#?}");
    assert_eq!(changes[0]["outcome"], "Success");
    assert_eq!(changes[0]["details"]["trigger"], "SIGHUP");
    let first = &changes[0]["details"]["changes"][0];
    assert_eq!(
        (first["key"].as_str(), first["from"].as_i64(), first["to"].as_i64()),
        (Some("rate.llm.per_second"), Some(5000), Some(4000))
    );
    assert_eq!(changes[1]["outcome"], "Failure");
    assert!(
        changes[1]["outcome_details"].as_str().is_some_and(|details| details.contains("rate.llm.per_second")),
        "{}",
        changes[1]
    );
}
