//! The embedded store: one SQLite file, WAL journal, `synchronous=FULL`, so
//! a write acknowledged to a client survives a crash or power loss.

use std::{
    fs::{self, File},
    path::{Path, PathBuf},
    str::FromStr,
    time::Duration,
};

use async_trait::async_trait;
use eligibility::{Revision, Timestamp};
use sqlx::{
    Row,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous},
};

use super::{AppendOutcome, Store, StoreError, decode_changes, encode_changes};
use crate::model::{Changeset, ChangesetDraft, RequestKey};

/// The database file's name inside the data directory.
pub const DB_FILE: &str = "eligibility.sqlite3";
/// The lock file that keeps a second server off the same data directory.
pub const LOCK_FILE: &str = "LOCK";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

const COLUMNS: &str = "revision, effective_at, recorded_at, actor, reason, reference, request_id, request_fingerprint, activates, changes";

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
        MIGRATOR.run(&pool).await.map_err(|e| StoreError::Unavailable(format!("migrating {}: {e}", path.display())))?;
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
}

fn row_to_changeset(row: &SqliteRow) -> Result<Changeset, StoreError> {
    let get_err = |e: sqlx::Error| StoreError::Corrupt(format!("reading changeset row: {e}"));
    let revision: i64 = row.try_get("revision").map_err(get_err)?;
    let ts = |col: &str| -> Result<Timestamp, StoreError> {
        let v: i64 = row.try_get(col).map_err(get_err)?;
        Timestamp::from_micros(v)
            .ok_or_else(|| StoreError::Corrupt(format!("revision {revision}: {col} {v} out of range")))
    };
    let request_id: Option<String> = row.try_get("request_id").map_err(get_err)?;
    let fingerprint: Option<String> = row.try_get("request_fingerprint").map_err(get_err)?;
    let activates: Option<i64> = row.try_get("activates").map_err(get_err)?;
    let changes: String = row.try_get("changes").map_err(get_err)?;
    Ok(Changeset {
        revision: Revision(revision as u64),
        effective_at: ts("effective_at")?,
        recorded_at: ts("recorded_at")?,
        actor: row.try_get("actor").map_err(get_err)?,
        reason: row.try_get("reason").map_err(get_err)?,
        reference: row.try_get("reference").map_err(get_err)?,
        request: request_id.map(|id| RequestKey { id, fingerprint: fingerprint.unwrap_or_default() }),
        activates: activates.map(|r| Revision(r as u64)),
        changes: decode_changes(revision, &changes)?,
    })
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
        if let Some(key) = &draft.request {
            let sql = format!("SELECT {COLUMNS} FROM changesets WHERE request_id = ?");
            let found = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&key.id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(unavailable("looking up request_id"))?;
            if let Some(row) = found {
                let cs = row_to_changeset(&row)?;
                let same = cs.request.as_ref().is_some_and(|k| k.fingerprint == key.fingerprint);
                return Ok(if same { AppendOutcome::Replayed(cs) } else { AppendOutcome::RequestIdReused(cs) });
            }
        }
        if let Some(orig) = draft.activates {
            let sql = format!("SELECT {COLUMNS} FROM changesets WHERE activates = ?");
            let found = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(orig.0 as i64)
                .fetch_optional(&mut *tx)
                .await
                .map_err(unavailable("looking up activation"))?;
            if let Some(row) = found {
                return Ok(AppendOutcome::Replayed(row_to_changeset(&row)?));
            }
        }
        let last = sqlx::query("SELECT revision, recorded_at FROM changesets ORDER BY revision DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await
            .map_err(unavailable("reading head"))?;
        let (head, last_recorded) = match last {
            Some(row) => (
                Revision(row.get::<i64, _>(0) as u64),
                Timestamp::from_micros(row.get::<i64, _>(1)).unwrap_or_else(Timestamp::now),
            ),
            None => (Revision::ZERO, Timestamp::now()),
        };
        if let Some(expected) = expected_head
            && expected != head
        {
            return Ok(AppendOutcome::HeadMismatch { expected, actual: head });
        }
        // recorded_at never goes backwards, even if the clock does, so
        // transaction time is monotonic in revision.
        let recorded_at = Timestamp::now().max(last_recorded);
        let effective_at = draft.effective_at.unwrap_or(recorded_at);
        let revision = head.next();
        sqlx::query(
            "INSERT INTO changesets (revision, effective_at, recorded_at, actor, reason, reference, request_id, request_fingerprint, activates, changes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(revision.0 as i64)
        .bind(effective_at.as_micros())
        .bind(recorded_at.as_micros())
        .bind(&draft.actor)
        .bind(&draft.reason)
        .bind(&draft.reference)
        .bind(draft.request.as_ref().map(|k| k.id.clone()))
        .bind(draft.request.as_ref().map(|k| k.fingerprint.clone()))
        .bind(draft.activates.map(|r| r.0 as i64))
        .bind(&changes_json)
        .execute(&mut *tx)
        .await
        .map_err(unavailable("inserting changeset"))?;
        tx.commit().await.map_err(unavailable("commit"))?;
        Ok(AppendOutcome::Committed(Changeset {
            revision,
            effective_at,
            recorded_at,
            actor: draft.actor.clone(),
            reason: draft.reason.clone(),
            reference: draft.reference.clone(),
            request: draft.request.clone(),
            changes: draft.changes.clone(),
            activates: draft.activates,
        }))
    }

    async fn read_after(&self, after: Revision, limit: u32) -> Result<Vec<Changeset>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM changesets WHERE revision > ? ORDER BY revision LIMIT ?");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(after.0 as i64)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable("reading changesets"))?;
        rows.iter().map(row_to_changeset).collect()
    }

    async fn close(&self) {
        self.pool.close().await;
        // Closing the file releases the directory lock for the next server.
        self.lock.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}
