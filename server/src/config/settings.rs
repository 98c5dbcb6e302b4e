//! Every server setting, declared once with [`eligibility::settings!`]
//! (the system the relay shares): each yields the flag (`--key-name`), the
//! environment variable (`ELIGIBILITY_KEY_NAME`), the file key
//! (`key_name`), the default, the check and the `--print-config` line.
//! Precedence: flags > environment > file > defaults; an error names the
//! key and where its value came from.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use eligibility::settings::checks::{any, file, http_url, log_format, positive};
pub use eligibility::settings::{ConfigError, Source};

pub use super::checks::redact_url;
use super::commands::Command;
use super::{
    Config, DEFAULT_DATA_DIR, DEFAULT_LISTEN, Http2Config, TlsFiles,
    checks::{h2_window, origins, postgres_url},
};
use crate::{
    budget::BudgetConfig, conns::ConnLimits, identity::AuthConfig, limits::Limits, store::PgOptions,
    telemetry::LogFormat, watch::WatchConfig,
};

eligibility::settings! {
    prefix = "ELIGIBILITY_";
    /// Every setting as one source gives it (`None`: not given there):
    /// the flags and environment (parsed by clap) or the file (by serde).
    #[command(
        name = "eligibility-server",
        version,
        about = "The export eligibility service (gRPC, package eligibility.v1)"
    )]
    pub struct Settings {
        /// A TOML file with any of the settings above (flags and
        /// environment variables take precedence over it).
        #[arg(long, env = "ELIGIBILITY_CONFIG")]
        #[serde(skip)]
        pub config: Option<PathBuf>,
        /// Print the effective configuration (secrets redacted) and exit.
        #[arg(long)]
        #[serde(skip)]
        pub print_config: bool,
        /// Deprecated: `eligibility-server token hash`.
        #[arg(long, hide_short_help = true)]
        #[serde(skip)]
        pub hash_token: bool,
        /// Deprecated: `eligibility-server token new`.
        #[arg(long, hide_short_help = true)]
        #[serde(skip)]
        pub new_token: bool,
        /// Deprecated: `eligibility-server descriptor-set FILE`.
        #[arg(long, value_name = "FILE", hide_short_help = true)]
        #[serde(skip)]
        pub write_descriptor_set: Option<PathBuf>,
        /// A one-shot command instead of serving.
        #[command(subcommand)]
        #[serde(skip)]
        pub command: Option<Command>,
    }
    required {
    /// Address to listen on.
    listen: SocketAddr = DEFAULT_LISTEN.parse().expect("valid default"), any;
    /// Directory of the embedded store, created if missing.
    data_dir: PathBuf = PathBuf::from(DEFAULT_DATA_DIR), any;
    /// Load the reported 2021 cyber-list data into an empty store.
    #[arg(num_args = 0..=1, default_missing_value = "true")]
    demo: bool = false, any;
    /// Serve the web console at / (false: the port serves the APIs only).
    console: bool = true, any;
    /// Log format: text or json.
    log_format: String = "text".to_owned(), log_format;
    /// Log level or tracing filter, e.g. "info" or "eligibility_server=debug".
    log_level: String = "info".to_owned(), any;
    /// Maximum items in one BatchCheck.
    max_batch: usize = Limits::default().max_batch, positive;
    /// Maximum entry changes in one Apply.
    max_changes: usize = Limits::default().max_changes, positive;
    /// Largest page a paged read (ListEntries, History) may ask for.
    max_page_size: u32 = Limits::default().max_page_size, positive;
    /// Longest wait for a read's min_revision, ms (0: answer UNAVAILABLE at once).
    max_wait_ms: u64 = millis(Limits::default().max_wait), any;
    /// Watch heartbeat interval when idle, ms.
    progress_interval_ms: u64 = millis(WatchConfig::default().progress_interval), positive;
    /// Open Watch streams in total.
    max_watchers: usize = WatchConfig::default().max_watchers, positive;
    /// Open Watch streams per client connection.
    max_watchers_per_connection: usize = WatchConfig::default().max_watchers_per_connection, positive;
    /// Events a watcher that fell behind prepares at a time from the log.
    watch_buffer: usize = WatchConfig::default().buffer, positive;
    /// Changesets the live feed holds for watchers; one that falls further behind is served from the log.
    watch_feed_capacity: usize = WatchConfig::default().feed_capacity, positive;
    /// HTTP/2 connection window, bytes.
    h2_connection_window: u32 = Http2Config::default().connection_window, h2_window;
    /// HTTP/2 stream window, bytes.
    h2_stream_window: u32 = Http2Config::default().stream_window, h2_window;
    /// HTTP/2 streams (calls and Watch streams) open at once per connection.
    h2_max_concurrent_streams: u32 = Http2Config::default().max_concurrent_streams, positive;
    /// Postgres pool size.
    pg_max_connections: u32 = PgOptions::default().max_connections, positive;
    /// How long a query waits for a Postgres connection, ms.
    pg_acquire_timeout_ms: u64 = millis(PgOptions::default().acquire_timeout), positive;
    /// With Postgres: re-read the log at least this often, ms.
    tail_poll_ms: u64 = millis(Config::default().tail_poll), positive;
    /// Require at least the reader role for reads.
    #[arg(num_args = 0..=1, default_missing_value = "true")]
    require_auth_for_reads: bool = false, any;
    /// Largest request message, bytes.
    max_message_bytes: usize = Limits::default().max_message_bytes, positive;
    /// Unary calls in progress at once, server-wide; more are refused.
    max_concurrent_requests: usize = Limits::default().max_concurrent_requests, positive;
    /// Calls in progress at once per connection; more wait.
    concurrency_per_connection: usize = Limits::default().concurrency_per_connection, positive;
    /// Longest time to answer a call, ms (Watch streams excepted).
    request_timeout_ms: u64 = millis(Limits::default().request_timeout), positive;
    /// Browser origins allowed to call the HTTP API and gRPC-Web, comma-separated (`*`: any).
    #[arg(value_delimiter = ',')]
    cors_allowed_origins: Vec<String> = Vec::new(), origins;
    /// Open connections in all; past it a new connection is closed at once.
    max_connections: usize = ConnLimits::default().max, positive;
    /// Open connections per client address; past it a new one is closed at once.
    max_connections_per_address: usize = ConnLimits::default().max_per_address, positive;
    /// Time for a new connection's first request headers (or HTTP/2 preface, or TLS hello), ms.
    handshake_timeout_ms: u64 = millis(ConnLimits::default().handshake), positive;
    /// Time a connection may stay open with no request or stream in progress, ms.
    idle_timeout_ms: u64 = millis(ConnLimits::default().idle), positive;
    /// At shutdown, time for connections to finish before those still open are closed, ms.
    drain_timeout_ms: u64 = millis(ConnLimits::default().drain), positive;
    /// Time to receive an HTTP request's body, ms.
    body_timeout_ms: u64 = millis(Limits::default().body_timeout), positive;
    /// Bytes held for slow stream consumers, all connections together; past it the largest are cut.
    slow_consumer_budget_bytes: u64 = BudgetConfig::default().limit, positive;
    /// Time a cut slow consumer has to take what it was sent before its connection is closed, ms.
    slow_consumer_grace_ms: u64 = millis(BudgetConfig::default().grace), positive;
    }
    optional {
        /// Postgres URL (several replicas on one database) instead of the embedded store.
        #[arg(hide_env_values = true)]
        database_url: String, postgres_url;
        /// Tokens file (token hashes, principals, roles); without it authentication is off.
        tokens_file: PathBuf, file;
        /// TLS certificate chain (PEM); with --tls-key, serves TLS.
        tls_cert: PathBuf, any;
        /// TLS private key (PEM).
        tls_key: PathBuf, any;
        /// CA (PEM) for client certificates: makes them required (mutual TLS).
        tls_client_ca: PathBuf, any;
        /// Serve Prometheus metrics at http://ADDR/metrics.
        metrics_listen: SocketAddr, any;
        /// Export traces over OTLP/gRPC to this collector, e.g. http://127.0.0.1:4317.
        otlp_endpoint: String, http_url;
    }
    file_only {}
}

