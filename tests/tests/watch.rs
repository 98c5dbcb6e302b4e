//! The change stream: ordering, completeness, resume, snapshot-first,
//! filters and progress, slow consumers, activation entries, limits,
//! shutdown.

use std::time::Duration;

use eligibility::proto::v1::{self as pb, watch_event::Event as E, watch_start::Start};
use eligibility_client::{Client, EntryChange, ListMode, NewList, Point, Revision, WriteOptions};
use eligibility_e2e::{TestServer, at, cc, list};
use eligibility_server::{server::Config, watch::WatchConfig};
use tokio_stream::StreamExt;
use tonic::{Code, Streaming};

type Events = Streaming<pb::WatchEvent>;

async fn watch(client: &Client, start: Start, lists: &[&str], countries: &[&str]) -> Result<Events, tonic::Status> {
    client
        .raw_query()
        .watch(pb::WatchRequest {
            start: Some(pb::WatchStart { start: Some(start) }),
            list_ids: lists.iter().map(|s| s.to_string()).collect(),
            countries: countries.iter().map(|s| s.to_string()).collect(),
            store_id: String::new(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn next(events: &mut Events) -> E {
    tokio::time::timeout(Duration::from_secs(20), events.next())
        .await
        .expect("no event within 20 s")
        .expect("stream ended")
        .expect("stream error")
        .event
        .expect("empty event")
}

/// The next changeset, skipping progress events.
async fn next_changeset(events: &mut Events) -> pb::Changeset {
    loop {
        match next(events).await {
            E::Changeset(cs) => return cs,
            E::Progress(_) => continue,
            other => panic!("unexpected event {other:?}"),
        }
    }
}

async fn setup(client: &Client, id: &str) {
    client.create_list(&NewList::new(list(id), ListMode::Allowlist), &WriteOptions::reason("setup")).await.unwrap();
}

async fn add(client: &Client, id: &str, country: &str, reason: &str) -> Revision {
    client
        .apply(&[EntryChange::add(&list(id), cc(country))], None, &WriteOptions::reason(reason))
        .await
        .unwrap()
        .revision
}

const SOME: [&str; 8] = ["FR", "DE", "IT", "ES", "NL", "BE", "AT", "PT"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_one_watcher_from_zero_sees_every_revision_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), false).await;
    let client = server.client().await;
    setup(&client, "l").await;
    let mut events = watch(&client, Start::AfterRevision(0), &[], &[]).await.unwrap();
    let mut writers = Vec::new();
    for w in 0..4 {
        let c = client.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..25 {
                let country = SOME[(w * 25 + i) % SOME.len()];
                let action = if i % 2 == 0 {
                    EntryChange::add(&list("l"), cc(country))
                } else {
                    EntryChange::remove(&list("l"), cc(country))
                };
                c.apply(&[action], None, &WriteOptions::reason(format!("w{w} i{i}"))).await.unwrap();
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    let head = server.registry.snapshot().revision().0;
    assert_eq!(head, 101);
    let mut seen = Vec::new();
    while seen.len() < head as usize {
        seen.push(next_changeset(&mut events).await.revision);
    }
    assert_eq!(seen, (1..=head).collect::<Vec<_>>());
}

#[tokio::test]
async fn resume_after_k_continues_with_no_gap_or_duplicate_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), false).await;
    let client = server.client().await;
    setup(&client, "l").await;
    for (i, c) in SOME.iter().enumerate() {
        add(&client, "l", c, &format!("{i}")).await;
    }
    let mut events = watch(&client, Start::AfterRevision(0), &[], &[]).await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(next_changeset(&mut events).await.revision);
    }
    drop(events); // disconnect after k = 4
    let k = *seen.last().unwrap();
    let mut events = watch(&client, Start::AfterRevision(k), &[], &[]).await.unwrap();
    for _ in 0..3 {
        seen.push(next_changeset(&mut events).await.revision);
    }
    let k = *seen.last().unwrap();
    drop(events);
    let store_id = server.registry.snapshot().store_id().to_owned();
    server.stop().await;

    // Restart on the same directory; writes continue.
    let server = TestServer::start(dir.path(), false).await;
    let client = server.client().await;
    add(&client, "l", "JP", "after restart").await;
    let mut events = client
        .raw_query()
        .watch(pb::WatchRequest {
            start: Some(pb::WatchStart { start: Some(Start::AfterRevision(k)) }),
            store_id,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let head = server.registry.snapshot().revision().0;
    while seen.len() < head as usize {
        seen.push(next_changeset(&mut events).await.revision);
    }
    assert_eq!(seen, (1..=head).collect::<Vec<_>>());
}

#[tokio::test]
async fn snapshot_first_equals_list_entries_then_continues_at_r_plus_1() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), true).await;
    let client = server.client().await;
    // A future-dated change is part of the snapshot as pending.
    client
        .apply(&[EntryChange::add(&list("cyber"), cc("MX"))], Some(at("2999-01-01")), &WriteOptions::reason("future"))
        .await
        .unwrap();
    let mut events = watch(&client, Start::Snapshot(true), &[], &[]).await.unwrap();
    let E::SnapshotList(snap) = next(&mut events).await else { panic!("expected the cyber list first") };
    let E::SnapshotEnd(end) = next(&mut events).await else { panic!("expected the snapshot end") };
    assert_eq!(end.revision, 4);
    let members = client.members(&list("cyber"), Point::latest().at_revision(Revision(end.revision))).await.unwrap();
    let snap_countries: Vec<String> = snap.entries.iter().map(|e| e.country.clone()).collect();
    let listed: Vec<String> = members.entries.iter().map(|e| e.country.to_string()).collect();
    assert_eq!(snap_countries, listed);
    assert_eq!(snap.list.unwrap().id, "cyber");
    assert_eq!(snap.pending.len(), 1);
    assert_eq!(snap.pending[0].revision, 4);
    let r = add(&client, "cyber", "JP", "later").await;
    assert_eq!(next_changeset(&mut events).await.revision, r.0);
    assert_eq!(r.0, end.revision + 1);
}

