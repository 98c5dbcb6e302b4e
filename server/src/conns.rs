//! Connections as they are accepted: a limit on open connections, in all
//! and per client address (past either, a new connection is closed at
//! once), and a deadline for a connection's first bytes: the HTTP/2
//! preface, the first HTTP/1.1 request's headers, or (TLS) the start of
//! the handshake. A connection that opens and stays silent, or sends its
//! headers a byte a second, is closed at the deadline instead of holding a
//! descriptor and memory. A connection with no request or stream in
//! progress for the idle timeout is closed too. Refusals are counted and
//! logged once per interval, not per connection.
//!
//! Each connection carries its [`Ledger`] (see [`crate::budget`]): its IO
//! counts the bytes written to the socket against what its streams handed
//! over, and fails at once when the budget closes it. Handlers find the
//! ledger, and the client's address, in the request's [`ConnInfo`].

use std::{
    collections::HashMap,
    io,
    net::IpAddr,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};
use tokio_stream::{Stream, StreamExt};
use tonic::transport::server::{Connected, TcpConnectInfo, TlsConnectInfo};

use crate::{
    budget::{Budget, Ledger},
    telemetry::Throttled,
};

/// Connection limits.
#[derive(Clone, Debug)]
pub struct ConnLimits {
    /// Open connections in all.
    pub max: usize,
    /// Open connections per client address.
    pub max_per_address: usize,
    /// Time for a new connection's first request (or preface, or TLS hello).
    pub handshake: Duration,
    /// Time a connection may stay open with no request or stream in
    /// progress.
    pub idle: Duration,
    /// At shutdown, time for the connections to finish before those still
    /// open are closed.
    pub drain: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            max: 10_000,
            max_per_address: 1_000,
            handshake: Duration::from_secs(10),
            idle: Duration::from_secs(300),
            drain: Duration::from_secs(10),
        }
    }
}

/// What a request knows of its connection (in its extensions, put there
/// by the server for every request).
#[derive(Clone)]
pub struct ConnInfo {
    /// The TCP addresses.
    pub tcp: TcpConnectInfo,
    /// The connection's ledger.
    pub ledger: Arc<Ledger>,
}

/// The connection of a request, from its extensions (plain or TLS).
pub fn info(extensions: &http::Extensions) -> Option<&ConnInfo> {
    extensions.get::<ConnInfo>().or_else(|| extensions.get::<TlsConnectInfo<ConnInfo>>().map(TlsConnectInfo::get_ref))
}

/// The client's address, from a request's extensions.
pub fn peer(extensions: &http::Extensions) -> Option<std::net::SocketAddr> {
    info(extensions).and_then(|i| i.tcp.remote_addr())
}

#[derive(Default)]
struct Counts {
    open: AtomicUsize,
    per_address: Mutex<HashMap<IpAddr, usize>>,
    refused: Throttled,
}

impl Counts {
    /// Counts a refusal; logs the refusals of the last interval at most
    /// once per interval.
    fn refuse(&self, reason: &'static str) {
        metrics::counter!("eligibility_connections_refused_total", "reason" => reason).increment(1);
        if let Some(n) = self.refused.hit() {
            tracing::warn!(refused = n, last = reason, "connections refused or closed by the connection limits");
        }
    }
}

/// The accepted connections of `incoming`, within `limits`, each with its
/// ledger in `budget`.
pub fn guard<S>(incoming: S, limits: ConnLimits, budget: Arc<Budget>) -> impl Stream<Item = io::Result<Conn>> + Send
where
    S: Stream<Item = io::Result<TcpStream>> + Send,
{
    let counts = Arc::new(Counts::default());
    incoming.filter_map(move |accepted| match accepted {
        Err(e) => Some(Err(e)),
        Ok(io) => admit(io, &counts, &limits, &budget).map(Ok),
    })
}

fn admit(io: TcpStream, counts: &Arc<Counts>, limits: &ConnLimits, budget: &Arc<Budget>) -> Option<Conn> {
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
        ledger: budget.open(),
        idle: limits.idle,
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
    /// The first request is in.
    done: bool,
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
                self.done = true;
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
    /// The handshake deadline, until the first request is in; then the
    /// idle timer.
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    first: FirstBytes,
    ledger: Arc<Ledger>,
    idle: Duration,
}

