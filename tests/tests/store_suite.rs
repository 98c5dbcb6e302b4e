//! The store contract, as a suite any `Store` implementation must pass.
//! Run here against SQLite; the Postgres store runs the same functions.

use std::sync::Arc;

use eligibility::{Country, ListId, Revision, Timestamp};
use eligibility_e2e::pg_test_db;
use eligibility_server::{
    model::{Change, ChangesetDraft, EntryAction, ListMeta, ListMode, RequestKey},
    store::{AppendOutcome, PgOptions, PgStore, SqliteStore, Store},
};

fn draft(reason: &str, request: Option<(&str, &str)>, changes: Vec<Change>) -> ChangesetDraft {
    ChangesetDraft {
        effective_at: None,
        actor: "tester".into(),
        reason: reason.into(),
        reference: "ref".into(),
        request: request.map(|(id, fp)| RequestKey { id: id.into(), fingerprint: fp.into() }),
        changes,
        activates: None,
    }
}

fn create(id: &str) -> Change {
    Change::CreateList {
        list: ListId::parse(id).unwrap(),
        meta: Box::new(ListMeta {
            title: "t".into(),
            description: "d".into(),
            authority: "a".into(),
            mode: ListMode::Allowlist,
        }),
    }
}

fn add(id: &str, c: &str, cond: &str) -> Change {
    Change::Entry {
        list: ListId::parse(id).unwrap(),
        country: Country::parse(c).unwrap(),
        action: EntryAction::Add,
        conditions: cond.into(),
    }
}

fn committed(o: AppendOutcome) -> eligibility_server::model::Changeset {
    match o {
        AppendOutcome::Committed(cs) => cs,
        other => panic!("expected Committed, got {other:?}"),
    }
}

/// The shared suite.
async fn suite(store: Arc<dyn Store>) {
    assert_eq!(store.head().await.unwrap(), Revision(0));
    assert!(!store.store_id().is_empty());

    // Dense revisions; content round-trips exactly.
    let c1 = committed(store.append(&draft("one", None, vec![create("l")]), None).await.unwrap());
    assert_eq!(c1.revision, Revision(1));
    let mut d2 = draft("two", Some(("k1", "fp1")), vec![add("l", "FR", "gov only"), add("l", "MX", "")]);
    d2.effective_at = Some(Timestamp::parse("2021-11-01").unwrap());
    let c2 = committed(store.append(&d2, Some(Revision(1))).await.unwrap());
    assert_eq!(c2.revision, Revision(2));
    assert_eq!(c2.effective_at, Timestamp::parse("2021-11-01").unwrap());
    assert!(c2.recorded_at >= c1.recorded_at, "recorded_at is monotonic");
    assert_eq!(c1.effective_at, c1.recorded_at, "effective_at defaults to commit time");
    let all = store.read_after(Revision(0), 100).await.unwrap();
    assert_eq!(all, vec![c1.clone(), c2.clone()]);
    assert_eq!(store.read_after(Revision(1), 100).await.unwrap(), vec![c2.clone()]);
    assert_eq!(store.read_after(Revision(0), 1).await.unwrap(), vec![c1.clone()]);
    assert!(store.read_after(Revision(2), 100).await.unwrap().is_empty());

    // Idempotency: same key and fingerprint replays; other fingerprint is
    // a reuse; neither writes.
    match store.append(&d2, None).await.unwrap() {
        AppendOutcome::Replayed(cs) => assert_eq!(cs, c2),
        other => panic!("expected Replayed, got {other:?}"),
    }
    let mut reuse = d2.clone();
    reuse.request = Some(RequestKey { id: "k1".into(), fingerprint: "other".into() });
    assert!(
        matches!(store.append(&reuse, None).await.unwrap(), AppendOutcome::RequestIdReused(cs) if cs.revision == Revision(2))
    );

    // Head precondition.
    match store.append(&draft("stale", None, vec![add("l", "DE", "")]), Some(Revision(1))).await.unwrap() {
        AppendOutcome::HeadMismatch { expected, actual } => assert_eq!((expected, actual), (Revision(1), Revision(2))),
        other => panic!("expected HeadMismatch, got {other:?}"),
    }
    assert_eq!(store.head().await.unwrap(), Revision(2));

    // Activation entries are recorded once per activated revision.
    let mut act = draft("activation", None, vec![]);
    act.actor = "system".into();
    act.activates = Some(Revision(2));
    let a1 = committed(store.append(&act, None).await.unwrap());
    assert_eq!(a1.activates, Some(Revision(2)));
    assert!(
        matches!(store.append(&act, None).await.unwrap(), AppendOutcome::Replayed(cs) if cs.revision == a1.revision)
    );
    assert_eq!(store.head().await.unwrap(), Revision(3));

    // Concurrent appends still give dense, unique revisions.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            committed(
                s.append(&draft(&format!("c{i}"), None, vec![add("l", "JP", &format!("{i}"))]), None).await.unwrap(),
            )
            .revision
        }));
    }
    let mut revs = Vec::new();
    for t in tasks {
        revs.push(t.await.unwrap().0);
    }
    revs.sort();
    assert_eq!(revs, (4..24).collect::<Vec<_>>());
    let all = store.read_after(Revision(0), 1000).await.unwrap();
    assert_eq!(all.iter().map(|c| c.revision.0).collect::<Vec<_>>(), (1..24).collect::<Vec<_>>());
}

