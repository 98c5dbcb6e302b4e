//! One watcher: the per-stream loop that turns the live feed (or, when
//! behind, the registry's log) into events, with no task or channel of its
//! own: the stream is driven by its reader.

use std::{
    collections::VecDeque,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use futures_util::Stream;

use eligibility::Revision;
use tokio::sync::broadcast;

use super::{
    Event, Filter, Origin, Start, WatchRequest,
    hub::{Admission, FeedItem, Hub, Published},
};
use crate::{
    budget::Consumer,
    error::{Error, Result},
    reads::{View, present},
    registry::Registry,
    snapshot::Snapshot,
};

/// Opens a watch: validates the request (store id, lists, resume
/// revision) and returns its stream of events, each turned into what the
/// transport sends by `present` inside the stream (one layer fewer to
/// poll, per event, per watcher, than mapping the stream afterwards).
/// The stream ends when the server shuts down, or when the slow-consumer
/// budget cuts it (the origin's consumer says so, and where to resume);
/// dropping it (the client went away) releases the watcher's place.
///
/// The stream is returned unboxed, the watcher inside it: a transport that
/// boxes its response body once holds the whole watch in one allocation.
/// (One change polls every watcher's stream, and HTTP/2 polls each once
/// more when its frame is written; with 100 000 watchers each level of
/// boxing is a cache miss per watcher per poll.)
pub async fn open<T, F>(
    registry: &Arc<Registry>,
    hub: &Arc<Hub>,
    req: WatchRequest,
    origin: Origin,
    present: F,
) -> Result<impl Stream<Item = T> + Send + use<T, F>>
where
    T: Send + 'static,
    F: Fn(Event) -> T + Send + 'static,
{
    let snap = registry.snapshot();
    if let Some(expected) = &req.store_id
        && expected != snap.store_id()
    {
        return Err(Error::StoreMismatch { expected: expected.clone(), actual: snap.store_id().to_owned() });
    }
    for l in &req.filter.lists {
        snap.list_at(l, snap.revision())?;
    }
    if let Start::After(r) = req.start
        && !registry.wait_for_head(r, hub.config.resume_wait).await
    {
        return Err(Error::ResumeAhead { requested: r, head: registry.head() });
    }
    let admission = hub.admit(origin.peer)?;
    let hub = hub.clone();
    // Subscribe before reading any snapshot: see the module docs.
    let feed = hub.feed.subscribe();
    let watcher = Watcher {
        registry: registry.clone(),
        hub,
        filter: req.filter,
        cursor: Revision::ZERO,
        owed: false,
        out: VecDeque::new(),
        start: Some(req.start),
        quiet: true,
        consumer: origin.consumer,
        _admission: admission,
    };
    // The stream is driven by its reader (tonic polls it as the
    // connection can take more): no task or channel per watcher.
    Ok(WatchStream { watcher, present, feed: Some(feed), waiting: None, wait: wait_for_feed })
}

/// What a wait on the live feed resolves to: the item (or why there is
/// none), and the receiver back.
type Received = (std::result::Result<FeedItem, broadcast::error::RecvError>, broadcast::Receiver<FeedItem>);

/// Waits for the feed's next item, owning the receiver meanwhile (tokio's
/// `recv` borrows it, and the stream cannot hold a borrow of itself).
///
/// Unconstrained: the Watch response body spends the task's budget after
/// each event it hands to h2 (see `grpc::watch_route::end_turn`), and a
/// budget-checked `recv` would answer Pending and schedule one more poll of
/// every watcher just to register for the next change.
fn wait_for_feed(mut feed: broadcast::Receiver<FeedItem>) -> impl Future<Output = Received> + Send {
    tokio::task::coop::unconstrained(async move {
        let item = feed.recv().await;
        (item, feed)
    })
}

pin_project_lite::pin_project! {
    /// A watcher as a stream: the watcher's state, and, while it waits for
    /// the live feed, that wait (which holds the receiver). All inline: no
    /// allocation per watcher beyond the body that holds it, and nothing
    /// moved per event but the receiver (two words).
    struct WatchStream<F, W, R> {
        watcher: Watcher,
        present: F,
        // The live feed's receiver, when no wait holds it.
        feed: Option<broadcast::Receiver<FeedItem>>,
        #[pin]
        waiting: Option<R>,
        // Makes a wait (`wait_for_feed`; a function item, zero-sized).
        wait: W,
    }
}

impl<T, F, W, R> Stream for WatchStream<F, W, R>
where
    F: Fn(Event) -> T,
    W: Fn(broadcast::Receiver<FeedItem>) -> R,
    R: Future<Output = Received>,
{
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut this = self.project();
        loop {
            let mut received = None;
            if let Some(wait) = this.waiting.as_mut().as_pin_mut() {
                let (item, feed) = std::task::ready!(wait.poll(cx));
                this.waiting.set(None);
                *this.feed = Some(feed);
                received = Some(item);
            }
            // (The receiver is here whenever no wait holds it.)
            let Some(feed) = this.feed.as_mut() else {
                return Poll::Ready(None);
            };
            match this.watcher.step(feed, received) {
                Step::Send(e) => {
                    this.watcher.account(&e);
                    return Poll::Ready(Some((this.present)(e)));
                }
                Step::End => return Poll::Ready(None),
                Step::Wait => {
                    if let Some(feed) = this.feed.take() {
                        this.waiting.set(Some((this.wait)(feed)));
                    }
                }
            }
        }
    }
}

