//! Delivery of one export request to the collector: a POST of the protobuf body for HTTP/protobuf, the
//! metrics service's `Export` call for gRPC. Both run on the export thread's own runtime.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use prost::Message as _;
use tonic::transport::Channel;

use crate::telemetry::{Protocol, TelemetryError};

/// The content type of an OTLP HTTP/protobuf body.
const PROTOBUF: &str = "application/x-protobuf";

/// A connection to the collector's metrics endpoint.
#[derive(Debug)]
pub(super) enum Transport {
    Http { client: reqwest::Client, url: String, headers: Vec<(String, String)> },
    Grpc { client: MetricsServiceClient<Channel>, headers: Vec<(String, String)> },
}

/// The headers every export carries, for a collector that wants an API key: `OTEL_EXPORTER_OTLP_HEADERS`
/// and `OTEL_EXPORTER_OTLP_METRICS_HEADERS` (which wins for a header both name), `key=value` pairs
/// separated by commas and percent-decoded, as the OTLP exporter of spans reads them. Malformed entries
/// are skipped with a warning.
fn headers_from(var: impl Fn(&str) -> Option<String>) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = Vec::new();
    for variable in ["OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_METRICS_HEADERS"] {
        let Some(text) = var(variable) else { continue };
        let mut warnings = Vec::new();
        for (name, value) in crate::telemetry::config::parse_resource_attributes(&text, &mut warnings) {
            let name = name.to_ascii_lowercase();
            headers.retain(|(known, _)| *known != name);
            headers.push((name, value));
        }
        for warning in warnings {
            tracing::warn!(target: "hardened::telemetry", "{}", warning.replace("OTEL_RESOURCE_ATTRIBUTES", variable));
        }
    }
    headers
}

impl Transport {
    /// The transport of `protocol` to `url`. A gRPC channel connects when first used, so it must be made
    /// inside the runtime that drives it.
    pub(super) fn new(protocol: Protocol, url: &str, timeout: Duration) -> Result<Transport, TelemetryError> {
        let invalid = || TelemetryError::InvalidSetting {
            setting: "otlp_metrics_endpoint",
            value: crate::redact::urls(url).into_owned(),
            allowed: "the URL of an OTLP endpoint, such as http://collector:4317 (gRPC) or http://collector:4318/v1/metrics",
        };
        match protocol {
            Protocol::HttpProtobuf => {
                let client = reqwest::Client::builder().timeout(timeout).build().map_err(|_| invalid())?;
                Ok(Transport::Http {
                    client,
                    url: url.to_owned(),
                    headers: headers_from(|name| std::env::var(name).ok()),
                })
            }
            Protocol::Grpc => {
                let channel = Channel::from_shared(url.to_owned())
                    .map_err(|_| invalid())?
                    .timeout(timeout)
                    .connect_timeout(timeout)
                    .connect_lazy();
                let headers = headers_from(|name| std::env::var(name).ok());
                Ok(Transport::Grpc { client: MetricsServiceClient::new(channel), headers })
            }
        }
    }

    /// Sends `request`; an error says why the collector did not take it.
    pub(super) async fn send(&mut self, request: ExportMetricsServiceRequest) -> Result<(), String> {
        match self {
            Transport::Http { client, url, headers } => {
                let mut post = client.post(url.as_str()).header(reqwest::header::CONTENT_TYPE, PROTOBUF);
                for (name, value) in headers.iter() {
                    post = post.header(name.as_str(), value.as_str());
                }
                let response =
                    post.body(request.encode_to_vec()).send().await.map_err(|error| error.without_url().to_string())?;
                let status = response.status();
                if status.is_success() { Ok(()) } else { Err(format!("the collector answered {status}")) }
            }
            Transport::Grpc { client, headers } => {
                let mut request = tonic::Request::new(request);
                for (name, value) in headers.iter() {
                    let name = tonic::metadata::MetadataKey::from_bytes(name.as_bytes());
                    if let (Ok(name), Ok(value)) = (name, value.parse()) {
                        request.metadata_mut().insert(name, value);
                    }
                }
                let response = client.export(request).await.map_err(|status| status.to_string())?;
                match response.into_inner().partial_success {
                    Some(partial) if partial.rejected_data_points > 0 => Err(format!(
                        "the collector rejected {} data points: {}",
                        partial.rejected_data_points, partial.error_message
                    )),
                    _ => Ok(()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_come_from_both_variables_and_the_metrics_one_wins() {
        let headers = headers_from(|name| match name {
            "OTEL_EXPORTER_OTLP_HEADERS" => Some("api-key=general,x-team=pay%20ments".to_owned()),
            "OTEL_EXPORTER_OTLP_METRICS_HEADERS" => Some("API-Key=metrics,broken".to_owned()),
            _ => None,
        });
        assert_eq!(
            headers,
            [("x-team".to_owned(), "pay ments".to_owned()), ("api-key".to_owned(), "metrics".to_owned())]
        );
        assert!(headers_from(|_| None).is_empty());
    }
}
