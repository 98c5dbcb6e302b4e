//! Property test: the snapshot's evaluation equals a naive reading of the
//! design's rule. The state of (list, country) at (T, R) is obtained by
//! applying, in order of (effective_at, revision), every change with
//! revision <= R and effective_at <= T.

use eligibility::{Country, ListId, Revision, Timestamp};
use eligibility_server::{
    model::{Change, Changeset, EntryAction, ListMeta, ListMode},
    snapshot::{DecisionReason, Snapshot},
};
use proptest::prelude::*;

const COUNTRIES: [&str; 5] = ["FR", "MX", "SA", "JP", "XK"];
const LISTS: [(&str, ListMode); 2] = [("allow", ListMode::Allowlist), ("deny", ListMode::Denylist)];

#[derive(Clone, Debug)]
struct GenChangeset {
    effective_day: i64,
    entries: Vec<(usize, usize, bool, u8)>, // list, country, add?, conditions tag
}

fn gen_changeset() -> impl Strategy<Value = GenChangeset> {
    (0i64..40, prop::collection::vec((0usize..2, 0usize..5, any::<bool>(), 0u8..3), 1..6))
        .prop_map(|(effective_day, entries)| GenChangeset { effective_day, entries })
}

fn day(d: i64) -> Timestamp {
    Timestamp::from_micros(1_600_000_000_000_000 + d * 86_400_000_000).unwrap()
}

/// The reference: filter, sort by (effective_at, revision), fold.
fn naive(
    history: &[Changeset],
    list: &ListId,
    country: Country,
    t: Timestamp,
    r: Revision,
) -> Option<(bool, Revision, String)> {
    let mut applicable: Vec<(Timestamp, Revision, bool, String)> = Vec::new();
    for cs in history.iter().filter(|cs| cs.revision <= r && cs.effective_at <= t) {
        for ch in &cs.changes {
            if let Change::Entry { list: l, country: c, action, conditions } = ch
                && l == list
                && *c == country
            {
                applicable.push((cs.effective_at, cs.revision, *action == EntryAction::Add, conditions.clone()));
            }
        }
    }
    applicable.sort_by_key(|(e, r, ..)| (*e, *r));
    let mut state = None;
    for (_, rev, member, cond) in applicable {
        state = Some((member, rev, cond));
    }
    state
}

fn changeset(revision: u64, effective_at: Timestamp, changes: Vec<Change>) -> Changeset {
    Changeset {
        revision: Revision(revision),
        effective_at,
        recorded_at: day(100 + revision as i64),
        actor: "t".into(),
        reason: format!("cs {revision}").into(),
        reference: "".into(),
        request: None,
        changes: changes.into(),
        activates: None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn snapshot_matches_naive_rule(
        changesets in prop::collection::vec(gen_changeset(), 1..25),
        probes in prop::collection::vec((0i64..45, 0u64..30, 0usize..2, 0usize..5), 40),
    ) {
        let mut snap = Snapshot::empty("test-store");
        let create = changeset(1, day(0), LISTS.iter().map(|(id, mode)| Change::CreateList {
            list: ListId::parse(id).unwrap(),
            meta: Box::new(ListMeta { title: String::new(), description: String::new(), authority: String::new(), mode: *mode }),
        }).collect());
        snap = snap.apply(create.clone()).unwrap();
        let mut history = vec![create];
        for (i, g) in changesets.iter().enumerate() {
            let mut seen = std::collections::HashSet::new();
            let changes = g.entries.iter()
                .filter(|(l, c, ..)| seen.insert((*l, *c)))
                .map(|(l, c, add, tag)| Change::Entry {
                    list: ListId::parse(LISTS[*l].0).unwrap(),
                    country: Country::parse(COUNTRIES[*c]).unwrap(),
                    action: if *add { EntryAction::Add } else { EntryAction::Remove },
                    conditions: if *add && *tag > 0 { format!("cond-{tag}") } else { String::new() },
                })
                .collect();
            let cs = changeset(i as u64 + 2, day(g.effective_day), changes);
            snap = snap.apply(cs.clone()).unwrap();
            history.push(cs);
        }
        let head = snap.revision().0;
        for (d, r, l, c) in probes {
            let r = Revision(1 + r % head);
            let (list_id, mode) = LISTS[l];
            let list = ListId::parse(list_id).unwrap();
            let country = Country::parse(COUNTRIES[c]).unwrap();
            let t = day(d);
            let got = snap.check(&list, country, t, r).unwrap();
            let want = naive(&history, &list, country, t, r);
            let member = want.as_ref().is_some_and(|(m, ..)| *m);
            let expected_eligible = match mode { ListMode::Allowlist => member, ListMode::Denylist => !member };
            prop_assert_eq!(got.eligible, expected_eligible, "eligible at day {} rev {}", d, r);
            prop_assert_eq!(got.deciding.as_ref().map(|e| e.revision), want.as_ref().map(|w| w.1));
            prop_assert_eq!(got.conditions(), want.as_ref().filter(|w| w.0).map(|w| w.2.as_str()).unwrap_or(""));
            let expected_reason = match (mode, &want) {
                (ListMode::Allowlist, None) => DecisionReason::NotListed,
                (ListMode::Allowlist, Some((true, ..))) => DecisionReason::Listed,
                (ListMode::Allowlist, Some((false, ..))) => DecisionReason::Removed,
                (ListMode::Denylist, None) => DecisionReason::NotDenylisted,
                (ListMode::Denylist, Some((true, ..))) => DecisionReason::Denylisted,
                (ListMode::Denylist, Some((false, ..))) => DecisionReason::DenylistRemoved,
            };
            prop_assert_eq!(got.reason, expected_reason);
            // Membership listing agrees with the checks.
            let listed = snap.list_at(&list, r).unwrap().members(t, r).any(|(c, _)| c == country);
            prop_assert_eq!(listed, member);
        }
    }
}

#[test]
fn a_changeset_that_does_not_follow_the_head_is_refused() {
    let snap = Snapshot::empty("s");
    let err = snap.apply(changeset(2, day(0), vec![])).unwrap_err();
    assert!(err.to_string().contains("does not follow head 0"), "{err}");
}
