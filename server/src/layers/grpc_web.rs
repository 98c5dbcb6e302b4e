//! gRPC-Web on the same port: a request whose content type is gRPC-Web's
//! (`application/grpc-web…`, over HTTP/1.1 or HTTP/2) is translated to
//! gRPC by `tonic-web` and its answer back; every other request passes by
//! untouched (tonic-web alone would refuse HTTP/1.1 requests that are not
//! gRPC-Web, the JSON API's, and re-box every gRPC body). Outermost, so the
//! other layers' refusals reach a gRPC-Web client translated too.

use std::task::{Context, Poll};

use futures_util::future::Either;
use tonic::body::Body;
use tonic_web::{GrpcWebLayer, GrpcWebService};
use tower::Layer;

/// See the module docs.
#[derive(Clone, Default)]
pub struct WebLayer;

impl<S: Clone> Layer<S> for WebLayer {
    type Service = WebService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        WebService { web: GrpcWebLayer::new().layer(inner.clone()), inner }
    }
}

/// See [`WebLayer`].
#[derive(Clone)]
pub struct WebService<S> {
    inner: S,
    web: GrpcWebService<S>,
}

fn is_grpc_web(req: &http::Request<Body>) -> bool {
    req.headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/grpc-web"))
}

impl<S> tower::Service<http::Request<Body>> for WebService<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Either<<GrpcWebService<S> as tower::Service<http::Request<Body>>>::Future, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        // Each path takes a fresh clone and leaves the one made ready by
        // poll_ready where it was (tower's pattern for Clone services).
        if is_grpc_web(&req) {
            Either::Left(self.web.call(req))
        } else {
            let clone = self.inner.clone();
            let mut inner = std::mem::replace(&mut self.inner, clone);
            Either::Right(inner.call(req))
        }
    }
}
