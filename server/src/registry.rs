//! The domain core: the registry that answers reads from an in-memory
//! snapshot and records writes through the store.
//!
//! Reads load the current `Arc<Snapshot>` (lock-free, via `arc-swap`) and
//! never wait on the store. Writes are serialized by one async mutex:
//! validate against the current snapshot, append to the store (the commit
//! assigns the revision), then derive and publish the next snapshot.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use arc_swap::ArcSwap;
use eligibility::{Consistency, Country, ListId, Point, Revision, Timestamp};
use tokio::sync::{Mutex, watch};

use crate::{
    error::{Error, Result},
    model::{Change, Changeset, ChangesetDraft, EntryAction, ListMeta, RequestKey, fingerprint},
    snapshot::{Decision, Event, ListState, Snapshot},
    store::{AppendOutcome, Store, StoreError},
    watch::{Hub, WatchConfig},
};

/// Limits on request sizes. Each has a clear error past it.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Items in one BatchCheck.
    pub max_batch: usize,
    /// Entry changes in one Apply.
    pub max_changes: usize,
    /// Largest page size for paged reads.
    pub max_page_size: u32,
    /// Longest wait for `min_revision`.
    pub max_wait: Duration,
    /// Largest request message, bytes (larger: RESOURCE_EXHAUSTED).
    pub max_message_bytes: usize,
    /// Unary calls in progress at once, server-wide (more:
    /// RESOURCE_EXHAUSTED, so a flood is refused rather than queued).
    pub max_concurrent_requests: usize,
    /// Calls in progress at once per connection (more wait their turn).
    pub concurrency_per_connection: usize,
    /// Longest time to answer a call (Watch streams excepted).
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_batch: 10_000,
            max_changes: 10_000,
            max_page_size: 1000,
            max_wait: Duration::from_secs(5),
            max_message_bytes: 4 << 20,
            max_concurrent_requests: 4096,
            concurrency_per_connection: 256,
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// Byte limits on free-text fields.
pub mod text_limits {
    /// `reason`.
    pub const REASON: usize = 4096;
    /// `reference`.
    pub const REFERENCE: usize = 1024;
    /// `request_id`.
    pub const REQUEST_ID: usize = 128;
    /// `actor`.
    pub const ACTOR: usize = 256;
    /// Entry `conditions`.
    pub const CONDITIONS: usize = 1024;
    /// List `title`.
    pub const TITLE: usize = 256;
    /// List `description`.
    pub const DESCRIPTION: usize = 4096;
    /// List `authority`.
    pub const AUTHORITY: usize = 512;
}

/// Where an answer comes from: carried by every read response.
#[derive(Clone, Debug)]
pub struct Header {
    /// The revision the answer was computed at.
    pub revision: Revision,
    /// The store id.
    pub store_id: Arc<str>,
    /// The valid time the answer was computed for.
    pub as_of: Timestamp,
}

/// A snapshot resolved for one read: the revision and valid time to
/// evaluate at.
pub struct View {
    /// The snapshot (its head may be above `at`).
    pub snap: Arc<Snapshot>,
    /// The transaction-time revision to evaluate at.
    pub at: Revision,
    /// The valid time to evaluate at.
    pub as_of: Timestamp,
}

impl View {
    /// The response header for this view.
    pub fn header(&self) -> Header {
        Header { revision: self.at, store_id: self.snap.store_id_shared(), as_of: self.as_of }
    }

    /// Decides (list, country) at this view.
    pub fn check(&self, list: &ListId, country: Country) -> Result<Decision> {
        self.snap.check(list, country, self.as_of, self.at)
    }

    /// The list, if it exists at this view.
    pub fn list(&self, list: &ListId) -> Result<&ListState> {
        self.snap.list_at(list, self.at)
    }
}

/// A list with its metadata and counts at a view.
#[derive(Clone, Debug)]
pub struct ListInfo {
    /// The id.
    pub id: ListId,
    /// Metadata at the view's revision.
    pub meta: ListMeta,
    /// Creating revision.
    pub created: Revision,
    /// Last revision that touched it, at the view.
    pub updated: Revision,
    /// Members at the view.
    pub member_count: u32,
}