#[tokio::test]
async fn filtered_watcher_gets_only_its_country_and_progress_to_the_head() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: dir.path().to_owned(),
        watch: WatchConfig { progress_interval: Duration::from_millis(200), ..WatchConfig::default() },
        ..Config::default()
    };
    let server = TestServer::start_with(config).await;
    let client = server.client().await;
    setup(&client, "l").await;
    let mut events = watch(&client, Start::AfterRevision(1), &["l"], &["MX"]).await.unwrap();
    let mut revs = Vec::new();
    for c in ["FR", "MX", "DE", "MX", "IT", "ES"] {
        revs.push(add(&client, "l", c, c).await.0);
    }
    let head = *revs.last().unwrap();
    let mut changesets = Vec::new();
    let mut cursor = 1;
    while cursor < head {
        match next(&mut events).await {
            E::Changeset(cs) => {
                assert!(cs.revision > cursor);
                for ch in &cs.changes {
                    let Some(pb::change::Kind::Entry(e)) = &ch.kind else { panic!("{ch:?}") };
                    assert_eq!(e.country, "MX");
                }
                cursor = cs.revision;
                changesets.push(cs.revision);
            }
            E::Progress(p) => {
                assert!(p.revision >= cursor);
                cursor = p.revision;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(changesets, [revs[1], revs[3]]);
    assert_eq!(cursor, head, "progress lets the filtered cursor reach the head");
    // Idle: the heartbeat keeps coming.
    let E::Progress(p) = next(&mut events).await else { panic!("expected a heartbeat") };
    assert_eq!(p.revision, head);
    assert!(!p.store_id.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_falls_back_to_the_log_and_misses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: dir.path().to_owned(),
        watch: WatchConfig { feed_capacity: 16, buffer: 4, ..WatchConfig::default() },
        ..Config::default()
    };
    let server = TestServer::start_with(config).await;
    let client = server.client().await;
    setup(&client, "l").await;
    // The watcher's connection has HTTP/2's minimal windows, so a reader
    // that reads nothing pushes back on the server after a few events.
    let channel = tonic::transport::Endpoint::from_shared(server.url())
        .unwrap()
        .initial_stream_window_size(Some(65_535))
        .initial_connection_window_size(Some(65_535))
        .connect()
        .await
        .unwrap();
    let slow = Client::from_channel(channel);
    let mut events = watch(&slow, Start::Now(true), &[], &[]).await.unwrap();
    // Read nothing while 2 000 changesets of 40 changes each (several
    // MB, far beyond the connection's windows and h2's send buffer) are
    // written.
    let countries: Vec<_> = eligibility::Country::all().into_iter().take(40).collect();
    for i in 0..2000 {
        let changes: Vec<_> = countries
            .iter()
            .map(|c| if i % 2 == 0 { EntryChange::add(&list("l"), *c) } else { EntryChange::remove(&list("l"), *c) })
            .collect();
        client.apply(&changes, None, &WriteOptions::reason(format!("{i}"))).await.unwrap();
    }
    let hub = &server.app.hub;
    // The writer never waited for the watcher, and the shared feed holds at
    // most its capacity: the watcher's own buffer is a bounded channel of
    // `buffer` events; beyond that it holds only a cursor into the log.
    assert_eq!(hub.feed_len_bound(), 16);
    assert!(hub.feed_len() <= hub.feed_len_bound());
    let mut seen = Vec::new();
    while seen.len() < 2000 {
        seen.push(next_changeset(&mut events).await.revision);
    }
    assert_eq!(seen, (2..=2001).collect::<Vec<_>>());
    // Once it read again it found it had lagged the live feed, and was
    // served from the log instead.
    assert!(hub.stats().fallbacks.load(std::sync::atomic::Ordering::Relaxed) >= 1, "the watcher lagged the feed");
}

#[tokio::test]
async fn activation_entry_is_recorded_once_at_its_time_even_across_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), false).await;
    let client = server.client().await;
    setup(&client, "l").await;
    let mut events = watch(&client, Start::AfterRevision(1), &[], &[]).await.unwrap();
    let effective = eligibility::Timestamp::from_micros(eligibility::Timestamp::now().as_micros() + 2_000_000).unwrap();
    let w = client
        .apply(&[EntryChange::add(&list("l"), cc("MX"))], Some(effective), &WriteOptions::reason("future"))
        .await
        .unwrap();
    assert_eq!(next_changeset(&mut events).await.revision, w.revision.0);
    assert!(!client.check(&list("l"), cc("MX")).await.unwrap().decision.eligible);
    let act = next_changeset(&mut events).await;
    let arrived = eligibility::Timestamp::now();
    assert_eq!(act.activates_revision, w.revision.0);
    assert_eq!(act.actor, "system");
    assert_eq!(act.revision, w.revision.0 + 1);
    assert_eq!(act.changes.len(), 1, "the activation carries the changes that take effect");
    assert!(arrived >= effective, "not before its time");
    assert!(arrived.as_micros() - effective.as_micros() < 1_500_000, "promptly after its time");
    assert!(client.check(&list("l"), cc("MX")).await.unwrap().decision.eligible);
    server.stop().await;

    let server = TestServer::start(dir.path(), false).await;
    let client = server.client().await;
    let r = add(&client, "l", "FR", "marker").await;
    assert_eq!(r.0, act.revision + 1, "no second activation after restart");
    let history = client.history(&list("l"), None, None).await.unwrap().changesets;
    assert_eq!(history.iter().filter(|c| c.activates.is_some()).count(), 1);
}

