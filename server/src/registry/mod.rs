//! The registry: the whole durable history in memory as an immutable
//! [`Snapshot`], swapped atomically after each commit, and the store
//! behind it.
//!
//! Reads load the current `Arc<Snapshot>` (lock-free, via `arc-swap`) and
//! never wait on the store; [`Registry::view`] resolves a read point into a
//! [`View`] that answers every query. Writes (see [`crate::writes`]) are
//! serialized by one async mutex and come back through
//! [`Registry::publish`], which swaps the snapshot in and hands each new
//! changeset to the [`Publisher`] (the watch hub), so the registry knows
//! nothing of watchers.

mod tasks;

use std::{sync::Arc, time::Duration};

use arc_swap::ArcSwap;
use eligibility::{Consistency, Point, Revision, Timestamp};
use tokio::sync::{Mutex, MutexGuard, watch};

use crate::{
    error::{Error, Result},
    limits::Limits,
    model::Changeset,
    reads::View,
    snapshot::Snapshot,
    store::{Store, StoreError},
};

/// Receives every committed changeset, in revision order, right after the
/// snapshot that contains it is swapped in. Must not block: it runs on the
/// write path.
pub trait Publisher: Send + Sync {
    /// One committed changeset.
    fn publish(&self, cs: &Arc<Changeset>);
}

/// A publisher for a registry nobody watches (tools, tests).
pub struct NoWatchers;

impl Publisher for NoWatchers {
    fn publish(&self, _: &Arc<Changeset>) {}
}

/// The registry: the service's state.
pub struct Registry {
    store: Arc<dyn Store>,
    current: ArcSwap<Snapshot>,
    write_lock: Mutex<()>,
    head_tx: watch::Sender<Revision>,
    limits: Limits,
    publisher: Arc<dyn Publisher>,
}

/// How many changesets to read per store round trip when loading.
const LOAD_BATCH: u32 = 10_000;

