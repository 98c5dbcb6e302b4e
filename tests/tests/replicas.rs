//! Several server replicas on one Postgres database: cross-replica
//! delivery, read-your-writes, ordering under concurrent writers, activation
//! exactly once, and a Postgres outage.

use std::time::Duration;

use eligibility_client::{
    Client, EntryChange, Error, ListMode, NewList, Point, Revision, WatchEvent, WatchOptions, WatchStart, WriteOptions,
};
use eligibility_e2e::{Proxy, TestServer, cc, list, pg_test_db};
use eligibility_server::{server::Config, store::PgOptions};
use tokio_stream::StreamExt;

fn replica(url: &str) -> Config {
    Config {
        database_url: Some(url.to_owned()),
        postgres: PgOptions { max_connections: 4, acquire_timeout: Duration::from_secs(1) },
        tail_poll: Duration::from_millis(500),
        ..Config::default()
    }
}

async fn setup(c: &Client) {
    c.create_list(&NewList::new(list("l"), ListMode::Allowlist), &WriteOptions::reason("setup")).await.unwrap();
}

async fn changesets(s: &mut eligibility_client::WatchStream, n: usize) -> Vec<u64> {
    let mut out = Vec::new();
    while out.len() < n {
        let ev = tokio::time::timeout(Duration::from_secs(20), s.next()).await.expect("event in 20 s");
        if let WatchEvent::Changeset(c) = ev.expect("open").expect("ok") {
            out.push(c.revision.0);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_a_reaches_watchers_and_reads_on_b() {
    let Some(db) = pg_test_db("a_write_on_a_reaches_watchers_and_reads_on_b").await else { return };
    let a = TestServer::start_with(replica(&db.url)).await;
    let b = TestServer::start_with(replica(&db.url)).await;
    let (ca, cb) = (a.client().await, b.client().await);
    setup(&ca).await;
    let mut on_b = cb.watch(WatchOptions::from(WatchStart::After(Revision(0)))).await.unwrap();
    assert_eq!(changesets(&mut on_b, 1).await, [1]);
    let w = ca.apply(&[EntryChange::add(&list("l"), cc("MX"))], None, &WriteOptions::reason("on A")).await.unwrap();
    // Read your write on B: min_revision waits until B has it.
    let r = cb.check_at(&list("l"), cc("MX"), Point::latest().min_revision(w.revision)).await.unwrap();
    assert!(r.decision.eligible);
    assert!(r.header.revision >= w.revision);
    assert_eq!(changesets(&mut on_b, 1).await, [w.revision.0]);
    assert_eq!(a.registry.snapshot().store_id(), b.registry.snapshot().store_id());
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_on_two_replicas_give_dense_identical_streams() {
    let Some(db) = pg_test_db("concurrent_writers_on_two_replicas_give_dense_identical_streams").await else { return };
    let a = TestServer::start_with(replica(&db.url)).await;
    let b = TestServer::start_with(replica(&db.url)).await;
    let (ca, cb) = (a.client().await, b.client().await);
    setup(&ca).await;
    let mut wa = ca.watch(WatchOptions::from(WatchStart::After(Revision(0)))).await.unwrap();
    let mut wb = cb.watch(WatchOptions::from(WatchStart::After(Revision(0)))).await.unwrap();
    let codes = ["FR", "DE", "IT", "ES", "NL", "BE", "AT", "PT", "SE", "DK"];
    let mut writers = Vec::new();
    for (i, c) in [ca.clone(), cb.clone(), ca.clone(), cb.clone()].into_iter().enumerate() {
        writers.push(tokio::spawn(async move {
            let mut revs = Vec::new();
            for j in 0..15 {
                let code = codes[(i * 15 + j) % codes.len()];
                let ch = if j % 2 == 0 {
                    EntryChange::add(&list("l"), cc(code))
                } else {
                    EntryChange::remove(&list("l"), cc(code))
                };
                revs.push(c.apply(&[ch], None, &WriteOptions::reason(format!("w{i} {j}"))).await.unwrap().revision.0);
            }
            revs
        }));
    }
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await.unwrap());
    }
    acked.sort();
    assert_eq!(acked, (2..=61).collect::<Vec<_>>(), "dense revisions across replicas");
    let sa = changesets(&mut wa, 61).await;
    let sb = changesets(&mut wb, 61).await;
    assert_eq!(sa, (1..=61).collect::<Vec<_>>());
    assert_eq!(sa, sb, "both replicas stream the same sequence");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activation_is_recorded_once_across_replicas() {
    let Some(db) = pg_test_db("activation_is_recorded_once_across_replicas").await else { return };
    let a = TestServer::start_with(replica(&db.url)).await;
    let b = TestServer::start_with(replica(&db.url)).await;
    let (ca, cb) = (a.client().await, b.client().await);
    setup(&ca).await;
    let eff = eligibility::Timestamp::from_micros(eligibility::Timestamp::now().as_micros() + 1_000_000).unwrap();
    let w =
        ca.apply(&[EntryChange::add(&list("l"), cc("JP"))], Some(eff), &WriteOptions::reason("soon")).await.unwrap();
    let mut on_b = cb.watch(WatchOptions::from(WatchStart::After(w.revision))).await.unwrap();
    let act = loop {
        let ev = tokio::time::timeout(Duration::from_secs(20), on_b.next()).await.unwrap().unwrap().unwrap();
        if let WatchEvent::Changeset(c) = ev {
            break c;
        }
    };
    assert_eq!(act.activates, Some(w.revision));
    // Let both activators settle, then count.
    let marker =
        cb.apply(&[EntryChange::add(&list("l"), cc("FR"))], None, &WriteOptions::reason("marker")).await.unwrap();
    assert_eq!(marker.revision.0, act.revision.0 + 1, "no second activation entry");
    // A reads its own log: wait until it has caught up with B's marker.
    ca.check_at(&list("l"), cc("FR"), Point::latest().min_revision(marker.revision)).await.unwrap();
    let history = ca.history(&list("l"), None, None).await.unwrap().changesets;
    assert_eq!(history.iter().filter(|c| c.activates.is_some()).count(), 1);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_reads_answer_writes_fail_clearly_nothing_missing_after() {
    let Some(db) = pg_test_db("postgres_outage").await else { return };
    let proxy_a = Proxy::start(db.server_addr()).await;
    let a = TestServer::start_with(replica(&db.url_via(proxy_a.addr))).await;
    let b = TestServer::start_with(replica(&db.url)).await;
    let (ca, cb) = (a.client().await, b.client().await);
    setup(&cb).await;
    cb.apply(&[EntryChange::add(&list("l"), cc("FR"))], None, &WriteOptions::reason("before")).await.unwrap();
    let mut watcher_a = ca.watch(WatchOptions::from(WatchStart::After(Revision(0)))).await.unwrap();
    assert_eq!(changesets(&mut watcher_a, 2).await, [1, 2]);

    proxy_a.cut();
    // Reads on A still answer from memory, with their revision.
    let r = ca.check(&list("l"), cc("FR")).await.unwrap();
    assert!(r.decision.eligible);
    assert_eq!(r.header.revision, Revision(2));
    // Writes on A fail with UNAVAILABLE and say why.
    let err =
        ca.apply(&[EntryChange::add(&list("l"), cc("DE"))], None, &WriteOptions::reason("during")).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable(ref m) if m.contains("store unavailable")), "{err:?}");
    // Meanwhile B (not cut off) keeps writing.
    for code in ["IT", "ES"] {
        cb.apply(&[EntryChange::add(&list("l"), cc(code))], None, &WriteOptions::reason("while A is cut off"))
            .await
            .unwrap();
    }

    proxy_a.restore();
    // A catches up; its watcher continues with no gap.
    let w = ca.apply(&[EntryChange::add(&list("l"), cc("DE"))], None, &WriteOptions::reason("after")).await;
    let w = match w {
        Ok(w) => w,
        // The first write after recovery may meet a dead pooled connection.
        Err(_) => {
            ca.apply(&[EntryChange::add(&list("l"), cc("DE"))], None, &WriteOptions::reason("after")).await.unwrap()
        }
    };
    assert_eq!(w.revision, Revision(5));
    assert_eq!(changesets(&mut watcher_a, 3).await, [3, 4, 5]);
    let r = ca.check(&list("l"), cc("ES")).await.unwrap();
    assert!(r.decision.eligible);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_postgres_black_holed_every_write_fails_within_the_acquire_timeout() {
    let Some(db) = pg_test_db("black_holed_postgres").await else { return };
    let proxy = Proxy::start(db.server_addr()).await;
    // The tailer re-reads often, so a write would meet it holding the
    // store if it could.
    let config = Config { tail_poll: Duration::from_millis(100), ..replica(&db.url_via(proxy.addr)) };
    let acquire = config.postgres.acquire_timeout;
    let a = TestServer::start_with(config).await;
    let c = a.client().await;
    setup(&c).await;
    proxy.black_hole();
    for i in 0..4 {
        let started = std::time::Instant::now();
        let err = c
            .apply(&[EntryChange::add(&list("l"), cc("FR"))], None, &WriteOptions::reason(format!("during {i}")))
            .await
            .unwrap_err();
        let took = started.elapsed();
        assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
        assert!(
            took < acquire + Duration::from_millis(700),
            "write {i} failed after {took:?} (acquire timeout {acquire:?})"
        );
    }
    proxy.restore();
    a.stop().await;
}
