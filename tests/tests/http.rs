//! The HTTP/JSON surface with a plain HTTP client: the 2021 scenario,
//! every read point, paging, answers equal to gRPC's, the SSE stream
//! (replay, live, resume with Last-Event-ID across a restart, filters),
//! writes (idempotency, If-Match, roles), caching, and bad input.

use std::time::Duration;

use eligibility::proto::v1 as pb;
use eligibility_e2e::{
    TestServer,
    web::{Events, call, get},
};
use eligibility_server::{identity::AuthConfig, server::Config};
use serde_json::{Value, json};

fn header_free(mut v: Value) -> Value {
    // The answer's own valid time is "now" unless the request fixed it.
    if let Some(h) = v.get_mut("header").and_then(Value::as_object_mut) {
        h.remove("asOf");
    }
    v
}

#[tokio::test]
async fn the_2021_scenario_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), true).await;
    let a = get(s.addr, "/v1/lists/cyber/check/MX").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let v = a.json();
    assert_eq!(v["decision"]["eligible"], false);
    assert_eq!(v["decision"]["reason"], "DECISION_REASON_REMOVED");
    assert_eq!(v["decision"]["decidingChange"]["revision"], "3");
    assert_eq!(v["decision"]["decidingChange"]["effectiveAt"].as_str().unwrap()[..10], *"2021-11-01");
    let then = get(s.addr, "/v1/lists/cyber/check/mex?as_of=2021-10-15").await.json();
    assert_eq!(then["decision"]["eligible"], true);
    assert_eq!(then["decision"]["country"], "MX");
    let d = get(s.addr, "/v1/lists/cyber/diff?from=2021-10-15&to=2021-11-02").await.json();
    assert_eq!(d["removed"], json!(["AE", "MA", "MX", "SA"]));
    // Read points: an exact revision, one beyond the head, one to wait for.
    let at1 = get(s.addr, "/v1/lists/cyber/check/FR?at_revision=1").await.json();
    assert_eq!(at1["decision"]["reason"], "DECISION_REASON_NOT_LISTED");
    assert_eq!(at1["header"]["revision"], "1");
    let beyond = get(s.addr, "/v1/lists/cyber/check/FR?at_revision=99").await;
    assert_eq!(beyond.status, 400);
    assert_eq!(beyond.header("content-type"), "application/problem+json");
    assert_eq!(beyond.json()["code"], "OUT_OF_RANGE");
    assert_eq!(get(s.addr, "/v1/lists/cyber/check/FR?min_revision=3").await.status, 200);
    // Paging: 37 members, 10 a page.
    let mut token = String::new();
    let mut seen = Vec::new();
    loop {
        let page = get(s.addr, &format!("/v1/lists/cyber/entries?page_size=10&page_token={token}")).await.json();
        seen.extend(page["entries"].as_array().unwrap().iter().map(|e| e["country"].as_str().unwrap().to_owned()));
        token = page["nextPageToken"].as_str().unwrap().replace(':', "%3A");
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(seen.len(), 37);
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
    let h = get(s.addr, "/v1/lists/cyber/history?country=MX").await.json();
    let revs: Vec<&str> = h["changesets"].as_array().unwrap().iter().map(|c| c["revision"].as_str().unwrap()).collect();
    assert_eq!(revs, ["2", "3"]);
    s.stop().await;
}