impl Registry {
    /// Builds the registry from the store's whole log; every changeset
    /// committed from then on goes to `publisher`.
    pub async fn open(store: Arc<dyn Store>, limits: Limits, publisher: Arc<dyn Publisher>) -> Result<Arc<Self>> {
        let snap = Snapshot::empty(store.store_id());
        let (head_tx, _) = watch::channel(Revision::ZERO);
        let registry = Arc::new(Registry {
            store,
            current: ArcSwap::from_pointee(snap),
            write_lock: Mutex::new(()),
            head_tx,
            limits,
            publisher,
        });
        let _guard = registry.write_lock.lock().await;
        registry.catch_up().await?;
        drop(_guard);
        Ok(registry)
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// The current snapshot's revision, read without taking a reference.
    pub fn head(&self) -> Revision {
        self.current.load().revision()
    }

    /// The store id.
    pub fn store_id(&self) -> Arc<str> {
        self.current.load().store_id_shared()
    }

    /// The configured limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// A receiver of head revision changes.
    pub fn subscribe_head(&self) -> watch::Receiver<Revision> {
        self.head_tx.subscribe()
    }

    /// Waits (at most `wait`) until the head reaches `want`; whether it did.
    pub async fn wait_for_head(&self, want: Revision, wait: Duration) -> bool {
        if self.head() >= want {
            return true;
        }
        let mut rx = self.head_tx.subscribe();
        matches!(tokio::time::timeout(wait, rx.wait_for(|r| *r >= want)).await, Ok(Ok(_)))
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Serializes writers (and catching up with the store) on this replica.
    pub(crate) async fn lock_writes(&self) -> MutexGuard<'_, ()> {
        self.write_lock.lock().await
    }

    /// Resolves a read point into a view: waits for `min_revision` (at most
    /// `wait`, capped by the limits), checks `at_revision` against the head
    /// (an error names `at_field`).
    pub async fn view(&self, point: Point, wait: Option<Duration>, at_field: &'static str) -> Result<View> {
        if let Consistency::MinRevision(want) = point.consistency {
            let wait = wait.unwrap_or(self.limits.max_wait).min(self.limits.max_wait);
            if !self.wait_for_head(want, wait).await {
                return Err(Error::NotYetAtRevision { wanted: want, head: self.head() });
            }
        }
        View::resolve(self.snapshot(), point, at_field)
    }

    /// Applies every changeset the store has beyond the current snapshot.
    /// Callers hold the write lock.
    pub(crate) async fn catch_up(&self) -> Result<()> {
        let mut reading = self.read_ahead(self.head());
        loop {
            let batch = reading.await.map_err(|e| Error::Unavailable(format!("reading the log: {e}")))??;
            let Some(batch) = batch else { return Ok(()) };
            let last = batch.last().map_or(self.head(), |cs| cs.revision);
            // The next batch is read (and decoded) on another task while
            // this one is applied: loading a long history keeps both cores
            // busy instead of taking turns.
            reading = self.read_ahead(last);
            self.apply_batch(batch)?;
        }
    }

    /// Reads the batch after `head` on a task of its own.
    fn read_ahead(&self, head: Revision) -> tokio::task::JoinHandle<Result<Option<Vec<Changeset>>>> {
        let store = self.store.clone();
        tokio::spawn(async move { read_batch(&store, head).await })
    }

    /// Like [`Registry::catch_up`], for the tailer: the store is read
    /// without the write lock, which is taken only to apply what was read,
    /// so a slow or unreachable store never makes a writer wait on the
    /// tailer's read (a write fails within its own acquire timeout, every
    /// time).
    pub(crate) async fn tail(&self) -> Result<()> {
        loop {
            let from = self.head();
            let Some(batch) = read_batch(&self.store, from).await? else { return Ok(()) };
            let _guard = self.lock_writes().await;
            // A writer moved the head meanwhile: what was read may overlap
            // what it absorbed; read again from the new head.
            if self.head() == from {
                self.apply_batch(batch)?;
            }
        }
    }

    /// Applies changesets that follow the current head. Callers hold the
    /// write lock.
    fn apply_batch(&self, batch: Vec<Changeset>) -> Result<()> {
        let old = self.current.load_full();
        let mut snap = (*old).clone();
        for cs in batch {
            snap.apply_mut(cs)?;
        }
        self.publish(snap, old.revision());
        Ok(())
    }

    /// Brings a changeset this replica just committed into memory: applied
    /// directly when it follows `snap`, else (another replica committed in
    /// between) by reading the log up to it. Callers hold the write lock.
    pub(crate) async fn absorb(&self, snap: &Arc<Snapshot>, cs: Changeset) -> Result<()> {
        if cs.revision == snap.revision().next() && self.head() == snap.revision() {
            let next = snap.apply(cs)?;
            self.publish(next, snap.revision());
            Ok(())
        } else {
            let rev = cs.revision;
            self.catch_up().await?;
            if self.head() < rev {
                return Err(Error::Corrupt(format!("committed revision {rev} is not in the store's log")));
            }
            Ok(())
        }
    }

    /// Swaps in `snap` and then announces the changesets after `from` to
    /// the publisher, in order. Swapping first means a watcher that
    /// receives a changeset finds it in the snapshot too.
    fn publish(&self, snap: Snapshot, from: Revision) {
        let rev = snap.revision();
        metrics::gauge!("eligibility_revision").set(rev.0 as f64);
        let snap = Arc::new(snap);
        self.current.store(snap.clone());
        for cs in snap.changesets_after(from) {
            self.publisher.publish(cs);
        }
        self.head_tx.send_replace(rev);
    }
}

/// The next changesets after `head`, `None` at the store's head.
async fn read_batch(store: &Arc<dyn Store>, head: Revision) -> Result<Option<Vec<Changeset>>> {
    let started = std::time::Instant::now();
    let batch = store.read_after(head, LOAD_BATCH).await.map_err(store_error)?;
    metrics::histogram!("eligibility_store_seconds", "op" => "read").record(started.elapsed().as_secs_f64());
    let Some(last) = batch.last() else {
        // At the store's head: no lag (an alert on lag must clear once
        // the replica has caught up).
        metrics::gauge!("eligibility_replication_lag_seconds").set(0.0);
        return Ok(None);
    };
    // How long after its commit the newest changeset reached this
    // replica (meaningful when another replica wrote it).
    let lag = Timestamp::now().as_micros().saturating_sub(last.recorded_at.as_micros()).max(0);
    metrics::gauge!("eligibility_replication_lag_seconds").set(lag as f64 / 1e6);
    Ok(Some(batch))
}

/// A store failure as the domain reports it.
pub(crate) fn store_error(e: StoreError) -> Error {
    match e {
        StoreError::Unavailable(m) => Error::Unavailable(m),
        StoreError::Corrupt(m) => Error::Corrupt(m),
    }
}
