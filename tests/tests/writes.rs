//! Write semantics: bitemporal evaluation, list modes, conditions,
//! idempotency, optimistic concurrency, declarative replacement.

use eligibility_client::{
    Client, DecisionReason, EntryChange, Error, ListMode, NewList, Point, Revision, WriteOptions,
};
use eligibility_e2e::{AFTER_CUT, REMOVED, TestServer, at, cc, list};

async fn new_list(client: &Client, id: &str, mode: ListMode) {
    client
        .create_list(
            &NewList {
                id: list(id),
                title: format!("{id} list"),
                description: String::new(),
                authority: "test authority".into(),
                mode,
            },
            &WriteOptions::reason("test setup"),
        )
        .await
        .unwrap();
}

/// The 41 publicly known members of the 2021 list, without conditions.
fn known_members() -> Vec<(eligibility_client::Country, String)> {
    AFTER_CUT.iter().chain(REMOVED.iter()).map(|s| (cc(s), String::new())).collect()
}

#[tokio::test]
async fn backdated_correction_changes_as_of_answers_only_from_its_revision_on() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), false).await;
    let c = server.client().await;
    new_list(&c, "dual", ListMode::Allowlist).await;
    let l = list("dual");
    let r2 = c
        .apply(&[EntryChange::add(&l, cc("FR"))], Some(at("2021-01-01")), &WriteOptions::reason("initial"))
        .await
        .unwrap()
        .revision;
    // Later, a correction is recorded: FR should have been removed as of
    // 2021-06-01.
    let r3 = c
        .apply(&[EntryChange::remove(&l, cc("FR"))], Some(at("2021-06-01")), &WriteOptions::reason("correction"))
        .await
        .unwrap()
        .revision;
    assert_eq!((r2, r3), (Revision(2), Revision(3)));

    let july = Point::as_of(at("2021-07-01"));
    let now = c.check_at(&l, cc("FR"), july).await.unwrap();
    assert!(!now.decision.eligible, "at the latest revision the correction applies");
    assert_eq!(now.decision.reason, DecisionReason::Removed);
    assert_eq!(now.decision.deciding_change.unwrap().revision, r3);

    let then = c.check_at(&l, cc("FR"), july.at_revision(r2)).await.unwrap();
    assert!(then.decision.eligible, "what the service knew at revision 2");
    assert_eq!(then.header.revision, r2);
    assert_eq!(then.decision.deciding_change.unwrap().revision, r2);

    // Before the correction's effective date, FR is eligible either way.
    let may = c.check_at(&l, cc("FR"), Point::as_of(at("2021-05-01"))).await.unwrap();
    assert!(may.decision.eligible);
}

#[tokio::test]
async fn an_earlier_effective_change_recorded_later_does_not_override_a_later_effective_one() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), false).await;
    let c = server.client().await;
    new_list(&c, "x", ListMode::Allowlist).await;
    let l = list("x");
    c.apply(&[EntryChange::remove(&l, cc("DE"))], Some(at("2022-01-01")), &WriteOptions::reason("r")).await.unwrap();
    // Recorded later, but effective earlier: applied first in (effective_at,
    // revision) order, so the 2022 removal still decides after 2022.
    c.apply(&[EntryChange::add(&l, cc("DE"))], Some(at("2021-01-01")), &WriteOptions::reason("a")).await.unwrap();
    assert!(!c.check_at(&l, cc("DE"), Point::as_of(at("2023-01-01"))).await.unwrap().decision.eligible);
    assert!(c.check_at(&l, cc("DE"), Point::as_of(at("2021-06-01"))).await.unwrap().decision.eligible);
}

#[tokio::test]
async fn future_dated_changes_take_effect_at_their_time() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), false).await;
    let c = server.client().await;
    new_list(&c, "x", ListMode::Allowlist).await;
    let l = list("x");
    c.apply(&[EntryChange::add(&l, cc("JP"))], Some(at("2999-01-01")), &WriteOptions::reason("future")).await.unwrap();
    assert!(!c.check(&l, cc("JP")).await.unwrap().decision.eligible, "not yet in effect");
    assert!(c.check_at(&l, cc("JP"), Point::as_of(at("2999-01-02"))).await.unwrap().decision.eligible);
}

