//! The hottest gRPC methods go straight to their service, under every
//! other layer, instead of through the router.
//!
//! The router (axum's, inside tonic's `Routes`) converts every request and
//! response body to its own body type and back: a box and an error-mapping
//! wrapper each way, each polled through on every frame. For a unary call
//! that is a few allocations; for a Watch it is two more heap objects to
//! touch per event per watcher, which at 100 000 watchers are cache misses
//! (BENCHMARKS.md, "Fan-out"). Which paths skip the router is the
//! service's to say; every layer above still sees every call, and the
//! answers are the same. Which requests skip it is the route table's
//! `framed` flag, read from the request's resolved route.

use std::task::{Context, Poll};

use futures_util::future::Either;
use tonic::body::Body;

use crate::routes::Resolved;

/// Sends the requests whose route is framed to `route`, the rest to the
/// inner service (the router).
#[derive(Clone)]
pub struct ShortcutLayer<R> {
    route: R,
}

impl<R> ShortcutLayer<R> {
    /// Calls whose route is `framed` go to `route`.
    pub fn new(route: R) -> Self {
        ShortcutLayer { route }
    }
}

impl<S, R: Clone> tower::Layer<S> for ShortcutLayer<R> {
    type Service = Shortcut<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        Shortcut { inner, route: self.route.clone() }
    }
}

/// See [`ShortcutLayer`].
#[derive(Clone)]
pub struct Shortcut<S, R> {
    inner: S,
    route: R,
}

impl<S, R> tower::Service<http::Request<Body>> for Shortcut<S, R>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>> + Clone,
    R: tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = S::Error> + Clone,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Either<R::Future, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Either may take the next call: both must be ready.
        if let Poll::Ready(r) = self.route.poll_ready(cx) {
            r?;
            self.inner.poll_ready(cx)
        } else {
            Poll::Pending
        }
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        // The one made ready by poll_ready takes the call; a fresh clone
        // stays behind (tower's pattern for Clone services).
        if Resolved::of(&req).route().is_some_and(|r| r.framed) {
            let clone = self.route.clone();
            Either::Left(std::mem::replace(&mut self.route, clone).call(req))
        } else {
            let clone = self.inner.clone();
            Either::Right(std::mem::replace(&mut self.inner, clone).call(req))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use tower::{Layer, ServiceExt};

    use super::*;

    fn answering(
        name: &'static str,
    ) -> impl tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible> + Clone {
        tower::service_fn(move |_req: http::Request<Body>| async move {
            let mut resp = http::Response::new(Body::empty());
            resp.headers_mut().insert("x-answered-by", http::HeaderValue::from_static(name));
            Ok::<_, Infallible>(resp)
        })
    }

    async fn answered_by(path: &str) -> String {
        let svc = ShortcutLayer::new(answering("route")).layer(answering("router"));
        let req = http::Request::builder().uri(path).header("content-type", "application/grpc");
        let resp = svc.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        resp.headers()["x-answered-by"].to_str().unwrap().to_owned()
    }

    #[tokio::test]
    async fn framed_routes_go_to_the_route_and_the_rest_to_the_router() {
        let fast = "/eligibility.v1.EligibilityService/Check";
        assert_eq!(answered_by(fast).await, "route");
        assert_eq!(answered_by("/eligibility.v1.EligibilityService/Watch").await, "route");
        assert_eq!(answered_by("/eligibility.v1.EligibilityService/ListLists").await, "router");
        // Exact paths only: a prefix or a longer path is the router's.
        assert_eq!(answered_by(&format!("{fast}/x")).await, "router");
        assert_eq!(answered_by(&fast[..fast.len() - 1]).await, "router");
    }
}
