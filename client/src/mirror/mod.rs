//! A local, in-memory replica of some lists that answers checks
//! in-process.
//!
//! The mirror starts with a snapshot-first watch (the state of its lists at
//! revision R, as of time T0, plus what is recorded but not yet in effect)
//! and applies every later changeset in order through the auto-resuming
//! [`WatchStream`]. It answers for any valid time from T0 on at its latest
//! revision, exactly as the server would: the snapshot carries each
//! country's deciding change (for members and for removed countries) and
//! every pending change, and the server's rule only ever needs the last
//! applicable change. Earlier points, or exact past revisions, are the
//! server's to answer.
//!
//! Reads are lock-free (`arc-swap`) and allocate nothing. Past its
//! staleness bound (no word from the server for that long) a check fails
//! closed: an error, never a possibly stale "eligible".

mod state;

use std::{
    collections::BTreeSet,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicI64, Ordering},
    },
    time::Duration,
};

use arc_swap::ArcSwap;
use eligibility::{Country, ListId, Revision, Timestamp};
use tokio::sync::{broadcast, watch};
use tokio_stream::StreamExt;

use self::state::{EMPTY, MState, find, from_snapshot, now};
use crate::{
    client::{Client, RetryPolicy},
    error::{Error, Result},
    types::{Changeset, DecidingChange, DecisionReason, EntryAction, List},
    watch::{ConnectionState, WatchEvent, WatchOptions, WatchStart, WatchStream},
};

/// Mirror settings.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct MirrorOptions {
    /// The lists to mirror (empty: all, including lists created later).
    pub lists: BTreeSet<ListId>,
    /// Fail closed when the server has not been heard from for this long
    /// (it sends a heartbeat every 10 s by default, so keep this above
    /// that).
    pub max_staleness: Duration,
    /// Reconnect backoff.
    pub reconnect: RetryPolicy,
}

impl Default for MirrorOptions {
    fn default() -> Self {
        MirrorOptions {
            lists: BTreeSet::new(),
            max_staleness: Duration::from_secs(60),
            reconnect: WatchOptions::default().reconnect,
        }
    }
}

impl MirrorOptions {
    /// Mirror this list (may be repeated).
    pub fn with_list(mut self, list: ListId) -> Self {
        self.lists.insert(list);
        self
    }

    /// The staleness bound.
    pub fn with_max_staleness(mut self, d: Duration) -> Self {
        self.max_staleness = d;
        self
    }
}

/// A mirror's answer on the hot path: plain values, nothing to free.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Verdict {
    /// May items of the list go to the country?
    pub eligible: bool,
    /// Why.
    pub reason: DecisionReason,
    /// Whether the membership carries conditions (e.g. "government end
    /// users only"): read them with [`Mirror::explain`] before acting.
    pub conditional: bool,
    /// The revision of the deciding change, if any.
    pub deciding_revision: Option<Revision>,
    /// The mirror's revision when it answered.
    pub revision: Revision,
}

/// A mirror's full answer: the verdict with the deciding change and the
/// conditions.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MirrorDecision {
    /// May items of the list go to the country?
    pub eligible: bool,
    /// Why.
    pub reason: DecisionReason,
    /// The deciding change, if any (shared, not copied).
    pub deciding_change: Option<Arc<DecidingChange>>,
    /// Conditions of membership ("" when none or not a member).
    pub conditions: Arc<str>,
    /// The mirror's revision when it answered.
    pub revision: Revision,
}

/// A changeset the mirror applied, for applications that react to changes
/// (e.g. freeze open deals with a removed country).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AppliedChange {
    /// The changeset (for an activation entry: carrying the changes that
    /// take effect now).
    pub changeset: Arc<Changeset>,
    /// True for an activation entry: recorded earlier, in effect from now.
    pub activation: bool,
    /// True when the changes are in effect now (false for a changeset
    /// effective in the future: its activation follows at its time).
    pub in_effect: bool,
}

/// A mirror's health.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MirrorStatus {
    /// Whether the watch is connected.
    pub connected: bool,
    /// Whether the first snapshot has arrived.
    pub ready: bool,
    /// The mirror's revision.
    pub revision: Revision,
    /// When the server was last heard from (None before the first time).
    pub last_contact: Option<Timestamp>,
    /// The store being mirrored.
    pub store_id: String,
    /// The stream's state (e.g. the last error while reconnecting).
    pub connection: ConnectionState,
}

