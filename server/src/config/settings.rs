//! Every setting, declared once: the [`settings!`] table below yields the
//! flag (`--key-name`), the environment variable (`ELIGIBILITY_KEY_NAME`),
//! the file key (`key_name`), the default, the check and the
//! `--print-config` line. Precedence: flags > environment > file >
//! defaults; an error names the key and where its value came from.

use std::{
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use clap::{CommandFactory, FromArgMatches, Parser};

use super::commands::Command;
use serde::{Deserialize, Serialize};

pub use super::checks::redact_url;
use super::{
    Config, DEFAULT_DATA_DIR, DEFAULT_LISTEN, Http2Config, TlsFiles,
    checks::{Check, any, file, h2_window, http_url, log_format, origins, positive, positive_usize, postgres_url},
};
use crate::{
    budget::BudgetConfig, conns::ConnLimits, identity::AuthConfig, limits::Limits, store::PgOptions,
    telemetry::LogFormat, watch::WatchConfig,
};

/// Where a setting's value came from (for errors).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The command line or the environment.
    FlagOrEnv(&'static str),
    /// The configuration file.
    File(PathBuf),
    /// The built-in default.
    Default,
    /// Several settings together (e.g. TLS's files).
    Together,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::FlagOrEnv(key) => {
                write!(f, "from --{} or ELIGIBILITY_{}", key.replace('_', "-"), key.to_ascii_uppercase())
            }
            Source::File(p) => write!(f, "from the config file {}", p.display()),
            Source::Default => f.write_str("the default"),
            Source::Together => f.write_str("settings that go together"),
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A setting's value is wrong; the message names the key and value.
    #[error("{message} ({from})")]
    Invalid {
        /// The key.
        key: &'static str,
        /// Where the value came from.
        from: Source,
        /// What is wrong.
        message: String,
    },
    /// A file cannot be read or parsed.
    #[error("{}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Declares the settings. In `required { }`, `name: T = default, check;`
/// is a setting with a default; in `optional { }`, `name: T, check;` is one that is off unless
/// given. Each doc line is the flag's help.
macro_rules! settings {
    (
        required {
            $( $(#[doc = $doc:literal])* $name:ident : $ty:ty = $default:expr, $check:expr; )*
        }
        optional {
            $( $(#[doc = $odoc:literal])* $oname:ident : $oty:ty, $ocheck:expr; )*
        }
    ) => {
        /// Every setting as one source gives it (`None`: not given there):
        /// the flags and environment (parsed by clap) or the file (by serde).
        #[derive(Parser, Deserialize, Serialize, Debug, Default, Clone)]
        #[serde(deny_unknown_fields)]
        #[command(
            name = "eligibility-server",
            version,
            about = "The export eligibility service (gRPC, package eligibility.v1)"
        )]
        pub struct Settings {
            $( $(#[doc = $doc])* #[arg(long)] pub $name: Option<$ty>, )*
            $( $(#[doc = $odoc])* #[arg(long)] pub $oname: Option<$oty>, )*
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

        /// Every setting's effective value: what `--print-config` prints.
        #[derive(Serialize, Debug, Clone)]
        pub struct Effective {
            $( #[allow(missing_docs)] pub $name: $ty, )*
            $( #[allow(missing_docs)] #[serde(skip_serializing_if = "Option::is_none")] pub $oname: Option<$oty>, )*
        }

        /// The keys of the settings (the file's keys; flags and environment
        /// variables are derived from them).
        pub const KEYS: &[&str] = &[$(stringify!($name),)* $(stringify!($oname),)*];

        impl Settings {
            /// The settings of a parsed config file: each key read as its
            /// setting's type, so an error names the key and the file.
            fn from_table(mut table: toml::Table, path: &Path) -> Result<Settings, ConfigError> {
                fn take<T: serde::de::DeserializeOwned>(
                    table: &mut toml::Table,
                    key: &'static str,
                    path: &Path,
                ) -> Result<Option<T>, ConfigError> {
                    table
                        .remove(key)
                        .map(|v| v.try_into::<T>())
                        .transpose()
                        .map_err(|e| ConfigError::Invalid {
                            key,
                            from: Source::File(path.to_owned()),
                            message: format!("{key}: {}", e.message().trim_end()),
                        })
                }
                let settings = Settings {
                    $( $name: take(&mut table, stringify!($name), path)?, )*
                    $( $oname: take(&mut table, stringify!($oname), path)?, )*
                    ..Settings::default()
                };
                if let Some(unknown) = table.keys().next() {
                    return Err(ConfigError::File {
                        path: path.to_owned(),
                        message: format!("unknown key {unknown:?} (the keys are: {})", KEYS.join(", ")),
                    });
                }
                Ok(settings)
            }

            fn merge(&self, file: &Settings, file_path: Option<&Path>) -> Result<Effective, ConfigError> {
                let source = |key: &'static str, given_here: bool, in_file: bool| match (given_here, in_file, file_path) {
                    (true, _, _) => Source::FlagOrEnv(key),
                    (false, true, Some(p)) => Source::File(p.to_owned()),
                    _ => Source::Default,
                };
                let effective = Effective {
                    $( $name: self.$name.clone().or_else(|| file.$name.clone()).unwrap_or_else(|| $default), )*
                    $( $oname: self.$oname.clone().or_else(|| file.$oname.clone()), )*
                };
                $(
                    let check: Check<$ty> = $check;
                    check(stringify!($name), &effective.$name).map_err(|message| ConfigError::Invalid {
                        key: stringify!($name),
                        from: source(stringify!($name), self.$name.is_some(), file.$name.is_some()),
                        message,
                    })?;
                )*
                $(
                    if let Some(v) = &effective.$oname {
                        let check: Check<$oty> = $ocheck;
                        check(stringify!($oname), v).map_err(|message| ConfigError::Invalid {
                            key: stringify!($oname),
                            from: source(stringify!($oname), self.$oname.is_some(), file.$oname.is_some()),
                            message,
                        })?;
                    }
                )*
                Ok(effective)
            }
        }
    };
}

settings! {
    required {
    /// Address to listen on.
    listen: SocketAddr = DEFAULT_LISTEN.parse().expect("valid default"), any;
    /// Directory of the embedded store, created if missing.
    data_dir: PathBuf = PathBuf::from(DEFAULT_DATA_DIR), any;
    /// Load the reported 2021 cyber-list data into an empty store.
    demo: bool = false, any;
    /// Serve the web console at / (false: the port serves the APIs only).
    console: bool = true, any;
    /// Log format: text or json.
    log_format: String = "text".to_owned(), log_format;
    /// Log level or tracing filter, e.g. "info" or "eligibility_server=debug".
    log_level: String = "info".to_owned(), any;
    /// Maximum items in one BatchCheck.
    max_batch: usize = Limits::default().max_batch, positive_usize;
    /// Maximum entry changes in one Apply.
    max_changes: usize = Limits::default().max_changes, positive_usize;
    /// Largest page a paged read (ListEntries, History) may ask for.
    max_page_size: u32 = Limits::default().max_page_size, positive;
    /// Longest wait for a read's min_revision, ms (0: answer UNAVAILABLE at once).
    max_wait_ms: u64 = millis(Limits::default().max_wait), any;
    /// Watch heartbeat interval when idle, ms.
    progress_interval_ms: u64 = millis(WatchConfig::default().progress_interval), positive;
    /// Open Watch streams in total.
    max_watchers: usize = WatchConfig::default().max_watchers, positive_usize;
    /// Open Watch streams per client connection.
    max_watchers_per_connection: usize = WatchConfig::default().max_watchers_per_connection, positive_usize;
    /// Events a watcher that fell behind prepares at a time from the log.
    watch_buffer: usize = WatchConfig::default().buffer, positive_usize;
    /// Changesets the live feed holds for watchers; one that falls further behind is served from the log.
    watch_feed_capacity: usize = WatchConfig::default().feed_capacity, positive_usize;
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
    require_auth_for_reads: bool = false, any;
    /// Largest request message, bytes.
    max_message_bytes: usize = Limits::default().max_message_bytes, positive_usize;
    /// Unary calls in progress at once, server-wide; more are refused.
    max_concurrent_requests: usize = Limits::default().max_concurrent_requests, positive_usize;
    /// Calls in progress at once per connection; more wait.
    concurrency_per_connection: usize = Limits::default().concurrency_per_connection, positive_usize;
    /// Longest time to answer a call, ms (Watch streams excepted).
    request_timeout_ms: u64 = millis(Limits::default().request_timeout), positive;
    /// Browser origins allowed to call the HTTP API and gRPC-Web, comma-separated (`*`: any).
    cors_allowed_origins: Vec<String> = Vec::new(), origins;
    /// Open connections in all; past it a new connection is closed at once.
    max_connections: usize = ConnLimits::default().max, positive_usize;
    /// Open connections per client address; past it a new one is closed at once.
    max_connections_per_address: usize = ConnLimits::default().max_per_address, positive_usize;
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
    /// Parses the command line and the environment: every setting's
    /// environment variable is `ELIGIBILITY_` and its key in capitals.
    pub fn from_cli() -> Settings {
        // The defaults' printed form, made once for every flag's help.
        let defaults = Effective::default_table();
        let command = Settings::command().mut_args(|arg| {
            let id = arg.get_id().as_str().to_owned();
            if !KEYS.contains(&id.as_str()) {
                return arg;
            }
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            let default = match defaults.get(&id) {
                Some(toml::Value::String(s)) => format!(" [default: {s}]"),
                Some(v) => format!(" [default: {v}]"),
                None => " [default: off]".to_owned(),
            };
            // Built once at start: leaking gives clap the 'static strings it
            // keeps without its `string` feature.
            let env: &'static str = Box::leak(format!("ELIGIBILITY_{}", id.to_ascii_uppercase()).into_boxed_str());
            let help: &'static str = Box::leak(format!("{help}{default}").into_boxed_str());
            let arg = arg.env(env).help(help);
            // Flags without a value mean true (`--demo`).
            if matches!(id.as_str(), "demo" | "require_auth_for_reads") {
                arg.num_args(0..=1).default_missing_value("true")
            } else if id == "database_url" {
                arg.hide_env_values(true)
            } else if id == "cors_allowed_origins" {
                arg.value_delimiter(',')
            } else {
                arg
            }
        });
        let matches = command.get_matches();
        Settings::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }

    /// Reads the file named by `--config` (if any): unknown keys and bad
    /// values are errors naming them.
    pub fn load_file(&self) -> Result<Settings, ConfigError> {
        let Some(path) = &self.config else { return Ok(Settings::default()) };
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::File { path: path.clone(), message: format!("cannot read config file: {e}") })?;
        let table: toml::Table =
            toml::from_str(&text).map_err(|e| ConfigError::File { path: path.clone(), message: e.to_string() })?;
        Settings::from_table(table, path)
    }

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

impl Effective {
    /// The defaults, as `--print-config` would print them (settings that
    /// are off by default are absent).
    fn default_table() -> toml::Table {
        let defaults = Settings::default().merge(&Settings::default(), None).expect("the defaults are valid");
        toml::Table::try_from(&defaults).unwrap_or_default()
    }
}

/// TLS needs a certificate and its key together; mutual TLS is TLS.
fn tls_files(e: &Effective) -> Result<Option<TlsFiles>, ConfigError> {
    let invalid = |key, message: &str| ConfigError::Invalid { key, from: Source::Together, message: message.into() };
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
            file(key, p).map_err(|m| invalid(key, &m))?;
        }
    }
    for (key, path) in [("tls_cert", &e.tls_cert), ("tls_client_ca", &e.tls_client_ca)] {
        if let Some(p) = path {
            super::check_certificates(key, p).map_err(|m| invalid(key, &m))?;
        }
    }
    Ok(tls)
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
