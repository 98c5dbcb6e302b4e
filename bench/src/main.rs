//! `eligibility-bench`: measures the service on this machine. It starts the
//! release `eligibility-server` binary as a child process on a loopback
//! port, over a temporary data directory, so the server's memory can be
//! read apart from the load generator's. All load goes to 127.0.0.1, every
//! loop is bounded in count and time, and the child is killed at the end.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

mod history;
mod paced;
mod raw_sse;
mod raw_watch;
mod unary;

use raw_watch::Arrivals;

use clap::{Parser, Subcommand};
use eligibility::proto::v1 as pb;
use eligibility_client::{Client, Country, EntryChange, ListId, ListMode, NewList, WriteOptions};
use tokio_stream::StreamExt;

#[derive(Parser)]
#[command(about)]
struct Cli {
    /// The server binary (default: `eligibility-server` beside this one).
    #[arg(long, global = true)]
    server_bin: Option<PathBuf>,
    /// Give the server and the load generator separate CPUs: the server
    /// runs on CPU 0, this load generator on the others (Linux only). On a
    /// small machine this keeps the two from preempting each other, which
    /// is what the tail-latency and fan-out bars are about; the ratios are
    /// then the server's ceiling on one core against its work on one core.
    #[arg(long, global = true)]
    pin: bool,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Everything, in one run, with the defaults below (what BENCHMARKS.md
    /// quotes): rpc, fanout (shared CPUs, then pinned), writes, replicas (if
    /// Postgres answers), mirror.
    All {
        /// Admin URL for the Postgres measurements (fresh databases are
        /// created and dropped); they are skipped if it does not answer.
        #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
        pg_admin_url: String,
    },
    /// Check and BatchCheck throughput and latency against the transport
    /// ceiling (grpc.health.v1 Check on the same server, same connections
    /// and concurrency), then Check latency at half of its maximum load.
    Rpc {
        /// Concurrency levels (calls in flight).
        #[arg(long, value_delimiter = ',', default_value = "16,64,256")]
        concurrency: Vec<usize>,
        /// Seconds per measurement.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// Client connections.
        #[arg(long, default_value_t = 4)]
        connections: usize,
        /// Rounds (health and check back to back in each; the per-round
        /// ratios' median and each kind's best round are reported).
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    /// Unary calls where the server is the limit (run with --pin): a light
    /// raw-HTTP/2 generator, health against Check of a never-listed country
    /// and Check with full provenance, in alternating rounds, with both
    /// processes' CPU shares.
    Unary {
        /// Seconds per measurement.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// Rounds.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Connections.
        #[arg(long, default_value_t = 4)]
        connections: usize,
        /// Calls in flight per connection.
        #[arg(long, default_value_t = 16)]
        inflight: usize,
    },
    /// Latency at half of the health check's maximum rate, open loop and
    /// server-bound (run with --pin): health, Check CN and Check MX at the
    /// same offered rate; the generator's pacing error is printed too.
    Latency {
        /// Seconds per measurement.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// Rounds.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Connections.
        #[arg(long, default_value_t = 4)]
        connections: usize,
    },
    /// The HTTP/JSON Check (`GET /v1/lists/cyber/check/{country}`, HTTP/1.1
    /// keep-alive, one connection per caller) against the gRPC Check on the
    /// same server, in paired rounds.
    Json {
        /// Calls in flight (JSON: that many connections; gRPC: over 4).
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Seconds per measurement.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// Rounds.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
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
        /// Skip the bare-tonic ceiling (for A/B runs of two server builds,
        /// where the ratio to the transport is not the question).
        #[arg(long)]
        no_ceiling: bool,
        /// The server runs under `valgrind --tool=callgrind
        /// --instr-atstart=no` (`--server-bin` is a wrapper that execs it):
        /// turn its instrumentation on for the changes only, so that the
        /// count is the fan-out's alone (`bench/callgrind/fanout.sh`).
        #[arg(long)]
        callgrind: bool,
        /// Also the same fan-out to server-sent-event readers of
        /// `GET /v1/watch` of the changed list: as HTTP/2 streams over
        /// `--connections` connections, then each on its own HTTP/1.1
        /// connection; and the ratio of the server's CPU per reader to the
        /// gRPC Watch's in the same run. The server is started with `--max-connections` and
        /// `--max-connections-per-address` raised to the reader count: by
        /// default (1 000 per address) the 1 001st reader from one address
        /// is refused. Needs a descriptor limit (`ulimit -n`) above the
        /// reader count in this process and the server's.
        #[arg(long)]
        sse: bool,
    },
    /// A history of many changesets, built through the store, then the
    /// server restarted on it: time to the first answer, RSS against the
    /// store's size on disk, and the answers checked.
    History {
        /// Changesets to build.
        #[arg(long, default_value_t = 1_000_000)]
        changesets: u64,
        /// Entry changes per changeset.
        #[arg(long, default_value_t = 3)]
        changes: usize,
        /// Length of each changeset's reason.
        #[arg(long, default_value_t = 100)]
        reason_len: usize,
        /// Keep the store here (reused by a later run with the same
        /// parameters, which then only restarts the server on it).
        #[arg(long)]
        keep: Option<PathBuf>,
    },
    /// Internal: the fan-out ceiling server (a bare tonic server with only
    /// the standard health service), started by `fanout` as a child.
    #[command(hide = true)]
    CeilingServer {
        #[arg(long)]
        listen: std::net::SocketAddr,
        #[arg(long)]
        trigger: std::net::SocketAddr,
    },
}

/// Whether the server goes on CPU 0 and the load generator on the rest.
static PIN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Restricts the calling thread (and the threads it starts afterwards) to
/// `cpus`.
fn set_affinity(cpus: std::ops::Range<usize>) -> std::io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is the empty set; CPU_SET writes inside it
    // (indices are checked against its size below); sched_setaffinity reads
    // it by pointer with its exact size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for cpu in cpus {
            if cpu < 8 * std::mem::size_of::<libc::cpu_set_t>() {
                libc::CPU_SET(cpu, &mut set);
            }
        }
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
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
        let port = free_port();
        let mut args: Vec<std::ffi::OsString> =
            vec!["--listen".into(), format!("127.0.0.1:{port}").into(), "--log-level".into(), "warn".into()];
        args.extend(["--data-dir".into(), dir.path().into()]);
        args.extend(extra.iter().map(Into::into));
        let server = Self::spawn(bin, &args, port, dir);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(c) = Client::connect(server.url.clone()).await
                && c.lists(Default::default()).await.is_ok()
            {
                break;
            }
            assert!(Instant::now() < deadline, "server did not become ready");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        server
    }

    /// Starts `bin` with `args` (pinned to CPU 0 under `--pin`); the caller
    /// waits for readiness.
    fn spawn(bin: &PathBuf, args: &[std::ffi::OsString], port: u16, dir: tempfile::TempDir) -> ServerProcess {
        let mut command = Command::new(bin);
        if PIN.load(std::sync::atomic::Ordering::Relaxed) {
            use std::os::unix::process::CommandExt;
            // SAFETY: between fork and exec the closure only makes one
            // system call (sched_setaffinity) and allocates nothing.
            unsafe {
                command.pre_exec(|| set_affinity(0..1));
            }
        }
        let child =
            command.args(args).stdout(Stdio::null()).stderr(Stdio::inherit()).spawn().unwrap_or_else(|e| {
                panic!("cannot start {}: {e} (build it with cargo build --release)", bin.display())
            });
        ServerProcess { child, url: format!("http://127.0.0.1:{port}"), _dir: dir }
    }

    /// Runs `callgrind_control` with `args` on the server (the server
    /// process is valgrind's: the wrapper execs it).
    fn callgrind_control(&self, args: &[&str]) {
        let status = Command::new("callgrind_control")
            .args(args)
            .arg(self.child.id().to_string())
            .stdout(Stdio::null())
            .status()
            .expect("callgrind_control (from valgrind) runs");
        assert!(status.success(), "callgrind_control {args:?} failed: is the server under callgrind?");
    }

    /// CPU time (user + system) the server has used, in seconds.
    fn cpu_secs(&self) -> f64 {
        cpu_secs(&format!("/proc/{}/stat", self.child.id()))
    }

    /// Write-like system calls the server has made (`syscw` in
    /// /proc/PID/io): tells how well its socket writes are batched.
    fn write_syscalls(&self) -> u64 {
        let io = std::fs::read_to_string(format!("/proc/{}/io", self.child.id())).unwrap_or_default();
        io.lines().find_map(|l| l.strip_prefix("syscw:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
    }

    fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    /// The highest RSS the server has had.
    fn peak_rss_kib(&self) -> u64 {
        self.status_kib("VmHWM:")
    }

    fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
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

/// `n` HTTP/2 connections to `url` (TCP_NODELAY, as the server's side).
async fn channels(url: &str, n: usize) -> Vec<tonic::transport::Channel> {
    let mut chans = Vec::with_capacity(n);
    for _ in 0..n {
        let endpoint = tonic::transport::Endpoint::from_shared(url.to_owned()).unwrap().tcp_nodelay(true);
        chans.push(endpoint.connect().await.unwrap());
    }
    chans
}

/// A free loopback port (the OS picks one; it is released for the child).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// utime + stime from a /proc stat file, in seconds.
fn cpu_secs(path: &str) -> f64 {
    let (user, system) = cpu_split(path);
    user + system
}

/// CPU time in user space and in the kernel, seconds.
fn cpu_split(path: &str) -> (f64, f64) {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the command name (which is in parentheses).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13
    // after the name; USER_HZ is 100 on Linux.
    (ticks(11) / 100.0, ticks(12) / 100.0)
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

/// How the fan-out's readers follow the changes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Readers {
    /// gRPC Watch streams, spread over a few HTTP/2 connections.
    Grpc,
    /// `GET /v1/watch` server-sent events, one HTTP/1.1 connection each.
    SseHttp1,
    /// The same events as HTTP/2 streams, spread over a few connections
    /// as the gRPC streams are.
    SseHttp2,
}

/// One fan-out run; returns the server's CPU per change, seconds.
async fn fanout(
    bin: &PathBuf,
    watchers: usize,
    repeats: usize,
    connections: usize,
    ceiling: bool,
    callgrind: bool,
    readers: Readers,
) -> f64 {
    let limit = (watchers + 100).to_string();
    let server = match readers {
        Readers::Grpc => ServerProcess::start(bin).await,
        Readers::SseHttp1 => {
            ServerProcess::start_with(bin, &["--max-connections", &limit, "--max-connections-per-address", &limit])
                .await
        }
        Readers::SseHttp2 => ServerProcess::start(bin).await,
    };
    let admin = Client::connect(server.url.clone()).await.unwrap();
    let list = create_bench_list(&admin).await;
    let rss_before = server.rss_kib();
    // The watchers' client side is raw HTTP/2 (`raw_watch`) or raw
    // HTTP/1.1 (`raw_sse`): a tonic client costs about what the server
    // does per event, and on this machine would share the limit being
    // measured.
    let arrivals = Arc::new(Arrivals::default());
    let addr: std::net::SocketAddr = server.url.trim_start_matches("http://").parse().unwrap();
    let connections = match readers {
        Readers::Grpc => {
            for c in 0..connections {
                let streams = watchers / connections + usize::from(c < watchers % connections);
                raw_watch::open(addr, streams, watchers, arrivals.clone()).await;
            }
            connections
        }
        Readers::SseHttp1 => {
            raw_sse::open(addr, list.as_str(), watchers, watchers, arrivals.clone()).await;
            watchers
        }
        Readers::SseHttp2 => {
            let path = format!("/v1/watch?list_id={list}");
            for c in 0..connections {
                let streams = watchers / connections + usize::from(c < watchers % connections);
                raw_watch::open_streams(addr, raw_watch::Streams::Sse(&path), streams, watchers, arrivals.clone())
                    .await;
            }
            connections
        }
    };
    let kind = match readers {
        Readers::Grpc => "gRPC Watch",
        Readers::SseHttp1 => "SSE over HTTP/1.1",
        Readers::SseHttp2 => "SSE over HTTP/2",
    };
    // Let the server settle its per-watcher tasks before reading memory.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_watching = server.rss_kib();
    let countries: Vec<Country> = Country::all().into_iter().take(50).collect();
    let mut deliveries = Deliveries::default();
    let (server_cpu0, bench_cpu0) = (server.cpu_secs(), cpu_secs("/proc/self/stat"));
    let server_path = format!("/proc/{}/stat", server.child.id());
    let kernel0 = cpu_split(&server_path).1;
    let writes0 = server.write_syscalls();
    if callgrind {
        server.callgrind_control(&["--instr=on"]);
    }
    for i in 0..repeats {
        let change = if i % 2 == 0 {
            EntryChange::add(&list, countries[i % 50])
        } else {
            EntryChange::remove(&list, countries[(i - 1) % 50])
        };
        let t0 = Instant::now();
        let w = admin.apply(&[change], None, &WriteOptions::reason(format!("fanout {i}"))).await.unwrap();
        let acked = Instant::now();
        deliveries.record(t0, acked, arrivals.last_of(w.revision.0, watchers).await);
    }
    if callgrind {
        // Dumped now: the process is killed, not stopped, at the end.
        server.callgrind_control(&["--instr=off"]);
        server.callgrind_control(&["--dump=fanout"]);
    }
    let (server_cpu, bench_cpu) = (server.cpu_secs() - server_cpu0, cpu_secs("/proc/self/stat") - bench_cpu0);
    let kernel = cpu_split(&server_path).1 - kernel0;
    println!(
        "fanout ({kind}): CPU per change: server {:.1} ms ({:.2} us per reader, {:.0} % of it in the kernel), load generator (the {watchers} watchers' client side) {:.1} ms; server write system calls per change {:.0}",
        server_cpu * 1e3 / repeats as f64,
        server_cpu * 1e6 / repeats as f64 / watchers as f64,
        if server_cpu > 0.0 { kernel * 100.0 / server_cpu } else { 0.0 },
        bench_cpu * 1e3 / repeats as f64,
        (server.write_syscalls() - writes0) as f64 / repeats as f64
    );
    println!(
        "fanout ({kind}): {watchers} watchers over {connections} connections, {repeats} changes: last delivery after write start {}; server RSS {} MiB before watchers, {} MiB with them ({:.1} KiB per watcher), {} MiB after the changes",
        deliveries.summary("write ack"),
        rss_before / 1024,
        rss_watching / 1024,
        (rss_watching.saturating_sub(rss_before)) as f64 / watchers as f64,
        server.rss_kib() / 1024,
    );
    drop(admin);
    drop(server);
    let per_change = server_cpu / repeats as f64;
    if !ceiling || readers != Readers::Grpc {
        return per_change;
    }
    let ceiling = fanout_ceiling(watchers, repeats, connections).await;
    let ratio = |p| deliveries.after_ack(p).as_secs_f64() / ceiling.after_ack(p).as_secs_f64();
    println!(
        "fanout: {watchers} watchers, ratio to the transport's fan-out in the same run: p50 {:.2}x, p99 {:.2}x (after ack)",
        ratio(0.5),
        ratio(0.99),
    );
    per_change
}

/// The transport's own fan-out, as a baseline: a bare tonic server (this
/// binary's hidden `ceiling-server`, pinned like the real one) whose only
/// service is the standard `grpc.health.v1.Health`; `watchers` streams of
/// `Health/Watch` over `connections` connections; each change flips the
/// status (a 2-byte message to every watcher). Returns the times until the
/// last watcher had each flip.
async fn fanout_ceiling(watchers: usize, repeats: usize, connections: usize) -> Deliveries {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let bin = std::env::current_exe().unwrap();
    let (port, trigger) = (free_port(), free_port());
    let args: Vec<std::ffi::OsString> = vec![
        "ceiling-server".into(),
        "--listen".into(),
        format!("127.0.0.1:{port}").into(),
        "--trigger".into(),
        format!("127.0.0.1:{trigger}").into(),
    ];
    let server = ServerProcess::spawn(&bin, &args, port, tempfile::tempdir().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut flip = loop {
        if let Ok(s) = tokio::net::TcpStream::connect(("127.0.0.1", trigger)).await {
            s.set_nodelay(true).unwrap();
            break s;
        }
        assert!(Instant::now() < deadline, "ceiling server did not become ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let chans = channels(&server.url, connections).await;
    let arrivals = Arc::new(Arrivals::default());
    let mut opened = Vec::new();
    for i in 0..watchers {
        let mut health = tonic_health::pb::health_client::HealthClient::new(chans[i % connections].clone());
        let arrivals = arrivals.clone();
        opened.push(tokio::spawn(async move {
            let mut s = health
                .watch(tonic_health::pb::HealthCheckRequest { service: "fanout".into() })
                .await
                .expect("health watch")
                .into_inner();
            // The current status comes first; then one message per flip.
            s.next().await.expect("initial status").expect("initial status");
            tokio::spawn(async move {
                let mut seen = 0u64;
                while let Some(Ok(_)) = s.next().await {
                    seen += 1;
                    arrivals.arrived(seen, 1, watchers);
                }
            });
        }));
    }
    for o in opened {
        o.await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (cpu0, writes0) = (server.cpu_secs(), server.write_syscalls());
    let mut deliveries = Deliveries::default();
    for k in 1..=repeats as u64 {
        let t0 = Instant::now();
        flip.write_all(b"f").await.unwrap();
        flip.read_exact(&mut [0u8]).await.unwrap();
        let acked = Instant::now();
        deliveries.record(t0, acked, arrivals.last_of(k, watchers).await);
    }
    println!(
        "fanout ceiling: bare tonic, grpc.health.v1 Health/Watch, {watchers} watchers over {connections} connections, {repeats} flips: last delivery after the flip {}; server CPU per flip {:.1} ms, write system calls per flip {:.0}",
        deliveries.summary("its ack"),
        (server.cpu_secs() - cpu0) * 1e3 / repeats as f64,
        (server.write_syscalls() - writes0) as f64 / repeats as f64,
    );
    deliveries
}

/// Per change: the time from its start, and from its acknowledgement,
/// until the last watcher had it.
#[derive(Default)]
struct Deliveries {
    from_start: Vec<Duration>,
    from_ack: Vec<Duration>,
}

impl Deliveries {
    fn record(&mut self, started: Instant, acked: Instant, last: Instant) {
        self.from_start.push(last - started);
        self.from_ack.push(last.saturating_duration_since(acked));
    }

    fn after_ack(&self, p: f64) -> Duration {
        let mut sorted = self.from_ack.clone();
        sorted.sort();
        percentile(&sorted, p)
    }

    /// "p50 .. p99 .. max ..; after <ack> p50 .. p99 ..".
    fn summary(&self, ack: &str) -> String {
        let mut start = self.from_start.clone();
        start.sort();
        format!(
            "p50 {} p99 {} max {}; after {ack} p50 {} p99 {}",
            ms(percentile(&start, 0.5)),
            ms(percentile(&start, 0.99)),
            ms(start.last().copied().unwrap_or_default()),
            ms(self.after_ack(0.5)),
            ms(self.after_ack(0.99)),
        )
    }
}

/// The ceiling server: the standard health service, whose status for the
/// service name `fanout` flips for every byte read on the trigger socket
/// (each flip acknowledged by echoing the byte once it is published).
async fn ceiling_server(listen: std::net::SocketAddr, trigger: std::net::SocketAddr) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tonic_health::ServingStatus;
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_service_status("fanout", ServingStatus::Serving).await;
    let triggers = tokio::net::TcpListener::bind(trigger).await.expect("bind trigger");
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = triggers.accept().await {
            let _ = sock.set_nodelay(true);
            let mut serving = true;
            let mut byte = [0u8];
            while sock.read_exact(&mut byte).await.is_ok() {
                serving = !serving;
                let status = if serving { ServingStatus::Serving } else { ServingStatus::NotServing };
                reporter.set_service_status("fanout", status).await;
                if sock.write_all(&byte).await.is_err() {
                    break;
                }
            }
        }
    });
    let listener = tokio::net::TcpListener::bind(listen).await.expect("bind");
    // The same HTTP/2 settings as eligibility-server's defaults (its
    // `Http2Config`), so the two differ only in the service.
    tonic::transport::Server::builder()
        .initial_connection_window_size(64 << 20)
        .initial_stream_window_size(1 << 20)
        .max_concurrent_streams(20_000)
        .add_service(health)
        .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)))
        .await
        .expect("ceiling server");
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
    client.create_list(&NewList::new(list.clone(), ListMode::Allowlist), &WriteOptions::reason("bench")).await.unwrap();
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

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Health,
    Check,
    Batch100,
}

