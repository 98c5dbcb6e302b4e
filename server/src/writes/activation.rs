//! Activation entries: when a future-dated changeset's effective time
//! arrives, a new revision (actor `system`) records that its changes now
//! take effect, so a consumer of "currently eligible" sets learns of it in
//! order.

use std::time::Duration;

use eligibility::{Revision, Timestamp};

use super::{Writer, pipeline::WRITE_ATTEMPTS};
use crate::{
    error::{Error, Result},
    lifecycle::Shutdown,
    model::ChangesetDraft,
    registry::store_error,
    store::AppendOutcome,
};

impl Writer {
    /// Records activation entries as their time arrives, until `shutdown`.
    /// Exactly once: the store refuses a second activation of the same
    /// revision (across restarts and replicas), and a replica that loses
    /// the race loads the winner's entry instead.
    pub async fn run_activator(self, shutdown: Shutdown) {
        let mut head = self.registry.subscribe_head();
        while !shutdown.is_triggered() {
            let next = self.registry.snapshot().next_pending();
            let now = Timestamp::now();
            let wait = match next {
                Some((t, rev)) if t <= now => match self.activate(rev).await {
                    Ok(()) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, revision = rev.0, "cannot record activation entry; retrying");
                        Duration::from_secs(1)
                    }
                },
                // Re-check at least every minute, in case the clock jumps.
                Some((t, _)) => {
                    Duration::from_micros((t.as_micros() - now.as_micros()) as u64).min(Duration::from_secs(60))
                }
                None => Duration::from_secs(60),
            };
            tokio::select! {
                _ = shutdown.triggered() => return,
                _ = head.changed() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Records the activation entry of changeset `rev` (if still pending).
    pub async fn activate(&self, rev: Revision) -> Result<()> {
        let registry = &self.registry;
        let _guard = registry.lock_writes().await;
        for _ in 0..WRITE_ATTEMPTS {
            let snap = registry.snapshot();
            let Some(orig) = snap.changeset(rev).cloned() else {
                return Err(Error::Corrupt(format!("activation of unknown revision {rev}")));
            };
            if !snap.is_pending(orig.effective_at, rev) {
                return Ok(());
            }
            let draft = ChangesetDraft {
                effective_at: Some(orig.effective_at),
                actor: "system".to_owned(),
                reason: format!("activation: changeset {rev} takes effect at {}", orig.effective_at),
                reference: orig.reference.to_string(),
                request: None,
                changes: Vec::new(),
                activates: Some(rev),
            };
            // No head precondition: the store records one activation per
            // revision, whoever gets there first.
            match registry.store().append(&draft, None).await.map_err(store_error)? {
                AppendOutcome::Committed(cs) => {
                    let at = cs.revision;
                    registry.absorb(&snap, cs).await?;
                    tracing::info!(revision = at.0, activates = rev.0, "activation entry recorded");
                    return Ok(());
                }
                // Another replica recorded it, or the head moved: load and
                // re-check.
                _ => registry.catch_up().await?,
            }
        }
        Err(Error::Unavailable(format!("the head kept moving; gave up activating revision {rev}")))
    }
}
