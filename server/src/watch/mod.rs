//! The change stream: every committed changeset goes on one bounded live
//! feed (the [`Hub`]); each [`Watcher`](watcher) reads it in order, falls
//! back to the registry's in-memory log when it falls behind, and rejoins.
//!
//! A watcher subscribes to the feed *before* it reads the snapshot, so
//! nothing can fall between the two; duplicates at the seam are dropped by
//! revision. A watcher that falls behind the feed (its client reads slowly,
//! or it starts far back) is served from the registry's log, which holds
//! the whole durable history in memory, then rejoins the feed: the writer
//! never waits for a watcher, memory per watcher is bounded by its output
//! buffer, and no event is lost (etcd's unsynced-watcher design).
//!
//! Depends on the registry and the read side; neither knows of it (the
//! hub receives changesets as the registry's [`crate::registry::Publisher`]).

mod hub;
mod watcher;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use eligibility::{Revision, Timestamp};

pub use self::{
    hub::{Encoding, FeedItem, Hub, Published, WatchStats},
    watcher::open,
};
pub use crate::reads::{Filter, SnapshotList};

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

/// Who watches: the client's address (for the per-connection limit) and
/// the stream's account on its connection (for the slow-consumer budget:
/// a cut stream ends, and the account says where its client resumes).
#[derive(Default)]
pub struct Origin {
    /// The client's address.
    pub peer: Option<SocketAddr>,
    /// The stream's account.
    pub consumer: Option<Arc<crate::budget::Consumer>>,
}

/// What a watcher receives.
#[derive(Clone, Debug)]
pub enum Event {
    /// A changeset (filtered).
    Changeset(Arc<Published>),
    /// Everything through this revision has been sent.
    Progress(Revision),
    /// Snapshot-first: one list's state (boxed: an event is otherwise a
    /// pointer or two, and watchers hold events in their buffers).
    SnapshotList(Box<SnapshotList>),
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
