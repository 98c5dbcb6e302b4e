//! The auto-resuming change stream.
//!
//! [`Client::watch`] returns a [`WatchStream`]: a `Stream` of
//! [`WatchEvent`]s in revision order. Behind it a task holds the server's
//! Watch call; when the call fails with a transient error (server restart,
//! network cut) it reconnects with exponential backoff and resumes after
//! the last revision it yielded, naming the store id it saw, so the
//! consumer never sees a gap, a duplicate, or a revision going backwards.
//! It gives up (yields the error and ends) when resuming is not safe or not
//! allowed: another store, an unknown list, bad credentials. A server that
//! ends the stream because it was read too slowly (`RESOURCE_EXHAUSTED`,
//! `SLOW_CONSUMER`) is resumed from like any other interruption.
//!
//! The task reads the call as fast as events arrive and queues them (up
//! to 256) for the consumer, so HTTP/2 never holds many unread frames.
//! (A hand-written HTTP/2 client that falls behind many small Watch events
//! can have its connection ended by its own h2 library, which counts
//! small DATA frames held unread as a flood: h2 0.4.20 sends GOAWAY
//! `ENHANCE_YOUR_CALM` "too_many_data_frames". Read promptly, or raise the
//! library's data-frame budget.)

use std::{
    collections::BTreeSet,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use eligibility::{
    Country, ListId, Revision, Timestamp,
    proto::v1::{self as pb, watch_event::Event as E, watch_start::Start},
};
use tokio::sync::{mpsc, watch};
use tokio_stream::{Stream, StreamExt};

use crate::{
    client::{Client, RetryPolicy},
    error::{Error, Result},
    types::{self, Changeset, Entry, List},
};

/// Where a watch starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchStart {
    /// Every change after this revision (0: all history).
    After(Revision),
    /// Only changes recorded from now on.
    Now,
    /// The current state of the filtered lists first, then every change.
    Snapshot,
}

/// What to watch and how to reconnect.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct WatchOptions {
    /// Where to start.
    pub start: WatchStart,
    /// Only these lists (empty: all).
    pub lists: BTreeSet<ListId>,
    /// Only entry changes about these countries (empty: all).
    pub countries: BTreeSet<Country>,
    /// The store the cursor belongs to; set automatically after the first
    /// event (a resumed stream refuses a different store).
    pub store_id: Option<String>,
    /// Reconnect backoff (its `max_attempts` bounds consecutive failed
    /// reconnects; 0 means retry forever).
    pub reconnect: RetryPolicy,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            start: WatchStart::Now,
            lists: BTreeSet::new(),
            countries: BTreeSet::new(),
            store_id: None,
            reconnect: RetryPolicy {
                max_attempts: 0,
                initial_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(5),
            },
        }
    }
}

impl WatchOptions {
    /// Watch from `start`.
    pub fn from(start: WatchStart) -> Self {
        WatchOptions { start, ..Default::default() }
    }

    /// Only this list (may be repeated).
    pub fn with_list(mut self, list: ListId) -> Self {
        self.lists.insert(list);
        self
    }

    /// Only this country (may be repeated).
    pub fn with_country(mut self, country: Country) -> Self {
        self.countries.insert(country);
        self
    }

    /// Refuse any store but this one.
    pub fn with_store_id(mut self, id: impl Into<String>) -> Self {
        self.store_id = Some(id.into());
        self
    }
}

/// One list's state in a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SnapshotList {
    /// Metadata.
    pub list: List,
    /// Members at the snapshot point.
    pub entries: Vec<Entry>,
    /// Countries whose deciding change is a removal.
    pub removed: Vec<Entry>,
    /// Changesets recorded but not yet in effect.
    pub pending: Vec<Changeset>,
}

/// An event of the change stream.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WatchEvent {
    /// A changeset (filtered). Its revision is above every revision yielded
    /// before.
    Changeset(Changeset),
    /// Everything through this revision has been delivered.
    Progress(Revision),
    /// The state at a revision (snapshot start): every list, whole; never
    /// a partial snapshot.
    Snapshot {
        /// The lists.
        lists: Vec<SnapshotList>,
        /// Its revision.
        revision: Revision,
        /// The valid time it was evaluated at.
        as_of: Timestamp,
    },
}

impl WatchEvent {
    /// The revision the consumer's cursor is at after this event.
    pub fn revision(&self) -> Revision {
        match self {
            WatchEvent::Changeset(c) => c.revision,
            WatchEvent::Progress(r) => *r,
            WatchEvent::Snapshot { revision, .. } => *revision,
        }
    }
}

/// The stream's connection state.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionState {
    /// Connecting for the first time.
    Connecting,
    /// The Watch call is open.
    Connected,
    /// The call failed; reconnecting (attempt number, last error).
    Reconnecting {
        /// Consecutive failed attempts.
        attempt: u32,
        /// Why.
        error: String,
    },
    /// The stream ended (an error was yielded, or the server shut the
    /// stream down and no reconnect is allowed).
    Ended,
}

