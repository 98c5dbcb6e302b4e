//! The fan-out benchmark's client side: Watch streams opened and read over
//! raw HTTP/2, so that the load generator costs far less per event than the
//! server it measures.
//!
//! A tonic client spends about as much CPU per received event as the
//! server spends sending it (a task, a decoder and a buffer per stream;
//! measured: 2.3 µs per watcher per change on the generator's core against
//! the server's 2.3 µs). On a 2-core machine the generator then shares the
//! limit, and the time until the last watcher has a change measures both.
//! Here one task per connection writes every stream's request at once and
//! reads the connection's frames in order: per DATA frame, a 9-byte
//! header, the gRPC prefix and the changeset's revision (the first field of
//! the event's first field) are read, and the rest is skipped by length.
//! Per connection, a
//! revision is counted until all its streams had it; only then does the
//! connection report to the shared [`Arrivals`].
//!
//! The server sees an ordinary HTTP/2 client: the connection preface,
//! SETTINGS (a stream window of 2^31 - 1 bytes, so no stream ever waits for
//! a WINDOW_UPDATE), the connection window raised likewise and topped up,
//! SETTINGS and PING acknowledged; a reset stream or a GOAWAY fails the
//! run. Response headers are skipped undecoded (nothing here needs them;
//! HPACK's dynamic table only matters to a decoder).

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::Notify,
};

/// Per revision, how many watchers have it and when the last one did.
#[derive(Default)]
pub struct Arrivals {
    state: std::sync::Mutex<HashMap<u64, (usize, Option<Instant>)>>,
    done: Notify,
}

impl Arrivals {
    /// Counts `n` watchers' arrival of `revision`; the arrival that makes
    /// `expected` stamps the time.
    pub fn arrived(&self, revision: u64, n: usize, expected: usize) {
        let mut state = self.state.lock().unwrap();
        let entry = state.entry(revision).or_default();
        entry.0 += n;
        if entry.0 == expected {
            entry.1 = Some(Instant::now());
            drop(state);
            self.done.notify_waiters();
        }
    }

    /// When the last of `expected` watchers had `revision` (panics after
    /// 30 s, saying how many had it).
    pub async fn last_of(&self, revision: u64, expected: usize) -> Instant {
        let wait = async {
            loop {
                let notified = self.done.notified();
                if let Some(at) = self.state.lock().unwrap().get(&revision).and_then(|e| e.1) {
                    return at;
                }
                notified.await;
            }
        };
        match tokio::time::timeout(Duration::from_secs(30), wait).await {
            Ok(at) => at,
            Err(_) => {
                let got = self.state.lock().unwrap().get(&revision).map_or(0, |e| e.0);
                panic!("only {got} of {expected} watchers had change {revision} within 30 s")
            }
        }
    }
}

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
/// The largest window HTTP/2 allows.
const MAX_WINDOW: u32 = (1 << 31) - 1;
/// The connection window is topped up once this much was read.
const TOP_UP: u32 = 1 << 30;

/// A frame's 9-byte header: payload length, type, flags and stream id.
pub fn parse_header(h: &[u8]) -> (usize, u8, u8, u32) {
    let len = u32::from_be_bytes([0, h[0], h[1], h[2]]) as usize;
    // (The stream id with its reserved high bit cleared.)
    (len, h[3], h[4], u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff)
}

/// Appends one HTTP/2 frame.
pub fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}

/// An HPACK "literal header field without indexing, new name" (RFC 7541
/// §6.2.2), no Huffman coding: names and values here are under 127 bytes.
fn literal(block: &mut Vec<u8>, name: &str, value: &str) {
    block.push(0);
    block.push(name.len() as u8);
    block.extend_from_slice(name.as_bytes());
    block.push(value.len() as u8);
    block.extend_from_slice(value.as_bytes());
}

/// What a client sends first: the preface, SETTINGS (no push; a stream
/// window of 2^31 - 1, so no stream of ours waits for a WINDOW_UPDATE) and
/// the connection window raised likewise.
pub fn connection_preface() -> Vec<u8> {
    let mut out = PREFACE.to_vec();
    let mut settings = Vec::new();
    settings.extend_from_slice(&[0, 2, 0, 0, 0, 0]);
    settings.extend_from_slice(&[0, 4]);
    settings.extend_from_slice(&MAX_WINDOW.to_be_bytes());
    frame(&mut out, SETTINGS, 0, 0, &settings);
    frame(&mut out, WINDOW_UPDATE, 0, 0, &(MAX_WINDOW - 65_535).to_be_bytes());
    out
}

/// The HPACK block of a gRPC call's request headers (the same for every
/// call to `path`).
pub fn request_headers(addr: SocketAddr, path: &str) -> Vec<u8> {
    header_block(addr, "POST", path, &[("content-type", "application/grpc"), ("te", "trailers")])
}

/// The HPACK block of a request's headers: the pseudo-headers, then `more`.
fn header_block(addr: SocketAddr, method: &str, path: &str, more: &[(&str, &str)]) -> Vec<u8> {
    let mut block = Vec::new();
    literal(&mut block, ":method", method);
    literal(&mut block, ":scheme", "http");
    literal(&mut block, ":path", path);
    literal(&mut block, ":authority", &addr.to_string());
    for (name, value) in more {
        literal(&mut block, name, value);
    }
    block
}

