//! The Postgres store, for several server replicas on one database.
//!
//! Appends take a transaction-scoped advisory lock, so revisions are
//! assigned and committed in order across replicas; each append notifies
//! the `eligibility_changesets` channel on commit. Every replica listens on
//! that channel (and polls as a safety net, since notifications sent while
//! the listening connection is down are lost) to tail the log.

use std::{str::FromStr, sync::Mutex, time::Duration};

use async_trait::async_trait;
use eligibility::Revision;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use tokio::sync::watch;

use super::{AppendOutcome, Plan, Row, Store, StoreError, encode_changes};
use crate::model::{Changeset, ChangesetDraft};

/// The schema, in order (version, description, SQL).
const MIGRATIONS: &[(i64, &str, &str)] =
    &[(1, "changesets", include_str!("../../migrations/postgres/0001_changesets.sql"))];

/// The notification channel appends announce themselves on.
pub const CHANNEL: &str = "eligibility_changesets";
/// The advisory lock key that serializes appends ("elig").
const APPEND_LOCK: i64 = 0x656c_6967;

/// [`super::COLUMNS`], with the JSONB changes read as text.
const PG_COLUMNS: &str = "revision, effective_at, recorded_at, actor, reason, reference, request_id, request_fingerprint, activates, changes::text AS changes";

/// Connection settings.
#[derive(Clone, Debug)]
pub struct PgOptions {
    /// Pool size.
    pub max_connections: u32,
    /// How long a query waits for a connection before failing (this is how
    /// long a write waits during an outage before answering UNAVAILABLE).
    pub acquire_timeout: Duration,
}

/// The INSERT of one changeset row (parameters in [`super::append_in_tx`]'s
/// order).
const INSERT: &str = "INSERT INTO changesets (revision, effective_at, recorded_at, actor, reason, reference, request_id, request_fingerprint, activates, changes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb)";

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions { max_connections: 10, acquire_timeout: Duration::from_secs(3) }
    }
}

/// The Postgres store.
pub struct PgStore {
    pool: PgPool,
    store_id: String,
    describe: String,
    signal: watch::Receiver<u64>,
    listener: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

fn unavailable(context: &str) -> impl Fn(sqlx::Error) -> StoreError + '_ {
    move |e| StoreError::Unavailable(format!("{context}: {e}"))
}

impl PgStore {
    /// Connects, applies migrations, creates the store id once, and starts
    /// listening for appends by other replicas.
    pub async fn open(url: &str, options: &PgOptions) -> Result<Self, StoreError> {
        let connect = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Unavailable(format!("invalid database url: {e}")))?;
        let describe = format!(
            "postgres://{}:{}/{}",
            connect.get_host(),
            connect.get_port(),
            connect.get_database().unwrap_or("")
        );
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(|e| StoreError::Unavailable(format!("cannot connect to {describe}: {e}")))?;
        super::migrator(MIGRATIONS)
            .run(&pool)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migrating {describe}: {e}")))?;
        sqlx::query("INSERT INTO store_meta (key, value) VALUES ('store_id', $1) ON CONFLICT (key) DO NOTHING")
            .bind(uuid::Uuid::new_v4().to_string())
            .execute(&pool)
            .await
            .map_err(unavailable("creating store id"))?;
        let store_id: String = sqlx::query_scalar("SELECT value FROM store_meta WHERE key = 'store_id'")
            .fetch_one(&pool)
            .await
            .map_err(unavailable("reading store id"))?;
        let (tx, signal) = watch::channel(0u64);
        let listener = tokio::spawn(listen(pool.clone(), tx, describe.clone()));
        Ok(PgStore { pool, store_id, describe, signal, listener: Mutex::new(Some(listener)) })
    }
}

/// Bumps `tx` on every notification and after every (re)connect (whatever
/// was announced while disconnected is lost, so the registry must re-read).
async fn listen(pool: PgPool, tx: watch::Sender<u64>, describe: String) {
    let bump = || tx.send_modify(|n| *n = n.wrapping_add(1));
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut l = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, db = %describe, "cannot open the notification listener; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        if let Err(e) = l.listen(CHANNEL).await {
            tracing::warn!(error = %e, db = %describe, "LISTEN failed; retrying");
            tokio::time::sleep(backoff).await;
            continue;
        }
        backoff = Duration::from_millis(100);
        bump();
        loop {
            match l.try_recv().await {
                Ok(Some(_)) => bump(),
                // The connection dropped (it reconnects on the next call):
                // re-read, since notifications in between are lost.
                Ok(None) => {
                    tracing::warn!(db = %describe, "notification listener lost its connection; reconnecting");
                    bump();
                }
                Err(e) => {
                    tracing::warn!(error = %e, db = %describe, "notification listener failed; reconnecting");
                    bump();
                    tokio::time::sleep(backoff).await;
                    break;
                }
            }
        }
    }
}

#[async_trait]
impl Store for PgStore {
    fn store_id(&self) -> &str {
        &self.store_id
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn appended_elsewhere(&self) -> Option<watch::Receiver<u64>> {
        Some(self.signal.clone())
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
        let mut tx = self.pool.begin().await.map_err(unavailable("begin"))?;
        // Serializes appends across replicas until commit: revision n+1 is
        // assigned only after n has committed.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(APPEND_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(unavailable("taking the append lock"))?;
        let by = |col: &str| sqlx::AssertSqlSafe(format!("SELECT {PG_COLUMNS} FROM changesets WHERE {col} = $1"));
        let cs = match super::append_in_tx!(tx, draft, expected_head, by, changes_json, INSERT) {
            Plan::Skip(outcome) => return Ok(outcome),
            Plan::Insert(cs) => cs,
        };
        // Delivered to listeners when (and only if) the transaction commits.
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(cs.revision.0.to_string())
            .execute(&mut *tx)
            .await
            .map_err(unavailable("notifying"))?;
        tx.commit().await.map_err(unavailable("commit"))?;
        Ok(AppendOutcome::Committed(cs))
    }

    async fn read_after(&self, after: Revision, limit: u32) -> Result<Vec<Changeset>, StoreError> {
        let sql = format!("SELECT {PG_COLUMNS} FROM changesets WHERE revision > $1 ORDER BY revision LIMIT $2");
        let rows = sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql))
            .bind(after.0 as i64)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable("reading changesets"))?;
        rows.into_iter().map(Row::into_changeset).collect()
    }

    async fn close(&self) {
        if let Some(l) = self.listener.lock().unwrap_or_else(|p| p.into_inner()).take() {
            l.abort();
        }
        self.pool.close().await;
    }
}