/// The auto-resuming change stream: a `Stream` of `Result<WatchEvent>`.
/// Dropping it cancels the watch.
pub struct WatchStream {
    rx: mpsc::Receiver<Result<WatchEvent>>,
    state: watch::Receiver<ConnectionState>,
    task: tokio::task::JoinHandle<()>,
    store_id: Option<String>,
}

impl WatchStream {
    /// The store the stream comes from, as the server named it when the
    /// stream opened (every resume is pinned to it); `None` from a server
    /// that does not name it (it is then learned from the first event
    /// that carries it).
    pub fn store_id(&self) -> Option<&str> {
        self.store_id.as_deref()
    }

    /// The connection state now.
    pub fn state(&self) -> ConnectionState {
        self.state.borrow().clone()
    }

    /// A receiver of connection-state changes.
    pub fn state_changes(&self) -> watch::Receiver<ConnectionState> {
        self.state.clone()
    }
}

impl Drop for WatchStream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Stream for WatchStream {
    type Item = Result<WatchEvent>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl Client {
    /// Opens an auto-resuming watch (see [`WatchStream`]). The first call is
    /// made before this returns, so a request the server refuses (unknown
    /// list, bad country, another store) fails here.
    pub async fn watch(&self, options: WatchOptions) -> Result<WatchStream> {
        let (tx, rx) = mpsc::channel(256);
        let (state_tx, state) = watch::channel(ConnectionState::Connecting);
        let mut w = Resumer { client: self.clone(), options, cursor: None, state: state_tx, tx };
        // The first call pins the store (the server names it in the
        // response's metadata), so even a resume before any progress event
        // names it, without a call of its own.
        let first = w.open().await?;
        let store_id = w.options.store_id.clone();
        let task = tokio::spawn(async move { w.run(first).await });
        Ok(WatchStream { rx, state, task, store_id })
    }
}

struct Resumer {
    client: Client,
    options: WatchOptions,
    /// The last revision yielded (None before the first).
    cursor: Option<Revision>,
    state: watch::Sender<ConnectionState>,
    tx: mpsc::Sender<Result<WatchEvent>>,
}

/// Whether a failure ends the watch. Transient failures are retried, and so
/// is `RESOURCE_EXHAUSTED`: the server was at its watcher limit, or ended
/// this stream because it was read too slowly (`SLOW_CONSUMER`); both
/// pass, and the watch resumes after the last revision it received.
fn is_fatal(e: &Error) -> bool {
    !(e.is_transient() || matches!(e, Error::ResourceExhausted(_)))
}

impl Resumer {
    fn request(&self) -> pb::WatchRequest {
        let start = match (self.cursor, self.options.start) {
            (Some(r), _) => Start::AfterRevision(r.0),
            (None, WatchStart::After(r)) => Start::AfterRevision(r.0),
            (None, WatchStart::Now) => Start::Now(true),
            (None, WatchStart::Snapshot) => Start::Snapshot(true),
        };
        pb::WatchRequest {
            start: Some(pb::WatchStart { start: Some(start) }),
            list_ids: self.options.lists.iter().map(|l| l.to_string()).collect(),
            countries: self.options.countries.iter().map(|c| c.to_string()).collect(),
            store_id: self.options.store_id.clone().unwrap_or_default(),
        }
    }

    async fn open(&mut self) -> Result<tonic::Streaming<pb::WatchEvent>> {
        let expected = self.options.store_id.clone();
        match self.client.raw_query().watch(self.request()).await {
            Ok(r) => {
                let named = r.metadata().get(eligibility::STORE_ID_METADATA).and_then(|v| v.to_str().ok());
                if let Some(id) = named
                    && !self.note_store(id)
                {
                    return Err(self.mismatch(id));
                }
                self.state.send_replace(ConnectionState::Connected);
                Ok(r.into_inner())
            }
            Err(s) => Err(match Error::from(s) {
                Error::StoreMismatch { actual, .. } => {
                    Error::StoreMismatch { expected: expected.unwrap_or_default(), actual }
                }
                e => e,
            }),
        }
    }

    /// Yields an event unless it would go back in revision; returns false
    /// when the consumer is gone.
    async fn yield_event(&mut self, e: WatchEvent) -> bool {
        let r = e.revision();
        if let Some(c) = self.cursor {
            // Never back, never twice. (Progress at the cursor is harmless
            // but useless to the consumer.)
            if r < c || (r == c && !matches!(e, WatchEvent::Snapshot { .. })) {
                return true;
            }
        }
        self.cursor = Some(r);
        self.tx.send(Ok(e)).await.is_ok()
    }

