//! The server's configuration: what [`crate::server`] needs to start
//! ([`Config`]), and where it comes from ([`settings`]: flags, environment
//! variables and an optional TOML file, one declaration per setting).

mod checks;
mod commands;
pub mod settings;

use std::{net::SocketAddr, path::PathBuf, time::Duration};

pub use self::{
    commands::{Command, TokenCommand},
    settings::{ConfigError, Resolved, Settings},
};
use crate::{
    budget::BudgetConfig, conns::ConnLimits, identity::AuthConfig, limits::Limits, store::PgOptions, watch::WatchConfig,
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
    /// Serve the web console at `/`.
    pub console: bool,
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
    /// Browser origins allowed to call the HTTP API, the event stream and
    /// gRPC-Web (`*`: any; empty: none).
    pub cors_allowed_origins: Vec<String>,
    /// Limits on connections.
    pub connections: ConnLimits,
    /// The memory budget for slow stream consumers.
    pub budget: BudgetConfig,
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
    /// Largest header block of a request, bytes (h2 answers a larger one,
    /// or an endless run of CONTINUATION frames, with an error instead of
    /// buffering it).
    pub max_header_list_size: u32,
    /// Streams a client opened and reset before the server accepted them,
    /// at once; past it the connection ends with GOAWAY
    /// `ENHANCE_YOUR_CALM` (the "rapid reset" attack, CVE-2023-44487).
    pub max_pending_accept_reset_streams: usize,
    /// Streams the server had to reset because of the client's protocol
    /// errors, per connection; past it the connection ends with GOAWAY
    /// (the "MadeYouReset" attack, CVE-2025-8671).
    pub max_local_error_reset_streams: usize,
}

impl Default for Http2Config {
    fn default() -> Self {
        Http2Config {
            connection_window: 64 << 20,
            stream_window: 1 << 20,
            max_concurrent_streams: 20_000,
            max_header_list_size: 16 << 10,
            max_pending_accept_reset_streams: 20,
            max_local_error_reset_streams: 1024,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            demo: false,
            console: true,
            limits: Limits::default(),
            watch: WatchConfig::default(),
            http2: Http2Config::default(),
            database_url: None,
            postgres: PgOptions::default(),
            tail_poll: Duration::from_secs(1),
            auth: AuthConfig::default(),
            tls: None,
            metrics_listen: None,
            cors_allowed_origins: Vec::new(),
            connections: ConnLimits::default(),
            budget: BudgetConfig::default(),
        }
    }
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
    /// The TLS configuration of the server (reads the files).
    pub fn server_config(&self) -> Result<tonic::transport::ServerTlsConfig, ConfigError> {
        let read =
            |p: &PathBuf| std::fs::read(p).map_err(|e| ConfigError::File { path: p.clone(), message: e.to_string() });
        let mut cfg = tonic::transport::ServerTlsConfig::new()
            .identity(tonic::transport::Identity::from_pem(read(&self.cert)?, read(&self.key)?));
        if let Some(ca) = &self.client_ca {
            cfg = cfg.client_ca_root(tonic::transport::Certificate::from_pem(read(ca)?)).client_auth_optional(false);
        }
        Ok(cfg)
    }
}

/// The certificates of a PEM file are usable by rustls: at least one, each
/// X.509 version 3 (rustls refuses version 1 certificates, which openssl
/// makes when a certificate is signed without extensions, and would only
/// say so to clients, at their handshake).
pub(crate) fn check_certificates(path: &std::path::Path) -> Result<(), String> {
    let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut count = 0;
    for pem in x509_parser::pem::Pem::iter_from_buffer(&data) {
        let pem = pem.map_err(|e| format!("{}: not PEM: {e}", path.display()))?;
        if pem.label != "CERTIFICATE" {
            continue;
        }
        count += 1;
        let cert = pem.parse_x509().map_err(|e| format!("{}: certificate {count}: {e}", path.display()))?;
        if cert.version() != x509_parser::x509::X509Version::V3 {
            return Err(format!(
                "{}: certificate {count} ({}) is X.509 version {}; TLS here needs version 3 (with openssl, sign it with -extfile and at least one extension, e.g. subjectAltName)",
                path.display(),
                cert.subject(),
                cert.version().0 + 1
            ));
        }
    }
    if count == 0 {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(())
}