#[tokio::test]
async fn each_route_answers_what_grpc_answers() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), true).await;
    let mut q = s.client().await.raw_query();
    let t = |secs: i64| Some(eligibility::wkt::Timestamp { seconds: secs, nanos: 0 });
    let oct15 = 1_634_256_000;
    let point = pb::ReadPoint { as_of: t(oct15), consistency: Some(pb::read_point::Consistency::AtRevision(3)) };
    let fixed = "as_of=2021-10-15T00:00:00Z&at_revision=3";
    let grpc = |v: &dyn erased::Json| v.json();
    let pairs: Vec<(Value, Value)> = vec![
        (
            grpc(
                &q.check(pb::CheckRequest { list_id: "cyber".into(), country: "SA".into(), point: Some(point) })
                    .await
                    .unwrap()
                    .into_inner(),
            ),
            get(s.addr, &format!("/v1/lists/cyber/check/SA?{fixed}")).await.json(),
        ),
        (
            grpc(&q.list_lists(pb::ListListsRequest { point: Some(point) }).await.unwrap().into_inner()),
            get(s.addr, &format!("/v1/lists?{fixed}")).await.json(),
        ),
        (
            grpc(
                &q.get_list(pb::GetListRequest { list_id: "cyber".into(), point: Some(point) })
                    .await
                    .unwrap()
                    .into_inner(),
            ),
            get(s.addr, &format!("/v1/lists/cyber?{fixed}")).await.json(),
        ),
        (
            grpc(
                &q.list_entries(pb::ListEntriesRequest {
                    list_id: "cyber".into(),
                    point: Some(point),
                    page_size: 5,
                    page_token: String::new(),
                })
                .await
                .unwrap()
                .into_inner(),
            ),
            get(s.addr, &format!("/v1/lists/cyber/entries?{fixed}&page_size=5")).await.json(),
        ),
        (
            header_free(grpc(
                &q.history(pb::HistoryRequest {
                    list_id: "cyber".into(),
                    country: "MX".into(),
                    at_revision: 3,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner(),
            )),
            header_free(get(s.addr, "/v1/lists/cyber/history?country=MX&at_revision=3").await.json()),
        ),
        (
            grpc(
                &q.diff(pb::DiffRequest {
                    list_id: "cyber".into(),
                    from: Some(pb::ReadPoint { as_of: t(oct15), consistency: None }),
                    to: Some(pb::ReadPoint { as_of: t(oct15 + 20 * 86_400), consistency: None }),
                })
                .await
                .unwrap()
                .into_inner(),
            ),
            get(s.addr, "/v1/lists/cyber/diff?from=2021-10-15&to=2021-11-04").await.json(),
        ),
    ];
    let items = vec![pb::CheckItem { list_id: "cyber".into(), country: "FR".into() }; 3];
    let batch =
        q.batch_check(pb::BatchCheckRequest { items: items.clone(), point: Some(point) }).await.unwrap().into_inner();
    let body = serde_json::to_string(&pb::BatchCheckRequest { items, point: Some(point) }).unwrap();
    let http_batch =
        call(s.addr, "POST", "/v1/check:batch", &[("content-type", "application/json")], &body).await.json();
    for (i, (g, h)) in pairs.into_iter().chain([(grpc(&batch), http_batch)]).enumerate() {
        assert_eq!(g, h, "route {i}");
    }
    s.stop().await;
}

/// Serializes any generated message through its (pbjson) serde impl.
mod erased {
    pub trait Json {
        fn json(&self) -> serde_json::Value;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> serde_json::Value {
            serde_json::to_value(self).unwrap()
        }
    }
}

#[tokio::test]
async fn answers_at_the_head_carry_an_etag_and_fixed_points_are_immutable() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), true).await;
    let a = get(s.addr, "/v1/lists/cyber/check/FR").await;
    let tag = a.header("etag").to_owned();
    assert!(tag.ends_with(":3\""), "{tag}");
    assert_eq!(a.header("cache-control"), "no-cache");
    let again = call(s.addr, "GET", "/v1/lists/cyber/check/FR", &[("if-none-match", &tag)], "").await;
    assert_eq!(again.status, 304);
    let fixed = get(s.addr, "/v1/lists/cyber/check/FR?as_of=2021-10-15&at_revision=3").await;
    assert!(fixed.header("cache-control").contains("immutable"), "{:?}", fixed.headers);
    s.stop().await;
}

