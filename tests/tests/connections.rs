//! Connection limits: past the per-address limit a new connection is
//! closed at once; a connection that stays silent, or sends its headers too
//! slowly, is closed at the handshake deadline; legitimate calls keep
//! working throughout.

use std::time::{Duration, Instant};

use eligibility_e2e::{TestServer, cc, list};
use eligibility_server::{conns::ConnLimits, server::Config};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Waits (at most `within`) for the server to close `s`; how long it took.
async fn closed_within(s: &mut TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout_at((started + within).into(), s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            // An answer (e.g. an HTTP/1.1 timeout response) before the close.
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn excess_and_silent_connections_are_closed_and_calls_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: dir.path().to_owned(),
        demo: true,
        connections: ConnLimits {
            max: 100,
            max_per_address: 8,
            handshake: Duration::from_millis(500),
            ..ConnLimits::default()
        },
        ..Config::default()
    };
    let server = TestServer::start_with(config).await;
    // A legitimate client first (one connection, kept).
    let client = server.client().await;
    assert!(!client.check(&list("cyber"), cc("MX")).await.unwrap().decision.eligible);
    // Seven more, idle: the address's limit (8) is reached.
    let mut idle = Vec::new();
    for _ in 0..7 {
        idle.push(TcpStream::connect(server.addr).await.unwrap());
    }
    // The ninth is closed at once.
    let mut excess = TcpStream::connect(server.addr).await.unwrap();
    let t = closed_within(&mut excess, Duration::from_secs(2)).await.expect("the excess connection is closed");
    assert!(t < Duration::from_millis(400), "closed after {t:?}, not at once");
    // The idle ones are closed at the handshake deadline, slow headers too.
    let mut slow = idle.pop().unwrap();
    slow.write_all(b"GET /v1/lists HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    for s in idle.iter_mut().chain(std::iter::once(&mut slow)) {
        let t = closed_within(s, Duration::from_secs(5)).await.expect("closed at the deadline");
        assert!(t < Duration::from_secs(3), "{t:?}");
    }
    // The legitimate client's connection was never touched, and new ones
    // are accepted again.
    assert!(client.check(&list("cyber"), cc("FR")).await.unwrap().decision.eligible);
    let again = server.client().await;
    assert!(again.check(&list("cyber"), cc("FR")).await.is_ok());
    server.stop().await;
}

/// Reads an HTTP/1.1 response's head and its `Content-Length` body.
async fn read_response(s: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before the answer");
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some(head_end) = text.find("\r\n\r\n") {
            let len = text
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                .unwrap_or(0usize);
            if got.len() >= head_end + 4 + len {
                return text;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_with_nothing_in_progress_are_closed_at_the_idle_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let idle = Duration::from_millis(600);
    let config = Config {
        data_dir: dir.path().to_owned(),
        demo: true,
        connections: ConnLimits { idle, ..ConnLimits::default() },
        ..Config::default()
    };
    let server = TestServer::start_with(config).await;
    // A keep-alive connection that made a call and then went quiet.
    let mut quiet = TcpStream::connect(server.addr).await.unwrap();
    quiet.write_all(b"GET /v1/lists HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    assert!(read_response(&mut quiet).await.starts_with("HTTP/1.1 200"));
    let answered = Instant::now();
    // A connection holding an event stream: busy, however quiet.
    let mut streaming = TcpStream::connect(server.addr).await.unwrap();
    streaming.write_all(b"GET /v1/watch HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut head = [0u8; 512];
    let n = streaming.read(&mut head).await.unwrap();
    assert!(String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 200"));
    // And one holding health's Watch stream (a stream of another service).
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://{}", server.addr)).unwrap().connect().await.unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let mut statuses =
        health.watch(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.unwrap().into_inner();
    assert!(statuses.message().await.unwrap().is_some(), "the current status comes first");
    closed_within(&mut quiet, Duration::from_secs(5)).await.expect("the idle connection is closed");
    let t = answered.elapsed();
    assert!(t >= idle - Duration::from_millis(50) && t < idle * 4, "closed {t:?} after its last answer");
    // Three idle timeouts on, the stream's connection is still open.
    assert_eq!(closed_within(&mut streaming, idle * 3).await, None, "a streaming connection was closed as idle");
    assert!(
        tokio::time::timeout(idle, statuses.message()).await.is_err(),
        "health's Watch stream ended: its connection was closed as idle"
    );
    // A gRPC client whose connection was closed while idle reconnects.
    let client = server.client().await;
    assert!(client.check(&list("cyber"), cc("FR")).await.unwrap().decision.eligible);
    tokio::time::sleep(idle * 2).await;
    assert!(client.check(&list("cyber"), cc("FR")).await.unwrap().decision.eligible);
    // At shutdown, health's Watch stream ends (the drain does not wait on
    // it) with UNAVAILABLE.
    server.stop().await;
    let end = statuses.message().await.unwrap_err();
    assert_eq!(end.code(), tonic::Code::Unavailable, "{end:?}");
}
