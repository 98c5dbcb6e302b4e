//! Cross-origin requests from browsers (the HTTP/JSON API, the event
//! stream, gRPC-Web): allowed for the configured origins only (default:
//! none). A preflight (`OPTIONS` with `Access-Control-Request-Method`) is
//! answered here, before authentication: browsers send it without
//! credentials. The verbs it allows are the route table's.
//!
//! Why not `tower_http::cors::CorsLayer`: tower-http is not in the build
//! (tonic and axum do not pull it in), and it would answer a preflight
//! from an origin that is not allowed `200` with no CORS headers, where
//! this answers `403`, which a browser's console, the access log and the
//! RPC metrics all show as a refusal; for the common case (no `Origin`:
//! every non-browser call) this passes the inner future through unboxed.

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use futures_util::future::{Either, Ready, ready};
use http::{HeaderValue, Method, StatusCode, header};
use tonic::body::Body;

/// The verbs a preflight is told it may use: the HTTP API's, from the
/// route table (gRPC-Web is POST, which the API takes too).
static ALLOW_METHODS: std::sync::LazyLock<HeaderValue> = std::sync::LazyLock::new(|| {
    HeaderValue::from_str(&crate::routes::http_verbs()).unwrap_or(HeaderValue::from_static("GET, POST, OPTIONS"))
});

/// Response headers a browser script may read.
const EXPOSE: &str = "etag, grpc-status, grpc-message, grpc-status-details-bin, content-type";

/// See the module docs.
#[derive(Clone, Default)]
pub struct CorsLayer {
    origins: Arc<Vec<String>>,
}

impl CorsLayer {
    /// Allows these origins (`*`: any).
    pub fn new(origins: Vec<String>) -> Self {
        CorsLayer { origins: Arc::new(origins) }
    }

    fn allows(&self, origin: &str) -> bool {
        self.origins.iter().any(|o| o == "*" || o == origin)
    }
}

impl<S> tower::Layer<S> for CorsLayer {
    type Service = CorsService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        CorsService { inner, layer: self.clone() }
    }
}

/// See [`CorsLayer`].
#[derive(Clone)]
pub struct CorsService<S> {
    inner: S,
    layer: CorsLayer,
}

impl<S> tower::Service<http::Request<Body>> for CorsService<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    // No origin (every non-browser call): the inner future as it is, no
    // allocation; a browser's call: wrapped to add the CORS headers.
    type Future = Either<Ready<Result<Self::Response, Self::Error>>, Either<S::Future, CorsFuture<S::Future>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let origin = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let allowed = origin.filter(|o| self.layer.allows(o));
        if req.method() == Method::OPTIONS && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD) {
            return Either::Left(ready(Ok(preflight(allowed.as_deref(), req.headers()))));
        }
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        match allowed {
            None => Either::Right(Either::Left(inner.call(req))),
            Some(origin) => {
                Either::Right(Either::Right(CorsFuture { inner: Box::pin(inner.call(req)), origin: Some(origin) }))
            }
        }
    }
}

/// The answer to a preflight: 204 with what may be sent, or 403 for an
/// origin that is not allowed.
fn preflight(origin: Option<&str>, headers: &http::HeaderMap) -> http::Response<Body> {
    let mut resp = http::Response::new(Body::empty());
    let Some(origin) = origin.and_then(|o| HeaderValue::from_str(o).ok()) else {
        *resp.status_mut() = StatusCode::FORBIDDEN;
        return resp;
    };
    *resp.status_mut() = StatusCode::NO_CONTENT;
    let h = resp.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(header::VARY, HeaderValue::from_static("origin"));
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, ALLOW_METHODS.clone());
    let asked = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS).cloned();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        asked.unwrap_or(HeaderValue::from_static("authorization, content-type, idempotency-key, if-match, if-none-match, last-event-id, x-grpc-web, x-user-agent, grpc-timeout")),
    );
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    resp
}

/// The inner answer, with the CORS headers for an allowed origin.
pub struct CorsFuture<F> {
    inner: std::pin::Pin<Box<F>>,
    origin: Option<String>,
}

impl<F, E> Future for CorsFuture<F>
where
    F: Future<Output = Result<http::Response<Body>, E>>,
{
    type Output = F::Output;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let polled = self.inner.as_mut().poll(cx);
        match polled {
            Poll::Ready(Ok(mut resp)) => {
                if let Some(origin) = self.origin.take().and_then(|o| HeaderValue::from_str(&o).ok()) {
                    let h = resp.headers_mut();
                    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
                    h.insert(header::VARY, HeaderValue::from_static("origin"));
                    h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSE));
                }
                Poll::Ready(Ok(resp))
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use tower::{Layer, ServiceExt};

    use super::*;

    async fn send(layer: &CorsLayer, method: &str, origin: Option<&str>, preflight: bool) -> http::Response<Body> {
        let inner = tower::service_fn(|_req: http::Request<Body>| async {
            Ok::<_, Infallible>(http::Response::new(Body::empty()))
        });
        let mut req = http::Request::builder().method(method).uri("http://x/v1/lists");
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        if preflight {
            req = req.header("access-control-request-method", "POST");
        }
        layer.layer(inner).oneshot(req.body(Body::empty()).unwrap()).await.unwrap()
    }

    #[tokio::test]
    async fn only_configured_origins_are_allowed() {
        let none = CorsLayer::default();
        let resp = send(&none, "GET", Some("https://app.example"), false).await;
        assert!(resp.headers().get("access-control-allow-origin").is_none(), "default: no origin");
        assert_eq!(send(&none, "OPTIONS", Some("https://app.example"), true).await.status(), 403);
        let some = CorsLayer::new(vec!["https://app.example".into()]);
        let resp = send(&some, "GET", Some("https://app.example"), false).await;
        assert_eq!(resp.headers()["access-control-allow-origin"], "https://app.example");
        assert!(resp.headers()["access-control-expose-headers"].to_str().unwrap().contains("etag"));
        let pre = send(&some, "OPTIONS", Some("https://app.example"), true).await;
        assert_eq!(pre.status(), 204);
        assert!(pre.headers()["access-control-allow-methods"].to_str().unwrap().contains("POST"));
        let other = send(&some, "GET", Some("https://evil.example"), false).await;
        assert!(other.headers().get("access-control-allow-origin").is_none());
    }
}