/// One member of a list at a point.
#[derive(Clone, Debug)]
pub struct Member {
    /// The country.
    pub country: Country,
    /// The change that made it a member.
    pub event: Event,
}

/// A page of members.
pub struct MembersPage {
    /// The list's metadata at the view.
    pub meta: ListMeta,
    /// Members, ordered.
    pub members: Vec<Member>,
    /// The last country of this page when more follow.
    pub next_after: Option<Country>,
}

/// Differences between two points.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiffResult {
    /// Members at `to` only.
    pub added: Vec<Country>,
    /// Members at `from` only.
    pub removed: Vec<Country>,
    /// Members at both with different conditions.
    pub conditions_changed: Vec<Country>,
}

/// A page of history.
pub struct HistoryPage {
    /// Changesets, each filtered to the matching changes.
    pub changesets: Vec<Changeset>,
    /// The last revision of this page when more follow.
    pub next_after: Option<Revision>,
}

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
    /// The changeset (absent for a no-op).
    pub changeset: Option<Arc<Changeset>>,
}

/// The registry: the service's domain core.
pub struct Registry {
    store: Arc<dyn Store>,
    current: ArcSwap<Snapshot>,
    write_lock: Mutex<()>,
    head_tx: watch::Sender<Revision>,
    limits: Limits,
    hub: Arc<Hub>,
}

/// How many changesets to read per store round trip when loading.
const LOAD_BATCH: u32 = 1000;
/// How many times a write retries after another replica moved the head.
const WRITE_ATTEMPTS: usize = 20;