struct Run {
    calls: usize,
    items: usize,
    secs: f64,
    lat: Vec<Duration>,
    /// CPU per call, µs, of the server and of this load generator.
    server_us: f64,
    client_us: f64,
}

impl Run {
    fn rate(&self) -> f64 {
        self.items as f64 / self.secs
    }
}

async fn one_call(kind: Kind, ch: &tonic::transport::Channel, i: usize, countries: &[String]) -> usize {
    match kind {
        Kind::Health => {
            let mut h = tonic_health::pb::health_client::HealthClient::new(ch.clone());
            h.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.unwrap();
            1
        }
        Kind::Check => {
            let mut q = pb::eligibility_service_client::EligibilityServiceClient::new(ch.clone());
            q.check(pb::CheckRequest {
                list_id: "cyber".into(),
                country: countries[i % countries.len()].clone(),
                point: None,
            })
            .await
            .unwrap();
            1
        }
        Kind::Batch100 => {
            let mut q = pb::eligibility_service_client::EligibilityServiceClient::new(ch.clone());
            let items = (0..100)
                .map(|k| pb::CheckItem {
                    list_id: "cyber".into(),
                    country: countries[(i + k) % countries.len()].clone(),
                })
                .collect();
            q.batch_check(pb::BatchCheckRequest { items, point: None }).await.unwrap();
            100
        }
    }
}

