//! The client crate against a real server: typed errors, the resuming
//! watch stream, and the mirror.

use std::{collections::BTreeSet, time::Duration};

use eligibility_client::{
    Client, Country, EntryAction, EntryChange, Error, ListMode, MirrorOptions, NewList, Point, Revision, WatchEvent,
    WatchOptions, WatchStart, WriteOptions,
};
use eligibility_e2e::{Rng, TestServer, at, cc, list};
use eligibility_server::server::Config;
use tokio_stream::StreamExt;

async fn next(s: &mut eligibility_client::WatchStream) -> WatchEvent {
    tokio::time::timeout(Duration::from_secs(20), s.next())
        .await
        .expect("event within 20 s")
        .expect("open")
        .expect("ok")
}

async fn next_changeset(s: &mut eligibility_client::WatchStream) -> eligibility_client::Changeset {
    loop {
        if let WatchEvent::Changeset(c) = next(s).await {
            return c;
        }
    }
}

async fn new_list(c: &Client, id: &str, mode: ListMode) {
    c.create_list(&NewList::new(list(id), mode), &WriteOptions::reason("setup")).await.unwrap();
}

#[tokio::test]
async fn conflict_errors_carry_expected_and_actual() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), true).await;
    let c = server.client().await;
    let err = c
        .apply(
            &[EntryChange::add(&list("cyber"), cc("MX"))],
            None,
            &WriteOptions::reason("x").with_expected_revision(Revision(1)),
        )
        .await
        .unwrap_err();
    match err {
        Error::Conflict { expected, actual, .. } => {
            assert_eq!((expected, actual), (Some(Revision(1)), Some(Revision(3))))
        }
        other => panic!("{other:?}"),
    }
    let err = c.check(&list("nosuch"), cc("FR")).await.unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    let err = c.check_at(&list("cyber"), cc("FR"), Point::latest().at_revision(Revision(9))).await.unwrap_err();
    assert!(matches!(err, Error::OutOfRange(_)), "{err:?}");
    let err = c.batch_check(&[], Point::latest()).await.unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { field: Some(ref f), .. } if f == "items"), "{err:?}");
}

#[tokio::test]
async fn watch_resumes_across_a_server_crash_and_restart_on_the_same_address() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), false).await;
    let addr = server.addr;
    let c = server.client().await;
    new_list(&c, "l", ListMode::Allowlist).await;
    let writer = c.clone();
    let mut stream = c.watch(WatchOptions::from(WatchStart::After(Revision(0)))).await.unwrap();
    for code in ["FR", "DE", "IT"] {
        writer.apply(&[EntryChange::add(&list("l"), cc(code))], None, &WriteOptions::reason(code)).await.unwrap();
    }
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(next_changeset(&mut stream).await.revision.0);
    }
    server.kill().await;
    // While it is down the stream reconnects in the background.
    let server = TestServer::start_at(Config { data_dir: dir.path().to_owned(), ..Config::default() }, addr).await;
    let c2 = server.client().await;
    for code in ["ES", "NL"] {
        c2.apply(&[EntryChange::add(&list("l"), cc(code))], None, &WriteOptions::reason(code)).await.unwrap();
    }
    while seen.len() < 6 {
        seen.push(next_changeset(&mut stream).await.revision.0);
    }
    assert_eq!(seen, [1, 2, 3, 4, 5, 6], "no gap, no duplicate, in order");
    server.stop().await;
}

