//! The server's configuration: flags, environment variables and an
//! optional TOML file, in that order of precedence, over the defaults.
//!
//! Every key of the file is also a flag (`--key-name`) and an environment
//! variable (`ELIGIBILITY_KEY_NAME`). Values are validated at start; an
//! error names the key, where the value came from, and what was expected.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::Parser;
use serde::{Deserialize, Serialize};

use crate::{
    auth::AuthConfig,
    registry::Limits,
    server::{Config, DEFAULT_DATA_DIR, DEFAULT_LISTEN, Http2Config, TlsFiles},
    store::PgOptions,
    watch::WatchConfig,
};

/// Every setting, as the file, the flags and the environment give it.
/// `None` means "not given here".
#[derive(Parser, Deserialize, Serialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
#[command(
    name = "eligibility-server",
    version,
    about = "The export eligibility service (gRPC, package eligibility.v1)"
)]
pub struct Settings {
    /// Address to listen on [default: 127.0.0.1:50051].
    #[arg(long, env = "ELIGIBILITY_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory of the embedded store, created if missing [default: ./data].
    #[arg(long, env = "ELIGIBILITY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Load the reported 2021 cyber-list data into an empty store.
    #[arg(long, env = "ELIGIBILITY_DEMO", num_args = 0..=1, default_missing_value = "true")]
    pub demo: Option<bool>,
    /// Log format: text or json [default: text].
    #[arg(long, env = "ELIGIBILITY_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Log level or tracing filter, e.g. "info" or "eligibility_server=debug" [default: info].
    #[arg(long, env = "ELIGIBILITY_LOG_LEVEL")]
    pub log_level: Option<String>,
    /// Maximum items in one BatchCheck [default: 10000].
    #[arg(long, env = "ELIGIBILITY_MAX_BATCH")]
    pub max_batch: Option<usize>,
    /// Longest wait for a read's min_revision, ms [default: 5000].
    #[arg(long, env = "ELIGIBILITY_MAX_WAIT_MS")]
    pub max_wait_ms: Option<u64>,
    /// Watch heartbeat interval when idle, ms [default: 10000].
    #[arg(long, env = "ELIGIBILITY_PROGRESS_INTERVAL_MS")]
    pub progress_interval_ms: Option<u64>,
    /// Open Watch streams in total [default: 100000].
    #[arg(long, env = "ELIGIBILITY_MAX_WATCHERS")]
    pub max_watchers: Option<usize>,
    /// Open Watch streams per client connection [default: 10000].
    #[arg(long, env = "ELIGIBILITY_MAX_WATCHERS_PER_CONNECTION")]
    pub max_watchers_per_connection: Option<usize>,
    /// HTTP/2 connection window, bytes [default: 67108864].
    #[arg(long, env = "ELIGIBILITY_H2_CONNECTION_WINDOW")]
    pub h2_connection_window: Option<u32>,
    /// HTTP/2 stream window, bytes [default: 1048576].
    #[arg(long, env = "ELIGIBILITY_H2_STREAM_WINDOW")]
    pub h2_stream_window: Option<u32>,
    /// Postgres URL (several replicas on one database) instead of the embedded store.
    #[arg(long, env = "ELIGIBILITY_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Postgres pool size [default: 10].
    #[arg(long, env = "ELIGIBILITY_PG_MAX_CONNECTIONS")]
    pub pg_max_connections: Option<u32>,
    /// How long a query waits for a Postgres connection, ms [default: 3000].
    #[arg(long, env = "ELIGIBILITY_PG_ACQUIRE_TIMEOUT_MS")]
    pub pg_acquire_timeout_ms: Option<u64>,
    /// With Postgres: re-read the log at least this often, ms [default: 1000].
    #[arg(long, env = "ELIGIBILITY_TAIL_POLL_MS")]
    pub tail_poll_ms: Option<u64>,
    /// Tokens file (token hashes, principals, roles); without it authentication is off.
    #[arg(long, env = "ELIGIBILITY_TOKENS_FILE")]
    pub tokens_file: Option<PathBuf>,
    /// Require at least the reader role for reads [default: false].
    #[arg(long, env = "ELIGIBILITY_REQUIRE_AUTH_FOR_READS", num_args = 0..=1, default_missing_value = "true")]
    pub require_auth_for_reads: Option<bool>,
    /// TLS certificate chain (PEM); with --tls-key, serves TLS.
    #[arg(long, env = "ELIGIBILITY_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "ELIGIBILITY_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// CA (PEM) for client certificates: makes them required (mutual TLS).
    #[arg(long, env = "ELIGIBILITY_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics [default: off].
    #[arg(long, env = "ELIGIBILITY_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Largest request message, bytes [default: 4194304].
    #[arg(long, env = "ELIGIBILITY_MAX_MESSAGE_BYTES")]
    pub max_message_bytes: Option<usize>,
    /// Unary calls in progress at once, server-wide; more are refused [default: 4096].
    #[arg(long, env = "ELIGIBILITY_MAX_CONCURRENT_REQUESTS")]
    pub max_concurrent_requests: Option<usize>,
    /// Calls in progress at once per connection; more wait [default: 256].
    #[arg(long, env = "ELIGIBILITY_CONCURRENCY_PER_CONNECTION")]
    pub concurrency_per_connection: Option<usize>,
    /// Longest time to answer a call, ms (Watch streams excepted) [default: 30000].
    #[arg(long, env = "ELIGIBILITY_REQUEST_TIMEOUT_MS")]
    pub request_timeout_ms: Option<u64>,
    /// Export traces over OTLP/gRPC to this collector, e.g. http://127.0.0.1:4317 [default: off].
    #[arg(long, env = "ELIGIBILITY_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,

