//! Connections as they are accepted: a limit on open connections, in all
//! and per client address (past either, a new connection is closed at
//! once), and a deadline for a connection's first bytes: the HTTP/2
//! preface, the first HTTP/1.1 request's headers, or (TLS) the start of
//! the handshake. A connection that opens and stays silent, or sends its
//! headers a byte a second, is closed at the deadline instead of holding a
//! descriptor and memory. Refusals are counted and logged once per
//! interval, not per connection.

use std::{
    collections::HashMap,
    io,
    net::IpAddr,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};
use tokio_stream::{Stream, StreamExt};
use tonic::transport::server::{Connected, TcpConnectInfo};

/// Connection limits.
#[derive(Clone, Debug)]
pub struct ConnLimits {
    /// Open connections in all.
    pub max: usize,
    /// Open connections per client address.
    pub max_per_address: usize,
    /// Time for a new connection's first request (or preface, or TLS hello).
    pub handshake: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits { max: 10_000, max_per_address: 1_000, handshake: Duration::from_secs(10) }
    }
}

#[derive(Default)]
struct Counts {
    open: AtomicUsize,
    per_address: Mutex<HashMap<IpAddr, usize>>,
    refused: AtomicU64,
    last_log: Mutex<Option<Instant>>,
}

impl Counts {
    /// Counts a refusal; logs the refusals of the last interval at most
    /// once per interval.
    fn refuse(&self, reason: &'static str) {
        metrics::counter!("eligibility_connections_refused_total", "reason" => reason).increment(1);
        let n = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        let mut last = self.last_log.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
            *last = Some(Instant::now());
            self.refused.store(0, Ordering::Relaxed);
            tracing::warn!(refused = n, last = reason, "connections refused or closed by the connection limits");
        }
    }
}

/// The accepted connections of `incoming`, within `limits`.
pub fn guard<S>(incoming: S, limits: ConnLimits) -> impl Stream<Item = io::Result<Conn>> + Send
where
    S: Stream<Item = io::Result<TcpStream>> + Send,
{
    let counts = Arc::new(Counts::default());
    incoming.filter_map(move |accepted| match accepted {
        Err(e) => Some(Err(e)),
        Ok(io) => admit(io, &counts, &limits).map(Ok),
    })
}

fn admit(io: TcpStream, counts: &Arc<Counts>, limits: &ConnLimits) -> Option<Conn> {
    let ip = io.peer_addr().ok().map(|a| a.ip());
    if counts.open.load(Ordering::Relaxed) >= limits.max {
        counts.refuse("max_connections");
        return None;
    }
    if let Some(ip) = ip {
        let mut map = counts.per_address.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(ip).or_insert(0);
        if *n >= limits.max_per_address {
            drop(map);
            counts.refuse("max_connections_per_address");
            return None;
        }
        *n += 1;
    }
    let open = counts.open.fetch_add(1, Ordering::Relaxed) + 1;
    metrics::gauge!("eligibility_connections").set(open as f64);
    Some(Conn {
        io,
        slot: Slot { counts: counts.clone(), ip },
        deadline: Some(Box::pin(tokio::time::sleep(limits.handshake))),
        first: FirstBytes::default(),
    })
}

/// A connection's place in the limits, given back when it closes.
struct Slot {
    counts: Arc<Counts>,
    ip: Option<IpAddr>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let open = self.counts.open.fetch_sub(1, Ordering::Relaxed) - 1;
        metrics::gauge!("eligibility_connections").set(open as f64);
        if let Some(ip) = self.ip {
            let mut map = self.counts.per_address.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(n) = map.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&ip);
                }
            }
        }
    }
}

/// Watches a connection's first bytes until its first request is in.
#[derive(Default)]
struct FirstBytes {
    seen: usize,
    kind: Option<Kind>,
    /// The last bytes seen (HTTP/1.1: for the end of the headers).
    tail: [u8; 4],
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tls,
    Http2,
    Http1,
}

const PREFACE_LEN: usize = 24;

impl FirstBytes {
    /// Feeds bytes read; whether the first request is complete.
    fn feed(&mut self, bytes: &[u8]) -> bool {
        for &b in bytes {
            if self.kind.is_none() {
                self.kind = Some(match b {
                    0x16 => Kind::Tls,
                    b'P' => Kind::Http2,
                    _ => Kind::Http1,
                });
            }
            self.seen += 1;
            self.tail = [self.tail[1], self.tail[2], self.tail[3], b];
            let done = match self.kind {
                // The handshake is the TLS layer's; the hello has begun.
                Some(Kind::Tls) => self.seen >= PREFACE_LEN,
                Some(Kind::Http2) => self.seen >= PREFACE_LEN,
                _ => &self.tail == b"\r\n\r\n",
            };
            if done {
                return true;
            }
        }
        false
    }
}

/// An accepted connection: see the module docs.
pub struct Conn {
    io: TcpStream,
    slot: Slot,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    first: FirstBytes,
}

impl Connected for Conn {
    type ConnectInfo = TcpConnectInfo;
    fn connect_info(&self) -> TcpConnectInfo {
        self.io.connect_info()
    }
}

impl AsyncRead for Conn {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(deadline) = this.deadline.as_mut()
            && deadline.as_mut().poll(cx).is_ready()
        {
            this.slot.counts.refuse("handshake_timeout");
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "no complete first request in time")));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if this.deadline.is_some() && matches!(polled, Poll::Ready(Ok(()))) && this.first.feed(&buf.filled()[before..])
        {
            this.deadline = None;
        }
        polled
    }
}

impl AsyncWrite for Conn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_request_is_recognised_on_each_protocol() {
        let mut h1 = FirstBytes::default();
        assert!(!h1.feed(b"GET /v1/lists HTTP/1.1\r\nHost: x\r\n"));
        assert!(!h1.feed(b"\r"));
        assert!(h1.feed(b"\n"), "the blank line ends the headers, however split");
        let mut h2 = FirstBytes::default();
        assert!(!h2.feed(b"PRI * HTTP/2.0\r\n\r\n"));
        assert!(h2.feed(b"SM\r\n\r\n"));
        let mut tls = FirstBytes::default();
        assert!(!tls.feed(&[0x16, 3, 1]));
        assert!(tls.feed(&[0u8; 64]));
    }
}
