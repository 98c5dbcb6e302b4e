//! Connecting: the builder's options (TLS, token, timeouts, retries), and
//! the retry policy of idempotent calls.

use std::time::Duration;

use tonic::{
    Request, Status,
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity},
};

use super::Client;
use crate::error::{Error, Result};

/// Default timeout for one call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default timeout for establishing a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Adds the bearer token (if any) to every call.
#[derive(Clone, Debug, Default)]
pub(crate) struct Auth {
    header: Option<MetadataValue<Ascii>>,
}

impl Interceptor for Auth {
    fn call(&mut self, mut req: Request<()>) -> std::result::Result<Request<()>, Status> {
        if let Some(h) = &self.header {
            req.metadata_mut().insert("authorization", h.clone());
        }
        Ok(req)
    }
}

/// The transport under the generated clients ([`crate::Client::raw_query`],
/// [`crate::Client::raw_admin`]): the client's connection, with its bearer
/// token added to every call. Opaque: how the token is added is the
/// client's business (today a tonic interceptor).
#[derive(Clone, Debug)]
pub struct Transport(InterceptedService<Channel, Auth>);

impl Transport {
    pub(crate) fn new(channel: Channel, auth: Auth) -> Self {
        Transport(InterceptedService::new(channel, auth))
    }
}

impl tower_service::Service<http::Request<tonic::body::Body>> for Transport {
    type Response = http::Response<tonic::service::interceptor::ResponseBody<tonic::body::Body>>;
    type Error = tonic::transport::Error;
    type Future = tonic::service::interceptor::ResponseFuture<tonic::transport::channel::ResponseFuture>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::result::Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        self.0.call(req)
    }
}

/// TLS settings (rustls with ring).
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct TlsOptions {
    /// PEM of the CA that signed the server's certificate (default: none:
    /// the system's root certificates are trusted instead).
    pub ca_pem: Option<Vec<u8>>,
    /// Client certificate and key (PEM) for mutual TLS.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
    /// Server name to verify, if not the URL's host.
    pub domain: Option<String>,
}

impl TlsOptions {
    /// Trusts the CA in `ca_pem` (instead of the system's roots).
    pub fn trusting(ca_pem: impl Into<Vec<u8>>) -> Self {
        TlsOptions { ca_pem: Some(ca_pem.into()), ..TlsOptions::default() }
    }

    /// Presents this client certificate and key (PEM): mutual TLS.
    pub fn with_identity(mut self, cert_pem: impl Into<Vec<u8>>, key_pem: impl Into<Vec<u8>>) -> Self {
        self.identity = Some((cert_pem.into(), key_pem.into()));
        self
    }

    /// Verifies the server's certificate for this name, not the URL's host.
    pub fn with_domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }
}

/// Retries with exponential backoff and full jitter, for idempotent calls
/// (reads) only; writes are never retried automatically (retry them with
/// the same request id).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts in total (1 = no retry).
    pub max_attempts: u32,
    /// Backoff before the first retry (upper bound of the jitter).
    pub initial_backoff: Duration,
    /// Largest backoff.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_attempts: 4, initial_backoff: Duration::from_millis(50), max_backoff: Duration::from_secs(2) }
    }
}

impl RetryPolicy {
    /// `max_attempts` attempts in all (0: without end, for a watch's
    /// reconnects), the backoff growing from `initial` to `max`.
    pub fn new(max_attempts: u32, initial: Duration, max: Duration) -> Self {
        RetryPolicy { max_attempts, initial_backoff: initial, max_backoff: max }
    }

    /// No retries.
    pub fn none() -> Self {
        RetryPolicy { max_attempts: 1, ..Self::default() }
    }

    /// The backoff before retry number `attempt` (1-based): a random
    /// duration up to `min(max, initial * 2^(attempt-1))` ("full jitter").
    pub fn backoff(&self, attempt: u32) -> Duration {
        let cap = self.initial_backoff.saturating_mul(1u32 << attempt.saturating_sub(1).min(16)).min(self.max_backoff);
        cap.mul_f64(jitter())
    }
}

/// A pseudo-random number in [0, 1): enough to spread retries apart.
pub(crate) fn jitter() -> f64 {
    fastrand::f64()
}

