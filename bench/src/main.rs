//! `eligibility-bench`: measures the service on this machine. It starts the
//! release `eligibility-server` binary as a child process on a loopback
//! port, over a temporary data directory, so the server's memory can be
//! read apart from the load generator's. All load goes to 127.0.0.1, every
//! loop is bounded in count and time, and the child is killed at the end.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use clap::{Parser, Subcommand};
use eligibility::proto::v1::{self as pb, watch_event::Event as E, watch_start::Start};
use eligibility_client::{Client, Country, EntryChange, ListId, ListMode, NewList, WriteOptions};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;

#[derive(Parser)]
#[command(about)]
struct Cli {
    /// The server binary (default: `eligibility-server` beside this one).
    #[arg(long, global = true)]
    server_bin: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Durable write throughput (changesets/s), each acknowledged after
    /// commit, on SQLite and (with --pg-admin-url) Postgres.
    Writes {
        /// Changesets per run.
        #[arg(long, default_value_t = 2000)]
        changesets: usize,
        /// Concurrent writers.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Also measure Postgres, in a fresh database created through this
        /// admin URL (and dropped after).
        #[arg(long)]
        pg_admin_url: Option<String>,
    },
    /// Cross-replica delivery on Postgres: write on replica A, time until a
    /// watcher on replica B has it.
    Replicas {
        /// Admin URL to create (and drop) a fresh database.
        #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
        pg_admin_url: String,
        /// Changes to time.
        #[arg(long, default_value_t = 200)]
        changes: usize,
    },
    /// In-process `Mirror::check` cost, against a `HashMap` lookup of the
    /// same keys as the baseline, in the same run.
    Mirror {
        /// Checks per measurement.
        #[arg(long, default_value_t = 5_000_000)]
        checks: usize,
    },
    /// One change delivered to many watchers: time until the last has it.
    Fanout {
        /// Watcher counts to measure, one run each.
        #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
        watchers: Vec<usize>,
        /// Changes per run (each delivered to every watcher).
        #[arg(long, default_value_t = 20)]
        repeats: usize,
        /// Client connections the watchers are spread over.
        #[arg(long, default_value_t = 4)]
        connections: usize,
    },
}

/// A server child process on a loopback port.
struct ServerProcess {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl ServerProcess {
    async fn start(bin: &PathBuf) -> ServerProcess {
        Self::start_with(bin, &[]).await
    }

