//! The change stream's domain side: filters, the per-watcher loop, limits.
//!
//! Every committed changeset is published on one bounded `broadcast`
//! channel (the live feed) after the snapshot that contains it is swapped
//! in. A watcher subscribes to the feed *before* it reads the snapshot, so
//! nothing can fall between the two; duplicates at the seam are dropped by
//! revision. A watcher that falls behind the feed (its client reads slowly,
//! or it starts far back) is served from the registry's log, which holds
//! the whole durable history in memory, then rejoins the feed: the writer
//! never waits for a watcher, memory per watcher is bounded by its output
//! buffer, and no event is lost (etcd's unsynced-watcher design).

use std::{
    collections::{BTreeSet, HashMap, VecDeque},
    net::SocketAddr,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use eligibility::{Country, ListId, Revision, Timestamp};
use tokio::sync::{broadcast, watch};

use crate::{
    error::{Error, Result},
    model::{Change, Changeset},
    registry::{ListInfo, Member, Registry, View},
    snapshot::Snapshot,
};

/// Where a watch starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// Every change with revision > this.
    After(Revision),
    /// Only changes committed after the watch is accepted.
    Now,
    /// The current state first, then every change after it.
    Snapshot,
}

/// Which changes a watcher wants. Empty sets mean "all".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only these lists.
    pub lists: BTreeSet<ListId>,
    /// Only entry changes about these countries (list metadata changes
    /// pass, unless `entries_only`).
    pub countries: BTreeSet<Country>,
    /// Only entry changes (History of one country does not show list
    /// metadata changes; a watcher does).
    pub entries_only: bool,
}

impl Filter {
    /// Whether the filter lets `change` through.
    pub fn matches(&self, change: &Change) -> bool {
        (self.lists.is_empty() || self.lists.contains(change.list()))
            && match change.country() {
                Some(c) => self.countries.is_empty() || self.countries.contains(&c),
                None => !self.entries_only,
            }
    }

    /// Whether the filter passes everything.
    pub fn is_all(&self) -> bool {
        self.lists.is_empty() && self.countries.is_empty() && !self.entries_only
    }
}

/// `cs` as a watcher (or History reader) sees it: filtered to the matching
/// changes; an activation entry carries the changes of the changeset it
/// activates (they take effect now) and that changeset's effective time.
/// `None` when nothing matches.
pub fn present(snap: &Snapshot, cs: &Arc<Changeset>, filter: &Filter) -> Option<Arc<Changeset>> {
    let source = match cs.activates {
        Some(orig) => snap.changeset(orig)?,
        None => cs,
    };
    if filter.is_all() && cs.activates.is_none() {
        return (!cs.changes.is_empty()).then(|| cs.clone());
    }
    let changes: Vec<Change> = source.changes.iter().filter(|c| filter.matches(c)).cloned().collect();
    if changes.is_empty() {
        return None;
    }
    if cs.activates.is_none() && changes.len() == cs.changes.len() {
        return Some(cs.clone());
    }
    let mut out = (**cs).clone();
    out.changes = changes;
    if cs.activates.is_some() {
        out.effective_at = source.effective_at;
    }
    Some(Arc::new(out))
}

/// A changeset on its way to watchers, with a slot where the transport
/// keeps its encoded form: every watcher that sends the same (unfiltered)
/// changeset shares one `Published`, so it is encoded once, not once per
/// watcher.
#[derive(Debug)]
pub struct Published {
    /// The changeset (filtered for the watcher, when it has a filter).
    pub changeset: Arc<Changeset>,
    wire: OnceLock<bytes::Bytes>,
}

impl Published {
    /// Wraps a changeset.
    pub fn new(changeset: Arc<Changeset>) -> Arc<Self> {
        Arc::new(Published { changeset, wire: OnceLock::new() })
    }

    /// The encoded form, made by `encode` on first use and shared after.
    pub fn wire(&self, encode: impl FnOnce(&Changeset) -> bytes::Bytes) -> bytes::Bytes {
        self.wire.get_or_init(|| encode(&self.changeset)).clone()
    }
}

