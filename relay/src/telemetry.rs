//! Logs, and the metrics and health endpoint: `GET /metrics` (Prometheus
//! text) and `GET /healthz` (200 while every sink runs).

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode, body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::PrometheusBuilder;
use tokio::net::TcpListener;

/// Sets up logging.
pub fn logs(json: bool, level: &str) {
    let filter =
        tracing_subscriber::EnvFilter::try_new(level).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Installs the recorder and serves `/metrics` and `/healthz` on `addr`;
/// `healthy` turns false when a sink stops.
pub async fn serve(addr: SocketAddr, healthy: Arc<AtomicBool>) -> Result<(), crate::error::Error> {
    let handle = PrometheusBuilder::new().install_recorder()?;
    describe();
    let listener =
        TcpListener::bind(addr).await.map_err(|source| crate::error::Error::MetricsListen { addr, source })?;
    tracing::info!(addr = ?listener.local_addr().ok(), "serving /metrics and /healthz");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let (handle, healthy) = (handle.clone(), healthy.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let (handle, healthy) = (handle.clone(), healthy.clone());
                    async move {
                        let (status, body) = match req.uri().path() {
                            "/metrics" => (StatusCode::OK, handle.render()),
                            "/healthz" if healthy.load(Ordering::Relaxed) => (StatusCode::OK, "ok\n".to_owned()),
                            "/healthz" => (StatusCode::SERVICE_UNAVAILABLE, "a sink has stopped\n".to_owned()),
                            _ => (StatusCode::NOT_FOUND, "not found\n".to_owned()),
                        };
                        let mut resp = Response::new(Full::new(Bytes::from(body)));
                        *resp.status_mut() = status;
                        Ok::<_, std::convert::Infallible>(resp)
                    }
                });
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    Ok(())
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(
        "eligibility_relay_lag_revisions",
        "Per sink: the head revision seen minus the last revision delivered"
    );
    describe_gauge!("eligibility_relay_delivered_revision", "Per sink: the last revision delivered");
    describe_histogram!(
        "eligibility_relay_delivery_seconds",
        Unit::Seconds,
        "Per sink: from a changeset's commit on the server to its delivery (acknowledged by JetStream or the endpoint)"
    );
    describe_counter!("eligibility_relay_published_total", "Per sink: messages (NATS) or requests (webhook) delivered");
    describe_counter!(
        "eligibility_relay_webhook_failures_total",
        "Per webhook: attempts that failed and will be retried"
    );
}