#[tokio::test]
async fn denylist_semantics_and_conditions() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), false).await;
    let c = server.client().await;
    new_list(&c, "embargo", ListMode::Denylist).await;
    new_list(&c, "cyber", ListMode::Allowlist).await;
    let (emb, cyb) = (list("embargo"), list("cyber"));
    c.apply(
        &[
            EntryChange::add(&emb, cc("KP")),
            EntryChange::add(&emb, cc("IR")),
            EntryChange::add(&cyb, cc("IN"))
                .with_conditions("government end users only; end-user declaration required"),
        ],
        Some(at("2020-01-01")),
        &WriteOptions::reason("setup"),
    )
    .await
    .unwrap();
    c.apply(&[EntryChange::remove(&emb, cc("IR"))], Some(at("2021-01-01")), &WriteOptions::reason("lifted"))
        .await
        .unwrap();

    let kp = c.check(&emb, cc("PRK")).await.unwrap().decision;
    assert!(!kp.eligible);
    assert_eq!(kp.reason, DecisionReason::Denylisted);
    let ir = c.check(&emb, cc("IR")).await.unwrap().decision;
    assert!(ir.eligible);
    assert_eq!(ir.reason, DecisionReason::DenylistRemoved);
    let fr = c.check(&emb, cc("FR")).await.unwrap().decision;
    assert!(fr.eligible);
    assert_eq!(fr.reason, DecisionReason::NotDenylisted);
    assert_eq!(fr.deciding_change, None);

    let india = c.check(&cyb, cc("356")).await.unwrap().decision;
    assert!(india.eligible);
    assert_eq!(india.country.to_string(), "IN");
    assert_eq!(india.conditions, "government end users only; end-user declaration required");
    let batch = c
        .batch_check(&[(cyb.clone(), cc("IN")), (emb.clone(), cc("KP")), (cyb.clone(), cc("FR"))], Point::latest())
        .await
        .unwrap();
    assert_eq!(batch.decisions.len(), 3);
    assert_eq!(batch.decisions[0].conditions, india.conditions);
    assert!(!batch.decisions[1].eligible);
    assert!(!batch.decisions[2].eligible);
    let members = c.members(&cyb, Point::latest()).await.unwrap();
    assert_eq!(members.entries[0].conditions, india.conditions);
    assert_eq!(members.mode, ListMode::Allowlist);
}

#[tokio::test]
async fn retry_with_the_same_request_id_returns_the_original_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), false).await;
    let c = server.client().await;
    new_list(&c, "x", ListMode::Allowlist).await;
    let l = list("x");
    let opts = WriteOptions::reason("add NL").with_request_id("req-1");
    let first = c.apply(&[EntryChange::add(&l, cc("NL"))], None, &opts).await.unwrap();
    assert!(first.recorded && !first.replayed);
    let again = c.apply(&[EntryChange::add(&l, cc("NL"))], None, &opts).await.unwrap();
    assert_eq!(again.revision, first.revision);
    assert!(!again.recorded && again.replayed);
    assert_eq!(again.changeset, first.changeset);
    assert_eq!(server.registry.snapshot().revision(), first.revision, "nothing new recorded");

    // The same key for different content is refused.
    let err = c.apply(&[EntryChange::add(&l, cc("BE"))], None, &opts).await.unwrap_err();
    assert!(matches!(err, Error::AlreadyExists(ref m) if m.contains("req-1")), "{err:?}");
    assert_eq!(server.registry.snapshot().revision(), first.revision);
}

