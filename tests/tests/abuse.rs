//! Resource abuse: many watchers opened and dropped, deep pagination, slow
//! readers. The server stays healthy and releases what it held. Long mode
//! (`ELIGIBILITY_CAMPAIGN=long`) runs more rounds and reports the
//! process's RSS before and after.

use std::time::Duration;

use eligibility::proto::v1::{self as pb, watch_start::Start};
use eligibility_e2e::{TestServer, cc, eventually, list};

fn long() -> bool {
    std::env::var("ELIGIBILITY_CAMPAIGN").is_ok_and(|v| v == "long")
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_opened_and_dropped_are_released() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), true).await;
    let client = server.client().await;
    let rounds = if long() { 50 } else { 5 };
    let rss_before = rss_kib();
    let mut samples = Vec::new();
    for round in 0..rounds {
        if round % 10 == 0 {
            samples.push((round, rss_kib()));
        }
        let mut streams = Vec::new();
        for i in 0..1000 {
            let start = match i % 3 {
                0 => Start::Now(true),
                1 => Start::Snapshot(true),
                _ => Start::AfterRevision(0),
            };
            let s = client
                .raw_query()
                .watch(pb::WatchRequest { start: Some(pb::WatchStart { start: Some(start) }), ..Default::default() })
                .await
                .unwrap()
                .into_inner();
            streams.push(s);
        }
        assert_eq!(server.app.hub.stats().active.load(std::sync::atomic::Ordering::SeqCst), 1000);
        drop(streams);
        // The server notices the resets and releases every watcher.
        let active = || server.app.hub.stats().active.load(std::sync::atomic::Ordering::SeqCst);
        eventually(Duration::from_secs(20), "the dropped watchers to be released", || async {
            (active() == 0).then_some(())
        })
        .await;
    }
    if long() {
        samples.push((rounds, rss_kib()));
        println!(
            "abuse: {rounds} x 1000 watchers opened and dropped; RSS {rss_before} KiB at start; by round: {samples:?}"
        );
    }
    assert!(client.check(&list("cyber"), cc("FR")).await.unwrap().decision.eligible);
}

#[tokio::test]
async fn deep_pagination_and_junk_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), true).await;
    let mut q = server.client().await.raw_query();
    // Page through one member at a time, pinned at one revision.
    let mut token = String::new();
    let mut n = 0;
    loop {
        let r = q
            .list_entries(pb::ListEntriesRequest {
                list_id: "cyber".into(),
                point: Some(pb::ReadPoint {
                    as_of: None,
                    consistency: Some(pb::read_point::Consistency::AtRevision(3)),
                }),
                page_size: 1,
                page_token: token,
            })
            .await
            .unwrap()
            .into_inner();
        n += r.entries.len();
        if r.next_page_token.is_empty() {
            break;
        }
        token = r.next_page_token;
    }
    assert_eq!(n, 37);
    for junk in ["after-country:", "after-country:ZZ", "after-revision:99999999999999999999", &"x".repeat(10_000)] {
        let e = q
            .list_entries(pb::ListEntriesRequest {
                list_id: "cyber".into(),
                page_token: junk.into(),
                ..Default::default()
            })
            .await;
        assert!(e.is_err(), "{junk:?} accepted");
    }
    // A token past the end is an empty last page, not an error.
    let r = q
        .history(pb::HistoryRequest {
            list_id: "cyber".into(),
            page_token: "after-revision:1000".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.changesets.is_empty() && r.next_page_token.is_empty());
}