fn millis(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// The resolved configuration.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The server's configuration.
    pub config: Config,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter.
    pub log_level: String,
    /// OTLP collector for traces.
    pub otlp_endpoint: Option<String>,
    /// The effective settings (for --print-config; secrets redacted).
    pub effective: Effective,
}

impl Settings {
    /// Flags/environment (self) over the file over the defaults, validated.
    pub fn resolve(&self, file: &Settings) -> Result<Resolved, ConfigError> {
        let e = self.merge(file, self.config.as_deref())?;
        let tls = tls_files(&e)?;
        let ms = Duration::from_millis;
        let config = Config {
            data_dir: e.data_dir.clone(),
            demo: e.demo,
            console: e.console,
            limits: Limits {
                max_batch: e.max_batch,
                max_changes: e.max_changes,
                max_page_size: e.max_page_size,
                max_wait: ms(e.max_wait_ms),
                max_message_bytes: e.max_message_bytes,
                max_concurrent_requests: e.max_concurrent_requests,
                concurrency_per_connection: e.concurrency_per_connection,
                request_timeout: ms(e.request_timeout_ms),
                body_timeout: ms(e.body_timeout_ms),
            },
            watch: WatchConfig {
                progress_interval: ms(e.progress_interval_ms),
                max_watchers: e.max_watchers,
                max_watchers_per_connection: e.max_watchers_per_connection,
                buffer: e.watch_buffer,
                feed_capacity: e.watch_feed_capacity,
                ..WatchConfig::default()
            },
            http2: Http2Config {
                connection_window: e.h2_connection_window,
                stream_window: e.h2_stream_window,
                max_concurrent_streams: e.h2_max_concurrent_streams,
                ..Http2Config::default()
            },
            database_url: e.database_url.clone(),
            postgres: PgOptions { max_connections: e.pg_max_connections, acquire_timeout: ms(e.pg_acquire_timeout_ms) },
            tail_poll: ms(e.tail_poll_ms),
            auth: AuthConfig { tokens_file: e.tokens_file.clone(), require_auth_for_reads: e.require_auth_for_reads },
            tls,
            metrics_listen: e.metrics_listen,
            cors_allowed_origins: e.cors_allowed_origins.clone(),
            connections: ConnLimits {
                max: e.max_connections,
                max_per_address: e.max_connections_per_address,
                handshake: ms(e.handshake_timeout_ms),
                idle: ms(e.idle_timeout_ms),
                drain: ms(e.drain_timeout_ms),
            },
            budget: BudgetConfig { limit: e.slow_consumer_budget_bytes, grace: ms(e.slow_consumer_grace_ms) },
        };
        let log_format = e.log_format.parse().expect("checked by merge");
        let mut effective = e.clone();
        effective.database_url = e.database_url.as_deref().map(redact_url);
        Ok(Resolved {
            listen: e.listen,
            config,
            log_format,
            log_level: e.log_level,
            otlp_endpoint: e.otlp_endpoint,
            effective,
        })
    }
}