#[tokio::test]
async fn stale_expected_revision_is_aborted() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), false).await;
    let c = server.client().await;
    new_list(&c, "x", ListMode::Allowlist).await;
    let l = list("x");
    let ok = c
        .apply(&[EntryChange::add(&l, cc("NL"))], None, &WriteOptions::reason("a").with_expected_revision(Revision(1)))
        .await
        .unwrap();
    assert_eq!(ok.revision, Revision(2));
    let err = c
        .apply(&[EntryChange::add(&l, cc("BE"))], None, &WriteOptions::reason("b").with_expected_revision(Revision(1)))
        .await
        .unwrap_err();
    match err {
        Error::Conflict { message, .. } => {
            assert!(message.contains("expected_revision 1") && message.contains("2"), "{message}")
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(server.registry.snapshot().revision(), Revision(2));
}

#[tokio::test]
async fn replace_members_from_41_to_37_records_exactly_the_removals_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), false).await;
    let c = server.client().await;
    new_list(&c, "cyber", ListMode::Allowlist).await;
    let l = list("cyber");
    let known = known_members();
    let first =
        c.replace_members(&l, &known, Some(at("2021-01-01")), &WriteOptions::reason("known members")).await.unwrap();
    assert_eq!(first.changeset.as_ref().unwrap().changes.len(), 41);

    let kept: Vec<_> = AFTER_CUT.iter().map(|s| (cc(s), String::new())).collect();
    let cut = c.replace_members(&l, &kept, Some(at("2021-11-01")), &WriteOptions::reason("the cut")).await.unwrap();
    assert!(cut.recorded);
    let cs = cut.changeset.unwrap();
    assert_eq!(cs.revision, Revision(3));
    let mut removed: Vec<String> = cs
        .changes
        .iter()
        .map(|ch| match ch {
            eligibility_client::Change::Entry { country, action: eligibility_client::EntryAction::Remove, .. } => {
                country.to_string()
            }
            other => panic!("unexpected change {other:?}"),
        })
        .collect();
    removed.sort();
    assert_eq!(removed, ["AE", "MA", "MX", "SA"]);

    // Replaying the same membership changes nothing.
    let again =
        c.replace_members(&l, &kept, Some(at("2021-11-01")), &WriteOptions::reason("the cut, again")).await.unwrap();
    assert!(!again.recorded && !again.replayed);
    assert_eq!(again.revision, Revision(3));
    assert_eq!(again.changeset, None);
    assert_eq!(server.registry.snapshot().revision(), Revision(3));

    // A changed condition is an add with the new conditions.
    let mut cond = kept.clone();
    cond[0].1 = "licence required".into();
    let upd = c.replace_members(&l, &cond, None, &WriteOptions::reason("conditions")).await.unwrap();
    assert_eq!(upd.changeset.unwrap().changes.len(), 1);
}

#[tokio::test]
async fn list_metadata_create_update_and_exists() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), false).await;
    let c = server.client().await;
    new_list(&c, "x", ListMode::Denylist).await;
    let l = list("x");
    let err = c
        .create_list(
            &NewList {
                id: l.clone(),
                title: "t".into(),
                description: String::new(),
                authority: String::new(),
                mode: ListMode::Allowlist,
            },
            &WriteOptions::reason("again"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists(ref m) if m.contains("\"x\"")), "{err:?}");
    let upd = c.update_list(&l, Some("New title".into()), None, None, &WriteOptions::reason("rename")).await.unwrap();
    assert_eq!(upd.revision, Revision(2));
    let got = c.get_list(&l, Point::latest()).await.unwrap().list;
    assert_eq!(got.title, "New title");
    assert_eq!(got.authority, "test authority");
    assert_eq!(got.mode, ListMode::Denylist);
    assert_eq!(got.updated_revision, Revision(2));
    // The old title is still there at revision 1.
    let old = c.get_list(&l, Point::latest().at_revision(Revision(1))).await.unwrap().list;
    assert_eq!(old.title, "x list");
    // An update that changes nothing records nothing.
    let noop = c.update_list(&l, Some("New title".into()), None, None, &WriteOptions::reason("same")).await.unwrap();
    assert!(!noop.recorded);
    assert_eq!(noop.revision, Revision(2));
    // Lists did not exist before they were created.
    let err = c.get_list(&l, Point::latest().at_revision(Revision(0))).await.unwrap_err();
    assert!(matches!(err, Error::NotFound(ref m) if m.contains("at revision 0")), "{err:?}");
}

