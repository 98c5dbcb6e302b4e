//! The replication lag gauge reads 0 once a replica has caught up, so an
//! alert on it clears after recovery. Its own test binary: the metrics
//! recorder is process-wide.

use std::time::Duration;

use eligibility_client::{EntryChange, ListMode, NewList, Point, WriteOptions};
use eligibility_e2e::{TestServer, cc, eventually, list, pg_test_db, scrape};
use eligibility_server::{server::Config, store::PgOptions};

async fn lag(addr: std::net::SocketAddr) -> f64 {
    let text = scrape(addr).await;
    text.lines()
        .find_map(|l| l.strip_prefix("eligibility_replication_lag_seconds "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no lag series in\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_reads_zero_once_the_replica_is_at_the_head() {
    let Some(db) = pg_test_db("replication_lag").await else { return };
    let replica = |metrics_listen| Config {
        database_url: Some(db.url.clone()),
        postgres: PgOptions { max_connections: 4, acquire_timeout: Duration::from_secs(1) },
        tail_poll: Duration::from_millis(200),
        metrics_listen,
        ..Config::default()
    };
    let a = TestServer::start_with(replica(None)).await;
    let maddr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let b = TestServer::start_with(replica(Some(maddr))).await;
    let (ca, cb) = (a.client().await, b.client().await);
    ca.create_list(&NewList::new(list("l"), ListMode::Allowlist), &WriteOptions::reason("setup")).await.unwrap();
    // Changesets written on A some time ago reach B late: it lags...
    for code in ["FR", "DE", "IT"] {
        let w = ca.apply(&[EntryChange::add(&list("l"), cc(code))], None, &WriteOptions::reason("on A")).await.unwrap();
        cb.check_at(&list("l"), cc(code), Point::latest().min_revision(w.revision)).await.unwrap();
    }
    // ...and once it has them all, it does not lag any more.
    eventually(Duration::from_millis(2500), "the lag to read 0 with the replica at the head", || async {
        (lag(maddr).await == 0.0).then_some(())
    })
    .await;
    a.stop().await;
    b.stop().await;
}
