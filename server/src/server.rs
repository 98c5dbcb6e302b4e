//! Serving: the gRPC router (services, health, reflection) on a bound
//! listener until a shutdown future completes.

use std::{future::Future, net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use eligibility::proto::v1::{
    admin_service_server::AdminServiceServer, eligibility_service_server::EligibilityServiceServer,
};
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;

use crate::{
    auth::{AuthConfig, Authenticator},
    error::{Error, Result},
    grpc::{AdminService, EligibilityRoute, EligibilityService},
    registry::{Limits, Registry},
    store::{PgOptions, PgStore, SqliteStore, Store},
    watch::WatchConfig,
};

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";
/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "./data";

/// What the server needs to start.
#[derive(Clone, Debug)]
pub struct Config {
    /// Directory of the embedded SQLite store.
    pub data_dir: PathBuf,
    /// Load the demo data into an empty store.
    pub demo: bool,
    /// Request limits.
    pub limits: Limits,
    /// Change-stream settings.
    pub watch: WatchConfig,
    /// HTTP/2 flow control and stream limits.
    pub http2: Http2Config,
    /// Use Postgres at this URL instead of the embedded store.
    pub database_url: Option<String>,
    /// Postgres pool settings.
    pub postgres: PgOptions,
    /// With Postgres: how often a replica re-reads the log even without a
    /// notification.
    pub tail_poll: Duration,
    /// Authentication.
    pub auth: AuthConfig,
    /// TLS (and mutual TLS); `None` serves plaintext.
    pub tls: Option<TlsFiles>,
    /// Serve Prometheus metrics here (`None`: off).
    pub metrics_listen: Option<SocketAddr>,
}

/// HTTP/2 settings of the server's connections.
///
/// Many Watch streams share one connection in a typical deployment (a
/// platform's services multiplex over a few channels). h2's default
/// connection window (64 KiB, or tonic's 512 KiB) makes thousands of
/// streams on one connection starve each other, and h2 guards against a
/// flood of small frames relative to that window by sending GOAWAY
/// `ENHANCE_YOUR_CALM`: about 2 000 Watch calls opened at once on one
/// connection trigger it. The defaults here are sized for 10 000 streams
/// over 4 connections (tested).
#[derive(Clone, Debug)]
pub struct Http2Config {
    /// Connection-level receive window, bytes.
    pub connection_window: u32,
    /// Per-stream receive window, bytes.
    pub stream_window: u32,
    /// Concurrent streams per connection.
    pub max_concurrent_streams: u32,
}

impl Default for Http2Config {
    fn default() -> Self {
        Http2Config { connection_window: 64 << 20, stream_window: 1 << 20, max_concurrent_streams: 20_000 }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            demo: false,
            limits: Limits::default(),
            watch: WatchConfig::default(),
            http2: Http2Config::default(),
            database_url: None,
            postgres: PgOptions::default(),
            tail_poll: Duration::from_secs(1),
            auth: AuthConfig::default(),
            tls: None,
            metrics_listen: None,
        }
    }
}

/// Opens the store and builds the registry (loading demo data if asked).
pub async fn open(config: &Config) -> Result<Arc<Registry>> {
    let store: Arc<dyn Store> = match &config.database_url {
        Some(url) => {
            Arc::new(PgStore::open(url, &config.postgres).await.map_err(|e| Error::Unavailable(e.to_string()))?)
        }
        None => Arc::new(SqliteStore::open(&config.data_dir).await.map_err(|e| Error::Unavailable(e.to_string()))?),
    };
    tracing::info!(store = %store.describe(), store_id = store.store_id(), "store opened");
    let registry = Registry::open(store, config.limits.clone(), config.watch.clone()).await?;
    if config.demo {
        if crate::demo::load(&registry).await? {
            tracing::info!(revision = registry.snapshot().revision().0, "demo data loaded (2021 cyber list)");
        } else {
            tracing::info!("store is not empty; demo data not loaded");
        }
    }
    tracing::info!(revision = registry.snapshot().revision().0, "registry loaded");
    Ok(registry)
}

