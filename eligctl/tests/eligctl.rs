//! `eligctl` against a demo server: each subcommand's output and exit code.

use std::{io::Write, sync::Arc};

use eligibility_server::{
    app::App,
    server::{self, Config},
};
use tokio::{net::TcpListener, process::Command, sync::oneshot};

struct Server {
    url: String,
    _stop: oneshot::Sender<()>,
    _app: Arc<App>,
    _dir: tempfile::TempDir,
}

async fn demo_server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let config = Config { data_dir: dir.path().to_owned(), demo: true, ..Config::default() };
    let app = server::open(&config).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = oneshot::channel::<()>();
    let reg = app.clone();
    tokio::spawn(async move {
        server::run(listener, reg, &config, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Server { url, _stop: tx, _app: app, _dir: dir }
}

/// Runs eligctl; returns (exit code, stdout, stderr).
async fn eligctl(server: &Server, args: &[&str]) -> (i32, String, String) {
    let out =
        Command::new(env!("CARGO_BIN_EXE_eligctl")).arg("--server").arg(&server.url).args(args).output().await.unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

#[tokio::test]
async fn check_exit_codes_and_output() {
    let s = demo_server().await;
    let (code, out, _) = eligctl(&s, &["check", "cyber", "MX"]).await;
    assert_eq!(code, 1, "not eligible exits 1");
    assert!(out.contains("NOT ELIGIBLE") && out.contains("revision 3") && out.contains("2021-11-01"), "{out}");
    let (code, out, _) = eligctl(&s, &["check", "cyber", "MEX", "--as-of", "2021-10-15"]).await;
    assert_eq!(code, 0, "eligible exits 0");
    assert!(out.contains("ELIGIBLE") && !out.contains("NOT"), "{out}");
    let (code, out, _) = eligctl(&s, &["--json", "check", "cyber", "fr"]).await;
    assert_eq!(code, 0);
    let v = json(&out);
    assert_eq!(v["country"], "FR");
    assert_eq!(v["eligible"], true);
    assert_eq!(v["revision"], 3);
    assert_eq!(v["deciding_change"]["revision"], 2);
    let (code, _, err) = eligctl(&s, &["check", "cyber", "ZZ"]).await;
    assert_eq!(code, 2, "bad usage exits 2");
    assert!(err.contains("\"ZZ\""), "{err}");
    let (code, _, err) = eligctl(&s, &["check", "nosuch", "FR"]).await;
    assert_eq!(code, 3, "not found exits 3");
    assert!(err.contains("nosuch"), "{err}");
    let (code, _, err) = eligctl(&s, &["check", "cyber", "FR", "--at-revision", "99"]).await;
    assert_eq!(code, 2);
    assert!(err.contains("99"), "{err}");
}

#[tokio::test]
async fn unreachable_server_exits_4() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let out = Command::new(env!("CARGO_BIN_EXE_eligctl"))
        .args(["--server", &url, "--timeout", "2", "lists"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn lists_members_history_diff() {
    let s = demo_server().await;
    let (code, out, _) = eligctl(&s, &["lists"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("cyber") && out.contains("37"), "{out}");
    let (_, out, _) = eligctl(&s, &["--json", "members", "cyber"]).await;
    let v = json(&out);
    assert_eq!(v["members"].as_array().unwrap().len(), 37);
    let (_, out, _) = eligctl(&s, &["--json", "members", "cyber", "--as-of", "2021-10-15"]).await;
    assert_eq!(json(&out)["members"].as_array().unwrap().len(), 41);
    let (code, out, _) = eligctl(&s, &["members", "cyber"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("37 members") && out.contains("Liechtenstein"), "{out}");
    let (_, out, _) = eligctl(&s, &["--json", "history", "cyber", "--country", "MX"]).await;
    let revs: Vec<u64> =
        json(&out)["changesets"].as_array().unwrap().iter().map(|c| c["revision"].as_u64().unwrap()).collect();
    assert_eq!(revs, [2, 3]);
    let (_, out, _) = eligctl(&s, &["history", "cyber"]).await;
    assert!(out.contains("-4 (MX MA SA AE)"), "{out}");
    let (_, out, _) = eligctl(&s, &["--json", "diff", "cyber", "--from", "2021-10-15", "--to", "2021-11-02"]).await;
    assert_eq!(json(&out)["removed"], serde_json::json!(["AE", "MA", "MX", "SA"]));
    let (_, out, _) = eligctl(&s, &["diff", "cyber", "--from", "2021-10-15"]).await;
    assert!(out.contains("removed (4): AE MA MX SA"), "{out}");
}

#[tokio::test]
async fn batch_from_file_and_stdin() {
    let s = demo_server().await;
    let mut f = tempfile::NamedTempFile::new().unwrap();
    writeln!(f, "# deals\ncyber FR\ncyber,JP\n\ncyber DE").unwrap();
    let (code, out, _) = eligctl(&s, &["batch", f.path().to_str().unwrap()]).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.matches("yes").count(), 3, "{out}");
    let mut f = tempfile::NamedTempFile::new().unwrap();
    writeln!(f, "cyber FR\ncyber MX").unwrap();
    let (code, out, _) = eligctl(&s, &["--json", "batch", f.path().to_str().unwrap()]).await;
    assert_eq!(code, 1, "one not eligible");
    assert_eq!(json(&out)["decisions"][1]["eligible"], false);
    let mut bad = tempfile::NamedTempFile::new().unwrap();
    writeln!(bad, "cyber FR\ncyber QQ").unwrap();
    let (code, _, err) = eligctl(&s, &["batch", bad.path().to_str().unwrap()]).await;
    assert_eq!(code, 2);
    assert!(err.contains("line 2") && err.contains("\"QQ\""), "{err}");
    // stdin
    let mut child = Command::new(env!("CARGO_BIN_EXE_eligctl"))
        .args(["--server", &s.url, "batch", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use tokio::io::AsyncWriteExt;
    child.stdin.take().unwrap().write_all(b"cyber SA\n").await.unwrap();
    let out = child.wait_with_output().await.unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[tokio::test]
async fn apply_replace_create_and_watch() {
    let s = demo_server().await;
    // Follow from revision 3 while writing.
    let watcher = Command::new(env!("CARGO_BIN_EXE_eligctl"))
        .args(["--server", &s.url, "--json", "watch", "--after-revision", "3", "--count", "3"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();

    let mut csv = tempfile::Builder::new().suffix(".csv").tempfile().unwrap();
    writeln!(csv, "list,country,action,conditions\ncyber,MX,add,government end users only\ncyber,FR,remove,").unwrap();
    let path = csv.path().to_str().unwrap().to_owned();
    let (code, out, err) =
        eligctl(&s, &["apply", &path, "--reason", "test", "--reference", "doc-1", "--request-id", "r1"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("recorded revision 4"), "{out}");
    let (code, out, _) =
        eligctl(&s, &["apply", &path, "--reason", "test", "--reference", "doc-1", "--request-id", "r1"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("already recorded at revision 4"), "{out}");
    let (code, _, err) = eligctl(&s, &["apply", &path, "--reason", "other", "--request-id", "r1"]).await;
    assert_eq!(code, 5, "reused request id: {err}");
    let (code, _, err) = eligctl(&s, &["apply", &path, "--reason", "x", "--expected-revision", "1"]).await;
    assert_eq!(code, 5, "conflict: {err}");
    let (code, out, _) = eligctl(&s, &["check", "cyber", "MX"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("government end users only"), "{out}");

    let mut yaml = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    writeln!(yaml, "members:\n  - AT\n  - country: DE\n    conditions: licence required\n").unwrap();
    let (code, out, err) = eligctl(
        &s,
        &[
            "--json",
            "replace",
            "cyber",
            yaml.path().to_str().unwrap(),
            "--reason",
            "new list",
            "--effective",
            "2030-01-01",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let v = json(&out);
    assert_eq!(v["revision"], 5);
    assert_eq!(v["recorded"], true);
    let (code, _, _) = eligctl(&s, &["check", "cyber", "FI", "--as-of", "2030-01-02"]).await;
    assert_eq!(code, 1, "FI removed by the replacement from 2030");

    let mut bad = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    writeln!(bad, "changes:\n  - {{list: cyber, country: ZZ, action: add}}").unwrap();
    let (code, _, err) = eligctl(&s, &["apply", bad.path().to_str().unwrap(), "--reason", "x"]).await;
    assert_eq!(code, 2);
    assert!(err.contains("changes[0]") && err.contains("\"ZZ\""), "{err}");

    let (code, out, _) = eligctl(&s, &["create-list", "embargo", "--mode", "denylist", "--reason", "new"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("recorded revision 6"), "{out}");

    let out =
        tokio::time::timeout(std::time::Duration::from_secs(20), watcher.wait_with_output()).await.unwrap().unwrap();
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(json).filter(|v| v["event"] == "changeset").collect();
    let revs: Vec<u64> = lines.iter().map(|v| v["changeset"]["revision"].as_u64().unwrap()).collect();
    assert_eq!(revs, [4, 5, 6]);
}