    async fn start_with(bin: &PathBuf, extra: &[&str]) -> ServerProcess {
        let dir = tempfile::tempdir().expect("tempdir");
        // Ask the OS for a free port, then hand it to the server.
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(bin)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--log-level", "warn", "--data-dir"])
            .arg(dir.path())
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e} (build it with cargo build --release)", bin.display()));
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(c) = Client::connect(url.clone()).await
                && c.lists(Default::default()).await.is_ok()
            {
                break;
            }
            assert!(Instant::now() < deadline, "server did not become ready");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        ServerProcess { child, url, _dir: dir }
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

async fn fanout(bin: &PathBuf, watchers: usize, repeats: usize, connections: usize) {
    let server = ServerProcess::start(bin).await;
    let admin = Client::connect(server.url.clone()).await.unwrap();
    let list = ListId::parse("bench").unwrap();
    admin
        .create_list(
            &NewList {
                id: list.clone(),
                title: "bench".into(),
                description: String::new(),
                authority: String::new(),
                mode: ListMode::Allowlist,
            },
            &WriteOptions::reason("bench"),
        )
        .await
        .unwrap();
    let rss_before = server.rss_kib();
    let mut clients = Vec::new();
    for _ in 0..connections {
        clients.push(Client::connect(server.url.clone()).await.unwrap());
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<(u64, Instant)>();
    let mut opened = Vec::new();
    for i in 0..watchers {
        let c = clients[i % connections].clone();
        let tx = tx.clone();
        opened.push(tokio::spawn(async move {
            let mut s = c
                .raw_query()
                .watch(pb::WatchRequest {
                    start: Some(pb::WatchStart { start: Some(Start::Now(true)) }),
                    ..Default::default()
                })
                .await
                .expect("watch")
                .into_inner();
            tokio::spawn(async move {
                while let Some(Ok(ev)) = s.next().await {
                    if let Some(E::Changeset(cs)) = ev.event {
                        let _ = tx.send((cs.revision, Instant::now()));
                    }
                }
            });
        }));
    }
    drop(tx);
    for o in opened {
        o.await.unwrap();
    }
    // Let the server settle its per-watcher tasks before reading memory.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_watching = server.rss_kib();
    let countries: Vec<Country> = Country::all().into_iter().take(50).collect();
    let mut from_write = Vec::new();
    let mut from_ack = Vec::new();
    for i in 0..repeats {
        let change = if i % 2 == 0 {
            EntryChange::add(&list, countries[i % 50])
        } else {
            EntryChange::remove(&list, countries[(i - 1) % 50])
        };
        let t0 = Instant::now();
        let w = admin.apply(&[change], None, &WriteOptions::reason(format!("fanout {i}"))).await.unwrap();
        let acked = Instant::now();
        let mut got = 0;
        let mut last = t0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while got < watchers {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some((rev, at))) if rev == w.revision.0 => {
                    got += 1;
                    last = last.max(at);
                }
                Ok(Some(_)) => {}
                _ => panic!("only {got} of {watchers} watchers got revision {} within 30 s", w.revision),
            }
        }
        from_write.push(last - t0);
        from_ack.push(last.saturating_duration_since(acked));
    }
    from_write.sort();
    from_ack.sort();
    println!(
        "fanout: {watchers} watchers over {connections} connections, {repeats} changes: last delivery after write start p50 {} p99 {} max {}; after write ack p50 {} p99 {}; server RSS {} MiB before watchers, {} MiB with them ({:.1} KiB per watcher)",
        ms(percentile(&from_write, 0.5)),
        ms(percentile(&from_write, 0.99)),
        ms(*from_write.last().unwrap()),
        ms(percentile(&from_ack, 0.5)),
        ms(percentile(&from_ack, 0.99)),
        rss_before / 1024,
        rss_watching / 1024,
        (rss_watching.saturating_sub(rss_before)) as f64 / watchers as f64,
    );
}

/// A throwaway Postgres database.
struct TempDb {
    admin: String,
    name: String,
    url: String,
}

impl TempDb {
    async fn create(admin: &str) -> TempDb {
        use sqlx::{Connection, PgConnection};
        let mut c = PgConnection::connect(admin).await.expect("connect to Postgres admin url");
        let name = format!("elig_bench_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut c).await.unwrap();
        let base = admin.rsplit_once('/').map(|(b, _)| b.to_owned()).unwrap();
        TempDb { admin: admin.to_owned(), url: format!("{base}/{name}"), name }
    }

    async fn drop_db(self) {
        use sqlx::{Connection, PgConnection};
        if let Ok(mut c) = PgConnection::connect(&self.admin).await {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)))
                .execute(&mut c)
                .await;
        }
    }
}

async fn create_bench_list(client: &Client) -> ListId {
    let list = ListId::parse("bench").unwrap();
    client
        .create_list(
            &NewList {
                id: list.clone(),
                title: "bench".into(),
                description: String::new(),
                authority: String::new(),
                mode: ListMode::Allowlist,
            },
            &WriteOptions::reason("bench"),
        )
        .await
        .unwrap();
    list
}

async fn writes(store: &str, url: &str, changesets: usize, concurrency: usize) {
    let client = Client::connect(url.to_owned()).await.unwrap();
    let list = create_bench_list(&client).await;
    let countries: Vec<Country> = Country::all();
    let per = changesets.div_ceil(concurrency);
    let t = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let (c, l, countries) = (client.clone(), list.clone(), countries.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..per {
                let country = countries[(w * per + i) % countries.len()];
                let ch = if i % 2 == 0 { EntryChange::add(&l, country) } else { EntryChange::remove(&l, country) };
                c.apply(&[ch], None, &WriteOptions::reason(format!("bench {w}/{i}"))).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "writes ({store}): {} durable changesets in {secs:.2} s with {concurrency} concurrent writers: {:.0} changesets/s",
        per * concurrency,
        (per * concurrency) as f64 / secs
    );
}

async fn replicas(bin: &PathBuf, admin: &str, changes: usize) {
    let db = TempDb::create(admin).await;
    let a = ServerProcess::start_with(bin, &["--database-url", &db.url]).await;
    let b = ServerProcess::start_with(bin, &["--database-url", &db.url]).await;
    let ca = Client::connect(a.url.clone()).await.unwrap();
    let cb = Client::connect(b.url.clone()).await.unwrap();
    let list = create_bench_list(&ca).await;
    let mut stream =
        cb.watch(eligibility_client::WatchOptions::from(eligibility_client::WatchStart::Now)).await.unwrap();
    let countries: Vec<Country> = Country::all();
    let mut lat = Vec::new();
    for i in 0..changes {
        let ch = if i % 2 == 0 {
            EntryChange::add(&list, countries[i % 250])
        } else {
            EntryChange::remove(&list, countries[(i - 1) % 250])
        };
        let t0 = Instant::now();
        let w = ca.apply(&[ch], None, &WriteOptions::reason(format!("replica {i}"))).await.unwrap();
        loop {
            let ev = tokio::time::timeout(Duration::from_secs(10), stream.next()).await.expect("delivered within 10 s");
            if let Some(Ok(eligibility_client::WatchEvent::Changeset(c))) = ev
                && c.revision == w.revision
            {
                break;
            }
        }
        lat.push(t0.elapsed());
    }
    lat.sort();
    println!(
        "replicas (postgres): write on A -> event on B, {changes} changes: p50 {} p99 {} max {}",
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.99)),
        ms(*lat.last().unwrap())
    );
    drop((a, b));
    db.drop_db().await;
}