/// What a watcher does next.
enum Step {
    /// Send this event.
    Send(Event),
    /// Wait for the live feed.
    Wait,
    /// The stream is over (shutdown, or cut).
    End,
}

struct Watcher {
    registry: Arc<Registry>,
    hub: Arc<Hub>,
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
    consumer: Option<Arc<Consumer>>,
    _admission: Admission,
}

impl Watcher {
    fn send(&mut self, e: Event) {
        self.quiet = false;
        self.out.push_back(e);
    }

    /// What the watcher sends for `item` (its cursor moves past it):
    /// the changeset as this watcher's filter presents it, or nothing (a
    /// Progress is then owed).
    fn emit(&mut self, snap: &Snapshot, item: &Arc<Published>) -> Option<Event> {
        let cs = &item.changeset;
        // Watchers that see it whole share the feed's item (and its encoding).
        let presented = if self.filter.passes_whole(cs) {
            Some(item.clone())
        } else {
            present(snap, cs, &self.filter).map(Published::new)
        };
        self.cursor = cs.revision;
        match presented {
            Some(p) => {
                self.owed = false;
                self.quiet = false;
                Some(Event::Changeset(p))
            }
            None => {
                self.owed = true;
                None
            }
        }
    }

    /// Counts `e` on the stream's account as sent (where its client would
    /// resume).
    fn account(&self, e: &Event) {
        if let Some(c) = &self.consumer {
            match e {
                Event::Changeset(p) => c.sent(p.changeset.revision.0),
                Event::Progress(r) | Event::SnapshotEnd(r, _) => c.sent(r.0),
                Event::SnapshotList(_) => {}
            }
        }
    }

    /// The server is shutting down, or the slow-consumer budget cut this
    /// stream.
    fn ended(&self) -> bool {
        self.hub.is_closing() || self.consumer.as_ref().is_some_and(|c| c.is_cut())
    }

    /// The next step, given the live feed's receiver and what a wait on it
    /// `received`, if the watcher was waiting.
    fn step(
        &mut self,
        feed: &mut broadcast::Receiver<FeedItem>,
        received: Option<std::result::Result<FeedItem, broadcast::error::RecvError>>,
    ) -> Step {
        use broadcast::error::{RecvError, TryRecvError};
        if let Some(item) = received {
            let item = match item {
                Ok(item) => Some(item),
                Err(RecvError::Closed) => return Step::End,
                Err(RecvError::Lagged(skipped)) => {
                    self.lagged(skipped);
                    None
                }
            };
            if let Some(step) = item.and_then(|item| self.take(item)) {
                return step;
            }
        }
        loop {
            if self.ended() {
                // What is prepared is dropped: the client resumes after
                // the last event it was sent.
                self.out.clear();
                return Step::End;
            }
            if let Some(e) = self.out.pop_front() {
                return Step::Send(e);
            }
            if let Some(start) = self.start.take() {
                self.begin(start);
                continue;
            }
            // Behind the head (a resume, or fell behind the feed): serve
            // from the log, a bounded batch at a time. (The head is read
            // without taking a snapshot reference: live, on every poll,
            // that is all this step costs.)
            if self.cursor < self.registry.head() {
                self.read_log();
                continue;
            }
            // Live: take changesets from the feed in order.
            match feed.try_recv() {
                Ok(item) => {
                    if let Some(step) = self.take(item) {
                        return step;
                    }
                }
                Err(TryRecvError::Empty) => {
                    if std::mem::take(&mut self.owed) {
                        self.quiet = false;
                        return Step::Send(Event::Progress(self.cursor));
                    }
                    return Step::Wait;
                }
                Err(TryRecvError::Closed) => return Step::End,
                Err(TryRecvError::Lagged(skipped)) => self.lagged(skipped),
            }
        }
    }

    /// An item from the live feed: what to do about it, if anything.
    fn take(&mut self, item: FeedItem) -> Option<Step> {
        match item {
            FeedItem::Changeset(item) => {
                // Straight out, not through `out`: a live watcher's buffer
                // stays unallocated. (Unless the stream ended while it
                // waited.)
                let e = self.take_live(item)?;
                Some(if self.ended() { Step::End } else { Step::Send(e) })
            }
            FeedItem::Tick => std::mem::replace(&mut self.quiet, true).then(|| {
                self.owed = false;
                Step::Send(Event::Progress(self.cursor))
            }),
            FeedItem::Shutdown => Some(Step::End),
        }
    }

