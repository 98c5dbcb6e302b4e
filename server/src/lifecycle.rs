//! The process's lifecycle: one shutdown token and the set of background
//! tasks, both owned by [`crate::server::run`]. Components receive a
//! [`Shutdown`] handle and end when it fires; nobody imports "stopped" from
//! a sibling (the way mini-redis's `Shutdown` works).
//!
//! Why not `tokio_util::sync::{CancellationToken, TaskTracker}`: in
//! tokio-util 0.7.20 `CancellationToken::is_cancelled` locks the token's
//! tree node (`node.inner.lock().unwrap().is_cancelled`), and every Watch
//! stream asks on every poll: with 10 000 watchers woken by one changeset
//! that is 10 000 acquisitions of one shared mutex across the runtime's
//! threads, where [`Shutdown::is_triggered`] is one relaxed load.
//! `TaskTracker` drops its tasks' join handles, so a background task's
//! panic would pass unseen; [`Tasks`] keeps them in a `JoinSet` and logs
//! a panic at [`Tasks::join`].

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use tokio::{sync::watch, task::JoinSet};

/// A cloneable shutdown token: [`Shutdown::trigger`] once, and every clone
/// sees it at once ([`Shutdown::is_triggered`], without waiting) or when
/// it next awaits [`Shutdown::triggered`].
#[derive(Clone, Debug)]
pub struct Shutdown {
    flag: Arc<AtomicBool>,
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A token that has not fired.
    pub fn new() -> Self {
        let (tx, _) = watch::channel(false);
        Shutdown { flag: Arc::new(AtomicBool::new(false)), tx: Arc::new(tx) }
    }

    /// Fires the token (idempotent). The flag is set before waiters wake, so
    /// a component that checks [`Shutdown::is_triggered`] after being woken
    /// by anything sees it.
    pub fn trigger(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.tx.send_replace(true);
    }

    /// Whether the token has fired (a load, no waiting: watchers check it
    /// on every poll).
    pub fn is_triggered(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    /// Completes when the token fires (at once if it has).
    pub fn triggered(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.tx.subscribe();
        async move {
            // An error means every sender is gone: nothing can fire it any
            // more, and nothing is left to keep running for.
            let _ = rx.wait_for(|fired| *fired).await;
        }
    }
}

/// The background tasks of one server: each gets the shutdown token, and
/// [`Tasks::join`] waits for all of them after it fires.
pub struct Tasks {
    shutdown: Shutdown,
    set: JoinSet<()>,
}

impl Tasks {
    /// An empty set whose tasks end on `shutdown`.
    pub fn new(shutdown: Shutdown) -> Self {
        Tasks { shutdown, set: JoinSet::new() }
    }

    /// Starts `task`, which is given the shutdown token and must return once
    /// it fires.
    pub fn spawn<F, Fut>(&mut self, name: &'static str, task: F)
    where
        F: FnOnce(Shutdown) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let fut = task(self.shutdown.clone());
        self.set.spawn(async move {
            fut.await;
            tracing::debug!(task = name, "background task ended");
        });
    }

    /// Fires the token and waits until every task has ended.
    pub async fn join(mut self) {
        self.shutdown.trigger();
        while let Some(r) = self.set.join_next().await {
            if let Err(e) = r
                && e.is_panic()
            {
                tracing::error!(error = %e, "a background task panicked");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn every_clone_sees_the_trigger_and_tasks_end_on_it() {
        let shutdown = Shutdown::new();
        let mut tasks = Tasks::new(shutdown.clone());
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        tasks.spawn("waiter", move |stop| async move {
            stop.triggered().await;
            tx.send(()).await.unwrap();
        });
        assert!(!shutdown.is_triggered());
        let early = shutdown.triggered();
        tokio::time::timeout(Duration::from_secs(5), tasks.join()).await.expect("tasks end on shutdown");
        assert!(shutdown.is_triggered());
        assert_eq!(rx.recv().await, Some(()));
        // A waiter made before the trigger completes, and so does one made after.
        early.await;
        shutdown.clone().triggered().await;
    }
}
