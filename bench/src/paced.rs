//! An open-loop load generator precise to microseconds, for the latency
//! bar: one thread, non-blocking sockets, raw HTTP/2, and no sleeping.
//!
//! A tokio pacer (the earlier `unary::open_loop`) waits for its turn in the
//! runtime between sends: with answers and connections to serve on the same
//! core, its pacing error was p50 0.36 ms and p99 3.2 ms, as large as the
//! latencies it was to measure. Here one loop does everything, in turn and
//! without blocking: it sends every request whose scheduled time has come,
//! writes what is pending, and reads whatever the sockets hold, stamping
//! each answer when its last frame (the trailers) is read. The pacing
//! error is then one turn of the loop (a few system calls), and it is
//! measured: the time a request was written minus the time it was
//! scheduled. The thread spins on its CPU (100 % of it, by design): run it
//! pinned on a CPU of its own (`--pin`).
//!
//! The server sees an ordinary HTTP/2 client (see `raw_watch`): large
//! windows for what it sends, its own windows respected for what it
//! receives, SETTINGS and PING acknowledged; a reset stream, a GOAWAY, an
//! answer without a message or one whose size is not the first's (within a
//! timestamp's few bytes) fails the run.

use std::{
    io::{ErrorKind, Read, Write},
    net::{SocketAddr, TcpStream},
    time::{Duration, Instant},
};

use crate::raw_watch::{self, ACK, DATA, END_STREAM, GOAWAY, HEADERS, PING, RST_STREAM, SETTINGS, WINDOW_UPDATE};

/// Per request: latency (scheduled send → the answer's trailers read) and
/// the generator's pacing error (written − scheduled), in microseconds.
pub struct Paced {
    pub latency: Vec<f64>,
    pub pacing: Vec<f64>,
}

struct Conn {
    sock: TcpStream,
    out: Vec<u8>,
    buf: Vec<u8>,
    next_id: u32,
    /// What the server lets us send on the connection (its window).
    window: i64,
    /// Requests in `out`, not yet written.
    queued: Vec<usize>,
}

/// Sends `request` (a gRPC frame) to `path` at `rate` per second for
/// `dur`, over `connections` connections, whatever the answers do.
pub fn run(addr: SocketAddr, path: &str, request: &[u8], connections: usize, rate: f64, dur: Duration) -> Paced {
    let n = (rate * dur.as_secs_f64()) as usize;
    let interval = Duration::from_secs_f64(1.0 / rate);
    let block = raw_watch::request_headers(addr, path);
    let mut conns: Vec<Conn> = (0..connections)
        .map(|_| {
            let mut sock = TcpStream::connect(addr).expect("connect");
            sock.set_nodelay(true).unwrap();
            sock.write_all(&raw_watch::connection_preface()).expect("preface");
            sock.set_nonblocking(true).unwrap();
            Conn {
                sock,
                out: Vec::with_capacity(1 << 16),
                buf: Vec::with_capacity(1 << 16),
                next_id: 1,
                window: 65_535,
                queued: Vec::new(),
            }
        })
        .collect();
    // Per request: (connection, stream id) → index, by stream id per
    // connection: stream k of connection c is request c + k × connections.
    let mut scheduled = vec![None::<Instant>; n];
    let mut written = vec![0f64; n];
    let mut latency = vec![f64::NAN; n];
    let mut answer_len: Option<usize> = None;
    let mut data_len = vec![0usize; n];
    let (mut sent, mut done) = (0usize, 0usize);
    let start = Instant::now() + Duration::from_millis(10);
    let deadline = start + dur + Duration::from_secs(30);
    while done < n {
        let now = Instant::now();
        assert!(now < deadline, "{} of {n} answers after the run's end + 30 s", done);
        // Send what is due (unless the server's window is full).
        while sent < n {
            let at = start + interval.mul_f64(sent as f64);
            if at > now {
                break;
            }
            let c = &mut conns[sent % connections];
            if c.window < request.len() as i64 {
                break;
            }
            c.window -= request.len() as i64;
            let id = c.next_id;
            c.next_id += 2;
            raw_watch::frame(&mut c.out, HEADERS, raw_watch::END_HEADERS, id, &block);
            raw_watch::frame(&mut c.out, DATA, END_STREAM, id, request);
            c.queued.push(sent);
            scheduled[sent] = Some(at);
            sent += 1;
        }
        for (ci, c) in conns.iter_mut().enumerate() {
            if !c.out.is_empty() {
                match c.sock.write(&c.out) {
                    Ok(k) => {
                        c.out.drain(..k);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => panic!("write: {e}"),
                }
                // Written now (whole, as a rule: a few dozen bytes).
                if c.out.is_empty() {
                    let t = Instant::now();
                    for i in c.queued.drain(..) {
                        written[i] = (t - scheduled[i].unwrap()).as_secs_f64() * 1e6;
                    }
                }
            }
            let have = c.buf.len();
            c.buf.resize(have + (1 << 16), 0);
            let got = match c.sock.read(&mut c.buf[have..]) {
                Ok(0) => panic!("the server closed a connection"),
                Ok(k) => k,
                Err(e) if e.kind() == ErrorKind::WouldBlock => 0,
                Err(e) => panic!("read: {e}"),
            };
            c.buf.truncate(have + got);
            if got == 0 {
                continue;
            }
            let t = Instant::now();
            let mut at = 0;
            while c.buf.len() - at >= 9 {
                let (len, kind, flags, stream) = raw_watch::parse_header(&c.buf[at..at + 9]);
                if c.buf.len() - at < 9 + len {
                    break;
                }
                let payload = &c.buf[at + 9..at + 9 + len];
                let req = (stream as usize).saturating_sub(1) / 2 * connections + ci;
                match kind {
                    DATA if stream != 0 => data_len[req] += len,
                    RST_STREAM => panic!("the server reset stream {stream}: {payload:?}"),
                    SETTINGS if flags & ACK == 0 => raw_watch::frame(&mut c.out, SETTINGS, ACK, 0, &[]),
                    PING if flags & ACK == 0 => raw_watch::frame(&mut c.out, PING, ACK, 0, payload),
                    GOAWAY => panic!("the server sent GOAWAY: {payload:?}"),
                    WINDOW_UPDATE if stream == 0 => {
                        c.window += i64::from(u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]));
                    }
                    _ => {}
                }
                if (kind == HEADERS || kind == DATA) && stream != 0 && flags & END_STREAM != 0 {
                    // Every answer carries its message; sizes may differ by
                    // a few bytes (a timestamp's varint), not more.
                    let first = *answer_len.get_or_insert(data_len[req]);
                    assert!(
                        data_len[req] > 5 && data_len[req].abs_diff(first) <= 16,
                        "stream {stream}: an answer of {} bytes, the first was {first}",
                        data_len[req]
                    );
                    latency[req] = (t - scheduled[req].expect("an answer to a request not sent")).as_secs_f64() * 1e6;
                    done += 1;
                }
                at += 9 + len;
            }
            c.buf.drain(..at);
        }
    }
    let mut out = Paced { latency, pacing: written };
    out.latency.sort_by(f64::total_cmp);
    out.pacing.sort_by(f64::total_cmp);
    out
}
