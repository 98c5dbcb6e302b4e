//! The memory budget for slow consumers, and what a connection is doing.
//!
//! Every change stream (gRPC Watch, server-sent events) hands its events to
//! the transport, which buffers them until the client's socket takes them.
//! A client that stops reading leaves them there: bounded per stream (the
//! HTTP/2 send buffer, HTTP/1.1's write buffer), but not over all streams.
//! So each connection keeps a [`Ledger`]: bytes its streams handed over
//! (counted by the streams' bodies) minus bytes written to its socket
//! (counted by the connection's IO), clamped at zero, and the [`Budget`]
//! keeps their sum. Past the budget, the connections holding the most are
//! cut: their streams end at their next event with a resumable refusal
//! ("slow consumer: resume after revision N"), and a connection that still
//! holds unsent bytes a grace period later is closed, which frees what the
//! transport buffered for it. Nothing is lost: the client crate's watch and
//! a browser's `EventSource` resume after the last revision they received.
//!
//! Bytes shared between streams (an event encoded once for every watcher)
//! are counted once per stream: the budget over-counts shared memory, so
//! it bounds the real figure from above.
//!
//! The ledger also counts the connection's requests in progress, for the
//! idle timeout (a connection with no request or stream for that long is
//! closed), and holds the connection task's waker, so that closing a
//! connection whose client stopped reading takes effect at once.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    task::Waker,
    time::Duration,
};

use futures_util::task::AtomicWaker;

use crate::telemetry::Throttled;

/// A connection that still holds more than this, a grace period after its
/// streams were cut, is closed.
const CLOSE_ABOVE: u64 = 64 << 10;

/// How often an over-budget server looks for consumers to cut, at most.
const SCAN_EVERY: Duration = Duration::from_millis(100);

/// `Budget::last_scan` before the first scan.
const NEVER: u64 = u64::MAX;

/// Settings of the budget.
#[derive(Clone, Debug)]
pub struct BudgetConfig {
    /// Bytes held for slow consumers, all connections together.
    pub limit: u64,
    /// Time a cut connection has to take what it was sent before it is
    /// closed.
    pub grace: Duration,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig { limit: 256 << 20, grace: Duration::from_secs(5) }
    }
}

/// The budget: see the module docs.
pub struct Budget {
    config: BudgetConfig,
    /// Bytes held, all connections.
    total: AtomicU64,
    ledgers: Mutex<HashMap<u64, Weak<Ledger>>>,
    next_id: AtomicU64,
    /// (Tokio's clock, which tests can pause.)
    epoch: tokio::time::Instant,
    /// When the last scan ran (ms since `epoch`).
    last_scan: AtomicU64,
    /// Cuts, logged at most once per interval.
    cuts: Throttled,
}

impl Budget {
    /// A budget with `config`.
    pub fn new(config: BudgetConfig) -> Arc<Self> {
        Arc::new(Budget {
            config,
            total: AtomicU64::new(0),
            ledgers: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            epoch: tokio::time::Instant::now(),
            last_scan: AtomicU64::new(NEVER),
            cuts: Throttled::default(),
        })
    }

