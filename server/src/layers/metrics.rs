//! Metrics and tracing as a layer: one span per RPC (carrying its trace
//! id) and, per method and status code, a request counter and a latency
//! histogram. Codes are read as `tonic::Code`s from the response.

use std::{
    pin::Pin,
    sync::OnceLock,
    task::{Context, Poll},
    time::Instant,
};

use tonic::{Code, body::Body};

use crate::{
    prometheus::installed,
    routes::{ROUTES, Resolved, Shape},
};

/// See the module docs.
#[derive(Clone, Default)]
pub struct MetricsLayer;

impl<S> tower::Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        MetricsService { inner }
    }
}

/// See [`MetricsLayer`].
#[derive(Clone)]
pub struct MetricsService<S> {
    inner: S,
}

impl<S, B> tower::Service<http::Request<B>> for MetricsService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        use tracing::Instrument;
        let resolved = Resolved::of(&req);
        let method = Method { label: resolved.label(), index: resolved.index() };
        let started = Instant::now();
        let span =
            crate::telemetry::rpc_span(method.label, req.headers().get("traceparent").and_then(|v| v.to_str().ok()));
        // The inner service was made ready by poll_ready; keep that one and
        // leave a fresh clone behind (the tower pattern for Clone services).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let stream = resolved.shape() != Shape::Unary;
        if stream {
            req.extensions_mut().insert(TallyOffer { method, started });
        }
        Box::pin(
            async move {
                let resp = inner.call(req).await?;
                if resp.extensions().get::<Tallied>().is_some() {
                    // The body keeps its own tally.
                    return Ok(resp);
                }
                match grpc_code(&resp) {
                    // A stream under way: counted, with its duration, by the
                    // status it ends with.
                    Some(Code::Ok) | None if stream => Ok(resp.map(|body| {
                        super::unmapped(Counted { inner: body, tally: Tally { method, started, done: false } })
                    })),
                    code => {
                        record(method, code.unwrap_or(Code::Ok), started);
                        Ok(resp)
                    }
                }
            }
            .instrument(span),
        )
    }
}

/// How many gRPC status codes there are (OK through UNAUTHENTICATED).
const CODES: usize = Code::Unauthenticated as usize + 1;

/// A request's `method` label and the index of its route (its metric
/// handles' place).
#[derive(Clone, Copy)]
struct Method {
    label: &'static str,
    index: usize,
}

/// Metric handles per (route, code), resolved once each: no labelled
/// lookup per call. The last row is for requests no route names.
struct Handles {
    counters: Vec<OnceLock<metrics::Counter>>,
    histograms: Vec<OnceLock<metrics::Histogram>>,
}

fn handles() -> &'static Handles {
    static H: OnceLock<Handles> = OnceLock::new();
    let rows = ROUTES.len() + 1;
    H.get_or_init(|| Handles {
        counters: (0..rows * CODES).map(|_| OnceLock::new()).collect(),
        histograms: (0..rows).map(|_| OnceLock::new()).collect(),
    })
}

fn record(method: Method, code: Code, started: Instant) {
    if !installed() {
        return;
    }
    let (label, m) = (method.label, method.index);
    let h = handles();
    h.counters[m * CODES + (code as usize).min(CODES - 1)]
        .get_or_init(
            || metrics::counter!("eligibility_rpc_requests_total", "method" => label, "code" => crate::problem::code_name(code)),
        )
        .increment(1);
    h.histograms[m]
        .get_or_init(|| metrics::histogram!("eligibility_rpc_duration_seconds", "method" => label))
        .record(started.elapsed().as_secs_f64());
}

/// The status of a response that carries it in its headers (errors are
/// "trailers-only" responses) or, over HTTP/JSON, with its problem;
/// `None` when it will come in the trailers (or an HTTP answer succeeded).
fn grpc_code(resp: &http::Response<Body>) -> Option<Code> {
    match resp.headers().get("grpc-status") {
        Some(v) => Some(Code::from_bytes(v.as_bytes())),
        // An HTTP/JSON problem carries its code as an extension.
        None => resp.extensions().get::<Code>().copied(),
    }
}

/// A streaming call's record: its duration and status, recorded once,
/// when the stream ends, or as CANCELLED when it is dropped before its end
/// (the client went away).
pub struct Tally {
    method: Method,
    started: Instant,
    done: bool,
}

impl Tally {
    /// Records the stream's end with `code` (the first call only).
    pub fn finish(&mut self, code: Code) {
        if !std::mem::replace(&mut self.done, true) {
            record(self.method, code, self.started);
        }
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        self.finish(Code::Cancelled);
    }
}

/// What the metrics layer puts in a streaming call's request extensions.
/// A handler whose response body can keep the [`Tally`] itself takes it
/// ([`TallyOffer::accept`]) and marks its response [`Tallied`]; the layer
/// then leaves that body as it is. Any other stream is wrapped once more,
/// in a body that reads its end from the frames it passes on: for the
/// Watch stream, polled for every watcher on every change, that wrapper is
/// one more allocation to reach per watcher.
#[derive(Clone, Copy)]
pub struct TallyOffer {
    method: Method,
    started: Instant,
}

impl TallyOffer {
    /// The tally, for the response body to finish; the response must carry
    /// [`Tallied`] in its extensions.
    pub fn accept(self) -> Tally {
        Tally { method: self.method, started: self.started, done: false }
    }
}

/// Marks a response whose body keeps its own [`Tally`].
#[derive(Clone, Copy)]
pub struct Tallied;

/// A streaming response's body, recorded when it ends: with the status of
/// its trailers, of its error, or CANCELLED when it is dropped before its
/// end.
struct Counted {
    inner: Body,
    tally: Tally,
}

impl http_body::Body for Counted {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<bytes::Bytes>, tonic::Status>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref() {
                    let code = trailers.get("grpc-status").map(|v| Code::from_bytes(v.as_bytes()));
                    self.tally.finish(code.unwrap_or(Code::Unknown));
                }
            }
            Poll::Ready(Some(Err(status))) => {
                let code = status.code();
                self.tally.finish(code);
            }
            Poll::Ready(None) => self.tally.finish(Code::Ok),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
