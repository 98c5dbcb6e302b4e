//! The error contract's machine-readable part: the `google.rpc.ErrorInfo`
//! domain, reasons and metadata keys this API sends with some statuses.
//! The server writes them and the client reads them from here, so the two
//! cannot drift apart.

/// The `ErrorInfo.domain` of every error this API describes.
pub const DOMAIN: &str = "eligibility.v1";

/// `ErrorInfo.reason` values.
pub mod reason {
    /// `ABORTED`: the write's `expected_revision` is not the head.
    pub const REVISION_MISMATCH: &str = "REVISION_MISMATCH";
    /// `FAILED_PRECONDITION`: the request names another store's id.
    pub const STORE_MISMATCH: &str = "STORE_MISMATCH";
    /// `FAILED_PRECONDITION`: a watch resumes after a revision the server
    /// has not reached.
    pub const RESUME_AHEAD: &str = "RESUME_AHEAD";
    /// `RESOURCE_EXHAUSTED`: a watch ended because its client read too
    /// slowly (the server held more unsent bytes than its budget allows);
    /// resume after the last revision received.
    pub const SLOW_CONSUMER: &str = "SLOW_CONSUMER";
}

/// `ErrorInfo.metadata` keys.
pub mod key {
    /// The revision the write expected (with `REVISION_MISMATCH`).
    pub const EXPECTED_REVISION: &str = "expected_revision";
    /// The head the write found (with `REVISION_MISMATCH`).
    pub const ACTUAL_REVISION: &str = "actual_revision";
    /// The server's store id (with `STORE_MISMATCH`).
    pub const STORE_ID: &str = "store_id";
    /// The server's head revision (with `RESUME_AHEAD`).
    pub const HEAD_REVISION: &str = "head_revision";
    /// The last revision the stream sent (with `SLOW_CONSUMER`).
    pub const RESUME_AFTER_REVISION: &str = "resume_after_revision";
}