impl Registry {
    /// Builds the registry from the store's whole log.
    pub async fn open(store: Arc<dyn Store>, limits: Limits, watch: WatchConfig) -> Result<Arc<Self>> {
        let snap = Snapshot::empty(store.store_id());
        let (head_tx, _) = watch::channel(Revision::ZERO);
        let registry = Arc::new(Registry {
            store,
            current: ArcSwap::from_pointee(snap),
            write_lock: Mutex::new(()),
            head_tx,
            limits,
            hub: Arc::new(Hub::new(watch)),
        });
        let _guard = registry.write_lock.lock().await;
        registry.catch_up().await?;
        drop(_guard);
        Ok(registry)
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// The current snapshot's revision, read without taking a reference.
    pub fn head(&self) -> Revision {
        self.current.load().revision()
    }

    /// The store id.
    pub fn store_id(&self) -> Arc<str> {
        self.current.load().store_id_shared()
    }

    /// The configured limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// A receiver of head revision changes.
    pub fn subscribe_head(&self) -> watch::Receiver<Revision> {
        self.head_tx.subscribe()
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The watchers' hub (live feed, limits, counters).
    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// Applies every changeset the store has beyond the current snapshot.
    /// Callers hold the write lock.
    async fn catch_up(&self) -> Result<()> {
        loop {
            let head = self.current.load().revision();
            let started = std::time::Instant::now();
            let batch = self.store.read_after(head, LOAD_BATCH).await.map_err(store_error)?;
            metrics::histogram!("eligibility_store_seconds", "op" => "read").record(started.elapsed().as_secs_f64());
            if let Some(last) = batch.last() {
                // How long after its commit the newest changeset reached
                // this replica (meaningful when another replica wrote it).
                let lag = Timestamp::now().as_micros().saturating_sub(last.recorded_at.as_micros()).max(0);
                metrics::gauge!("eligibility_replication_lag_seconds").set(lag as f64 / 1e6);
            }
            if batch.is_empty() {
                return Ok(());
            }
            let old = self.current.load_full();
            let mut snap = (*old).clone();
            for cs in batch {
                snap = snap.apply(cs)?;
            }
            self.publish(snap, old.revision());
        }
    }

    /// Swaps in `snap` and then announces the changesets after `from` to
    /// watchers, in order. Swapping first means a watcher that receives a
    /// changeset from the feed finds it in the snapshot too.
    fn publish(&self, snap: Snapshot, from: Revision) {
        let rev = snap.revision();
        metrics::gauge!("eligibility_revision").set(rev.0 as f64);
        let snap = Arc::new(snap);
        self.current.store(snap.clone());
        for cs in snap.changesets_after(from) {
            self.hub.publish(cs.clone());
        }
        self.head_tx.send_replace(rev);
    }

    /// Resolves a read point into a view: waits for `min_revision` (at most
    /// `wait`, capped by the limits), checks `at_revision` against the head.
    pub async fn view(&self, point: Point, wait: Option<Duration>) -> Result<View> {
        let snap = match point.consistency {
            Consistency::MinRevision(want) if self.current.load().revision() < want => {
                let wait = wait.unwrap_or(self.limits.max_wait).min(self.limits.max_wait);
                let mut rx = self.head_tx.subscribe();
                let reached = tokio::time::timeout(wait, rx.wait_for(|r| *r >= want)).await;
                if !matches!(reached, Ok(Ok(_))) {
                    return Err(Error::NotYetAtRevision { wanted: want, head: self.current.load().revision() });
                }
                self.snapshot()
            }
            _ => self.snapshot(),
        };
        let at = match point.consistency {
            Consistency::AtRevision(r) if r > snap.revision() => {
                return Err(Error::RevisionOutOfRange {
                    field: "point.at_revision",
                    requested: r,
                    head: snap.revision(),
                });
            }
            Consistency::AtRevision(r) => r,
            _ => snap.revision(),
        };
        Ok(View { snap, at, as_of: point.as_of.unwrap_or_else(Timestamp::now) })
    }

    /// List metadata and counts at a view.
    pub fn list_info(view: &View, l: &ListState) -> ListInfo {
        ListInfo {
            id: l.id.clone(),
            meta: l.meta_at(view.at).clone(),
            created: l.created,
            updated: l.updated_at(view.at),
            member_count: l.members(view.as_of, view.at).count() as u32,
        }
    }

    /// Members of `list` at the view, after `after`, at most `page_size`.
    pub fn members(&self, view: &View, list: &ListId, after: Option<Country>, page_size: u32) -> Result<MembersPage> {
        let l = view.list(list)?;
        let size = self.page_size(page_size, 250, "page_size")?;
        let mut members: Vec<Member> = l
            .members_after(after, view.as_of, view.at)
            .take(size + 1)
            .map(|(country, e)| Member { country, event: e.clone() })
            .collect();
        let next_after = if members.len() > size {
            members.truncate(size);
            members.last().map(|m| m.country)
        } else {
            None
        };
        Ok(MembersPage { meta: l.meta_at(view.at).clone(), members, next_after })
    }

    fn page_size(&self, asked: u32, default: usize, field: &str) -> Result<usize> {
        match asked {
            0 => Ok(default),
            n if n <= self.limits.max_page_size => Ok(n as usize),
            n => {
                Err(Error::invalid(field, format!("{n} is above the maximum page size {}", self.limits.max_page_size)))
            }
        }
    }

    /// Members added, removed and with changed conditions between two
    /// views of the same snapshot.
    pub fn diff(from: &View, to: &View, list: &ListId) -> Result<DiffResult> {
        let before: BTreeMap<Country, Arc<str>> = match from.list(list) {
            Ok(l) => l.members(from.as_of, from.at).map(|(c, e)| (c, e.conditions.clone())).collect(),
            // The list may not have existed yet at `from`: everything is new.
            Err(Error::ListNotFound { .. }) => BTreeMap::new(),
            Err(e) => return Err(e),
        };
        let after: BTreeMap<Country, Arc<str>> =
            to.list(list)?.members(to.as_of, to.at).map(|(c, e)| (c, e.conditions.clone())).collect();
        let mut out = DiffResult::default();
        for (c, cond) in &after {
            match before.get(c) {
                None => out.added.push(*c),
                Some(old) if old != cond => out.conditions_changed.push(*c),
                Some(_) => {}
            }
        }
        out.removed = before.keys().filter(|c| !after.contains_key(*c)).copied().collect();
        Ok(out)
    }

    /// Changesets touching `list` (and `country`), recorded at or before
    /// `at`, after `after`, filtered to the matching changes.
    pub fn history(
        &self,
        snap: &Snapshot,
        list: &ListId,
        country: Option<Country>,
        at: Revision,
        after: Revision,
        page_size: u32,
    ) -> Result<HistoryPage> {
        let l = snap.list_at(list, at)?;
        let size = self.page_size(page_size, 100, "page_size")?;
        let mut out = Vec::with_capacity(size.min(128));
        let mut next_after = None;
        let filter = crate::watch::Filter {
            lists: [list.clone()].into(),
            countries: country.into_iter().collect(),
            entries_only: country.is_some(),
        };
        for rev in l.touching(after, at) {
            let Some(cs) = snap.changeset(rev) else { continue };
            let Some(shown) = crate::watch::present(snap, cs, &filter) else { continue };
            if out.len() == size {
                next_after = out.last().map(|c: &Changeset| c.revision);
                break;
            }
            out.push((*shown).clone());
        }
        Ok(HistoryPage { changesets: out, next_after })
    }

    // ---- writes ----------------------------------------------------------

    /// Creates a list.
    pub async fn create_list(&self, list: ListId, meta: ListMeta, opts: WriteOptions) -> Result<WriteResult> {
        check_meta(&meta.title, &meta.description, &meta.authority, "list")?;
        let fp = request_fingerprint(
            "create_list",
            &opts,
            None,
            &[Change::CreateList { list: list.clone(), meta: meta.clone() }],
        );
        self.write(opts, None, fp, true, move |snap| {
            if snap.list_at(&list, snap.revision()).is_ok() {
                return Err(Error::ListExists(list.clone()));
            }
            Ok(vec![Change::CreateList { list: list.clone(), meta: meta.clone() }])
        })
        .await
    }

    /// Updates a list's metadata (no-op when nothing changes).
    pub async fn update_list(&self, list: ListId, patch: ListPatch, opts: WriteOptions) -> Result<WriteResult> {
        check_meta(
            patch.title.as_deref().unwrap_or(""),
            patch.description.as_deref().unwrap_or(""),
            patch.authority.as_deref().unwrap_or(""),
            "",
        )?;
        let key = format!("{list}\n{:?}\n{:?}\n{:?}", patch.title, patch.description, patch.authority);
        let fp = fingerprint(&["update_list", &opts.actor, &opts.reason, &opts.reference, &key]);
        self.write(opts, None, fp, true, move |snap| {
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
            Ok(vec![Change::UpdateList { list: list.clone(), meta }])
        })
        .await
    }

    /// Records one changeset of entry changes.
    pub async fn apply(
        &self,
        changes: Vec<EntryChange>,
        effective_at: Option<Timestamp>,
        opts: WriteOptions,
    ) -> Result<WriteResult> {
        if changes.is_empty() {
            return Err(Error::invalid("changes", "at least one change is required"));
        }
        if changes.len() > self.limits.max_changes {
            return Err(Error::invalid(
                "changes",
                format!(
                    "{} changes are more than the maximum {} per changeset",
                    changes.len(),
                    self.limits.max_changes
                ),
            ));
        }
        let mut seen: std::collections::HashMap<(&ListId, Country), usize> = Default::default();
        for (i, c) in changes.iter().enumerate() {
            if let Some(first) = seen.insert((&c.list, c.country), i) {
                return Err(Error::invalid(
                    format!("changes[{i}]"),
                    format!(
                        "({}, {}) is already changed by changes[{first}]; one change per list and country",
                        c.list, c.country
                    ),
                ));
            }
            check_conditions(c.action, &c.conditions, &format!("changes[{i}].conditions"))?;
        }
        let changes: Vec<Change> = changes
            .into_iter()
            .map(|c| Change::Entry { list: c.list, country: c.country, action: c.action, conditions: c.conditions })
            .collect();
        let fp = request_fingerprint("apply", &opts, effective_at, &changes);
        self.write(opts, effective_at, fp, false, move |snap| {
            for c in &changes {
                if snap.list_at(c.list(), snap.revision()).is_err() {
                    return Err(Error::ListNotFound { list: c.list().clone(), at: None });
                }
            }
            Ok(changes.clone())
        })
        .await
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
        let mut wanted: BTreeMap<Country, String> = BTreeMap::new();
        for (i, (c, cond)) in members.into_iter().enumerate() {
            check_conditions(EntryAction::Add, &cond, &format!("members[{i}].conditions"))?;
            if wanted.insert(c, cond).is_some() {
                return Err(Error::invalid(format!("members[{i}].country"), format!("{c} is listed twice")));
            }
        }
        let mut key = format!("{list}\n");
        for (c, cond) in &wanted {
            key.push_str(&format!("{c}={cond}\n"));
        }
        let eff = effective_at.map(|t| t.to_string()).unwrap_or_default();
        let fp = fingerprint(&["replace_members", &opts.actor, &opts.reason, &opts.reference, &eff, &key]);
        self.write(opts, effective_at, fp, true, move |snap| {
            let at = snap.revision();
            let l = snap.list_at(&list, at)?;
            let when = effective_at.unwrap_or_else(Timestamp::now);
            let current: BTreeMap<Country, Arc<str>> =
                l.members(when, at).map(|(c, e)| (c, e.conditions.clone())).collect();
            let mut changes = Vec::new();
            for (c, cond) in &wanted {
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
        })
        .await
    }

    /// The one write path: idempotency, optimistic concurrency, append,
    /// publish. `build` computes the changes from the current snapshot; an
    /// empty result is a no-op.
    async fn write(
        &self,
        opts: WriteOptions,
        effective_at: Option<Timestamp>,
        fingerprint: String,
        depends_on_state: bool,
        build: impl Fn(&Snapshot) -> Result<Vec<Change>>,
    ) -> Result<WriteResult> {
        let opts = check_options(opts)?;
        let _guard = self.write_lock.lock().await;
        for attempt in 0..WRITE_ATTEMPTS {
            if attempt > 0 {
                // Another replica keeps winning the race: back off a little,
                // randomly, so the contenders spread out.
                tokio::time::sleep(Duration::from_millis(
                    1 + (Timestamp::now().as_micros() % 7) as u64 * attempt as u64,
                ))
                .await;
            }
            let mut snap = self.snapshot();
            if let Some(expected) = opts.expected_revision
                && expected > snap.revision()
            {
                // This replica may lag the store: look before refusing.
                self.catch_up().await?;
                snap = self.snapshot();
            }
            if let Some(id) = &opts.request_id
                && let Some(rev) = snap.request(id)
            {
                let cs =
                    snap.changeset(rev).cloned().ok_or_else(|| Error::Corrupt(format!("request {id} at {rev}")))?;
                return replay(&snap, cs, &fingerprint, id);
            }
            if let Some(expected) = opts.expected_revision
                && expected != snap.revision()
            {
                return Err(Error::RevisionMismatch { expected, actual: snap.revision() });
            }
            let changes = match build(&snap) {
                // The list may exist already on another replica: look
                // before refusing.
                Err(Error::ListNotFound { .. }) if self.store.appended_elsewhere().is_some() && attempt == 0 => {
                    self.catch_up().await?;
                    let fresh = self.snapshot();
                    if fresh.revision() == snap.revision() {
                        build(&snap)?;
                    }
                    continue;
                }
                other => other?,
            };
            if changes.is_empty() {
                return Ok(WriteResult {
                    revision: snap.revision(),
                    store_id: snap.store_id_shared(),
                    recorded: false,
                    replayed: false,
                    changeset: None,
                });
            }
            let draft = ChangesetDraft {
                effective_at,
                actor: opts.actor.clone(),
                reason: opts.reason.clone(),
                reference: opts.reference.clone(),
                request: opts.request_id.clone().map(|id| RequestKey { id, fingerprint: fingerprint.clone() }),
                changes,
                activates: None,
            };
            // The store checks the head itself (memory may lag another
            // replica) when the client asked for it, or when the changes
            // were computed from the current state. Plain entry changes do
            // not depend on it (lists are never deleted), so they need not
            // lose races to other replicas' writes.
            let precondition = opts.expected_revision.or(depends_on_state.then(|| snap.revision()));
            let started = std::time::Instant::now();
            let appended = self.store.append(&draft, precondition).await;
            metrics::histogram!("eligibility_store_seconds", "op" => "append").record(started.elapsed().as_secs_f64());
            match appended {
                Ok(AppendOutcome::Committed(cs)) => {
                    let rev = cs.revision;
                    self.absorb(&snap, cs).await?;
                    let cs = self.snapshot().changeset(rev).cloned();
                    tracing::info!(revision = rev.0, actor = %opts.actor, "changeset recorded");
                    return Ok(WriteResult {
                        revision: rev,
                        store_id: snap.store_id_shared(),
                        recorded: true,
                        replayed: false,
                        changeset: cs,
                    });
                }
                Ok(AppendOutcome::Replayed(cs) | AppendOutcome::RequestIdReused(cs)) => {
                    self.catch_up().await?;
                    let id = opts.request_id.as_deref().unwrap_or_default();
                    return replay(&self.snapshot(), Arc::new(cs), &fingerprint, id);
                }
                Ok(AppendOutcome::HeadMismatch { actual, .. }) => {
                    // Another replica wrote first: load its changesets and
                    // re-validate against the new head.
                    self.catch_up().await?;
                    if let Some(expected) = opts.expected_revision {
                        return Err(Error::RevisionMismatch { expected, actual });
                    }
                }
                Err(e) => return Err(store_error(e)),
            }
        }
        Err(Error::Unavailable(format!("the head kept moving; gave up after {WRITE_ATTEMPTS} attempts")))
    }

    /// Brings a changeset this replica just committed into memory: applied
    /// directly when it follows `snap`, else (another replica committed in
    /// between) by reading the log up to it.
    async fn absorb(&self, snap: &Arc<Snapshot>, cs: Changeset) -> Result<()> {
        if cs.revision == snap.revision().next() && self.snapshot().revision() == snap.revision() {
            let next = snap.apply(cs)?;
            self.publish(next, snap.revision());
            Ok(())
        } else {
            let rev = cs.revision;
            self.catch_up().await?;
            if self.snapshot().revision() < rev {
                return Err(Error::Corrupt(format!("committed revision {rev} is not in the store's log")));
            }
            Ok(())
        }
    }
}

impl Registry {
    /// Records activation entries for future-dated changesets as their
    /// effective time arrives, until the hub shuts down. Exactly once: the
    /// store refuses a second activation of the same revision (across
    /// restarts and replicas), and a replica that loses the race loads the
    /// winner's entry instead.
    pub async fn run_activator(self: Arc<Self>) {
        let mut stop = self.hub.shutdown_signal();
        let mut head = self.subscribe_head();
        loop {
            let stopped = *stop.borrow();
            if stopped {
                return;
            }
            let next = self.snapshot().next_pending();
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
                _ = crate::watch::stopped(&mut stop) => return,
                _ = head.changed() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Follows appends made by other replicas (stores that have them):
    /// re-reads the log when the store signals, and every `poll` as a
    /// safety net, until the hub shuts down. Logs an outage once and its
    /// recovery.
    pub async fn run_tailer(self: Arc<Self>, poll: Duration) {
        let Some(mut signal) = self.store.appended_elsewhere() else { return };
        let mut stop = self.hub.shutdown_signal();
        let mut failing = false;
        loop {
            tokio::select! {
                _ = crate::watch::stopped(&mut stop) => return,
                r = signal.changed() => if r.is_err() { return },
                _ = tokio::time::sleep(poll) => {}
            }
            let result = {
                let _guard = self.write_lock.lock().await;
                self.catch_up().await
            };
            match result {
                Ok(()) if failing => {
                    failing = false;
                    tracing::info!(revision = self.snapshot().revision().0, store = %self.store.describe(), "store reachable again; caught up");
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

    /// Records the activation entry of changeset `rev` (if still pending).
    pub async fn activate(&self, rev: Revision) -> Result<()> {
        let _guard = self.write_lock.lock().await;
        for _ in 0..WRITE_ATTEMPTS {
            let snap = self.snapshot();
            let Some(orig) = snap.changeset(rev).cloned() else {
                return Err(Error::Corrupt(format!("activation of unknown revision {rev}")));
            };
            if !snap_has_pending(&snap, rev) {
                return Ok(());
            }
            let draft = ChangesetDraft {
                effective_at: Some(orig.effective_at),
                actor: "system".to_owned(),
                reason: format!("activation: changeset {rev} takes effect at {}", orig.effective_at),
                reference: orig.reference.clone(),
                request: None,
                changes: Vec::new(),
                activates: Some(rev),
            };
            // No head precondition: the store records one activation per
            // revision, whoever gets there first.
            match self.store.append(&draft, None).await.map_err(store_error)? {
                AppendOutcome::Committed(cs) => {
                    let at = cs.revision;
                    self.absorb(&snap, cs).await?;
                    tracing::info!(revision = at.0, activates = rev.0, "activation entry recorded");
                    return Ok(());
                }
                // Another replica recorded it, or the head moved: load and
                // re-check.
                _ => self.catch_up().await?,
            }
        }
        Err(Error::Unavailable(format!("the head kept moving; gave up activating revision {rev}")))
    }
}

fn snap_has_pending(snap: &Snapshot, rev: Revision) -> bool {
    snap.changeset(rev).is_some_and(|cs| snap.is_pending(cs.effective_at, rev))
}

fn replay(snap: &Snapshot, cs: Arc<Changeset>, fingerprint: &str, id: &str) -> Result<WriteResult> {
    if cs.request.as_ref().is_some_and(|k| k.fingerprint == fingerprint) {
        Ok(WriteResult {
            revision: cs.revision,
            store_id: snap.store_id_shared(),
            recorded: false,
            replayed: true,
            changeset: Some(cs),
        })
    } else {
        Err(Error::RequestIdReused { request_id: id.to_owned(), revision: cs.revision })
    }
}

fn store_error(e: StoreError) -> Error {
    match e {
        StoreError::Unavailable(m) => Error::Unavailable(m),
        StoreError::Corrupt(m) => Error::Corrupt(m),
    }
}

fn request_fingerprint(kind: &str, opts: &WriteOptions, effective_at: Option<Timestamp>, changes: &[Change]) -> String {
    let eff = effective_at.map(|t| t.to_string()).unwrap_or_default();
    let body = serde_json::to_string(changes).unwrap_or_default();
    fingerprint(&[kind, &opts.actor, &opts.reason, &opts.reference, &eff, &body])
}

fn check_len(field: &str, value: &str, max: usize) -> Result<()> {
    if value.len() > max {
        return Err(Error::invalid(field, format!("{} bytes is longer than the maximum {max}", value.len())));
    }
    Ok(())
}

fn check_options(mut opts: WriteOptions) -> Result<WriteOptions> {
    use text_limits::*;
    if opts.reason.trim().is_empty() {
        return Err(Error::invalid("options.reason", "a reason is required (why is this change made?)"));
    }
    check_len("options.reason", &opts.reason, REASON)?;
    check_len("options.reference", &opts.reference, REFERENCE)?;
    check_len("options.actor", &opts.actor, ACTOR)?;
    if let Some(id) = &opts.request_id {
        check_len("options.request_id", id, REQUEST_ID)?;
        if id.trim().is_empty() {
            opts.request_id = None;
        }
    }
    if opts.actor.trim().is_empty() {
        opts.actor = "anonymous".to_owned();
    }
    Ok(opts)
}

fn check_meta(title: &str, description: &str, authority: &str, prefix: &str) -> Result<()> {
    use text_limits::*;
    let f = |name: &str| if prefix.is_empty() { name.to_owned() } else { format!("{prefix}.{name}") };
    check_len(&f("title"), title, TITLE)?;
    check_len(&f("description"), description, DESCRIPTION)?;
    check_len(&f("authority"), authority, AUTHORITY)
}

fn check_conditions(action: EntryAction, conditions: &str, field: &str) -> Result<()> {
    check_len(field, conditions, text_limits::CONDITIONS)?;
    if action == EntryAction::Remove && !conditions.is_empty() {
        return Err(Error::invalid(field, format!("{conditions:?}: a removal has no conditions")));
    }
    Ok(())
}
