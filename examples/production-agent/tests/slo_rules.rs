//! `agent-server slo rules` as a real process: the committed files of deploy/ (the objectives' rule file,
//! its promtool tests and the dashboard) are exactly what the agent's declarations generate, so they
//! cannot drift from the code; the rules name both objectives with both indicators; `--check` fails on
//! a changed file, and `[slo.<name>]` in the environment changes what is generated.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn agent(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_agent-server"));
    command.args(args).env_remove("AGENT_CONFIG_DIR").env_remove("HARDENED_CONFIG");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("agent-server runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_committed_files_are_what_the_declarations_generate() {
    let deploy = deploy();
    let checked = agent(&["slo", "rules", "--check", &deploy.display().to_string()], &[]);
    assert!(
        checked.status.success(),
        "{}\nregenerate with deploy/scripts/generate.sh (or agent-server slo rules --out deploy)",
        text(&checked.stderr)
    );

    let printed = agent(&["slo", "rules"], &[]);
    assert!(printed.status.success(), "{}", text(&printed.stderr));
    let rules = text(&printed.stdout);
    assert_eq!(rules, std::fs::read_to_string(deploy.join("prometheus/slo.yml")).expect("slo.yml"));
    for objective in ["messages", "model"] {
        for sli in ["success", "latency"] {
            let alert = format!("hardened:slo_{sli}_bad_ratio:rate1h{{slo=\"{objective}\"}}");
            assert!(rules.contains(&alert), "{alert} in\n{rules}");
        }
    }
    // The message route's latency threshold, 10 s, is the le="10" bucket.
    assert!(rules.contains("hardened_call_duration_seconds_bucket{le=~\"10|10\\\\.0\"}"), "{rules}");
}

#[test]
fn check_fails_on_a_stale_file_and_the_configuration_changes_the_rules() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let out = directory.path().display().to_string();
    let written = agent(&["slo", "rules", "--out", &out], &[]);
    assert!(written.status.success(), "{}", text(&written.stderr));
    assert_eq!(text(&written.stdout).lines().count(), 4, "{}", text(&written.stdout));
    assert!(agent(&["slo", "rules", "--check", &out], &[]).status.success());

    let tightened = agent(&["slo", "rules"], &[("HARDENED_SLO__MESSAGES__SUCCESS", "99.9")]);
    assert!(tightened.status.success(), "{}", text(&tightened.stderr));
    let rules = text(&tightened.stdout);
    assert!(rules.contains("hardened:slo_success_bad_ratio:rate1h{slo=\"messages\"} > (14.4 * 0.001)"), "{rules}");

    std::fs::write(directory.path().join("prometheus/slo.yml"), "groups: []\n").expect("writable");
    let stale = agent(&["slo", "rules", "--check", &out], &[]);
    assert!(!stale.status.success());
    assert!(text(&stale.stderr).contains("out of date: "), "{}", text(&stale.stderr));

    // A latency that is no bucket bound of the model call's histogram is refused with the function named.
    let refused = agent(&["slo", "rules"], &[("HARDENED_SLO__MODEL__LATENCY", "4s")]);
    assert!(!refused.status.success());
    let message = text(&refused.stderr);
    assert!(message.contains("objective `model`: latency \"4s\" is not a bucket bound of"), "{message}");
    assert!(message.contains("call_model"), "{message}");
}