/// Builds a [`Client`] with options.
#[derive(Clone, Debug)]
pub struct ClientBuilder {
    url: String,
    timeout: Duration,
    connect_timeout: Duration,
    user_agent: Option<String>,
    keep_alive: Option<Duration>,
    token: Option<String>,
    tls: Option<TlsOptions>,
    retry: RetryPolicy,
}

impl ClientBuilder {
    pub(super) fn new(url: String) -> Self {
        ClientBuilder {
            url,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            user_agent: None,
            keep_alive: None,
            token: None,
            tls: None,
            retry: RetryPolicy::default(),
        }
    }

    /// HTTP/2 keep-alive pings at this interval (also while idle), so a dead
    /// connection is noticed and watch streams reconnect.
    pub fn with_keep_alive(mut self, interval: Duration) -> Self {
        self.keep_alive = Some(interval);
        self
    }

    /// Sends `authorization: Bearer <token>` with every call.
    pub fn with_bearer_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Connects with TLS (use an `https://` URL).
    pub fn with_tls(mut self, tls: TlsOptions) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Retry policy for idempotent calls.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Per-call timeout (sent to the server as the call's deadline).
    pub fn with_timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Connection timeout.
    pub fn with_connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// User agent sent with every call.
    pub fn with_user_agent(mut self, ua: impl Into<String>) -> Self {
        self.user_agent = Some(ua.into());
        self
    }

    fn endpoint(&self) -> Result<Endpoint> {
        let mut ep = Endpoint::from_shared(self.url.clone())
            .map_err(|e| Error::transport(format!("invalid url {:?}: {e}", self.url), Some(Box::new(e))))?
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout)
            // Many watch streams may share this connection: size the
            // receive windows for them (see the server's Http2Config).
            .initial_connection_window_size(Some(16 << 20))
            .initial_stream_window_size(Some(1 << 20))
            .tcp_nodelay(true);
        if let Some(ua) = &self.user_agent {
            ep = ep
                .user_agent(ua.clone())
                .map_err(|e| Error::transport(format!("invalid user agent: {e}"), Some(Box::new(e))))?;
        }
        if let Some(k) = self.keep_alive {
            ep = ep.http2_keep_alive_interval(k).keep_alive_timeout(k).keep_alive_while_idle(true);
        }
        // An https:// URL needs TLS even when no option was given: the
        // system's roots then say whom to trust.
        let https = self.url.starts_with("https://");
        if let Some(tls) = self.tls.clone().or_else(|| https.then(TlsOptions::default)) {
            let mut cfg = ClientTlsConfig::new();
            cfg = match &tls.ca_pem {
                Some(ca) => cfg.ca_certificate(Certificate::from_pem(ca)),
                None => cfg.with_native_roots(),
            };
            if let Some((cert, key)) = &tls.identity {
                cfg = cfg.identity(Identity::from_pem(cert, key));
            }
            if let Some(d) = &tls.domain {
                cfg = cfg.domain_name(d.clone());
            }
            ep = ep.tls_config(cfg).map_err(|e| Error::Tls {
                message: crate::error::explain(&crate::error::chain(&e)),
                source: Some(Box::new(e)),
            })?;
        }
        Ok(ep)
    }

    fn auth(&self) -> Result<Auth> {
        let header = match &self.token {
            None => None,
            Some(t) => {
                Some(format!("Bearer {t}").parse().map_err(|e: tonic::metadata::errors::InvalidMetadataValue| {
                    Error::transport("the bearer token has characters not allowed in a header", Some(Box::new(e)))
                })?)
            }
        };
        Ok(Auth { header })
    }

    /// Connects now; fails if the server cannot be reached.
    pub async fn connect(self) -> Result<Client> {
        let channel = self.endpoint()?.connect().await?;
        Ok(Client::with_parts(channel, self.auth()?, self.retry.clone()))
    }

    /// Returns a client that connects on first use (and reconnects after a
    /// failure).
    pub fn connect_lazy(self) -> Result<Client> {
        Ok(Client::with_parts(self.endpoint()?.connect_lazy(), self.auth()?, self.retry.clone()))
    }
}
