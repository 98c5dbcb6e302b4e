//! Operations: the metrics endpoint, request limits.

use std::time::Duration;

use eligibility::proto::v1::{self as pb, read_point::Consistency};
use eligibility_client::{EntryChange, WatchOptions, WatchStart, WriteOptions};
use eligibility_e2e::{TestServer, cc, list, metric as value, scrape};
use eligibility_server::{limits::Limits, server::Config};
use tonic::Code;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_and_too_many_requests_get_resource_exhausted_and_the_server_stays_healthy() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: dir.path().to_owned(),
        demo: true,
        limits: Limits {
            max_message_bytes: 2048,
            max_concurrent_requests: 1,
            max_wait: Duration::from_secs(5),
            ..Limits::default()
        },
        ..Config::default()
    };
    let server = TestServer::start_with(config).await;
    let c = server.client().await;
    let mut q = c.raw_query();
    let items = vec![pb::CheckItem { list_id: "cyber".into(), country: "FR".into() }; 500];
    let s = q.batch_check(pb::BatchCheckRequest { items, point: None }).await.unwrap_err();
    assert_eq!(s.code(), Code::ResourceExhausted, "{s:?}");
    assert!(s.message().contains("2048"), "{s:?}");
    // Watch reads its request on its own path: the same limit, the same code.
    let watch = pb::WatchRequest { countries: vec!["FR".into(); 1000], ..Default::default() };
    let s = q.watch(watch).await.map(|_| ()).unwrap_err();
    assert_eq!(s.code(), Code::ResourceExhausted, "{s:?}");
    assert!(s.message().contains("2048"), "{s:?}");

    // One slow call (waiting for a revision that will not come) holds the
    // only slot: the next call is refused at once, not queued.
    let mut slow = c.raw_query();
    let waiting = tokio::spawn(async move {
        loop {
            let p = pb::ReadPoint { as_of: None, consistency: Some(Consistency::MinRevision(99)) };
            let mut req =
                tonic::Request::new(pb::CheckRequest { list_id: "cyber".into(), country: "FR".into(), point: Some(p) });
            req.set_timeout(Duration::from_secs(4));
            match slow.check(req).await {
                // A probe held the one slot at that moment: try again.
                Err(s) if s.code() == Code::ResourceExhausted => tokio::task::yield_now().await,
                other => return other,
            }
        }
    });
    // Probe while the slow call is (or is about to be) in flight.
    let mut refused = None;
    while !waiting.is_finished() {
        match q.check(pb::CheckRequest { list_id: "cyber".into(), country: "FR".into(), point: None }).await {
            Err(s) if s.code() == Code::ResourceExhausted => {
                refused = Some(s);
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    let s = refused.expect("a second concurrent call is refused");
    assert!(s.message().contains("limit of 1 concurrent requests"), "{s:?}");
    let _ = waiting.await;
    // Healthy afterwards.
    assert!(c.check(&list("cyber"), cc("FR")).await.unwrap().decision.eligible);
}

#[tokio::test]
async fn while_the_registry_loads_the_port_answers_not_serving_then_hands_over() {
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let loading = eligibility_server::startup::serve_while_loading(listener);
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
    let mut health = HealthClient::new(channel.clone());
    for service in ["", "eligibility.v1.EligibilityService"] {
        let status = health.check(HealthCheckRequest { service: service.into() }).await.unwrap().into_inner().status;
        assert_eq!(status, ServingStatus::NotServing as i32, "{service:?}");
    }
    let mut query = pb::eligibility_service_client::EligibilityServiceClient::new(channel);
    let refused =
        query.check(pb::CheckRequest { list_id: "cyber".into(), country: "MX".into(), point: None }).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert!(refused.message().contains("loading"));
    let http = eligibility_e2e::web::get(addr, "/v1/lists").await;
    assert_eq!(http.status, 503, "{}", http.body);

    // Loaded: the same port serves the registry.
    let config = Config { data_dir: dir.path().to_owned(), demo: true, ..Config::default() };
    let app = eligibility_server::server::open(&config).await.unwrap();
    let listener = loading.finish().await.unwrap();
    assert_eq!(listener.local_addr().unwrap(), addr);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(async move {
        eligibility_server::server::run(listener, app, &config, async {
            let _ = stopped.await;
        })
        .await
    });
    let c = eligibility_client::Client::connect(format!("http://{addr}")).await.unwrap();
    assert!(!c.check(&list("cyber"), cc("MX")).await.unwrap().decision.eligible);
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
    let status =
        HealthClient::new(channel).check(HealthCheckRequest { service: String::new() }).await.unwrap().into_inner();
    assert_eq!(status.status, ServingStatus::Serving as i32);
    stop.send(()).unwrap();
    served.await.unwrap().unwrap();
}
