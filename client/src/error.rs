//! The client's error type.

use eligibility::{
    Revision,
    error_info::{DOMAIN, key, reason},
};
use tonic::Code;
use tonic_types::StatusExt;

/// The cause behind a transport or TLS error, kept for error reporters
/// (`std::error::Error::source`).
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything a client call can fail with. Match on the variant to decide
/// what to do; [`Error::Status`] keeps the full gRPC status for the rest.
/// New variants may come in minor versions: keep a `_` arm.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request was invalid; `field` names the offending request field
    /// (from the standard `BadRequest` error details) when the server gave
    /// one.
    #[error("invalid argument{}: {message}", field.as_deref().map(|f| format!(" ({f})")).unwrap_or_default())]
    InvalidArgument {
        /// The request field, e.g. `items[2].country`.
        field: Option<String>,
        /// The server's message.
        message: String,
    },
    /// The list (or other entity) does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The list exists already, or a request id was reused for different
    /// content.
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// Optimistic concurrency failed: the head was not the expected
    /// revision.
    #[error("conflict: {message}")]
    Conflict {
        /// The revision the write expected.
        expected: Option<Revision>,
        /// The head it found.
        actual: Option<Revision>,
        /// The server's message.
        message: String,
    },
    /// A revision beyond the server's head was asked for.
    #[error("out of range: {0}")]
    OutOfRange(String),
    /// The server (or its store) is unavailable, or did not reach a
    /// requested `min_revision` in time. Safe to retry reads; retry writes
    /// with the same request id.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Missing or bad credentials.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// The credentials do not allow the call.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// A limit was exceeded.
    #[error("resource exhausted: {0}")]
    ResourceExhausted(String),
    /// Any other gRPC status.
    #[error("{}: {}", .0.code(), .0.message())]
    Status(Box<tonic::Status>),
    /// The connection could not be set up (or the client's own settings,
    /// its URL, user agent or token, cannot be used).
    #[error("transport: {message}")]
    Transport {
        /// What failed, with its causes on one line.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Cause>,
    },
    /// TLS could not be set up with the server: its certificate is not
    /// trusted, the server wants a client certificate, a certificate is
    /// unusable... The message says which, and what to give. Retrying does
    /// not help.
    #[error("TLS: {message}")]
    Tls {
        /// What failed and what to do, then the details.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Cause>,
    },
    /// The server's answer lacks something the API promises.
    #[error("invalid response: {0}")]
    InvalidResponse(String),
    /// The server belongs to a different store than expected (a cursor or
    /// mirror cannot continue against it).
    #[error("store mismatch: expected store {expected}, server has {actual}")]
    StoreMismatch {
        /// The expected store id.
        expected: String,
        /// The server's store id.
        actual: String,
    },
    /// Any other failed precondition (e.g. resuming after a revision the
    /// server does not have).
    #[error("failed precondition: {0}")]
    FailedPrecondition(String),
    /// A mirror has not heard from the server for longer than its
    /// staleness bound: it refuses to answer rather than risk a stale
    /// "eligible".
    #[error("stale: the mirror's last contact with the server was {age:?} ago (bound {max:?}); refusing to answer")]
    Stale {
        /// Time since the last contact.
        age: std::time::Duration,
        /// The configured bound.
        max: std::time::Duration,
    },
    /// A mirror has not received its initial snapshot yet.
    #[error("not ready: the mirror has not received its first snapshot")]
    NotReady,
    /// A mirror cannot answer this point (e.g. an `as_of` before its
    /// snapshot); ask the server.
    #[error("not in the mirror: {0}")]
    NotInMirror(String),
}