#[tokio::test]
async fn restart_keeps_answers_revision_and_store_id() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), true).await;
    let c = server.client().await;
    let cyber = list("cyber");
    let before: Vec<_> = ["MX", "FR", "CN"].iter().map(|s| cc(s)).collect();
    let mut answers = Vec::new();
    for country in &before {
        answers.push(c.check_at(&cyber, *country, Point::as_of(at("2021-10-15"))).await.unwrap());
        answers.push(c.check(&cyber, *country).await.unwrap());
    }
    let history = c.history(&cyber, None, None).await.unwrap().changesets;
    server.stop().await;

    // Same data directory, new process state; `--demo` again is a no-op.
    let server = TestServer::start(dir.path(), true).await;
    let c = server.client().await;
    let mut again = Vec::new();
    for country in &before {
        again.push(c.check_at(&cyber, *country, Point::as_of(at("2021-10-15"))).await.unwrap());
        again.push(c.check(&cyber, *country).await.unwrap());
    }
    for (a, b) in answers.iter().zip(&again) {
        assert_eq!(a.decision, b.decision);
        assert_eq!(a.header.revision, b.header.revision);
        assert_eq!(a.header.store_id, b.header.store_id);
    }
    assert_eq!(c.history(&cyber, None, None).await.unwrap().changesets, history);
}

#[tokio::test]
async fn a_second_server_cannot_open_the_same_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let _server = TestServer::start(dir.path(), false).await;
    let cfg = eligibility_server::server::Config { data_dir: dir.path().to_owned(), ..Default::default() };
    let err = eligibility_server::server::open(&cfg).await.err().expect("second open must fail");
    assert!(err.to_string().contains("in use by another"), "{err}");
}

#[tokio::test]
async fn validate_only_answers_the_exact_changeset_and_records_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), false).await;
    let c = server.client().await;
    new_list(&c, "cyber", ListMode::Allowlist).await;
    let l = list("cyber");
    c.replace_members(&l, &known_members(), Some(at("2021-01-01")), &WriteOptions::reason("known members"))
        .await
        .unwrap();
    let head = server.registry.snapshot().revision();

    // The preview of the cut: the four removals, numbered as the next
    // revision, nothing recorded, and the same request id still free.
    let kept: Vec<_> = AFTER_CUT.iter().map(|s| (cc(s), String::new())).collect();
    let opts = WriteOptions::reason("the cut").with_reference("notice").with_request_id("cut-1");
    let preview = c.replace_members(&l, &kept, Some(at("2021-11-01")), &opts.clone().validating_only()).await.unwrap();
    assert!(preview.validate_only && !preview.recorded && !preview.replayed);
    assert_eq!(preview.revision, Revision(head.0 + 1));
    let would = preview.changeset.clone().unwrap();
    assert_eq!((would.reason.as_str(), would.reference.as_str()), ("the cut", "notice"));
    assert_eq!(would.effective_at, at("2021-11-01"));
    assert_eq!(server.registry.snapshot().revision(), head, "validate_only recorded something");
    assert!(c.check(&l, cc("MX")).await.unwrap().decision.eligible);

    // The real write records exactly what the preview showed; a second
    // real write with the same key records nothing.
    let done = c.replace_members(&l, &kept, Some(at("2021-11-01")), &opts).await.unwrap();
    assert!(done.recorded && !done.validate_only);
    let recorded = done.changeset.unwrap();
    assert_eq!((recorded.revision, &recorded.changes), (would.revision, &would.changes));
    let again = c.replace_members(&l, &kept, Some(at("2021-11-01")), &opts).await.unwrap();
    assert!(again.replayed && !again.recorded);
    // Validating a recorded key answers the original, replayed.
    let replay = c.replace_members(&l, &kept, Some(at("2021-11-01")), &opts.clone().validating_only()).await.unwrap();
    assert!(replay.replayed && replay.revision == recorded.revision);

    // Apply previews the same way, and a bad one fails as the write would.
    let apply = c
        .apply(&[EntryChange::remove(&l, cc("JP"))], None, &WriteOptions::reason("jp").validating_only())
        .await
        .unwrap();
    assert!(apply.validate_only && apply.changeset.unwrap().changes.len() == 1);
    let err = c
        .apply(&[EntryChange::remove(&list("nope"), cc("JP"))], None, &WriteOptions::reason("jp").validating_only())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    let stale = c
        .apply(
            &[EntryChange::remove(&l, cc("JP"))],
            None,
            &WriteOptions::reason("jp").with_expected_revision(Revision(1)).validating_only(),
        )
        .await
        .unwrap_err();
    assert!(matches!(stale, Error::Conflict { .. }), "{stale:?}");
    assert_eq!(server.registry.snapshot().revision(), recorded.revision);
}
