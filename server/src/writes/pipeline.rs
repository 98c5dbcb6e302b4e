//! The one write path, as a sequence of named steps: validate the options,
//! then, under the write lock, look at a fresh enough snapshot, answer a
//! replay, check the precondition, build the changes, append to the store,
//! absorb the commit (which publishes it). A lost race with another
//! replica goes round again.

use std::{sync::Arc, time::Duration};

use eligibility::{Revision, Timestamp};

use super::{WriteOptions, WriteResult, request};
use crate::{
    error::{Error, Result},
    model::{Change, Changeset, ChangesetDraft, RequestKey},
    registry::{Registry, store_error},
    snapshot::Snapshot,
    store::AppendOutcome,
};

/// How many times a write retries after another replica moved the head.
pub(super) const WRITE_ATTEMPTS: usize = 20;

/// One write, before it runs.
pub(super) struct Plan<F> {
    /// The caller's options (validated by the first step).
    pub opts: WriteOptions,
    /// When the changes take effect (`None`: at commit).
    pub effective_at: Option<Timestamp>,
    /// The request's fingerprint, kept with its request id.
    pub fingerprint: String,
    /// Whether the changes are computed from the current state (then the
    /// store must check that the head did not move under them).
    pub depends_on_state: bool,
    /// Computes the changes from a snapshot; empty is a no-op.
    pub build: F,
}

/// What one attempt came to.
enum Attempt {
    Done(WriteResult),
    /// Another replica moved the head: go round again.
    Again,
}

/// Runs `plan` to its end: recorded, replayed, a no-op, or an error.
pub(super) async fn write<F>(registry: &Registry, plan: Plan<F>) -> Result<WriteResult>
where
    F: Fn(&Snapshot) -> Result<Vec<Change>>,
{
    let plan = Plan { opts: request::options(plan.opts)?, ..plan };
    let _guard = registry.lock_writes().await;
    for attempt in 0..WRITE_ATTEMPTS {
        if attempt > 0 {
            back_off(attempt).await;
        }
        match try_once(registry, &plan, attempt).await? {
            Attempt::Done(result) => return Ok(result),
            Attempt::Again => {}
        }
    }
    Err(Error::Unavailable(format!("the head kept moving; gave up after {WRITE_ATTEMPTS} attempts")))
}

/// What a write would record at `snap`'s head, recorded nowhere: the
/// answer to a validate-only write (every step before it ran as for a
/// real one).
fn preview<F>(plan: &Plan<F>, snap: &Snapshot, changes: Vec<Change>) -> WriteResult {
    let cs = draft(plan, changes).to_changeset(snap.revision().next(), Timestamp::now());
    WriteResult {
        revision: cs.revision,
        store_id: snap.store_id_shared(),
        recorded: false,
        replayed: false,
        changeset: Some(Arc::new(cs)),
        validate_only: true,
    }
}

/// The changeset to append, before the store numbers and times it.
fn draft<F>(plan: &Plan<F>, changes: Vec<Change>) -> ChangesetDraft {
    let opts = &plan.opts;
    ChangesetDraft {
        effective_at: plan.effective_at,
        actor: opts.actor.clone(),
        reason: opts.reason.clone(),
        reference: opts.reference.clone(),
        request: opts
            .request_id
            .as_deref()
            .map(|id| RequestKey { id: id.into(), fingerprint: plan.fingerprint.as_str().into() }),
        changes,
        activates: None,
    }
}

/// Another replica keeps winning the race: back off a little, randomly,
/// so the contenders spread out.
async fn back_off(attempt: usize) {
    let jitter = (Timestamp::now().as_micros() % 7) as u64;
    tokio::time::sleep(Duration::from_millis(1 + jitter * attempt as u64)).await;
}

async fn try_once<F>(registry: &Registry, plan: &Plan<F>, attempt: usize) -> Result<Attempt>
where
    F: Fn(&Snapshot) -> Result<Vec<Change>>,
{
    let snap = fresh_snapshot(registry, plan.opts.expected_revision).await?;
    if let Some(result) = replay_check(&snap, &plan.opts, &plan.fingerprint)? {
        return Ok(Attempt::Done(result));
    }
    precondition(&snap, plan.opts.expected_revision)?;
    let Some(changes) = build(registry, plan, &snap, attempt).await? else { return Ok(Attempt::Again) };
    if changes.is_empty() {
        return Ok(Attempt::Done(WriteResult { validate_only: plan.opts.validate_only, ..WriteResult::noop(&snap) }));
    }
    if plan.opts.validate_only {
        return Ok(Attempt::Done(preview(plan, &snap, changes)));
    }
    append(registry, plan, &snap, changes).await
}