/// Closed loop: `concurrency` callers, each issuing its next call when the
/// previous one returns, for `dur`.
async fn closed_loop(
    kind: Kind,
    chans: &[tonic::transport::Channel],
    concurrency: usize,
    dur: Duration,
    countries: &Arc<Vec<String>>,
) -> Run {
    let stop = Instant::now() + dur;
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let ch = chans[w % chans.len()].clone();
        let countries = countries.clone();
        tasks.push(tokio::spawn(async move {
            let (mut calls, mut items, mut lat) = (0usize, 0usize, Vec::with_capacity(4096));
            let mut i = w;
            while Instant::now() < stop {
                let t = Instant::now();
                items += one_call(kind, &ch, i, &countries).await;
                lat.push(t.elapsed());
                calls += 1;
                i += concurrency;
            }
            (calls, items, lat)
        }));
    }
    let started = Instant::now();
    let mut run = Run { calls: 0, items: 0, secs: 0.0, lat: Vec::new(), server_us: 0.0, client_us: 0.0 };
    for t in tasks {
        let (c, it, l) = t.await.unwrap();
        run.calls += c;
        run.items += it;
        run.lat.extend(l);
    }
    run.secs = started.elapsed().as_secs_f64().max(dur.as_secs_f64());
    run.lat.sort();
    run
}

