//! Serving, from bind to answer: [`serve`] (what the binary and the test
//! harness run) answers `NOT_SERVING` while [`open`] loads the application
//! from its store, then [`run`]s it on the same listener, with its layers
//! and background tasks, until a shutdown future completes.

use std::{future::Future, sync::Arc, time::Duration};

use eligibility::proto::v1::{
    admin_service_server::AdminServiceServer, eligibility_service_server::EligibilityServiceServer,
};
use tokio::net::TcpListener;
use tonic::{
    service::Routes,
    transport::server::{Router, TcpIncoming},
};
use tonic_reflection::pb::{
    v1::server_reflection_server::ServerReflectionServer,
    v1alpha::server_reflection_server::ServerReflectionServer as AlphaServer,
};
use tower::layer::util::{Identity, Stack};

pub use crate::config::{Config, DEFAULT_DATA_DIR, DEFAULT_LISTEN, Http2Config, TlsFiles};
use crate::{
    app::App,
    error::{Error, Result},
    grpc::{
        AdminService, EligibilityService, Framed,
        reflection::{Descriptors, ReflectionV1, ReflectionV1Alpha},
    },
    identity::Authenticator,
    layers::{
        auth::AuthLayer, cors::CorsLayer, grpc_web::WebLayer, limits::LimitsLayer, metrics::MetricsLayer,
        shortcut::ShortcutLayer,
    },
    lifecycle::Tasks,
    routes::RouteLayer,
    store::{PgStore, SqliteStore, Store},
};

/// Serves on `listener` from bind to answer until `shutdown` completes:
/// while the store opens and the registry loads, the port answers health
/// `NOT_SERVING` (see [`crate::startup`]); then it serves the registry
/// ([`run`]). What the binary runs, and what the test harness runs.
pub async fn serve(listener: TcpListener, config: &Config, shutdown: impl Future<Output = ()>) -> Result<()> {
    start(listener, config).await?.run(config, shutdown).await
}

/// A loaded application with its listener, ready to [`Started::run`].
pub struct Started {
    /// The application (tests read its registry).
    pub app: Arc<App>,
    listener: TcpListener,
}

/// The first half of [`serve`]: answers `NOT_SERVING` on `listener` while
/// the application opens, then takes the listener back.
pub async fn start(listener: TcpListener, config: &Config) -> Result<Started> {
    let loading = crate::startup::serve_while_loading(listener);
    let opened = open(config).await;
    let listener = loading
        .finish()
        .await
        .map_err(|e| Error::Unavailable(format!("cannot take the listener back from the loading server: {e}")))?;
    Ok(Started { app: opened?, listener })
}

impl Started {
    /// Serves until `shutdown` completes (see [`run`]).
    pub async fn run(self, config: &Config, shutdown: impl Future<Output = ()>) -> Result<()> {
        run(self.listener, self.app, config, shutdown).await
    }
}

/// Opens the store and builds the application (loading demo data if
/// asked). The metrics recorder, if metrics are served, is installed
/// first, so what the load sets (the revision) is recorded.
pub async fn open(config: &Config) -> Result<Arc<App>> {
    if config.metrics_listen.is_some() {
        crate::prometheus::handle();
    }
    let store: Arc<dyn Store> = match &config.database_url {
        Some(url) => {
            Arc::new(PgStore::open(url, &config.postgres).await.map_err(|e| Error::Unavailable(e.to_string()))?)
        }
        None => Arc::new(SqliteStore::open(&config.data_dir).await.map_err(|e| Error::Unavailable(e.to_string()))?),
    };
    tracing::info!(store = %store.describe(), store_id = store.store_id(), "store opened");
    let app = App::open(store, config.limits.clone(), config.watch.clone()).await?;
    if config.demo {
        if crate::demo::load(&app.writer, &app.registry).await? {
            tracing::info!(revision = app.registry.head().0, "demo data loaded (2021 cyber list)");
        } else {
            tracing::info!("store is not empty; demo data not loaded");
        }
    }
    tracing::info!(revision = app.registry.head().0, "registry loaded");
    release_load_memory();
    Ok(app)
}

/// Loading decodes the whole log in batches on several threads; glibc's
/// malloc keeps what they freed in per-thread arenas, which would stay in
/// the process's RSS for good. Trimming once after the load returns it.
fn release_load_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks and trims the allocator's own free
    // lists; it is safe to call at any time from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Serves the gRPC API, gRPC-Web, the HTTP/JSON API and the console on
