//! The service's name, which audit events, Redis keys and telemetry carry.

use std::sync::OnceLock;

static SERVICE_NAME: OnceLock<String> = OnceLock::new();

/// Sets the `service` of every event; returns whether this call set it (the first one wins). Without
/// it: `OTEL_SERVICE_NAME` if set, else the executable's name.
pub fn set_service_name(name: impl Into<String>) -> bool {
    SERVICE_NAME.set(name.into()).is_ok()
}

/// The `service` of every event.
pub fn service_name() -> &'static str {
    SERVICE_NAME.get_or_init(|| {
        std::env::var("OTEL_SERVICE_NAME").ok().filter(|name| !name.is_empty()).unwrap_or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|path| path.file_stem().map(|stem| stem.to_string_lossy().into_owned()))
                .unwrap_or_else(|| "unknown_service".to_owned())
        })
    })
}
