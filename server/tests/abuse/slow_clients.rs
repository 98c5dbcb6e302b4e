//! Clients that send their request headers, or their request body, a byte
//! a second.

use std::{net::SocketAddr, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// What became of them.
pub struct Slow {
    /// Header senders the server closed.
    pub headers_closed: usize,
    /// Body senders answered `408 Request Timeout`.
    pub bodies_408: usize,
    /// Body senders closed without an answer.
    pub bodies_closed: usize,
}

enum End {
    Answered(String),
    Closed,
    Open,
}

/// Sends `head` at once, then `trickle` a byte a second, until the server
/// answers or closes, or `wait` passes.
async fn trickle(addr: SocketAddr, head: &'static [u8], trickle: &'static [u8], wait: Duration) -> End {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let deadline = tokio::time::Instant::now() + wait;
    if s.write_all(head).await.is_err() {
        return End::Closed;
    }
    let mut next = trickle.iter().cycle();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return End::Open,
            _ = tick.tick() => {
                let b = *next.next().unwrap();
                if s.write_all(&[b]).await.is_err() {
                    // The server closed: an answer it sent first may still
                    // be waiting to be read.
                    let n = tokio::time::timeout(Duration::from_millis(500), s.read(&mut buf)).await;
                    got.extend_from_slice(&buf[..n.ok().and_then(Result::ok).unwrap_or(0)]);
                    return if got.is_empty() { End::Closed } else { End::Answered(String::from_utf8_lossy(&got).into_owned()) };
                }
            }
            r = s.read(&mut buf) => match r {
                Ok(0) | Err(_) if got.is_empty() => return End::Closed,
                Ok(0) | Err(_) => return End::Answered(String::from_utf8_lossy(&got).into_owned()),
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    if got.windows(4).any(|w| w == b"\r\n\r\n") {
                        return End::Answered(String::from_utf8_lossy(&got).into_owned());
                    }
                }
            }
        }
    }
}

/// Runs `n` slow header senders and `n` slow body senders for up to
/// `wait`.
pub async fn run(addr: SocketAddr, n: usize, wait: Duration) -> Slow {
    let mut headers = Vec::new();
    let mut bodies = Vec::new();
    for _ in 0..n {
        headers.push(tokio::spawn(trickle(
            addr,
            b"G",
            b"ET /v1/lists HTTP/1.1\r\nHost: x\r\nX-Slow: yes\r\n\r\n",
            wait,
        )));
        bodies.push(tokio::spawn(trickle(
            addr,
            b"POST /v1/check:batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n",
            b"{\"checks\":[]} ",
            wait,
        )));
    }
    let mut slow = Slow { headers_closed: 0, bodies_408: 0, bodies_closed: 0 };
    for h in headers {
        // A server may answer a header timeout with 408 before closing.
        if !matches!(h.await.unwrap(), End::Open) {
            slow.headers_closed += 1;
        }
    }
    for b in bodies {
        match b.await.unwrap() {
            End::Answered(a) if a.starts_with("HTTP/1.1 408") => slow.bodies_408 += 1,
            End::Answered(a) => panic!("a slow body was answered {a:?}"),
            End::Closed => slow.bodies_closed += 1,
            End::Open => {}
        }
    }
    slow
}
