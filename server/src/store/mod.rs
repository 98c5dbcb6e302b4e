//! Durable storage of the changeset log.
//!
//! The store is the source of truth: an append-only log of changesets with
//! dense revisions. The in-memory registry is rebuilt from it on start and
//! follows it afterwards. The trait is shaped for several replicas on one
//! database: idempotency keys and the head precondition are checked inside
//! the store's transaction (memory may lag another replica), and
//! `read_after` serves both start-up loading and tailing.

use async_trait::async_trait;
use eligibility::{Revision, Timestamp};

use crate::model::{Change, Changeset, ChangesetDraft, RequestKey};

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
/// A migrator over migrations compiled into the binary.
///
/// Built at run time from `include_str!` rather than with `sqlx::migrate!`:
/// the macro needs sqlx's proc-macro crates, which compile and link both
/// database drivers a second time for the host (the heaviest part of a
/// clean build). The checksum is sqlx's own, so databases migrated by
/// either way agree.
pub(crate) fn migrator(migrations: &[(i64, &'static str, &'static str)]) -> sqlx::migrate::Migrator {
    use sqlx::SqlSafeStr;
    sqlx::migrate::Migrator::with_migrations(
        migrations
            .iter()
            .map(|&(version, description, sql)| {
                sqlx::migrate::Migration::new(
                    version,
                    description.into(),
                    sqlx::migrate::MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

pub(crate) fn encode_changes(changes: &[Change]) -> Result<String, StoreError> {
    serde_json::to_string(changes).map_err(|e| StoreError::Corrupt(format!("cannot encode changes: {e}")))
}

/// Parses stored changes.
pub(crate) fn decode_changes(revision: i64, json: &str) -> Result<Box<[Change]>, StoreError> {
    serde_json::from_str(json)
        .map_err(|e| StoreError::Corrupt(format!("revision {revision}: cannot decode changes: {e}")))
}

/// A changeset row as both stores keep it.
pub(crate) struct Row {
    revision: i64,
    effective_at: i64,
    recorded_at: i64,
    actor: String,
    reason: String,
    reference: String,
    request_id: Option<String>,
    request_fingerprint: Option<String>,
    activates: Option<i64>,
    changes: String,
}

/// The columns of [`Row`], for SELECTs (`changes` as text).
pub(crate) const COLUMNS: &str = "revision, effective_at, recorded_at, actor, reason, reference, request_id, request_fingerprint, activates, changes";

/// Written out rather than derived: the derive is a proc macro from sqlx's
/// macro crates, which the build leaves out (see [`migrator`]).
impl<'r, R> sqlx::FromRow<'r, R> for Row
where
    R: sqlx::Row,
    &'static str: sqlx::ColumnIndex<R>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        Ok(Row {
            revision: row.try_get("revision")?,
            effective_at: row.try_get("effective_at")?,
            recorded_at: row.try_get("recorded_at")?,
            actor: row.try_get("actor")?,
            reason: row.try_get("reason")?,
            reference: row.try_get("reference")?,
            request_id: row.try_get("request_id")?,
            request_fingerprint: row.try_get("request_fingerprint")?,
            activates: row.try_get("activates")?,
            changes: row.try_get("changes")?,
        })
    }
}

impl Row {
    pub(crate) fn into_changeset(self) -> Result<Changeset, StoreError> {
        let revision = self.revision;
        let ts = |col: &str, v: i64| {
            Timestamp::from_micros(v)
                .ok_or_else(|| StoreError::Corrupt(format!("revision {revision}: {col} {v} out of range")))
        };
        Ok(Changeset {
            revision: Revision(revision as u64),
            effective_at: ts("effective_at", self.effective_at)?,
            recorded_at: ts("recorded_at", self.recorded_at)?,
            actor: self.actor.into(),
            reason: self.reason.into(),
            reference: self.reference.into(),
            request: self.request_id.map(|id| RequestKey {
                id: id.into(),
                fingerprint: self.request_fingerprint.unwrap_or_default().into(),
            }),
            activates: self.activates.map(|r| Revision(r as u64)),
            changes: decode_changes(revision, &self.changes)?,
        })
    }
}

/// What an append finds in the store, inside its transaction, before
/// writing.
pub(crate) struct Found {
    /// The changeset recorded under the draft's request id, if any.
    pub by_request: Option<Changeset>,
    /// The activation entry already recorded for the draft's `activates`.
    pub by_activation: Option<Changeset>,
    /// The head revision and its recorded_at (None: empty store).
    pub last: Option<(Revision, Timestamp)>,
}

/// What an append does: the same rules for every store.
pub(crate) enum Plan {
    /// Write nothing; answer this.
    Skip(AppendOutcome),
    /// Insert this changeset (revision head + 1).
    Insert(Changeset),
}

/// Decides an append from what the store holds: replay or refuse a reused
/// request id, replay an activation, check the head precondition, else
/// number the new changeset. `recorded_at` never goes backwards (even if
/// the clock does), so transaction time is monotonic in revision.
pub(crate) fn plan(draft: &ChangesetDraft, expected_head: Option<Revision>, found: Found) -> Plan {
    if let (Some(key), Some(cs)) = (&draft.request, found.by_request) {
        let same = cs.request.as_ref().is_some_and(|k| k.fingerprint == key.fingerprint);
        return Plan::Skip(if same { AppendOutcome::Replayed(cs) } else { AppendOutcome::RequestIdReused(cs) });
    }
    if let Some(cs) = found.by_activation {
        return Plan::Skip(AppendOutcome::Replayed(cs));
    }
    let (head, last_recorded) = found.last.unwrap_or((Revision::ZERO, Timestamp::now()));
    if let Some(expected) = expected_head
        && expected != head
    {
        return Plan::Skip(AppendOutcome::HeadMismatch { expected, actual: head });
    }
    Plan::Insert(draft.to_changeset(head.next(), Timestamp::now().max(last_recorded)))
}

/// The body of an append inside its transaction, the same on every store:
/// look up the request id and the activated revision, read the head, decide
/// with [`plan`], and insert. Evaluates to the [`Plan`] (on `Insert`, the
/// row is written, not yet committed). A macro because the stores' query
/// types differ; `$by(col)` builds "SELECT columns WHERE col = <param>".
macro_rules! append_in_tx {
    ($tx:ident, $draft:expr, $expected_head:expr, $by:ident, $changes_json:expr, $insert:expr) => {{
        use $crate::store::{Found, Plan, Row, plan};
        let draft = $draft;
        let by_request = match &draft.request {
            Some(key) => sqlx::query_as::<_, Row>($by("request_id"))
                .bind(&key.id)
                .fetch_optional(&mut *$tx)
                .await
                .map_err(unavailable("looking up request_id"))?
                .map(Row::into_changeset)
                .transpose()?,
            None => None,
        };
        let by_activation = match draft.activates {
            Some(orig) => sqlx::query_as::<_, Row>($by("activates"))
                .bind(orig.0 as i64)
                .fetch_optional(&mut *$tx)
                .await
                .map_err(unavailable("looking up activation"))?
                .map(Row::into_changeset)
                .transpose()?,
            None => None,
        };
        let last: Option<(i64, i64)> =
            sqlx::query_as("SELECT revision, recorded_at FROM changesets ORDER BY revision DESC LIMIT 1")
                .fetch_optional(&mut *$tx)
                .await
                .map_err(unavailable("reading head"))?;
        let last = last.map(|(r, t)| {
            (
                eligibility::Revision(r as u64),
                eligibility::Timestamp::from_micros(t).unwrap_or_else(eligibility::Timestamp::now),
            )
        });
        let planned = plan(draft, $expected_head, Found { by_request, by_activation, last });
        if let Plan::Insert(cs) = &planned {
            sqlx::query($insert)
                .bind(cs.revision.0 as i64)
                .bind(cs.effective_at.as_micros())
                .bind(cs.recorded_at.as_micros())
                .bind(&cs.actor)
                .bind(&cs.reason)
                .bind(&cs.reference)
                .bind(cs.request.as_ref().map(|k| k.id.clone()))
                .bind(cs.request.as_ref().map(|k| k.fingerprint.clone()))
                .bind(cs.activates.map(|r| r.0 as i64))
                .bind(&$changes_json)
                .execute(&mut *$tx)
                .await
                .map_err(unavailable("inserting changeset"))?;
        }
        planned
    }};
}
pub(crate) use append_in_tx;
