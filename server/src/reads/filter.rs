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

    /// Whether a reader with this filter sees `cs` exactly as recorded (so
    /// it may share the feed's item and its encoding): the filter passes
    /// every change of `cs` (all of them when it passes everything), `cs`
    /// is not an activation (which a reader sees carrying the changes it
    /// activates) and it has changes to show. A watcher of one list thus
    /// shares the encoding of a changeset about that list alone, instead
    /// of encoding its own copy (measured: the JSON of the same changeset
    /// per SSE reader was most of the fan-out's cost). The one statement
    /// of it: the watcher's live path, its log path and [`present`] all
    /// ask this.
    pub fn passes_whole(&self, cs: &Changeset) -> bool {
        cs.activates.is_none()
            && !cs.changes.is_empty()
            && (self.is_all() || cs.changes.iter().all(|c| self.matches(c)))
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
    if filter.passes_whole(cs) {
        return Some(cs.clone());
    }
    let changes: Vec<Change> = source.changes.iter().filter(|c| filter.matches(c)).cloned().collect();
    if changes.is_empty() {
        return None;
    }
    let mut out = (**cs).clone();
    out.changes = changes.into();
    if cs.activates.is_some() {
        out.effective_at = source.effective_at;
    }
    Some(Arc::new(out))
}

#[cfg(test)]
mod tests {
    use eligibility::{Revision, Timestamp};

    use super::*;
    use crate::model::EntryAction;

    fn changeset(revision: u64, changes: Vec<Change>, activates: Option<u64>) -> Arc<Changeset> {
        Arc::new(Changeset {
            revision: Revision(revision),
            effective_at: Timestamp::from_micros(0).unwrap(),
            recorded_at: Timestamp::from_micros(0).unwrap(),
            actor: "a".into(),
            reason: "r".into(),
            reference: "".into(),
            request: None,
            changes: changes.into(),
            activates: activates.map(Revision),
        })
    }

    #[test]
    fn a_changeset_is_passed_whole_only_when_every_reader_would_see_it_as_recorded() {
        let fr = Change::Entry {
            list: ListId::parse("cyber").unwrap(),
            country: Country::parse("FR").unwrap(),
            action: EntryAction::Add,
            conditions: String::new(),
        };
        let all = Filter::default();
        let snap = Snapshot::empty("s");
        let plain = changeset(1, vec![fr.clone()], None);
        assert!(all.passes_whole(&plain));
        assert!(Arc::ptr_eq(&present(&snap, &plain, &all).unwrap(), &plain), "shared, not copied");
        // Nothing to show: not passed, and not presented either (the live
        // path and the log path agree that a Progress is owed instead).
        let empty = changeset(2, vec![], None);
        assert!(!all.passes_whole(&empty));
        assert!(present(&snap, &empty, &all).is_none());
        // An activation is presented with the changes it activates.
        let activation = changeset(3, vec![], Some(1));
        assert!(!all.passes_whole(&activation));
        let narrow = Filter { countries: [Country::parse("MX").unwrap()].into(), ..Filter::default() };
        assert!(!narrow.passes_whole(&plain));
        assert!(present(&snap, &plain, &narrow).is_none());
        // A filter that every change passes shares the changeset too; one
        // that passes some of them gets its own copy.
        let cyber = Filter { lists: [ListId::parse("cyber").unwrap()].into(), ..Filter::default() };
        assert!(cyber.passes_whole(&plain));
        assert!(Arc::ptr_eq(&present(&snap, &plain, &cyber).unwrap(), &plain));
        let mx = Change::Entry {
            list: ListId::parse("other").unwrap(),
            country: Country::parse("MX").unwrap(),
            action: EntryAction::Add,
            conditions: String::new(),
        };
        let mixed = changeset(4, vec![fr.clone(), mx], None);
        assert!(!cyber.passes_whole(&mixed));
        assert_eq!(present(&snap, &mixed, &cyber).unwrap().changes.len(), 1);
    }
}
