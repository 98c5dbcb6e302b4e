//! The in-memory registry state: an immutable snapshot at one revision, and
//! bitemporal evaluation over it.
//!
//! A snapshot is built from persistent (structurally shared) collections, so
//! deriving the next snapshot from a committed changeset copies only the
//! touched paths; readers keep their `Arc<Snapshot>` for as long as a
//! request needs it, without locks.

mod decision;
mod idempotency;

use std::sync::Arc;

use eligibility::{Country, ListId, Revision, Timestamp};
use imbl::{OrdMap, OrdSet, Vector};

pub use self::decision::{Decision, DecisionReason, DecisionRef};
use self::idempotency::RequestIndex;
use crate::{
    error::Error,
    model::{Change, Changeset, EntryAction, ListMeta},
};

/// One recorded change to one (list, country) entry.
#[derive(Clone, Debug)]
pub struct Event {
    /// When it takes effect.
    pub effective_at: Timestamp,
    /// Its changeset's revision.
    pub revision: Revision,
    /// Add or remove.
    pub action: EntryAction,
    /// Which of its changeset's changes it is (its conditions are there:
    /// an event keeps no copy; a long history has millions).
    pub change: u32,
    /// The changeset that holds it (reason, actor, reference, ...).
    pub changeset: Arc<Changeset>,
}

impl Event {
    /// Conditions of membership (add only; empty for none).
    pub fn conditions(&self) -> &str {
        match self.changeset.changes.get(self.change as usize) {
            Some(Change::Entry { conditions, .. }) => conditions,
            _ => "",
        }
    }
}

/// The state of one list: metadata versions, per-country timelines, and the
/// revisions that touched it.
#[derive(Clone, Debug)]
pub struct ListState {
    /// The list id.
    pub id: ListId,
    /// Revision that created it.
    pub created: Revision,
    /// Metadata versions, by revision, ascending.
    versions: Vec<(Revision, ListMeta)>,
    /// Per-country timelines, each sorted by (effective_at, revision).
    entries: OrdMap<Country, Vector<Event>>,
    /// Revisions of changesets (and activation entries) touching the list,
    /// ascending.
    touching: Vector<Revision>,
}

impl ListState {
    /// The metadata as of revision `at` (the list must exist at `at`).
    pub fn meta_at(&self, at: Revision) -> &ListMeta {
        let i = self.versions.partition_point(|(r, _)| *r <= at);
        &self.versions[i.saturating_sub(1)].1
    }

    /// The last revision `<= at` that touched the list.
    pub fn updated_at(&self, at: Revision) -> Revision {
        match self.touching.binary_search(&at) {
            Ok(_) => at,
            Err(0) => self.created,
            Err(i) => self.touching[i - 1],
        }
    }

    /// Revisions `<= at` that touched the list, ascending, after `after`.
    pub fn touching(&self, after: Revision, at: Revision) -> impl Iterator<Item = Revision> + '_ {
        let start = match self.touching.binary_search(&after) {
            Ok(i) => i + 1,
            Err(i) => i,
        };
        self.touching.skip(start).into_iter().take_while(move |r| *r <= at)
    }

    /// The change that decides (country) at (as_of, at): the last event in
    /// (effective_at, revision) order among those recorded at or before `at`
    /// and in effect at `as_of`.
    pub fn deciding(&self, country: Country, as_of: Timestamp, at: Revision) -> Option<&Event> {
        deciding_in(self.entries.get(&country)?, as_of, at)
    }

    /// Members at (as_of, at), ordered by country, with the event that made
    /// each a member.
    pub fn members(&self, as_of: Timestamp, at: Revision) -> impl Iterator<Item = (Country, &Event)> {
        self.members_after(None, as_of, at)
    }

    /// Countries whose deciding change at (as_of, at) is a removal, ordered,
    /// with that change.
    pub fn removed(&self, as_of: Timestamp, at: Revision) -> impl Iterator<Item = (Country, &Event)> {
        self.entries.iter().filter_map(move |(c, timeline)| {
            deciding_in(timeline, as_of, at).filter(|e| e.action == EntryAction::Remove).map(|e| (*c, e))
        })
    }

    /// Members at (as_of, at) whose code is greater than `after`.
    pub fn members_after(
        &self,
        after: Option<Country>,
        as_of: Timestamp,
        at: Revision,
    ) -> impl Iterator<Item = (Country, &Event)> {
        let range = match after {
            Some(c) => self.entries.range((std::ops::Bound::Excluded(c), std::ops::Bound::Unbounded)),
            None => self.entries.range::<_, Country>(..),
        };
        range.filter_map(move |(c, timeline)| {
            deciding_in(timeline, as_of, at).filter(|e| e.action == EntryAction::Add).map(|e| (*c, e))
        })
    }

    /// Every event of `country` recorded at or before `at`, in
    /// (effective_at, revision) order: its whole timeline as known then.
    pub fn timeline(&self, country: Country, at: Revision) -> impl Iterator<Item = &Event> {
        self.entries.get(&country).into_iter().flat_map(|t| t.iter()).filter(move |e| e.revision <= at)
    }

    /// Every event recorded at or before `at`, of every country, by country.
    pub fn events(&self, at: Revision) -> impl Iterator<Item = (Country, &Event)> {
        self.entries.iter().flat_map(move |(c, t)| t.iter().filter(move |e| e.revision <= at).map(move |e| (*c, e)))
    }

    /// Future-dated events: recorded at or before `at` but not in effect at
    /// `as_of`.
    pub fn pending(&self, as_of: Timestamp, at: Revision) -> impl Iterator<Item = &Event> {
        self.entries.values().flat_map(|t| t.iter()).filter(move |e| e.effective_at > as_of && e.revision <= at)
    }
}

