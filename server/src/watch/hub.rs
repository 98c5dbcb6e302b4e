//! The live feed, the watcher limits and the heartbeat shared by all
//! watchers.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
};

use tokio::sync::broadcast;

use super::WatchConfig;
use crate::{
    error::{Error, Result},
    lifecycle::Shutdown,
    model::Changeset,
    registry::Publisher,
};

/// A changeset on its way to watchers, with a slot per encoding where the
/// transports keep its encoded form: every watcher that sends the same
/// (unfiltered) changeset shares one `Published`, so it is encoded once per
/// encoding, not once per watcher.
#[derive(Debug)]
pub struct Published {
    /// The changeset (filtered for the watcher, when it has a filter).
    pub changeset: Arc<Changeset>,
    encoded: [OnceLock<bytes::Bytes>; ENCODINGS],
}

/// The encodings a changeset is sent in.
#[derive(Clone, Copy, Debug)]
pub enum Encoding {
    /// A gRPC message frame (Watch).
    GrpcFrame = 0,
    /// A server-sent event (the HTTP event stream).
    ServerSentEvent = 1,
}

const ENCODINGS: usize = 2;

impl Published {
    /// Wraps a changeset.
    pub fn new(changeset: Arc<Changeset>) -> Arc<Self> {
        Arc::new(Published { changeset, encoded: Default::default() })
    }

    /// The gRPC-framed form, made by `encode` on first use and shared after.
    pub fn wire(&self, encode: impl FnOnce(&Changeset) -> bytes::Bytes) -> bytes::Bytes {
        self.encoded_as(Encoding::GrpcFrame, encode)
    }

    /// The form `encoding`, made by `encode` on first use and shared after.
    pub fn encoded_as(&self, encoding: Encoding, encode: impl FnOnce(&Changeset) -> bytes::Bytes) -> bytes::Bytes {
        self.encoded[encoding as usize].get_or_init(|| encode(&self.changeset)).clone()
    }
}

/// Counters for operators (and the metrics endpoint).
#[derive(Debug, Default)]
pub struct WatchStats {
    /// Watchers open now.
    pub active: AtomicUsize,
    /// Times a watcher fell behind the live feed and was served from the
    /// log instead.
    pub fallbacks: AtomicU64,
    /// Watchers refused by a limit.
    pub refused: AtomicU64,
}

/// What the live feed carries.
#[derive(Clone, Debug)]
pub enum FeedItem {
    /// A committed changeset.
    Changeset(Arc<Published>),
    /// The heartbeat: a watcher that sent nothing since the last tick sends
    /// a Progress. One shared ticker instead of a timer per watcher.
    Tick,
    /// The server is shutting down: end the stream.
    Shutdown,
}

/// The live feed, limits and heartbeat shared by all watchers.
pub struct Hub {
    pub(super) feed: broadcast::Sender<FeedItem>,
    per_connection: Mutex<HashMap<SocketAddr, usize>>,
    pub(super) stats: WatchStats,
    pub(super) shutdown: Shutdown,
    pub(super) config: WatchConfig,
    /// Changesets published so far (the ticker skips busy intervals).
    published: AtomicU64,
}

impl Hub {
    /// A hub with these settings; its watch streams end when `shutdown`
    /// fires and [`Hub::close`] is called.
    pub fn new(config: WatchConfig, shutdown: Shutdown) -> Self {
        let (feed, _) = broadcast::channel(config.feed_capacity.max(1));
        Hub {
            feed,
            per_connection: Mutex::new(HashMap::new()),
            stats: WatchStats::default(),
            shutdown,
            config,
            published: AtomicU64::new(0),
        }
    }

    /// Sends the heartbeat tick every `progress_interval` until shutdown,
    /// except after an interval in which a changeset was published: every
    /// watcher was sent something for it then (the changeset, or a Progress
    /// when its filter dropped it), so none was idle, and a tick would wake
    /// every watcher for nothing, delaying the next change's fan-out by
    /// about a microsecond per watcher.
    pub async fn run_ticker(self: Arc<Self>, shutdown: Shutdown) {
        let mut every = tokio::time::interval(self.config.progress_interval);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        every.reset();
        let mut seen = self.published.load(Ordering::Relaxed);
        loop {
            tokio::select! {
                _ = shutdown.triggered() => return,
                _ = every.tick() => {
                    let published = self.published.load(Ordering::Relaxed);
                    if std::mem::replace(&mut seen, published) == published {
                        let _ = self.feed.send(FeedItem::Tick);
                    }
                }
            }
        }
    }