#[tokio::test]
async fn watch_refuses_another_store() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), true).await;
    let c = server.client().await;
    let err = c.watch(WatchOptions::from(WatchStart::Now).with_store_id("not-this-one")).await.err().unwrap();
    assert!(matches!(err, Error::StoreMismatch { ref expected, .. } if expected == "not-this-one"), "{err:?}");
    // A stream that resumes against a server with a different store (its
    // data directory was replaced) ends with StoreMismatch.
    let addr = server.addr;
    let mut stream = c.watch(WatchOptions::from(WatchStart::After(Revision(0)))).await.unwrap();
    next_changeset(&mut stream).await;
    server.kill().await;
    let other = tempfile::tempdir().unwrap();
    let server =
        TestServer::start_at(Config { data_dir: other.path().to_owned(), demo: true, ..Config::default() }, addr).await;
    let end = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match stream.next().await {
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Some(e),
                None => return None,
            }
        }
    })
    .await
    .expect("the stream ends");
    assert!(matches!(end, Some(Error::StoreMismatch { .. })), "{end:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_equals_server_at_every_revision() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), true).await;
    let c = server.client().await;
    new_list(&c, "deny", ListMode::Denylist).await;
    let mirror = c.mirror(MirrorOptions::default()).await.unwrap();
    let countries: Vec<Country> = Country::all().into_iter().step_by(10).collect();
    let lists = [list("cyber"), list("deny")];
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
    let day: i64 = 86_400_000_000;
    let now = eligibility::Timestamp::now().as_micros();
    for step in 0..30 {
        let n = 1 + rng.below(4) as usize;
        let mut chosen = BTreeSet::new();
        let mut changes = Vec::new();
        while changes.len() < n {
            let l = &lists[rng.below(2) as usize];
            let country = countries[rng.below(countries.len() as u64) as usize];
            if !chosen.insert((l.clone(), country)) {
                continue;
            }
            let ch = if rng.below(3) == 0 { EntryChange::remove(l, country) } else { EntryChange::add(l, country) };
            changes.push(if rng.below(4) == 0 && ch.action == EntryAction::Add {
                ch.with_conditions("end-user declaration")
            } else {
                ch
            });
        }
        // Past, present or future: -400 days .. +400 days (never within a
        // day of now, so no activation races the comparison).
        let offset = (rng.below(800) as i64 - 400) * day + if rng.below(2) == 0 { day / 2 } else { -day / 2 };
        let eff = eligibility::Timestamp::from_micros(now + offset).unwrap();
        let w = c.apply(&changes, Some(eff), &WriteOptions::reason(format!("step {step}"))).await.unwrap();
        mirror.wait_for(w.revision, Duration::from_secs(10)).await.unwrap();
        assert_eq!(mirror.revision(), w.revision);
        let points = [
            eligibility::Timestamp::now(),
            eligibility::Timestamp::from_micros(now + 30 * day).unwrap(),
            eligibility::Timestamp::from_micros(now + 500 * day).unwrap(),
        ];
        for as_of in points {
            let items: Vec<_> = lists.iter().flat_map(|l| countries.iter().map(move |c| (l.clone(), *c))).collect();
            let server_answers =
                c.batch_check(&items, Point::as_of(as_of).at_revision(w.revision)).await.unwrap().decisions;
            let checking_now = as_of == points[0];
            for ((l, country), s) in items.iter().zip(server_answers) {
                if checking_now {
                    // The fast path answers "now" from its own clock; a few
                    // microseconds later than the server's "now", far from
                    // any change (none is within a day of it).
                    let v = mirror.check(l, *country).unwrap();
                    assert_eq!((v.eligible, v.reason), (s.eligible, s.reason), "check: step {step} {l} {country}");
                }
                let m = mirror.explain_at(l, *country, as_of).unwrap();
                assert_eq!(m.eligible, s.eligible, "step {step} {l} {country} at {as_of}");
                assert_eq!(m.reason, s.reason, "step {step} {l} {country} at {as_of}");
                assert_eq!(m.deciding_change.as_deref(), s.deciding_change.as_ref(), "step {step} {l} {country}");
                assert_eq!(&*m.conditions, s.conditions, "step {step} {l} {country}");
            }
        }
    }
    // Before the mirror's snapshot it refuses rather than guesses.
    let err = mirror.explain_at(&lists[0], cc("MX"), at("2021-10-15")).unwrap_err();
    assert!(matches!(err, Error::NotInMirror(_)), "{err:?}");
}