/// One list's state in a snapshot-first start.
#[derive(Clone, Debug)]
pub struct SnapshotList {
    /// Metadata and counts.
    pub info: ListInfo,
    /// Members now (filtered by country).
    pub members: Vec<Member>,
    /// Recorded changesets touching the list that are not yet in effect.
    pub pending: Vec<Arc<Changeset>>,
    /// Countries whose deciding change is a removal, with that change.
    pub removed: Vec<Member>,
}

/// What a watcher receives.
#[derive(Clone, Debug)]
pub enum Event {
    /// A changeset (filtered).
    Changeset(Arc<Published>),
    /// Everything through this revision has been sent.
    Progress(Revision),
    /// Snapshot-first: one list's state.
    SnapshotList(SnapshotList),
    /// Snapshot-first: the snapshot is complete at this revision, evaluated
    /// at this valid time.
    SnapshotEnd(Revision, Timestamp),
}

/// Watch settings.
#[derive(Clone, Debug)]
pub struct WatchConfig {
    /// Progress heartbeat interval when idle.
    pub progress_interval: Duration,
    /// Events a watcher prepares at a time when serving from the log (its
    /// buffer; beyond it a watcher holds only a cursor).
    pub buffer: usize,
    /// Capacity of the shared live feed.
    pub feed_capacity: usize,
    /// How long a resume from ahead of the head waits for the head.
    pub resume_wait: Duration,
    /// Watchers in total.
    pub max_watchers: usize,
    /// Watchers per client connection.
    pub max_watchers_per_connection: usize,
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig {
            progress_interval: Duration::from_secs(10),
            buffer: 64,
            feed_capacity: 1024,
            resume_wait: Duration::from_secs(3),
            max_watchers: 100_000,
            max_watchers_per_connection: 10_000,
        }
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

/// The live feed, limits and shutdown signal shared by all watchers.
pub struct Hub {
    feed: broadcast::Sender<FeedItem>,
    stopping: std::sync::atomic::AtomicBool,
    per_connection: Mutex<HashMap<SocketAddr, usize>>,
    stats: WatchStats,
    shutdown: watch::Sender<bool>,
    config: WatchConfig,
}

impl Hub {
    /// A hub with these settings.
    pub fn new(config: WatchConfig) -> Self {
        let (feed, _) = broadcast::channel(config.feed_capacity.max(1));
        let (shutdown, _) = watch::channel(false);
        Hub {
            feed,
            stopping: std::sync::atomic::AtomicBool::new(false),
            per_connection: Mutex::new(HashMap::new()),
            stats: WatchStats::default(),
            shutdown,
            config,
        }
    }

    /// Publishes a committed changeset to live watchers (never blocks).
    pub fn publish(&self, cs: Arc<Changeset>) {
        // An error only means nobody is listening.
        let _ = self.feed.send(FeedItem::Changeset(Published::new(cs)));
    }

