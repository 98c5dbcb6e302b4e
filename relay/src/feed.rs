//! The change stream as the sinks consume it: the client crate's resuming
//! watch from a sink's own position, each changeset handed to the sink,
//! which returns only once it is delivered; the watch is opened again from
//! the sink's position if it ever ends. Lag and delivery latency are
//! measured here, the same for every sink.

use std::{future::Future, time::Duration};

use eligibility_client::{
    Changeset, Client, Error as ClientError, ListId, Revision, WatchEvent, WatchOptions, WatchStart,
};
use tokio_stream::StreamExt;

use crate::config::Filter;

/// Why a sink stopped for good.
#[derive(Debug, thiserror::Error)]
pub enum Fatal {
    /// The server's store is not the one the sink's position belongs to.
    #[error("store mismatch: {0}")]
    StoreMismatch(String),
    /// The sink cannot go on (its store refuses, its configuration is wrong).
    #[error("{0}")]
    Sink(String),
}

/// Logs an outage once when it starts and once when it ends, not at every
/// retry.
pub struct Outage {
    what: String,
    since: Option<std::time::Instant>,
}

impl Outage {
    /// An outage tracker for `what` (e.g. "the eligibility server").
    pub fn new(what: impl Into<String>) -> Self {
        Outage { what: what.into(), since: None }
    }

    /// It failed (logged only the first time in a row).
    pub fn down(&mut self, error: &dyn std::fmt::Display) {
        if self.since.is_none() {
            self.since = Some(std::time::Instant::now());
            tracing::warn!(%error, "{} is unavailable; retrying with backoff", self.what);
        }
    }

    /// It works (logged if it had failed).
    pub fn up(&mut self) {
        if let Some(since) = self.since.take() {
            tracing::info!(after = ?since.elapsed(), "{} is available again", self.what);
        }
    }
}

/// Capped exponential backoff with full jitter.
pub fn backoff(attempt: u32, max: Duration) -> Duration {
    let base = Duration::from_millis(100).saturating_mul(1u32 << attempt.min(16));
    let cap = base.min(max);
    // Jitter from the clock's low bits: enough to spread retries apart.
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    cap.mul_f64(0.5 + f64::from(nanos % 1000) / 2000.0)
}

/// Tries `attempt` until it succeeds, waiting with backoff in between and
/// logging the outage of `what` once when it starts and once when it ends.
pub async fn until_ok<T, E, F, Fut>(what: String, max_backoff: Duration, mut attempt: F) -> T
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut outage = Outage::new(what);
    let mut n = 0;
    loop {
        match attempt().await {
            Ok(v) => {
                outage.up();
                return v;
            }
            Err(e) => {
                outage.down(&e);
                n += 1;
                tokio::time::sleep(backoff(n, max_backoff)).await;
            }
        }
    }
}

/// Hands every changeset after `after` (within `filter`) to `deliver`, in
/// revision order, forever. `deliver` returns once the changeset is
/// delivered, or with a [`Fatal`] error, which ends the sink.
pub async fn drive<F, Fut>(
    client: &Client,
    store_id: &str,
    filter: &Filter,
    mut after: Revision,
    sink: &str,
    max_backoff: Duration,
    mut deliver: F,
) -> Result<(), Fatal>
where
    F: FnMut(Changeset) -> Fut,
    Fut: Future<Output = Result<(), Fatal>>,
{
    let labels = [("sink", sink.to_owned())];
    let lag = metrics::gauge!("eligibility_relay_lag_revisions", &labels);
    let delivered = metrics::gauge!("eligibility_relay_delivered_revision", &labels);
    let latency = metrics::histogram!("eligibility_relay_delivery_seconds", &labels);
    let mut outage = Outage::new("the eligibility server");
    let mut head = after;
    let mut attempt = 0;
    loop {
        let mut options = WatchOptions::from(WatchStart::After(after)).with_store_id(store_id);
        for l in &filter.lists {
            options = options.with_list(l.clone());
        }
        for c in &filter.countries {
            options = options.with_country(*c);
        }
        let mut stream = match client.watch(options).await {
            Ok(s) => s,
            Err(e) => {
                check_store(&e)?;
                outage.down(&e);
                attempt += 1;
                tokio::time::sleep(backoff(attempt, max_backoff)).await;
                continue;
            }
        };
        outage.up();
        attempt = 0;
        while let Some(event) = stream.next().await {
            match event {
                Ok(WatchEvent::Changeset(cs)) => {
                    let revision = cs.revision;
                    head = head.max(revision);
                    let recorded = cs.recorded_at;
                    deliver(cs).await?;
                    after = revision;
                    delivered.set(revision.0 as f64);
                    lag.set(head.0.saturating_sub(after.0) as f64);
                    let age = eligibility::Timestamp::now().as_micros().saturating_sub(recorded.as_micros());
                    latency.record(age as f64 / 1e6);
                }
                Ok(WatchEvent::Progress(r)) => {
                    head = head.max(r);
                    // Revisions the filter dropped are delivered, in effect.
                    if after < r {
                        after = r;
                        delivered.set(r.0 as f64);
                    }
                    lag.set(head.0.saturating_sub(after.0) as f64);
                }
                // A snapshot (this feed starts after a revision, so none
                // comes), and whatever later versions of the stream add:
                // nothing to deliver.
                Ok(_) => {}
                Err(e) => {
                    check_store(&e)?;
                    outage.down(&e);
                    break;
                }
            }
        }
        attempt += 1;
        tokio::time::sleep(backoff(attempt, max_backoff)).await;
    }
}

fn check_store(e: &ClientError) -> Result<(), Fatal> {
    match e {
        ClientError::StoreMismatch { .. } => Err(Fatal::StoreMismatch(e.to_string())),
        _ => Ok(()),
    }
}

/// A changeset split by list: for each list it touches, in the order of
/// first appearance, the changeset with that list's changes only.
pub fn per_list(cs: &Changeset) -> Vec<(ListId, Changeset)> {
    let mut out: Vec<(ListId, Changeset)> = Vec::new();
    for change in &cs.changes {
        let list = change.list();
        match out.iter_mut().find(|(l, _)| l == list) {
            Some((_, part)) => part.changes.push(change.clone()),
            None => out.push((list.clone(), Changeset { changes: vec![change.clone()], ..cs.clone() })),
        }
    }
    out
}
