//! The Prometheus recorder and the `/metrics` endpoint.
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

use std::sync::OnceLock;

use http_body_util::Full;
use hyper::{body::Bytes, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

use crate::lifecycle::Shutdown;

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
                .inspect(|_| describe())
        })
        .as_ref()
}

/// Every documented series, with its help text, and every counter and
/// gauge whose labels are known in advance at 0: dashboards and alerts see
/// them on an idle replica, before the first call.
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "eligibility_rpc_requests_total",
        "RPCs by method and final status code (a stream counts when it ends)"
    );
    describe_histogram!(
        "eligibility_rpc_duration_seconds",
        Unit::Seconds,
        "RPC duration by method: until the answer (unary) or the end of the stream"
    );
    describe_counter!("eligibility_checks_total", "Check and BatchCheck items answered, by decision");
    describe_counter!("eligibility_writes_total", "Write RPCs by outcome: recorded, replayed, noop, failed");
    describe_gauge!("eligibility_revision", "The head revision this replica serves");
    describe_gauge!("eligibility_watchers", "Watch streams open now");
    describe_counter!(
        "eligibility_watch_fallbacks_total",
        "Times a watcher fell behind the live feed and was served from the log"
    );
    describe_histogram!("eligibility_store_seconds", Unit::Seconds, "Store latency by operation (append, read)");
    describe_gauge!(
        "eligibility_replication_lag_seconds",
        "How far this replica is behind the store: 0 at the head; while catching up, the age of the newest changeset read"
    );
    describe_counter!("eligibility_resource_exhausted_total", "Requests and streams refused by a limit, by limit");
    describe_gauge!("eligibility_connections", "Client connections open now");
    describe_counter!(
        "eligibility_connections_refused_total",
        "Connections closed by a connection limit: max_connections, max_connections_per_address, handshake_timeout"
    );
    for reason in ["max_connections", "max_connections_per_address", "handshake_timeout"] {
        metrics::counter!("eligibility_connections_refused_total", "reason" => reason).absolute(0);
    }
    for decision in ["listed", "not_listed", "removed", "denylisted", "not_denylisted", "denylist_removed"] {
        metrics::counter!("eligibility_checks_total", "decision" => decision).absolute(0);
    }
    for outcome in ["recorded", "replayed", "noop", "failed"] {
        metrics::counter!("eligibility_writes_total", "outcome" => outcome).absolute(0);
    }
    describe_counter!(
        "eligibility_connections_idle_closed_total",
        "Connections closed after idle_timeout_ms with no request or stream in progress"
    );
    metrics::counter!("eligibility_connections_idle_closed_total").absolute(0);
    describe_gauge!(
        "eligibility_slow_consumer_bytes",
        Unit::Bytes,
        "Stream bytes handed to connections and not yet written to their sockets (the slow-consumer budget's measure)"
    );
    metrics::gauge!("eligibility_slow_consumer_bytes").set(0.0);
    describe_counter!(
        "eligibility_slow_consumers_cut_total",
        "Connections whose streams were ended because the server held more unsent stream bytes than its budget"
    );
    metrics::counter!("eligibility_slow_consumers_cut_total").absolute(0);
    describe_counter!(
        "eligibility_slow_consumers_closed_total",
        "Cut connections closed because they had not taken what they were sent within the grace period"
    );
    metrics::counter!("eligibility_slow_consumers_closed_total").absolute(0);
    for reason in [
        "concurrent_requests",
        "message_size",
        "watchers",
        "watchers_per_connection",
        "slow_consumer",
        "body_size",
        "body_time",
    ] {
        metrics::counter!("eligibility_resource_exhausted_total", "reason" => reason).absolute(0);
    }
    metrics::counter!("eligibility_watch_fallbacks_total").absolute(0);
    metrics::gauge!("eligibility_watchers").set(0.0);
    metrics::gauge!("eligibility_replication_lag_seconds").set(0.0);
}

/// Whether this process records metrics (a recorder was installed here).
pub fn installed() -> bool {
    HANDLE.get().is_some_and(Option::is_some)
}

/// Serves `GET /metrics` (Prometheus text format) until `shutdown`.
pub async fn serve(listener: TcpListener, shutdown: Shutdown) {
    let Some(handle) = handle() else { return };
    tracing::info!(addr = ?listener.local_addr().ok(), "serving metrics at /metrics");
    loop {
        let (stream, _) = tokio::select! {
            _ = shutdown.triggered() => return,
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

/// Counts a refusal by a limit (`resource_exhausted_total{reason}`).
pub fn exhausted(reason: &'static str) {
    metrics::counter!("eligibility_resource_exhausted_total", "reason" => reason).increment(1);
}
