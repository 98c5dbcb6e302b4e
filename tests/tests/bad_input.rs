//! Every malformed request gets a clear error naming the field and value,
//! and changes nothing.

use std::time::Duration;

use eligibility::proto::v1::{self as pb, read_point::Consistency};
use eligibility_e2e::TestServer;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

fn assert_invalid(s: &Status, field: &str, needle: &str) {
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    assert!(s.message().contains(needle), "message {:?} should name {needle:?}", s.message());
    let br = s.get_details_bad_request().expect("BadRequest details");
    assert_eq!(br.field_violations[0].field, field, "{s:?}");
}

fn check(list: &str, country: &str) -> pb::CheckRequest {
    pb::CheckRequest { list_id: list.into(), country: country.into(), point: None }
}

fn opts(reason: &str) -> Option<pb::WriteOptions> {
    Some(pb::WriteOptions { reason: reason.into(), ..Default::default() })
}

fn entry(list: &str, country: &str, action: pb::EntryAction) -> pb::EntryChange {
    pb::EntryChange { list_id: list.into(), country: country.into(), action: action as i32, conditions: String::new() }
}

#[tokio::test]
async fn country_codes() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), true).await;
    let mut q = server.client().await.raw_query();
    for bad in ["ZZ", "", "M", "MEXX", "99", "12a", "XKK"] {
        let s = q.check(check("cyber", bad)).await.unwrap_err();
        assert_invalid(&s, "country", &format!("{bad:?}"));
    }
    for good in ["MAR", "504", "ma", "Ma", "xk"] {
        let r = q.check(check("cyber", good)).await.unwrap().into_inner();
        let d = r.decision.unwrap();
        assert!(d.country == "MA" || d.country == "XK", "{good} -> {}", d.country);
    }
}

#[tokio::test]
async fn lists_ids_pages_and_points() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), true).await;
    let mut q = server.client().await.raw_query();

    let s = q.check(check("nosuch", "FR")).await.unwrap_err();
    assert_eq!(s.code(), Code::NotFound);
    assert!(s.message().contains("\"nosuch\""), "{}", s.message());

    for bad in ["Cyber", "cyber list", "", "-x", &"a".repeat(64)] {
        let s = q.check(check(bad, "FR")).await.unwrap_err();
        assert_invalid(&s, "list_id", &format!("{bad:?}"));
    }

    let beyond = pb::ReadPoint { as_of: None, consistency: Some(Consistency::AtRevision(99)) };
    let s = q
        .check(pb::CheckRequest { list_id: "cyber".into(), country: "FR".into(), point: Some(beyond) })
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::OutOfRange);
    assert!(s.message().contains("99") && s.message().contains("head revision 3"), "{}", s.message());

    for (seconds, nanos) in [(0, -1), (0, 1_000_000_000), (i64::MAX, 0), (-70_000_000_000, 0)] {
        let p = pb::ReadPoint { as_of: Some(eligibility::wkt::Timestamp { seconds, nanos }), consistency: None };
        let s = q
            .check(pb::CheckRequest { list_id: "cyber".into(), country: "FR".into(), point: Some(p) })
            .await
            .unwrap_err();
        assert_invalid(&s, "point.as_of", &format!("seconds: {seconds}, nanos: {nanos}"));
    }

    // min_revision ahead of the head: waits within the deadline, then
    // UNAVAILABLE (a retry may reach a replica that has it).
    let p = pb::ReadPoint { as_of: None, consistency: Some(Consistency::MinRevision(50)) };
    let mut req = Request::new(pb::CheckRequest { list_id: "cyber".into(), country: "FR".into(), point: Some(p) });
    req.set_timeout(Duration::from_millis(300));
    let s = q.check(req).await.unwrap_err();
    assert_eq!(s.code(), Code::Unavailable, "{s:?}");
    assert!(s.message().contains("min_revision 50") && s.message().contains("at revision 3"), "{s:?}");

    let s = q
        .list_entries(pb::ListEntriesRequest {
            list_id: "cyber".into(),
            page_token: "garbage".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_invalid(&s, "page_token", "\"garbage\"");
    let s = q
        .list_entries(pb::ListEntriesRequest { list_id: "cyber".into(), page_size: 5000, ..Default::default() })
        .await
        .unwrap_err();
    assert_invalid(&s, "page_size", "5000");
    let s = q
        .history(pb::HistoryRequest { list_id: "cyber".into(), at_revision: 7, ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::OutOfRange);
    let s = q
        .diff(pb::DiffRequest {
            list_id: "cyber".into(),
            from: Some(pb::ReadPoint { as_of: None, consistency: Some(Consistency::MinRevision(1)) }),
            to: None,
        })
        .await
        .unwrap_err();
    assert_invalid(&s, "from.min_revision", "at_revision");
}

#[tokio::test]
async fn batch_limits() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), true).await;
    let mut q = server.client().await.raw_query();
    let item = |c: &str| pb::CheckItem { list_id: "cyber".into(), country: c.into() };
    let s = q.batch_check(pb::BatchCheckRequest { items: vec![], point: None }).await.unwrap_err();
    assert_invalid(&s, "items", "at least one");
    let s = q.batch_check(pb::BatchCheckRequest { items: vec![item("FR"); 10_001], point: None }).await.unwrap_err();
    assert_invalid(&s, "items", "10001 items are more than the maximum 10000");
    let s = q
        .batch_check(pb::BatchCheckRequest { items: vec![item("FR"), item("FR"), item("QQ")], point: None })
        .await
        .unwrap_err();
    assert_invalid(&s, "items[2].country", "\"QQ\"");
    let ok = q.batch_check(pb::BatchCheckRequest { items: vec![item("FR"); 10_000], point: None }).await.unwrap();
    assert_eq!(ok.into_inner().decisions.len(), 10_000);
}

