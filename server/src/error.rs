//! The one domain error type, and what every transport says of it: its
//! gRPC code ([`Error::code`], one exhaustive `match`, so a new variant
//! forces a decision), the field a bad argument names
//! ([`Error::violation`]) and the machine-readable reason with its
//! metadata ([`Error::info`]). gRPC turns these into a status with standard
//! error details, HTTP into a problem (RFC 9457), the console into a page:
//! each from the error itself.

use eligibility::{
    ListId, Revision,
    error_info::{key, reason},
};
use tonic::Code;

/// Everything a domain operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request field is invalid; `field` is its path in the request
    /// (e.g. `items[3].country`).
    #[error("invalid {field}: {message}")]
    InvalidArgument {
        /// The field path.
        field: String,
        /// What is wrong, naming the bad value.
        message: String,
    },
    /// The list does not exist (at the revision asked, if given).
    #[error("list \"{list}\" does not exist{}", at.map(|r| format!(" at revision {r}")).unwrap_or_default())]
    ListNotFound {
        /// The list asked for.
        list: ListId,
        /// The revision asked at, when it is not the head.
        at: Option<Revision>,
    },
    /// A list with this id exists already.
    #[error("list \"{0}\" already exists")]
    ListExists(ListId),
    /// The idempotency key was used for a different request.
    #[error(
        "request_id {request_id:?} was already used for a different request (recorded at revision {revision}); use a new request_id for a new change"
    )]
    RequestIdReused {
        /// The key.
        request_id: String,
        /// Where it was first recorded.
        revision: Revision,
    },
    /// Optimistic concurrency failed.
    #[error("expected_revision {expected} does not match the head revision {actual}")]
    RevisionMismatch {
        /// What the client expected.
        expected: Revision,
        /// The actual head.
        actual: Revision,
    },
    /// `at_revision` (or a Diff/History revision) beyond the head.
    #[error("{field} {requested} is beyond the head revision {head}")]
    RevisionOutOfRange {
        /// Which field.
        field: &'static str,
        /// What was asked.
        requested: Revision,
        /// The head.
        head: Revision,
    },
    /// `min_revision` not reached within the wait.
    #[error("this replica has not reached min_revision {wanted} in time (it is at revision {head}); retry")]
    NotYetAtRevision {
        /// What was asked.
        wanted: Revision,
        /// Where the replica is.
        head: Revision,
    },
    /// The store cannot be reached or failed a write; nothing was recorded
    /// (or, for an unknown outcome, a retry with the same request_id is
    /// safe).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A watch named another store's id.
    #[error("this server's store is {actual}, not {expected}: a cursor from another store cannot be resumed here")]
    StoreMismatch {
        /// The id the client expected.
        expected: String,
        /// This server's store id.
        actual: String,
    },
    /// A watch resumes after a revision this server has not reached.
    #[error(
        "cannot resume after revision {requested}: this server's head is {head} (did it lose data, or is this another store?)"
    )]
    ResumeAhead {
        /// The requested revision.
        requested: Revision,
        /// The head.
        head: Revision,
    },
    /// A write claims an actor other than its authenticated caller.
    #[error("options.actor {claimed:?} is not the authenticated principal {principal:?}; leave it empty")]
    ActorMismatch {
        /// The actor the request named.
        claimed: String,
        /// Who the caller is.
        principal: String,
    },
    /// A limit (e.g. on watchers) was reached.
    #[error("{0}")]
    ResourceExhausted(String),
    /// The server's configuration is unusable (at start; never caused by a
    /// request).
    #[error("configuration: {0}")]
    Config(String),
    /// The service is shutting down.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// The store's content contradicts itself or the memory state: a bug or
    /// tampering. Never caused by a request.
    #[error("internal error: {0}")]
    Corrupt(String),
}

impl Error {
    /// The gRPC status code of the error (HTTP maps it on).
    pub fn code(&self) -> Code {
        match self {
            Error::InvalidArgument { .. } => Code::InvalidArgument,
            Error::ListNotFound { .. } => Code::NotFound,
            Error::ListExists(_) | Error::RequestIdReused { .. } => Code::AlreadyExists,
            Error::RevisionMismatch { .. } => Code::Aborted,
            Error::RevisionOutOfRange { .. } => Code::OutOfRange,
            Error::StoreMismatch { .. } | Error::ResumeAhead { .. } => Code::FailedPrecondition,
            Error::ActorMismatch { .. } => Code::PermissionDenied,
            Error::ResourceExhausted(_) => Code::ResourceExhausted,
            Error::NotYetAtRevision { .. } | Error::Unavailable(_) | Error::ShuttingDown => Code::Unavailable,
            Error::Corrupt(_) | Error::Config(_) => Code::Internal,
        }
    }

    /// The request field a bad argument names, and what is wrong with it.
    pub fn violation(&self) -> Option<(&str, &str)> {
        match self {
            Error::InvalidArgument { field, message } => Some((field, message)),
            _ => None,
        }
    }

    /// The machine-readable reason (`eligibility::error_info::reason`) and
    /// its metadata, for the errors a client acts on.
    pub fn info(&self) -> Option<(&'static str, Vec<(&'static str, String)>)> {
        match self {
            Error::RevisionMismatch { expected, actual } => Some((
                reason::REVISION_MISMATCH,
                vec![(key::EXPECTED_REVISION, expected.to_string()), (key::ACTUAL_REVISION, actual.to_string())],
            )),
            Error::StoreMismatch { actual, .. } => {
                Some((reason::STORE_MISMATCH, vec![(key::STORE_ID, actual.clone())]))
            }
            Error::ResumeAhead { head, .. } => {
                Some((reason::RESUME_AHEAD, vec![(key::HEAD_REVISION, head.to_string())]))
            }
            _ => None,
        }
    }

    /// Whether the error is the server's own (a bug, tampering, a bad
    /// configuration), never a client's: logged where it is answered.
    pub fn is_internal(&self) -> bool {
        self.code() == Code::Internal
    }

    /// An invalid-argument error.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidArgument { field: field.into(), message: message.into() }
    }
}

/// Result alias for domain operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
