//! The one domain error type. The gRPC layer maps it to a status with one
//! exhaustive `match`, so a new variant forces a decision about its code.

use eligibility::{ListId, Revision};

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
    /// An invalid-argument error.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidArgument { field: field.into(), message: message.into() }
    }
}

/// Result alias for domain operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
