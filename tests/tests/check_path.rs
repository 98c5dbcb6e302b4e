//! The Check fast path (`grpc::Framed`, framed like Watch) answers
//! exactly what the generated service answers: for every country on the
//! demo list at several points, the same bytes and the same status; a
//! request that does not decode is INVALID_ARGUMENT.

use bytes::Bytes;
use eligibility::proto::v1::{self as pb, eligibility_service_server::EligibilityServiceServer};
use eligibility_e2e::TestServer;
use eligibility_server::grpc::{EligibilityService, Framed};
use http_body_util::BodyExt;
use prost::Message;
use tonic::body::Body;

/// Status code and message, the answer's bytes, from a response
/// (trailers-only or not).
async fn answer(resp: http::Response<Body>) -> (String, String, Bytes) {
    let (parts, body) = resp.into_parts();
    let collected = body.collect().await.unwrap();
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let get =
        |k: &str| trailers.get(k).or(parts.headers.get(k)).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (get("grpc-status"), get("grpc-message"), collected.to_bytes())
}

fn request(body: Vec<u8>) -> http::Request<Body> {
    request_to("Check", body)
}

fn request_to(method: &str, body: Vec<u8>) -> http::Request<Body> {
    http::Request::post(format!("http://x/eligibility.v1.EligibilityService/{method}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Body::new(http_body_util::Full::new(Bytes::from(body))))
        .unwrap()
}

fn framed(m: &impl Message) -> Vec<u8> {
    let mut v = vec![0u8];
    v.extend_from_slice(&(m.encoded_len() as u32).to_be_bytes());
    v.extend_from_slice(&m.encode_to_vec());
    v
}

/// The read points both comparisons use: each names its valid time ("now"
/// would differ between the two answers' headers); one pins `revision`,
/// one is an error (a revision beyond the head).
fn points(revision: u64) -> [pb::ReadPoint; 4] {
    let at = |t: &str| Some(eligibility::Timestamp::parse(t).unwrap().into());
    let pinned = |r: u64| Some(pb::read_point::Consistency::AtRevision(r));
    [
        pb::ReadPoint { as_of: at("2030-01-01T00:00:00Z"), consistency: None },
        pb::ReadPoint { as_of: at("2021-10-15T00:00:00Z"), consistency: None },
        pb::ReadPoint { as_of: at("2021-10-15T00:00:00Z"), consistency: pinned(revision) },
        pb::ReadPoint { as_of: at("2021-10-15T00:00:00Z"), consistency: pinned(99) },
    ]
}

#[tokio::test]
async fn the_check_path_answers_what_the_generated_service_answers() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), true).await;
    let mut fast = Framed::new(std::sync::Arc::new(EligibilityService::new(server.app.clone())), 1 << 20);
    let mut generated = EligibilityServiceServer::new(EligibilityService::new(server.app.clone()));
    let points = points(2);
    let mut compared = 0;
    for country in eligibility::Country::all().iter().map(|c| c.to_string()).chain(["ZZ".into(), String::new()]) {
        for list in ["cyber", "nosuch", "BAD ID"] {
            for point in &points {
                let m = pb::CheckRequest { list_id: list.into(), country: country.clone(), point: Some(*point) };
                let a = answer(tower::Service::call(&mut fast, request(framed(&m))).await.unwrap()).await;
                let b = answer(tower::Service::call(&mut generated, request(framed(&m))).await.unwrap()).await;
                assert_eq!(a, b, "{m:?}");
                compared += 1;
            }
        }
    }
    assert!(compared > 2000);
    // Undecodable and empty requests: INVALID_ARGUMENT naming the message
    // (the generated service says INTERNAL for a message that does not
    // decode: a client's mistake reported as the server's).
    for (body, says) in [(vec![0, 0, 0, 0, 2, 0xff, 0xff], "invalid%20CheckRequest"), (vec![], "no%20CheckRequest")] {
        let (code, message, _) = answer(tower::Service::call(&mut fast, request(body.clone())).await.unwrap()).await;
        assert_eq!(code, "3", "{body:?}: {message}");
        assert!(message.contains(says), "{body:?}: {message}");
    }
    server.stop().await;
}

