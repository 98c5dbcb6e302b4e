//! Test harness: starts a real `eligibility-server` (in-process, the same
//! `server::start` and `run` the binary's `server::serve` runs) on `127.0.0.1:0` over a data directory,
//! and hands out clients. No fixed ports, no sleeps: the listener is bound
//! before `run` starts, so the address accepts connections at once.

use std::{net::SocketAddr, path::Path, sync::Arc};

use eligibility_client::Client;
use eligibility_server::{
    app::App,
    registry::Registry,
    server::{self, Config},
};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

/// A running server.
pub struct TestServer {
    /// Its address.
    pub addr: SocketAddr,
    /// Its registry (for assertions on internal state).
    pub registry: Arc<Registry>,
    /// The whole application (watch hub, writer).
    pub app: Arc<App>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server over `data_dir` (demo data loaded if `demo`).
    pub async fn start(data_dir: &Path, demo: bool) -> TestServer {
        Self::start_with(Config { data_dir: data_dir.to_owned(), demo, ..Config::default() }).await
    }

    /// Starts a server with a full configuration.
    pub async fn start_with(config: Config) -> TestServer {
        Self::start_at(config, "127.0.0.1:0".parse().unwrap()).await
    }

    /// Starts a server on a given address (to restart one where its
    /// clients expect it).
    pub async fn start_at(config: Config, addr: SocketAddr) -> TestServer {
        // The binary's path from bind to answer: NOT_SERVING while the
        // store opens, then the registry.
        let listener = TcpListener::bind(addr).await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let started = server::start(listener, &config).await.expect("open store");
        let app = started.app.clone();
        let registry = app.registry.clone();
        let (tx, rx) = oneshot::channel::<()>();
        let cfg = config.clone();
        let handle = tokio::spawn(async move {
            started
                .run(&cfg, async {
                    let _ = rx.await;
                })
                .await
                .expect("server run");
        });
        TestServer { addr, registry, app, shutdown: Some(tx), handle: Some(handle) }
    }

    /// The server's URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A connected client.
    pub async fn client(&self) -> Client {
        Client::connect(self.url()).await.expect("connect")
    }

    /// Stops gracefully and waits until the store is closed.
    pub async fn stop(mut self) {
        self.stop_inner().await;
    }

    /// Stops abruptly, as a crash would look to clients: the serving task
    /// is aborted, connections drop without a goodbye, then the store is
    /// closed so the directory can be reopened.
    pub async fn kill(mut self) {
        if let Some(h) = self.handle.take() {
            h.abort();
            let _ = h.await;
        }
        self.shutdown.take();
        self.app.shutdown();
        self.registry.store().close().await;
    }

    async fn stop_inner(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.expect("server task");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A seeded generator for campaigns (fastrand's): the same seed, the same
/// moments.
pub struct Rng(fastrand::Rng);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(fastrand::Rng::with_seed(seed))
    }

    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0.u64(..n)
    }
}

/// Parses a list id (test shorthand).
pub fn list(id: &str) -> eligibility::ListId {
    eligibility::ListId::parse(id).unwrap()
}

/// Parses a country (test shorthand).
pub fn cc(code: &str) -> eligibility::Country {
    eligibility::Country::parse(code).unwrap()
}

/// Parses a time (test shorthand).
pub fn at(t: &str) -> eligibility::Timestamp {
    eligibility::Timestamp::parse(t).unwrap()
}

/// A tokens file in `dir` naming each (principal, role, token), as an
/// operator would write it (the tokens' SHA-256, never the tokens).
pub fn tokens_file(dir: &Path, tokens: &[(&str, &str, &str)]) -> std::path::PathBuf {
    let path = dir.join("tokens.toml");
    let text: String = tokens
        .iter()
        .map(|(principal, role, token)| {
            let sha = eligibility_server::identity::hash_token(token);
            format!("[[token]]\nprincipal = \"{principal}\"\nrole = \"{role}\"\nsha256 = \"{sha}\"\n\n")
        })
        .collect();
    std::fs::write(&path, text).expect("write the tokens file");
    path
}

/// The 37 countries on the list after the 2021 cut.
pub const AFTER_CUT: [&str; 37] = [
    "AT", "AU", "BE", "BG", "CA", "CH", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GB", "GR", "HR", "IE", "IN",
    "IS", "IT", "JP", "KR", "LI", "LT", "LU", "LV", "MT", "NL", "NO", "NZ", "PT", "RO", "SE", "SI", "SK", "US",
];

/// The four removed countries named in the reports.
pub const REMOVED: [&str; 4] = ["MX", "MA", "SA", "AE"];

/// A uniquely named Postgres database for one test, dropped afterwards.
pub struct TestDb {
    /// URL of the test database.
    pub url: String,
    name: String,
    admin: String,
}