/// `listener` until `shutdown` completes, then ends the watch streams,
/// finishes in-flight calls (closing the connections still open when the
/// drain time is up), stops the background tasks and closes the store.
pub async fn run(
    listener: TcpListener,
    app: Arc<App>,
    config: &Config,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    // The address as a plain `host:port` in the log (a supervisor or a
    // test reads it from there when the port was 0).
    let addr = listener.local_addr().map_or_else(|_| "unknown".to_owned(), |a| a.to_string());
    let auth = authenticator(config)?;
    let mut tasks = Tasks::new(app.shutdown_token().clone());
    serve_metrics(config, &mut tasks).await?;
    let router = router(config, &app, &auth).await?;
    tracing::info!(%addr, tls = config.tls.is_some(), mtls = config.tls.as_ref().is_some_and(|t| t.client_ca.is_some()), auth = auth.enabled(), "serving eligibility.v1");
    start_background(&mut tasks, &app, &auth, config);
    // TCP_NODELAY: without it, small responses wait on delayed ACKs (~40 ms
    // per call on Linux).
    let budget = crate::budget::Budget::new(config.budget.clone());
    let incoming = crate::conns::guard(
        TcpIncoming::from(listener).with_nodelay(Some(true)),
        config.connections.clone(),
        budget.clone(),
    );
    // Watch streams never end on their own: they are ended when shutdown
    // starts (the app's token), so the graceful drain does not wait on them.
    let stopping = app.clone();
    let started = async move {
        shutdown.await;
        tracing::info!("shutting down: ending watch streams, draining calls");
        stopping.shutdown();
    };
    let served = drain(router.serve_with_incoming_shutdown(incoming, started), &app, &budget, config.connections.drain);
    let result = served.await;
    if result.is_err() {
        // Serving failed before shutdown started: end the streams too.
        app.shutdown();
    }
    tasks.join().await;
    app.registry.store().close().await;
    tracing::info!("server stopped");
    result.map_err(|e| Error::Unavailable(format!("transport: {e}")))
}

/// Who calls: the tokens file and mTLS settings.
fn authenticator(config: &Config) -> Result<Arc<Authenticator>> {
    let auth = Authenticator::new(config.auth.clone()).map_err(|e| Error::Config(e.to_string()))?;
    if !auth.enabled() {
        tracing::warn!("no tokens file: authentication is off and anyone who can connect may write (development only)");
    }
    Ok(auth)
}

/// The Prometheus endpoint, if configured (its own listener).
async fn serve_metrics(config: &Config, tasks: &mut Tasks) -> Result<()> {
    let Some(maddr) = config.metrics_listen else { return Ok(()) };
    crate::prometheus::handle();
    let l = TcpListener::bind(maddr)
        .await
        .map_err(|e| Error::Config(format!("cannot listen for metrics on {maddr}: {e}")))?;
    tasks.spawn("metrics", |stop| crate::prometheus::serve(l, stop));
    Ok(())
}

/// The transport (TLS, HTTP/2 settings, limits per connection), the shared
/// layers, and every service on the port.
async fn router(config: &Config, app: &Arc<App>, auth: &Arc<Authenticator>) -> Result<Router<Stack<Layers, Identity>>> {
    let eligibility = Arc::new(EligibilityService::new(app.clone()));
    let max_message = config.limits.max_message_bytes;
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &config.tls {
        builder = builder
            .tls_config(tls.server_config().map_err(|e| Error::Config(e.to_string()))?)
            .map_err(|e| Error::Config(format!("tls: {e}")))?;
    }
    let http2 = &config.http2;
    let limits = &config.limits;
    let builder = builder
        // HTTP/1.1 too: `curl http://host:port/v1/lists` and browsers.
        .accept_http1(true)
        .initial_connection_window_size(http2.connection_window)
        .initial_stream_window_size(http2.stream_window)
        .max_concurrent_streams(http2.max_concurrent_streams)
        .http2_max_header_list_size(http2.max_header_list_size)
        .http2_max_pending_accept_reset_streams(Some(http2.max_pending_accept_reset_streams))
        .http2_max_local_error_reset_streams(Some(http2.max_local_error_reset_streams))
        .concurrency_limit_per_connection(limits.concurrency_per_connection)
        .timeout(limits.request_timeout)
        .layer(layers(
            auth.clone(),
            config,
            app.shutdown_token().clone(),
            Framed::new(eligibility.clone(), max_message),
        ));
    let console = crate::console::router(app.clone(), auth.clone(), config.console);
    routes(builder, app, console, eligibility, max_message).await
}