/// Open loop at `rate` calls/s for `dur`: latency measured from each
/// call's scheduled start (no coordinated omission).
async fn open_loop(
    chans: &[tonic::transport::Channel],
    rate: f64,
    dur: Duration,
    countries: &Arc<Vec<String>>,
) -> (Vec<Duration>, Vec<Duration>) {
    let workers = 64usize;
    let per_worker = rate / workers as f64;
    let interval = Duration::from_secs_f64(1.0 / per_worker);
    let n = (per_worker * dur.as_secs_f64()) as usize;
    let mut tasks = Vec::new();
    let t0 = tokio::time::Instant::now();
    for w in 0..workers {
        let ch = chans[w % chans.len()].clone();
        let countries = countries.clone();
        // Stagger the workers across one interval.
        let offset = interval.mul_f64(w as f64 / workers as f64);
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut service) = (Vec::with_capacity(n), Vec::with_capacity(n));
            for k in 0..n {
                let scheduled = t0 + offset + interval * k as u32;
                tokio::time::sleep_until(scheduled).await;
                let sent = tokio::time::Instant::now();
                one_call(Kind::Check, &ch, w + k, &countries).await;
                lat.push(scheduled.elapsed());
                service.push(sent.elapsed());
            }
            (lat, service)
        }));
    }
    let (mut lat, mut service) = (Vec::new(), Vec::new());
    for t in tasks {
        let (l, s) = t.await.unwrap();
        lat.extend(l);
        service.extend(s);
    }
    lat.sort();
    service.sort();
    (lat, service)
}

