//! Prometheus metrics: the recorder, the `/metrics` endpoint, and the
//! tower layer that counts and times every RPC and enforces the request
//! limits with `RESOURCE_EXHAUSTED`.
//!
//! Series (all prefixed `eligibility_`):
//! - `rpc_requests_total{method,code}`, `rpc_duration_seconds{method}`
//! - `checks_total{decision}`: every Check/BatchCheck item, by decision
//! - `writes_total{outcome}`: recorded, replayed, noop, failed
//! - `revision`: the head this replica serves
//! - `watchers`, `watch_fallbacks_total`: open streams, and times a slow
//!   watcher was served from the log
//! - `store_seconds{op}`: store latency by operation
//! - `replication_lag_seconds`: with Postgres, how long after its commit a
//!   changeset written elsewhere reached this replica
//! - `resource_exhausted_total{reason}`: refused by a limit

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Instant,
};

use http_body_util::Full;
use hyper::{body::Bytes, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tonic::{Code, Status};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder (once) and returns its handle; `None`
/// if another recorder was installed first.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets(&[
                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ])
                .ok()?
                .install_recorder()
                .map_err(|e| tracing::warn!(error = %e, "cannot install the metrics recorder"))
                .ok()
        })
        .as_ref()
}

/// Whether this process records metrics (a recorder was installed here).
pub fn installed() -> bool {
    HANDLE.get().is_some_and(Option::is_some)
}

/// Serves `GET /metrics` (Prometheus text format) until `stop` completes.
pub async fn serve(listener: TcpListener, mut stop: tokio::sync::watch::Receiver<bool>) {
    let Some(handle) = handle() else { return };
    tracing::info!(addr = ?listener.local_addr().ok(), "serving metrics at /metrics");
    loop {
        let (stream, _) = tokio::select! {
            _ = crate::watch::stopped(&mut stop) => return,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(_) => continue,
            },
        };
        tokio::spawn(async move {
            let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| async move {
                let resp = if req.uri().path() == "/metrics" {
                    hyper::Response::builder()
                        .header("content-type", "text/plain; version=0.0.4")
                        .body(Full::new(Bytes::from(handle.render())))
                } else {
                    hyper::Response::builder().status(404).body(Full::new(Bytes::from_static(b"see /metrics\n")))
                };
                Ok::<_, std::convert::Infallible>(resp.expect("static response parts"))
            });
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}

/// Counts an event with a refusal reason.
pub fn exhausted(reason: &'static str) {
    metrics::counter!("eligibility_resource_exhausted_total", "reason" => reason).increment(1);
}

/// The RPC layer: metrics, an in-flight limit for unary calls (shed with
/// `RESOURCE_EXHAUSTED`), and `RESOURCE_EXHAUSTED` for oversized messages
/// (tonic reports those as `OUT_OF_RANGE`; the gRPC convention, and what
/// clients retry on, is `RESOURCE_EXHAUSTED`).
#[derive(Clone)]
pub struct RpcLayer {
    inflight: Arc<AtomicUsize>,
    max_inflight: usize,
}

impl RpcLayer {
    /// At most `max_inflight` unary calls in progress at once.
    pub fn new(max_inflight: usize) -> Self {
        RpcLayer { inflight: Arc::new(AtomicUsize::new(0)), max_inflight }
    }
}

impl<S> tower::Layer<S> for RpcLayer {
    type Service = RpcService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RpcService { inner, inflight: self.inflight.clone(), max_inflight: self.max_inflight }
    }
}

/// See [`RpcLayer`].
#[derive(Clone)]
pub struct RpcService<S> {
    inner: S,
    inflight: Arc<AtomicUsize>,
    max_inflight: usize,
}

/// Long-lived streams are limited elsewhere (watcher limits), not here.
fn is_stream(path: &str) -> bool {
    path.ends_with("/Watch") || path.ends_with("/ServerReflectionInfo")
}

struct InflightGuard(Option<Arc<AtomicUsize>>);

impl Drop for InflightGuard {
    fn drop(&mut self) {
        if let Some(c) = &self.0 {
            c.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl<S, B> tower::Service<http::Request<B>> for RpcService<S>
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
        let guard = if is_stream(req.uri().path()) {
            InflightGuard(None)
        } else {
            let n = self.inflight.fetch_add(1, Ordering::Relaxed) + 1;
            let guard = InflightGuard(Some(self.inflight.clone()));
            if n > self.max_inflight {
                exhausted("concurrent_requests");
                record(method, Code::ResourceExhausted, started);
                let status = Status::resource_exhausted(format!(
                    "the server is at its limit of {} concurrent requests; retry with backoff",
                    self.max_inflight
                ));
                return Box::pin(async move {
                    drop(guard);
                    Ok(status.into_http())
                });
            }
            guard
        };
        // The inner service was made ready by poll_ready; keep that one and
        // leave a fresh clone behind (the tower pattern for Clone services).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(
            async move {
                let mut resp = inner.call(req).await?;
                drop(guard);
                let code = grpc_code(&resp);
                let code = if code == Code::OutOfRange && oversized(&resp) {
                    exhausted("message_size");
                    let h = resp.headers_mut();
                    h.insert("grpc-status", http::HeaderValue::from_static("8"));
                    Code::ResourceExhausted
                } else {
                    code
                };
                record(method, code, started);
                Ok(resp)
            }
            .instrument(span),
        )
    }
}

/// Metric handles per (method, code), resolved once each: no labelled
/// lookup per call.
struct Handles {
    counters: Vec<OnceLock<metrics::Counter>>,
    histograms: Vec<OnceLock<metrics::Histogram>>,
}

fn handles() -> &'static Handles {
    static H: OnceLock<Handles> = OnceLock::new();
    H.get_or_init(|| Handles {
        counters: (0..METHODS.len() * 17).map(|_| OnceLock::new()).collect(),
        histograms: (0..METHODS.len()).map(|_| OnceLock::new()).collect(),
    })
}

fn record(method: &'static str, code: Code, started: Instant) {
    if !installed() {
        return;
    }
    let m = METHODS.iter().position(|k| *k == method).unwrap_or(METHODS.len() - 1);
    let h = handles();
    h.counters[m * 17 + (code as usize).min(16)]
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
    resp.headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map(Code::from)
        .unwrap_or(Code::Ok)
}

fn oversized(resp: &http::Response<tonic::body::Body>) -> bool {
    resp.headers()
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|m| m.contains("message length too large") || m.contains("message%20length%20too%20large"))
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
