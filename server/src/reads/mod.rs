//! The read side: a [`View`] is the registry resolved at one point
//! (revision and valid time) and owns every query at that point: check,
//! lists, members, history, diff, and a list's state for a snapshot-first
//! watch. Reads never touch the store.

pub mod filter;
pub mod request;
pub mod timeline;

use std::{collections::BTreeMap, sync::Arc};

use eligibility::{Consistency, Country, ListId, Point, Revision, Timestamp};

pub use self::filter::{Filter, present};
use crate::{
    error::{Error, Result},
    model::{Changeset, ListMeta},
    snapshot::{Decision, DecisionRef, Event, ListState, Snapshot},
};

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

/// One list's whole state at a view, for a snapshot-first watch: what a
/// mirror needs to answer checks from then on.
#[derive(Clone, Debug)]
pub struct SnapshotList {
    /// Metadata and counts.
    pub info: ListInfo,
    /// Members now (filtered by country).
    pub members: Vec<Member>,
    /// Recorded changesets touching the list that are not yet in effect.
    pub pending: Vec<Arc<Changeset>>,
    /// Countries whose deciding change is a removal, with that change.
    pub removed: Vec<Member>,
}

/// The registry at one resolved point: a snapshot, the transaction-time
/// revision to evaluate at (at most the snapshot's head) and the valid
/// time.
#[derive(Clone)]
pub struct View {
    snap: Arc<Snapshot>,
    at: Revision,
    as_of: Timestamp,
}

impl View {
    /// Resolves `point` against `snap`: `at_revision` beyond the head is
    /// an error naming `at_field`; `min_revision` must have been waited
    /// for already (the registry does).
    pub fn resolve(snap: Arc<Snapshot>, point: Point, at_field: &'static str) -> Result<View> {
        let at = match point.consistency {
            Consistency::AtRevision(r) if r > snap.revision() => {
                return Err(Error::RevisionOutOfRange { field: at_field, requested: r, head: snap.revision() });
            }
            Consistency::AtRevision(r) => r,
            _ => snap.revision(),
        };
        Ok(View { snap, at, as_of: point.as_of.unwrap_or_else(Timestamp::now) })
    }

    /// The head of a snapshot, now.
    pub fn head(snap: Arc<Snapshot>) -> View {
        View { at: snap.revision(), as_of: Timestamp::now(), snap }
    }

    /// The response header for this view.
    pub fn header(&self) -> Header {
        Header { revision: self.at, store_id: self.snap.store_id_shared(), as_of: self.as_of }
    }

    /// The revision the view evaluates at.
    pub fn revision(&self) -> Revision {
        self.at
    }

    /// The valid time the view evaluates at.
    pub fn as_of(&self) -> Timestamp {
        self.as_of
    }

    fn list(&self, list: &ListId) -> Result<&ListState> {
        self.snap.list_at(list, self.at)
    }

    /// Decides (list, country).
    pub fn check(&self, list: &ListId, country: Country) -> Result<Decision> {
        self.snap.check(list, country, self.as_of, self.at)
    }

    /// Decides every item, all at this one view.
    pub fn check_all(&self, items: &[(ListId, Country)]) -> Result<Vec<Decision>> {
        Ok(self.check_all_ref(items)?.iter().map(DecisionRef::to_decision).collect())
    }