    /// Sends the heartbeat tick every `progress_interval` until shutdown.
    pub async fn run_ticker(self: Arc<Self>) {
        let mut stop = self.shutdown.subscribe();
        let mut every = tokio::time::interval(self.config.progress_interval);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        every.reset();
        loop {
            tokio::select! {
                _ = stopped(&mut stop) => return,
                _ = every.tick() => { let _ = self.feed.send(FeedItem::Tick); }
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

    /// Ends every watch stream and background task (graceful shutdown).
    pub fn shutdown(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _ = self.feed.send(FeedItem::Shutdown);
        self.shutdown.send_replace(true);
    }

    /// A receiver that turns true at shutdown.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    fn admit(self: &Arc<Self>, peer: Option<SocketAddr>) -> Result<Admission> {
        let total = self.stats.active.fetch_add(1, Ordering::SeqCst) + 1;
        metrics::gauge!("eligibility_watchers").set(total as f64);
        let mut admission = Admission { hub: self.clone(), peer: None };
        if total > self.config.max_watchers {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
            crate::metrics::exhausted("watchers");
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
                crate::metrics::exhausted("watchers_per_connection");
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

/// Completes when `rx` (a shutdown signal) turns true, or its sender is
/// gone. Returns nothing, so no borrow of the value is held across awaits.
pub(crate) async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// A watcher's place in the limits; released on drop (the stream ended or
/// the client went away).
struct Admission {
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

/// A watch request in domain terms.
#[derive(Clone, Debug)]
pub struct WatchRequest {
    /// Where to start.
    pub start: Start,
    /// What to send.
    pub filter: Filter,
    /// The store id the client expects, if any.
    pub store_id: Option<String>,
}

impl Registry {
    /// Opens a watch: validates the request (store id, lists, resume
    /// revision) and returns its stream of events, each turned into what the
    /// transport sends by `present` inside the stream (one layer fewer to
    /// poll, per event, per watcher, than mapping the stream afterwards).
    /// The stream ends when the server shuts down; dropping it (the client
    /// went away) releases the watcher's place.
    pub async fn watch<T, F>(
        self: &Arc<Self>,
        req: WatchRequest,
        peer: Option<SocketAddr>,
        present: F,
    ) -> Result<std::pin::Pin<Box<dyn futures_util::Stream<Item = T> + Send>>>
    where
        T: Send + 'static,
        F: Fn(Event) -> T + Send + 'static,
    {
        let hub = self.hub().clone();
        if let Some(expected) = &req.store_id
            && expected != self.snapshot().store_id()
        {
            return Err(Error::StoreMismatch {
                expected: expected.clone(),
                actual: self.snapshot().store_id().to_owned(),
            });
        }
        for l in &req.filter.lists {
            self.snapshot().list_at(l, self.snapshot().revision())?;
        }
        if let Start::After(r) = req.start
            && r > self.snapshot().revision()
        {
            let mut rx = self.subscribe_head();
            let reached = tokio::time::timeout(hub.config.resume_wait, rx.wait_for(|h| *h >= r)).await;
            if !matches!(reached, Ok(Ok(_))) {
                return Err(Error::ResumeAhead { requested: r, head: self.snapshot().revision() });
            }
        }
        let admission = hub.admit(peer)?;
        // Subscribe before reading any snapshot: see the module docs.
        let feed = hub.feed.subscribe();
        let watcher = Watcher {
            registry: self.clone(),
            hub,
            feed,
            filter: req.filter,
            cursor: Revision::ZERO,
            owed: false,
            out: VecDeque::new(),
            start: Some(req.start),
            quiet: true,
            _admission: admission,
        };
        // The stream is driven by its reader (tonic polls it as the
        // connection can take more): no task or channel per watcher. Boxed
        // because `unfold` moves its state in and out for every event.
        Ok(Box::pin(futures_util::stream::unfold((Box::new(watcher), present), |(mut w, present)| async move {
            w.next().await.map(|e| (present(e), (w, present)))
        })))
    }
}

struct Watcher {
    registry: Arc<Registry>,
    hub: Arc<Hub>,
    feed: broadcast::Receiver<FeedItem>,
    filter: Filter,
    cursor: Revision,
    /// A revision was filtered out since the last event sent: a Progress is
    /// owed once the watcher is idle.
    owed: bool,
    /// Events ready to go (at most a catch-up batch: `buffer` events).
    out: VecDeque<Event>,
    /// Where to start, until started.
    start: Option<Start>,
    /// Nothing was sent since the last heartbeat tick.
    quiet: bool,
    _admission: Admission,
}

impl Watcher {
    fn send(&mut self, e: Event) {
        self.quiet = false;
        self.out.push_back(e);
    }

    fn emit(&mut self, snap: &Snapshot, item: &Arc<Published>) {
        let cs = &item.changeset;
        // Unfiltered watchers share the feed's item (and its encoding).
        let shared = self.filter.is_all() && cs.activates.is_none() && !cs.changes.is_empty();
        let presented = if shared { Some(item.clone()) } else { present(snap, cs, &self.filter).map(Published::new) };
        self.cursor = cs.revision;
        match presented {
            Some(p) => {
                self.owed = false;
                self.send(Event::Changeset(p));
            }
            None => self.owed = true,
        }
    }

    /// The next event; `None` at shutdown.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if self.hub.stopping.load(Ordering::Relaxed) {
                return None;
            }
            if let Some(e) = self.out.pop_front() {
                return Some(e);
            }
            if let Some(start) = self.start.take() {
                let snap = self.registry.snapshot();
                self.cursor = match start {
                    Start::After(r) => r,
                    Start::Now => snap.revision(),
                    Start::Snapshot => {
                        self.send_snapshot(&snap);
                        snap.revision()
                    }
                };
                continue;
            }
            // Behind the head (a resume, or fell behind the feed): serve
            // from the log, a bounded batch at a time. (The head is read
            // without taking a snapshot reference: live, on every poll,
            // that is all this step costs.)
            if self.cursor < self.registry.head() {
                let snap = self.registry.snapshot();
                let batch: Vec<Arc<Published>> = snap
                    .changesets_after(self.cursor)
                    .take(self.hub.config.buffer.max(1))
                    .map(|cs| Published::new(cs.clone()))
                    .collect();
                for item in &batch {
                    self.emit(&snap, item);
                }
                continue;
            }
            // Live: take changesets from the feed in order.
            if self.owed && self.feed.is_empty() {
                self.owed = false;
                self.quiet = false;
                return Some(Event::Progress(self.cursor));
            }
            // Unconstrained: the Watch response body spends the task's
            // budget after each event it hands to h2 (see
            // `grpc::watch_route::end_turn`), and a budget-checked `recv`
            // would answer Pending and schedule one more poll of every
            // watcher just to register for the next change.
            match tokio::task::coop::unconstrained(self.feed.recv()).await {
                Ok(FeedItem::Changeset(item)) => {
                    let rev = item.changeset.revision;
                    if rev == self.cursor.next() {
                        if self.filter.is_all() && item.changeset.activates.is_none() {
                            // The common case needs no snapshot.
                            self.cursor = rev;
                            self.owed = false;
                            self.send(Event::Changeset(item));
                        } else {
                            let snap = self.registry.snapshot();
                            self.emit(&snap, &item);
                        }
                    }
                    // Older: a duplicate at the seam, skip. Newer: the feed
                    // and the log disagree about what was published; the
                    // log is authoritative (the next round reads it).
                }
                Ok(FeedItem::Tick) => {
                    if std::mem::replace(&mut self.quiet, true) {
                        self.owed = false;
                        return Some(Event::Progress(self.cursor));
                    }
                }
                Ok(FeedItem::Shutdown) | Err(broadcast::error::RecvError::Closed) => return None,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    self.hub.stats.fallbacks.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("eligibility_watch_fallbacks_total").increment(1);
                    tracing::info!(
                        skipped = n,
                        cursor = self.cursor.0,
                        "watcher fell behind the live feed; serving it from the log"
                    );
                }
            }
        }
    }

    fn send_snapshot(&mut self, snap: &Arc<Snapshot>) {
        let view = View { snap: snap.clone(), at: snap.revision(), as_of: Timestamp::now() };
        let lists: Vec<ListId> = snap
            .lists_at(view.at)
            .map(|l| l.id.clone())
            .filter(|id| self.filter.lists.is_empty() || self.filter.lists.contains(id))
            .collect();
        for id in lists {
            let Ok(l) = snap.list_at(&id, view.at) else { continue };
            let info = Registry::list_info(&view, l);
            let members = l
                .members(view.as_of, view.at)
                .filter(|(c, _)| self.filter.countries.is_empty() || self.filter.countries.contains(c))
                .map(|(country, e)| Member { country, event: e.clone() })
                .collect();
            let mut pending_revs: Vec<Revision> = l.pending(view.as_of, view.at).map(|e| e.revision).collect();
            pending_revs.sort();
            pending_revs.dedup();
            let list_filter =
                Filter { lists: [id.clone()].into(), countries: self.filter.countries.clone(), entries_only: false };
            let pending = pending_revs
                .into_iter()
                .filter_map(|r| snap.changeset(r).and_then(|cs| present(snap, cs, &list_filter)))
                .collect();
            let removed = l
                .removed(view.as_of, view.at)
                .filter(|(c, _)| self.filter.countries.is_empty() || self.filter.countries.contains(c))
                .map(|(country, e)| Member { country, event: e.clone() })
                .collect();
            self.send(Event::SnapshotList(SnapshotList { info, members, pending, removed }));
        }
        self.send(Event::SnapshotEnd(snap.revision(), view.as_of));
    }
}
