//! Transport concerns as tower layers, applied once around every service
//! on the port (gRPC, gRPC-Web and HTTP/JSON alike): gRPC-Web translation
//! ([`grpc_web`]), cross-origin requests ([`cors`]), authentication and authorization ([`auth`]), metrics
//! and tracing spans ([`metrics`]), and the limits that shed load and
//! refuse oversized messages ([`limits`]).

pub mod auth;
pub mod cors;
pub mod grpc_web;
pub mod limits;
pub mod metrics;

/// Whether a method answers with a long-lived stream (Watch, health's
/// Watch, reflection, the server-sent event stream): limited by the watcher limits rather than the
/// in-flight limit, and counted when it ends.
pub fn is_stream(path: &str) -> bool {
    path.ends_with("/Watch") || path.ends_with("/ServerReflectionInfo") || path == "/v1/watch"
}