/// BatchCheck's hand-encoded answer is byte for byte the generated
/// server's: batches over every country, on the demo list and others, at
/// several points (members with their deciding changes, removed countries,
/// never-listed ones, a backdated correction's two views), and errors.
#[tokio::test]
async fn the_batch_path_answers_what_the_generated_service_answers() {
    use eligibility_client::{EntryChange, WriteOptions};
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), true).await;
    // Conditions and a backdated correction, so answers carry both.
    let c = server.client().await;
    let cyber = eligibility_e2e::list("cyber");
    c.apply(
        &[EntryChange { conditions: "licence required".into(), ..EntryChange::add(&cyber, eligibility_e2e::cc("BR")) }],
        Some(eligibility_e2e::at("2021-03-01")),
        &WriteOptions::reason("conditional"),
    )
    .await
    .unwrap();
    c.apply(
        &[EntryChange::remove(&cyber, eligibility_e2e::cc("JP"))],
        Some(eligibility_e2e::at("2021-06-01")),
        &WriteOptions::reason("correction"),
    )
    .await
    .unwrap();
    let mut fast = Framed::new(std::sync::Arc::new(EligibilityService::new(server.app.clone())), 1 << 20);
    let mut generated = EligibilityServiceServer::new(EligibilityService::new(server.app.clone()));
    let at = |t: &str| Some(eligibility::Timestamp::parse(t).unwrap().into());
    let points = points(3);
    let countries: Vec<String> = eligibility::Country::all().iter().map(|c| c.to_string()).collect();
    let mut compared = 0;
    for chunk in countries.chunks(100) {
        for lists in [&["cyber"][..], &["cyber", "nosuch"][..], &["BAD ID"][..]] {
            for point in &points {
                let items = chunk
                    .iter()
                    .enumerate()
                    .map(|(i, c)| pb::CheckItem { list_id: lists[i % lists.len()].into(), country: c.clone() })
                    .collect();
                let m = pb::BatchCheckRequest { items, point: Some(*point) };
                let a =
                    answer(tower::Service::call(&mut fast, request_to("BatchCheck", framed(&m))).await.unwrap()).await;
                let b =
                    answer(tower::Service::call(&mut generated, request_to("BatchCheck", framed(&m))).await.unwrap())
                        .await;
                assert!(a == b, "{} items at {point:?}: {:?} / {:?}", m.items.len(), (&a.0, &a.1), (&b.0, &b.1));
                compared += 1;
            }
        }
    }
    // No items, and more than the limit.
    for n in [0, eligibility_server::limits::Limits::default().max_batch + 1] {
        let m = pb::BatchCheckRequest {
            items: (0..n).map(|_| pb::CheckItem { list_id: "cyber".into(), country: "FR".into() }).collect(),
            point: None,
        };
        let a = answer(tower::Service::call(&mut fast, request_to("BatchCheck", framed(&m))).await.unwrap()).await;
        let b = answer(tower::Service::call(&mut generated, request_to("BatchCheck", framed(&m))).await.unwrap()).await;
        assert!(a.0 == "3" && a == b, "{n} items: {:?} / {:?}", (&a.0, &a.1), (&b.0, &b.1));
    }
    assert!(compared >= 24);
    // Read in place: an unknown field (in the request and in an item) is
    // skipped, as prost skips it; a string that is not UTF-8 is
    // INVALID_ARGUMENT naming the item.
    let item = |country: &[u8], unknown: bool| {
        let mut v = vec![0x0a, 5];
        v.extend_from_slice(b"cyber");
        v.extend_from_slice(&[0x12, country.len() as u8]);
        v.extend_from_slice(country);
        if unknown {
            v.extend_from_slice(&[0x78, 1]); // field 15, varint 1
        }
        let mut f = vec![0x0a, v.len() as u8];
        f.extend_from_slice(&v);
        f
    };
    let frame = |message: Vec<u8>| {
        let mut v = vec![0u8];
        v.extend_from_slice(&(message.len() as u32).to_be_bytes());
        v.extend_from_slice(&message);
        v
    };
    let mut with_unknown = item(b"MX", true);
    with_unknown.extend_from_slice(&[0x78, 7]);
    let point = pb::ReadPoint { as_of: at("2030-01-01T00:00:00Z"), consistency: None };
    let mut point_field = vec![0x12, point.encoded_len() as u8];
    point_field.extend_from_slice(&point.encode_to_vec());
    with_unknown.extend_from_slice(&point_field);
    let plain = pb::BatchCheckRequest {
        items: vec![pb::CheckItem { list_id: "cyber".into(), country: "MX".into() }],
        point: Some(point),
    };
    let a = answer(tower::Service::call(&mut fast, request_to("BatchCheck", frame(with_unknown))).await.unwrap()).await;
    let b = answer(tower::Service::call(&mut generated, request_to("BatchCheck", framed(&plain))).await.unwrap()).await;
    assert!(a == b && a.0 == "0", "{:?} / {:?}", (&a.0, &a.1), (&b.0, &b.1));
    let (code, message, _) = answer(
        tower::Service::call(&mut fast, request_to("BatchCheck", frame(item(&[0xff, 0xfe], false)))).await.unwrap(),
    )
    .await;
    assert_eq!(code, "3", "{message}");
    assert!(message.contains("items%5B0%5D.country") || message.contains("items[0].country"), "{message}");
    server.stop().await;
}

/// gRPC-Web over HTTP/1.1 keeps its connection: two Checks, one after the
/// other, on one kept-alive connection (a fast path that left the request
/// body unread would have the server close it after the first).
#[tokio::test]
async fn grpc_web_checks_share_a_kept_alive_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), true).await;
    let mut s = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    for country in ["MX", "FR"] {
        let body = framed(&pb::CheckRequest { list_id: "cyber".into(), country: country.into(), point: None });
        // Chunked, as browsers' and Node's clients may send it, with the
        // last chunk a moment after the message.
        let head = "POST /eligibility.v1.EligibilityService/Check HTTP/1.1\r\nHost: x\r\n\
                    Content-Type: application/grpc-web+proto\r\nX-Grpc-Web: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(format!("{:x}\r\n", body.len()).as_bytes()).await.unwrap();
        s.write_all(&body).await.unwrap();
        s.write_all(b"\r\n").await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        s.write_all(b"0\r\n\r\n").await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !got.windows(13).any(|w| w == b"grpc-status:0") {
            let n = tokio::time::timeout(std::time::Duration::from_secs(10), s.read(&mut buf)).await.unwrap().unwrap();
            assert!(
                n > 0,
                "the server closed the connection after {country:?}'s answer began: {:?}",
                String::from_utf8_lossy(&got)
            );
            got.extend_from_slice(&buf[..n]);
        }
        assert!(got.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&got));
    }
    server.stop().await;
}
