//! The JetStream sink against a real server and the machine's NATS: 300
//! changesets over 3 lists while the relay is SIGKILLed at random moments
//! and restarted, and its NATS connection is cut by a proxy the test
//! controls; the stream then holds each (revision, list) exactly once, in
//! revision order per subject. Then the store-id guard, filters, and a bad
//! configuration refused with its key named.

mod common;

use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

use common::{Relay, create_lists, nats_or_skip, nats_url, write};
use eligibility_client::{ListId, Point, Revision, WatchEvent, WatchOptions, WatchStart};
use eligibility_e2e::{Proxy, Rng, TestServer};
use tokio_stream::StreamExt;

/// A stream name and subject prefix of its own, deleted at the end.
struct TestStream {
    name: String,
    prefix: String,
    js: async_nats::jetstream::Context,
}

impl TestStream {
    fn new(nc: async_nats::Client) -> TestStream {
        let id = uuid::Uuid::new_v4().simple().to_string();
        TestStream {
            name: format!("ELIG_TEST_{id}"),
            prefix: format!("t{id}.changes"),
            js: async_nats::jetstream::new(nc),
        }
    }

    /// Every message: (subject, revision, list, store id, body).
    async fn messages(&self) -> Vec<(String, u64, String, String, Vec<u8>)> {
        let Ok(mut stream) = self.js.get_stream(&self.name).await else { return Vec::new() };
        let last = stream.info().await.unwrap().state.last_sequence;
        let mut out = Vec::new();
        for seq in 1..=last {
            let m = stream.get_raw_message(seq).await.unwrap();
            let h = |k: &str| m.headers.get(k).unwrap().as_str().to_owned();
            out.push((
                m.subject.to_string(),
                h("Eligibility-Revision").parse().unwrap(),
                h("Eligibility-List-Id"),
                h("Eligibility-Store-Id"),
                m.payload.to_vec(),
            ));
        }
        out
    }

    async fn delete(&self) {
        let _ = self.js.delete_stream(&self.name).await;
    }
}

/// Every (revision, list) the server's history holds, from a watch.
async fn expected(
    client: &eligibility_client::Client,
    lists: &[ListId],
    countries: &[eligibility_client::Country],
) -> BTreeSet<(u64, String)> {
    let head = client.lists(Point::latest()).await.unwrap().header.revision;
    let mut options = WatchOptions::from(WatchStart::After(Revision(0)));
    for l in lists {
        options = options.with_list(l.clone());
    }
    for c in countries {
        options = options.with_country(*c);
    }
    let mut w = client.watch(options).await.unwrap();
    let mut out = BTreeSet::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), w.next()).await.unwrap().unwrap().unwrap() {
            WatchEvent::Changeset(cs) => {
                for c in &cs.changes {
                    out.insert((cs.revision.0, c.list().to_string()));
                }
                if cs.revision >= head {
                    return out;
                }
            }
            WatchEvent::Progress(r) if r >= head => return out,
            _ => {}
        }
    }
}

fn relay_args(server: &str, nats: &str, s: &TestStream) -> Vec<String> {
    ["--server", server, "--nats-url", nats, "--nats-stream", &s.name, "--subject-prefix", &s.prefix]
        .iter()
        .map(|a| a.to_string())
        .collect()
}

