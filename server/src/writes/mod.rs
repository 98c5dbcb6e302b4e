//! The write side: the [`Writer`] records changesets through the one
//! pipeline (see `pipeline`), and the activator records activation entries
//! when future-dated changesets take effect.

mod activation;
mod pipeline;
pub mod request;

use std::{collections::BTreeMap, sync::Arc};

use eligibility::{Country, ListId, Revision, Timestamp};

use self::pipeline::{Plan, write};
use crate::{
    error::{Error, Result},
    model::{Change, Changeset, EntryAction, ListMeta},
    registry::Registry,
    snapshot::Snapshot,
};

/// Fields every write carries.
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    /// Who makes the change; empty means "anonymous".
    pub actor: String,
    /// Why (required).
    pub reason: String,
    /// Legal basis (optional).
    pub reference: String,
    /// Idempotency key (optional).
    pub request_id: Option<String>,
    /// Optimistic concurrency precondition on the head revision.
    pub expected_revision: Option<Revision>,
    /// Check everything and answer the changeset that would be recorded,
    /// but record nothing (AIP-163).
    pub validate_only: bool,
}

/// One entry change of an Apply.
#[derive(Clone, Debug)]
pub struct EntryChange {
    /// The list.
    pub list: ListId,
    /// The country.
    pub country: Country,
    /// Add or remove.
    pub action: EntryAction,
    /// Conditions (add only).
    pub conditions: String,
}

/// Metadata fields to change; `None` keeps the current value.
#[derive(Clone, Debug, Default)]
pub struct ListPatch {
    /// New title.
    pub title: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New authority.
    pub authority: Option<String>,
}

/// The result of a write.
#[derive(Clone, Debug)]
pub struct WriteResult {
    /// The recorded (or original, or head for a no-op) revision.
    pub revision: Revision,
    /// The store id.
    pub store_id: Arc<str>,
    /// Whether this call recorded a new changeset.
    pub recorded: bool,
    /// Whether the request id had been recorded before.
    pub replayed: bool,
    /// The changeset (absent for a no-op); for a validate-only write, the
    /// one that would be recorded.
    pub changeset: Option<Arc<Changeset>>,
    /// Whether the write only validated (nothing recorded).
    pub validate_only: bool,
}

impl WriteResult {
    fn noop(snap: &Snapshot) -> Self {
        WriteResult {
            revision: snap.revision(),
            store_id: snap.store_id_shared(),
            recorded: false,
            replayed: false,
            changeset: None,
            validate_only: false,
        }
    }
}

/// Records changesets in a registry.
#[derive(Clone)]
pub struct Writer {
    registry: Arc<Registry>,
}

impl Writer {
    /// The writer of `registry`.
    pub fn new(registry: Arc<Registry>) -> Self {
        Writer { registry }
    }

    /// Creates a list.
    pub async fn create_list(&self, list: ListId, meta: ListMeta, opts: WriteOptions) -> Result<WriteResult> {
        request::create_list(&meta)?;
        let change = Change::CreateList { list: list.clone(), meta: Box::new(meta) };
        let fingerprint = request::changes_fingerprint("create_list", &opts, None, std::slice::from_ref(&change));
        let build = move |snap: &Snapshot| {
            if snap.list_at(&list, snap.revision()).is_ok() {
                return Err(Error::ListExists(list.clone()));
            }
            Ok(vec![change.clone()])
        };
        write(&self.registry, Plan { opts, effective_at: None, fingerprint, depends_on_state: true, build }).await
    }

    /// Updates a list's metadata (no-op when nothing changes).
    pub async fn update_list(&self, list: ListId, patch: ListPatch, opts: WriteOptions) -> Result<WriteResult> {
        request::update_list(&patch)?;
        let fingerprint = request::patch_fingerprint(&list, &patch, &opts);
        let build = move |snap: &Snapshot| {
            let l = snap.list_at(&list, snap.revision())?;
            let old = l.meta_at(snap.revision());
            let meta = ListMeta {
                title: patch.title.clone().unwrap_or_else(|| old.title.clone()),
                description: patch.description.clone().unwrap_or_else(|| old.description.clone()),
                authority: patch.authority.clone().unwrap_or_else(|| old.authority.clone()),
                mode: old.mode,
            };
            if &meta == old {
                return Ok(vec![]);
            }
            Ok(vec![Change::UpdateList { list: list.clone(), meta: Box::new(meta) }])
        };
        write(&self.registry, Plan { opts, effective_at: None, fingerprint, depends_on_state: true, build }).await
    }

    /// Records one changeset of entry changes.
    pub async fn apply(
        &self,
        changes: Vec<EntryChange>,
        effective_at: Option<Timestamp>,
        opts: WriteOptions,
    ) -> Result<WriteResult> {
        let changes = request::apply(changes, self.registry.limits())?;
        let fingerprint = request::changes_fingerprint("apply", &opts, effective_at, &changes);
        let build = move |snap: &Snapshot| {
            for c in &changes {
                if snap.list_at(c.list(), snap.revision()).is_err() {
                    return Err(Error::ListNotFound { list: c.list().clone(), at: None });
                }
            }
            Ok(changes.clone())
        };
        // Entry changes do not depend on the state they are applied to.
        write(&self.registry, Plan { opts, effective_at, fingerprint, depends_on_state: false, build }).await
    }

    /// Makes `list`'s membership exactly `members` (in effect at
    /// `effective_at`, default now), recording the needed adds and removes
    /// as one changeset; a no-op records nothing.
    pub async fn replace_members(
        &self,
        list: ListId,
        members: Vec<(Country, String)>,
        effective_at: Option<Timestamp>,
        opts: WriteOptions,
    ) -> Result<WriteResult> {
        let wanted = request::members(members)?;
        let fingerprint = request::members_fingerprint(&list, &wanted, effective_at, &opts);
        let build = move |snap: &Snapshot| membership_changes(snap, &list, &wanted, effective_at);
        write(&self.registry, Plan { opts, effective_at, fingerprint, depends_on_state: true, build }).await
    }
}

/// The adds and removes that make `list`'s membership at `effective_at`
/// (default now) exactly `wanted`.
fn membership_changes(
    snap: &Snapshot,
    list: &ListId,
    wanted: &BTreeMap<Country, String>,
    effective_at: Option<Timestamp>,
) -> Result<Vec<Change>> {
    let at = snap.revision();
    let l = snap.list_at(list, at)?;
    let when = effective_at.unwrap_or_else(Timestamp::now);
    let current: BTreeMap<Country, &str> = l.members(when, at).map(|(c, e)| (c, e.conditions())).collect();
    let mut changes = Vec::new();
    for (c, cond) in wanted {
        if current.get(c).is_none_or(|old| **old != **cond) {
            changes.push(Change::Entry {
                list: list.clone(),
                country: *c,
                action: EntryAction::Add,
                conditions: cond.clone(),
            });
        }
    }
    for c in current.keys().filter(|c| !wanted.contains_key(*c)) {
        changes.push(Change::Entry {
            list: list.clone(),
            country: *c,
            action: EntryAction::Remove,
            conditions: String::new(),
        });
    }
    Ok(changes)
}

/// Counts a write's outcome in `eligibility_writes_total`.
pub fn count(r: &Result<WriteResult>) {
    let outcome = match r {
        Ok(w) if w.validate_only => "validated",
        Ok(w) if w.recorded => "recorded",
        Ok(w) if w.replayed => "replayed",
        Ok(_) => "noop",
        Err(_) => "failed",
    };
    metrics::counter!("eligibility_writes_total", "outcome" => outcome).increment(1);
}
