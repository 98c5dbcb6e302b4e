//! gRPC-Web's text mode (`application/grpc-web-text`: request and answer in
//! base64, what the `grpc-web` npm client sends by default), checked by the
//! protocol's own description (grpc/grpc `doc/PROTOCOL-WEB.md`) with no
//! gRPC-Web code of ours or tonic's on the client side: a unary Check and a
//! streamed Watch over plain HTTP/1.1, answers decoded by hand.

use base64::{Engine, engine::general_purpose::STANDARD};
use eligibility::proto::v1 as pb;
use eligibility_e2e::{TestServer, web};
use http_body_util::BodyExt;
use prost::Message;

/// A message in gRPC's framing (flag 0, length, bytes).
fn frame(m: &impl Message) -> Vec<u8> {
    let body = m.encode_to_vec();
    let mut out = vec![0u8];
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// Decodes the base64 that has fully arrived in `text` (whole 4-character
/// quanta; each quantum decodes on its own, which is what lets a server
/// pad each chunk it sends), leaving the rest for later.
fn decode_available(text: &mut String, out: &mut Vec<u8>) {
    let whole = text.len() / 4 * 4;
    for quantum in text.as_bytes()[..whole].chunks(4) {
        out.extend(STANDARD.decode(quantum).expect("base64 quanta"));
    }
    text.drain(..whole);
}

/// The complete frames at the start of `bytes` (flag, payload), removed
/// from it.
fn take_frames(bytes: &mut Vec<u8>) -> Vec<(u8, Vec<u8>)> {
    let mut frames = Vec::new();
    while bytes.len() >= 5 {
        let len = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
        if bytes.len() < 5 + len {
            break;
        }
        let payload = bytes[5..5 + len].to_vec();
        frames.push((bytes[0], payload));
        bytes.drain(..5 + len);
    }
    frames
}

async fn open(
    addr: std::net::SocketAddr,
    method: &str,
    request: &impl Message,
) -> http::Response<hyper::body::Incoming> {
    let body = STANDARD.encode(frame(request));
    let headers =
        [("content-type", "application/grpc-web-text"), ("x-grpc-web", "1"), ("accept", "application/grpc-web-text")];
    let resp = web::send(addr, "POST", &format!("/eligibility.v1.EligibilityService/{method}"), &headers, &body).await;
    assert_eq!(resp.status().as_u16(), 200, "{method}");
    let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("application/grpc-web-text"), "{method}: content type {ct}");
    resp
}

#[tokio::test]
async fn text_mode_answers_a_check_and_streams_a_watch() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), true).await;

    // Unary: one message frame, then a trailer frame (flag 0x80) with the status.
    let check = pb::CheckRequest { list_id: "cyber".into(), country: "MX".into(), point: None };
    let resp = open(server.addr, "Check", &check).await;
    let mut text = String::from_utf8(resp.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    let mut bytes = Vec::new();
    decode_available(&mut text, &mut bytes);
    assert!(text.is_empty(), "the answer is whole base64 quanta");
    let frames = take_frames(&mut bytes);
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert_eq!(frames[0].0, 0);
    let answer = pb::CheckResponse::decode(frames[0].1.as_slice()).unwrap();
    let decision = answer.decision.unwrap();
    assert!(!decision.eligible);
    assert_eq!(decision.reason(), pb::DecisionReason::Removed);
    assert_eq!(frames[1].0, 0x80, "a trailer frame");
    let trailers = String::from_utf8(frames[1].1.clone()).unwrap().to_ascii_lowercase();
    assert!(trailers.contains("grpc-status:0"), "{trailers}");

    // Server streaming: the demo's three changesets arrive as they are
    // sent, before the stream ends.
    let watch = pb::WatchRequest {
        start: Some(pb::WatchStart { start: Some(pb::watch_start::Start::AfterRevision(0)) }),
        ..Default::default()
    };
    let mut body = open(server.addr, "Watch", &watch).await.into_body();
    let (mut text, mut bytes, mut revisions) = (String::new(), Vec::new(), Vec::new());
    let read = async {
        while revisions.len() < 3 {
            let chunk = body.frame().await.expect("the stream went on").unwrap();
            let Ok(data) = chunk.into_data() else { continue };
            text.push_str(std::str::from_utf8(&data).unwrap());
            decode_available(&mut text, &mut bytes);
            for (flag, payload) in take_frames(&mut bytes) {
                assert_eq!(flag, 0, "no trailer before the stream ends");
                if let Some(pb::watch_event::Event::Changeset(c)) =
                    pb::WatchEvent::decode(payload.as_slice()).unwrap().event
                {
                    revisions.push(c.revision);
                }
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), read).await.expect("the changesets streamed");
    assert_eq!(revisions, [1, 2, 3]);
    drop(body);
    server.stop().await;
}
