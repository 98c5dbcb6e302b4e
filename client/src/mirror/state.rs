//! The mirror's state: per list, per country, the timeline of changes
//! that can still decide a check, indexed for a lookup without hashing.

use std::{collections::BTreeSet, sync::Arc};

use eligibility::{Country, ListId, Revision, Timestamp};

use crate::{
    error::{Error, Result},
    types::{Change, Changeset, DecidingChange, EntryAction, List},
    watch::SnapshotList,
};

#[derive(Clone, Debug)]
pub(super) struct MEvent {
    pub(super) effective_at: Timestamp,
    pub(super) revision: Revision,
    pub(super) action: EntryAction,
    pub(super) conditions: Arc<str>,
    pub(super) deciding: Arc<DecidingChange>,
}

/// Slot of a country in a list's table: its two letters as base-26.
pub(super) fn slot(c: Country) -> usize {
    let b = c.alpha2().as_bytes();
    (b[0] - b'A') as usize * 26 + (b[1] - b'A') as usize
}

pub(super) const SLOTS: usize = 26 * 26;

pub(super) static EMPTY: std::sync::LazyLock<Arc<str>> = std::sync::LazyLock::new(|| Arc::from(""));

#[derive(Clone, Debug)]
pub(super) struct MList {
    pub(super) id: ListId,
    pub(super) meta: List,
    /// Per-country timelines, sorted by (effective_at, revision), indexed by
    /// [`slot`]: a check is an array index, no hashing.
    pub(super) timelines: Vec<Option<Arc<Vec<MEvent>>>>,
}

impl MList {
    pub(super) fn new(meta: List) -> Self {
        MList { id: meta.id.clone(), meta, timelines: vec![None; SLOTS] }
    }

    pub(super) fn push(&mut self, country: Country, e: MEvent) {
        let t = self.timelines[slot(country)].get_or_insert_with(Default::default);
        let v = Arc::make_mut(t);
        let at = v.partition_point(|x| (x.effective_at, x.revision) <= (e.effective_at, e.revision));
        v.insert(at, e);
    }
}

#[derive(Clone, Debug, Default)]
pub(super) struct MState {
    pub(super) ready: bool,
    pub(super) revision: Revision,
    pub(super) base: Option<Timestamp>,
    pub(super) store_id: String,
    pub(super) lists: Vec<MList>,
}

pub(super) fn event(
    change_rev: Revision,
    effective_at: Timestamp,
    action: EntryAction,
    conditions: &str,
    d: &Arc<DecidingChange>,
) -> MEvent {
    MEvent { effective_at, revision: change_rev, action, conditions: Arc::from(conditions), deciding: d.clone() }
}

pub(super) fn find<'a>(
    state: &'a MState,
    list: &ListId,
    country: Country,
    as_of: Timestamp,
) -> Result<(&'a MList, Option<&'a MEvent>)> {
    let Some(l) = state.lists.iter().find(|l| l.id == *list) else {
        return Err(Error::NotFound(format!("list \"{list}\" is not in this mirror")));
    };
    let deciding = l.timelines[slot(country)].as_ref().and_then(|t| t.iter().rev().find(|e| e.effective_at <= as_of));
    Ok((l, deciding))
}

/// The current time for checks. On Linux, the coarse real-time clock: the
/// precise one costs about 40 ns in a VM here (most of a check's budget),
/// the coarse one about 6 ns, at the price of a few milliseconds of
/// resolution, which is immaterial for legal effective times.
#[cfg(target_os = "linux")]
pub(super) fn now() -> Timestamp {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_REALTIME_COARSE
    // exists on every Linux since 2.6.32.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
    if rc != 0 {
        return Timestamp::now();
    }
    Timestamp::from_micros(ts.tv_sec * 1_000_000 + ts.tv_nsec / 1000).unwrap_or_else(Timestamp::now)
}

/// The current time for checks.
#[cfg(not(target_os = "linux"))]
pub(super) fn now() -> Timestamp {
    Timestamp::now()
}

pub(super) fn deciding_of(c: &Changeset, action: EntryAction) -> Arc<DecidingChange> {
    Arc::new(DecidingChange {
        revision: c.revision,
        effective_at: c.effective_at,
        recorded_at: c.recorded_at,
        actor: c.actor.clone(),
        reason: c.reason.clone(),
        reference: c.reference.clone(),
        action,
    })
}

pub(super) fn apply_entries(state: &mut MState, c: &Changeset) {
    let (add, remove) = (deciding_of(c, EntryAction::Add), deciding_of(c, EntryAction::Remove));
    for ch in &c.changes {
        if let Change::Entry { list, country, action, conditions } = ch
            && let Some(l) = state.lists.iter_mut().find(|l| l.id == *list)
        {
            let d = if *action == EntryAction::Add { &add } else { &remove };
            l.push(*country, event(c.revision, c.effective_at, *action, conditions, d));
        }
    }
}

pub(super) fn from_snapshot(
    lists: Vec<SnapshotList>,
    revision: Revision,
    as_of: Timestamp,
    store_id: String,
) -> MState {
    let mut state = MState { ready: true, revision, base: Some(as_of), store_id, lists: Vec::new() };
    for s in lists {
        let mut l = MList::new(s.list);
        for e in s.entries.iter().chain(s.removed.iter()) {
            if let Some(d) = &e.deciding_change {
                let d = Arc::new(d.clone());
                l.push(e.country, event(d.revision, d.effective_at, d.action, &e.conditions, &d));
            }
        }
        state.lists.push(l);
        for p in &s.pending {
            apply_entries(&mut state, p);
        }
    }
    state
}

impl MState {
    /// This state with changeset `c` applied (lists created within
    /// `filter`, metadata updated, entries added to their timelines).
    pub(super) fn with_changeset(&self, c: &Changeset, filter: &BTreeSet<ListId>) -> MState {
        let mut s = self.clone();
        s.revision = c.revision;
        if c.activates.is_some() {
            // Activation entries repeat changes the mirror already holds (at
            // their original revision and effective time): applying them
            // again could reorder them.
            return s;
        }
        for ch in &c.changes {
            match ch {
                Change::ListCreated(l) if filter.is_empty() || filter.contains(&l.id) => {
                    s.lists.push(MList::new(l.clone()))
                }
                Change::ListUpdated(l) => {
                    if let Some(m) = s.lists.iter_mut().find(|m| m.id == l.id) {
                        let mode = m.meta.mode;
                        m.meta = List { mode, ..l.clone() };
                    }
                }
                _ => {}
            }
        }
        apply_entries(&mut s, c);
        s
    }
}
