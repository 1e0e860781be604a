//! `GET /config` and `POST /config/reload` over a real loopback server: every value with its source
//! (default, literal, file), secrets masked; a reload reads the same file again, retunes the running
//! guards, reports and audits what changed; a bad file is refused with the old configuration in force.

use std::net::SocketAddr;
use std::sync::OnceLock;

use hardened::admin::{AdminAccess, admin_router};
use hardened::audit::{Auditor, EventType, MemorySink};
use hardened::{Rejected, hardened};
use serde_json::{Value, json};

#[hardened(kind = "tool", breaker = "cfg_llm", rate = 7, burst = 3)]
fn cfg_tool() -> Result<(), Rejected> {
    Ok(())
}

fn sink() -> &'static MemorySink {
    static SINK: OnceLock<MemorySink> = OnceLock::new();
    SINK.get_or_init(|| {
        let sink = MemorySink::new();
        let spill = std::env::temp_dir().join(format!("hardened-ops-config-{}", std::process::id()));
        let auditor = Auditor::builder().sink(sink.clone()).spill_dir(spill).start().expect("the pipeline starts");
        hardened::audit::install(auditor).expect("the first pipeline installed");
        sink
    })
}

/// The configuration changes audited so far, as JSON.
async fn configuration_changes() -> Vec<Value> {
    hardened::audit::flush().await.expect("every event is written");
    sink()
        .events()
        .into_iter()
        .map(|sealed| sealed.event().clone())
        .filter(|event| event.event_type == EventType::ConfigurationChange)
        .map(|event| serde_json::to_value(&event).expect("an event serializes"))
        .collect()
}

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let base = format!("http://{}", listener.local_addr().expect("a bound address"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}

const FIRST: &str = r#"
[breaker.cfg_llm]
failure_rate = 40

[rate.default]
max_keys = 500

[telemetry]
endpoint = "http://collector:s3cret@otel.internal:4317"

[server]
admin_token = "do-not-show-me"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_shows_each_value_with_its_source_and_a_reload_applies_or_refuses_a_file() {
    sink();
    let directory = tempfile::tempdir().expect("a temporary directory");
    let file = directory.path().join("hardened.toml");
    std::fs::write(&file, FIRST).expect("written");
    hardened::config::load_file(&file).expect("a valid file");
    cfg_tool().expect("admitted");
    let base = serve(admin_router(AdminAccess::new(), SocketAddr::from(([127, 0, 0, 1], 0)))).await;
    let origin = file.display().to_string();

    let config: Value = reqwest::get(format!("{base}/config")).await.expect("answers").json().await.expect("JSON");
    assert_eq!(config["file"], origin.as_str());
    let settings = &config["settings"];
    assert_eq!(settings["breaker.cfg_llm.failure_rate"], json!({ "value": 40, "source": "file", "file": origin }));
    assert_eq!(settings["breaker.cfg_llm.window"], json!({ "value": 100, "source": "default" }));
    let limiter = format!("rate.\"{}::cfg_tool\"", module_path!());
    assert_eq!(settings[format!("{limiter}.per_second").as_str()], json!({ "value": 7, "source": "literal" }));
    assert_eq!(settings[format!("{limiter}.burst").as_str()], json!({ "value": 3, "source": "literal" }));
    assert_eq!(
        settings[format!("{limiter}.max_keys").as_str()],
        json!({ "value": 500, "source": "file", "file": origin }),
        "from the file's [rate.default]"
    );
    assert_eq!(settings["server.admin_token"]["value"], "***");
    assert_eq!(settings["telemetry.endpoint"]["value"], "http://***@otel.internal:4317");
    let text = config.to_string();
    assert!(!text.contains("do-not-show-me") && !text.contains("s3cret"), "no secret in {text}");

    // A new limit, read again from the same file.
    std::fs::write(&file, FIRST.replace("failure_rate = 40", "failure_rate = 60")).expect("rewritten");
    let response = reqwest::Client::new().post(format!("{base}/config/reload")).send().await.expect("answers");
    assert_eq!(response.status(), 200);
    let reloaded: Value = response.json().await.expect("JSON");
    assert_eq!(reloaded["file"], origin.as_str());
    assert_eq!(reloaded["changes"], json!([{ "key": "breaker.cfg_llm.failure_rate", "from": 40, "to": 60 }]));
    assert_eq!(hardened::breaker("cfg_llm").config().failure_rate, 60, "the running breaker is retuned");

    // A bad file is refused, and the old configuration stays.
    std::fs::write(&file, "[breaker.cfg_llm]\nfailure_rate = 101\n").expect("rewritten");
    let response = reqwest::Client::new().post(format!("{base}/config/reload")).send().await.expect("answers");
    assert_eq!(response.status(), 422);
    let refused: Value = response.json().await.expect("JSON");
    let error = refused["error"].as_str().expect("the error");
    assert!(error.contains("breaker.cfg_llm.failure_rate = 101") && error.contains(&origin), "{error}");
    assert_eq!(hardened::breaker("cfg_llm").config().failure_rate, 60);
    let config: Value = reqwest::get(format!("{base}/config")).await.expect("answers").json().await.expect("JSON");
    assert_eq!(config["settings"]["breaker.cfg_llm.failure_rate"]["value"], 60);

    let audited = configuration_changes().await;
    assert_eq!(audited.len(), 2, "{audited:#?}");
    assert_eq!(audited[0]["outcome"], "Success");
    assert_eq!(audited[0]["resource"], "configuration");
    assert_eq!(audited[0]["details"]["trigger"], "POST /config/reload");
    assert_eq!(audited[0]["details"]["changes"][0]["key"], "breaker.cfg_llm.failure_rate");
    assert_eq!(audited[1]["outcome"], "Failure");
    assert!(audited[1]["outcome_details"].as_str().is_some_and(|details| details.contains("failure_rate = 101")));
}
