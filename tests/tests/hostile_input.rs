//! Hostile input: random, well-formed-but-wrong requests to a live server.
//! Every call must end with a gRPC status (never a panic, never a hang),
//! and a rejected write must write nothing. The parsers are checked on
//! arbitrary strings too. (A coverage-guided fuzzer needs a nightly
//! toolchain this project does not use; proptest covers the same inputs.)

use std::time::Duration;

use eligibility::proto::v1::{self as pb, read_point::Consistency};
use eligibility_e2e::TestServer;
use proptest::prelude::*;
use tonic::Code;

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z]{0,4}",
        "[0-9]{0,4}",
        ".{0,12}",
        Just(String::new()),
        Just("cyber".to_owned()),
        Just("MX".to_owned()),
        Just("\u{0}\u{7f}\u{feff}".to_owned()),
        "[a-z0-9._-]{60,70}",
    ]
}

fn any_point() -> impl Strategy<Value = Option<pb::ReadPoint>> {
    let ts = (any::<i64>(), any::<i32>()).prop_map(|(seconds, nanos)| eligibility::wkt::Timestamp { seconds, nanos });
    let cons = prop_oneof![
        Just(None),
        any::<u64>().prop_map(|r| Some(Consistency::AtRevision(r % 8))),
        any::<u64>().prop_map(|r| Some(Consistency::AtRevision(r))),
        any::<u64>().prop_map(|r| Some(Consistency::MinRevision(r % 5))),
    ];
    prop::option::of((prop::option::of(ts), cons).prop_map(|(as_of, consistency)| pb::ReadPoint { as_of, consistency }))
}

#[derive(Debug, Clone)]
enum Call {
    Check(pb::CheckRequest),
    Batch(pb::BatchCheckRequest),
    Entries(pb::ListEntriesRequest),
    History(pb::HistoryRequest),
    Diff(pb::DiffRequest),
    Apply(pb::ApplyRequest),
    Replace(pb::ReplaceMembersRequest),
    Create(pb::CreateListRequest),
    Update(pb::UpdateListRequest),
}

fn any_options() -> impl Strategy<Value = Option<pb::WriteOptions>> {
    prop::option::of((any_text(), any_text(), any_text(), prop::option::of(any::<u64>())).prop_map(
        |(reason, reference, request_id, expected)| pb::WriteOptions {
            reason,
            reference,
            request_id,
            expected_revision: expected,
            actor: String::new(),
        },
    ))
}

fn any_call() -> impl Strategy<Value = Call> {
    let entry = (any_text(), any_text(), -1i32..4, any_text())
        .prop_map(|(list_id, country, action, conditions)| pb::EntryChange { list_id, country, action, conditions });
    prop_oneof![
        (any_text(), any_text(), any_point()).prop_map(|(list_id, country, point)| Call::Check(pb::CheckRequest {
            list_id,
            country,
            point
        })),
        (prop::collection::vec((any_text(), any_text()), 0..5), any_point()).prop_map(|(items, point)| Call::Batch(
            pb::BatchCheckRequest {
                items: items.into_iter().map(|(list_id, country)| pb::CheckItem { list_id, country }).collect(),
                point
            }
        )),
        (any_text(), any_point(), any::<u32>(), any_text()).prop_map(|(list_id, point, page_size, page_token)| {
            Call::Entries(pb::ListEntriesRequest { list_id, point, page_size, page_token })
        }),
        (any_text(), any_text(), any::<u64>(), any::<u32>(), any_text()).prop_map(
            |(list_id, country, at_revision, page_size, page_token)| {
                Call::History(pb::HistoryRequest {
                    list_id,
                    country,
                    at_revision: at_revision % 10,
                    page_size,
                    page_token,
                })
            }
        ),
        (any_text(), any_point(), any_point()).prop_map(|(list_id, from, to)| Call::Diff(pb::DiffRequest {
            list_id,
            from,
            to
        })),
        (prop::collection::vec(entry, 0..4), any_options(), any::<bool>()).prop_map(
            |(changes, options, validate_only)| {
                Call::Apply(pb::ApplyRequest { changes, effective_at: None, options, validate_only })
            }
        ),
        (any_text(), prop::collection::vec((any_text(), any_text()), 0..4), any_options(), any::<bool>()).prop_map(
            |(list_id, m, options, validate_only)| {
                Call::Replace(pb::ReplaceMembersRequest {
                    list_id,
                    members: m.into_iter().map(|(country, conditions)| pb::Member { country, conditions }).collect(),
                    effective_at: None,
                    options,
                    validate_only,
                })
            }
        ),
        (any_text(), -1i32..4, any_options()).prop_map(|(id, mode, options)| Call::Create(pb::CreateListRequest {
            list: Some(pb::List { id, mode, ..Default::default() }),
            options
        })),
        (any_text(), prop::option::of(any_text()), any_options()).prop_map(|(list_id, title, options)| Call::Update(
            pb::UpdateListRequest { list_id, title, options, ..Default::default() }
        )),
    ]
}

