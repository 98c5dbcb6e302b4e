//! The registry's background task: following appends made by other
//! replicas.

use std::{sync::Arc, time::Duration};

use super::Registry;
use crate::lifecycle::Shutdown;

impl Registry {
    /// Follows appends made by other replicas (stores that have them):
    /// re-reads the log when the store signals, and every `poll` as a
    /// safety net, until `shutdown`. Logs an outage once and its recovery.
    pub async fn run_tailer(self: Arc<Self>, poll: Duration, shutdown: Shutdown) {
        let Some(mut signal) = self.store.appended_elsewhere() else { return };
        let mut failing = false;
        loop {
            tokio::select! {
                _ = shutdown.triggered() => return,
                r = signal.changed() => if r.is_err() { return },
                _ = tokio::time::sleep(poll) => {}
            }
            let result = self.tail().await;
            match result {
                Ok(()) if failing => {
                    failing = false;
                    tracing::info!(revision = self.head().0, store = %self.store.describe(), "store reachable again; caught up");
                }
                Ok(()) => {}
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, store = %self.store.describe(), "cannot read the store; answering reads from memory at the last known revision");
                }
                Err(_) => {}
            }
        }
    }
}
