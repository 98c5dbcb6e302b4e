//! The metrics endpoint: every series a dashboard reads is there and moves
//! with the calls. Its own test binary: the metrics recorder is process-wide,
//! and a second server in the same process (another test) sets the same
//! gauges (`eligibility_revision` to its own head, `eligibility_watchers` to
//! its own count), so an assertion on them would race with it.

use eligibility_client::{EntryChange, WatchOptions, WatchStart, WriteOptions};
use eligibility_e2e::{TestServer, cc, list, metric as value, scrape};
use eligibility_server::server::Config;

fn free_port() -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// A demo server with its metrics endpoint; the endpoint's address.
async fn with_metrics(dir: &tempfile::TempDir) -> (TestServer, std::net::SocketAddr) {
    let maddr = free_port();
    let config =
        Config { data_dir: dir.path().to_owned(), demo: true, metrics_listen: Some(maddr), ..Config::default() };
    (TestServer::start_with(config).await, maddr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_endpoint_exposes_the_series_and_they_move() {
    let dir = tempfile::tempdir().unwrap();
    let (server, maddr) = with_metrics(&dir).await;
    let c = server.client().await;
    c.check(&list("cyber"), cc("MX")).await.unwrap();
    c.check(&list("cyber"), cc("FR")).await.unwrap();
    let before = scrape(maddr).await;
    assert!(before.starts_with("HTTP/1.1 200"), "{before}");
    let removed = value(&before, "eligibility_checks_total{decision=\"removed\"}").expect("checks by decision");
    let ok_checks = value(&before, "eligibility_rpc_requests_total{method=\"Check\",code=\"OK\"}").expect("rpc counts");
    assert!(before.contains("eligibility_rpc_duration_seconds_bucket{method=\"Check\""), "latency histogram");

    c.check(&list("cyber"), cc("MA")).await.unwrap();
    let _ = c.check(&list("nosuch"), cc("MA")).await.unwrap_err();
    let w = c.apply(&[EntryChange::add(&list("cyber"), cc("MX"))], None, &WriteOptions::reason("m")).await.unwrap();
    let _watch = c.watch(WatchOptions::from(WatchStart::Now)).await.unwrap();
    let after = scrape(maddr).await;
    assert!(value(&after, "eligibility_checks_total{decision=\"removed\"}").unwrap() >= removed + 1.0);
    assert!(value(&after, "eligibility_rpc_requests_total{method=\"Check\",code=\"OK\"}").unwrap() >= ok_checks + 1.0);
    assert!(value(&after, "eligibility_rpc_requests_total{method=\"Check\",code=\"NOT_FOUND\"}").unwrap() >= 1.0);
    assert!(value(&after, "eligibility_writes_total{outcome=\"recorded\"}").unwrap() >= 1.0);
    assert!(value(&after, "eligibility_revision").unwrap() >= w.revision.0 as f64 - 0.5);
    assert!(value(&after, "eligibility_watchers").unwrap() >= 1.0);
    assert!(after.contains("eligibility_store_seconds_bucket{op=\"append\""), "store latency");
    // The HTTP/JSON routes count under their own labels, with the gRPC code
    // of their answer.
    assert_eq!(eligibility_e2e::web::get(server.addr, "/v1/lists/cyber/check/FR").await.status, 200);
    assert_eq!(eligibility_e2e::web::get(server.addr, "/v1/lists/nosuch/check/FR").await.status, 404);
    let http = scrape(maddr).await;
    assert!(value(&http, "eligibility_rpc_requests_total{method=\"http.Check\",code=\"OK\"}").unwrap() >= 1.0);
    assert!(value(&http, "eligibility_rpc_requests_total{method=\"http.Check\",code=\"NOT_FOUND\"}").unwrap() >= 1.0);
    server.stop().await;
}
