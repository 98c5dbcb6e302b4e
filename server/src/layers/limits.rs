//! Limits as a layer: unary calls in flight server-wide (more are shed
//! with `RESOURCE_EXHAUSTED`, so a flood is refused rather than queued),
//! and the size of a request message, read from its gRPC length prefix
//! before the message itself (`RESOURCE_EXHAUSTED`, the gRPC convention
//! and what clients retry on; tonic's own check says `OUT_OF_RANGE`, which
//! this API uses for revisions beyond the head).

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
};

use bytes::{Buf, Bytes, BytesMut};
use http_body::Frame;
use http_body_util::BodyExt;
use tonic::{Status, body::Body};

use eligibility::GRPC_PREFIX;

use crate::{
    budget::Active,
    lifecycle::Shutdown,
    prometheus::exhausted,
    routes::{Resolved, Shape},
};

/// Whether a request's body is gRPC-framed (a 5-byte prefix per message):
/// gRPC, and binary gRPC-Web; not gRPC-Web's base64 text form, not JSON.
fn grpc_framed(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/grpc") && !ct.starts_with("application/grpc-web-text"))
}

/// See the module docs.
#[derive(Clone)]
pub struct LimitsLayer {
    inflight: Arc<AtomicUsize>,
    max_inflight: usize,
    max_message: usize,
    shutdown: Shutdown,
}

impl LimitsLayer {
    /// At most `max_inflight` unary calls in progress at once; request
    /// messages of at most `max_message` bytes; streams of other services
    /// (health's Watch, reflection) end at `shutdown`.
    pub fn new(max_inflight: usize, max_message: usize, shutdown: Shutdown) -> Self {
        LimitsLayer { inflight: Arc::new(AtomicUsize::new(0)), max_inflight, max_message, shutdown }
    }
}

impl<S> tower::Layer<S> for LimitsLayer {
    type Service = LimitsService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        LimitsService { inner, layer: self.clone() }
    }
}

/// See [`LimitsLayer`].
#[derive(Clone)]
pub struct LimitsService<S> {
    inner: S,
    layer: LimitsLayer,
}

struct InflightGuard(Option<Arc<AtomicUsize>>);

impl Drop for InflightGuard {
    fn drop(&mut self) {
        if let Some(c) = &self.0 {
            c.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl<S> tower::Service<http::Request<Body>> for LimitsService<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        // Long-lived streams are limited elsewhere (watcher limits), not here.
        let shape = Resolved::of(&req).shape();
        let stream = shape != Shape::Unary;
        // The change streams keep their connection busy themselves (their
        // `crate::budget::Consumer`) and end at shutdown, with no body layer
        // more to poll per event; other streams (health's Watch, reflection)
        // are wrapped to do both.
        let wrap = shape == Shape::Stream;
        let guard = if stream {
            InflightGuard(None)
        } else {
            let n = self.layer.inflight.fetch_add(1, Ordering::Relaxed) + 1;
            let guard = InflightGuard(Some(self.layer.inflight.clone()));
            if n > self.layer.max_inflight {
                exhausted("concurrent_requests");
                let status = Status::resource_exhausted(format!(
                    "the server is at its limit of {} concurrent requests; retry with backoff",
                    self.layer.max_inflight
                ));
                let refusal = crate::problem::refusal(status, crate::problem::is_grpc(req.headers()));
                return Box::pin(async move {
                    drop(guard);
                    Ok(refusal)
                });
            }
            guard
        };
        // The connection is busy until the answer is ready, or, for a
        // stream, until its body ends: the idle timeout counts from then.
        let busy = crate::conns::info(req.extensions()).map(|c| c.ledger.begin());
        // Only gRPC framing has a prefix to read; other bodies are limited
        // by their own surface.
        let max = grpc_framed(req.headers()).then_some(self.layer.max_message);
        // The inner service was made ready by poll_ready; keep that one and
        // leave a fresh clone behind (the tower pattern for Clone services).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shutdown = self.layer.shutdown.clone();
        Box::pin(async move {
            let req = match max {
                Some(max) => {
                    let (parts, body) = req.into_parts();
                    match check_size(body, max).await {
                        Ok(body) => http::Request::from_parts(parts, body),
                        Err(status) => {
                            exhausted("message_size");
                            return Ok(status.into_http());
                        }
                    }
                }
                None => req,
            };
            let resp = inner.call(req).await;
            drop(guard);
            if !wrap {
                return resp;
            }
            resp.map(|r| {
                r.map(|body| {
                    let ends = Box::pin(shutdown.triggered());
                    super::unmapped(Stream { body: Some(body), ends, _busy: busy })
                })
            })
        })
    }
}

/// Another service's stream (health's Watch, reflection): keeps its
/// connection busy (not idle) while it lasts, and ends with `UNAVAILABLE`
/// when the server shuts down, so that the drain does not wait for it.
struct Stream {
    body: Option<Body>,
    ends: Pin<Box<dyn Future<Output = ()> + Send>>,
    _busy: Option<Active>,
}

impl http_body::Body for Stream {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let Some(body) = self.body.as_mut() else { return Poll::Ready(None) };
        if let Poll::Ready(frame) = Pin::new(body).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        if self.ends.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.body = None;
        let mut trailers = http::HeaderMap::new();
        let _ = Status::unavailable("the server is shutting down; reconnect to another replica or after its restart")
            .add_header(&mut trailers);
        Poll::Ready(Some(Ok(Frame::trailers(trailers))))
    }