    /// The most changesets the shared live feed can hold, whatever the
    /// number or speed of watchers.
    pub fn feed_len_bound(&self) -> usize {
        self.config.feed_capacity.max(1)
    }

    /// Changesets in the live feed now (never above
    /// [`Hub::feed_len_bound`]).
    pub fn feed_len(&self) -> usize {
        self.feed.len()
    }

    /// Counters.
    pub fn stats(&self) -> &WatchStats {
        &self.stats
    }

    /// Settings.
    pub fn config(&self) -> &WatchConfig {
        &self.config
    }

    /// Ends every watch stream now: the shutdown token has fired (each
    /// watcher checks it when polled); this wakes those waiting on the feed.
    pub fn close(&self) {
        let _ = self.feed.send(FeedItem::Shutdown);
    }

    /// Whether watch streams are ending.
    pub fn is_closing(&self) -> bool {
        self.shutdown.is_triggered()
    }

    pub(super) fn admit(self: &Arc<Self>, peer: Option<SocketAddr>) -> Result<Admission> {
        let total = self.stats.active.fetch_add(1, Ordering::SeqCst) + 1;
        metrics::gauge!("eligibility_watchers").set(total as f64);
        let mut admission = Admission { hub: self.clone(), peer: None };
        if total > self.config.max_watchers {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
            crate::prometheus::exhausted("watchers");
            return Err(Error::ResourceExhausted(format!(
                "this server already has {} watchers (the maximum is {})",
                total - 1,
                self.config.max_watchers
            )));
        }
        if let Some(peer) = peer {
            let mut map = self.per_connection.lock().unwrap_or_else(|p| p.into_inner());
            let n = map.entry(peer).or_insert(0);
            if *n >= self.config.max_watchers_per_connection {
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
                crate::prometheus::exhausted("watchers_per_connection");
                return Err(Error::ResourceExhausted(format!(
                    "connection {peer} already has {} watchers (the maximum per connection is {})",
                    n, self.config.max_watchers_per_connection
                )));
            }
            *n += 1;
            admission.peer = Some(peer);
        }
        Ok(admission)
    }
}

/// A watcher's place in the limits; released on drop (the stream ended or
/// the client went away).
pub(super) struct Admission {
    hub: Arc<Hub>,
    peer: Option<SocketAddr>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        let left = self.hub.stats.active.fetch_sub(1, Ordering::SeqCst) - 1;
        metrics::gauge!("eligibility_watchers").set(left as f64);
        if let Some(peer) = self.peer {
            let mut map = self.hub.per_connection.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(n) = map.get_mut(&peer) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&peer);
                }
            }
        }
    }
}

impl Publisher for Hub {
    fn publish(&self, cs: &Arc<Changeset>) {
        self.published.fetch_add(1, Ordering::Relaxed);
        // An error only means nobody is listening.
        let _ = self.feed.send(FeedItem::Changeset(Published::new(cs.clone())));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use eligibility::{Revision, Timestamp};

    use super::*;

    fn changeset(r: u64) -> Arc<Changeset> {
        Arc::new(Changeset {
            revision: Revision(r),
            effective_at: Timestamp::now(),
            recorded_at: Timestamp::now(),
            actor: "a".into(),
            reason: "r".into(),
            reference: "".into(),
            request: None,
            changes: Box::new([]),
            activates: None,
        })
    }

    fn is_tick(item: &FeedItem) -> bool {
        matches!(item, FeedItem::Tick)
    }

    #[tokio::test(start_paused = true)]
    async fn the_heartbeat_skips_an_interval_in_which_a_change_was_published() {
        let config = WatchConfig { progress_interval: Duration::from_secs(10), ..WatchConfig::default() };
        let shutdown = Shutdown::new();
        let hub = Arc::new(Hub::new(config, shutdown.clone()));
        let mut feed = hub.feed.subscribe();
        tokio::spawn(hub.clone().run_ticker(shutdown));
        // An idle interval: a tick.
        tokio::time::sleep(Duration::from_millis(10_500)).await;
        assert!(is_tick(&feed.try_recv().unwrap()));
        // A change in the next interval: no tick at its end...
        hub.publish(&changeset(1));
        assert!(matches!(feed.try_recv().unwrap(), FeedItem::Changeset(_)));
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(feed.try_recv().is_err(), "a busy interval is not followed by a tick");
        // ...and the heartbeat resumes after an idle one.
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(is_tick(&feed.try_recv().unwrap()));
    }
}
