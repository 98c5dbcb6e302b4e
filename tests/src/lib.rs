//! Test harness: starts a real `eligibility-server` (in-process, the same
//! `server::run` the binary uses) on `127.0.0.1:0` over a data directory,
//! and hands out clients. No fixed ports, no sleeps: the listener is bound
//! before `run` starts, so the address accepts connections at once.

use std::{net::SocketAddr, path::Path, sync::Arc};

use eligibility_client::Client;
use eligibility_server::{
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
        let registry = server::open(&config).await.expect("open store");
        let listener = TcpListener::bind(addr).await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (tx, rx) = oneshot::channel::<()>();
        let reg = registry.clone();
        let http2 = config.http2.clone();
        let handle = tokio::spawn(async move {
            server::run(listener, reg, &http2, async {
                let _ = rx.await;
            })
            .await
            .expect("server run");
        });
        TestServer { addr, registry, shutdown: Some(tx), handle: Some(handle) }
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
        self.registry.hub().shutdown();
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

/// The 37 countries on the list after the 2021 cut.
pub const AFTER_CUT: [&str; 37] = [
    "AT", "AU", "BE", "BG", "CA", "CH", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GB", "GR", "HR", "IE", "IN",
    "IS", "IT", "JP", "KR", "LI", "LT", "LU", "LV", "MT", "NL", "NO", "NZ", "PT", "RO", "SE", "SI", "SK", "US",
];

/// The four removed countries named in the reports.
pub const REMOVED: [&str; 4] = ["MX", "MA", "SA", "AE"];