    /// Sets the cursor where the watch starts (sending the snapshot first
    /// when asked).
    fn begin(&mut self, start: Start) {
        let snap = self.registry.snapshot();
        let resume_at = match start {
            Start::After(r) => r,
            Start::Now => snap.revision(),
            Start::Snapshot => {
                // (No resume point until the snapshot's end is sent.)
                self.send_snapshot(&snap);
                self.cursor = snap.revision();
                return;
            }
        };
        self.cursor = resume_at;
        // A stream cut before its first event resumes where it started.
        if let Some(c) = &self.consumer {
            c.sent(resume_at.0);
        }
    }

    /// Prepares the next batch (at most `buffer` changesets) from the log.
    fn read_log(&mut self) {
        let snap = self.registry.snapshot();
        let batch: Vec<Arc<Published>> = snap
            .changesets_after(self.cursor)
            .take(self.hub.config.buffer.max(1))
            .map(|cs| Published::new(cs.clone()))
            .collect();
        for item in &batch {
            if let Some(e) = self.emit(&snap, item) {
                self.send(e);
            }
        }
    }

    /// A changeset from the live feed: the next one is sent; an older one
    /// is a duplicate at the seam, skipped; a newer one means the feed and
    /// the log disagree about what was published, and the log is
    /// authoritative (the next round reads it).
    fn take_live(&mut self, item: Arc<Published>) -> Option<Event> {
        let rev = item.changeset.revision;
        if rev != self.cursor.next() {
            return None;
        }
        if self.filter.passes_whole(&item.changeset) {
            // The common case needs no snapshot.
            self.cursor = rev;
            self.owed = false;
            self.quiet = false;
            Some(Event::Changeset(item))
        } else {
            let snap = self.registry.snapshot();
            self.emit(&snap, &item)
        }
    }

    /// The watcher fell behind the live feed: counted, and served from the
    /// log (its cursor is behind the head now).
    fn lagged(&mut self, skipped: u64) {
        self.hub.stats.fallbacks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        metrics::counter!("eligibility_watch_fallbacks_total").increment(1);
        tracing::info!(skipped, cursor = self.cursor.0, "watcher fell behind the live feed; serving it from the log");
    }

    fn send_snapshot(&mut self, snap: &Arc<Snapshot>) {
        let view = View::head(snap.clone());
        for list in view.snapshot_lists(&self.filter) {
            self.send(Event::SnapshotList(Box::new(list)));
        }
        self.send(Event::SnapshotEnd(view.revision(), view.as_of()));
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{
            Arc,
            atomic::{AtomicUsize, Ordering},
        },
        task::{Context, Poll, Wake, Waker},
    };

    use futures_util::Stream;

    use crate::{
        app::App,
        limits::Limits,
        store::SqliteStore,
        watch::{Event, Filter, Origin, Start, WatchConfig, WatchRequest},
    };

    /// A waker that counts its wake-ups.
    #[derive(Default)]
    struct Wakes(AtomicUsize);

    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// The states a watch stream passes through, polled by hand: waiting
    /// (the receiver inside the wait), polled again with nothing new (the
    /// transport does this after every frame it writes), woken by a
    /// publish, then serving what is already queued without waiting, then
    /// waiting again.
    #[tokio::test]
    async fn a_waiting_watcher_stays_registered_through_spurious_polls_and_is_woken_by_a_publish() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
        let app = App::open(store, Limits::default(), WatchConfig::default()).await.unwrap();
        let req = WatchRequest { start: Start::Now, filter: Filter::default(), store_id: None };
        let stream = app.watch(req, Origin::default(), |e| e).await.unwrap();
        let mut stream = std::pin::pin!(stream);
        let wakes = Arc::new(Wakes::default());
        let waker = Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        let revision = |polled: Poll<Option<Event>>| match polled {
            Poll::Ready(Some(Event::Changeset(p))) => p.changeset.revision.0,
            other => panic!("expected a changeset, got {other:?}"),
        };

        for _ in 0..3 {
            assert!(stream.as_mut().poll_next(&mut cx).is_pending());
        }
        assert_eq!(wakes.0.load(Ordering::SeqCst), 0, "woken with nothing published");

        // The demo data: three changesets, revisions 1 to 3.
        assert!(crate::demo::load(&app.writer, &app.registry).await.unwrap());
        assert!(wakes.0.load(Ordering::SeqCst) >= 1, "not woken by the publish");
        for want in 1..=3 {
            assert_eq!(revision(stream.as_mut().poll_next(&mut cx)), want);
        }
        let before = wakes.0.load(Ordering::SeqCst);
        assert!(stream.as_mut().poll_next(&mut cx).is_pending());
        assert_eq!(wakes.0.load(Ordering::SeqCst), before);

        // Waiting again, and woken again: the receiver came back from the
        // first wait and went into the second.
        app.shutdown();
        assert!(wakes.0.load(Ordering::SeqCst) > before, "not woken by the shutdown");
        assert!(matches!(stream.as_mut().poll_next(&mut cx), Poll::Ready(None)));
    }
}