/// Waits until the stream holds `want` (at most `within`).
async fn until_complete(
    s: &TestStream,
    want: &BTreeSet<(u64, String)>,
    within: Duration,
) -> Vec<(String, u64, String, String, Vec<u8>)> {
    let deadline = Instant::now() + within;
    loop {
        let got = s.messages().await;
        let pairs: BTreeSet<(u64, String)> = got.iter().map(|m| (m.1, m.2.clone())).collect();
        if &pairs == want || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_revision_and_list_once_in_order_through_kills_and_cuts() {
    let Some(nc) = nats_or_skip("every_revision_and_list_once_in_order_through_kills_and_cuts").await else { return };
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), false).await;
    let client = server.client().await;
    let lists: Vec<ListId> = ["cyber", "dual-use", "space"].iter().map(|l| ListId::parse(l).unwrap()).collect();
    create_lists(&client, &lists).await;
    let stream = TestStream::new(nc);
    let nats_addr: std::net::SocketAddr = nats_url().trim_start_matches("nats://").parse().unwrap();
    let proxy = Proxy::start(nats_addr).await;
    let args = relay_args(&server.url(), &format!("nats://{}", proxy.addr), &stream);
    let mut rng = Rng::new(0x2545_f491_4f6c_dd1d);
    let mut relay = Relay::start(&args);
    let (mut kills, mut cuts) = (0, 0);
    for i in 0..300 {
        write(&client, &lists, i).await;
        // Ten kills and a few NATS cuts, at random moments among the writes.
        if rng.below(30) == 0 || (kills < 10 && i >= 290 - (10 - kills) * 25 && rng.below(3) == 0) {
            if kills < 10 {
                tokio::time::sleep(Duration::from_millis(rng.below(200))).await;
                relay.kill();
                kills += 1;
                relay = Relay::start(&args);
            }
        } else if rng.below(40) == 0 {
            proxy.cut();
            cuts += 1;
            tokio::time::sleep(Duration::from_millis(rng.below(300))).await;
            proxy.restore();
        }
    }
    while kills < 10 {
        relay.kill();
        kills += 1;
        relay = Relay::start(&args);
    }
    let want = expected(&client, &[], &[]).await;
    let got = until_complete(&stream, &want, Duration::from_secs(60)).await;
    let store_id = client.lists(Point::latest()).await.unwrap().header.store_id;
    // Exactly once.
    let mut seen = BTreeMap::new();
    for m in &got {
        *seen.entry((m.1, m.2.clone())).or_insert(0) += 1;
        assert_eq!(m.3, store_id);
        assert_eq!(m.0, format!("{}.{}", stream.prefix, m.2));
        let cs: eligibility::proto::v1::Changeset = serde_json::from_slice(&m.4).unwrap();
        assert_eq!(cs.revision, m.1);
        assert!(
            cs.changes.iter().all(|c| match &c.kind {
                Some(eligibility::proto::v1::change::Kind::Entry(e)) => e.list_id == m.2,
                Some(eligibility::proto::v1::change::Kind::ListCreated(l)) => l.id == m.2,
                _ => false,
            }),
            "a message carries only its list's changes"
        );
    }
    let dupes: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dupes.is_empty(), "duplicates: {dupes:?}\n{}", relay.log());
    let pairs: BTreeSet<(u64, String)> = seen.keys().cloned().collect();
    assert_eq!(pairs, want, "missing: {:?}", want.difference(&pairs).collect::<Vec<_>>());
    // In revision order per subject.
    for l in &lists {
        let revs: Vec<u64> = got.iter().filter(|m| m.2 == l.as_str()).map(|m| m.1).collect();
        assert!(revs.windows(2).all(|w| w[0] < w[1]), "{l}: {revs:?}");
    }
    println!(
        "relay (nats): {} messages for {} changesets, {kills} SIGKILLs, {cuts} NATS cuts: each (revision, list) once, in order",
        got.len(),
        want.iter().map(|p| p.0).collect::<BTreeSet<_>>().len()
    );
    drop(relay);
    stream.delete().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_stores_stream_is_refused_and_filters_apply() {
    let Some(nc) = nats_or_skip("another_stores_stream_is_refused_and_filters_apply").await else { return };
    let stream = TestStream::new(nc);
    let lists: Vec<ListId> = ["cyber", "space"].iter().map(|l| ListId::parse(l).unwrap()).collect();
    // A first store fills the stream with the cyber list only.
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), false).await;
    let client = server.client().await;
    create_lists(&client, &lists).await;
    for i in 0..10 {
        write(&client, &lists, i).await;
    }
    let mut args = relay_args(&server.url(), &nats_url(), &stream);
    args.extend(["--list".to_owned(), "cyber".to_owned()]);
    let relay = Relay::start(&args);
    let want = expected(&client, &lists[..1], &[]).await;
    let got = until_complete(&stream, &want, Duration::from_secs(30)).await;
    assert!(got.iter().all(|m| m.2 == "cyber"), "the list filter let another list through");
    assert_eq!(got.iter().map(|m| (m.1, m.2.clone())).collect::<BTreeSet<_>>(), want);
    drop(relay);
    // The country filter: only changesets about that country (and list
    // metadata, which always passes), on a stream of their own.
    let by_country = TestStream::new(stream.js.client());
    let mut args = relay_args(&server.url(), &nats_url(), &by_country);
    args.extend(["--country".to_owned(), "AD".to_owned()]);
    let relay = Relay::start(&args);
    let ad = eligibility_client::Country::parse("AD").unwrap();
    let want = expected(&client, &[], &[ad]).await;
    let got = until_complete(&by_country, &want, Duration::from_secs(30)).await;
    assert_eq!(got.iter().map(|m| (m.1, m.2.clone())).collect::<BTreeSet<_>>(), want);
    for m in &got {
        let cs: eligibility::proto::v1::Changeset = serde_json::from_slice(&m.4).unwrap();
        for c in &cs.changes {
            if let Some(eligibility::proto::v1::change::Kind::Entry(e)) = &c.kind {
                assert_eq!(e.country, "AD", "the country filter let another country through");
            }
        }
    }
    assert!(got.iter().any(|m| m.1 > 2), "no entry change passed the filter: the test tested nothing");
    drop(relay);
    by_country.delete().await;
    server.stop().await;
    // Another store: the relay refuses the stream and exits with the reason.
    let other = tempfile::tempdir().unwrap();
    let server = TestServer::start(other.path(), true).await;
    let mut relay = Relay::start(&relay_args(&server.url(), &nats_url(), &stream));
    let code = relay.exit_code(Duration::from_secs(30)).await;
    assert_eq!(code, Some(1), "{}", relay.log());
    assert!(relay.log().contains("holds messages of store"), "{}", relay.log());
    stream.delete().await;
    server.stop().await;
}

