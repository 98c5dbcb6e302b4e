//! The SSE fan-out's client side: `GET /v1/watch` over raw HTTP/1.1, one
//! connection per reader (what a browser's `EventSource` or `curl -N`
//! does), read cheaply so that the load generator costs less per event
//! than the server it measures.
//!
//! Each reader writes its request once, then reads the chunked response
//! as it comes and looks only for the events' `id: <revision>` lines (an
//! event's data is one JSON line, and a chunk-size line is hex: neither
//! holds "\nid: "); a revision is reported to the shared [`Arrivals`] once
//! per reader. A reader whose connection ends or answers anything but 200
//! fails the run.

use std::{net::SocketAddr, sync::Arc};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::raw_watch::Arrivals;

/// Opens `readers` SSE readers of `list`'s changes, each on its own
/// connection; returns once every one has its response headers (so a
/// change made after it is delivered to all). `expected` is the total of
/// readers an arrival counts towards.
pub async fn open(addr: SocketAddr, list: &str, readers: usize, expected: usize, arrivals: Arc<Arrivals>) {
    let request = format!(
        "GET /v1/watch?list_id={list} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n"
    );
    let mut ready = tokio::task::JoinSet::new();
    for _ in 0..readers {
        let request = request.clone();
        let arrivals = arrivals.clone();
        ready.spawn(async move {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            stream.set_nodelay(true).expect("nodelay");
            stream.write_all(request.as_bytes()).await.expect("write the request");
            let mut buf = vec![0u8; 64 << 10];
            let mut have = 0;
            // The response head.
            let body_start = loop {
                let n = stream.read(&mut buf[have..]).await.expect("read");
                assert!(n > 0, "the server closed an SSE connection before answering");
                have += n;
                if let Some(end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..end]);
                    assert!(head.starts_with("HTTP/1.1 200"), "SSE answer: {head}");
                    break end + 4;
                }
            };
            tokio::spawn(read_events(stream, buf, body_start, have, expected, arrivals));
        });
    }
    while let Some(r) = ready.join_next().await {
        r.expect("an SSE reader starts");
    }
}

/// Reads one connection's events until it ends (the end of the run).
async fn read_events(
    mut stream: TcpStream,
    mut buf: Vec<u8>,
    mut start: usize,
    mut have: usize,
    expected: usize,
    arrivals: Arc<Arrivals>,
) {
    let mut last = 0u64;
    loop {
        // Every complete line in buf[start..have].
        while let Some(nl) = buf[start..have].iter().position(|&b| b == b'\n') {
            let line = &buf[start..start + nl];
            if let Some(id) = line.strip_prefix(b"id: ")
                && let Some(revision) = std::str::from_utf8(id).ok().and_then(|s| s.trim_end().parse::<u64>().ok())
                && revision > last
            {
                last = revision;
                arrivals.arrived(revision, 1, expected);
            }
            start += nl + 1;
        }
        // Keep the partial line; read more.
        buf.copy_within(start..have, 0);
        have -= start;
        start = 0;
        if have == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        match stream.read(&mut buf[have..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => have += n,
        }
    }
}
