//! The abuse campaign's parts: the server process, the normal client's
//! latencies, and the hostile clients.

pub mod flood;
pub mod h2_stalled;
pub mod slow_clients;
pub mod sse_stalled;

use std::{
    net::SocketAddr,
    process::{Child, Command},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use eligibility_client::{Client, Country, EntryAction, EntryChange, ListId, ListMode, NewList, WriteOptions};

/// An `eligibility-server` process on `127.0.0.1:0`, killed when dropped;
/// its JSON log lines are kept.
pub struct Server {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts the server with `args` and waits for its address (read from
    /// its log, so no port is chosen in advance).
    pub async fn start(args: &[String]) -> Server {
        let (child, addr, log) = crate::common::spawn_server(args);
        Server { child, addr, log }
    }

    /// A client of the server, as a platform would configure it.
    pub fn client(&self) -> Client {
        Client::builder(format!("http://{}", self.addr)).with_timeout(Duration::from_secs(10)).connect_lazy().unwrap()
    }

    /// The server's resident set size, bytes.
    pub fn rss(&self) -> u64 {
        rss_of(self.child.id())
    }

    /// Sends SIGTERM and waits (at most `within`) for the process to exit;
    /// how long it took. Its whole log is read by then.
    pub async fn terminate(&mut self, within: Duration) -> Option<Duration> {
        let started = Instant::now();
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        while started.elapsed() < within {
            if self.child.try_wait().unwrap().is_some() {
                let took = started.elapsed();
                // Its last lines may still be in the pipes: each thread
                // reading one holds a clone of the log until the pipe ends.
                while Arc::strong_count(&self.log) > 1 && started.elapsed() < within {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                return Some(took);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// The last `n` log lines.
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log.lock().unwrap();
        log[log.len().saturating_sub(n)..].join("\n")
    }

    /// Log lines containing `needle`.
    pub fn log_count(&self, needle: &str) -> usize {
        self.log.lock().unwrap().iter().filter(|l| l.contains(needle)).count()
    }

    /// Samples the RSS every 50 ms until stopped; the peak.
    pub fn sample_rss(&self) -> Sampler {
        let pid = self.child.id();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut peak = 0;
            while !flag.load(Ordering::Relaxed) {
                peak = peak.max(rss_of(pid));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            peak
        });
        Sampler { stop, task }
    }

    /// Creates the list the campaign writes to.
    pub async fn create_list(&self, client: &Client, list: &ListId) {
        client
            .create_list(&NewList::new(list.clone(), ListMode::Allowlist), &WriteOptions::reason("campaign"))
            .await
            .unwrap();
    }

    /// The `i`th write: one country added or removed, with a reason of
    /// about 1.3 KB (large events are what stalled readers pile up).
    pub async fn write(&self, client: &Client, list: &ListId, i: usize) {
        let countries = Country::all();
        let country = countries[i % countries.len()];
        let action = if (i / countries.len()).is_multiple_of(2) { EntryAction::Add } else { EntryAction::Remove };
        let reason = format!("{i}: {}", "export control review, see the attached assessment. ".repeat(25));
        let changes = [EntryChange { list: list.clone(), country, action, conditions: String::new() }];
        client.apply(&changes, None, &WriteOptions::reason(reason)).await.unwrap();
    }
}

impl Server {
    /// Fails if the server panicked anywhere (a panic in a connection's
    /// task does not end the process, so it must be looked for).
    pub fn assert_no_panic(&self) {
        let log = self.log.lock().unwrap();
        let panics: Vec<&String> = log.iter().filter(|l| l.contains("panicked")).collect();
        assert!(panics.is_empty(), "the server panicked: {panics:?}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A process's resident set size, bytes.
fn rss_of(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// A running RSS sampler.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<u64>,
}

impl Sampler {
    /// Stops it; the peak RSS seen, bytes.
    pub async fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap()
    }
}

/// Latencies of one kind of call.
#[derive(Default)]
pub struct Latencies(Vec<Duration>);

impl Latencies {
    /// Records one.
    pub fn push(&mut self, d: Duration) {
        self.0.push(d);
    }

    fn quantile(&self, q: f64) -> Duration {
        let mut v = self.0.clone();
        v.sort();
        v.get(((v.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or_default()
    }

    /// Fails unless the 99th percentile is within `bound`.
    pub fn assert_within(&self, bound: Duration, what: &str) {
        assert!(!self.0.is_empty(), "no {what} calls were made");
        assert!(self.quantile(0.99) <= bound, "{what} p99 {:?} over {bound:?} ({self})", self.quantile(0.99));
    }

    /// Calls Check in a loop (one at a time, 10 ms apart) until stopped;
    /// every call must succeed.
    pub fn run_checks(client: Client, country: Country) -> Checks {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let list = ListId::parse("cyber").unwrap();
            let mut l = Latencies::default();
            while !flag.load(Ordering::Relaxed) {
                let started = Instant::now();
                client.check(&list, country).await.expect("a normal client's Check failed during the attack");
                l.push(started.elapsed());
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            l
        });
        Checks { stop, task }
    }
}

impl std::fmt::Display for Latencies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "n={} p50={:.1?} p99={:.1?} max={:.1?}",
            self.0.len(),
            self.quantile(0.5),
            self.quantile(0.99),
            self.quantile(1.0)
        )
    }
}

/// A running Check loop.
pub struct Checks {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Latencies>,
}

impl Checks {
    /// Stops it; its latencies.
    pub async fn stop(self) -> Latencies {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap()
    }
}
