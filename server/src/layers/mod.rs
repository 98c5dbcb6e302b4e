//! Transport concerns as tower layers, applied once around every service
//! on the port (gRPC, gRPC-Web and HTTP/JSON alike): gRPC-Web translation
//! ([`grpc_web`]), cross-origin requests ([`cors`]), authentication and authorization ([`auth`]), metrics
//! and tracing spans ([`metrics`]), and the limits that shed load and
//! refuse oversized messages ([`limits`]); innermost, the hottest gRPC
//! methods skip the router ([`shortcut`]).

pub mod auth;
pub mod cors;
pub mod grpc_web;
pub mod limits;
pub mod metrics;
pub mod shortcut;

/// Whether a method answers with a long-lived stream (Watch, health's
/// Watch, reflection, the server-sent event stream): limited by the watcher limits rather than the
/// in-flight limit, and counted when it ends.
pub fn is_stream(path: &str) -> bool {
    path.ends_with("/Watch") || path.ends_with("/ServerReflectionInfo") || path == "/v1/watch"
}

/// `body` as tonic's body type with no error-mapping wrapper (one fewer
/// layer to poll through per frame): `Body::new` takes a boxed body of
/// `Status` errors as it is, and wraps anything else once more.
pub fn unmapped<B>(body: B) -> tonic::body::Body
where
    B: http_body::Body<Data = bytes::Bytes, Error = tonic::Status> + Send + 'static,
{
    use http_body_util::BodyExt;
    tonic::body::Body::new(body.boxed_unsync())
}