struct Inner {
    state: ArcSwap<MState>,
    /// Microseconds since the epoch of the last word from the server; 0 =
    /// never.
    last_contact: AtomicI64,
    connected: AtomicBool,
    max_staleness_us: i64,
    max_staleness: Duration,
    revision_tx: watch::Sender<Revision>,
    applied_tx: broadcast::Sender<AppliedChange>,
    connection: watch::Sender<ConnectionState>,
    filter: BTreeSet<ListId>,
    store_id: String,
}

/// A local replica of some lists (see the module docs). Cheap to clone;
/// the background task stops when the last clone is dropped.
#[derive(Clone)]
pub struct Mirror {
    inner: Arc<Inner>,
    _task: Arc<TaskGuard>,
}

struct TaskGuard(tokio::task::JoinHandle<()>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Client {
    /// Starts a mirror and waits for its first snapshot.
    pub async fn mirror(&self, options: MirrorOptions) -> Result<Mirror> {
        let mut wopts = WatchOptions::from(WatchStart::Snapshot);
        wopts.lists = options.lists.clone();
        wopts.reconnect = options.reconnect.clone();
        let stream = self.watch(wopts).await?;
        // The stream names its store as it opens; a server too old to say
        // is asked.
        let store_id = match stream.store_id() {
            Some(id) => id.to_owned(),
            None => self.lists(eligibility::Point::latest()).await?.header.store_id,
        };
        let (revision_tx, _) = watch::channel(Revision::ZERO);
        let (applied_tx, _) = broadcast::channel(1024);
        let (connection, _) = watch::channel(ConnectionState::Connecting);
        let inner = Arc::new(Inner {
            state: ArcSwap::from_pointee(MState::default()),
            last_contact: AtomicI64::new(0),
            connected: AtomicBool::new(false),
            max_staleness_us: options.max_staleness.as_micros().min(i64::MAX as u128) as i64,
            max_staleness: options.max_staleness,
            revision_tx,
            applied_tx,
            connection,
            filter: options.lists,
            store_id,
        });
        let mut ready = inner.revision_tx.subscribe();
        let task = tokio::spawn(run(inner.clone(), stream));
        let mirror = Mirror { inner, _task: Arc::new(TaskGuard(task)) };
        // Wait for the snapshot (or the stream's end with an error).
        loop {
            if mirror.inner.state.load().ready {
                return Ok(mirror);
            }
            if *mirror.inner.connection.borrow() == ConnectionState::Ended {
                return Err(Error::Unavailable("the mirror's watch ended before its snapshot".into()));
            }
            if ready.changed().await.is_err() {
                return Err(Error::Unavailable("the mirror's watch ended before its snapshot".into()));
            }
        }
    }
}

impl Mirror {
    /// May `country` receive items of `list` now? Answered in-process, from
    /// memory, without allocating. "Now" is the system's coarse real-time
    /// clock (a few milliseconds of resolution on Linux), so a change takes
    /// effect in the mirror within milliseconds of its effective time.
    pub fn check(&self, list: &ListId, country: Country) -> Result<Verdict> {
        let now = now();
        self.fresh(now)?;
        let state = self.inner.state.load();
        let (l, deciding) = find(&state, list, country, now)?;
        let (eligible, reason) = eligibility::decide(l.meta.mode, deciding.map(|e| e.action));
        Ok(Verdict {
            eligible,
            reason,
            conditional: deciding.is_some_and(|e| e.action == EntryAction::Add && !e.conditions.is_empty()),
            deciding_revision: deciding.map(|e| e.revision),
            revision: state.revision,
        })
    }

    /// The full answer now: the verdict, the deciding change and the
    /// conditions.
    pub fn explain(&self, list: &ListId, country: Country) -> Result<MirrorDecision> {
        let now = now();
        self.fresh(now)?;
        self.decide(list, country, now)
    }

    /// The full answer at valid time `as_of` (at the mirror's revision).
    /// `as_of` must not precede the mirror's snapshot time.
    pub fn explain_at(&self, list: &ListId, country: Country, as_of: Timestamp) -> Result<MirrorDecision> {
        self.fresh(now())?;
        let base = self.inner.state.load().base;
        if base.is_none_or(|b| as_of < b) {
            return Err(Error::NotInMirror(format!(
                "as_of {as_of} precedes the mirror's snapshot ({}); ask the server",
                base.map(|b| b.to_string()).unwrap_or_default()
            )));
        }
        self.decide(list, country, as_of)
    }

    fn fresh(&self, now: Timestamp) -> Result<()> {
        let last = self.inner.last_contact.load(Ordering::Acquire);
        if last == 0 {
            return Err(Error::NotReady);
        }
        let age = now.as_micros().saturating_sub(last);
        if age > self.inner.max_staleness_us {
            return Err(Error::Stale { age: Duration::from_micros(age.max(0) as u64), max: self.inner.max_staleness });
        }
        Ok(())
    }

    fn decide(&self, list: &ListId, country: Country, as_of: Timestamp) -> Result<MirrorDecision> {
        let state = self.inner.state.load();
        let (l, deciding) = find(&state, list, country, as_of)?;
        // The rule is the API crate's, the server's own: they cannot differ.
        let (eligible, reason) = eligibility::decide(l.meta.mode, deciding.map(|e| e.action));
        Ok(MirrorDecision {
            eligible,
            reason,
            conditions: match deciding {
                Some(e) if e.action == EntryAction::Add => e.conditions.clone(),
                // Shared, so the answer allocates nothing.
                _ => EMPTY.clone(),
            },
            deciding_change: deciding.map(|e| e.deciding.clone()),
            revision: state.revision,
        })
    }

    /// The mirror's health.
    pub fn status(&self) -> MirrorStatus {
        let state = self.inner.state.load();
        let last = self.inner.last_contact.load(Ordering::Acquire);
        MirrorStatus {
            connected: self.inner.connected.load(Ordering::Acquire),
            ready: state.ready,
            revision: state.revision,
            last_contact: (last != 0).then(|| Timestamp::from_micros(last)).flatten(),
            store_id: state.store_id.clone(),
            connection: self.inner.connection.borrow().clone(),
        }
    }

    /// The mirror's revision.
    pub fn revision(&self) -> Revision {
        self.inner.state.load().revision
    }

    /// The mirrored lists' metadata.
    pub fn lists(&self) -> Vec<List> {
        self.inner.state.load().lists.iter().map(|l| l.meta.clone()).collect()
    }

    /// Waits until the mirror has applied `revision` (e.g. the revision a
    /// write returned), at most `timeout`.
    pub async fn wait_for(&self, revision: Revision, timeout: Duration) -> Result<Revision> {
        let mut rx = self.inner.revision_tx.subscribe();
        match tokio::time::timeout(timeout, rx.wait_for(|r| *r >= revision)).await {
            Ok(Ok(r)) => Ok(*r),
            _ => Err(Error::Unavailable(format!(
                "the mirror did not reach revision {revision} within {timeout:?} (it is at {})",
                self.revision()
            ))),
        }
    }

    /// Every changeset the mirror applies from now on, in order. A
    /// receiver that falls more than 1 024 changes behind gets
    /// `RecvError::Lagged` and should re-read state with [`Mirror::check`].
    pub fn subscribe(&self) -> broadcast::Receiver<AppliedChange> {
        self.inner.applied_tx.subscribe()
    }
}

async fn run(inner: Arc<Inner>, mut stream: WatchStream) {
    let mut conn = stream.state_changes();
    loop {
        let item = tokio::select! {
            i = stream.next() => i,
            r = conn.changed() => {
                if r.is_err() { return; }
                let c = conn.borrow().clone();
                inner.connected.store(c == ConnectionState::Connected, Ordering::Release);
                inner.connection.send_replace(c);
                continue;
            }
        };
        let event = match item {
            None => break,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "eligibility mirror: the watch ended; checks will fail closed once stale");
                break;
            }
            Some(Ok(e)) => e,
        };
        inner.connected.store(true, Ordering::Release);
        inner.last_contact.store(Timestamp::now().as_micros(), Ordering::Release);
        let old = inner.state.load_full();
        let mut applied = None;
        let next = match event {
            WatchEvent::Snapshot { lists, revision, as_of } => {
                Some(from_snapshot(lists, revision, as_of, inner.store_id.clone()))
            }
            WatchEvent::Progress(r) => (r > old.revision).then(|| MState { revision: r, ..(*old).clone() }),
            WatchEvent::Changeset(c) => {
                let s = old.with_changeset(&c, &inner.filter);
                let now = Timestamp::now();
                applied = Some(AppliedChange {
                    activation: c.activates.is_some(),
                    in_effect: c.effective_at <= now,
                    changeset: Arc::new(c),
                });
                Some(s)
            }
        };
        if let Some(n) = next {
            let rev = n.revision;
            inner.state.store(Arc::new(n));
            inner.revision_tx.send_replace(rev);
        }
        if let Some(a) = applied {
            let _ = inner.applied_tx.send(a);
        }
    }
    inner.connected.store(false, Ordering::Release);
    inner.connection.send_replace(ConnectionState::Ended);
}
