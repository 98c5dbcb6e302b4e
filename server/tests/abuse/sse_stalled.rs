//! Event streams (`GET /v1/watch`) whose client never reads: a raw
//! HTTP/1.1 request, then nothing. Later it reads what it was sent and
//! resumes with `Last-Event-ID`, as a browser's `EventSource` would.

use std::{net::SocketAddr, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// A reader that stopped reading.
pub struct Stalled(TcpStream);

/// What a reader got.
pub struct Got {
    /// The changesets' ids (revisions), in the order received.
    pub revisions: Vec<u64>,
    /// The server ended the stream.
    pub cut: bool,
}

/// Opens `GET /v1/watch?{query}` and does not read the answer.
pub async fn open(addr: SocketAddr, query: &str) -> Stalled {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET /v1/watch?{query} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n").as_bytes())
        .await
        .unwrap();
    Stalled(s)
}

impl Stalled {
    /// Reads what was sent until the server closes the stream, or two
    /// seconds pass with nothing new (it was not cut).
    pub async fn drain(mut self) -> Got {
        let mut raw = Vec::new();
        let mut buf = vec![0u8; 64 << 10];
        let cut = loop {
            match tokio::time::timeout(Duration::from_secs(2), self.0.read(&mut buf)).await {
                Err(_) => break ended(&raw),
                Ok(Ok(0)) | Ok(Err(_)) => break true,
                Ok(Ok(n)) => raw.extend_from_slice(&buf[..n]),
            }
        };
        Got { revisions: changesets(&body(&raw)), cut }
    }
}

/// Resumes after `last` with `Last-Event-ID` and reads until the changeset
/// at `head`; the changesets' revisions.
pub async fn resume(addr: SocketAddr, last: u64, head: u64) -> Vec<u64> {
    if last >= head {
        return Vec::new();
    }
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET /v1/watch HTTP/1.1\r\nHost: x\r\nLast-Event-ID: {last}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut raw = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(30), s.read(&mut buf))
            .await
            .expect("the resumed event stream stalled")
            .unwrap();
        assert!(n > 0, "the resumed event stream ended");
        raw.extend_from_slice(&buf[..n]);
        let got = changesets(&body(&raw));
        if got.last() == Some(&head) {
            return got;
        }
    }
}

/// Whether the body's last chunk (the end of the stream) was received.
fn ended(raw: &[u8]) -> bool {
    raw.ends_with(b"\r\n0\r\n\r\n")
}

/// The body of a chunked HTTP/1.1 response, as far as it arrived whole.
fn body(raw: &[u8]) -> Vec<u8> {
    let Some(start) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Vec::new();
    };
    assert!(raw.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&raw[..start]));
    let mut rest = &raw[start + 4..];
    let mut out = Vec::new();
    while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
        let Ok(len) = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap_or("x").trim(), 16) else {
            break;
        };
        if len == 0 || rest.len() < eol + 2 + len {
            break;
        }
        out.extend_from_slice(&rest[eol + 2..eol + 2 + len]);
        rest = &rest[(eol + 4 + len).min(rest.len())..];
    }
    out
}

/// The ids of the whole `changeset` events in an event-stream body.
fn changesets(body: &[u8]) -> Vec<u64> {
    let text = String::from_utf8_lossy(body);
    let mut out = Vec::new();
    let whole = text.rfind("\n\n").map_or("", |end| &text[..end]);
    for event in whole.split("\n\n") {
        let mut id = None;
        let mut kind = None;
        for line in event.lines() {
            if let Some(v) = line.strip_prefix("id: ") {
                id = v.parse::<u64>().ok();
            } else if let Some(v) = line.strip_prefix("event: ") {
                kind = Some(v);
            }
        }
        if kind == Some("changeset") {
            out.push(id.expect("a changeset event has an id"));
        }
    }
    out
}
