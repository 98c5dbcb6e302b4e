//! The client's error type.

use tonic::Code;
use tonic_types::StatusExt;

/// Everything a client call can fail with. Match on the variant to decide
/// what to do; [`Error::Status`] keeps the full gRPC status for the rest.
#[derive(Debug, thiserror::Error)]
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
        /// The server's message (names expected and actual revisions).
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
    /// The connection could not be set up.
    #[error("transport: {0}")]
    Transport(String),
    /// The server's answer lacks something the API promises.
    #[error("invalid response: {0}")]
    InvalidResponse(String),
    /// The server belongs to a different store than expected.
    #[error("store mismatch: expected store {expected}, server has {actual}")]
    StoreMismatch {
        /// The expected store id.
        expected: String,
        /// The server's store id.
        actual: String,
    },
}

impl From<tonic::Status> for Error {
    fn from(s: tonic::Status) -> Self {
        let message = s.message().to_owned();
        match s.code() {
            Code::InvalidArgument => {
                let field =
                    s.get_details_bad_request().and_then(|br| br.field_violations.first().map(|v| v.field.clone()));
                Error::InvalidArgument { field, message }
            }
            Code::NotFound => Error::NotFound(message),
            Code::AlreadyExists => Error::AlreadyExists(message),
            Code::Aborted => Error::Conflict { message },
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
        Error::Transport(format!("{e}: {}", std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_default()))
    }
}

/// Result alias for client calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;