#[tokio::test]
async fn writes_are_idempotent_conditional_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), true).await;
    let json_h = ("content-type", "application/json");
    let body =
        r#"{"changes":[{"listId":"cyber","country":"JP","action":"ENTRY_ACTION_REMOVE"}],"options":{"reason":"test"}}"#;
    let first = call(s.addr, "POST", "/v1/changesets", &[json_h, ("idempotency-key", "k-1")], body).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.json()["revision"], "4");
    assert_eq!(first.json()["recorded"], true);
    let retry = call(s.addr, "POST", "/v1/changesets", &[json_h, ("idempotency-key", "k-1")], body).await.json();
    assert_eq!((retry["revision"].as_str(), retry["replayed"].as_bool()), (Some("4"), Some(true)));
    let other = body.replace("test", "other");
    let reused = call(s.addr, "POST", "/v1/changesets", &[json_h, ("idempotency-key", "k-1")], &other).await;
    assert_eq!(reused.status, 409);
    let stale = call(s.addr, "POST", "/v1/changesets", &[json_h, ("if-match", "\"3\"")], &other).await;
    assert_eq!(stale.status, 412, "{}", stale.body);
    assert_eq!(stale.json()["reason"], "REVISION_MISMATCH");
    let tag = first.header("etag").to_owned();
    let current = body.replace("REMOVE", "ADD");
    let ok = call(s.addr, "POST", "/v1/changesets", &[json_h, ("if-match", &tag)], &current).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    // validateOnly: the would-be changeset, nothing recorded.
    let preview = call(
        s.addr,
        "PUT",
        "/v1/lists/cyber/members",
        &[json_h, ("idempotency-key", "k-2")],
        r#"{"members":[{"country":"FR"}],"options":{"reason":"only France"},"validateOnly":true}"#,
    )
    .await;
    assert_eq!(preview.status, 200, "{}", preview.body);
    let p = preview.json();
    assert_eq!((p["validateOnly"].as_bool(), p["recorded"].as_bool()), (Some(true), Some(false)));
    assert_eq!(p["revision"], "6");
    assert!(p["changeset"]["changes"].as_array().unwrap().len() > 30);
    assert!(get(s.addr, "/v1/lists/cyber").await.json()["list"]["memberCount"].as_u64().unwrap() > 30);
    let replaced = call(
        s.addr,
        "PUT",
        "/v1/lists/cyber/members",
        &[json_h],
        r#"{"members":[{"country":"FR"}],"options":{"reason":"only France"}}"#,
    )
    .await;
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    assert_eq!(get(s.addr, "/v1/lists/cyber").await.json()["list"]["memberCount"], 1);
    let created = call(
        s.addr,
        "POST",
        "/v1/lists",
        &[json_h],
        r#"{"list":{"id":"embargo","mode":"LIST_MODE_DENYLIST","title":"E"},"options":{"reason":"new"}}"#,
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let patched =
        call(s.addr, "PATCH", "/v1/lists/embargo", &[json_h], r#"{"title":"Embargo","options":{"reason":"name"}}"#)
            .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(get(s.addr, "/v1/lists/embargo").await.json()["list"]["title"], "Embargo");
    s.stop().await;
}

#[tokio::test]
async fn roles_apply_to_http_as_to_grpc() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = eligibility_e2e::tokens_file(dir.path(), &[("rita", "reader", "r"), ("will", "writer", "w")]);
    let config = Config {
        data_dir: dir.path().join("data"),
        demo: true,
        auth: AuthConfig { tokens_file: Some(tokens), require_auth_for_reads: false },
        ..Config::default()
    };
    let s = TestServer::start_with(config).await;
    let body =
        r#"{"changes":[{"listId":"cyber","country":"JP","action":"ENTRY_ACTION_REMOVE"}],"options":{"reason":"x"}}"#;
    let anon = call(s.addr, "POST", "/v1/changesets", &[], body).await;
    assert_eq!((anon.status, anon.header("www-authenticate")), (401, "Bearer"));
    let reader = call(s.addr, "POST", "/v1/changesets", &[("authorization", "Bearer r")], body).await;
    assert_eq!(reader.status, 403, "{}", reader.body);
    let writer = call(s.addr, "POST", "/v1/changesets", &[("authorization", "bearer w")], body).await;
    assert_eq!(writer.status, 200, "{}", writer.body);
    assert_eq!(writer.json()["changeset"]["actor"], "will");
    assert_eq!(s.registry.snapshot().revision().0, 4, "only the writer's change");
    s.stop().await;
}

