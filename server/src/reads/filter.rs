//! Which changes a reader wants, and a changeset as that reader sees it.
//! Shared by History (one list, maybe one country) and the change stream.

use std::{collections::BTreeSet, sync::Arc};

use eligibility::{Country, ListId};

use crate::{
    model::{Change, Changeset},
    snapshot::Snapshot,
};

/// Which changes a reader wants. Empty sets mean "all".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only these lists.
    pub lists: BTreeSet<ListId>,
    /// Only entry changes about these countries (list metadata changes
    /// pass, unless `entries_only`).
    pub countries: BTreeSet<Country>,
    /// Only entry changes (History of one country does not show list
    /// metadata changes; a watcher does).
    pub entries_only: bool,
}

impl Filter {
    /// Whether the filter lets `change` through.
    pub fn matches(&self, change: &Change) -> bool {
        self.wants_list(change.list())
            && match change.country() {
                Some(c) => self.wants_country(c),
                None => !self.entries_only,
            }
    }

    /// Whether the filter passes everything.
    pub fn is_all(&self) -> bool {
        self.lists.is_empty() && self.countries.is_empty() && !self.entries_only
    }

    /// Whether `list` is one the filter wants.
    pub fn wants_list(&self, list: &ListId) -> bool {
        self.lists.is_empty() || self.lists.contains(list)
    }

    /// Whether `country` is one the filter wants.
    pub fn wants_country(&self, country: Country) -> bool {
        self.countries.is_empty() || self.countries.contains(&country)
    }
}

/// `cs` as a watcher (or History reader) sees it: filtered to the matching
/// changes; an activation entry carries the changes of the changeset it
/// activates (they take effect now) and that changeset's effective time.
/// `None` when nothing matches.
pub fn present(snap: &Snapshot, cs: &Arc<Changeset>, filter: &Filter) -> Option<Arc<Changeset>> {
    let source = match cs.activates {
        Some(orig) => snap.changeset(orig)?,
        None => cs,
    };
    if filter.is_all() && cs.activates.is_none() {
        return (!cs.changes.is_empty()).then(|| cs.clone());
    }
    let changes: Vec<Change> = source.changes.iter().filter(|c| filter.matches(c)).cloned().collect();
    if changes.is_empty() {
        return None;
    }
    if cs.activates.is_none() && changes.len() == cs.changes.len() {
        return Some(cs.clone());
    }
    let mut out = (**cs).clone();
    out.changes = changes.into();
    if cs.activates.is_some() {
        out.effective_at = source.effective_at;
    }
    Some(Arc::new(out))
}