#[tokio::test]
async fn sqlite_store_passes_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    suite(Arc::new(store)).await;
}

#[tokio::test]
async fn postgres_store_passes_the_suite() {
    let Some(db) = pg_test_db("postgres_store_passes_the_suite").await else { return };
    let store = PgStore::open(&db.url, &PgOptions::default()).await.unwrap();
    suite(Arc::new(store)).await;
}

#[tokio::test]
async fn postgres_store_keeps_its_id_across_reopen_and_signals_appends() {
    let Some(db) = pg_test_db("postgres_store_keeps_its_id_across_reopen_and_signals_appends").await else { return };
    let a = PgStore::open(&db.url, &PgOptions::default()).await.unwrap();
    let b = PgStore::open(&db.url, &PgOptions::default()).await.unwrap();
    assert_eq!(a.store_id(), b.store_id(), "one database, one store id");
    let mut signal = b.appended_elsewhere().expect("postgres signals appends");
    // Once listening (the first signal), an append by `a` must signal `b`.
    tokio::time::timeout(std::time::Duration::from_secs(5), signal.wait_for(|n| *n >= 1)).await.unwrap().unwrap();
    signal.borrow_and_update();
    committed(a.append(&draft("one", None, vec![create("l")]), None).await.unwrap());
    tokio::time::timeout(std::time::Duration::from_secs(5), signal.changed()).await.expect("notified").unwrap();
    assert_eq!(b.head().await.unwrap(), Revision(1));
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn sqlite_store_keeps_its_id_and_log_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let id = store.store_id().to_owned();
    let cs = committed(store.append(&draft("one", None, vec![create("l")]), None).await.unwrap());
    store.close().await;
    drop(store);
    let store = SqliteStore::open(dir.path()).await.unwrap();
    assert_eq!(store.store_id(), id);
    assert_eq!(store.read_after(Revision(0), 10).await.unwrap(), vec![cs]);
    let other = tempfile::tempdir().unwrap();
    let fresh = SqliteStore::open(other.path()).await.unwrap();
    assert_ne!(fresh.store_id(), id, "each store has its own id");
}

#[tokio::test]
async fn sqlite_store_uses_wal() {
    use sqlx::{Connection, SqliteConnection};
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    committed(store.append(&draft("one", None, vec![create("l")]), None).await.unwrap());
    let url = format!("sqlite://{}", dir.path().join("eligibility.sqlite3").display());
    let mut conn = SqliteConnection::connect(&url).await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&mut conn).await.unwrap();
    assert_eq!(mode, "wal");
    drop(conn);
    assert!(dir.path().join("eligibility.sqlite3-wal").exists());
}