impl From<tonic::Status> for Error {
    fn from(s: tonic::Status) -> Self {
        // A status made on this side from a connection failure (the server
        // never answered): say what failed, not the status tonic chose.
        if let Some(t) = std::error::Error::source(&s).and_then(|e| e.downcast_ref::<tonic::transport::Error>()) {
            let chain = chain(t);
            return connection_error(&chain, Some(Box::new(s)));
        }
        let message = s.message().to_owned();
        match s.code() {
            Code::InvalidArgument => {
                let field =
                    s.get_details_bad_request().and_then(|br| br.field_violations.first().map(|v| v.field.clone()));
                Error::InvalidArgument { field, message }
            }
            Code::NotFound => Error::NotFound(message),
            Code::AlreadyExists => Error::AlreadyExists(message),
            Code::Aborted => {
                let md = s.get_details_error_info().map(|i| i.metadata).unwrap_or_default();
                let rev = |k: &str| md.get(k).and_then(|v| v.parse().ok()).map(Revision);
                Error::Conflict { expected: rev(key::EXPECTED_REVISION), actual: rev(key::ACTUAL_REVISION), message }
            }
            Code::FailedPrecondition => match s.get_details_error_info() {
                Some(i) if i.domain == DOMAIN && i.reason == reason::STORE_MISMATCH => Error::StoreMismatch {
                    expected: String::new(),
                    actual: i.metadata.get(key::STORE_ID).cloned().unwrap_or_default(),
                },
                _ => Error::FailedPrecondition(message),
            },
            Code::OutOfRange => Error::OutOfRange(message),
            Code::Unavailable => Error::Unavailable(message),
            Code::Unauthenticated => Error::Unauthenticated(message),
            Code::PermissionDenied => Error::PermissionDenied(message),
            Code::ResourceExhausted => Error::ResourceExhausted(message),
            _ => Error::Status(Box::new(s)),
        }
    }
}

impl From<tonic::transport::Error> for Error {
    fn from(e: tonic::transport::Error) -> Self {
        let chain = chain(&e);
        connection_error(&chain, Some(Box::new(e)))
    }
}

/// An error and its sources, as one line (each distinct message once).
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// TLS failures, by what rustls and the peer report, with what to do.
const TLS_HINTS: &[(&str, &str)] = &[
    (
        "CertificateRequired",
        "the server requires a client certificate (mutual TLS): give one signed by a CA the server trusts (eligctl: --client-cert and --client-key)",
    ),
    (
        "UnknownIssuer",
        "the server's certificate is not signed by a trusted CA: give the CA that signed it (eligctl: --ca-cert)",
    ),
    (
        "NotValidForName",
        "the server's certificate does not name the host in the URL: connect by a name it lists, or set the name to verify",
    ),
    ("Expired", "a certificate has expired"),
    (
        "UnsupportedCertVersion",
        "a certificate is X.509 version 1; TLS here needs version 3 (with openssl, sign it with -extfile and at least one extension)",
    ),
    (
        "BadCertificate",
        "the server refused the client certificate: is it signed by the CA the server trusts for clients?",
    ),
    ("UnknownCA", "the server does not trust the CA that signed the client certificate"),
    ("frame with invalid size", "the server did not answer as plaintext HTTP/2: if it serves TLS, use an https:// URL"),
];

/// A connection failure: a TLS one (with what to do) or a transport one.
fn connection_error(chain: &str, source: Option<Cause>) -> Error {
    match TLS_HINTS.iter().find(|(needle, _)| chain.contains(needle)) {
        Some(_) => Error::Tls { message: explain(chain), source },
        None => Error::Transport { message: chain.to_owned(), source },
    }
}

impl Error {
    /// A transport error of the client's own making, with its cause.
    pub(crate) fn transport(message: impl Into<String>, source: Option<Cause>) -> Error {
        Error::Transport { message: message.into(), source }
    }
}

/// What a TLS failure means and what to do, then the details.
pub(crate) fn explain(chain: &str) -> String {
    match TLS_HINTS.iter().find(|(needle, _)| chain.contains(needle)) {
        Some((_, hint)) => format!("{hint} ({chain})"),
        None => chain.to_owned(),
    }
}

impl Error {
    /// Whether retrying the same call may succeed (the server or network was
    /// unavailable). Reads are retried automatically by the client's retry
    /// policy; a write may be retried with the same request id.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Unavailable(_) | Error::Transport { .. } => true,
            Error::Status(s) => {
                matches!(s.code(), Code::Unknown | Code::Cancelled) && std::error::Error::source(s.as_ref()).is_some()
            }
            _ => false,
        }
    }
}

/// Result alias for client calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;