    /// Bytes held for slow consumers now.
    pub fn held(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Closes every connection (the end of a shutdown's drain: what is
    /// still open then would otherwise keep the process waiting).
    pub fn close_all(&self) -> usize {
        let open: Vec<Arc<Ledger>> = self.lock().values().filter_map(Weak::upgrade).collect();
        for l in &open {
            l.close();
        }
        open.len()
    }

    /// The ledger of a new connection.
    pub fn open(self: &Arc<Self>) -> Arc<Ledger> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let ledger = Arc::new(Ledger {
            id,
            budget: self.clone(),
            held: AtomicU64::new(0),
            active: AtomicUsize::new(0),
            idle_since: AtomicU64::new(self.now_ms()),
            cuts: AtomicU64::new(0),
            cut_pending: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            waker: AtomicWaker::new(),
            writes: AtomicU64::new(0),
            // Not yet seen: the first stream's first frame wakes the writer.
            writes_seen: AtomicU64::new(u64::MAX),
        });
        self.lock().insert(id, Arc::downgrade(&ledger));
        ledger
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Weak<Ledger>>> {
        self.ledgers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Adds `n` to the total; whether it is over the budget now.
    fn add(&self, n: u64) -> bool {
        let before = self.total.fetch_add(n, Ordering::Relaxed);
        let after = before.wrapping_add(n);
        if before >> 20 != after >> 20 {
            metrics::gauge!("eligibility_slow_consumer_bytes").set(after as f64);
        }
        after > self.config.limit
    }

    fn sub(&self, n: u64) {
        let before = self.total.fetch_sub(n, Ordering::Relaxed);
        let after = before.saturating_sub(n);
        if before >> 20 != after >> 20 {
            metrics::gauge!("eligibility_slow_consumer_bytes").set(after as f64);
        }
    }

    /// Over budget: cut the connections holding the most, at most once per
    /// [`SCAN_EVERY`] (a scan walks every connection).
    fn over(&self) {
        let now = self.now_ms();
        let last = self.last_scan.load(Ordering::Relaxed);
        if (last != NEVER && now < last + SCAN_EVERY.as_millis() as u64)
            || self.last_scan.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_err()
        {
            return;
        }
        let mut held: Vec<(u64, Arc<Ledger>)> = Vec::new();
        // Bytes of connections already cut and waiting out their grace:
        // they stop growing, and will be freed or closed.
        let mut pending = 0;
        // Upgraded with the lock held, looked at after it is released: a
        // ledger whose connection closes meanwhile is dropped here, and its
        // drop takes the lock.
        let ledgers: Vec<Arc<Ledger>> = self.lock().values().filter_map(Weak::upgrade).collect();
        for ledger in ledgers {
            let h = ledger.held.load(Ordering::Relaxed);
            if ledger.is_closed() {
                continue;
            }
            if ledger.cut_pending.load(Ordering::Relaxed) {
                pending += h;
            } else if h > 0 {
                held.push((h, ledger));
            }
        }
        // Down to nine tenths, so a server at its budget does not cut one
        // consumer per scan.
        let target = self.config.limit / 10 * 9;
        let mut total = self.held().saturating_sub(pending);
        held.sort_unstable_by_key(|h| std::cmp::Reverse(h.0));
        for (h, ledger) in held {
            if total <= target {
                break;
            }
            total = total.saturating_sub(h);
            self.cut(&ledger, h);
        }
    }

    /// Ends the streams of `ledger`'s connection; closes the connection if
    /// it still holds unsent bytes after the grace period.
    fn cut(&self, ledger: &Arc<Ledger>, held: u64) {
        ledger.cuts.fetch_add(1, Ordering::Relaxed);
        ledger.cut_pending.store(true, Ordering::Relaxed);
        metrics::counter!("eligibility_slow_consumers_cut_total").increment(1);
        crate::prometheus::exhausted("slow_consumer");
        self.log(held);
        let weak = Arc::downgrade(ledger);
        let grace = self.config.grace;
        // The streams of a client that still reads end once it has read
        // what was buffered; a client that stopped reading never takes it.
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            if let Some(ledger) = weak.upgrade() {
                ledger.cut_pending.store(false, Ordering::Relaxed);
                if ledger.held.load(Ordering::Relaxed) > CLOSE_ABOVE {
                    metrics::counter!("eligibility_slow_consumers_closed_total").increment(1);
                    ledger.close();
                }
            }
        });
    }

    /// Logs cuts at most once per ten seconds, with their count.
    fn log(&self, held: u64) {
        if let Some(n) = self.cuts.hit() {
            tracing::warn!(
                cut = n,
                last_held_bytes = held,
                budget_bytes = self.config.limit,
                "slow consumers cut: the server held more unsent stream bytes than its budget"
            );
        }
    }
}

/// What one connection holds and does: see the module docs.
pub struct Ledger {
    id: u64,
    budget: Arc<Budget>,
    held: AtomicU64,
    active: AtomicUsize,
    /// When `active` last fell to zero (ms since the budget's epoch).
    idle_since: AtomicU64,
    /// How many times this connection's streams were cut: a stream opened
    /// before a cut ends, one opened after it does not.
    cuts: AtomicU64,
    /// Cut, and within its grace period.
    cut_pending: AtomicBool,
    closed: AtomicBool,
    waker: AtomicWaker,
    /// Socket writes so far (see [`Consumer::wakes_writer`]).
    writes: AtomicU64,
    /// `writes` when a stream last asked [`Consumer::wakes_writer`].
    writes_seen: AtomicU64,
}

impl Ledger {
    /// A stream on this connection starts.
    pub fn consumer(self: &Arc<Self>) -> Consumer {
        Consumer {
            seen: self.cuts.load(Ordering::Relaxed),
            sent: AtomicU64::new(NONE),
            _active: self.begin(),
            ledger: self.clone(),
        }
    }