async fn rpc(bin: &PathBuf, levels: &[usize], dur: Duration, connections: usize, rounds: usize) {
    let server = ServerProcess::start_with(bin, &["--demo"]).await;
    let chans = channels(&server.url, connections).await;
    let countries: Arc<Vec<String>> = Arc::new(Country::all().iter().map(|c| c.to_string()).collect());
    // Warm up connections and code paths.
    for kind in [Kind::Health, Kind::Check, Kind::Batch100] {
        closed_loop(kind, &chans, 16, Duration::from_millis(500), &countries).await;
    }
    println!(
        "rpc: {connections} connections, {:.1} s per measurement, {rounds} rounds (health and check back to back in each)",
        dur.as_secs_f64()
    );
    println!(
        "{:>11} {:>9} {:>12} {:>9} {:>9} {:>9} {:>11}",
        "concurrency", "call", "rate", "p50", "p99", "p99.9", "vs health"
    );
    let mut best_check = 0.0f64;
    for &c in levels {
        let mut best: std::collections::HashMap<&str, Run> = Default::default();
        // Check/Health per round: the two measured back to back (in turn
        // first and second, so a drift of the machine's speed favours
        // neither), then the median over the rounds. On a shared machine
        // whose speed wanders, this says more than the ratio of two bests
        // taken from different moments.
        let mut paired = Vec::new();
        for round in 0..rounds {
            let order = if round % 2 == 0 {
                [("health", Kind::Health), ("check", Kind::Check), ("batch100", Kind::Batch100)]
            } else {
                [("check", Kind::Check), ("health", Kind::Health), ("batch100", Kind::Batch100)]
            };
            let mut this_round = [0.0f64; 2];
            for (name, kind) in order {
                let (s0, b0) = (server.cpu_secs(), cpu_secs("/proc/self/stat"));
                let mut r = closed_loop(kind, &chans, c, dur, &countries).await;
                r.server_us = (server.cpu_secs() - s0) * 1e6 / r.calls as f64;
                r.client_us = (cpu_secs("/proc/self/stat") - b0) * 1e6 / r.calls as f64;
                match kind {
                    Kind::Health => this_round[0] = r.rate(),
                    Kind::Check => this_round[1] = r.rate(),
                    Kind::Batch100 => {}
                }
                if best.get(name).is_none_or(|b| r.rate() > b.rate()) {
                    best.insert(name, r);
                }
            }
            paired.push(this_round[1] / this_round[0]);
        }
        paired.sort_by(f64::total_cmp);
        let health = best["health"].rate();
        for name in ["health", "check", "batch100"] {
            let r = &best[name];
            let unit = if name == "batch100" { "items/s" } else { "calls/s" };
            println!(
                "{c:>11} {name:>9} {:>8.0} {unit} {:>9} {:>9} {:>9} {:>9.1}% {:>6.1}+{:.1} µs",
                r.rate(),
                ms(percentile(&r.lat, 0.5)),
                ms(percentile(&r.lat, 0.99)),
                ms(percentile(&r.lat, 0.999)),
                100.0 * r.calls as f64 / r.secs / health,
                r.server_us,
                r.client_us
            );
        }
        println!(
            "{c:>11} ratios: Check/Health median of {rounds} paired rounds {:.3} (rounds {:.3}..{:.3}), of the bests {:.3}; BatchCheck(100) items/s vs single Checks/s {:.1}x",
            paired[paired.len() / 2],
            paired[0],
            paired[paired.len() - 1],
            best["check"].rate() / health,
            best["batch100"].rate() / best["check"].rate()
        );
        best_check = best_check.max(best["check"].rate());
    }
    let half = best_check / 2.0;
    let (lat, service) = open_loop(&chans, half, dur.max(Duration::from_secs(3)), &countries).await;
    println!(
        "half load: Check at {half:.0} calls/s (half of the best {best_check:.0}) for {:.0} s, {} calls: from the scheduled start p50 {} p99 {} p99.9 {}; from the actual send p50 {} p99 {} p99.9 {}",
        dur.max(Duration::from_secs(3)).as_secs_f64(),
        lat.len(),
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.99)),
        ms(percentile(&lat, 0.999)),
        ms(percentile(&service, 0.5)),
        ms(percentile(&service, 0.99)),
        ms(percentile(&service, 0.999)),
    );
}

