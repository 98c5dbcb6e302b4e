//! Operations: request limits, NOT_SERVING while the registry loads. (The
//! metrics endpoint has its own test binary, `metrics_endpoint.rs`: the
//! recorder is process-wide.)

use std::time::Duration;

use eligibility::proto::v1::{self as pb, read_point::Consistency};
use eligibility_e2e::{TestServer, cc, list};
use eligibility_server::{limits::Limits, server::Config};
use tonic::Code;

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
