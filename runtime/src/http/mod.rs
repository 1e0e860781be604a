//! HTTP for axum services: the ops router (probes and metrics) and the layers that trace and measure
//! requests.

mod ops;
mod requests;
mod trace;
