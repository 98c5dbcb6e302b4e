//! Unary calls measured where the server is the limit: a light load
//! generator (raw HTTP/2, requests encoded once, answers read to their
//! trailers' `grpc-status` and not decoded), meant to run pinned on its
//! own CPU (`--pin`) against a server pinned to another with one worker.
//! Rounds alternate the kinds (each round starts with the next kind, so
//! a drift of the machine's speed favours none); per kind the median
//! calls/s, and the median of the per-round ratios to the health check.
//! Both processes' CPU shares are printed: the server near 100 % and the
//! generator below it says the server is the limit.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use eligibility::proto::v1 as pb;
use prost::Message;

use crate::{ServerProcess, cpu_secs, paced::Paced};

/// A call the generator makes, encoded once.
struct Call {
    name: &'static str,
    path: &'static str,
    frame: Bytes,
}

fn frame(m: &impl Message) -> Bytes {
    let mut v = vec![0u8];
    v.extend_from_slice(&(m.encoded_len() as u32).to_be_bytes());
    m.encode(&mut v).expect("a Vec grows");
    Bytes::from(v)
}

fn calls() -> Vec<Call> {
    let check =
        |country: &str| pb::CheckRequest { list_id: "cyber".into(), country: country.into(), ..Default::default() };
    vec![
        Call {
            name: "health",
            path: "/grpc.health.v1.Health/Check",
            frame: frame(&tonic_health::pb::HealthCheckRequest { service: String::new() }),
        },
        // Never listed: the smallest answer.
        Call { name: "check CN", path: "/eligibility.v1.EligibilityService/Check", frame: frame(&check("CN")) },
        // Removed on 2021-11-01: the answer with the deciding change, its
        // reason and reference (full provenance, ~420 bytes).
        Call { name: "check MX", path: "/eligibility.v1.EligibilityService/Check", frame: frame(&check("MX")) },
        // 100 countries in one call (MX among them): items/s is 100 x this.
        Call {
            name: "batch 100",
            path: "/eligibility.v1.EligibilityService/BatchCheck",
            frame: frame(&pb::BatchCheckRequest {
                items: eligibility::Country::all()
                    .iter()
                    .take(100)
                    .map(|c| pb::CheckItem { list_id: "cyber".into(), country: c.to_string() })
                    .collect(),
                point: None,
            }),
        },
    ]
}

/// One measurement: `calls/s` of `call` over `dur`, with `inflight` calls
/// per connection; errors panic (a benchmark of failures measures nothing).
async fn measure(
    conns: &[h2::client::SendRequest<Bytes>],
    addr: SocketAddr,
    call: &Call,
    inflight: usize,
    dur: Duration,
) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    let uri: http::Uri = format!("http://{addr}{}", call.path).parse().unwrap();
    for conn in conns {
        for _ in 0..inflight {
            let (mut conn, done, stop, uri, body) =
                (conn.clone(), done.clone(), stop.clone(), uri.clone(), call.frame.clone());
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    conn = conn.ready().await.expect("connection");
                    answered(send(&mut conn, &uri, &body)).await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
    }
    let before = done.load(Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(dur).await;
    let n = done.load(Ordering::Relaxed) - before;
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("a caller failed");
    }
    n as f64 / elapsed.as_secs_f64()
}

/// The generator's `n` HTTP/2 connections (TCP_NODELAY, as the server's
/// side). Their budget for small DATA frames held unread (h2 ends a
/// connection that exceeds it, a defence against peers that flood tiny
/// frames) is lifted: every answer is a small DATA frame, and a generator
/// that is behind holds many.
async fn generator_connections(addr: SocketAddr, n: usize) -> Vec<h2::client::SendRequest<Bytes>> {
    let mut conns = Vec::new();
    for _ in 0..n {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let (send, conn) = h2::client::Builder::new().data_frame_budget(1 << 30).handshake(tcp).await.unwrap();
        tokio::spawn(conn);
        conns.push(send);
    }
    conns
}

/// Sends one call (its request frame, already encoded) on a ready
/// connection; the answer to come.
fn send(conn: &mut h2::client::SendRequest<Bytes>, uri: &http::Uri, frame: &Bytes) -> h2::client::ResponseFuture {
    let req = http::Request::post(uri.clone())
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
    let (resp, mut body) = conn.send_request(req, false).expect("send");
    body.send_data(frame.clone(), true).expect("send body");
    resp
}