/// The deciding event of a timeline (sorted by (effective_at, revision)) at
/// (as_of, at): the last one recorded at or before `at` and in effect at
/// `as_of`.
fn deciding_in(timeline: &Vector<Event>, as_of: Timestamp, at: Revision) -> Option<&Event> {
    timeline.iter().rev().find(|e| e.effective_at <= as_of && e.revision <= at)
}

/// The whole registry at one revision. Immutable; shared by `Arc`.
#[derive(Clone, Debug)]
pub struct Snapshot {
    revision: Revision,
    store_id: Arc<str>,
    lists: OrdMap<ListId, Arc<ListState>>,
    /// Every changeset; index = revision - 1 (revisions are dense).
    log: Vector<Arc<Changeset>>,
    /// Idempotency keys seen: request id -> revision.
    requests: RequestIndex,
    /// Future-dated changesets (effective after they were recorded) whose
    /// activation entry is not recorded yet, by (effective_at, revision).
    pending: OrdSet<(Timestamp, Revision)>,
}

impl Snapshot {
    /// The empty registry of a store.
    pub fn empty(store_id: &str) -> Self {
        Snapshot {
            revision: Revision::ZERO,
            store_id: Arc::from(store_id),
            lists: OrdMap::new(),
            log: Vector::new(),
            requests: RequestIndex::default(),
            pending: OrdSet::new(),
        }
    }

    /// The earliest future-dated changeset still awaiting its activation
    /// entry: (effective_at, revision).
    pub fn next_pending(&self) -> Option<(Timestamp, Revision)> {
        self.pending.get_min().copied()
    }

    /// Whether the changeset at `rev` (effective at `t`) awaits activation.
    pub fn is_pending(&self, t: Timestamp, rev: Revision) -> bool {
        self.pending.contains(&(t, rev))
    }

    /// The head revision.
    pub fn revision(&self) -> Revision {
        self.revision
    }

    /// The store id.
    pub fn store_id(&self) -> &str {
        &self.store_id
    }

    /// The store id, shared (no copy: it goes into every response).
    pub fn store_id_shared(&self) -> Arc<str> {
        self.store_id.clone()
    }

    /// A list as it exists at revision `at`.
    pub fn list_at(&self, id: &ListId, at: Revision) -> Result<&ListState, Error> {
        match self.lists.get(id) {
            Some(l) if l.created <= at => Ok(l),
            _ => Err(Error::ListNotFound { list: id.clone(), at: (at < self.revision).then_some(at) }),
        }
    }

    /// All lists existing at revision `at`, by id.
    pub fn lists_at(&self, at: Revision) -> impl Iterator<Item = &ListState> {
        self.lists.values().map(|l| &**l).filter(move |l| l.created <= at)
    }

