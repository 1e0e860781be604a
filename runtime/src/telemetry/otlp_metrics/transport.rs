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
    Http { client: reqwest::Client, url: String },
    Grpc { client: MetricsServiceClient<Channel> },
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
                Ok(Transport::Http { client, url: url.to_owned() })
            }
            Protocol::Grpc => {
                let channel = Channel::from_shared(url.to_owned())
                    .map_err(|_| invalid())?
                    .timeout(timeout)
                    .connect_timeout(timeout)
                    .connect_lazy();
                Ok(Transport::Grpc { client: MetricsServiceClient::new(channel) })
            }
        }
    }

    /// Sends `request`; an error says why the collector did not take it.
    pub(super) async fn send(&mut self, request: ExportMetricsServiceRequest) -> Result<(), String> {
        match self {
            Transport::Http { client, url } => {
                let response = client
                    .post(url.as_str())
                    .header(reqwest::header::CONTENT_TYPE, PROTOBUF)
                    .body(request.encode_to_vec())
                    .send()
                    .await
                    .map_err(|error| error.without_url().to_string())?;
                let status = response.status();
                if status.is_success() { Ok(()) } else { Err(format!("the collector answered {status}")) }
            }
            Transport::Grpc { client } => {
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