/// The server tests connect to (trust auth, user `postgres`), overridable
/// with `ELIGIBILITY_TEST_PG_URL`.
pub fn pg_admin_url() -> String {
    std::env::var("ELIGIBILITY_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Creates a fresh database, or returns `None` (after saying so) when
/// Postgres is unreachable outside CI. Under CI (`CI=true`) an unreachable
/// Postgres fails the test.
pub async fn pg_test_db(test: &str) -> Option<TestDb> {
    use sqlx::{Connection, PgConnection};
    let admin = pg_admin_url();
    let conn = tokio::time::timeout(std::time::Duration::from_secs(5), PgConnection::connect(&admin)).await;
    let mut conn = match conn {
        Ok(Ok(c)) => c,
        other => {
            let why = match other {
                Ok(Err(e)) => e.to_string(),
                _ => "timed out".into(),
            };
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{test}: Postgres at {admin} is unreachable under CI: {why}");
            }
            eprintln!(
                "SKIPPED {test}: Postgres at {admin} is unreachable ({why}); set ELIGIBILITY_TEST_PG_URL to run it"
            );
            return None;
        }
    };
    let name = format!("elig_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    let base = admin.rsplit_once('/').map(|(b, _)| b.to_owned()).unwrap_or(admin.clone());
    Some(TestDb { url: format!("{base}/{name}"), name, admin })
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop runs inside the test's runtime: use a thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                use sqlx::{Connection, PgConnection};
                if let Ok(mut c) = PgConnection::connect(&admin).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                        .execute(&mut c)
                        .await;
                }
            });
        })
        .join();
    }
}

/// A TCP proxy the test controls, to cut a server off from Postgres (an
/// outage) and restore it.
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    state: Arc<ProxyState>,
    accept: JoinHandle<()>,
}

#[derive(Default)]
struct ProxyState {
    cut: std::sync::atomic::AtomicBool,
    black_hole: std::sync::atomic::AtomicBool,
    conns: std::sync::Mutex<Vec<tokio::task::AbortHandle>>,
    /// Connections accepted in black-hole mode: held open, never answered.
    held: std::sync::Mutex<Vec<tokio::net::TcpStream>>,
}