async fn mirror(bin: &PathBuf, checks: usize) {
    use std::{collections::HashMap, hint::black_box};
    let server = ServerProcess::start_with(bin, &["--demo"]).await;
    let client = Client::connect(server.url.clone()).await.unwrap();
    let cyber = ListId::parse("cyber").unwrap();
    let mirror = client.mirror(eligibility_client::MirrorOptions::default()).await.unwrap();
    let countries: Vec<Country> = Country::all();
    // Baseline: the cheapest plausible in-process answer, a hash map of
    // precomputed (list, country) -> eligible, plus reading the clock
    // (a time-aware answer needs "now").
    let mut table = HashMap::new();
    for c in &countries {
        table.insert((cyber.clone(), *c), mirror.check(&cyber, *c).unwrap().eligible);
    }
    let mut best_mirror = f64::MAX;
    let mut best_base = f64::MAX;
    let mut best_lookup = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let mut yes = 0usize;
        for i in 0..checks {
            let c = countries[i % countries.len()];
            yes += *black_box(table.get(&(black_box(&cyber).clone(), black_box(c)))).unwrap() as usize;
        }
        black_box(yes);
        best_lookup = best_lookup.min(t.elapsed().as_nanos() as f64 / checks as f64);
        let t = Instant::now();
        let mut yes = 0usize;
        for i in 0..checks {
            let c = countries[i % countries.len()];
            yes += black_box(mirror.check(black_box(&cyber), black_box(c)).unwrap().eligible) as usize;
        }
        black_box(yes);
        best_mirror = best_mirror.min(t.elapsed().as_nanos() as f64 / checks as f64);
        let t = Instant::now();
        let mut yes = 0usize;
        for i in 0..checks {
            let c = countries[i % countries.len()];
            let _now = black_box(eligibility::Timestamp::now());
            yes += *black_box(table.get(&(black_box(&cyber).clone(), black_box(c)))).unwrap() as usize;
        }
        black_box(yes);
        best_base = best_base.min(t.elapsed().as_nanos() as f64 / checks as f64);
    }
    println!(
        "mirror: Mirror::check {best_mirror:.1} ns/check; baselines in the same run: HashMap lookup {best_lookup:.1} ns (ratio {:.2}x), HashMap lookup + std clock read {best_base:.1} ns (ratio {:.2}x); best of 3 x {checks} checks over {} countries",
        best_mirror / best_lookup,
        best_mirror / best_base,
        countries.len()
    );
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let bin =
        cli.server_bin.unwrap_or_else(|| std::env::current_exe().unwrap().parent().unwrap().join("eligibility-server"));
    match cli.command {
        Cmd::Mirror { checks } => mirror(&bin, checks).await,
        Cmd::Writes { changesets, concurrency, pg_admin_url } => {
            let server = ServerProcess::start(&bin).await;
            writes("sqlite", &server.url, changesets, concurrency).await;
            drop(server);
            if let Some(admin) = pg_admin_url {
                let db = TempDb::create(&admin).await;
                let server = ServerProcess::start_with(&bin, &["--database-url", &db.url]).await;
                writes("postgres", &server.url, changesets, concurrency).await;
                drop(server);
                db.drop_db().await;
            }
        }
        Cmd::Replicas { pg_admin_url, changes } => replicas(&bin, &pg_admin_url, changes).await,
        Cmd::Fanout { watchers, repeats, connections } => {
            for n in watchers {
                fanout(&bin, n, repeats, connections).await;
            }
        }
    }
}