/// Serves the gRPC API on `listener` until `shutdown` completes, then
/// finishes in-flight calls and closes the store.
pub async fn run(
    listener: TcpListener,
    registry: Arc<Registry>,
    config: &Config,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let http2 = &config.http2;
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    let auth = Authenticator::new(config.auth.clone()).map_err(Error::Config)?;
    if !auth.enabled() {
        tracing::warn!("no tokens file: authentication is off and anyone who can connect may write (development only)");
    }
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<EligibilityServiceServer<EligibilityService>>().await;
    health.set_serving::<AdminServiceServer<AdminService>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(eligibility::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| Error::Config(format!("reflection: {e}")))?;
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &config.tls {
        builder = builder.tls_config(tls.server_config()?).map_err(|e| Error::Config(format!("tls: {e}")))?;
    }
    let hub = registry.hub().clone();
    let metrics_task = match config.metrics_listen {
        Some(maddr) => {
            crate::metrics::handle();
            let l = TcpListener::bind(maddr)
                .await
                .map_err(|e| Error::Config(format!("cannot listen for metrics on {maddr}: {e}")))?;
            Some(tokio::spawn(crate::metrics::serve(l, hub.shutdown_signal())))
        }
        None => None,
    };
    tracing::info!(addr = ?addr, tls = config.tls.is_some(), mtls = config.tls.as_ref().is_some_and(|t| t.client_ca.is_some()), auth = auth.enabled(), "serving eligibility.v1");
    let activator = tokio::spawn(registry.clone().run_activator());
    let ticker = tokio::spawn(hub.clone().run_ticker());
    let tailer = tokio::spawn(registry.clone().run_tailer(config.tail_poll));
    let tokens = tokio::spawn(auth.clone().watch_file(Duration::from_secs(2), hub.shutdown_signal()));
    // Watch streams never end on their own: end them when shutdown starts,
    // so the graceful drain does not wait on them forever.
    let stop = hub.clone();
    let shutdown = async move {
        shutdown.await;
        tracing::info!("shutting down: ending watch streams, draining calls");
        stop.shutdown();
    };
    let max_msg = config.limits.max_message_bytes;
    let result = builder
        .initial_connection_window_size(http2.connection_window)
        .initial_stream_window_size(http2.stream_window)
        .max_concurrent_streams(http2.max_concurrent_streams)
        .concurrency_limit_per_connection(config.limits.concurrency_per_connection)
        .timeout(config.limits.request_timeout)
        .layer(crate::metrics::RpcLayer::new(config.limits.max_concurrent_requests))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(EligibilityRoute::new(EligibilityService::new(registry.clone(), auth.clone()), max_msg))
        .add_service(
            AdminServiceServer::new(AdminService::new(registry.clone(), auth.clone()))
                .max_decoding_message_size(max_msg),
        )
        // TCP_NODELAY: without it, small responses wait on delayed ACKs
        // (~40 ms per call on Linux).
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), shutdown)
        .await;
    registry.hub().shutdown();
    let _ = activator.await;
    let _ = ticker.await;
    let _ = tailer.await;
    let _ = tokens.await;
    if let Some(m) = metrics_task {
        let _ = m.await;
    }
    registry.store().close().await;
    tracing::info!("server stopped");
    result.map_err(|e| Error::Unavailable(format!("transport: {e}")))
}

/// TLS files.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// Server certificate chain (PEM).
    pub cert: PathBuf,
    /// Server private key (PEM).
    pub key: PathBuf,
    /// CA (PEM) that client certificates must chain to; when set, clients
    /// must present a certificate (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    fn server_config(&self) -> Result<tonic::transport::ServerTlsConfig> {
        let read =
            |p: &PathBuf| std::fs::read(p).map_err(|e| Error::Config(format!("cannot read {}: {e}", p.display())));
        let mut cfg = tonic::transport::ServerTlsConfig::new()
            .identity(tonic::transport::Identity::from_pem(read(&self.cert)?, read(&self.key)?));
        if let Some(ca) = &self.client_ca {
            cfg = cfg.client_ca_root(tonic::transport::Certificate::from_pem(read(ca)?)).client_auth_optional(false);
        }
        Ok(cfg)
    }
}