    /// The changeset at a revision (`1..=head`).
    pub fn changeset(&self, r: Revision) -> Option<&Arc<Changeset>> {
        let i = usize::try_from(r.0.checked_sub(1)?).ok()?;
        self.log.get(i)
    }

    /// The revision recorded under an idempotency key.
    pub fn request(&self, id: &str) -> Option<Revision> {
        self.requests.get(id, |r| self.changeset(r).and_then(|cs| cs.request.as_ref()).is_some_and(|k| *k.id == *id))
    }

    /// Changesets with revision in `(after, head]`, ascending.
    pub fn changesets_after(&self, after: Revision) -> impl Iterator<Item = &Arc<Changeset>> {
        let start = usize::try_from(after.0).unwrap_or(usize::MAX).min(self.log.len());
        // A focus narrowed to the range: O(log n) to reach `after`, not a
        // walk from revision 1 (a watcher far behind reads in batches).
        self.log.focus().narrow(start..).into_iter()
    }

    /// Decides (list, country) at (as_of, at).
    pub fn check(&self, list: &ListId, country: Country, as_of: Timestamp, at: Revision) -> Result<Decision, Error> {
        let l = self.list_at(list, at)?;
        Ok(l.decide(l.meta_at(at).mode, country, as_of, at).to_decision())
    }

    /// The next snapshot: this one with `cs` applied. `cs` must be the next
    /// revision; anything else means the store and memory disagree.
    pub fn apply(&self, cs: Changeset) -> Result<Snapshot, Error> {
        let mut next = self.clone();
        next.apply_mut(cs)?;
        Ok(next)
    }

    /// `cs` applied to this snapshot in place. Applying a batch to one
    /// snapshot this way copies each shared node of the persistent
    /// collections once (then owns it) instead of once per changeset, which
    /// is most of the cost of loading a long history. On an error the
    /// snapshot is half-applied: discard it.
    pub fn apply_mut(&mut self, mut cs: Changeset) -> Result<(), Error> {
        if cs.revision != self.revision.next() {
            return Err(Error::Corrupt(format!(
                "changeset revision {} does not follow head {}",
                cs.revision, self.revision
            )));
        }
        let rev = cs.revision;
        // Every change names its list: share the list's own id rather than
        // keep a copy per change (a long history holds millions).
        for change in &mut cs.changes {
            if let Some(l) = self.lists.get(change.list()) {
                change.set_list(l.id.clone());
            }
        }
        let cs = Arc::new(cs);
        let mut touched: Vec<ListId> = Vec::new();
        for (i, change) in cs.changes.iter().enumerate() {
            touch(&mut touched, change.list());
            self.apply_change(i, change, &cs)?;
        }
        self.track_activation(&cs, &mut touched);
        for id in touched {
            self.list_mut(&id, rev)?.touching.push_back(rev);
        }
        if let Some(key) = &cs.request {
            self.requests.insert(&key.id, rev);
        }
        self.log.push_back(cs);
        self.revision = rev;
        Ok(())
    }

    /// One change of changeset `cs`, applied in place.
    fn apply_change(&mut self, index: usize, change: &Change, cs: &Arc<Changeset>) -> Result<(), Error> {
        let rev = cs.revision;
        match change {
            Change::CreateList { list, meta } => {
                if self.lists.contains_key(list) {
                    return Err(Error::Corrupt(format!("revision {rev} creates existing list {list}")));
                }
                let state = ListState {
                    id: list.clone(),
                    created: rev,
                    versions: vec![(rev, (**meta).clone())],
                    entries: OrdMap::new(),
                    touching: Vector::new(),
                };
                self.lists.insert(list.clone(), Arc::new(state));
            }
            Change::UpdateList { list, meta } => self.list_mut(list, rev)?.versions.push((rev, (**meta).clone())),
            Change::Entry { list, country, action, .. } => {
                let change = u32::try_from(index)
                    .map_err(|_| Error::Corrupt(format!("revision {rev} has more than 2^32 changes")))?;
                let event = Event {
                    effective_at: cs.effective_at,
                    revision: rev,
                    action: *action,
                    change,
                    changeset: cs.clone(),
                };
                let l = self.list_mut(list, rev)?;
                // Persistent vector, changed in place: it shares all but a
                // path of the tree with the previous snapshot (and nothing
                // is copied twice within one snapshot).
                let timeline = l.entries.entry(*country).or_default();
                insert_event(timeline, event);
            }
        }
        Ok(())
    }