    /// A request on this connection starts; it ends when the guard drops.
    pub fn begin(self: &Arc<Self>) -> Active {
        self.active.fetch_add(1, Ordering::Relaxed);
        Active(self.clone())
    }

    /// The connection wrote `n` bytes to its socket.
    pub fn written(&self, n: usize) {
        self.writes.fetch_add(1, Ordering::Relaxed);
        // Most connections hold nothing: one load.
        if self.held.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut taken = 0;
        let _ = self.held.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |h| {
            taken = h.min(n as u64);
            Some(h - taken)
        });
        if taken > 0 {
            self.budget.sub(taken);
        }
    }

    /// Whether the connection is to be closed.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Closes the connection: its IO fails at its next poll, which the
    /// waker brings about at once.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        self.waker.wake();
    }

    /// Registers the connection task to be woken by [`Ledger::close`].
    pub fn register(&self, waker: &Waker) {
        self.waker.register(waker);
    }

    /// When the connection became idle, if it is: no request in progress.
    pub fn idle_since(&self) -> Option<Duration> {
        (self.active.load(Ordering::Relaxed) == 0)
            .then(|| Duration::from_millis(self.idle_since.load(Ordering::Relaxed)))
    }

    /// Now, on the clock of [`Ledger::idle_since`].
    pub fn now(&self) -> Duration {
        Duration::from_millis(self.budget.now_ms())
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        let h = self.held.load(Ordering::Relaxed);
        if h > 0 {
            self.budget.sub(h);
        }
        self.budget.lock().remove(&self.id);
    }
}

/// A request in progress on a connection (see [`Ledger::begin`]).
pub struct Active(Arc<Ledger>);