#[tokio::test]
async fn bad_input_gets_problem_details_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), true).await;
    let json_h = ("content-type", "application/json");
    let huge = format!("{{\"changes\":[{}]}}", "{\"listId\":\"cyber\"},".repeat(300_000));
    let cases: Vec<(&str, &str, String, u16)> = vec![
        ("GET", "/v1/lists/cyber/check/ZZ", String::new(), 400),
        ("GET", "/v1/lists/Bad!/check/FR", String::new(), 400),
        ("GET", "/v1/lists/nosuch/check/FR", String::new(), 404),
        ("GET", "/v1/lists/cyber/check/FR?as_of=yesterday", String::new(), 400),
        ("GET", "/v1/lists/cyber/check/FR?at_revision=-3", String::new(), 400),
        ("GET", "/v1/lists/cyber/check/FR?color=red", String::new(), 400),
        ("GET", "/v1/lists/cyber/entries?page_size=99999999999", String::new(), 400),
        ("GET", "/v1/lists/cyber/entries?page_token=junk", String::new(), 400),
        ("GET", "/v1/lists/cyber/check/FR?as_of=%ZZ", String::new(), 400),
        ("POST", "/v1/changesets", "{not json".into(), 400),
        ("POST", "/v1/changesets", r#"{"changes":"many"}"#.into(), 400),
        ("POST", "/v1/changesets", r#"{"changes":[],"sneaky":true}"#.into(), 400),
        ("POST", "/v1/changesets", String::new(), 400),
        ("POST", "/v1/changesets", r#"{"changes":[{"listId":"cyber","country":"XX","action":"ENTRY_ACTION_ADD"}],"options":{"reason":"r"}}"#.into(), 400),
        ("POST", "/v1/changesets", r#"{"changes":[{"listId":"cyber","country":"FR","action":"ENTRY_ACTION_ADD"}],"effectiveAt":"soon","options":{"reason":"r"}}"#.into(), 400),
        ("POST", "/v1/changesets", huge, 413),
        ("POST", "/v1/check:batch", r#"{"items":[]}"#.into(), 400),
        ("DELETE", "/v1/changesets", String::new(), 405),
        ("GET", "/v1/nothing/here", String::new(), 404),
    ];
    for (method, path, body, want) in cases {
        let a = call(s.addr, method, path, &[json_h], &body).await;
        assert_eq!(a.status, want, "{method} {path}: {}", a.body);
        assert_eq!(a.header("content-type"), "application/problem+json", "{method} {path}");
        let p = a.json();
        assert_eq!(p["status"], want, "{method} {path}");
        assert!(p["detail"].as_str().is_some_and(|d| !d.is_empty()), "{method} {path}");
    }
    // A read point takes one of atRevision and minRevision: said so, not
    // "duplicate field".
    let both = r#"{"items":[{"listId":"cyber","country":"FR"}],"point":{"atRevision":"1","minRevision":"1"}}"#;
    let p = call(s.addr, "POST", "/v1/check:batch", &[json_h], both).await.json();
    assert_eq!(p["status"], 400);
    let detail = p["detail"].as_str().unwrap();
    assert!(detail.contains("exclude each other") && detail.contains("atRevision, minRevision"), "{detail}");
    let country = call(s.addr, "GET", "/v1/lists/cyber/check/ZZ", &[], "").await.json();
    assert_eq!(country["violations"][0]["field"], "country");
    assert!(country["detail"].as_str().unwrap().contains("\"ZZ\""));
    assert_eq!(s.registry.snapshot().revision().0, 3, "nothing written");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_replays_goes_live_filters_and_resumes_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config { data_dir: dir.path().to_owned(), demo: true, ..Config::default() };
    let s = TestServer::start_with(config.clone()).await;
    let addr = s.addr;
    let mut all = Events::open(addr, "/v1/watch?after_revision=0", &[]).await;
    assert_eq!(all.next_changeset().await, Some(1));
    assert_eq!(all.next_changeset().await, Some(2));
    assert_eq!(all.next_changeset().await, Some(3));
    let c = s.client().await;
    let jp = [eligibility_client::EntryChange::remove(&eligibility_e2e::list("cyber"), eligibility_e2e::cc("JP"))];
    c.apply(&jp, None, &eligibility_client::WriteOptions::reason("live")).await.unwrap();
    let live = tokio::time::timeout(Duration::from_secs(10), all.next()).await.unwrap().unwrap();
    assert_eq!((live.id, live.kind.as_str()), (Some(4), "changeset"));
    assert_eq!(live.data["changes"][0]["entry"]["country"], "JP");
    // A country filter: MX's changes (and the list's own), then a
    // progress event past the JP change it filtered out.
    let mut mx = Events::open(addr, "/v1/watch?after_revision=0&country=MX", &[]).await;
    assert_eq!(mx.next_changeset().await, Some(1), "the list's creation");
    assert_eq!(mx.next_changeset().await, Some(2));
    assert_eq!(mx.next_changeset().await, Some(3));
    let progress = mx.next().await.unwrap();
    assert_eq!((progress.kind.as_str(), progress.id), ("progress", Some(4)));
    let snap = Events::open(addr, "/v1/watch?snapshot=true&list_id=cyber", &[]).await;
    let mut snap = snap;
    let first = snap.next().await.unwrap();
    assert_eq!((first.kind.as_str(), first.id), ("snapshot_list", None));
    assert_eq!(first.data["entries"].as_array().unwrap().len(), 36);
    let end = snap.next().await.unwrap();
    assert_eq!((end.kind.as_str(), end.id), ("snapshot_end", Some(4)));

    // Restart on the same store; an EventSource reconnects with the last id.
    s.stop().await;
    let s = TestServer::start_at(config, addr).await;
    let c = s.client().await;
    for code in ["FR", "DE"] {
        let ch = [eligibility_client::EntryChange::remove(&eligibility_e2e::list("cyber"), eligibility_e2e::cc(code))];
        c.apply(&ch, None, &eligibility_client::WriteOptions::reason("after the restart")).await.unwrap();
    }
    let mut resumed = Events::open(addr, "/v1/watch?after_revision=0", &[("last-event-id", "4")]).await;
    assert_eq!(resumed.next_changeset().await, Some(5), "resumes after Last-Event-ID, not the URL's start");
    assert_eq!(resumed.next_changeset().await, Some(6));
    let bad = call(addr, "GET", "/v1/watch", &[("last-event-id", "yesterday")], "").await;
    assert_eq!(bad.status, 400);
    s.stop().await;
}

/// What the OpenAPI document states, the server holds to: `null` reads as
/// absent for any field and in either order beside a oneof's other member,
/// an empty `If-Match` states no precondition, entity tags and revisions
/// have one form, and text limits count characters.
#[tokio::test]
async fn requests_are_read_as_the_document_states() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), true).await;
    let json_h = ("content-type", "application/json");
    let items = r#""items":[{"listId":"cyber","country":"MX"}]"#;
    for point in [r#"{"atRevision":null,"minRevision":"1"}"#, r#"{"minRevision":"1","atRevision":null}"#] {
        let r = call(s.addr, "POST", "/v1/check:batch", &[json_h], &format!("{{{items},\"point\":{point}}}")).await;
        assert_eq!(r.status, 200, "{point}: {}", r.body);
    }
    let both = call(
        s.addr,
        "POST",
        "/v1/check:batch",
        &[json_h],
        &format!(r#"{{{items},"point":{{"atRevision":"1","minRevision":"1"}}}}"#),
    )
    .await;
    assert_eq!(both.status, 400, "{}", both.body);
    assert!(both.body.contains("exclude each other"), "{}", both.body);

    let write = |options: &str| {
        format!(
            r#"{{"changes":[{{"listId":"cyber","country":"JP","action":"ENTRY_ACTION_REMOVE"}}],"options":{options},"validateOnly":null}}"#
        )
    };
    let ok =
        call(s.addr, "POST", "/v1/changesets", &[json_h, ("if-match", "")], &write(r#"{"reason":"null is absent"}"#))
            .await;
    assert_eq!(ok.status, 200, "an empty If-Match and a null validateOnly: {}", ok.body);
    for tag in ["3", "\"+3\"", "\"12345678901234567890\"", "W/\"a\"b:3\""] {
        let r = call(s.addr, "POST", "/v1/changesets", &[json_h, ("if-match", tag)], &write(r#"{"reason":"x"}"#)).await;
        assert_eq!(r.status, 400, "If-Match {tag}: {}", r.body);
    }
    let weak =
        call(s.addr, "POST", "/v1/changesets", &[json_h, ("if-match", "W/\"store:1\"")], &write(r#"{"reason":"x"}"#))
            .await;
    assert_eq!(weak.status, 412, "a weak ETag's revision is read: {}", weak.body);

    // 256 characters of four bytes each: within the title's limit of 256
    // characters (1 024 bytes); 257 are not.
    let title = |n: usize| "🛰".repeat(n);
    let patch = |t: &str| format!(r#"{{"title":"{t}","options":{{"reason":"long title"}}}}"#);
    let fits = call(s.addr, "PATCH", "/v1/lists/cyber", &[json_h], &patch(&title(256))).await;
    assert_eq!(fits.status, 200, "{}", fits.body);
    let over = call(s.addr, "PATCH", "/v1/lists/cyber", &[json_h], &patch(&title(257))).await;
    assert_eq!(over.status, 400, "{}", over.body);
    assert!(over.body.contains("257 characters"), "{}", over.body);

    let history = call(s.addr, "GET", "/v1/lists/cyber/history?page_token=after-revision:%2B1", &[], "").await;
    assert_eq!(history.status, 400, "a page token's revision is digits: {}", history.body);
    let resume = call(s.addr, "GET", "/v1/watch", &[("last-event-id", "+1")], "").await;
    assert_eq!(resume.status, 400, "a Last-Event-ID is digits: {}", resume.body);
}