/// The current snapshot; when the caller expects a revision above it, this
/// replica may lag the store: catch up before judging.
async fn fresh_snapshot(registry: &Registry, expected: Option<Revision>) -> Result<Arc<Snapshot>> {
    if expected.is_some_and(|e| e > registry.head()) {
        registry.catch_up().await?;
    }
    Ok(registry.snapshot())
}

/// A request id recorded before: the original result for the same content,
/// an error for other content.
fn replay_check(snap: &Snapshot, opts: &WriteOptions, fingerprint: &str) -> Result<Option<WriteResult>> {
    let Some(id) = &opts.request_id else { return Ok(None) };
    let Some(rev) = snap.request(id) else { return Ok(None) };
    let cs = snap.changeset(rev).cloned().ok_or_else(|| Error::Corrupt(format!("request {id} at {rev}")))?;
    replay(snap, cs, fingerprint, id).map(Some)
}

fn replay(snap: &Snapshot, cs: Arc<Changeset>, fingerprint: &str, id: &str) -> Result<WriteResult> {
    if cs.request.as_ref().is_some_and(|k| *k.fingerprint == *fingerprint) {
        Ok(WriteResult {
            revision: cs.revision,
            store_id: snap.store_id_shared(),
            recorded: false,
            replayed: true,
            changeset: Some(cs),
            validate_only: false,
        })
    } else {
        Err(Error::RequestIdReused { request_id: id.to_owned(), revision: cs.revision })
    }
}

/// Optimistic concurrency: the head must be the expected revision.
fn precondition(snap: &Snapshot, expected: Option<Revision>) -> Result<()> {
    match expected {
        Some(expected) if expected != snap.revision() => {
            Err(Error::RevisionMismatch { expected, actual: snap.revision() })
        }
        _ => Ok(()),
    }
}

/// The changes, computed from `snap`; `None` to go round again when a list
/// this replica does not know yet may exist on another.
async fn build<F>(registry: &Registry, plan: &Plan<F>, snap: &Snapshot, attempt: usize) -> Result<Option<Vec<Change>>>
where
    F: Fn(&Snapshot) -> Result<Vec<Change>>,
{
    match (plan.build)(snap) {
        Err(Error::ListNotFound { .. }) if registry.store().appended_elsewhere().is_some() && attempt == 0 => {
            registry.catch_up().await?;
            if registry.head() == snap.revision() {
                // Nothing new: the list really does not exist.
                (plan.build)(snap)?;
            }
            Ok(None)
        }
        other => other.map(Some),
    }
}

/// Appends the changeset and brings the outcome into memory.
async fn append<F>(registry: &Registry, plan: &Plan<F>, snap: &Arc<Snapshot>, changes: Vec<Change>) -> Result<Attempt> {
    let opts = &plan.opts;
    let draft = draft(plan, changes);
    // The store checks the head itself (memory may lag another replica)
    // when the client asked for it, or when the changes were computed from
    // the current state. Plain entry changes do not depend on it (lists
    // are never deleted), so they need not lose races to other replicas'
    // writes.
    let head_must_be = opts.expected_revision.or(plan.depends_on_state.then(|| snap.revision()));
    let started = std::time::Instant::now();
    let appended = registry.store().append(&draft, head_must_be).await;
    metrics::histogram!("eligibility_store_seconds", "op" => "append").record(started.elapsed().as_secs_f64());
    match appended.map_err(store_error)? {
        AppendOutcome::Committed(cs) => {
            let rev = cs.revision;
            registry.absorb(snap, cs).await?;
            tracing::info!(revision = rev.0, actor = %opts.actor, "changeset recorded");
            Ok(Attempt::Done(WriteResult {
                revision: rev,
                store_id: snap.store_id_shared(),
                recorded: true,
                replayed: false,
                changeset: registry.snapshot().changeset(rev).cloned(),
                validate_only: false,
            }))
        }
        AppendOutcome::Replayed(cs) | AppendOutcome::RequestIdReused(cs) => {
            registry.catch_up().await?;
            let id = opts.request_id.as_deref().unwrap_or_default();
            replay(&registry.snapshot(), Arc::new(cs), &plan.fingerprint, id).map(Attempt::Done)
        }
        AppendOutcome::HeadMismatch { actual, .. } => {
            // Another replica wrote first: load its changesets and
            // re-validate against the new head.
            registry.catch_up().await?;
            match opts.expected_revision {
                Some(expected) => Err(Error::RevisionMismatch { expected, actual }),
                None => Ok(Attempt::Again),
            }
        }
    }
}
