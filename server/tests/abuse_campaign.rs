//! Abuse campaign against a real `eligibility-server` process: while a
//! normal client keeps calling Check and Apply (large reasons), hostile
//! clients
//!
//! - open Watch streams over raw HTTP/2 with huge windows and stop reading
//!   their sockets, and open event streams (`/v1/watch`) they never read;
//! - flood the port with idle and half-open connections;
//! - send request headers and bodies a byte a second.
//!
//! Asserted: the server's RSS stays under a stated bound, the normal
//! client's Check and Apply stay within a stated latency, the slow-consumer
//! budget cut stalled consumers, every stalled consumer then resumes with
//! no gap and no duplicate, the excess connections are refused and the
//! silent and slow ones closed.
//!
//! Quick mode (default, CI); long mode (`ELIGIBILITY_CAMPAIGN=long`): more
//! consumers, changesets and connections, and a table of the figures.
//! `cargo test --release -p eligibility-server --test abuse_campaign -- --nocapture`.

mod abuse;
mod common;

use std::time::Duration;

use abuse::{Latencies, Server, flood, h2_stalled, slow_clients, sse_stalled};
use eligibility_client::{Country, ListId, WatchOptions, WatchStart};

fn long() -> bool {
    std::env::var("ELIGIBILITY_CAMPAIGN").is_ok_and(|v| v == "long")
}

/// The figures of one run.
struct Scale {
    h2_connections: usize,
    streams_per_connection: usize,
    sse_readers: usize,
    changesets: usize,
    budget_mib: u64,
    flood: usize,
    max_connections: usize,
    slow: usize,
}

fn scale() -> Scale {
    if long() {
        Scale {
            h2_connections: 16,
            streams_per_connection: 50,
            sse_readers: 200,
            changesets: 5000,
            budget_mib: 16,
            flood: 9000,
            max_connections: 5000,
            slow: 500,
        }
    } else {
        Scale {
            h2_connections: 4,
            streams_per_connection: 100,
            sse_readers: 20,
            changesets: 600,
            budget_mib: 16,
            flood: 1500,
            max_connections: 1000,
            slow: 50,
        }
    }
}