impl Proxy {
    /// Forwards `127.0.0.1:<port>` to `target`.
    pub async fn start(target: SocketAddr) -> Proxy {
        use std::sync::atomic::Ordering;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(ProxyState::default());
        let st = state.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if st.black_hole.load(Ordering::SeqCst) {
                    st.held.lock().unwrap().push(inbound);
                    continue;
                }
                if st.cut.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                st.conns.lock().unwrap().push(task.abort_handle());
            }
        });
        Proxy { addr, state, accept }
    }

    /// Drops every connection and refuses new ones.
    pub fn cut(&self) {
        self.state.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        for c in self.state.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    /// Traffic black-holed, as a network partition looks: open connections
    /// are dropped, new ones are accepted and never answered.
    pub fn black_hole(&self) {
        self.state.black_hole.store(true, std::sync::atomic::Ordering::SeqCst);
        for c in self.state.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    /// Accepts and forwards connections again.
    pub fn restore(&self) {
        self.state.cut.store(false, std::sync::atomic::Ordering::SeqCst);
        self.state.black_hole.store(false, std::sync::atomic::Ordering::SeqCst);
        self.state.held.lock().unwrap().clear();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

impl TestDb {
    /// The database URL with its host and port replaced (e.g. by a
    /// [`Proxy`]).
    pub fn url_via(&self, addr: SocketAddr) -> String {
        let (_, db) = self.url.rsplit_once('/').expect("url has a database");
        let user = self.url.split("://").nth(1).and_then(|r| r.split('@').next()).unwrap_or("postgres");
        format!("postgres://{user}@{addr}/{db}")
    }

    /// The Postgres server's address.
    pub fn server_addr(&self) -> SocketAddr {
        let hostport = self.url.split('@').nth(1).and_then(|r| r.split('/').next()).expect("host:port");
        let hostport = if hostport.contains(':') { hostport.to_owned() } else { format!("{hostport}:5432") };
        hostport.replace("localhost", "127.0.0.1").parse().expect("an IP address and port")
    }
}

/// A plain HTTP/1.1 client for the HTTP/JSON surface (no code of the
/// server's or the client crate's).
pub mod web {
    use std::net::SocketAddr;

    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::TokioIo;

    /// An answer.
    #[derive(Debug)]
    pub struct Answer {
        /// The status.
        pub status: u16,
        /// The headers.
        pub headers: http::HeaderMap,
        /// The body, as text.
        pub body: String,
    }

    impl Answer {
        /// The body as JSON (panics if it is not).
        pub fn json(&self) -> serde_json::Value {
            serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
        }

        /// A header's value ("" when absent).
        pub fn header(&self, name: &str) -> &str {
            self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
        }
    }

    /// Opens a connection and sends one request; the response's head and
    /// its body (still streaming).
    pub async fn send(
        addr: SocketAddr,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> http::Response<hyper::body::Incoming> {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
        tokio::spawn(conn);
        let mut req = http::Request::builder().method(method).uri(path).header("host", addr.to_string());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        sender.send_request(req.body(Full::new(Bytes::from(body.to_owned()))).unwrap()).await.expect("request")
    }

    /// One request, the whole answer.
    pub async fn call(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
        let resp = send(addr, method, path, headers, body).await;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        Answer { status, headers, body: String::from_utf8_lossy(&bytes).into_owned() }
    }

    /// `GET path`.
    pub async fn get(addr: SocketAddr, path: &str) -> Answer {
        call(addr, "GET", path, &[], "").await
    }

    /// Server-sent events read from a streaming answer.
    pub struct Events {
        body: hyper::body::Incoming,
        buf: String,
    }

    /// One server-sent event.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Event {
        /// `id:`, if any.
        pub id: Option<u64>,
        /// `event:`.
        pub kind: String,
        /// `data:` as JSON.
        pub data: serde_json::Value,
    }

    impl Events {
        /// Opens `GET path` as an event stream.
        pub async fn open(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Events {
            let resp = send(addr, "GET", path, headers, "").await;
            assert_eq!(resp.status().as_u16(), 200, "{path}");
            assert_eq!(resp.headers()["content-type"], "text/event-stream");
            Events { body: resp.into_body(), buf: String::new() }
        }

        /// The next event (`None` when the stream ends).
        pub async fn next(&mut self) -> Option<Event> {
            loop {
                if let Some(end) = self.buf.find("\n\n") {
                    let block: String = self.buf.drain(..end + 2).collect();
                    let mut e = Event { id: None, kind: String::new(), data: serde_json::Value::Null };
                    for line in block.lines() {
                        if let Some(v) = line.strip_prefix("id: ") {
                            e.id = v.parse().ok();
                        } else if let Some(v) = line.strip_prefix("event: ") {
                            e.kind = v.to_owned();
                        } else if let Some(v) = line.strip_prefix("data: ") {
                            e.data = serde_json::from_str(v).expect("data is JSON");
                        }
                    }
                    return Some(e);
                }
                let frame = self.body.frame().await?.ok()?;
                if let Ok(data) = frame.into_data() {
                    self.buf.push_str(&String::from_utf8_lossy(&data));
                }
            }
        }

        /// The next changeset's revision (skipping progress).
        pub async fn next_changeset(&mut self) -> Option<u64> {
            loop {
                let e = self.next().await?;
                if e.kind == "changeset" {
                    return e.id;
                }
            }
        }
    }
}

/// Reads the metrics endpoint at `addr` (retrying while it starts).
///
/// The recorder behind it is process-wide: every server in the test binary
/// sets the same gauges. A test that scrapes must be the only test in its
/// binary (`one_test_per_binary_that_reads_the_metrics` checks it).
pub async fn scrape(addr: SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let within = std::time::Duration::from_secs(2);
    let mut s = eventually(within, "the metrics endpoint to accept", || async {
        tokio::net::TcpStream::connect(addr).await.ok()
    })
    .await;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

/// Polls `probe` until it answers `Some`, then returns that; panics naming
/// `what` (what was awaited) if `within` passes first. For state that a
/// test can only observe, not be told of (a metric, a file another process
/// writes, a gauge that settles): the one poll-and-sleep loop of the tests,
/// polling every 20 ms.
pub async fn eventually<T, F, Fut>(within: std::time::Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "waited {within:?} for {what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The value of the first metrics sample whose line starts with `prefix`.
pub fn metric(text: &str, prefix: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find(|l| l.starts_with(prefix))?.rsplit(' ').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    /// Every test file that reads the process-wide metrics (by scraping an
    /// endpoint) holds one test: another test's server in the same process
    /// would set the same gauges while it reads them (a flaky
    /// `eligibility_revision` assertion came from exactly that).
    #[test]
    fn one_test_per_binary_that_reads_the_metrics() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut checked = 0;
        for dir in ["tests/tests", "server/tests", "client/tests", "relay/tests"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir)) else { continue };
            for entry in entries {
                let path = entry.unwrap().path();
                if path.extension().is_none_or(|e| e != "rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                if !text.contains("scrape(") {
                    continue;
                }
                checked += 1;
                let tests = text.matches("#[tokio::test").count() + text.matches("#[test]").count();
                assert_eq!(tests, 1, "{} reads the process-wide metrics but holds {tests} tests", path.display());
            }
        }
        assert!(checked >= 4, "the metrics tests were not found ({checked})");
    }
}
