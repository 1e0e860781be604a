//! What a Prometheus family is called over OTLP: the OpenTelemetry semantic conventions' name, unit and
//! attribute names where one exists, and a mechanical rule for the rest.

use std::borrow::Cow;

/// A family's OTLP name and unit, and the OTLP names of its labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct OtlpName {
    pub(super) name: Cow<'static, str>,
    pub(super) unit: &'static str,
    attributes: Renames,
}

impl OtlpName {
    /// The OTLP name of the label `label`.
    pub(super) fn attribute<'a>(&self, label: &'a str) -> &'a str {
        self.attributes.iter().find(|(from, _)| *from == label).map_or(label, |(_, to)| to)
    }
}

/// The labels of the HTTP server families, as the HTTP semantic conventions name them.
const HTTP_SERVER: Renames =
    &[("method", "http.request.method"), ("route", "http.route"), ("status", "http.response.status_code")];

/// The labels of the HTTP client family, as the HTTP semantic conventions name them.
const HTTP_CLIENT: Renames =
    &[("method", "http.request.method"), ("server_address", "server.address"), ("status", "http.response.status_code")];

/// Label renames: `(Prometheus label, OTLP attribute)`.
type Renames = &'static [(&'static str, &'static str)];

/// The families with an OpenTelemetry name of their own: `(Prometheus name, OTLP name, unit, labels)`.
/// docs/metrics.md has this table for people.
pub(super) const KNOWN: &[(&str, &str, &str, Renames)] = &[
    ("hardened_calls_total", "hardened.calls", "{call}", &[]),
    ("hardened_call_duration_seconds", "hardened.call.duration", "s", &[]),
    ("hardened_in_flight", "hardened.calls.active", "{call}", &[]),
    ("hardened_http_request_duration_seconds", "http.server.request.duration", "s", HTTP_SERVER),
    ("hardened_http_requests_in_flight", "http.server.active_requests", "{request}", HTTP_SERVER),
    ("hardened_http_requests_total", "hardened.http.server.requests", "{request}", HTTP_SERVER),
    ("hardened_http_client_request_duration_seconds", "http.client.request.duration", "s", HTTP_CLIENT),
    ("process_cpu_seconds_total", "process.cpu.time", "s", &[]),
    ("process_resident_memory_bytes", "process.memory.usage", "By", &[]),
    ("process_virtual_memory_bytes", "process.memory.virtual", "By", &[]),
    ("process_threads", "process.thread.count", "{thread}", &[]),
    ("process_open_fds", "process.unix.file_descriptor.count", "{file_descriptor}", &[]),
];

/// Unit suffixes of Prometheus names, and the UCUM unit each stands for.
const UNIT_SUFFIXES: &[(&str, &str)] = &[("_seconds", "s"), ("_bytes", "By"), ("_ratio", "1")];

/// The OTLP name of the family `prometheus`, a counter when `counter`: its entry in [`KNOWN`], else the
/// Prometheus name without `_total` (counters) and its unit suffix, under the `hardened.` namespace when
/// it has the `hardened_` prefix (`hardened_audit_events_total` is `hardened.audit_events`).
pub(super) fn otlp_name(prometheus: &str, counter: bool) -> OtlpName {
    if let Some((_, name, unit, attributes)) = KNOWN.iter().find(|(known, ..)| *known == prometheus) {
        return OtlpName { name: Cow::Borrowed(name), unit, attributes };
    }
    let mut stem = prometheus;
    if counter {
        stem = stem.strip_suffix("_total").unwrap_or(stem);
    }
    let mut unit = "";
    for (suffix, symbol) in UNIT_SUFFIXES {
        if let Some(shorter) = stem.strip_suffix(suffix) {
            stem = shorter;
            unit = symbol;
            break;
        }
    }
    let name = match stem.strip_prefix("hardened_") {
        Some(rest) => format!("hardened.{rest}"),
        None => stem.to_owned(),
    };
    OtlpName { name: Cow::Owned(name), unit, attributes: &[] }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_families_take_the_semantic_conventions_names() {
        let duration = otlp_name("hardened_http_request_duration_seconds", false);
        assert_eq!((duration.name.as_ref(), duration.unit), ("http.server.request.duration", "s"));
        assert_eq!(duration.attribute("method"), "http.request.method");
        assert_eq!(duration.attribute("route"), "http.route");
        let calls = otlp_name("hardened_calls_total", true);
        assert_eq!((calls.name.as_ref(), calls.unit), ("hardened.calls", "{call}"));
        assert_eq!(calls.attribute("function"), "function", "labels without a convention keep their names");
    }

    #[test]
    fn other_families_lose_their_total_and_unit_suffixes() {
        let cases = [
            ("hardened_audit_events_total", true, "hardened.audit_events", ""),
            ("hardened_audit_batch_duration_seconds", false, "hardened.audit_batch_duration", "s"),
            ("hardened_telemetry_spans_dropped_total", true, "hardened.telemetry_spans_dropped", ""),
            ("app_payload_bytes", false, "app_payload", "By"),
            ("app_total", false, "app_total", ""),
            ("process_start_time_seconds", false, "process_start_time", "s"),
        ];
        for (prometheus, counter, name, unit) in cases {
            let otlp = otlp_name(prometheus, counter);
            assert_eq!((otlp.name.as_ref(), otlp.unit), (name, unit), "{prometheus}");
        }
    }
}
