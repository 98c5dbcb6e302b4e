//! The embedded store: one SQLite file, WAL journal, `synchronous=FULL`, so
//! a write acknowledged to a client survives a crash or power loss.

use std::{
    fs::{self, File},
    path::{Path, PathBuf},
    str::FromStr,
    time::Duration,
};

use async_trait::async_trait;
use eligibility::Revision;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use super::{AppendOutcome, COLUMNS, Plan, Row, Store, StoreError, encode_changes};
use crate::model::{Changeset, ChangesetDraft};

/// The database file's name inside the data directory.
pub const DB_FILE: &str = "eligibility.sqlite3";
/// The lock file that keeps a second server off the same data directory.
pub const LOCK_FILE: &str = "LOCK";

/// The schema, in order (version, description, SQL).
const MIGRATIONS: &[(i64, &str, &str)] =
    &[(1, "changesets", include_str!("../../migrations/sqlite/0001_changesets.sql"))];

/// The SQLite store.
pub struct SqliteStore {
    pool: SqlitePool,
    store_id: String,
    path: PathBuf,
    // Held (locked) until `close` or drop; the OS releases the lock if the
    // process dies.
    lock: std::sync::Mutex<Option<File>>,
}

fn unavailable(context: &str) -> impl Fn(sqlx::Error) -> StoreError + '_ {
    move |e| StoreError::Unavailable(format!("{context}: {e}"))
}

/// The INSERT of one changeset row (parameters in [`super::append_in_tx`]'s
/// order).
const INSERT: &str = "INSERT INTO changesets (revision, effective_at, recorded_at, actor, reason, reference, request_id, request_fingerprint, activates, changes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

impl SqliteStore {
    /// Opens (creating if needed) the store in `data_dir`: takes the
    /// directory's lock, applies migrations, creates the store id once.
    pub async fn open(data_dir: &Path) -> Result<Self, StoreError> {
        fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::Unavailable(format!("cannot create data directory {}: {e}", data_dir.display()))
        })?;
        let lock_path = data_dir.join(LOCK_FILE);
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", lock_path.display())))?;
        lock.try_lock().map_err(|_| {
            StoreError::Unavailable(format!(
                "data directory {} is in use by another eligibility-server (lock {} is held)",
                data_dir.display(),
                lock_path.display()
            ))
        })?;
        let path = data_dir.join(DB_FILE);
        let options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(unavailable("sqlite options"))?
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
        super::migrator(MIGRATIONS)
            .run(&pool)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migrating {}: {e}", path.display())))?;
        sqlx::query("INSERT OR IGNORE INTO store_meta (key, value) VALUES ('store_id', ?)")
            .bind(uuid::Uuid::new_v4().to_string())
            .execute(&pool)
            .await
            .map_err(unavailable("creating store id"))?;
        let store_id: String = sqlx::query_scalar("SELECT value FROM store_meta WHERE key = 'store_id'")
            .fetch_one(&pool)
            .await
            .map_err(unavailable("reading store id"))?;
        Ok(SqliteStore { pool, store_id, path, lock: std::sync::Mutex::new(Some(lock)) })
    }

    /// Appends `drafts` in order, in one transaction (one sync to disk for
    /// all of them): the way to build a large history quickly (a
    /// benchmark's store, an import). Each is planned exactly as by
    /// [`Store::append`] (a replayed request id is skipped); returns the
    /// head. Not for a store a server has open (its memory would not see
    /// them until it catches up).
    pub async fn append_many(&self, drafts: &[ChangesetDraft]) -> Result<Revision, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(unavailable("begin"))?;
        let by = |col: &str| sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM changesets WHERE {col} = ?"));
        for draft in drafts {
            let changes_json = encode_changes(&draft.changes)?;
            let _ = super::append_in_tx!(tx, draft, None, by, changes_json, INSERT);
        }
        tx.commit().await.map_err(unavailable("commit"))?;
        self.head().await
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn store_id(&self) -> &str {
        &self.store_id
    }

    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }

    async fn head(&self) -> Result<Revision, StoreError> {
        let head: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(revision), 0) FROM changesets")
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable("reading head"))?;
        Ok(Revision(head as u64))
    }

    async fn append(
        &self,
        draft: &ChangesetDraft,
        expected_head: Option<Revision>,
    ) -> Result<AppendOutcome, StoreError> {
        let changes_json = encode_changes(&draft.changes)?;
        // IMMEDIATE takes the write lock up front, so the head read below
        // cannot go stale before the insert.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(unavailable("begin"))?;
        let by = |col: &str| sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM changesets WHERE {col} = ?"));
        let cs = match super::append_in_tx!(tx, draft, expected_head, by, changes_json, INSERT) {
            Plan::Skip(outcome) => return Ok(outcome),
            Plan::Insert(cs) => cs,
        };
        tx.commit().await.map_err(unavailable("commit"))?;
        Ok(AppendOutcome::Committed(cs))
    }

    async fn read_after(&self, after: Revision, limit: u32) -> Result<Vec<Changeset>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM changesets WHERE revision > ? ORDER BY revision LIMIT ?");
        let rows = sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql))
            .bind(after.0 as i64)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable("reading changesets"))?;
        rows.into_iter().map(Row::into_changeset).collect()
    }

    async fn close(&self) {
        self.pool.close().await;
        // Closing the file releases the directory lock for the next server.
        self.lock.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}
