//! The metrics endpoint of an idle replica: every documented series is
//! there from the start, with its help text, so dashboards and alerts work
//! before the first call. Its own test binary: the recorder is process-wide.

use eligibility_e2e::{TestServer, scrape};
use eligibility_server::server::Config;

#[tokio::test]
async fn an_idle_replica_exposes_every_series_at_zero_with_help() {
    let dir = tempfile::tempdir().unwrap();
    let maddr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let config =
        Config { data_dir: dir.path().to_owned(), demo: true, metrics_listen: Some(maddr), ..Config::default() };
    let server = TestServer::start_with(config).await;
    let text = scrape(maddr).await;
    for line in [
        "eligibility_revision 3",
        "eligibility_watchers 0",
        "eligibility_watch_fallbacks_total 0",
        "eligibility_replication_lag_seconds 0",
        "eligibility_resource_exhausted_total{reason=\"watchers\"} 0",
        "eligibility_resource_exhausted_total{reason=\"concurrent_requests\"} 0",
        "eligibility_writes_total{outcome=\"failed\"} 0",
        "eligibility_checks_total{decision=\"removed\"} 0",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} missing from\n{text}");
    }
    for series in [
        "eligibility_revision",
        "eligibility_watchers",
        "eligibility_watch_fallbacks_total",
        "eligibility_replication_lag_seconds",
        "eligibility_resource_exhausted_total",
        "eligibility_writes_total",
        "eligibility_checks_total",
    ] {
        assert!(text.contains(&format!("# HELP {series} ")), "no help for {series}:\n{text}");
    }
    server.stop().await;
}