    fn is_end_stream(&self) -> bool {
        self.body.as_ref().is_none_or(http_body::Body::is_end_stream)
    }
}

/// Reads a request body up to its first message's 5-byte prefix and
/// refuses a message over `max` bytes before reading it; otherwise hands
/// on a body that yields what was read, then the rest.
async fn check_size(mut body: Body, max: usize) -> Result<Body, Status> {
    let mut head = Bytes::new();
    let mut trailers = None;
    let mut error = None;
    while head.len() < GRPC_PREFIX {
        match body.frame().await {
            Some(Ok(frame)) => match frame.into_data() {
                // The common case, a whole message in the first frame, is
                // kept as it is; only a prefix split across frames is copied.
                Ok(data) if head.is_empty() => head = data,
                Ok(data) => {
                    let mut joined = BytesMut::from(&head[..]);
                    joined.extend_from_slice(&data);
                    head = joined.freeze();
                }
                Err(frame) => {
                    trailers = Some(frame);
                    break;
                }
            },
            // An error or the end: the service reports it as it would.
            Some(Err(e)) => {
                error = Some(e);
                break;
            }
            None => break,
        }
    }
    if head.len() >= GRPC_PREFIX {
        let len = (&head[1..GRPC_PREFIX]).get_u32() as usize;
        if len > max {
            return Err(Status::resource_exhausted(format!(
                "the request message is {len} bytes; the limit is {max} bytes"
            )));
        }
    }
    let rest = (trailers.is_none() && error.is_none()).then_some(body);
    Ok(super::unmapped(Replay { head, trailers, error, rest }))
}

/// A body that yields `head`, then `trailers` or `error` if one ended the
/// read, then the `rest`.
struct Replay {
    head: Bytes,
    trailers: Option<Frame<Bytes>>,
    error: Option<Status>,
    rest: Option<Body>,
}

impl http_body::Body for Replay {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        if !self.head.is_empty() {
            let head = std::mem::take(&mut self.head);
            return Poll::Ready(Some(Ok(Frame::data(head))));
        }
        if let Some(t) = self.trailers.take() {
            return Poll::Ready(Some(Ok(t)));
        }
        if let Some(e) = self.error.take() {
            return Poll::Ready(Some(Err(e)));
        }
        match self.rest.as_mut() {
            Some(rest) => Pin::new(rest).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.head.is_empty()
            && self.trailers.is_none()
            && self.error.is_none()
            && self.rest.as_ref().is_none_or(http_body::Body::is_end_stream)
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::StreamBody;

    use super::*;

    fn body(chunks: &[&[u8]]) -> Body {
        let frames: Vec<Result<Frame<Bytes>, Status>> =
            chunks.iter().map(|c| Ok(Frame::data(Bytes::copy_from_slice(c)))).collect();
        Body::new(StreamBody::new(tokio_stream::iter(frames)))
    }

    #[test]
    fn only_grpc_framed_bodies_have_a_prefix_to_check() {
        let with = |ct: &str| {
            let mut h = http::HeaderMap::new();
            h.insert(http::header::CONTENT_TYPE, ct.parse().unwrap());
            grpc_framed(&h)
        };
        assert!(with("application/grpc") && with("application/grpc+proto") && with("application/grpc-web+proto"));
        assert!(!with("application/json") && !with("application/grpc-web-text") && !with("text/event-stream"));
        assert!(!grpc_framed(&http::HeaderMap::new()));
    }

    #[tokio::test]
    async fn an_oversized_message_is_refused_by_its_prefix_and_others_pass_whole() {
        let err = check_size(body(&[&[0, 0, 0], &[4, 1]]), 1024).await.expect_err("1025 > 1024");
        assert_eq!(err.code(), tonic::Code::ResourceExhausted);
        let message = [0, 0, 0, 0, 3, b'a', b'b', b'c'];
        let passed = check_size(body(&[&message[..2], &message[2..]]), 1024).await.expect("small");
        assert_eq!(passed.collect().await.unwrap().to_bytes(), Bytes::copy_from_slice(&message));
        let whole = check_size(body(&[&message]), 1024).await.expect("small, in one frame");
        assert_eq!(whole.collect().await.unwrap().to_bytes(), Bytes::copy_from_slice(&message));
        let empty = check_size(body(&[]), 1024).await.expect("empty passes on");
        assert!(empty.collect().await.unwrap().to_bytes().is_empty());
    }
}
