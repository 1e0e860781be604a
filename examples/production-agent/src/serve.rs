//! `agent-server serve`: telemetry, the audit trail, health checks, the API and the ops endpoints, served
//! until a signal and shut down gracefully; and the pieces it assembles the service from, which the
//! benchmarks (`benches/message/`) put together the same way, in-process.

use std::error::Error;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hardened::admin::AdminAccess;
use hardened::audit::{self, AuditEvent, AuditSigningKey, Auditor, EventType, JsonlSink, PostgresSink};
use hardened::health::{self, Component, HealthConfig, PostgresCheck};
use hardened::http::{RequestLayer, Server, ServerLimits, ServerTraceLayer};
use hardened::shutdown::ShutdownConfig;
use hardened::telemetry::TelemetryConfig;

use crate::agent::Agent;
use crate::api::{self, App};
use crate::auth::Authenticator;
use crate::model;
use crate::sessions::{SessionLimits, Sessions};
use crate::settings::{AuditSettings, Settings, Signing};
use crate::tools::Tools;
use crate::trail;

/// Where the server listens when the configuration does not say.
const DEFAULT_ADDRESS: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8080);

/// Serves the service `settings` describe until a signal, then shuts it down gracefully.
pub async fn serve(settings: Settings) -> Result<(), Box<dyn Error>> {
    let _telemetry = hardened::telemetry::init(&telemetry_config(&settings))?;
    audit::set_service_name("agent-server");

    let address = settings.hardened.server.address.unwrap_or(DEFAULT_ADDRESS);
    let listener = tokio::net::TcpListener::bind(address).await?;
    let address = listener.local_addr()?;
    let instance = std::env::var("AGENT_INSTANCE").unwrap_or_else(|_| format!("{}:{}", hostname(), address.port()));

    let database = std::env::var("DATABASE_URL").ok().filter(|url| !url.is_empty());
    start_audit(&settings, database.as_deref(), &instance)?;

    let mut health_config = HealthConfig::default();
    settings.hardened.health.apply_to(&mut health_config);
    health::configure(health_config);
    health::start_watchdog();
    if let Some(url) = &database {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(1))
            .connect_lazy(url)?;
        // The audit trail is in `PostgreSQL`: without it the service cannot record what it does.
        health::registry().register(Component::new("postgres", PostgresCheck::new(pool)).critical());
    }

    let application = Application::new(&settings)?;
    tracing::info!(model = application.app.agent.model.name(), %instance, "agent ready");
    tokio::spawn(end_idle_sessions(Arc::clone(&application.app), settings.agent.sessions.idle_timeout()?));
    tokio::spawn(Arc::clone(&application.auth).report_failures());
    let at_shutdown = Arc::clone(&application.auth);
    // Before the audit pipeline's own flush, so that the failures of the intervals in course are written.
    hardened::shutdown::register(
        "failed authentications",
        hardened::shutdown::priority::APPLICATION,
        Duration::from_secs(1),
        move || {
            at_shutdown.report_all_failures();
            std::future::ready(Ok(()))
        },
    );

    let mut router = application.api_router();
    let admin = if let Some(admin_address) = settings.hardened.server.admin_address {
        Some(tokio::net::TcpListener::bind(admin_address).await?)
    } else {
        router = router.merge(hardened::http::ops_router());
        None
    };
    let router = with_request_layers(router, &settings);

    let mut limits = ServerLimits::default();
    settings.hardened.server.apply_to(&mut limits);
    let mut server = Server::new(router).limits(limits).shutdown(ShutdownConfig::configured());
    if let Some(admin) = admin {
        let admin_address = admin.local_addr()?;
        let access = AdminAccess::configured();
        tracing::info!(address = %admin_address, token = access.has_token(), "ops endpoints listening");
        server = server.admin(admin, hardened::admin::admin_router(access, admin_address));
    }
    // `SIGHUP` reads hardened.toml again and retunes the guards; a bad file is logged, audited and refused.
    hardened::config::reload_on_hangup();
    health::startup_complete();
    tracing::info!(%address, "agent-server listening");
    let summary = server.run(listener).await?;
    if !summary.is_clean() {
        tracing::warn!("the shutdown did not finish cleanly: {summary}");
    }
    Ok(())
}

/// The telemetry `settings` configure: the service's name and version, with `[telemetry]` over them.
#[must_use]
pub fn telemetry_config(settings: &Settings) -> TelemetryConfig {
    let mut telemetry = TelemetryConfig {
        service_name: "agent-server".to_owned(),
        service_version: Some(env!("CARGO_PKG_VERSION").to_owned()),
        ..TelemetryConfig::default()
    };
    settings.hardened.telemetry.apply_to(&mut telemetry);
    telemetry
}

/// The service's own state: the agent (model and tools), the sessions and the API keys.
#[derive(Debug)]
pub struct Application {
    app: Arc<App>,
    auth: Arc<Authenticator>,
}

impl Application {
    /// The agent, its sessions and its keys, as `settings` configure them; no task is started.
    pub fn new(settings: &Settings) -> Result<Application, Box<dyn Error>> {
        let http = reqwest::Client::builder().connect_timeout(Duration::from_secs(5)).build()?;
        let agent = Agent {
            model: model::Client::from_settings(&settings.agent.model, &http)?,
            tools: Tools::new(&settings.agent.fetch, &settings.agent.tools)?,
            max_steps: settings.agent.model.max_steps,
            max_tokens: settings.agent.model.max_tokens,
        };
        let sessions = Sessions::new(SessionLimits::from_settings(&settings.agent.sessions));
        let auth = Authenticator::new(&settings.agent.keys, &settings.agent.auth)?;
        Ok(Application { app: Arc::new(App { agent, sessions }), auth: Arc::new(auth) })
    }