impl Drop for Active {
    fn drop(&mut self) {
        let l = &self.0;
        l.idle_since.store(l.budget.now_ms(), Ordering::Relaxed);
        l.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One stream's account on its connection's ledger: it counts what the
/// stream hands to the transport, learns that the stream was cut, and
/// keeps the connection from counting as idle.
pub struct Consumer {
    ledger: Arc<Ledger>,
    seen: u64,
    /// The last revision the stream completed ([`NONE`]: none yet).
    sent: AtomicU64,
    _active: Active,
}

const NONE: u64 = u64::MAX;

impl Consumer {
    /// The stream handed `n` bytes to the transport.
    pub fn handed(&self, n: usize) {
        let n = n as u64;
        // The total first: a write on the connection's task may take these
        // bytes back from the ledger (and the total) as soon as they are in
        // the ledger, and the total must never go below the ledgers' sum.
        let over = self.ledger.budget.add(n);
        self.ledger.held.fetch_add(n, Ordering::Relaxed);
        if over {
            self.ledger.budget.over();
        }
    }

    /// Whether the frame this stream just handed over may have woken the
    /// connection's writer task from idle: true for the first stream to
    /// ask since the connection last wrote to its socket (the writer went
    /// idle after that write), false for the others (the first one's frame
    /// already woke it; waking a task that is already queued does nothing).
    ///
    /// Why: a stream that woke the writer spends its task's scheduling
    /// budget so the writer is queued behind the other streams, not run
    /// next (see `grpc::watch_route::end_turn`); that costs about 10 % of
    /// a change's fan-out, and only one stream per connection per write
    /// needs it. A wrong answer costs one socket write more or less, never
    /// an event.
    pub fn wakes_writer(&self) -> bool {
        let writes = self.ledger.writes.load(Ordering::Relaxed);
        self.ledger.writes_seen.swap(writes, Ordering::Relaxed) != writes
    }

    /// Whether the stream was cut (it ends at its next event).
    pub fn is_cut(&self) -> bool {
        self.ledger.cuts.load(Ordering::Relaxed) != self.seen
    }

    /// The stream sent everything through revision `r`.
    pub fn sent(&self, r: u64) {
        self.sent.store(r, Ordering::Relaxed);
    }

    /// The last revision the stream completed, if any: where its client
    /// resumes after a cut.
    pub fn resume_after(&self) -> Option<u64> {
        Some(self.sent.load(Ordering::Relaxed)).filter(|&r| r != NONE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_largest_holders_are_cut_and_closed_unless_they_drain() {
        let budget = Budget::new(BudgetConfig { limit: 1_000_000, grace: Duration::from_secs(1) });
        let (big, small, drains) = (budget.open(), budget.open(), budget.open());
        let (a, b, c) = (big.consumer(), small.consumer(), drains.consumer());
        b.handed(100_000);
        c.handed(400_000);
        // Writes take back what was handed over, never more.
        drains.written(50_000);
        assert_eq!(budget.held(), 450_000);
        small.written(1_000_000);
        assert_eq!(budget.held(), 350_000);
        // Over the budget: the largest holders go first, until nine tenths.
        a.handed(700_000);
        assert!(a.is_cut(), "the largest holder is cut");
        assert!(!b.is_cut() && !c.is_cut(), "cutting the largest was enough");
        // A stream opened after the cut is not cut; the cut one stays cut.
        let after = big.consumer();
        assert!(!after.is_cut() && a.is_cut());
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert!(big.is_closed(), "a cut connection that did not drain is closed after the grace period");
        // A cut connection that drained is left open.
        c.handed(2_000_000);
        assert!(c.is_cut());
        drains.written(5_000_000);
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert!(!drains.is_closed());
        drop((a, b, c, after));
        drop((big, small, drains));
        assert_eq!(budget.held(), 0, "closed connections give back what they held");
        assert!(budget.lock().is_empty());
    }

    #[test]
    fn a_connection_is_idle_only_with_nothing_in_progress() {
        let budget = Budget::new(BudgetConfig::default());
        let l = budget.open();
        assert!(l.idle_since().is_some());
        let call = l.begin();
        let stream = l.consumer();
        assert_eq!(l.idle_since(), None);
        drop(call);
        assert_eq!(l.idle_since(), None, "an open stream keeps the connection busy");
        drop(stream);
        assert!(l.idle_since().is_some_and(|since| since <= l.now()));
    }

    #[test]
    fn one_stream_per_write_is_told_it_woke_the_writer() {
        let budget = Budget::new(BudgetConfig::default());
        let l = budget.open();
        let (a, b) = (l.consumer(), l.consumer());
        assert!(a.wakes_writer(), "the first frame on a connection wakes its writer");
        assert!(!b.wakes_writer() && !a.wakes_writer(), "until it writes, the writer is already woken");
        l.written(100);
        assert!(b.wakes_writer(), "after a write, the next frame wakes it again");
        assert!(!a.wakes_writer());
        // Per connection: another connection's writes change nothing here.
        let other = budget.open();
        other.written(100);
        assert!(!a.wakes_writer());
    }
}
