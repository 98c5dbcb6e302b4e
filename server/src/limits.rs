//! Limits on what one request may ask: each has a clear error past it.
//! Enforced where requests enter the application (see `reads::request`
//! and `writes::request`), the same for every transport.

use std::time::Duration;

/// Limits on request sizes. Each has a clear error past it.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Items in one BatchCheck.
    pub max_batch: usize,
    /// Entry changes in one Apply.
    pub max_changes: usize,
    /// Largest page size for paged reads.
    pub max_page_size: u32,
    /// Longest wait for `min_revision`.
    pub max_wait: Duration,
    /// Largest request message, bytes (larger: RESOURCE_EXHAUSTED).
    pub max_message_bytes: usize,
    /// Unary calls in progress at once, server-wide (more:
    /// RESOURCE_EXHAUSTED, so a flood is refused rather than queued).
    pub max_concurrent_requests: usize,
    /// Calls in progress at once per connection (more wait their turn).
    pub concurrency_per_connection: usize,
    /// Longest time to answer a call (Watch streams excepted).
    pub request_timeout: Duration,
    /// Longest time to receive an HTTP request's body (a gRPC request's
    /// is within `request_timeout`).
    pub body_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_batch: 10_000,
            max_changes: 10_000,
            max_page_size: 1000,
            max_wait: Duration::from_secs(5),
            max_message_bytes: 4 << 20,
            max_concurrent_requests: 4096,
            concurrency_per_connection: 256,
            request_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(10),
        }
    }
}

/// Byte limits on free-text fields.
pub mod text_limits {
    /// `reason`.
    pub const REASON: usize = 4096;
    /// `reference`.
    pub const REFERENCE: usize = 1024;
    /// `request_id`.
    pub const REQUEST_ID: usize = 128;
    /// `actor`.
    pub const ACTOR: usize = 256;
    /// Entry `conditions`.
    pub const CONDITIONS: usize = 1024;
    /// List `title`.
    pub const TITLE: usize = 256;
    /// List `description`.
    pub const DESCRIPTION: usize = 4096;
    /// List `authority`.
    pub const AUTHORITY: usize = 512;
}