    /// The API's routes, behind API-key authentication, without the ops endpoints or the request layers.
    pub fn api_router(&self) -> Router {
        api::routes(Arc::clone(&self.app), Arc::clone(&self.auth))
    }
}

/// `router` inside `hardened`'s request layers, as the server runs it: each request measured and given its
/// audit context ([`RequestLayer`]) inside its server span ([`ServerTraceLayer`]). Without them in a build
/// with `--cfg hardened_disabled`.
pub fn with_request_layers(router: Router, settings: &Settings) -> Router {
    if cfg!(hardened_disabled) {
        return router;
    }
    let trusted_proxies = usize::from(settings.hardened.server.trust_forwarded_for.unwrap_or(false));
    // The public listener's callers do not choose the trace id or the sampling: unless configured to
    // trust them, each request starts a trace of its own, linked to the caller's.
    let trust_incoming_trace = settings.hardened.server.trust_incoming_trace.unwrap_or(false);
    // One `layer` call for both, the first of the pair outside: each call wraps every route in a boxed
    // service again, which axum clones (an allocation a box) and calls through (a boxed future a box) on
    // every request.
    router.layer((
        ServerTraceLayer::new().trust_incoming_trace(trust_incoming_trace),
        RequestLayer::new().trust_forwarded_for(trusted_proxies),
    ))
}

/// Installs the audit trail as the process's pipeline: `PostgreSQL` at `database` when given, else the
/// JSONL file of `[audit] path`; spill files beside the JSONL file either way, so that no event is lost
/// while a sink is down; checkpoints signed as `[audit] signing` says. `instance` names the stream.
pub fn start_audit(settings: &Settings, database: Option<&str>, instance: &str) -> Result<(), Box<dyn Error>> {
    let audit_settings = &settings.agent.audit;
    let signing_key = signing_key(audit_settings)?;
    let path = &audit_settings.path;
    let directory = path.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(directory)?;
    let spill = directory.join(format!("spill-{}", instance.replace([':', '/'], "-")));
    // A stream has one writer from record 0 on: each start of the server writes a stream of its own, so
    // that a restart under the same instance name does not begin a second record 0 in the same stream.
    // Spill files stay per instance, so a restart still replays what the last run left.
    let run = uuid::Uuid::now_v7();
    let mut builder = Auditor::builder()
        .stream(format!("agent-server/{instance}/{run}"))
        .spill_dir(spill)
        .checkpoint_every(audit_settings.checkpoint_every_events, audit_settings.checkpoint_every()?)
        .checkpoints_to_tracing(audit_settings.checkpoints_to_log);
    if let Some(key) = signing_key {
        tracing::info!(key_id = key.key_id(), "audit checkpoints are signed");
        // To `<path>.checkpoints` beside the JSONL log; with PostgreSQL, to its table `audit_checkpoint`
        // (the sink's default), beside the records, where retention drops are signed too.
        builder = builder.signing_key(key);
        if database.is_none() {
            builder = builder.checkpoint_file(crate::audit_commands::checkpoint_file(path));
        }
    }
    let builder = if let Some(url) = database {
        let mut sink = PostgresSink::from_url(url)?;
        if let Some(schema) = &audit_settings.schema {
            sink = sink.schema(schema);
        }
        tracing::info!("auditing to PostgreSQL");
        builder.sink(sink)
    } else {
        tracing::info!(path = %path.display(), "auditing to a JSONL file");
        builder.sink(JsonlSink::open(path)?)
    };
    audit::install(builder.start()?).map_err(|_| "an audit pipeline was installed already")?;
    Ok(())
}

/// The key that signs audit checkpoints, as `[audit] signing` says.
fn signing_key(settings: &AuditSettings) -> Result<Option<AuditSigningKey>, Box<dyn Error>> {
    match (settings.signing, &settings.signing_key_file) {
        (Signing::Off, _) => {
            tracing::warn!(
                "audit checkpoints are not signed (audit.signing = \"off\"): whoever can write the audit log can \
                 rewrite it undetected"
            );
            Ok(None)
        }
        (_, Some(file)) => Ok(Some(AuditSigningKey::read_pem_file(file)?)),
        (Signing::Required, None) => Err("audit.signing = \"required\" but no signing key is set: set \
             audit.signing_key_file or AGENT_AUDIT_SIGNING_KEY_FILE to an Ed25519 private key in PEM, kept off the \
             audit log's storage (make a pair with `agent-server audit keygen`)"
            .into()),
        (Signing::Development, None) => {
            let file = settings.development_key_file();
            let key = if file.exists() {
                AuditSigningKey::read_pem_file(&file)?
            } else {
                crate::audit_commands::write_key_pair(&file)?
            };
            tracing::warn!(
                key = %file.display(),
                key_id = key.key_id(),
                "development: audit checkpoints are signed with a key made for this machine; in production set \
                 audit.signing_key_file to a key kept off the audit log's storage"
            );
            Ok(Some(key))
        }
    }
}

/// Ends the sessions idle for longer than `idle`, looking every tenth of it (every minute at most), and
/// audits each as a `SessionEnd`.
async fn end_idle_sessions(app: Arc<App>, idle: Duration) {
    let every = (idle / 10).clamp(Duration::from_secs(1), Duration::from_mins(1));
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        for ended in app.sessions.end_idle(chrono::Utc::now(), idle) {
            tracing::debug!(session = %ended.id, owner = %ended.owner, "session ended after being idle");
            trail::record(|| {
                AuditEvent::new(EventType::SessionEnd)
                    .user_id(ended.owner.clone())
                    .session_id(ended.id.to_string())
                    .resource("session")
                    .detail("reason", "idle")
            });
        }
    }
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|name| name.trim().to_owned()))
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}
