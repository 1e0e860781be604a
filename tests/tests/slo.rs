//! Service level objectives: the functions that name one count towards it (`hardened_slo_info`), the
//! configuration's `[slo.<name>]` layers over their literals and is refused when it cannot be judged, and
//! the generated rules pass `promtool check rules` and their generated unit tests `promtool test rules`.
//!
//! The configuration is process-wide, so the configuration's steps are one test that runs them in order.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use hardened::config;
use hardened::hardened;
use hardened::slo;

#[derive(Debug, thiserror::Error)]
#[error("no answer")]
struct ChatError;

#[hardened(kind = "route", slo(name = "chat", success = 99.9, latency = "2.5s", latency_target = 99))]
async fn answer(question: &str) -> Result<usize, ChatError> {
    Ok(question.len())
}

#[hardened(kind = "route", slo = "chat")]
async fn follow_up(question: &str) -> Result<usize, ChatError> {
    if question.is_empty() { Err(ChatError) } else { Ok(question.len()) }
}

/// Its own buckets, one of which is its objective's threshold.
#[hardened(kind = "llm", buckets = [0.1, 0.75, 3.0], slo(name = "model", latency = "750ms", latency_target = 95))]
fn complete(prompt: &str) -> usize {
    prompt.len()
}

#[tokio::test]
async fn the_members_of_each_objective_are_joined_to_their_call_series() {
    answer("hello").await.expect("an answer");
    assert!(follow_up("").await.is_err());
    assert_eq!(complete("hi"), 2);
    let metrics = hardened::metrics::render();
    let module = module_path!();
    for (slo, function, kind) in
        [("chat", "answer", "route"), ("chat", "follow_up", "route"), ("model", "complete", "llm")]
    {
        let info =
            format!("hardened_slo_info{{slo=\"{slo}\",function=\"{function}\",module=\"{module}\",kind=\"{kind}\"}} 1");
        assert!(metrics.contains(&info), "{info} in\n{metrics}");
    }
    assert!(metrics.contains(&format!(
        "hardened_call_duration_seconds_bucket{{function=\"complete\",module=\"{module}\",kind=\"llm\",le=\"0.75\"}}"
    )));
}

#[test]
fn configuration_layers_over_the_literals_and_is_refused_when_it_cannot_be_judged() {
    let objectives = slo::objectives().expect("the literals alone are valid");
    let chat = objectives.iter().find(|objective| objective.name == "chat").expect("chat");
    assert_eq!(chat.success, Some(99.9));
    assert_eq!(
        chat.latency.map(|latency| (latency.threshold, latency.target)),
        Some((Duration::from_millis(2500), 99.0))
    );
    assert_eq!(chat.members.iter().map(|member| member.function).collect::<Vec<_>>(), ["answer", "follow_up"]);
    let model = objectives.iter().find(|objective| objective.name == "model").expect("model");
    assert_eq!(model.success, None, "a latency objective only");

    // The file over the literal; the environment over the file.
    let file = "[slo.chat]\nsuccess = 99.5\nlatency = \"5s\"\n";
    let parsed = config::parse(file, "hardened.toml").expect("a valid file");
    let parsed = config::with_env(parsed, [("HARDENED_SLO__CHAT__LATENCY_TARGET".to_owned(), "95".to_owned())])
        .expect("a valid override");
    config::install(parsed);
    let chat = slo::objectives().expect("valid").into_iter().find(|objective| objective.name == "chat").expect("chat");
    assert_eq!(chat.success, Some(99.5));
    assert_eq!(chat.latency.map(|latency| (latency.threshold, latency.target)), Some((Duration::from_secs(5), 95.0)));
    assert!(config::effective().contains("[slo.chat]\nsuccess = 99.5\nlatency = \"5s\"\nlatency_target = 95.0"));

    // A threshold that is no bucket bound of a member: refused at load, naming the function and the bounds.
    let error = config::load_text("[slo.model]\nlatency = \"1s\"\n", "hardened.toml").expect_err("not a bound");
    let message = error.to_string();
    assert!(message.starts_with("objective `model`: latency \"1s\" is not a bucket bound of "), "{message}");
    assert!(
        message.contains("::complete`'s duration histogram; allowed: one of \"100ms\", \"750ms\", \"3s\""),
        "{message}"
    );
    // The configuration in force did not change.
    assert_eq!(
        slo::objectives()
            .expect("valid")
            .iter()
            .find(|objective| objective.name == "chat")
            .and_then(|chat| chat.success),
        Some(99.5)
    );
    // Out of range, in the schema's words.
    let error = config::parse("[slo.chat]\nsuccess = 100\n", "hardened.toml").expect_err("no budget").to_string();
    assert_eq!(
        error,
        "hardened.toml: slo.chat.success = 100 is out of range; allowed: a percentage above 0 and below 100, such as 99.9"
    );
    // A section naming no objective is reported like a guard's.
    config::install(config::parse("[slo.chta]\nsuccess = 99\n", "hardened.toml").expect("valid"));
    assert_eq!(
        config::unused().iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["[slo.chta] names no service level objective used by any function; did you mean `chat`?"]
    );
    config::install(config::Config::default());
}

/// `promtool` from PATH, or from `PROMTOOL`.
fn promtool() -> Command {
    Command::new(std::env::var_os("PROMTOOL").unwrap_or_else(|| "promtool".into()))
}

#[test]
#[ignore = "needs promtool (Debian's prometheus package; deploy/check.sh downloads it): PROMTOOL=path or on PATH"]
fn the_generated_alerts_fire_when_they_should_and_not_before() {
    let files = slo::files().expect("valid objectives");
    let dir = std::env::temp_dir().join(format!("hardened-slo-{}", std::process::id()));
    let written = slo::write(&files, &dir).expect("writable");
    assert!(slo::stale(&files, &dir).is_empty());
    let rules: PathBuf = dir.join(slo::RULES_FILE);
    let check = promtool().arg("check").arg("rules").arg(&rules).output().expect("promtool runs");
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let test = promtool()
        .current_dir(rules.parent().expect("a directory"))
        .args(["test", "rules", "slo_page_test.yml", "slo_ticket_test.yml"])
        .output()
        .expect("promtool runs");
    let output = format!("{}{}", String::from_utf8_lossy(&test.stdout), String::from_utf8_lossy(&test.stderr));
    assert!(test.status.success(), "{output}");
    assert!(output.contains("SUCCESS"), "{output}");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(written.len(), 4);
}