    /// Future-dated changesets wait for their activation entry; an
    /// activation entry ends that wait and belongs to the history of every
    /// list its original changeset touched. Called before `cs` joins the
    /// log.
    fn track_activation(&mut self, cs: &Changeset, touched: &mut Vec<ListId>) {
        match cs.activates {
            None if cs.effective_at > cs.recorded_at
                && cs.changes.iter().any(|c| matches!(c, Change::Entry { .. })) =>
            {
                self.pending.insert((cs.effective_at, cs.revision));
            }
            None => {}
            Some(orig) => {
                if let Some(o) = self.changeset(orig).cloned() {
                    self.pending.remove(&(o.effective_at, orig));
                    for c in &o.changes {
                        touch(touched, c.list());
                    }
                }
            }
        }
    }

    fn list_mut(&mut self, id: &ListId, rev: Revision) -> Result<&mut ListState, Error> {
        self.lists
            .get_mut(id)
            .map(Arc::make_mut)
            .ok_or_else(|| Error::Corrupt(format!("revision {rev} changes unknown list {id}")))
    }
}

/// Puts `event` into a timeline sorted by (effective_at, revision). Its
/// revision is the highest so far, so it goes after every event with
/// effective_at <= its own: almost always at the end (a change in effect
/// when recorded), else a few places before it (a backdated correction).
/// Both are done by popping and pushing at the end, which is cheap on the
/// persistent vector; an insert in the middle splits and rebalances its
/// tree, which made up most of the time of loading a history with
/// corrections.
fn insert_event(timeline: &mut Vector<Event>, event: Event) {
    if timeline.last().is_none_or(|e| e.effective_at <= event.effective_at) {
        timeline.push_back(event);
        return;
    }
    let at = timeline
        .binary_search_by(|e| {
            if e.effective_at <= event.effective_at { std::cmp::Ordering::Less } else { std::cmp::Ordering::Greater }
        })
        .unwrap_or_else(|i| i);
    let later = timeline.len() - at;
    if later > 64 {
        timeline.insert(at, event);
        return;
    }
    let mut moved: Vec<Event> = (0..later).filter_map(|_| timeline.pop_back()).collect();
    timeline.push_back(event);
    while let Some(e) = moved.pop() {
        timeline.push_back(e);
    }
}

/// Adds `id` to the lists a changeset touched (once).
fn touch(touched: &mut Vec<ListId>, id: &ListId) {
    if !touched.contains(id) {
        touched.push(id.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RequestKey;

    fn keyed(rev: u64, key: &str) -> Changeset {
        let t = Timestamp::parse("2021-11-01").unwrap();
        Changeset {
            revision: Revision(rev),
            effective_at: t,
            recorded_at: t,
            actor: "".into(),
            reason: "r".into(),
            reference: "".into(),
            request: Some(RequestKey { id: key.into(), fingerprint: "f".into() }),
            changes: Box::new([]),
            activates: None,
        }
    }

    #[test]
    fn a_backdated_event_goes_before_later_effective_ones_and_after_its_equals() {
        let event = |t: &str, rev: u64| {
            let cs = Arc::new(keyed(rev, "k"));
            Event {
                effective_at: Timestamp::parse(t).unwrap(),
                revision: Revision(rev),
                action: EntryAction::Add,
                change: 0,
                changeset: cs,
            }
        };
        let mut timeline = Vector::new();
        for (t, rev) in [("2021-01-01", 1), ("2021-03-01", 2), ("2021-02-01", 3), ("2021-03-01", 4), ("2020-01-01", 5)]
        {
            insert_event(&mut timeline, event(t, rev));
        }
        // Long timelines take the middle insert instead: same order.
        let mut long = Vector::new();
        for i in 0..100 {
            insert_event(&mut long, event("2022-01-01", 10 + i));
        }
        insert_event(&mut long, event("2021-06-01", 200));
        let order: Vec<u64> = timeline.iter().map(|e| e.revision.0).collect();
        assert_eq!(order, [5, 1, 3, 2, 4]);
        assert_eq!(long[0].revision, Revision(200));
        assert_eq!(long.len(), 101);
    }
}