/// JSON Checks over HTTP/1.1 keep-alive: `concurrency` connections, each
/// sending its next request when the previous answer is read, for `dur`.
async fn json_loop(addr: std::net::SocketAddr, concurrency: usize, dur: Duration, countries: &Arc<Vec<String>>) -> Run {
    use http_body_util::{BodyExt, Empty};
    let stop = Instant::now() + dur;
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let countries = countries.clone();
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let (mut send, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
            tokio::spawn(conn);
            let (mut calls, mut lat) = (0usize, Vec::with_capacity(4096));
            let mut i = w;
            while Instant::now() < stop {
                let t = Instant::now();
                let path = format!("/v1/lists/cyber/check/{}", countries[i % countries.len()]);
                let req = http::Request::get(path).header("host", "bench").body(Empty::<bytes::Bytes>::new()).unwrap();
                let resp = send.send_request(req).await.unwrap();
                assert_eq!(resp.status(), 200);
                resp.into_body().collect().await.unwrap();
                lat.push(t.elapsed());
                calls += 1;
                i += concurrency;
            }
            (calls, lat)
        }));
    }
    let started = Instant::now();
    let mut run = Run { calls: 0, items: 0, secs: 0.0, lat: Vec::new(), server_us: 0.0, client_us: 0.0 };
    for t in tasks {
        let (c, l) = t.await.unwrap();
        run.calls += c;
        run.items += c;
        run.lat.extend(l);
    }
    run.secs = started.elapsed().as_secs_f64().max(dur.as_secs_f64());
    run.lat.sort();
    run
}

