//! Queries along valid time, for people looking at a list or a country:
//! a list's member count over time and a country's eligible intervals on
//! every list, both as recorded at the view's revision (so a backdated
//! correction shows from its revision on, and not before).

use std::{collections::BTreeMap, sync::Arc};

use eligibility::{Country, ListId, Revision, Timestamp};

use super::{Filter, ListInfo, View, present};
use crate::{
    error::Result,
    model::{Changeset, EntryAction, ListMode},
    snapshot::Event,
};

/// The member count from one valid time on (until the next step).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CountStep {
    /// When this count starts to hold.
    pub from: Timestamp,
    /// Members from then on.
    pub members: u32,
    /// The changesets with changes effective at `from`, ascending.
    pub revisions: Vec<Revision>,
}

/// A stretch of valid time over which a country's eligibility on a list
/// does not change.
#[derive(Clone, Debug)]
pub struct Interval {
    /// Start (`None`: since the beginning of time).
    pub from: Option<Timestamp>,
    /// End, exclusive (`None`: open-ended).
    pub to: Option<Timestamp>,
    /// Eligible over the interval?
    pub eligible: bool,
    /// The change that opened the interval (`None` before any change).
    pub opened_by: Option<Event>,
}

/// A country's history on one list, as recorded at the view's revision.
#[derive(Clone, Debug)]
pub struct CountryTimeline {
    /// The list.
    pub list: ListInfo,
    /// The country's eligibility along valid time, in order; adjacent
    /// intervals differ in eligibility.
    pub intervals: Vec<Interval>,
    /// Every recorded change for the country, in (effective_at, revision)
    /// order.
    pub events: Vec<Event>,
}

impl View {
    /// `list`'s member count along valid time as recorded at the view's
    /// revision: one step at each distinct effective time of its changes,
    /// in time order. One pass over the list's events.
    pub fn member_counts(&self, list: &ListId) -> Result<Vec<CountStep>> {
        let l = self.list(list)?;
        let mut events: Vec<(Country, &Event)> = l.events(self.at).collect();
        events.sort_by_key(|(_, e)| (e.effective_at, e.revision));
        let mut member: BTreeMap<Country, bool> = BTreeMap::new();
        let mut count: u32 = 0;
        let mut steps: Vec<CountStep> = Vec::new();
        for (c, e) in events {
            let now = e.action == EntryAction::Add;
            let was = member.insert(c, now).unwrap_or(false);
            match (was, now) {
                (false, true) => count += 1,
                (true, false) => count -= 1,
                _ => {}
            }
            match steps.last_mut() {
                Some(s) if s.from == e.effective_at => {
                    s.members = count;
                    if s.revisions.last() != Some(&e.revision) && !s.revisions.contains(&e.revision) {
                        s.revisions.push(e.revision);
                        s.revisions.sort();
                    }
                }
                _ => steps.push(CountStep { from: e.effective_at, members: count, revisions: vec![e.revision] }),
            }
        }
        Ok(steps)
    }

    /// The changeset at revision `r`, if recorded at or before the view's.
    pub fn changeset(&self, r: Revision) -> Option<&Arc<Changeset>> {
        if r > self.at {
            return None;
        }
        self.snap.changeset(r)
    }