#[tokio::test]
async fn a_thousand_watchers_each_receive_the_change() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), false).await;
    let client = server.client().await;
    setup(&client, "l").await;
    let mut streams = Vec::new();
    for _ in 0..1000 {
        streams.push(watch(&client, Start::Now(true), &[], &[]).await.unwrap());
    }
    let r = add(&client, "l", "MX", "fan-out").await;
    let mut tasks = Vec::new();
    for mut s in streams {
        tasks.push(tokio::spawn(async move { next_changeset(&mut s).await.revision }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), r.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_watchers_over_four_connections() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), false).await;
    let admin = server.client().await;
    setup(&admin, "l").await;
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(server.client().await);
    }
    // Open them all at once (2 500 concurrent calls per connection: the
    // h2 flood-guard case).
    let mut opening = Vec::new();
    for (i, c) in clients.iter().enumerate() {
        for _ in 0..2500 {
            let c = c.clone();
            opening.push(tokio::spawn(async move {
                watch(&c, Start::Now(true), &[], &[]).await.unwrap_or_else(|e| panic!("connection {i}: {e:?}"))
            }));
        }
    }
    let mut streams = Vec::new();
    for o in opening {
        streams.push(o.await.unwrap());
    }
    assert_eq!(streams.len(), 10_000);
    let r = add(&admin, "l", "MX", "fan-out").await;
    let mut tasks = Vec::new();
    for mut s in streams {
        tasks.push(tokio::spawn(async move { next_changeset(&mut s).await.revision }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), r.0);
    }
}