/// What the streams of a connection are.
#[derive(Clone, Copy, Debug)]
pub enum Streams<'a> {
    /// gRPC Watch calls (starting now).
    Grpc,
    /// `GET` requests of server-sent events at this path (`/v1/watch?...`).
    Sse(&'a str),
}

/// Opens `streams` Watch streams (starting now) on one connection and
/// returns once the server answered every one with its response headers
/// (the watcher is subscribed by then); a task then reads the connection
/// and reports arrivals until it closes. `expected` is the run's total of
/// watchers, over all connections.
pub async fn open(addr: SocketAddr, streams: usize, expected: usize, arrivals: Arc<Arrivals>) {
    open_streams(addr, Streams::Grpc, streams, expected, arrivals).await
}

/// [`open`], for either kind of stream.
pub async fn open_streams(
    addr: SocketAddr,
    kind: Streams<'_>,
    streams: usize,
    expected: usize,
    arrivals: Arc<Arrivals>,
) {
    let mut sock = TcpStream::connect(addr).await.expect("connect");
    sock.set_nodelay(true).unwrap();
    let mut out = connection_preface();
    match kind {
        Streams::Grpc => {
            let block = request_headers(addr, "/eligibility.v1.EligibilityService/Watch");
            // WatchRequest { start: WatchStart { now: true } }, gRPC-framed.
            let request: &[u8] = &[0, 0, 0, 0, 4, 0x0a, 2, 0x10, 1];
            for i in 0..streams {
                let id = 1 + 2 * i as u32;
                frame(&mut out, HEADERS, END_HEADERS, id, &block);
                frame(&mut out, DATA, END_STREAM, id, request);
            }
        }
        Streams::Sse(path) => {
            let block = header_block(addr, "GET", path, &[("accept", "text/event-stream")]);
            for i in 0..streams {
                frame(&mut out, HEADERS, END_HEADERS | END_STREAM, 1 + 2 * i as u32, &block);
            }
        }
    }
    sock.write_all(&out).await.expect("write the requests");
    let mut reader = Reader { sock, buf: Vec::with_capacity(1 << 20), start: 0, unread: 0 };
    let mut conn = Connection {
        streams,
        expected,
        arrivals,
        answered: 0,
        counts: HashMap::new(),
        partial: HashMap::new(),
        sse: matches!(kind, Streams::Sse(_)),
        last: HashMap::new(),
    };
    // Until every stream is answered, then on a task of its own.
    while conn.answered < streams {
        reader.next_frame(&mut conn).await;
    }
    tokio::spawn(async move {
        loop {
            reader.next_frame(&mut conn).await;
        }
    });
}

struct Reader {
    sock: TcpStream,
    buf: Vec<u8>,
    start: usize,
    unread: u32,
}

impl Reader {
    /// Reads and handles one frame (parks the task for good when the
    /// server closes the connection: the run is over).
    async fn next_frame(&mut self, conn: &mut Connection) {
        self.fill(9).await;
        let (len, kind, flags, stream) = parse_header(&self.buf[self.start..self.start + 9]);
        self.fill(9 + len).await;
        let payload = &self.buf[self.start + 9..self.start + 9 + len];
        let mut reply = Vec::new();
        match kind {
            DATA => {
                conn.data(stream, payload);
                self.unread += len as u32;
                if self.unread >= TOP_UP {
                    frame(&mut reply, WINDOW_UPDATE, 0, 0, &self.unread.to_be_bytes());
                    self.unread = 0;
                }
            }
            HEADERS if flags & END_STREAM == 0 => conn.answered += 1,
            HEADERS => panic!("stream {stream} ended (trailers) during the benchmark"),
            RST_STREAM => panic!("the server reset stream {stream}: {payload:?}"),
            SETTINGS if flags & ACK == 0 => frame(&mut reply, SETTINGS, ACK, 0, &[]),
            PING if flags & ACK == 0 => frame(&mut reply, PING, ACK, 0, payload),
            GOAWAY => panic!("the server sent GOAWAY: {payload:?}"),
            _ => {}
        }
        self.start += 9 + len;
        if !reply.is_empty() {
            self.sock.write_all(&reply).await.expect("write");
        }
    }

    /// Until at least `n` unhandled bytes are in the buffer.
    async fn fill(&mut self, n: usize) {
        while self.buf.len() - self.start < n {
            if self.start > 0 {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            let have = self.buf.len();
            self.buf.resize(have.max(n) + 256 * 1024, 0);
            let got = self.sock.read(&mut self.buf[have..]).await.unwrap_or(0);
            self.buf.truncate(have + got);
            if got == 0 {
                std::future::pending::<()>().await;
            }
        }
    }
}

struct Connection {
    streams: usize,
    expected: usize,
    arrivals: Arc<Arrivals>,
    answered: usize,
    /// Per revision, how many of this connection's streams have it.
    counts: HashMap<u64, usize>,
    /// A stream's unfinished gRPC message or event line (only if a frame
    /// split one).
    partial: HashMap<u32, Vec<u8>>,
    /// Server-sent events instead of gRPC messages.
    sse: bool,
    /// Per SSE stream, the last revision counted (a heartbeat repeats it).
    last: HashMap<u32, u64>,
}

impl Connection {
    /// Counts a stream's arrival of `revision`; the connection reports
    /// once all its streams have it.
    fn count(&mut self, revision: u64) {
        let n = self.counts.entry(revision).or_default();
        *n += 1;
        if *n == self.streams {
            self.counts.remove(&revision);
            self.arrivals.arrived(revision, self.streams, self.expected);
        }
    }