    /// Decides every item, borrowing from the snapshot instead of copying
    /// (no reference count touched per item), and looking a list up once
    /// per run of items that name it: for an answer encoded straight from
    /// the decisions.
    pub fn check_all_ref(&self, items: &[(ListId, Country)]) -> Result<Vec<DecisionRef<'_>>> {
        let mut cached: Option<(&ListId, &ListState, eligibility::ListMode)> = None;
        items
            .iter()
            .map(|(list, country)| {
                let (l, mode) = match cached {
                    Some((id, l, mode)) if id == list => (l, mode),
                    _ => {
                        let l = self.list(list)?;
                        let mode = l.meta_at(self.at).mode;
                        cached = Some((list, l, mode));
                        (l, mode)
                    }
                };
                Ok(l.decide(mode, *country, self.as_of, self.at))
            })
            .collect()
    }

    fn info(&self, l: &ListState) -> ListInfo {
        ListInfo {
            id: l.id.clone(),
            meta: l.meta_at(self.at).clone(),
            created: l.created,
            updated: l.updated_at(self.at),
            member_count: l.members(self.as_of, self.at).count() as u32,
        }
    }

    /// One list's metadata and counts.
    pub fn list_info(&self, list: &ListId) -> Result<ListInfo> {
        self.list(list).map(|l| self.info(l))
    }

    /// Every list existing at the view, by id.
    pub fn lists(&self) -> Vec<ListInfo> {
        self.snap.lists_at(self.at).map(|l| self.info(l)).collect()
    }

    /// Members of `list` after `after`, at most `size` (see
    /// [`request::page_size`]).
    pub fn members(&self, list: &ListId, after: Option<Country>, size: usize) -> Result<MembersPage> {
        let l = self.list(list)?;
        let mut members: Vec<Member> = l
            .members_after(after, self.as_of, self.at)
            .take(size + 1)
            .map(|(country, e)| Member { country, event: e.clone() })
            .collect();
        let next_after = if members.len() > size {
            members.truncate(size);
            members.last().map(|m| m.country)
        } else {
            None
        };
        Ok(MembersPage { meta: l.meta_at(self.at).clone(), members, next_after })
    }

    /// Changesets touching `list` (and `country`) recorded at or before the
    /// view's revision, after `after`, at most `size`, filtered to the
    /// matching changes.
    pub fn history(
        &self,
        list: &ListId,
        country: Option<Country>,
        after: Revision,
        size: usize,
    ) -> Result<HistoryPage> {
        let l = self.list(list)?;
        let filter = Filter {
            lists: [list.clone()].into(),
            countries: country.into_iter().collect(),
            entries_only: country.is_some(),
        };
        let mut out = Vec::with_capacity(size.min(128));
        let mut next_after = None;
        for rev in l.touching(after, self.at) {
            let Some(cs) = self.snap.changeset(rev) else { continue };
            let Some(shown) = present(&self.snap, cs, &filter) else { continue };
            if out.len() == size {
                next_after = out.last().map(|c: &Changeset| c.revision);
                break;
            }
            out.push((*shown).clone());
        }
        Ok(HistoryPage { changesets: out, next_after })
    }

    /// Members added, removed and with changed conditions between `from`
    /// (resolved against this view's snapshot; its valid time defaults to
    /// this view's) and this view. `from` cannot wait for a revision.
    pub fn diff(&self, list: &ListId, from: Point) -> Result<DiffResult> {
        let from = request::diff_from(from)?;
        let from = View::resolve(
            self.snap.clone(),
            Point { as_of: from.as_of.or(Some(self.as_of)), ..from },
            "from.at_revision",
        )?;
        let before: BTreeMap<Country, &str> = match from.list(list) {
            Ok(l) => l.members(from.as_of, from.at).map(|(c, e)| (c, e.conditions())).collect(),
            // The list may not have existed yet at `from`: everything is new.
            Err(Error::ListNotFound { .. }) => BTreeMap::new(),
            Err(e) => return Err(e),
        };
        let after: BTreeMap<Country, &str> =
            self.list(list)?.members(self.as_of, self.at).map(|(c, e)| (c, e.conditions())).collect();
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

    /// The state of every list `filter` wants, for a snapshot-first watch:
    /// members and removed countries (filtered by country), and the
    /// recorded changes not yet in effect.
    pub fn snapshot_lists(&self, filter: &Filter) -> Vec<SnapshotList> {
        let member = |(country, e): (Country, &Event)| Member { country, event: e.clone() };
        self.snap
            .lists_at(self.at)
            .filter(|l| filter.wants_list(&l.id))
            .map(|l| {
                let mut pending_revs: Vec<Revision> = l.pending(self.as_of, self.at).map(|e| e.revision).collect();
                pending_revs.sort();
                pending_revs.dedup();
                let list_filter =
                    Filter { lists: [l.id.clone()].into(), countries: filter.countries.clone(), entries_only: false };
                SnapshotList {
                    info: self.info(l),
                    members: l
                        .members(self.as_of, self.at)
                        .filter(|(c, _)| filter.wants_country(*c))
                        .map(member)
                        .collect(),
                    pending: pending_revs
                        .into_iter()
                        .filter_map(|r| self.snap.changeset(r).and_then(|cs| present(&self.snap, cs, &list_filter)))
                        .collect(),
                    removed: l
                        .removed(self.as_of, self.at)
                        .filter(|(c, _)| filter.wants_country(*c))
                        .map(member)
                        .collect(),
                }
            })
            .collect()
    }
}
