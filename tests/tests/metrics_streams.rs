//! Streams in the metrics: a Watch is counted by how it ends, not when it
//! opens. Its own test binary: the recorder is process-wide, and another
//! test's stream ending meanwhile would move the same counters.

use std::time::Duration;

use eligibility::proto::v1 as pb;
use eligibility_e2e::{TestServer, eventually, metric as value, scrape};
use eligibility_server::server::Config;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_is_counted_by_how_it_ends_not_when_it_opens() {
    let dir = tempfile::tempdir().unwrap();
    let maddr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let config =
        Config { data_dir: dir.path().to_owned(), demo: true, metrics_listen: Some(maddr), ..Config::default() };
    let server = TestServer::start_with(config).await;
    let c = server.client().await;
    let count = |text: &str, code: &str| {
        value(text, &format!("eligibility_rpc_requests_total{{method=\"Watch\",code=\"{code}\"}}")).unwrap_or(0.0)
    };
    let before = scrape(maddr).await;
    let mut q = c.raw_query();
    let watch = q.watch(pb::WatchRequest::default()).await.unwrap().into_inner();
    // Open and running: not counted yet, whatever it will end with.
    let open = scrape(maddr).await;
    assert_eq!(count(&open, "OK"), count(&before, "OK"), "counted OK when it opened");
    assert_eq!(count(&open, "CANCELLED"), count(&before, "CANCELLED"));
    // The client goes away: the stream ends as CANCELLED, counted once
    // (the Watch body keeps its own tally: a wrapper counting it as well
    // would count it twice).
    drop(watch);
    let now = eventually(Duration::from_secs(2), "the cancelled Watch to be counted", || async {
        let now = scrape(maddr).await;
        (count(&now, "CANCELLED") > count(&before, "CANCELLED")).then_some(now)
    })
    .await;
    assert_eq!(count(&now, "CANCELLED"), count(&before, "CANCELLED") + 1.0, "counted more than once:\n{now}");
    assert_eq!(count(&now, "OK"), count(&before, "OK"), "also counted OK:\n{now}");
    server.stop().await;
}