    /// An SSE stream's bytes: each complete `id: <revision>` line counts
    /// (once per revision and stream). Read in place (the usual frame is
    /// whole events); only a split line is kept, so the generator stays
    /// cheaper per event than the server it measures.
    fn sse_data(&mut self, stream: u32, payload: &[u8]) {
        let joined;
        let text = match self.partial.remove(&stream) {
            Some(mut head) => {
                head.extend_from_slice(payload);
                joined = head;
                &joined[..]
            }
            None => payload,
        };
        let mut start = 0;
        let mut newest = None;
        while let Some(nl) = text[start..].iter().position(|&b| b == b'\n') {
            let line = &text[start..start + nl];
            if let Some(id) = line.strip_prefix(b"id: ") {
                newest = std::str::from_utf8(id).ok().and_then(|s| s.trim_end().parse::<u64>().ok()).or(newest);
            }
            start += nl + 1;
        }
        if start < text.len() {
            self.partial.insert(stream, text[start..].to_vec());
        }
        if let Some(revision) = newest {
            let last = self.last.entry(stream).or_default();
            if revision > *last {
                *last = revision;
                self.count(revision);
            }
        }
    }

    fn data(&mut self, stream: u32, payload: &[u8]) {
        if self.sse {
            return self.sse_data(stream, payload);
        }
        let joined;
        let mut rest = match self.partial.remove(&stream) {
            Some(mut head) => {
                head.extend_from_slice(payload);
                joined = head;
                &joined[..]
            }
            None => payload,
        };
        while rest.len() >= 5 {
            let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
            if rest.len() < 5 + len {
                break;
            }
            if let Some(revision) = changeset_revision(&rest[5..5 + len]) {
                self.count(revision);
            }
            rest = &rest[5 + len..];
        }
        if !rest.is_empty() {
            self.partial.insert(stream, rest.to_vec());
        }
    }
}

/// A varint at the start of `b`, and its length.
fn varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut rest = b;
    let v = prost::encoding::decode_varint(&mut rest).ok()?;
    Some((v, b.len() - rest.len()))
}

/// Field 1 (varint) of field 1 (a message) of `msg`: a WatchEvent's
/// changeset revision; `None` for other events.
fn changeset_revision(msg: &[u8]) -> Option<u64> {
    let inner = field(msg, 1, 2)?;
    let (_, at) = field_at(inner, 1, 0)?;
    varint(&inner[at..]).map(|(v, _)| v)
}

/// The bytes of length-delimited field `number` of `msg`.
fn field(msg: &[u8], number: u64, wire: u64) -> Option<&[u8]> {
    let (len, at) = field_at(msg, number, wire)?;
    msg.get(at..at + len)
}

/// Where field `number` (of wire type `wire`) starts in `msg` and, if
/// length-delimited, its length.
fn field_at(msg: &[u8], number: u64, wire: u64) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < msg.len() {
        let (key, n) = varint(&msg[i..])?;
        i += n;
        let (this, kind) = (key >> 3, key & 7);
        let len = match kind {
            0 => {
                if this == number && kind == wire {
                    return Some((0, i));
                }
                varint(&msg[i..])?.1
            }
            2 => {
                let (l, n) = varint(&msg[i..])?;
                i += n;
                if this == number && kind == wire {
                    return Some((l as usize, i));
                }
                l as usize
            }
            1 => 8,
            5 => 4,
            _ => return None,
        };
        i += len;
    }
    None
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    #[test]
    fn reads_the_changeset_revision_and_nothing_else() {
        use eligibility::proto::v1 as pb;
        let event = pb::WatchEvent {
            event: Some(pb::watch_event::Event::Changeset(pb::Changeset {
                reason: "r".repeat(300),
                revision: 123_456,
                ..Default::default()
            })),
        };
        assert_eq!(changeset_revision(&event.encode_to_vec()), Some(123_456));
        let progress = pb::WatchEvent {
            event: Some(pb::watch_event::Event::Progress(pb::Progress { revision: 7, ..Default::default() })),
        };
        assert_eq!(changeset_revision(&progress.encode_to_vec()), None);
    }

    #[test]
    fn the_request_is_the_watch_request_from_now() {
        use eligibility::proto::v1::{self as pb, watch_start::Start};
        let request =
            pb::WatchRequest { start: Some(pb::WatchStart { start: Some(Start::Now(true)) }), ..Default::default() };
        assert_eq!(request.encode_to_vec(), [0x0a, 2, 0x10, 1]);
    }
}
