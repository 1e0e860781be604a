//! `agent-server audit ...` as a real process: `keygen`, `verify --public-key` on a signed log and on a
//! forged one, `report` with a window too long to represent, and the production configuration without a
//! signing key.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hardened::audit::{AuditEvent, AuditSigningKey, Auditor, EventType, JsonlSink};

fn agent(directory: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_agent-server"))
        .current_dir(directory)
        .args(args)
        .env("AGENT_AUDIT_PATH", directory.join("audit/audit.jsonl"))
        .env_remove("DATABASE_URL")
        .env_remove("AGENT_CONFIG_DIR")
        .env_remove("AGENT_AUDIT_SIGNING_KEY_FILE")
        .output()
        .expect("agent-server runs")
}

/// `agent-server` in `directory` with the configuration in `config`, an operator key and a free port, its
/// audit trail in `directory`.
fn production_server(directory: &Path, config: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_agent-server"));
    command
        .current_dir(directory)
        .arg("--config")
        .arg(config)
        .env("AGENT_AUDIT_PATH", directory.join("audit/audit.jsonl"))
        .env("AGENT_OPERATOR_KEY", "operator-key-for-the-test")
        .env("HARDENED_SERVER__ADDRESS", "127.0.0.1:0")
        .env_remove("DATABASE_URL")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT");
    command
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A log of 250 records signed with the key in `key_file`, sealed every 100.
async fn write_signed_log(directory: &Path, key_file: &Path) -> PathBuf {
    let path = directory.join("audit/audit.jsonl");
    let key = AuditSigningKey::read_pem_file(key_file).expect("the key made by keygen reads");
    let auditor = Auditor::builder()
        .sink(JsonlSink::open(&path).expect("the log opens"))
        .spill_dir(directory.join("audit/spill"))
        .signing_key(key)
        .checkpoint_every(100, std::time::Duration::from_hours(1))
        .start()
        .expect("the pipeline starts");
    for n in 0..250 {
        auditor.emit(AuditEvent::new(EventType::ToolExecution).user_id("ada").detail("n", n));
    }
    auditor.shutdown().await.expect("every event is written");
    path
}

#[tokio::test]
async fn audit_verify_with_the_public_key_passes_a_signed_log_and_fails_a_cut_one() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let keygen = agent(directory.path(), &["audit", "keygen", "--out", "keys/signing.pem"]);
    assert!(keygen.status.success(), "{}", text(&keygen.stderr));
    let private = directory.path().join("keys/signing.pem");
    let public = directory.path().join("keys/signing.pub.pem");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&private).expect("the key exists").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let path = write_signed_log(directory.path(), &private).await;

    let verify = || agent(directory.path(), &["audit", "verify", "--public-key", "keys/signing.pub.pem"]);
    let verified = verify();
    assert!(verified.status.success(), "{}", text(&verified.stderr));
    let stdout = text(&verified.stdout);
    assert!(stdout.contains("250 records in 1 streams") && stdout.contains("4 signed checkpoints verify"), "{stdout}");
    assert!(stdout.contains("250 records are sealed"), "{stdout}");

    // The forger deletes the last records and the head file that named the last one.
    let log = std::fs::read_to_string(&path).expect("the log is readable");
    let kept: Vec<&str> = log.lines().take(240).collect();
    std::fs::write(&path, format!("{}\n", kept.join("\n"))).expect("the log is writable");
    std::fs::remove_file(directory.path().join("audit/audit.jsonl.head")).expect("the head file is there");

    let unkeyed = agent(directory.path(), &["audit", "verify"]);
    assert!(unkeyed.status.success(), "without a key the cut goes unnoticed: {}", text(&unkeyed.stderr));
    assert!(text(&unkeyed.stdout).contains("consistent, not authentic"));
    let failed = verify();
    assert_eq!(failed.status.code(), Some(1), "{}", text(&failed.stdout));
    let stderr = text(&failed.stderr);
    assert!(
        stderr.contains("the audit trail does not verify")
            && stderr.contains("ends at record 239, but signed checkpoint #3 seals record 249: the end was removed"),
        "{stderr}"
    );
    assert!(public.exists());
}