#[tokio::test]
async fn a_bad_configuration_is_refused_at_start_with_the_key_named() {
    let cases: [(&[&str], &str); 5] = [
        (&["--nats-url", "http://x"], "invalid nats_url"),
        (&["--webhook", "http://127.0.0.1:9/hook"], "invalid webhook_secret: required with --webhook"),
        (&["--webhook", "http://127.0.0.1:9/hook", "--webhook-secret", "nope"], "invalid webhook_secret"),
        (&["--nats-url", "nats://127.0.0.1:4222", "--nats-format", "xml"], "invalid nats_format"),
        (&[], "nothing to relay to"),
    ];
    /// The relay's complaint (it must exit with 2).
    fn refused(args: &[&str], env: &[(&str, &str)]) -> String {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_eligibility-relay"))
            .args(args)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        err
    }
    for (args, expected) in cases {
        let err = refused(args, &[]);
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    // From the environment and the file, the source is named.
    let err = refused(
        &[],
        &[("ELIGIBILITY_RELAY_NATS_URL", "nats://127.0.0.1:4222"), ("ELIGIBILITY_RELAY_NATS_REPLICAS", "9")],
    );
    assert!(err.contains("invalid nats_replicas") && err.contains("ELIGIBILITY_RELAY_NATS_REPLICAS"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("relay.toml");
    std::fs::write(&file, "nats_url = \"nats://127.0.0.1:4222\"\n[[webhook]]\nurl = \"ftp://x\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n").unwrap();
    let config = file.display().to_string();
    let err = refused(&["--config", &config], &[]);
    assert!(err.contains("invalid webhook[0].url") && err.contains("relay.toml"), "{err}");
    std::fs::write(&file, "nats_urll = \"nats://x\"\n").unwrap();
    let err = refused(&["--config", &config], &[]);
    assert!(err.contains("nats_urll"), "{err}");
}

/// The relay's throughput into JetStream, catching up on a backlog (the
/// figure for the note, `-- --nocapture`; `ELIGIBILITY_RELAY_BACKLOG`
/// changesets, 500 by default): every one must arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput_into_jetstream() {
    let Some(nc) = nats_or_skip("throughput_into_jetstream").await else { return };
    let n: usize = std::env::var("ELIGIBILITY_RELAY_BACKLOG").ok().and_then(|v| v.parse().ok()).unwrap_or(500);
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), false).await;
    let client = server.client().await;
    let lists: Vec<ListId> = ["cyber"].iter().map(|l| ListId::parse(l).unwrap()).collect();
    create_lists(&client, &lists).await;
    for i in 0..n {
        write(&client, &lists, i).await;
    }
    let stream = TestStream::new(nc);
    let want = expected(&client, &[], &[]).await;
    let started = Instant::now();
    let relay = Relay::start(&relay_args(&server.url(), &nats_url(), &stream));
    let got = until_complete(&stream, &want, Duration::from_secs(300)).await;
    let took = started.elapsed();
    assert_eq!(got.len(), want.len(), "{}", relay.log());
    println!(
        "relay (nats): {} changesets into JetStream in {:.2} s from the relay's start: {:.0} changesets/s (each acknowledged before the next)",
        want.len(),
        took.as_secs_f64(),
        want.len() as f64 / took.as_secs_f64()
    );
    drop(relay);
    stream.delete().await;
    server.stop().await;
}