    async fn fail(&mut self, e: Error) {
        self.state.send_replace(ConnectionState::Ended);
        let _ = self.tx.send(Err(e)).await;
    }

    async fn run(mut self, first: tonic::Streaming<pb::WatchEvent>) {
        let mut stream = Some(first);
        let mut attempt: u32 = 0;
        loop {
            let s = match stream.take() {
                Some(s) => s,
                None => match self.open().await {
                    Ok(s) => s,
                    Err(e) if is_fatal(&e) => return self.fail(e).await,
                    Err(e) => {
                        attempt += 1;
                        if !self.backoff(attempt, e).await {
                            return;
                        }
                        continue;
                    }
                },
            };
            match self.pump(s).await {
                Pumped::ConsumerGone => return,
                Pumped::Failed(e) if is_fatal(&e) => return self.fail(e).await,
                Pumped::Failed(e) => {
                    attempt = if self.cursor.is_some() { 1 } else { attempt + 1 };
                    if !self.backoff(attempt, e).await {
                        return;
                    }
                }
                Pumped::Ended => {
                    // The server ended the stream (shutdown): resume
                    // elsewhere or after its restart.
                    attempt = 1;
                    if !self.backoff(attempt, Error::Unavailable("the server ended the stream".into())).await {
                        return;
                    }
                }
            }
        }
    }

    /// Waits before the next reconnect; false when the policy's attempts
    /// are spent (the error is then yielded) or the consumer is gone.
    async fn backoff(&mut self, attempt: u32, e: Error) -> bool {
        let policy = &self.options.reconnect;
        if policy.max_attempts != 0 && attempt >= policy.max_attempts {
            self.fail(e).await;
            return false;
        }
        self.state.send_replace(ConnectionState::Reconnecting { attempt, error: e.to_string() });
        tokio::select! {
            _ = tokio::time::sleep(policy.backoff(attempt)) => true,
            _ = self.tx.closed() => false,
        }
    }

    async fn pump(&mut self, mut s: tonic::Streaming<pb::WatchEvent>) -> Pumped {
        let mut snapshot: Vec<SnapshotList> = Vec::new();
        loop {
            let item = tokio::select! {
                i = s.next() => i,
                _ = self.tx.closed() => return Pumped::ConsumerGone,
            };
            let ev = match item {
                None => return Pumped::Ended,
                Some(Err(status)) => return Pumped::Failed(Error::from(status)),
                Some(Ok(ev)) => ev,
            };
            let event = match ev.event {
                Some(E::Changeset(c)) => match types::changeset(c) {
                    Ok(c) => WatchEvent::Changeset(c),
                    Err(e) => return Pumped::Failed(e),
                },
                Some(E::Progress(p)) => {
                    if !self.note_store(&p.store_id) {
                        return Pumped::Failed(self.mismatch(&p.store_id));
                    }
                    WatchEvent::Progress(Revision(p.revision))
                }
                Some(E::SnapshotList(l)) => {
                    match snapshot_list(l) {
                        Ok(l) => snapshot.push(l),
                        Err(e) => return Pumped::Failed(e),
                    }
                    continue;
                }
                Some(E::SnapshotEnd(end)) => {
                    if !self.note_store(&end.store_id) {
                        return Pumped::Failed(self.mismatch(&end.store_id));
                    }
                    let as_of = match types::ts(end.as_of.as_ref(), "snapshot_end.as_of") {
                        Ok(t) => t,
                        Err(e) => return Pumped::Failed(e),
                    };
                    WatchEvent::Snapshot {
                        lists: std::mem::take(&mut snapshot),
                        revision: Revision(end.revision),
                        as_of,
                    }
                }
                None => continue,
            };
            if !self.yield_event(event).await {
                return Pumped::ConsumerGone;
            }
        }
    }

    /// Records the store id on first sight; false if it differs.
    fn note_store(&mut self, id: &str) -> bool {
        match &self.options.store_id {
            None => {
                self.options.store_id = Some(id.to_owned());
                true
            }
            Some(known) => known == id,
        }
    }

    fn mismatch(&self, actual: &str) -> Error {
        Error::StoreMismatch { expected: self.options.store_id.clone().unwrap_or_default(), actual: actual.to_owned() }
    }
}

enum Pumped {
    ConsumerGone,
    Failed(Error),
    Ended,
}

fn snapshot_list(l: pb::SnapshotList) -> Result<SnapshotList> {
    Ok(SnapshotList {
        list: types::list(l.list.ok_or_else(|| Error::InvalidResponse("snapshot list without metadata".into()))?)?,
        entries: l.entries.into_iter().map(types::entry).collect::<Result<_>>()?,
        removed: l.removed.into_iter().map(types::entry).collect::<Result<_>>()?,
        pending: l.pending.into_iter().map(types::changeset).collect::<Result<_>>()?,
    })
}