    /// Changesets recorded at or before the view's revision and before
    /// `before` (default: all), newest first, at most `size`; with `list`,
    /// only those touching it, filtered to its changes. Also the revision to
    /// continue before, when more follow.
    pub fn recent(
        &self,
        list: Option<&ListId>,
        before: Option<Revision>,
        size: usize,
    ) -> Result<(Vec<Arc<Changeset>>, Option<Revision>)> {
        let top = before.map_or(self.at, |b| Revision(b.0.saturating_sub(1)).min(self.at));
        let mut out = Vec::new();
        let mut push = |cs: Arc<Changeset>| {
            if out.len() == size {
                return false;
            }
            out.push(cs);
            true
        };
        let mut more = None;
        match list {
            Some(id) => {
                let l = self.list(id)?;
                let filter = Filter { lists: [id.clone()].into(), ..Filter::default() };
                let revs: Vec<Revision> = l.touching(Revision::ZERO, top).collect();
                for r in revs.into_iter().rev() {
                    let Some(shown) = self.snap.changeset(r).and_then(|cs| present(&self.snap, cs, &filter)) else {
                        continue;
                    };
                    if !push(shown) {
                        more = Some(Revision(r.0 + 1));
                        break;
                    }
                }
            }
            None => {
                for r in (1..=top.0).rev() {
                    let Some(cs) = self.snap.changeset(Revision(r)) else { continue };
                    if !push(cs.clone()) {
                        more = Some(Revision(r + 1));
                        break;
                    }
                }
            }
        }
        Ok((out, more))
    }

    /// `country`'s timeline on every list existing at the view, as
    /// recorded at the view's revision.
    pub fn country_timelines(&self, country: Country) -> Vec<CountryTimeline> {
        self.snap
            .lists_at(self.at)
            .map(|l| {
                let mode = l.meta_at(self.at).mode;
                let events: Vec<Event> = l.timeline(country, self.at).cloned().collect();
                CountryTimeline { list: self.info(l), intervals: intervals(mode, &events), events }
            })
            .collect()
    }
}

/// The intervals of constant eligibility of a timeline sorted by
/// (effective_at, revision): the deciding change at a time is the last one
/// in effect, so the state changes at each effective time, to what the
/// last change effective then says.
fn intervals(mode: ListMode, events: &[Event]) -> Vec<Interval> {
    let mut out = vec![Interval { from: None, to: None, eligible: eligibility::decide(mode, None).0, opened_by: None }];
    for (i, e) in events.iter().enumerate() {
        // Several changes at one time: only the last decides.
        if events.get(i + 1).is_some_and(|n| n.effective_at == e.effective_at) {
            continue;
        }
        let eligible = eligibility::decide(mode, Some(e.action)).0;
        let last = out.last_mut().expect("never empty");
        if last.eligible == eligible {
            continue;
        }
        last.to = Some(e.effective_at);
        out.push(Interval { from: Some(e.effective_at), to: None, eligible, opened_by: Some(e.clone()) });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(t: &str, rev: u64, action: EntryAction) -> Event {
        let cs = Changeset {
            revision: Revision(rev),
            effective_at: Timestamp::parse(t).unwrap(),
            recorded_at: Timestamp::parse(t).unwrap(),
            actor: "".into(),
            reason: "".into(),
            reference: "".into(),
            request: None,
            changes: Box::new([]),
            activates: None,
        };
        Event { effective_at: cs.effective_at, revision: cs.revision, action, change: 0, changeset: Arc::new(cs) }
    }

    #[test]
    fn intervals_change_at_each_effective_time_and_the_last_change_of_a_time_decides() {
        use EntryAction::{Add, Remove};
        let events = [
            event("2021-01-01", 2, Add),
            event("2021-06-01", 5, Add),
            event("2021-11-01", 3, Remove),
            event("2021-11-01", 4, Add),
            event("2022-01-01", 6, Remove),
        ];
        let got: Vec<(Option<String>, bool)> = intervals(ListMode::Allowlist, &events)
            .iter()
            .map(|i| (i.from.map(|t| t.to_string()), i.eligible))
            .collect();
        assert_eq!(
            got,
            [(None, false), (Some("2021-01-01T00:00:00Z".into()), true), (Some("2022-01-01T00:00:00Z".into()), false)]
        );
        // On a denylist, being listed is what makes a country ineligible.
        let deny: Vec<bool> = intervals(ListMode::Denylist, &events[..1]).iter().map(|i| i.eligible).collect();
        assert_eq!(deny, [true, false]);
    }
}