impl Connected for Conn {
    type ConnectInfo = ConnInfo;
    fn connect_info(&self) -> ConnInfo {
        ConnInfo { tcp: self.io.connect_info(), ledger: self.ledger.clone() }
    }
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "closed: a slow consumer over the server's memory budget")
}

impl Conn {
    /// Whether the deadline in force has passed: the handshake's (the
    /// connection is refused), or the idle timer's with no request in
    /// progress for the whole idle time (it is closed). An idle timer that
    /// fires early is set again for when the connection could be idle
    /// long enough.
    fn expired(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        let deadline = self.deadline.as_mut()?;
        if deadline.as_mut().poll(cx).is_pending() {
            return None;
        }
        if !self.first.done {
            self.slot.counts.refuse("handshake_timeout");
            return Some(io::Error::new(io::ErrorKind::TimedOut, "no complete first request in time"));
        }
        let now = self.ledger.now();
        let wait = match self.ledger.idle_since() {
            Some(since) if now >= since + self.idle => {
                metrics::counter!("eligibility_connections_idle_closed_total").increment(1);
                tracing::debug!(idle = ?self.idle, "closing an idle connection");
                return Some(io::Error::new(io::ErrorKind::TimedOut, "idle"));
            }
            Some(since) => since + self.idle - now,
            None => self.idle,
        };
        deadline.as_mut().reset(tokio::time::Instant::now() + wait);
        // Registers the timer again.
        let _ = deadline.as_mut().poll(cx);
        None
    }
}

impl AsyncRead for Conn {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.ledger.is_closed() {
            return Poll::Ready(Err(closed()));
        }
        if let Some(e) = this.expired(cx) {
            return Poll::Ready(Err(e));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        match polled {
            Poll::Ready(Ok(())) if !this.first.done && this.first.feed(&buf.filled()[before..]) => {
                // From now on the deadline is the idle timer.
                let idle = tokio::time::Instant::now() + this.idle;
                if let Some(d) = this.deadline.as_mut() {
                    d.as_mut().reset(idle);
                }
            }
            Poll::Pending => this.ledger.register(cx.waker()),
            _ => {}
        }
        polled
    }
}

impl AsyncWrite for Conn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.ledger.is_closed() {
            return Poll::Ready(Err(closed()));
        }
        let polled = Pin::new(&mut this.io).poll_write(cx, buf);
        this.wrote(cx, &polled);
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.ledger.is_closed() {
            return Poll::Ready(Err(closed()));
        }
        let polled = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.wrote(cx, &polled);
        polled
    }

    /// Says no, on purpose. h2 copies a DATA frame into its write buffer,
    /// to go out with the frames around it in one write, only if the frame
    /// is at most 256 bytes when the IO writes vectored, 1 024 when it does
    /// not; a larger frame is written on its own, and nothing more is
    /// buffered until it is. A Check answer with its deciding change
    /// (~420 bytes) thus cost a write system call per answer. Measured
    /// (`eligibility-bench --pin unary`, server-bound): that answer at 0.63
    /// of the health check's calls/s with vectored writes, 0.85 without;
    /// BatchCheck of 100 (a larger answer, now two writes instead of one
    /// `writev`) unchanged within noise; one change to 10 000 watchers: 226
    /// write calls → 9, same CPU and latency.
    fn is_write_vectored(&self) -> bool {
        false
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl Conn {
    /// Counts bytes written against the ledger; a write the socket cannot
    /// take now registers the task to be woken if the connection is closed
    /// (a client that stopped reading leaves its connection there).
    fn wrote(&self, cx: &Context<'_>, polled: &Poll<io::Result<usize>>) {
        match polled {
            Poll::Ready(Ok(n)) => self.ledger.written(*n),
            Poll::Pending => self.ledger.register(cx.waker()),
            Poll::Ready(Err(_)) => {}
        }
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
