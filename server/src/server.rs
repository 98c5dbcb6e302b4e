//! Serving: [`open`] loads the application from its store; [`run`] serves
//! it on a bound listener, with its layers and background tasks, until a
//! shutdown future completes.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

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
    auth::Authenticator,
    error::{Error, Result},
    grpc::{
        AdminService, EligibilityService, Framed,
        reflection::{Descriptors, ReflectionV1, ReflectionV1Alpha},
    },
    layers::{
        auth::AuthLayer, cors::CorsLayer, grpc_web::WebLayer, limits::LimitsLayer, metrics::MetricsLayer,
        shortcut::ShortcutLayer,
    },
    lifecycle::Tasks,
    routes::RouteLayer,
    store::{PgStore, SqliteStore, Store},
};

/// Opens the store and builds the application (loading demo data if
/// asked).
pub async fn open(config: &Config) -> Result<Arc<App>> {
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

/// Serves the gRPC API and its HTTP/JSON twin on `listener` until `shutdown` completes, then ends
/// the watch streams, finishes in-flight calls, stops the background tasks
/// and closes the store.
pub async fn run(
    listener: TcpListener,
    app: Arc<App>,
    config: &Config,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    let auth = Authenticator::new(config.auth.clone()).map_err(|e| Error::Config(e.to_string()))?;
    if !auth.enabled() {
        tracing::warn!("no tokens file: authentication is off and anyone who can connect may write (development only)");
    }
    let mut tasks = Tasks::new(app.shutdown_token().clone());
    if let Some(maddr) = config.metrics_listen {
        crate::exporter::handle();
        // What was set before the recorder existed (the revision loaded at
        // open) is set again.
        metrics::gauge!("eligibility_revision").set(app.registry.head().0 as f64);
        let watchers = app.hub.stats().active.load(std::sync::atomic::Ordering::Relaxed);
        metrics::gauge!("eligibility_watchers").set(watchers as f64);
        let l = TcpListener::bind(maddr)
            .await
            .map_err(|e| Error::Config(format!("cannot listen for metrics on {maddr}: {e}")))?;
        tasks.spawn("metrics", |stop| crate::exporter::serve(l, stop));
    }
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
    let router = routes(builder, &app, console, eligibility, max_message).await?;
    tracing::info!(addr = ?addr, tls = config.tls.is_some(), mtls = config.tls.as_ref().is_some_and(|t| t.client_ca.is_some()), auth = auth.enabled(), "serving eligibility.v1");
    tasks.spawn("activator", |stop| app.writer.clone().run_activator(stop));
    tasks.spawn("ticker", |stop| app.hub.clone().run_ticker(stop));
    tasks.spawn("tailer", |stop| app.registry.clone().run_tailer(config.tail_poll, stop));
    tasks.spawn("tokens", |stop| auth.clone().watch_file(Duration::from_secs(2), stop));
    // Watch streams never end on their own: end them when shutdown starts,
    // so the graceful drain does not wait on them forever. A connection
    // still open when the drain time is up (a client that stopped reading
    // cannot take the end of its stream) is closed.
    let budget = crate::budget::Budget::new(config.budget.clone());
    let stopping = app.clone();
    let closing = budget.clone();
    let drain = config.connections.drain;
    let shutdown = async move {
        shutdown.await;
        tracing::info!("shutting down: ending watch streams, draining calls");
        stopping.shutdown();
        tokio::spawn(async move {
            tokio::time::sleep(drain).await;
            let n = closing.close_all();
            if n > 0 {
                tracing::warn!(connections = n, ?drain, "drain time is up: closing the connections still open");
            }
        });
    };
    // TCP_NODELAY: without it, small responses wait on delayed ACKs (~40 ms
    // per call on Linux).
    let incoming =
        crate::conns::guard(TcpIncoming::from(listener).with_nodelay(Some(true)), config.connections.clone(), budget);
    let result = router.serve_with_incoming_shutdown(incoming, shutdown).await;
    app.shutdown();
    tasks.join().await;
    app.registry.store().close().await;
    tracing::info!("server stopped");
    result.map_err(|e| Error::Unavailable(format!("transport: {e}")))
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
