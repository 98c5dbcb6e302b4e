//! Durable storage of the changeset log.
//!
//! The store is the source of truth: an append-only log of changesets with
//! dense revisions. The in-memory registry is rebuilt from it on start and
//! follows it afterwards. The trait is shaped for several replicas on one
//! database: idempotency keys and the head precondition are checked inside
//! the store's transaction (memory may lag another replica), and
//! `read_after` serves both start-up loading and tailing.

use async_trait::async_trait;
use eligibility::Revision;

use crate::model::{Change, Changeset, ChangesetDraft};

pub mod postgres;
pub mod sqlite;

pub use postgres::{PgOptions, PgStore};
pub use sqlite::SqliteStore;

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or refused the operation; the write
    /// did not happen (or its outcome is unknown: a retry with the same
    /// request_id is safe).
    #[error("{0}")]
    Unavailable(String),
    /// The stored data is not what this code expects.
    #[error("{0}")]
    Corrupt(String),
}

/// The outcome of [`Store::append`].
#[derive(Debug)]
pub enum AppendOutcome {
    /// Recorded as a new revision.
    Committed(Changeset),
    /// The request id (or, for an activation entry, the activated revision)
    /// was already recorded with the same content: nothing was written; this
    /// is the original changeset.
    Replayed(Changeset),
    /// The request id was already recorded for different content.
    RequestIdReused(Changeset),
    /// The head was not the expected revision; nothing was written.
    HeadMismatch {
        /// The precondition.
        expected: Revision,
        /// The store's head.
        actual: Revision,
    },
}

/// Durable, append-only changeset storage.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The store's id, random and fixed at creation.
    fn store_id(&self) -> &str;

    /// A short description for logs (e.g. the file path).
    fn describe(&self) -> String;

    /// For stores that other replicas append to: a signal that changes
    /// whenever they may have appended (a notification arrived, or the
    /// notification channel reconnected), so the registry re-reads the log.
    /// `None` for a store this process alone writes.
    fn appended_elsewhere(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }

    /// The head revision (0 for an empty store).
    async fn head(&self) -> Result<Revision, StoreError>;

    /// Records `draft` as the next revision, in one transaction that is
    /// durable when this returns `Committed`. If `draft.request` names a
    /// recorded key, or `draft.activates` a revision already activated,
    /// nothing is written. If `expected_head` is given and differs from the
    /// head, nothing is written. `recorded_at` is the commit time, never
    /// earlier than the previous changeset's.
    async fn append(
        &self,
        draft: &ChangesetDraft,
        expected_head: Option<Revision>,
    ) -> Result<AppendOutcome, StoreError>;

    /// Up to `limit` changesets with revision > `after`, ascending.
    async fn read_after(&self, after: Revision, limit: u32) -> Result<Vec<Changeset>, StoreError>;

    /// Closes connections (after in-flight operations end).
    async fn close(&self);
}

/// Serializes changes for storage.
pub(crate) fn encode_changes(changes: &[Change]) -> Result<String, StoreError> {
    serde_json::to_string(changes).map_err(|e| StoreError::Corrupt(format!("cannot encode changes: {e}")))
}

/// Parses stored changes.
pub(crate) fn decode_changes(revision: i64, json: &str) -> Result<Vec<Change>, StoreError> {
    serde_json::from_str(json)
        .map_err(|e| StoreError::Corrupt(format!("revision {revision}: cannot decode changes: {e}")))
}
