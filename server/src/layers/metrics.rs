//! Metrics and tracing as a layer: one span per RPC (carrying its trace
//! id) and, per method and status code, a request counter and a latency
//! histogram. Codes are read as `tonic::Code`s from the response.

use std::{
    pin::Pin,
    sync::OnceLock,
    task::{Context, Poll},
    time::Instant,
};

use tonic::Code;

use crate::exporter::installed;

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
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        use tracing::Instrument;
        let method = method_label(req.uri().path());
        let started = Instant::now();
        let span = crate::telemetry::rpc_span(method, req.headers().get("traceparent").and_then(|v| v.to_str().ok()));
        // The inner service was made ready by poll_ready; keep that one and
        // leave a fresh clone behind (the tower pattern for Clone services).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(
            async move {
                let resp = inner.call(req).await?;
                record(method, grpc_code(&resp), started);
                Ok(resp)
            }
            .instrument(span),
        )
    }
}

/// How many gRPC status codes there are (OK through UNAUTHENTICATED).
const CODES: usize = Code::Unauthenticated as usize + 1;

/// Metric handles per (method, code), resolved once each: no labelled
/// lookup per call.
struct Handles {
    counters: Vec<OnceLock<metrics::Counter>>,
    histograms: Vec<OnceLock<metrics::Histogram>>,
}

fn handles() -> &'static Handles {
    static H: OnceLock<Handles> = OnceLock::new();
    H.get_or_init(|| Handles {
        counters: (0..METHODS.len() * CODES).map(|_| OnceLock::new()).collect(),
        histograms: (0..METHODS.len()).map(|_| OnceLock::new()).collect(),
    })
}

fn record(method: &'static str, code: Code, started: Instant) {
    if !installed() {
        return;
    }
    let m = METHODS.iter().position(|k| *k == method).unwrap_or(METHODS.len() - 1);
    let h = handles();
    h.counters[m * CODES + (code as usize).min(CODES - 1)]
        .get_or_init(
            || metrics::counter!("eligibility_rpc_requests_total", "method" => method, "code" => code_label(code)),
        )
        .increment(1);
    h.histograms[m]
        .get_or_init(|| metrics::histogram!("eligibility_rpc_duration_seconds", "method" => method))
        .record(started.elapsed().as_secs_f64());
}

/// The status of a response that carries it in its headers (errors are
/// "trailers-only" responses); otherwise OK so far.
fn grpc_code(resp: &http::Response<tonic::body::Body>) -> Code {
    resp.headers().get("grpc-status").map(|v| Code::from_bytes(v.as_bytes())).unwrap_or(Code::Ok)
}

/// The `method` label values: a bounded set (never the raw path).
const METHODS: &[&str] = &[
    "Check",
    "BatchCheck",
    "ListEntries",
    "ListLists",
    "GetList",
    "History",
    "Diff",
    "Watch",
    "CreateList",
    "UpdateList",
    "Apply",
    "ReplaceMembers",
    "ServerReflectionInfo",
    "health.Check",
    "health.Watch",
    "other",
];

/// The label value of a request path.
fn method_label(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or("");
    if path.starts_with("/grpc.health.v1.Health/") {
        return if name == "Watch" { "health.Watch" } else { "health.Check" };
    }
    // Our methods' names are the labels (the "health." ones cannot match a
    // bare method name).
    METHODS.iter().find(|k| **k == name).copied().unwrap_or("other")
}

fn code_label(c: Code) -> &'static str {
    match c {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
