//! `history`: a store of many changesets, then the server restarted on it.
//! The store is built through the store layer (`SqliteStore::append_many`,
//! 10 000 changesets a transaction), not one RPC at a time; then the
//! release server starts on it and the run reports how long until the port
//! answers (health, NOT_SERVING while loading), how long until the first
//! Check answer, the server's RSS against the store's size on disk, and
//! whether the answers are what the history says.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use eligibility::{Country, ListId, Revision, Timestamp, proto::v1 as pb};
use eligibility_client::{Client, Point};
use eligibility_server::{
    model::{Change, ChangesetDraft, EntryAction, ListMeta, ListMode, RequestKey},
    store::{SqliteStore, Store},
};

use tokio_stream::StreamExt;

use crate::{ServerProcess, free_port};

/// The lists the history is spread over.
const LISTS: [&str; 4] = ["cyber", "dual-use", "crypto", "surveillance"];

/// Builds `n` changesets of `changes` entry changes each (reasons of about
/// `reason_len` characters, an idempotency key on each), restarts the
/// server on them, and reports.
pub async fn history(bin: &PathBuf, n: u64, changes: usize, reason_len: usize, keep: Option<&Path>) {
    let temp = tempfile::tempdir().expect("tempdir");
    let dir = keep.unwrap_or(temp.path());
    // A kept store built by an earlier run with the same parameters is
    // reused (building a million changesets takes minutes); the expected
    // answers are generated again either way.
    let reuse = keep.is_some_and(|d| d.join(eligibility_server::store::sqlite::DB_FILE).exists());
    let built = Instant::now();
    let expected = build(dir, n, changes, reason_len, !reuse).await;
    let build_s = built.elapsed().as_secs_f64();
    let disk = dir_size(dir);
    if reuse {
        println!("history: {n} changesets of {changes} changes, reusing the store in {}", dir.display());
    } else {
        println!(
            "history: {n} changesets of {changes} changes (reasons ~{reason_len} chars, idempotency keys), built through the store in {build_s:.1} s ({:.0}/s)",
            n as f64 / build_s
        );
    }
    println!("  on disk {:.1} MiB ({:.0} bytes each)", mib(disk), disk as f64 / n as f64);

    // Restart: the time to the port answering, and to the first answer.
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let args: Vec<std::ffi::OsString> = vec![
        "--listen".into(),
        format!("127.0.0.1:{port}").into(),
        "--log-level".into(),
        "warn".into(),
        "--data-dir".into(),
        dir.into(),
    ];
    let started = Instant::now();
    let server = ServerProcess::spawn(bin, &args, port, tempfile::tempdir().expect("tempdir"));
    let mut port_answered = None;
    let list = ListId::parse(LISTS[0]).unwrap();
    let first_answer = loop {
        if let Ok(ch) = tonic::transport::Endpoint::from_shared(url.clone()).unwrap().connect().await {
            port_answered.get_or_insert(started.elapsed());
            // The raw client: no retries of its own to blur the time.
            let mut raw = pb::eligibility_service_client::EligibilityServiceClient::new(ch);
            let req = pb::CheckRequest { list_id: list.to_string(), country: "FR".into(), point: None };
            if raw.check(req).await.is_ok() {
                break started.elapsed();
            }
        }
        assert!(started.elapsed() < Duration::from_secs(600), "the server did not answer within 10 minutes");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let (rss, peak) = (server.rss_kib() * 1024, server.peak_rss_kib() * 1024);
    println!(
        "  restart: port answering (health NOT_SERVING while loading) after {:.2} s; first Check answer after {:.2} s (bar: <= 10 s: {})",
        port_answered.unwrap_or_default().as_secs_f64(),
        first_answer.as_secs_f64(),
        verdict(first_answer.as_secs_f64() <= 10.0)
    );
    println!(
        "  server RSS after load {:.1} MiB (peak {:.1} MiB) = {:.2} x the store on disk (bar: <= 2 x: {}); {:.0} bytes per changeset",
        mib(rss),
        mib(peak),
        rss as f64 / disk as f64,
        verdict(rss as f64 <= 2.0 * disk as f64),
        rss as f64 / n as f64
    );

    // The answers: the head, and every (list, country) the history touched
    // as of now against what was written.
    let client = Client::connect(url).await.expect("connect");
    let mut wrong = 0;
    let mut asked = 0;
    for (l, members) in &expected.members {
        let id = ListId::parse(l).unwrap();
        for (c, member) in members {
            let got = client.check(&id, *c).await.expect("check").decision.eligible;
            asked += 1;
            if got != *member {
                wrong += 1;
            }
        }
    }
    let head = client.lists(Point::default()).await.expect("lists").header.revision;
    println!("  answers: head revision {} (expected {}); {asked} checks, {wrong} wrong", head.0, expected.head.0);
    assert_eq!(head, expected.head, "the restarted server's head differs");
    // The change stream from the log: the last 10 000 revisions, each once,
    // in order, with its changes.
    let from = Revision(head.0.saturating_sub(10_000));
    let mut stream = client
        .watch(eligibility_client::WatchOptions::from(eligibility_client::WatchStart::After(from)))
        .await
        .expect("watch");
    let mut next = from.0 + 1;
    while next <= head.0 {
        match tokio::time::timeout(Duration::from_secs(30), stream.next()).await {
            Ok(Some(Ok(eligibility_client::WatchEvent::Changeset(cs)))) => {
                assert_eq!(cs.revision.0, next, "the stream skipped or repeated a revision");
                assert_eq!(cs.changes.len(), changes, "revision {next} lost changes");
                next += 1;
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("the change stream ended at revision {next}: {other:?}"),
        }
    }
    println!("  change stream: revisions {}..={} each once, in order, whole", from.0 + 1, head.0);
    assert_eq!(wrong, 0, "answers after the restart differ from the history");
}

/// What the history says at its end.
struct Expected {
    head: Revision,
    /// Per list, per country touched: a member now?
    members: BTreeMap<&'static str, BTreeMap<Country, bool>>,
}

/// Writes the lists and `n` changesets into a new store in `dir` (with
/// `write` false, only works out what they say).
async fn build(dir: &Path, n: u64, changes: usize, reason_len: usize, write: bool) -> Expected {
    let store = if write { Some(SqliteStore::open(dir).await.expect("open the store")) } else { None };
    let countries = Country::all();
    let now = Timestamp::now().as_micros();
    let day: i64 = 86_400_000_000;
    let mut drafts: Vec<ChangesetDraft> = LISTS
        .iter()
        .map(|l| ChangesetDraft {
            effective_at: None,
            actor: "bench".into(),
            reason: "history benchmark".into(),
            reference: String::new(),
            request: None,
            changes: vec![Change::CreateList {
                list: ListId::parse(l).unwrap(),
                meta: Box::new(ListMeta {
                    title: format!("{l} (benchmark)"),
                    description: String::new(),
                    authority: "benchmark".into(),
                    mode: ListMode::Allowlist,
                }),
            }],
            activates: None,
        })
        .collect();
    // Per (list, country): the latest change in (effective time, revision)
    // order decides now, and whether it made a member; what the record
    // order says is only the next change's action.
    let mut deciding: BTreeMap<(&'static str, Country), (i64, u64, bool)> = BTreeMap::new();
    let mut recorded: BTreeMap<(&'static str, Country), bool> = BTreeMap::new();
    let filler = "export control review under the dual-use regulation, see the attached assessment ";
    for i in 0..n {
        let l = LISTS[(i % LISTS.len() as u64) as usize];
        let list = ListId::parse(l).unwrap();
        // Spread over the past ten years, in order; every tenth backdated by
        // a month more (a correction recorded later).
        let t = now - ((n - i) as i64 * (3650 * day / n.max(1) as i64)) - if i % 10 == 0 { 30 * day } else { 0 };
        let mut entry_changes = Vec::with_capacity(changes);
        for k in 0..changes {
            let c = countries[((i as usize * changes + k) * 7) % countries.len()];
            let was = recorded.get(&(l, c)).copied().unwrap_or(false);
            let action = if was { EntryAction::Remove } else { EntryAction::Add };
            recorded.insert((l, c), !was);
            let key = (t, i, !was);
            deciding.entry((l, c)).and_modify(|d| *d = (*d).max(key)).or_insert(key);
            entry_changes.push(Change::Entry { list: list.clone(), country: c, action, conditions: String::new() });
        }
        let mut reason = format!("{i}: ");
        while reason.len() < reason_len {
            reason.push_str(filler);
        }
        reason.truncate(reason_len);
        drafts.push(ChangesetDraft {
            effective_at: Timestamp::from_micros(t),
            actor: format!("writer-{}", i % 17),
            reason,
            reference: format!("notice {}/{}", 2016 + i * 10 / n.max(1), i % 1000),
            request: Some(RequestKey {
                id: format!("bench-{i}").into(),
                fingerprint: format!("{:016x}", i * 2_654_435_761).into(),
            }),
            changes: entry_changes,
            activates: None,
        });
        if drafts.len() == 10_000 {
            if let Some(store) = &store {
                store.append_many(&drafts).await.expect("append");
            }
            drafts.clear();
        }
    }
    let head = match &store {
        Some(store) => {
            let head = store.append_many(&drafts).await.expect("append");
            store.close().await;
            head
        }
        None => Revision(n + LISTS.len() as u64),
    };
    let mut members: BTreeMap<&'static str, BTreeMap<Country, bool>> = BTreeMap::new();
    for ((l, c), (_, _, member)) in deciding {
        members.entry(l).or_default().insert(c, member);
    }
    Expected { head, members }
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries.filter_map(Result::ok).filter_map(|e| e.metadata().ok()).filter(|m| m.is_file()).map(|m| m.len()).sum()
    })
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}
