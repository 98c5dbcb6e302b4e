//! The web console over plain HTTP (the browser test drives it in Chromium;
//! these check what needs no browser): pages at a point, pinned links,
//! timelines with backdated corrections, sign-in, bad input, security
//! headers, and the console turned off.

use eligibility_client::{EntryChange, WriteOptions};
use eligibility_e2e::{TestServer, at, cc, list, tokens_file, web::call};
use eligibility_server::{identity::AuthConfig, server::Config};

/// `GET path` with optional headers.
async fn get(s: &TestServer, path: &str, headers: &[(&str, &str)]) -> eligibility_e2e::web::Answer {
    call(s.addr, "GET", path, headers, "").await
}

/// The text of the element with `id` (its first text run).
fn by_id<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id} in the page"));
    let rest = &html[start..];
    let open = rest.find('>').unwrap() + 1;
    let end = rest[open..].find('<').unwrap();
    &rest[open..open + end]
}

#[tokio::test]
async fn pages_show_a_list_at_a_point_and_a_pinned_link_never_changes() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), true).await;
    let before = get(&s, "/lists/cyber?as_of=2021-10-15", &[]).await;
    assert_eq!(before.status, 200, "{}", before.body);
    assert_eq!(by_id(&before.body, "member-count"), "41");
    assert!(before.body.contains(r#"class="eligible" data-cc="MX""#));
    let now = get(&s, "/lists/cyber", &[]).await;
    assert_eq!(by_id(&now.body, "member-count"), "37");
    assert!(now.body.contains(r#"class="removed" data-cc="MX""#));
    // The chart's steps: 41 from 2021-01-01, 37 from 2021-11-01.
    assert!(now.body.contains(r#"data-from="2021-01-01T00:00:00Z" data-members="41""#));
    assert!(now.body.contains(r#"data-from="2021-11-01T00:00:00Z" data-members="37""#));
    // Security headers: only our own script and styles, never framed.
    let csp = now.header("content-security-policy");
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!now.body.contains("<script>") && !now.body.contains("style=\""), "inline script or style");

    // A pinned link shows the same after a later write.
    let pinned = "/lists/cyber?as_of=2026-01-01&at_revision=3";
    let first = get(&s, pinned, &[]).await.body;
    let c = s.client().await;
    c.apply(&[EntryChange::remove(&list("cyber"), cc("JP"))], None, &WriteOptions::reason("cut JP")).await.unwrap();
    let again = get(&s, pinned, &[]).await.body;
    assert_eq!(by_id(&again, "member-count"), "37");
    // What the view shows (chart, map, members, removed) is the same, byte
    // for byte; only the controls learn of the new head.
    let shown = |b: &str| {
        let start = b.find(r#"<section class="figure">"#).expect("the chart");
        let end = b.find(r#"<section class="write""#).expect("the forms");
        b[start..end].to_owned()
    };
    assert!(shown(&first) == shown(&again), "the pinned view changed after a later write");
    assert!(again.contains("Later revisions exist (head 4)"));
    assert_eq!(by_id(&get(&s, "/lists/cyber", &[]).await.body, "member-count"), "36");
    s.stop().await;
}

#[tokio::test]
async fn a_country_timeline_marks_a_backdated_correction_from_its_revision_on() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), true).await;
    let c = s.client().await;
    // Recorded now, in effect since 2021-06-01: MX was removed earlier than
    // first recorded.
    let r = c
        .apply(
            &[EntryChange::remove(&list("cyber"), cc("MX"))],
            Some(at("2021-06-01")),
            &WriteOptions::reason("correction"),
        )
        .await
        .unwrap()
        .revision;
    let page = get(&s, "/countries/MX", &[]).await.body;
    assert!(page.contains("Eligible</strong> from <time datetime=\"2021-01-01T00:00:00Z\">2021-01-01</time> until <time datetime=\"2021-06-01T00:00:00Z\">2021-06-01</time>"), "{page}");
    assert!(page.contains(&format!("data-rev=\"{}\"", r.0)));
    assert!(page.contains("backdated"));
    // As recorded before the correction, the old interval stands.
    let old = get(&s, &format!("/countries/MX?at_revision={}", r.0 - 1), &[]).await.body;
    assert!(old.contains("until <time datetime=\"2021-11-01T00:00:00Z\">"), "{old}");
    s.stop().await;
}

#[tokio::test]
async fn bad_input_gets_a_page_saying_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), true).await;
    for (path, status, says) in [
        ("/lists/cyber?as_of=yesterday", 400, "as_of"),
        ("/lists/cyber?at_revision=-1", 400, "at_revision"),
        ("/lists/cyber?at_revision=99", 400, "99"),
        ("/lists/cyber?colour=red", 400, "colour"),
        ("/lists/nope", 404, "nope"),
        ("/lists/NOT%20AN%20ID", 400, "list"),
        ("/countries/ZZ", 400, "ZZ"),
        ("/countries?code=", 400, "code"),
        ("/history?before=x", 400, "before"),
        ("/console/assets/nothing.js", 404, "nothing.js"),
    ] {
        let a = get(&s, path, &[]).await;
        assert_eq!(a.status, status, "{path}: {}", a.body);
        assert!(a.body.contains(says), "{path}: {}", a.body);
    }
    let post =
        call(s.addr, "POST", "/lists/cyber", &[("content-type", "application/x-www-form-urlencoded")], "x=1").await;
    assert_eq!(post.status, 405);
    let lookup = get(&s, "/countries?code=mex", &[]).await;
    assert_eq!((lookup.status, lookup.header("location")), (303, "/countries/MX"));
    s.stop().await;
}

#[tokio::test]
async fn with_reads_behind_tokens_a_page_asks_for_one_and_shows_writers_the_forms() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = tokens_file(dir.path(), &[("rita", "reader", "reader-token"), ("will", "writer", "writer-token")]);
    let config = Config {
        data_dir: dir.path().join("data"),
        demo: true,
        auth: AuthConfig { tokens_file: Some(tokens), require_auth_for_reads: true },
        ..Config::default()
    };
    let s = TestServer::start_with(config).await;
    let anon = get(&s, "/lists/cyber", &[]).await;
    assert_eq!(anon.status, 401);
    assert!(anon.body.contains("token-form") && !anon.body.contains("member-count"), "{}", anon.body);
    let wrong = get(&s, "/lists/cyber", &[("authorization", "Bearer nope")]).await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("not valid"), "{}", wrong.body);
    let reader = get(&s, "/lists/cyber", &[("authorization", "Bearer reader-token")]).await;
    assert_eq!(reader.status, 200);
    assert_eq!(by_id(&reader.body, "member-count"), "37");
    assert!(!reader.body.contains("replace-form") && !reader.body.contains("apply-form"));
    let writer = get(&s, "/lists/cyber", &[("authorization", "Bearer writer-token")]).await;
    assert!(writer.body.contains("replace-form") && writer.body.contains("apply-form"));
    // The assets need no token (they hold no data).
    let css = get(&s, "/console/assets/console.css", &[]).await;
    assert_eq!(css.status, 200);
    s.stop().await;
}

#[tokio::test]
async fn the_console_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config { data_dir: dir.path().to_owned(), demo: true, console: false, ..Config::default() };
    let s = TestServer::start_with(config).await;
    let a = get(&s, "/", &[]).await;
    assert_eq!(a.status, 404);
    assert!(a.body.contains("turned off"));
    assert_eq!(get(&s, "/v1/lists", &[]).await.status, 200);
    s.stop().await;
}