/// Reads an answer to its trailers, without decoding it; it must be OK.
async fn answered(resp: h2::client::ResponseFuture) {
    let mut body = resp.await.expect("response").into_body();
    while let Some(d) = body.data().await {
        let d = d.expect("response body");
        let _ = body.flow_control().release_capacity(d.len());
    }
    let trailers = body.trailers().await.expect("trailers").expect("trailers present");
    assert_eq!(trailers.get("grpc-status").map(|v| v.as_bytes()), Some(&b"0"[..]), "{trailers:?}");
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// See the module docs.
pub async fn unary(bin: &std::path::PathBuf, dur: Duration, rounds: usize, connections: usize, inflight: usize) {
    let server = ServerProcess::start_with(bin, &["--demo"]).await;
    let addr: SocketAddr = server.url.trim_start_matches("http://").parse().unwrap();
    let conns = generator_connections(addr, connections).await;
    let calls = calls();
    for c in &calls {
        measure(&conns, addr, c, inflight, Duration::from_millis(500)).await;
    }
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); calls.len()];
    let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); calls.len()];
    let (mut server_cpu, mut own_cpu, mut wall) = (0.0, 0.0, 0.0);
    for r in 0..rounds {
        let mut round = vec![0.0; calls.len()];
        for k in 0..calls.len() {
            let i = (r + k) % calls.len();
            let (s0, o0, t0) = (server.cpu_secs(), cpu_secs("/proc/self/stat"), Instant::now());
            round[i] = measure(&conns, addr, &calls[i], inflight, dur).await;
            server_cpu += server.cpu_secs() - s0;
            own_cpu += cpu_secs("/proc/self/stat") - o0;
            wall += t0.elapsed().as_secs_f64();
        }
        for i in 0..calls.len() {
            rates[i].push(round[i]);
            ratios[i].push(round[i] / round[0]);
        }
    }
    println!(
        "unary (server-bound): {connections} connections x {inflight} in flight, {rounds} rounds of {:.1} s per call; \
         CPU: server {:.0} %, generator {:.0} % of one core",
        dur.as_secs_f64(),
        100.0 * server_cpu / wall,
        100.0 * own_cpu / wall
    );
    println!("{:>10} {:>12} {:>10} {:>22}", "call", "calls/s", "vs health", "server CPU/call");
    // (batch 100: items/s = 100 x calls/s; the bar compares it with Check's calls/s.)
    let per_call = server_cpu / wall;
    for (i, c) in calls.iter().enumerate() {
        let rate = median(&mut rates[i]);
        println!("{:>10} {:>12.0} {:>10.3} {:>19.1} µs", c.name, rate, median(&mut ratios[i]), per_call * 1e6 / rate);
    }
}

fn quantile(v: &[f64], q: f64) -> f64 {
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// Latency at half of the health check's maximum rate, open loop: health,
/// Check CN and Check MX at the same offered rate, in alternating rounds,
/// sent by the busy-polling generator (`paced`). The pacing error is
/// printed beside the latencies: unless it is far below them, the
/// generator, not the server, made them (the tokio pacer used until
/// session 6 had p50 0.36 ms, p99 3.2 ms at ~32 000 sends/s on one core).
pub async fn latency(bin: &std::path::PathBuf, dur: Duration, rounds: usize, connections: usize) {
    let server = ServerProcess::start_with(bin, &["--demo"]).await;
    let addr: SocketAddr = server.url.trim_start_matches("http://").parse().unwrap();
    let conns = generator_connections(addr, connections).await;
    let calls = calls();
    let kinds = &calls[..3];
    for c in kinds {
        measure(&conns, addr, c, 16, Duration::from_millis(500)).await;
    }
    let max = measure(&conns, addr, &calls[0], 16, Duration::from_secs(2)).await;
    let rate = (max / 2.0).round();
    let mut all: Vec<Paced> = kinds.iter().map(|_| Paced { latency: Vec::new(), pacing: Vec::new() }).collect();
    for r in 0..rounds {
        for k in 0..kinds.len() {
            let i = (r + k) % kinds.len();
            let (path, frame) = (kinds[i].path, kinds[i].frame.clone());
            let got =
                tokio::task::spawn_blocking(move || crate::paced::run(addr, path, &frame, connections, rate, dur))
                    .await
                    .expect("the paced generator");
            // Per round too: one stall of the machine shows as one bad
            // round, not as the server's tail.
            println!(
                "  round {r} {:>9}: p50 {:>5.0} µs, p99 {:>6.0} µs, max {:>7.0} µs; pacing p99 {:>4.0} µs",
                kinds[i].name,
                quantile(&got.latency, 0.5),
                quantile(&got.latency, 0.99),
                got.latency.last().copied().unwrap_or_default(),
                quantile(&got.pacing, 0.99)
            );
            all[i].latency.extend(got.latency);
            all[i].pacing.extend(got.pacing);
        }
    }
    println!(
        "latency (open loop, server-bound): health's maximum {max:.0} calls/s; each call offered at {rate:.0}/s over {connections} \
         connections, {rounds} rounds of {:.1} s; from the scheduled send to the answer's end",
        dur.as_secs_f64()
    );
    println!("{:>10} {:>9} {:>9} {:>9} {:>13} {:>16}", "call", "p50", "p99", "p99.9", "p99/health", "pacing p50/p99");
    for v in &mut all {
        v.latency.sort_by(f64::total_cmp);
        v.pacing.sort_by(f64::total_cmp);
    }
    let health_p99 = quantile(&all[0].latency, 0.99);
    for (c, v) in kinds.iter().zip(&all) {
        println!(
            "{:>10} {:>6.0} µs {:>6.0} µs {:>6.0} µs {:>13.3} {:>7.0}/{:.0} µs",
            c.name,
            quantile(&v.latency, 0.5),
            quantile(&v.latency, 0.99),
            quantile(&v.latency, 0.999),
            quantile(&v.latency, 0.99) / health_p99,
            quantile(&v.pacing, 0.5),
            quantile(&v.pacing, 0.99)
        );
    }
}