const MIB: u64 = 1 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_readers_floods_and_slow_clients_leave_the_server_bounded_and_responsive() {
    let s = scale();
    // (For comparison by hand: `ELIGIBILITY_ABUSE_BUDGET_MIB=100000` turns
    // the budget off in effect; the RSS and cut assertions then fail.)
    let budget_mib =
        std::env::var("ELIGIBILITY_ABUSE_BUDGET_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(s.budget_mib);
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<String> = [
        "--data-dir",
        &dir.path().display().to_string(),
        "--demo",
        "--slow-consumer-budget-bytes",
        &(budget_mib * MIB).to_string(),
        "--slow-consumer-grace-ms",
        "1000",
        "--max-connections",
        &s.max_connections.to_string(),
        "--max-connections-per-address",
        &(s.flood * 2).to_string(),
        "--handshake-timeout-ms",
        "2000",
        "--body-timeout-ms",
        "2000",
        "--idle-timeout-ms",
        "4000",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let server = Server::start(&args).await;
    let client = server.client();
    let list = ListId::parse("abuse").unwrap();
    server.create_list(&client, &list).await;
    let base = server.rss();
    let mut report = Vec::new();

    // 1. Stalled consumers: they start from revision 0 and stop reading;
    //    the normal client writes large changesets meanwhile.
    let mut h2 = Vec::new();
    for _ in 0..s.h2_connections {
        h2.push(h2_stalled::open(server.addr, s.streams_per_connection).await);
    }
    let mut sse = Vec::new();
    for _ in 0..s.sse_readers {
        sse.push(sse_stalled::open(server.addr, "after_revision=0").await);
    }
    let sampler = server.sample_rss();
    let mut apply = Latencies::default();
    let checks = Latencies::run_checks(client.clone(), Country::parse("FR").unwrap());
    for i in 0..s.changesets {
        let started = std::time::Instant::now();
        server.write(&client, &list, i).await;
        apply.push(started.elapsed());
    }
    // The grace period passes: cut connections that did not read are closed.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let check = checks.stop().await;
    let peak = sampler.stop().await;
    let head = client.lists(eligibility_client::Point::latest()).await.unwrap().header.revision.0;
    let cut = server.log_count("slow consumers cut");
    report.push(format!(
        "stalled: {} Watch streams on {} connections + {} event streams, {} changesets of ~1.3 KB: RSS {} -> peak {} MiB \
         (budget {} MiB); Check {check}; Apply {apply}; cut logged {cut} time(s)",
        s.h2_connections * s.streams_per_connection,
        s.h2_connections,
        s.sse_readers,
        s.changesets,
        base / MIB,
        peak / MIB,
        budget_mib
    ));
    // The bound: the budget, what was cut and is waiting out its grace
    // period (at most the budget again), and the history's own growth.
    // (Without the budget, quick mode peaks about 70 MiB over the base.)
    let bound = base + 2 * budget_mib * MIB + 16 * MIB;
    assert!(peak <= bound, "RSS peak {peak} over the bound {bound}: {}", report.join("\n"));
    assert!(cut > 0, "the budget cut no consumer: {}", report.join("\n"));
    check.assert_within(Duration::from_millis(250), "Check");
    apply.assert_within(Duration::from_millis(1000), "Apply");

    // Every stalled consumer now reads what it was sent and resumes after
    // the last revision it got: together, every revision once, in order.
    let (mut cut_streams, mut cut_sse) = (0, 0);
    let resumed: Vec<_> = h2.into_iter().map(|c| tokio::spawn(c.resume())).collect();
    for r in resumed {
        for got in r.await.unwrap() {
            cut_streams += usize::from(got.cut);
            resume_to_head(&client, got.revisions, head).await;
        }
    }
    let drains: Vec<_> = sse.into_iter().map(|r| tokio::spawn(r.drain())).collect();
    for d in drains {
        let got = d.await.unwrap();
        cut_sse += usize::from(got.cut);
        let last = got.revisions.last().copied().unwrap_or(0);
        let mut all = got.revisions;
        all.extend(sse_stalled::resume(server.addr, last, head).await);
        assert_eq!(all, (1..=head).collect::<Vec<_>>(), "an event stream lost or repeated a revision");
    }
    assert!(cut_streams > 0, "no stalled Watch stream was ended");
    report.push(format!(
        "resumed: every stalled consumer, with no gap and no duplicate ({cut_streams} Watch streams and {cut_sse} \
         event streams had been ended by the server)"
    ));

    // 2. A connection flood: the limit refuses the excess at once, the
    //    handshake deadline closes the silent and half-open ones.
    let sampler = server.sample_rss();
    let checks = Latencies::run_checks(client.clone(), Country::parse("FR").unwrap());
    let flooded = flood::run(server.addr, s.flood, Duration::from_secs(6)).await;
    let check = checks.stop().await;
    let peak = sampler.stop().await;
    report.push(format!(
        "flood: {} connections (half sent the HTTP/2 preface only): {} refused at once, {} closed at the deadline, \
         {} still open; RSS peak {} MiB; Check {check}",
        s.flood,
        flooded.refused,
        flooded.closed_later,
        flooded.open,
        peak / MIB
    ));
    assert_eq!(flooded.open, 0, "{}", report.join("\n"));
    // (Fewer than flood - max_connections may be refused: connections
    // that the deadline closed while the flood was still opening free
    // their places.)
    assert!(flooded.refused > 0 && flooded.refused + flooded.closed_later == s.flood, "{}", report.join("\n"));
    assert!(peak <= base + 128 * MIB, "{}", report.join("\n"));
    check.assert_within(Duration::from_millis(250), "Check during the flood");

    // 3. Headers and bodies a byte a second.
    let checks = Latencies::run_checks(client.clone(), Country::parse("FR").unwrap());
    let slow = slow_clients::run(server.addr, s.slow, Duration::from_secs(8)).await;
    let check = checks.stop().await;
    report.push(format!(
        "slow: {} header and {} body senders at 1 byte/s: headers closed {}, bodies answered 408 {} (others closed {}); \
         Check {check}",
        s.slow, s.slow, slow.headers_closed, slow.bodies_408, slow.bodies_closed
    ));
    assert_eq!(slow.headers_closed, s.slow, "{}", report.join("\n"));
    assert_eq!(slow.bodies_408 + slow.bodies_closed, s.slow, "{}", report.join("\n"));
    assert!(slow.bodies_408 > 0, "{}", report.join("\n"));
    check.assert_within(Duration::from_millis(250), "Check during slow clients");
    server.assert_no_panic();
    println!("abuse campaign ({}):\n  {}", if long() { "long" } else { "quick" }, report.join("\n  "));
}

/// Resumes with the client crate's watch after the last revision `got`
/// holds and reads to `head`: together they must hold every revision once.
async fn resume_to_head(client: &eligibility_client::Client, got: Vec<u64>, head: u64) {
    let last = got.last().copied().unwrap_or(0);
    let mut all = got;
    if last < head {
        let mut w =
            client.watch(WatchOptions::from(WatchStart::After(eligibility_client::Revision(last)))).await.unwrap();
        while all.last().copied().unwrap_or(0) < head {
            let e = tokio::time::timeout(Duration::from_secs(30), futures_next(&mut w))
                .await
                .expect("the resumed watch stalled")
                .expect("the resumed watch ended")
                .unwrap();
            if let eligibility_client::WatchEvent::Changeset(c) = e {
                all.push(c.revision.0);
            }
        }
    }
    assert_eq!(all, (1..=head).collect::<Vec<_>>(), "a Watch stream lost or repeated a revision");
}

async fn futures_next<S: tokio_stream::Stream + Unpin>(s: &mut S) -> Option<S::Item> {
    use tokio_stream::StreamExt;
    s.next().await
}

/// A client that stopped reading cannot take the end of its stream, so a
/// graceful shutdown would wait for it forever: the drain time bounds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_not_held_up_by_clients_that_stopped_reading() {
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<String> = ["--data-dir", &dir.path().display().to_string(), "--demo", "--drain-timeout-ms", "1500"]
        .iter()
        .map(|a| a.to_string())
        .collect();
    let mut server = Server::start(&args).await;
    let client = server.client();
    let list = ListId::parse("abuse").unwrap();
    server.create_list(&client, &list).await;
    let stalled = h2_stalled::open(server.addr, 20).await;
    for i in 0..300 {
        server.write(&client, &list, i).await;
    }
    let took = server.terminate(Duration::from_secs(10)).await;
    let took = took.unwrap_or_else(|| panic!("the server did not exit: {}", server.log_tail(8)));
    assert!(took >= Duration::from_millis(1400), "exited after {took:?}: were the stalled streams ended?");
    assert!(server.log_count("drain time is up") == 1, "the forced close is logged");
    server.assert_no_panic();
    drop(stalled);
}