#[tokio::test]
async fn rejected_writes_change_nothing() {
    use pb::EntryAction::{Add, Remove, Unspecified};
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), true).await;
    let mut a = server.client().await.raw_admin();
    let head = server.registry.snapshot().revision();

    let apply = |changes: Vec<pb::EntryChange>, o: Option<pb::WriteOptions>| pb::ApplyRequest {
        changes,
        effective_at: None,
        options: o,
        validate_only: false,
    };
    let cases: Vec<(pb::ApplyRequest, Code, &str, &str)> = vec![
        (
            apply(vec![entry("cyber", "FR", Add)], opts("")),
            Code::InvalidArgument,
            "options.reason",
            "reason is required",
        ),
        (
            apply(vec![entry("cyber", "FR", Add)], opts("   ")),
            Code::InvalidArgument,
            "options.reason",
            "reason is required",
        ),
        (apply(vec![entry("cyber", "FR", Add)], None), Code::InvalidArgument, "options", "required"),
        (
            apply(vec![entry("cyber", "FR", Add)], opts(&"r".repeat(4097))),
            Code::InvalidArgument,
            "options.reason",
            "4097 characters",
        ),
        (apply(vec![], opts("x")), Code::InvalidArgument, "changes", "at least one"),
        (apply(vec![entry("cyber", "ZZ", Add)], opts("x")), Code::InvalidArgument, "changes[0].country", "\"ZZ\""),
        (apply(vec![entry("Bad!", "FR", Add)], opts("x")), Code::InvalidArgument, "changes[0].list_id", "\"Bad!\""),
        (
            apply(vec![entry("cyber", "FR", Unspecified)], opts("x")),
            Code::InvalidArgument,
            "changes[0].action",
            "0 is not an entry action",
        ),
        (
            apply(vec![entry("cyber", "FR", Add), entry("cyber", "FRA", Remove)], opts("x")),
            Code::InvalidArgument,
            "changes[1]",
            "(cyber, FR) is already changed by changes[0]",
        ),
        (
            apply(vec![pb::EntryChange { conditions: "x".into(), ..entry("cyber", "FR", Remove) }], opts("x")),
            Code::InvalidArgument,
            "changes[0].conditions",
            "a removal has no conditions",
        ),
        (apply(vec![entry("nosuch", "FR", Add)], opts("x")), Code::NotFound, "", "\"nosuch\" does not exist"),
        (
            pb::ApplyRequest {
                effective_at: Some(eligibility::wkt::Timestamp { seconds: 1, nanos: -5 }),
                ..apply(vec![entry("cyber", "FR", Add)], opts("x"))
            },
            Code::InvalidArgument,
            "effective_at",
            "nanos: -5",
        ),
    ];
    for (req, code, field, needle) in cases {
        let s = a.apply(req).await.unwrap_err();
        if code == Code::InvalidArgument {
            assert_invalid(&s, field, needle);
        } else {
            assert_eq!(s.code(), code, "{s:?}");
            assert!(s.message().contains(needle), "{s:?}");
        }
        assert_eq!(server.registry.snapshot().revision(), head, "a rejected write recorded something: {s:?}");
    }

    let s = a
        .create_list(pb::CreateListRequest {
            list: Some(pb::List { id: "new".into(), mode: 0, ..Default::default() }),
            options: opts("x"),
        })
        .await
        .unwrap_err();
    assert_invalid(&s, "list.mode", "0 is not a list mode");
    let s = a
        .replace_members(pb::ReplaceMembersRequest {
            list_id: "cyber".into(),
            members: vec![
                pb::Member { country: "FR".into(), conditions: String::new() },
                pb::Member { country: "fra".into(), conditions: String::new() },
            ],
            effective_at: None,
            options: opts("x"),
            validate_only: true,
        })
        .await
        .unwrap_err();
    assert_invalid(&s, "members[1].country", "FR is listed twice");
    let s = a
        .update_list(pb::UpdateListRequest {
            list_id: "cyber".into(),
            title: Some("t".repeat(300)),
            options: opts("x"),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_invalid(&s, "title", "300 characters");
    assert_eq!(server.registry.snapshot().revision(), head);
    // The store agrees: nothing was appended.
    assert_eq!(server.registry.store().head().await.unwrap(), head);
}
