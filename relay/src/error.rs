//! What can stop the relay, as one type: the process's exit reason names
//! the part that failed and keeps the cause (`source`) for the log.

use std::{net::SocketAddr, path::PathBuf};

use crate::feed::Fatal;

/// Why the relay stopped, or could not start a part of itself.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The eligibility server's address or the client's settings are
    /// unusable.
    #[error("server {server}: {source}")]
    Server {
        /// The configured server.
        server: String,
        /// The client's error.
        #[source]
        source: eligibility_client::Error,
    },
    /// A sink stopped for good.
    #[error(transparent)]
    Sink(#[from] Fatal),
    /// A sink's task ended abnormally (a panic or an abort).
    #[error("a sink failed: {0}")]
    SinkTask(#[from] tokio::task::JoinError),
    /// The data directory (webhook positions) cannot be used.
    #[error("data_dir {}: {source}", path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A position file cannot be read.
    #[error("cannot read the position file {}: {source}", path.display())]
    PositionUnreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A position file is not one the relay wrote.
    #[error("{} is not a position file: {source}", path.display())]
    PositionCorrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The system's root certificates cannot be loaded (for https webhooks).
    #[error("cannot load the system's root certificates: {0}")]
    RootCertificates(#[source] std::io::Error),
    /// NATS cannot be reached.
    #[error("{0}")]
    NatsConnect(#[source] async_nats::ConnectError),
    /// The JetStream stream cannot be created or read.
    #[error("stream {stream}: {source}")]
    NatsStream {
        /// The stream's name.
        stream: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The existing stream does not take the relay's subjects.
    #[error(
        "the existing stream {stream} does not take {subjects} (its subjects: {have:?}); use another --nats-stream or --subject-prefix"
    )]
    NatsSubjects {
        /// The stream's name.
        stream: String,
        /// The subjects the relay publishes on.
        subjects: String,
        /// The stream's subjects.
        have: Vec<String>,
    },
    /// The metrics recorder cannot be installed.
    #[error("metrics: {0}")]
    MetricsRecorder(#[from] metrics_exporter_prometheus::BuildError),
    /// The metrics address cannot be listened on.
    #[error("cannot listen on {addr}: {source}")]
    MetricsListen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}
