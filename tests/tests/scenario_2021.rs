//! The reported 2021 cut of the cyber list, end to end on the demo data.

use eligibility_client::{DecisionReason, EntryAction, Point, Revision};
use eligibility_e2e::{AFTER_CUT, REMOVED, TestServer, at, cc, list};

#[tokio::test]
async fn after_the_cut_the_37_are_eligible_and_the_removed_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), true).await;
    let client = server.client().await;
    let cyber = list("cyber");

    for code in AFTER_CUT {
        let a = client.check(&cyber, cc(code)).await.unwrap();
        assert!(a.decision.eligible, "{code} should be eligible after the cut");
        assert_eq!(a.decision.reason, DecisionReason::Listed);
        let d = a.decision.deciding_change.expect("deciding change");
        assert_eq!(d.revision, Revision(2), "{code} was listed by the known-members changeset");
        assert_eq!(d.effective_at, at("2021-01-01"));
        assert_eq!(d.action, EntryAction::Add);
    }
    for code in REMOVED {
        let a = client.check(&cyber, cc(code)).await.unwrap();
        assert!(!a.decision.eligible, "{code} must not be eligible after the cut");
        assert_eq!(a.decision.reason, DecisionReason::Removed);
        let d = a.decision.deciding_change.expect("the cut decides");
        assert_eq!(d.revision, Revision(3));
        assert_eq!(d.effective_at, at("2021-11-01"));
        assert_eq!(d.action, EntryAction::Remove);
        assert!(d.reason.contains("102 to 37"), "reason: {}", d.reason);
        assert!(d.reference.contains("Calcalist"), "reference: {}", d.reference);
        assert_eq!(a.header.revision, Revision(3));
        assert!(!a.header.store_id.is_empty());
    }
    for code in ["CN", "RU"] {
        let a = client.check(&cyber, cc(code)).await.unwrap();
        assert!(!a.decision.eligible);
        assert_eq!(a.decision.reason, DecisionReason::NotListed);
        assert_eq!(a.decision.deciding_change, None);
    }
}

#[tokio::test]
async fn before_the_cut_the_removed_countries_were_eligible() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), true).await;
    let client = server.client().await;
    let cyber = list("cyber");
    let before = Point::as_of(at("2021-10-15"));

    for code in REMOVED.iter().chain(AFTER_CUT.iter()) {
        let a = client.check_at(&cyber, cc(code), before).await.unwrap();
        assert!(a.decision.eligible, "{code} was eligible on 2021-10-15");
        assert_eq!(a.header.as_of, at("2021-10-15"));
        assert_eq!(a.decision.deciding_change.unwrap().revision, Revision(2));
    }
    // The cut, as a diff and as membership counts.
    let diff = client.diff(&cyber, Point::as_of(at("2021-10-15")), Point::as_of(at("2021-11-02"))).await.unwrap();
    let mut removed: Vec<String> = diff.removed.iter().map(|c| c.to_string()).collect();
    removed.sort();
    assert_eq!(removed, ["AE", "MA", "MX", "SA"]);
    assert!(diff.added.is_empty());
    let members = client.members(&cyber, Point::latest()).await.unwrap();
    let codes: Vec<String> = members.entries.iter().map(|e| e.country.to_string()).collect();
    assert_eq!(codes, AFTER_CUT.to_vec());
    assert_eq!(client.members(&cyber, before).await.unwrap().entries.len(), 41);
    // Before the list existed in the record (revision 0) there is no list.
    let lists = client.lists(Point::latest()).await.unwrap().lists;
    assert_eq!(lists.len(), 1);
    assert_eq!(lists[0].member_count, 37);
}

#[tokio::test]
async fn history_shows_the_cut_with_its_basis() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), true).await;
    let client = server.client().await;
    let eligibility_client::HistoryAnswer { header, changesets: history, .. } =
        client.history(&list("cyber"), Some(cc("MX")), None).await.unwrap();
    assert_eq!(header.revision, Revision(3));
    let revs: Vec<u64> = history.iter().map(|c| c.revision.0).collect();
    assert_eq!(revs, [2, 3]);
    assert_eq!(history[1].changes.len(), 1, "filtered to MX's change");
    let all = client.history(&list("cyber"), None, None).await.unwrap().changesets;
    assert_eq!(all.iter().map(|c| c.revision.0).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(all[2].changes.len(), 4);
    assert_eq!(all[1].changes.len(), 41);
}