/// The background tasks, each ended by the shutdown token.
fn start_background(tasks: &mut Tasks, app: &Arc<App>, auth: &Arc<Authenticator>, config: &Config) {
    tasks.spawn("activator", |stop| app.writer.clone().run_activator(stop));
    tasks.spawn("ticker", |stop| app.hub.clone().run_ticker(stop));
    tasks.spawn("tailer", |stop| app.registry.clone().run_tailer(config.tail_poll, stop));
    tasks.spawn("tokens", |stop| auth.clone().watch_file(Duration::from_secs(2), stop));
}

/// Runs `serving` (which ends once shutdown has started and the calls in
/// flight are done); once shutdown has started, a connection still open
/// after `limit` (a client that stopped reading cannot take the end of
/// its stream) is closed, so the drain ends.
async fn drain<F: Future>(serving: F, app: &App, budget: &crate::budget::Budget, limit: Duration) -> F::Output {
    let mut serving = std::pin::pin!(serving);
    let stop = app.shutdown_token().clone();
    tokio::select! {
        result = &mut serving => return result,
        () = async { stop.triggered().await; tokio::time::sleep(limit).await } => {}
    }
    let n = budget.close_all();
    if n > 0 {
        tracing::warn!(connections = n, drain = ?limit, "drain time is up: closing the connections still open");
    }
    serving.await
}

/// The layers every surface shares, innermost first.
type Layers = Stack<
    ShortcutLayer<Framed>,
    Stack<
        LimitsLayer,
        Stack<AuthLayer, Stack<MetricsLayer, Stack<CorsLayer, Stack<WebLayer, Stack<RouteLayer, Identity>>>>>,
    >,
>;

/// The layers every surface shares: the route resolved once, outermost
/// (every other layer reads it); gRPC-Web translation (a
/// gRPC-Web client gets every answer, refusals included, in its framing),
/// then CORS (a browser's preflight carries no credentials), metrics and
/// tracing (they see refusals too), authentication and authorization, the
/// limits, and innermost the eligibility service's framed methods, which
/// skip the router.
fn layers(auth: Arc<Authenticator>, config: &Config, shutdown: crate::lifecycle::Shutdown, framed: Framed) -> Layers {
    let limits = &config.limits;
    tower::ServiceBuilder::new()
        .layer(RouteLayer)
        .layer(WebLayer)
        .layer(CorsLayer::new(config.cors_allowed_origins.clone()))
        .layer(MetricsLayer)
        .layer(AuthLayer::new(auth))
        .layer(LimitsLayer::new(limits.max_concurrent_requests, limits.max_message_bytes, shutdown))
        .layer(ShortcutLayer::new(framed))
        .into_inner()
}

/// The services on the port: ours, health and reflection.
async fn routes<L: Clone>(
    mut builder: tonic::transport::Server<L>,
    app: &Arc<App>,
    console: axum::Router,
    eligibility: Arc<EligibilityService>,
    max_msg: usize,
) -> Result<Router<L>> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<EligibilityServiceServer<EligibilityService>>().await;
    health.set_serving::<AdminServiceServer<AdminService>>().await;
    let descriptors = Descriptors::new(&[
        eligibility::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ])
    .map(Arc::new)
    .map_err(|e| Error::Config(format!("reflection: {e}")))?;
    let grpc = Routes::builder()
        .add_service(health_service)
        .add_service(ServerReflectionServer::new(ReflectionV1(descriptors.clone())))
        .add_service(AlphaServer::new(ReflectionV1Alpha(descriptors)))
        // Its framed methods never get here (the shortcut layer takes them).
        .add_service(EligibilityServiceServer::from_arc(eligibility).max_decoding_message_size(max_msg))
        .add_service(AdminServiceServer::new(AdminService::new(app.clone())).max_decoding_message_size(max_msg))
        .clone()
        .routes();
    // One port: gRPC paths (`/package.Service/Method`), the HTTP/JSON
    // paths (`/v1/...`) and the console's never overlap.
    let routes = Routes::from(grpc.into_axum_router().merge(crate::http::router(app.clone())).merge(console));
    Ok(builder.add_routes(routes))
}
