//! Transport concerns as tower layers, applied once around every service
//! on the port (gRPC, gRPC-Web and HTTP/JSON alike): gRPC-Web translation
//! ([`grpc_web`]), cross-origin requests ([`cors`]), authentication and authorization ([`identity`]), metrics
//! and tracing spans ([`metrics`]), and the limits that shed load and
//! refuse oversized messages ([`limits`]); innermost, the hottest gRPC
//! methods skip the router ([`shortcut`]). None of them compares paths:
//! each reads the route the outermost layer resolved once
//! ([`crate::routes::RouteLayer`]).

pub mod auth;
pub mod cors;
pub mod grpc_web;
pub mod limits;
pub mod metrics;
pub mod shortcut;
pub mod stream_body;

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