    /// A TOML file with any of the settings above (flags and environment
    /// variables take precedence over it).
    #[arg(long, env = "ELIGIBILITY_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Print the effective configuration (secrets redacted) and exit.
    #[arg(long)]
    #[serde(skip)]
    pub print_config: bool,
    /// Read a token on stdin, print its SHA-256 (for the tokens file), exit.
    #[arg(long)]
    #[serde(skip)]
    pub hash_token: bool,
    /// Print a new random token and its SHA-256, exit.
    #[arg(long)]
    #[serde(skip)]
    pub new_token: bool,
}

/// How logs are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
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
    /// The effective settings (for --print-config).
    pub effective: Settings,
}

macro_rules! merge {
    ($out:ident, $flags:ident, $file:ident, $($f:ident),* $(,)?) => {
        $( $out.$f = $flags.$f.clone().or($file.$f.clone()); )*
    };
}

impl Settings {
    /// Reads the file named by `--config` (if any): unknown keys and bad
    /// values are errors naming them.
    pub fn load_file(&self) -> Result<Settings, String> {
        let Some(path) = &self.config else { return Ok(Settings::default()) };
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("config file {}: {e}", path.display()))
    }

    /// Flags/environment (self) over the file over the defaults, validated.
    pub fn resolve(&self, file: &Settings) -> Result<Resolved, String> {
        let mut s = Settings::default();
        merge!(
            s,
            self,
            file,
            listen,
            data_dir,
            demo,
            log_format,
            log_level,
            max_batch,
            max_wait_ms,
            progress_interval_ms,
            max_watchers,
            max_watchers_per_connection,
            h2_connection_window,
            h2_stream_window,
            database_url,
            pg_max_connections,
            pg_acquire_timeout_ms,
            tail_poll_ms,
            tokens_file,
            require_auth_for_reads,
            tls_cert,
            tls_key,
            tls_client_ca,
            metrics_listen,
            max_message_bytes,
            max_concurrent_requests,
            concurrency_per_connection,
            request_timeout_ms,
        );
        let d = Config::default();
        let dl = Limits::default();
        let dw = WatchConfig::default();
        let dh = Http2Config::default();
        let dp = PgOptions::default();
        let ms = |v: Option<u64>, default: Duration| v.map(Duration::from_millis).unwrap_or(default);
        let positive = |name: &str, v: Option<u64>| match v {
            Some(0) => Err(format!("{name} must be greater than 0")),
            _ => Ok(()),
        };
        positive("max_batch", s.max_batch.map(|v| v as u64))?;
        positive("max_watchers", s.max_watchers.map(|v| v as u64))?;
        positive("max_watchers_per_connection", s.max_watchers_per_connection.map(|v| v as u64))?;
        positive("progress_interval_ms", s.progress_interval_ms)?;
        positive("max_message_bytes", s.max_message_bytes.map(|v| v as u64))?;
        positive("max_concurrent_requests", s.max_concurrent_requests.map(|v| v as u64))?;
        positive("concurrency_per_connection", s.concurrency_per_connection.map(|v| v as u64))?;
        positive("request_timeout_ms", s.request_timeout_ms)?;
        positive("pg_max_connections", s.pg_max_connections.map(u64::from))?;
        if s.h2_connection_window.is_some_and(|w| w < 65_535) || s.h2_stream_window.is_some_and(|w| w < 65_535) {
            return Err("h2_connection_window and h2_stream_window must be at least 65535 (HTTP/2's minimum)".into());
        }
        let log_format = match s.log_format.as_deref().unwrap_or("text") {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => return Err(format!("log_format {other:?} is not text or json")),
        };
        let tls = match (&s.tls_cert, &s.tls_key) {
            (Some(cert), Some(key)) => {
                Some(TlsFiles { cert: cert.clone(), key: key.clone(), client_ca: s.tls_client_ca.clone() })
            }
            (None, None) if s.tls_client_ca.is_some() => {
                return Err("tls_client_ca needs tls_cert and tls_key (mutual TLS is TLS)".into());
            }
            (None, None) => None,
            _ => return Err("tls_cert and tls_key go together".into()),
        };
        if let Some(url) = &s.database_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(format!("database_url {:?} is not a postgres:// URL", redact_url(url)));
        }
        for (name, path) in [
            ("tokens_file", &s.tokens_file),
            ("tls_cert", &s.tls_cert),
            ("tls_key", &s.tls_key),
            ("tls_client_ca", &s.tls_client_ca),
        ] {
            if let Some(p) = path
                && !p.is_file()
            {
                return Err(format!("{name} {} does not exist or is not a file", p.display()));
            }
        }
        let config = Config {
            data_dir: s.data_dir.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            demo: s.demo.unwrap_or(false),
            limits: Limits {
                max_batch: s.max_batch.unwrap_or(dl.max_batch),
                max_wait: ms(s.max_wait_ms, dl.max_wait),
                max_message_bytes: s.max_message_bytes.unwrap_or(dl.max_message_bytes),
                max_concurrent_requests: s.max_concurrent_requests.unwrap_or(dl.max_concurrent_requests),
                concurrency_per_connection: s.concurrency_per_connection.unwrap_or(dl.concurrency_per_connection),
                request_timeout: ms(s.request_timeout_ms, dl.request_timeout),
                ..dl
            },
            watch: WatchConfig {
                progress_interval: ms(s.progress_interval_ms, dw.progress_interval),
                max_watchers: s.max_watchers.unwrap_or(dw.max_watchers),
                max_watchers_per_connection: s.max_watchers_per_connection.unwrap_or(dw.max_watchers_per_connection),
                ..dw
            },
            http2: Http2Config {
                connection_window: s.h2_connection_window.unwrap_or(dh.connection_window),
                stream_window: s.h2_stream_window.unwrap_or(dh.stream_window),
                ..dh
            },
            database_url: s.database_url.clone(),
            postgres: PgOptions {
                max_connections: s.pg_max_connections.unwrap_or(dp.max_connections),
                acquire_timeout: ms(s.pg_acquire_timeout_ms, dp.acquire_timeout),
            },
            tail_poll: ms(s.tail_poll_ms, d.tail_poll),
            auth: AuthConfig {
                tokens_file: s.tokens_file.clone(),
                require_auth_for_reads: s.require_auth_for_reads.unwrap_or(false),
            },
            tls,
            metrics_listen: s.metrics_listen,
        };
        let listen = s.listen.unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("valid default"));
        let log_level = s.log_level.clone().unwrap_or_else(|| "info".into());
        // The effective settings, defaults filled in, for --print-config.
        let mut effective = s.clone();
        effective.listen = Some(listen);
        effective.data_dir = Some(config.data_dir.clone());
        effective.demo = Some(config.demo);
        effective.log_format = Some(if log_format == LogFormat::Json { "json" } else { "text" }.into());
        effective.log_level = Some(log_level.clone());
        effective.max_batch = Some(config.limits.max_batch);
        effective.max_wait_ms = Some(config.limits.max_wait.as_millis() as u64);
        effective.progress_interval_ms = Some(config.watch.progress_interval.as_millis() as u64);
        effective.max_watchers = Some(config.watch.max_watchers);
        effective.max_watchers_per_connection = Some(config.watch.max_watchers_per_connection);
        effective.h2_connection_window = Some(config.http2.connection_window);
        effective.h2_stream_window = Some(config.http2.stream_window);
        effective.database_url = s.database_url.as_deref().map(redact_url);
        effective.pg_max_connections = Some(config.postgres.max_connections);
        effective.pg_acquire_timeout_ms = Some(config.postgres.acquire_timeout.as_millis() as u64);
        effective.tail_poll_ms = Some(config.tail_poll.as_millis() as u64);
        effective.require_auth_for_reads = Some(config.auth.require_auth_for_reads);
        effective.max_message_bytes = Some(config.limits.max_message_bytes);
        effective.max_concurrent_requests = Some(config.limits.max_concurrent_requests);
        effective.concurrency_per_connection = Some(config.limits.concurrency_per_connection);
        effective.request_timeout_ms = Some(config.limits.request_timeout.as_millis() as u64);
        if let Some(e) = &s.otlp_endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            return Err(format!("otlp_endpoint {e:?} is not an http:// or https:// URL"));
        }
        Ok(Resolved { listen, config, log_format, log_level, otlp_endpoint: s.otlp_endpoint.clone(), effective })
    }
}