#[tokio::test]
async fn resume_errors_and_limits() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: dir.path().to_owned(),
        watch: WatchConfig {
            resume_wait: Duration::from_millis(200),
            max_watchers: 3,
            max_watchers_per_connection: 2,
            ..WatchConfig::default()
        },
        ..Config::default()
    };
    let server = TestServer::start_with(config).await;
    let client = server.client().await;
    setup(&client, "l").await;
    let s = watch(&client, Start::AfterRevision(50), &[], &[]).await.unwrap_err();
    assert_eq!(s.code(), Code::FailedPrecondition);
    assert!(s.message().contains("revision 50") && s.message().contains("head is 1"), "{s:?}");
    let s = client
        .raw_query()
        .watch(pb::WatchRequest { store_id: "another-store".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::FailedPrecondition);
    assert!(s.message().contains("another-store"), "{s:?}");
    let s = watch(&client, Start::Now(true), &["nosuch"], &[]).await.unwrap_err();
    assert_eq!(s.code(), Code::NotFound);
    let s = watch(&client, Start::Now(true), &[], &["ZZ"]).await.unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument);

    let a = watch(&client, Start::Now(true), &[], &[]).await.unwrap();
    let b = watch(&client, Start::Now(true), &[], &[]).await.unwrap();
    let s = watch(&client, Start::Now(true), &[], &[]).await.unwrap_err();
    assert_eq!(s.code(), Code::ResourceExhausted);
    assert!(s.message().contains("per connection"), "{s:?}");
    let other = server.client().await;
    let c = watch(&other, Start::Now(true), &[], &[]).await.unwrap();
    let s = watch(&other, Start::Now(true), &[], &[]).await.unwrap_err();
    assert_eq!(s.code(), Code::ResourceExhausted);
    assert!(s.message().contains("maximum is 3"), "{s:?}");
    // Closing a stream frees its place (the server notices the reset).
    drop(a);
    let mut reopened = None;
    for _ in 0..100 {
        match watch(&client, Start::Now(true), &[], &[]).await {
            Ok(s) => {
                reopened = Some(s);
                break;
            }
            Err(_) => tokio::task::yield_now().await,
        }
    }
    assert!(reopened.is_some(), "a dropped watcher's place is released");
    drop((b, c));
}

#[tokio::test]
async fn shutdown_with_open_streams_completes_promptly() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), true).await;
    let client = server.client().await;
    let mut streams = Vec::new();
    for _ in 0..50 {
        streams.push(watch(&client, Start::Snapshot(true), &[], &[]).await.unwrap());
    }
    let started = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(5), server.stop()).await.expect("shutdown hung on open streams");
    assert!(started.elapsed() < Duration::from_secs(5));
    // The streams end (cleanly or with an error), they do not hang.
    for mut s in streams {
        let ended =
            tokio::time::timeout(Duration::from_secs(5), async { while let Some(Ok(_)) = s.next().await {} }).await;
        assert!(ended.is_ok());
    }
}
