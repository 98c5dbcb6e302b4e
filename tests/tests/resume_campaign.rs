//! Resume campaign: watchers (through the client crate) are cut off at
//! random moments by a TCP proxy the test controls while writes go on; at
//! the end every watcher has seen exactly revisions 1..=head, in order, no
//! gap and no duplicate. Quick mode (default, CI): 100 cuts. Long mode
//! (`ELIGIBILITY_CAMPAIGN=long`): 1 000 cuts.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use eligibility_client::{
    Client, EntryChange, ListMode, NewList, RetryPolicy, Revision, WatchEvent, WatchOptions, WatchStart, WriteOptions,
};
use eligibility_e2e::{Proxy, Rng, TestServer, eventually, list};
use tokio_stream::StreamExt;

fn long() -> bool {
    std::env::var("ELIGIBILITY_CAMPAIGN").is_ok_and(|v| v == "long")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_cut_at_random_see_every_revision_exactly_once() {
    let cuts = if long() { 1000 } else { 100 };
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), false).await;
    let writer = server.client().await;
    writer.create_list(&NewList::new(list("l"), ListMode::Allowlist), &WriteOptions::reason("campaign")).await.unwrap();
    let proxy = Proxy::start(server.addr).await;
    let watchers = 4;
    let seen: Vec<Arc<Mutex<Vec<u64>>>> = (0..watchers).map(|_| Arc::default()).collect();
    let reconnects = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for s in &seen {
        let c = Client::builder(format!("http://{}", proxy.addr))
            .with_retry(RetryPolicy::new(20, Duration::from_millis(5), Duration::from_millis(50)))
            .connect()
            .await
            .unwrap();
        let mut opts = WatchOptions::from(WatchStart::After(Revision(0)));
        opts.reconnect = RetryPolicy::new(0, Duration::from_millis(5), Duration::from_millis(50));
        let mut stream = c.watch(opts).await.unwrap();
        let mut states = stream.state_changes();
        let r = reconnects.clone();
        tokio::spawn(async move {
            while states.changed().await.is_ok() {
                let reconnecting = matches!(*states.borrow(), eligibility_client::ConnectionState::Reconnecting { .. });
                if reconnecting {
                    r.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        });
        let s = s.clone();
        tokio::spawn(async move {
            while let Some(ev) = stream.next().await {
                match ev {
                    Ok(WatchEvent::Changeset(cs)) => s.lock().unwrap().push(cs.revision.0),
                    Ok(_) => {}
                    Err(e) => panic!("the watch gave up: {e}"),
                }
            }
        });
    }
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let d = done.clone();
    let w = writer.clone();
    let writing = tokio::spawn(async move {
        let countries = eligibility::Country::all();
        let mut i = 0usize;
        while !d.load(std::sync::atomic::Ordering::Relaxed) {
            let c = countries[i % countries.len()];
            let ch = if (i / countries.len()).is_multiple_of(2) {
                EntryChange::add(&list("l"), c)
            } else {
                EntryChange::remove(&list("l"), c)
            };
            w.apply(&[ch], None, &WriteOptions::reason(format!("w{i}"))).await.unwrap();
            i += 1;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        i
    });
    let mut rng = Rng::new(0x2545_f491_4f6c_dd1d);
    for _ in 0..cuts {
        tokio::time::sleep(Duration::from_millis(5 + rng.below(25))).await;
        proxy.cut();
        tokio::time::sleep(Duration::from_millis(rng.below(10))).await;
        proxy.restore();
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let writes = writing.await.unwrap();
    let head = server.registry.snapshot().revision().0;
    assert!(writes > 50, "writes went on during the cuts ({writes})");
    for (i, s) in seen.iter().enumerate() {
        let what = format!("watcher {i} to reach revision {head}");
        eventually(Duration::from_secs(60), &what, || async { (s.lock().unwrap().len() as u64 >= head).then_some(()) })
            .await;
        let got = s.lock().unwrap().clone();
        assert_eq!(got, (1..=head).collect::<Vec<_>>(), "watcher {i}: exactly 1..={head}");
    }
    let reconnects = reconnects.load(std::sync::atomic::Ordering::Relaxed);
    assert!(reconnects >= cuts / 2, "the cuts did cut the watchers ({reconnects} reconnects)");
    println!(
        "resume campaign: {cuts} cuts, {reconnects} watcher reconnects, {writes} writes, {watchers} watchers each saw revisions 1..={head} exactly once"
    );
    server.stop().await;
}
