//! `agent-server serve`: telemetry, the audit trail, health checks, the API and the ops endpoints, served
//! until a signal and shut down gracefully.

use std::error::Error;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hardened::audit::{self, AuditEvent, Auditor, EventType, JsonlSink, PostgresSink};
use hardened::health::{self, Component, HealthConfig, PostgresCheck};
use hardened::http::{RequestLayer, Server, ServerLimits, ServerTraceLayer};
use hardened::shutdown::ShutdownConfig;
use hardened::telemetry::TelemetryConfig;

use crate::agent::Agent;
use crate::api::{self, App};
use crate::auth::KeyRing;
use crate::model;
use crate::sessions::Sessions;
use crate::settings::Settings;
use crate::tools::{Faults, Tools};
use crate::trail;

/// Where the server listens when the configuration does not say.
const DEFAULT_ADDRESS: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8080);

pub(crate) async fn serve(settings: Settings) -> Result<(), Box<dyn Error>> {
    let mut telemetry = TelemetryConfig {
        service_name: "agent-server".to_owned(),
        service_version: Some(env!("CARGO_PKG_VERSION").to_owned()),
        ..TelemetryConfig::default()
    };
    settings.hardened.telemetry.apply_to(&mut telemetry);
    let _telemetry = hardened::telemetry::init(&telemetry)?;
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

    let http = reqwest::Client::builder().connect_timeout(Duration::from_secs(5)).build()?;
    let agent = Agent {
        model: model::Client::from_settings(&settings.agent.model, &http)?,
        tools: Tools { http, fetch: settings.agent.fetch.clone(), faults: Faults::default() },
        max_steps: settings.agent.model.max_steps,
        max_tokens: settings.agent.model.max_tokens,
    };
    tracing::info!(model = agent.model.name(), %instance, "agent ready");
    let app =
        Arc::new(App { agent, sessions: Sessions::default(), max_messages: settings.agent.sessions.max_messages });
    tokio::spawn(end_idle_sessions(Arc::clone(&app), settings.agent.sessions.idle_timeout()?));
    let keys = Arc::new(KeyRing::new(&settings.agent.keys));

    let mut router = api::routes(app, keys);
    let admin = if let Some(admin_address) = settings.hardened.server.admin_address {
        Some(tokio::net::TcpListener::bind(admin_address).await?)
    } else {
        router = router.merge(hardened::http::ops_router());
        None
    };
    if !cfg!(hardened_disabled) {
        let trusted_proxies = usize::from(settings.hardened.server.trust_forwarded_for.unwrap_or(false));
        // The public listener's callers do not choose the trace id or the sampling: unless configured to
        // trust them, each request starts a trace of its own, linked to the caller's.
        let trust_incoming_trace = settings.hardened.server.trust_incoming_trace.unwrap_or(false);
        router = router
            .layer(RequestLayer::new().trust_forwarded_for(trusted_proxies))
            .layer(ServerTraceLayer::new().trust_incoming_trace(trust_incoming_trace));
    }

    let mut limits = ServerLimits::default();
    settings.hardened.server.apply_to(&mut limits);
    let mut server = Server::new(router).limits(limits).shutdown(ShutdownConfig::configured());
    if let Some(admin) = admin {
        tracing::info!(address = %admin.local_addr()?, "ops endpoints listening");
        server = server.admin(admin, hardened::http::ops_router());
    }
    health::startup_complete();
    tracing::info!(%address, "agent-server listening");
    let summary = server.run(listener).await?;
    if !summary.is_clean() {
        tracing::warn!("the shutdown did not finish cleanly: {summary}");
    }
    Ok(())
}

/// The audit trail: `PostgreSQL` when `DATABASE_URL` is set, else the JSONL file; spill files beside the
/// JSONL file either way, so that no event is lost while a sink is down.
fn start_audit(settings: &Settings, database: Option<&str>, instance: &str) -> Result<(), Box<dyn Error>> {
    let path = &settings.agent.audit.path;
    let directory = path.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(directory)?;
    let spill = directory.join(format!("spill-{}", instance.replace([':', '/'], "-")));
    let builder = Auditor::builder().stream(format!("agent-server/{instance}")).spill_dir(spill);
    let builder = if let Some(url) = database {
        let mut sink = PostgresSink::from_url(url)?;
        if let Some(schema) = &settings.agent.audit.schema {
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