async fn json_vs_grpc(bin: &PathBuf, concurrency: usize, dur: Duration, rounds: usize) {
    let server = ServerProcess::start_with(bin, &["--demo"]).await;
    let chans = channels(&server.url, 4).await;
    let addr: std::net::SocketAddr = server.url.trim_start_matches("http://").parse().unwrap();
    let countries: Arc<Vec<String>> = Arc::new(Country::all().iter().map(|c| c.to_string()).collect());
    closed_loop(Kind::Check, &chans, 16, Duration::from_millis(500), &countries).await;
    json_loop(addr, 16, Duration::from_millis(500), &countries).await;
    println!(
        "json: Check as JSON over HTTP/1.1 ({concurrency} keep-alive connections) vs gRPC ({concurrency} in flight over 4 HTTP/2 connections), {:.1} s each, {rounds} paired rounds",
        dur.as_secs_f64()
    );
    let mut ratios = Vec::new();
    for round in 0..rounds {
        let mut this = [(0.0f64, 0.0f64, 0.0f64); 2];
        for k in if round % 2 == 0 { [0, 1] } else { [1, 0] } {
            let (s0, b0) = (server.cpu_secs(), cpu_secs("/proc/self/stat"));
            let r = if k == 0 {
                closed_loop(Kind::Check, &chans, concurrency, dur, &countries).await
            } else {
                json_loop(addr, concurrency, dur, &countries).await
            };
            let server_us = (server.cpu_secs() - s0) * 1e6 / r.calls as f64;
            let client_us = (cpu_secs("/proc/self/stat") - b0) * 1e6 / r.calls as f64;
            this[k] = (r.rate(), server_us, client_us);
        }
        println!(
            "json: round {round}: gRPC {:.0} calls/s (server {:.1} µs, generator {:.1} µs per call); JSON {:.0} calls/s (server {:.1} µs, generator {:.1} µs); JSON/gRPC {:.3}",
            this[0].0,
            this[0].1,
            this[0].2,
            this[1].0,
            this[1].1,
            this[1].2,
            this[1].0 / this[0].0
        );
        ratios.push(this[1].0 / this[0].0);
    }
    ratios.sort_by(f64::total_cmp);
    println!("json: JSON/gRPC Check calls/s, median of {rounds} paired rounds: {:.3}", ratios[ratios.len() / 2]);
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

fn main() {
    let cli = Cli::parse();
    if cli.pin {
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        assert!(cpus >= 2, "--pin needs at least 2 CPUs (this process may use {cpus})");
        // Before the runtime starts, so its worker threads inherit it (and
        // size themselves to it).
        set_affinity(1..cpus).expect("sched_setaffinity");
        PIN.store(true, std::sync::atomic::Ordering::Relaxed);
        println!("pinned: server on CPU 0, load generator on CPUs 1..{cpus}");
    }
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime").block_on(run(cli));
}

async fn run(cli: Cli) {
    let bin =
        cli.server_bin.unwrap_or_else(|| std::env::current_exe().unwrap().parent().unwrap().join("eligibility-server"));
    match cli.command {
        Cmd::All { pg_admin_url } => {
            rpc(&bin, &[16, 64, 256], Duration::from_secs(3), 4, 5).await;
            for n in [1000, 10_000] {
                fanout(&bin, n, 20, 4, true, false, Readers::Grpc).await;
            }
            // Fan-out again with the server and the load generator on
            // separate CPUs (this process's own threads cannot move once
            // started, so a child does it).
            if !cli.pin && std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2) {
                let status = tokio::process::Command::new(std::env::current_exe().unwrap())
                    .arg("--server-bin")
                    .arg(&bin)
                    .args(["--pin", "fanout", "--watchers", "1000,10000", "--repeats", "20"])
                    .status()
                    .await
                    .expect("run the pinned fan-out");
                assert!(status.success(), "pinned fan-out failed: {status}");
            }
            let pg = {
                use sqlx::Connection;
                matches!(
                    tokio::time::timeout(Duration::from_secs(3), sqlx::PgConnection::connect(&pg_admin_url)).await,
                    Ok(Ok(_))
                )
            };
            let server = ServerProcess::start(&bin).await;
            writes("sqlite", &server.url, 2000, 8).await;
            drop(server);
            if pg {
                let db = TempDb::create(&pg_admin_url).await;
                let server = ServerProcess::start_with(&bin, &["--database-url", &db.url]).await;
                writes("postgres", &server.url, 2000, 8).await;
                drop(server);
                db.drop_db().await;
                replicas(&bin, &pg_admin_url, 200).await;
            } else {
                println!("postgres: {pg_admin_url} does not answer; skipped writes (postgres) and replicas");
            }
            mirror(&bin, 5_000_000).await;
        }
        Cmd::Mirror { checks } => mirror(&bin, checks).await,
        Cmd::Latency { seconds, rounds, connections } => {
            unary::latency(&bin, Duration::from_secs_f64(seconds), rounds, connections).await
        }
        Cmd::Unary { seconds, rounds, connections, inflight } => {
            unary::unary(&bin, Duration::from_secs_f64(seconds), rounds, connections, inflight).await
        }
        Cmd::Json { concurrency, seconds, rounds } => {
            json_vs_grpc(&bin, concurrency, Duration::from_secs_f64(seconds), rounds).await
        }
        Cmd::Rpc { concurrency, seconds, connections, rounds } => {
            rpc(&bin, &concurrency, Duration::from_secs_f64(seconds), connections, rounds).await
        }
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
        Cmd::CeilingServer { listen, trigger } => ceiling_server(listen, trigger).await,
        Cmd::History { changesets, changes, reason_len, keep } => {
            history::history(&bin, changesets, changes, reason_len, keep.as_deref()).await
        }
        Cmd::Fanout { watchers, repeats, connections, no_ceiling, callgrind, sse } => {
            for n in watchers {
                if sse && callgrind {
                    // The SSE fan-outs alone, counted (HTTP/2, then HTTP/1.1).
                    for readers in [Readers::SseHttp2, Readers::SseHttp1] {
                        fanout(&bin, n, repeats, connections, false, true, readers).await;
                    }
                    continue;
                }
                let grpc =
                    fanout(&bin, n, repeats, connections, !no_ceiling && !callgrind, callgrind, Readers::Grpc).await;
                if sse {
                    for (readers, kind) in [(Readers::SseHttp2, "HTTP/2"), (Readers::SseHttp1, "HTTP/1.1")] {
                        let sse = fanout(&bin, n, repeats, connections, false, false, readers).await;
                        println!(
                            "fanout: {n} readers, server CPU per reader, SSE over {kind} to gRPC Watch in the same run: {:.2}x",
                            sse / grpc
                        );
                    }
                }
            }
        }
    }
}
