//! `eligibility-server`: parses configuration, binds, serves until SIGINT or
//! SIGTERM.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

use clap::{Parser, ValueEnum};
use eligibility_server::{
    registry::Limits,
    server::{self, Config, DEFAULT_DATA_DIR, DEFAULT_LISTEN, Http2Config},
    store::PgOptions,
    watch::WatchConfig,
};
use tracing_subscriber::EnvFilter;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The export eligibility service (gRPC, package eligibility.v1).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "ELIGIBILITY_LISTEN", default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Directory of the embedded store (created if missing).
    #[arg(long, env = "ELIGIBILITY_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// Load the reported 2021 cyber-list data into an empty store.
    #[arg(long, env = "ELIGIBILITY_DEMO")]
    demo: bool,
    /// Log format.
    #[arg(long, env = "ELIGIBILITY_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Log level or filter (tracing EnvFilter syntax, e.g. "info" or
    /// "eligibility_server=debug").
    #[arg(long, env = "ELIGIBILITY_LOG_LEVEL", default_value = "info")]
    log_level: String,
    /// Maximum items in one BatchCheck.
    #[arg(long, env = "ELIGIBILITY_MAX_BATCH", default_value_t = Limits::default().max_batch)]
    max_batch: usize,
    /// Longest wait, in milliseconds, for a read's min_revision.
    #[arg(long, env = "ELIGIBILITY_MAX_WAIT_MS", default_value_t = Limits::default().max_wait.as_millis() as u64)]
    max_wait_ms: u64,
    /// Watch: progress heartbeat interval when idle, in milliseconds.
    #[arg(long, env = "ELIGIBILITY_PROGRESS_INTERVAL_MS", default_value_t = WatchConfig::default().progress_interval.as_millis() as u64)]
    progress_interval_ms: u64,
    /// Watch: maximum open watch streams in total.
    #[arg(long, env = "ELIGIBILITY_MAX_WATCHERS", default_value_t = WatchConfig::default().max_watchers)]
    max_watchers: usize,
    /// Watch: maximum open watch streams per client connection.
    #[arg(long, env = "ELIGIBILITY_MAX_WATCHERS_PER_CONNECTION", default_value_t = WatchConfig::default().max_watchers_per_connection)]
    max_watchers_per_connection: usize,
    /// HTTP/2 connection window in bytes (sized for many streams per
    /// connection).
    #[arg(long, env = "ELIGIBILITY_H2_CONNECTION_WINDOW", default_value_t = Http2Config::default().connection_window)]
    h2_connection_window: u32,
    /// HTTP/2 per-stream window in bytes.
    #[arg(long, env = "ELIGIBILITY_H2_STREAM_WINDOW", default_value_t = Http2Config::default().stream_window)]
    h2_stream_window: u32,
    /// Use Postgres (several replicas on one database) instead of the
    /// embedded store, e.g. postgres://user@host:5432/eligibility.
    #[arg(long, env = "ELIGIBILITY_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Postgres connection pool size.
    #[arg(long, env = "ELIGIBILITY_PG_MAX_CONNECTIONS", default_value_t = PgOptions::default().max_connections)]
    pg_max_connections: u32,
    /// How long a query waits for a Postgres connection, in milliseconds
    /// (during an outage, writes fail with UNAVAILABLE after this).
    #[arg(long, env = "ELIGIBILITY_PG_ACQUIRE_TIMEOUT_MS", default_value_t = PgOptions::default().acquire_timeout.as_millis() as u64)]
    pg_acquire_timeout_ms: u64,
    /// With Postgres: re-read the log at least this often, in milliseconds
    /// (the safety net under LISTEN/NOTIFY).
    #[arg(long, env = "ELIGIBILITY_TAIL_POLL_MS", default_value_t = 1000)]
    tail_poll_ms: u64,
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown requested; finishing in-flight calls");
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let filter = match EnvFilter::try_new(&args.log_level) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: invalid --log-level {:?}: {e}", args.log_level);
            return ExitCode::from(2);
        }
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match args.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    let config = Config {
        data_dir: args.data_dir.clone(),
        demo: args.demo,
        limits: Limits {
            max_batch: args.max_batch,
            max_wait: Duration::from_millis(args.max_wait_ms),
            ..Limits::default()
        },
        watch: WatchConfig {
            progress_interval: Duration::from_millis(args.progress_interval_ms),
            max_watchers: args.max_watchers,
            max_watchers_per_connection: args.max_watchers_per_connection,
            ..WatchConfig::default()
        },
        http2: Http2Config {
            connection_window: args.h2_connection_window,
            stream_window: args.h2_stream_window,
            ..Http2Config::default()
        },
        database_url: args.database_url.clone(),
        postgres: PgOptions {
            max_connections: args.pg_max_connections,
            acquire_timeout: Duration::from_millis(args.pg_acquire_timeout_ms),
        },
        tail_poll: Duration::from_millis(args.tail_poll_ms),
    };
    let registry = match server::open(&config).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, data_dir = %args.data_dir.display(), "cannot open the store");
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, listen = %args.listen, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    match server::run(listener, registry, &config, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            ExitCode::FAILURE
        }
    }
}