#[tokio::test]
async fn mirror_applies_future_changes_at_their_time_and_notifies() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), true).await;
    let c = server.client().await;
    let mirror = c.mirror(MirrorOptions::default().with_list(list("cyber"))).await.unwrap();
    let mut applied = mirror.subscribe();
    assert!(mirror.check(&list("cyber"), cc("FR")).unwrap().eligible);
    let eff = eligibility::Timestamp::from_micros(eligibility::Timestamp::now().as_micros() + 1_500_000).unwrap();
    let w = c
        .apply(&[EntryChange::remove(&list("cyber"), cc("FR"))], Some(eff), &WriteOptions::reason("FR cut, soon"))
        .await
        .unwrap();
    let a = tokio::time::timeout(Duration::from_secs(5), applied.recv()).await.unwrap().unwrap();
    assert_eq!(a.changeset.revision, w.revision);
    assert!(!a.in_effect && !a.activation);
    assert!(mirror.check(&list("cyber"), cc("FR")).unwrap().eligible, "not yet");
    // The flip needs no round trip: stop the server before the time comes.
    server.stop().await;
    // (The mirror's clock is the coarse one: allow its few milliseconds.)
    while eligibility::Timestamp::now().as_micros() < eff.as_micros() + 20_000 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let d = mirror.check(&list("cyber"), cc("FR")).unwrap();
    assert!(!d.eligible);
    assert_eq!(d.deciding_revision, Some(w.revision));
    let full = mirror.explain(&list("cyber"), cc("FR")).unwrap();
    assert_eq!(full.deciding_change.unwrap().reason, "FR cut, soon");
}

#[tokio::test]
async fn mirror_fails_closed_when_stale_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config { data_dir: dir.path().to_owned(), demo: true, ..Config::default() };
    let server = TestServer::start_with(config.clone()).await;
    let addr = server.addr;
    let c = server.client().await;
    let mirror = c.mirror(MirrorOptions::default().with_max_staleness(Duration::from_millis(800))).await.unwrap();
    assert!(mirror.status().ready);
    assert!(!mirror.check(&list("cyber"), cc("MX")).unwrap().eligible);
    server.kill().await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let err = mirror.check(&list("cyber"), cc("FR")).unwrap_err();
    assert!(matches!(err, Error::Stale { .. }), "{err:?}");
    assert!(!mirror.status().connected);
    let server = TestServer::start_at(Config { demo: false, ..config }, addr).await;
    // A write after recovery reaches the mirror; checks answer again.
    let c = server.client().await;
    let w = c.apply(&[EntryChange::add(&list("cyber"), cc("MX"))], None, &WriteOptions::reason("back")).await.unwrap();
    mirror.wait_for(w.revision, Duration::from_secs(20)).await.unwrap();
    let d = mirror.check(&list("cyber"), cc("MX")).unwrap();
    assert!(d.eligible);
    assert_eq!(d.revision, w.revision);
    assert!(mirror.status().connected);
    server.stop().await;
}

#[tokio::test]
async fn a_watch_learns_its_store_as_it_opens_and_connection_errors_keep_their_cause() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), true).await;
    let store = server.registry.store_id().to_string();
    // The server names its store in the Watch response's metadata...
    let req = eligibility_client::proto::WatchRequest::default();
    let resp = server.client().await.raw_query().watch(req).await.unwrap();
    assert_eq!(resp.metadata().get(eligibility::STORE_ID_METADATA).unwrap().to_str().unwrap(), store);
    // ...so the client's watch is pinned to it as soon as it returns.
    let stream = server.client().await.watch(WatchOptions::from(WatchStart::Now)).await.unwrap();
    assert_eq!(stream.store_id(), Some(store.as_str()));
    drop(stream);
    server.stop().await;

    // A refused connection: a transport error whose cause is kept.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let e = eligibility_client::Client::connect(format!("http://{closed}")).await.unwrap_err();
    assert!(matches!(e, Error::Transport { .. }), "{e:?}");
    let cause = std::error::Error::source(&e).expect("the transport error's cause");
    assert!(cause.to_string().contains("transport") || cause.source().is_some(), "{cause}");
}
