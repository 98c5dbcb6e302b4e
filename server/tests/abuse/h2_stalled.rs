//! Watch streams over raw HTTP/2 whose client stops reading its socket:
//! it advertises huge windows (so the server may send as much as it
//! likes), opens its streams from revision 0, and once their headers are
//! in stops polling the connection. Later it reads what it was sent, to
//! show that the server's cut lost nothing.

use std::{net::SocketAddr, time::Duration};

use bytes::{Buf, Bytes, BytesMut};
use eligibility::proto::v1::{self as pb, watch_event::Event};
use prost::Message;
use tokio::{net::TcpStream, sync::watch};

/// One stalled connection and its streams.
pub struct Stalled {
    resume: watch::Sender<bool>,
    streams: Vec<h2::RecvStream>,
}

/// What one stream delivered.
pub struct Got {
    /// The changesets' revisions, in the order received.
    pub revisions: Vec<u64>,
    /// The server ended it (a slow-consumer status, or the connection
    /// closed under it).
    pub cut: bool,
}

/// Opens a connection with `streams` Watch streams from revision 0, then
/// stops reading it.
pub async fn open(addr: SocketAddr, streams: usize) -> Stalled {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (client, mut conn) = h2::client::Builder::new()
        .initial_window_size(1 << 30)
        .initial_connection_window_size(1 << 30)
        .handshake::<_, Bytes>(tcp)
        .await
        .unwrap();
    let (resume, mut resumed) = watch::channel(false);
    let (stall, stalled) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        tokio::select! {
            _ = &mut conn => return,
            _ = stalled => {}
        }
        // Not polled: the socket is not read until the test says so.
        let _ = resumed.wait_for(|r| *r).await;
        let _ = conn.await;
    });
    let request = {
        let msg = pb::WatchRequest {
            start: Some(pb::WatchStart { start: Some(pb::watch_start::Start::AfterRevision(0)) }),
            ..Default::default()
        };
        let mut frame = vec![0u8];
        frame.extend_from_slice(&(msg.encoded_len() as u32).to_be_bytes());
        frame.extend_from_slice(&msg.encode_to_vec());
        Bytes::from(frame)
    };
    let mut pending = Vec::new();
    let mut client = client;
    for _ in 0..streams {
        client = client.ready().await.unwrap();
        let req = http::Request::post(format!("http://{addr}/eligibility.v1.EligibilityService/Watch"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .unwrap();
        let (resp, mut send) = client.send_request(req, false).unwrap();
        send.send_data(request.clone(), true).unwrap();
        pending.push(resp);
    }
    let mut recv = Vec::new();
    for resp in pending {
        let resp = resp.await.unwrap();
        assert_eq!(resp.status(), 200);
        recv.push(resp.into_body());
    }
    let _ = stall.send(());
    // Keep the client handle alive with the streams (dropping it would
    // close the connection once idle).
    std::mem::forget(client);
    Stalled { resume, streams: recv }
}

impl Stalled {
    /// Reads the connection again: each stream's revisions until it ends,
    /// or until it has been quiet for two seconds (not cut).
    pub async fn resume(self) -> Vec<Got> {
        let _ = self.resume.send(true);
        let tasks: Vec<_> = self.streams.into_iter().map(|s| tokio::spawn(read(s))).collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    }
}

/// One stream's revisions until it ends, or until it has been quiet for
/// two seconds (it was not cut).
async fn read(mut s: h2::RecvStream) -> Got {
    let mut buf = BytesMut::new();
    let mut revisions = Vec::new();
    let cut = loop {
        match tokio::time::timeout(Duration::from_secs(2), s.data()).await {
            Err(_) => break false,
            Ok(None) => {
                // Trailers: a slow-consumer status.
                let trailers = s.trailers().await.ok().flatten();
                if let Some(t) = &trailers {
                    let status = t.get("grpc-status").and_then(|v| v.to_str().ok());
                    assert_eq!(status, Some("8"), "ended with {t:?}");
                    let msg = t.get("grpc-message").and_then(|v| v.to_str().ok()).unwrap_or_default();
                    assert!(msg.contains("slow"), "{msg}");
                }
                break true;
            }
            // The connection was closed under it.
            Ok(Some(Err(_))) => break true,
            Ok(Some(Ok(data))) => {
                buf.extend_from_slice(&data);
                while buf.len() >= 5 {
                    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
                    if buf.len() < 5 + len {
                        break;
                    }
                    buf.advance(5);
                    let e = pb::WatchEvent::decode(buf.split_to(len).freeze()).unwrap();
                    if let Some(Event::Changeset(c)) = e.event {
                        revisions.push(c.revision);
                    }
                }
            }
        }
    };
    Got { revisions, cut }
}