/// Whether a call could legitimately write (a valid write may succeed).
fn is_write(c: &Call) -> bool {
    matches!(c, Call::Apply(_) | Call::Replace(_) | Call::Create(_) | Call::Update(_))
}

#[test]
fn random_requests_get_statuses_never_panics_or_hangs() {
    // The strategy's types nest deeply: give the debug build's frames room.
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(random_requests)
        .unwrap()
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e));
}

fn random_requests() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = rt.block_on(TestServer::start(dir.path(), true));
    let client = rt.block_on(server.client());
    // PROPTEST_CASES raises the count for a long run.
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(400);
    let config = ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() };
    proptest!(config, |(calls in prop::collection::vec(any_call(), 1..4))| {
        for call in calls {
            let before = server.registry.snapshot().revision();
            let (mut q, mut a) = (client.raw_query(), client.raw_admin());
            let c2 = call.clone();
            let result: Result<(), tonic::Status> = rt.block_on(async move {
                let t = Duration::from_secs(10);
                let r = match c2 {
                    Call::Check(r) => tokio::time::timeout(t, q.check(r)).await.map(|r| r.map(|_| ())),
                    Call::Batch(r) => tokio::time::timeout(t, q.batch_check(r)).await.map(|r| r.map(|_| ())),
                    Call::Entries(r) => tokio::time::timeout(t, q.list_entries(r)).await.map(|r| r.map(|_| ())),
                    Call::History(r) => tokio::time::timeout(t, q.history(r)).await.map(|r| r.map(|_| ())),
                    Call::Diff(r) => tokio::time::timeout(t, q.diff(r)).await.map(|r| r.map(|_| ())),
                    Call::Apply(r) => tokio::time::timeout(t, a.apply(r)).await.map(|r| r.map(|_| ())),
                    Call::Replace(r) => tokio::time::timeout(t, a.replace_members(r)).await.map(|r| r.map(|_| ())),
                    Call::Create(r) => tokio::time::timeout(t, a.create_list(r)).await.map(|r| r.map(|_| ())),
                    Call::Update(r) => tokio::time::timeout(t, a.update_list(r)).await.map(|r| r.map(|_| ())),
                };
                r.expect("no call may hang")
            });
            if let Err(s) = &result {
                prop_assert!(
                    !matches!(s.code(), Code::Internal | Code::Unknown | Code::Unimplemented),
                    "{call:?} -> {s:?}"
                );
                prop_assert!(!s.message().is_empty(), "every error says what was wrong: {call:?}");
                prop_assert_eq!(server.registry.snapshot().revision(), before, "a rejected request wrote: {:?}", call);
            } else if !is_write(&call) {
                prop_assert_eq!(server.registry.snapshot().revision(), before);
            }
        }
    });
    // Still healthy.
    let ok = rt.block_on(
        client.check(&eligibility::ListId::parse("cyber").unwrap(), eligibility::Country::parse("FR").unwrap()),
    );
    assert!(ok.is_ok());
    rt.block_on(server.stop());
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(5000),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn parsers_never_panic_and_round_trip(s in ".{0,80}", secs in any::<i64>(), nanos in any::<i32>()) {
        if let Ok(c) = eligibility::Country::parse(&s) {
            prop_assert_eq!(eligibility::Country::parse(c.alpha2()).unwrap(), c);
        }
        if let Ok(l) = eligibility::ListId::parse(&s) {
            prop_assert_eq!(l.as_str(), s.as_str());
        }
        if let Ok(t) = eligibility::Timestamp::parse(&s) {
            prop_assert_eq!(eligibility::Timestamp::parse(&t.to_string()).unwrap(), t);
        }
        if let Some(t) = eligibility::Timestamp::from_unix(secs, nanos) {
            let p = eligibility::wkt::Timestamp::from(t);
            prop_assert_eq!(eligibility::Timestamp::try_from(&p).unwrap(), t);
        }
    }
}