/// A URL with its password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let Some((userinfo, host)) = rest.split_once('@') else { return url.to_owned() };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact_url("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
    }

    #[test]
    fn flags_beat_the_file_which_beats_defaults() {
        let flags = Settings { max_batch: Some(7), ..Default::default() };
        let file: Settings = toml::from_str("max_batch = 9\nmax_watchers = 11\n").unwrap();
        let r = flags.resolve(&file).unwrap();
        assert_eq!(r.config.limits.max_batch, 7);
        assert_eq!(r.config.watch.max_watchers, 11);
        assert_eq!(r.config.watch.max_watchers_per_connection, WatchConfig::default().max_watchers_per_connection);
    }

    #[test]
    fn validation_errors_name_the_key() {
        let bad = |s: Settings| s.resolve(&Settings::default()).unwrap_err();
        assert!(bad(Settings { max_batch: Some(0), ..Default::default() }).contains("max_batch"));
        assert!(bad(Settings { log_format: Some("xml".into()), ..Default::default() }).contains("log_format \"xml\""));
        assert!(bad(Settings { tls_cert: Some("/nonexistent.pem".into()), ..Default::default() }).contains("tls_key"));
        assert!(bad(Settings { database_url: Some("mysql://x".into()), ..Default::default() }).contains("postgres://"));
        assert!(toml::from_str::<Settings>("max_batchh = 1").unwrap_err().to_string().contains("max_batchh"));
        assert!(toml::from_str::<Settings>("max_batch = \"many\"").unwrap_err().to_string().contains("max_batch"));
    }
}
