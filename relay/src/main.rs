//! `eligibility-relay`: carries the eligibility change stream onto NATS
//! JetStream and signed webhooks, exactly once in effect. Each sink follows
//! the change stream from its own position (JetStream's last message; a
//! webhook endpoint's saved position) with the client crate's resuming
//! watch, and moves on only once a delivery is acknowledged.

mod config;
mod error;
mod feed;
mod nats;
mod position;
mod sign;
mod telemetry;
mod webhook;

use std::{
    process::ExitCode,
    sync::{Arc, atomic::AtomicBool},
    time::Duration,
};

use eligibility_client::{Client, Point};

#[tokio::main]
async fn main() -> ExitCode {
    let config = match config::load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("eligibility-relay: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::logs(config.log_json, &config.log_level);
    let healthy = Arc::new(AtomicBool::new(true));
    if let Some(addr) = config.metrics_listen
        && let Err(e) = telemetry::serve(addr, healthy.clone()).await
    {
        eprintln!("eligibility-relay: invalid metrics_listen: {e}");
        return ExitCode::from(2);
    }
    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            healthy.store(false, std::sync::atomic::Ordering::Relaxed);
            tracing::error!(error = %e, "relay stopped");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: config::Config) -> Result<(), error::Error> {
    let mut builder = Client::builder(config.server.clone()).with_timeout(Duration::from_secs(30));
    if let Some(t) = &config.token {
        builder = builder.with_bearer_token(t.clone());
    }
    let client =
        builder.connect_lazy().map_err(|source| error::Error::Server { server: config.server.clone(), source })?;
    // The store the positions belong to, from the server (waiting for it).
    let store_id =
        feed::until_ok(format!("the eligibility server at {}", config.server), config.max_backoff, || async {
            client.lists(Point::latest()).await.map(|a| a.header.store_id)
        })
        .await;
    tracing::info!(server = %config.server, store_id, nats = config.nats.is_some(), webhooks = config.webhooks.len(), "relaying");
    let mut sinks = tokio::task::JoinSet::new();
    if let Some(n) = config.nats.clone() {
        let (client, store_id, filter) = (client.clone(), store_id.clone(), config.filter.clone());
        sinks.spawn(nats::run(n, client, store_id, filter, config.max_backoff));
    }
    if !config.webhooks.is_empty() {
        let http = webhook::http_client()?;
        for w in config.webhooks.clone() {
            let position = position::PositionFile::open(&config.data_dir, &w.name)
                .map_err(|source| error::Error::DataDir { path: config.data_dir.clone(), source })?;
            let run = webhook::run(
                w,
                client.clone(),
                store_id.clone(),
                position,
                http.clone(),
                config.webhook_timeout,
                config.max_backoff,
            );
            sinks.spawn(run);
        }
    }
    tokio::select! {
        fatal = sinks.join_next() => match fatal {
            Some(Ok(f)) => Err(f.into()),
            Some(Err(e)) => Err(e.into()),
            None => Ok(()),
        },
        () = eligibility::process::shutdown_signal() => {
            tracing::info!("stopping");
            Ok(())
        }
    }
}