/// TLS needs a certificate and its key together; mutual TLS is TLS.
fn tls_files(e: &Effective) -> Result<Option<TlsFiles>, ConfigError> {
    let invalid = |key, message: &str| ConfigError::invalid(key, Source::Together, message);
    let tls = match (&e.tls_cert, &e.tls_key) {
        (Some(cert), Some(key)) => {
            Some(TlsFiles { cert: cert.clone(), key: key.clone(), client_ca: e.tls_client_ca.clone() })
        }
        (None, None) if e.tls_client_ca.is_some() => {
            return Err(invalid("tls_client_ca", "tls_client_ca needs tls_cert and tls_key (mutual TLS is TLS)"));
        }
        (None, None) => None,
        (Some(_), None) => return Err(invalid("tls_key", "tls_cert and tls_key go together")),
        (None, Some(_)) => return Err(invalid("tls_cert", "tls_cert and tls_key go together")),
    };
    for (key, path) in [("tls_cert", &e.tls_cert), ("tls_key", &e.tls_key), ("tls_client_ca", &e.tls_client_ca)] {
        if let Some(p) = path {
            file(p).map_err(|m| invalid(key, &m))?;
        }
    }
    for (key, path) in [("tls_cert", &e.tls_cert), ("tls_client_ca", &e.tls_client_ca)] {
        if let Some(p) = path {
            super::check_certificates(p).map_err(|m| invalid(key, &m))?;
        }
    }
    Ok(tls)
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