#[test]
fn audit_report_over_a_window_too_long_to_represent_is_an_error_not_a_panic() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let output = agent(directory.path(), &["audit", "report", "--since", "280000y"]);
    assert_eq!(output.status.code(), Some(1), "a clean failure, not a panic (101)");
    let stderr = text(&output.stderr);
    assert!(stderr.contains("--since 280000years reaches back before the earliest time representable"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn the_production_configuration_does_not_start_without_a_signing_key() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/production");
    let output = production_server(directory.path(), &config)
        .env("AGENT_AUDIT_SIGNING_KEY_FILE", directory.path().join("no-such-key.pem"))
        .output()
        .expect("agent-server runs");
    assert!(!output.status.success());
    let all = format!("{}{}", text(&output.stdout), text(&output.stderr));
    assert!(all.contains("cannot read the audit key file") && all.contains("no-such-key.pem"), "{all}");
    assert!(!directory.path().join("audit/audit.jsonl").exists(), "nothing is audited unsigned");

    // The same configuration with no key file named at all.
    let without_key = directory.path().join("config");
    std::fs::create_dir_all(&without_key).expect("a configuration folder");
    std::fs::copy(config.join("hardened.toml"), without_key.join("hardened.toml")).expect("copied");
    let agent = std::fs::read_to_string(config.join("agent.toml")).expect("the production agent.toml");
    let agent: Vec<&str> = agent.lines().filter(|line| !line.starts_with("signing_key_file")).collect();
    std::fs::write(without_key.join("agent.toml"), agent.join("\n")).expect("written");
    let output = production_server(directory.path(), &without_key)
        .env_remove("AGENT_AUDIT_SIGNING_KEY_FILE")
        .output()
        .expect("agent-server runs");
    assert!(!output.status.success());
    let all = format!("{}{}", text(&output.stdout), text(&output.stderr));
    assert!(all.contains("audit.signing = \"required\" but no signing key is set"), "{all}");
    assert!(all.contains("agent-server audit keygen"), "{all}");
}

/// Starts the server in `directory` as instance `instance`, opens a session (an audited event), and
/// stops it with SIGTERM.
async fn run_once(directory: &Path, instance: &str) {
    let port =
        std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("an address").port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_agent-server"))
        .current_dir(directory)
        .env("AGENT_AUDIT_PATH", directory.join("audit/audit.jsonl"))
        .env("AGENT_INSTANCE", instance)
        .env("HARDENED_SERVER__ADDRESS", format!("127.0.0.1:{port}"))
        .env_remove("DATABASE_URL")
        .env_remove("AGENT_CONFIG_DIR")
        .env_remove("AGENT_AUDIT_SIGNING_KEY_FILE")
        .env_remove("AGENT_ENV")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("agent-server starts");
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(server.try_wait().expect("waitable").is_none(), "the server exited at start");
        assert!(started.elapsed() < std::time::Duration::from_secs(30), "the server listens");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let opened = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/v1/sessions"))
        .bearer_auth("dev-key")
        .send()
        .await
        .expect("an answer");
    assert_eq!(opened.status(), 201);
    let killed = Command::new("kill").arg("-TERM").arg(server.id().to_string()).status().expect("kill runs");
    assert!(killed.success());
    assert!(server.wait().expect("the server exits").success(), "a clean exit after SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restarted_under_the_same_instance_keeps_a_trail_that_verifies() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    run_once(directory.path(), "replica-1").await;
    run_once(directory.path(), "replica-1").await;
    let verified = agent(directory.path(), &["audit", "verify"]);
    assert!(verified.status.success(), "{}{}", text(&verified.stdout), text(&verified.stderr));
    let stdout = text(&verified.stdout);
    assert!(stdout.contains("in 2 streams"), "each run writes a stream of its own: {stdout}");
}

#[test]
fn audit_keygen_needs_no_configuration() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let production = concat!(env!("CARGO_MANIFEST_DIR"), "/config/production");
    // The production configuration cannot load here (no operator key, no signing key): keygen does not
    // read it, since it makes the key that configuration names.
    let keygen = Command::new(env!("CARGO_BIN_EXE_agent-server"))
        .current_dir(directory.path())
        .args(["audit", "keygen", "--out", "signing.pem"])
        .env("AGENT_CONFIG_DIR", production)
        .env_remove("AGENT_OPERATOR_KEY")
        .output()
        .expect("agent-server runs");
    assert!(keygen.status.success(), "{}", text(&keygen.stderr));
    assert!(directory.path().join("signing.pem").exists() && directory.path().join("signing.pub.pem").exists());
}
