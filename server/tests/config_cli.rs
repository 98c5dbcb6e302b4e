//! Configuration precedence (flags > environment > file > defaults) and
//! validation errors, through the real binary.

use std::process::Command;

fn server() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_eligibility-server"));
    // Start from a clean environment for our variables.
    for (k, _) in std::env::vars() {
        if k.starts_with("ELIGIBILITY_") {
            c.env_remove(k);
        }
    }
    c
}

fn run(c: &mut Command) -> (i32, String, String) {
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn key<'a>(toml: &'a str, k: &str) -> &'a str {
    toml.lines().find_map(|l| l.strip_prefix(&format!("{k} = "))).unwrap_or_else(|| panic!("{k} missing in\n{toml}"))
}

#[test]
fn flags_beat_environment_beat_file_beat_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("server.toml");
    std::fs::write(&file, "max_batch = 9\nmax_watchers = 11\nlog_level = \"debug\"\nlisten = \"127.0.0.1:7000\"\n")
        .unwrap();
    let (code, out, err) = run(server()
        .args(["--config", file.to_str().unwrap(), "--max-batch", "3", "--print-config"])
        .env("ELIGIBILITY_MAX_BATCH", "5")
        .env("ELIGIBILITY_MAX_WATCHERS", "12"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(key(&out, "max_batch"), "3", "flag over env and file");
    assert_eq!(key(&out, "max_watchers"), "12", "env over file");
    assert_eq!(key(&out, "log_level"), "\"debug\"", "file over default");
    assert_eq!(key(&out, "listen"), "\"127.0.0.1:7000\"");
    assert_eq!(key(&out, "max_watchers_per_connection"), "10000", "default");
    // The file can also come from the environment.
    let (_, out, _) = run(server().arg("--print-config").env("ELIGIBILITY_CONFIG", &file));
    assert_eq!(key(&out, "max_batch"), "9");
}

#[test]
fn secrets_are_redacted() {
    let (code, out, _) =
        run(server().args(["--print-config", "--database-url", "postgres://app:hunter2@db:5432/elig"]));
    assert_eq!(code, 0);
    assert!(out.contains("postgres://app:***@db:5432/elig"), "{out}");
    assert!(!out.contains("hunter2"));
}

#[test]
fn invalid_configuration_is_refused_with_the_key_named() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--max-batch".into(), "0".into()],
            "invalid max_batch: must be greater than 0 (from --max-batch or ELIGIBILITY_MAX_BATCH)",
        ),
        (vec!["--log-format".into(), "xml".into()], "invalid log_format: \"xml\" is not text or json"),
        (vec!["--tls-cert".into(), "/nonexistent/cert.pem".into()], "tls_cert and tls_key go together"),
        (vec!["--database-url".into(), "mysql://x".into()], "not a postgres:// URL"),
        (
            vec!["--tokens-file".into(), "/nonexistent/tokens.toml".into()],
            "invalid tokens_file: /nonexistent/tokens.toml does not exist",
        ),
        (vec!["--h2-stream-window".into(), "100".into()], "at least 65535"),
    ];
    for (args, needle) in cases {
        let (code, _, err) = run(server().args(&args).arg("--print-config"));
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "max_batchh = 5\n").unwrap();
    let (code, _, err) = run(server().args(["--config", file.to_str().unwrap(), "--print-config"]));
    assert_eq!(code, 2);
    assert!(err.contains("max_batchh"), "{err}");
    std::fs::write(&file, "max_batch = \"lots\"\n").unwrap();
    let (code, _, err) = run(server().args(["--config", file.to_str().unwrap(), "--print-config"]));
    assert_eq!(code, 2);
    assert!(err.contains("max_batch"), "{err}");
    let (code, _, err) = run(server().args(["--max-batch", "many"]));
    assert_eq!(code, 2);
    assert!(err.contains("many"), "{err}");
}

/// Runs the server with `args`, `input` on its stdin: exit code, stdout.
fn with_stdin(args: &[&str], input: &[u8]) -> (Option<i32>, String) {
    use std::io::Write;
    let mut c =
        server().args(args).stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().unwrap();
    c.stdin.take().unwrap().write_all(input).unwrap();
    let out = c.wait_with_output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[test]
fn token_helpers() {
    let (_, out) = with_stdin(&["--hash-token"], b"abc\n");
    assert_eq!(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    let (code, out, _) = run(server().arg("--new-token"));
    assert_eq!(code, 0);
    assert!(out.contains("token:") && out.contains("sha256:"), "{out}");
}

#[test]
fn one_shot_commands_are_subcommands_and_the_old_flags_still_work() {
    let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    assert_eq!(with_stdin(&["token", "hash"], b"abc\n"), (Some(0), abc.to_owned()));
    let (code, out, _) = run(server().args(["token", "new"]));
    assert_eq!(code, 0);
    let token = out.lines().find_map(|l| l.strip_prefix("token:")).unwrap().trim().to_owned();
    let sha = out.lines().find_map(|l| l.strip_prefix("sha256:")).unwrap().trim().to_owned();
    // The printed hash is the token's.
    assert_eq!(with_stdin(&["token", "hash"], token.as_bytes()).1, sha);

    let dir = tempfile::tempdir().unwrap();
    let (new, old) = (dir.path().join("new.binpb"), dir.path().join("old.binpb"));
    let (code, _, err) = run(server().args(["descriptor-set", new.to_str().unwrap()]));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(server().args(["--write-descriptor-set", old.to_str().unwrap()]));
    assert_eq!(code, 0, "{err}");
    let written = std::fs::read(&new).unwrap();
    assert!(written.len() > 1000);
    assert_eq!(written, std::fs::read(&old).unwrap());
    let (code, _, err) = run(server().args(["descriptor-set", dir.path().join("no/such/dir/x").to_str().unwrap()]));
    assert_eq!(code, 2);
    assert!(err.contains("cannot write"), "{err}");
    let (code, _, err) = run(server().args(["token", "forge"]));
    assert_eq!(code, 2, "{err}");
}

#[test]
fn an_x509_version_1_certificate_is_refused_at_start_naming_the_key() {
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");
    let (code, _, err) = run(server().args([
        "--tls-cert",
        &format!("{data}/x509v1-cert.pem"),
        "--tls-key",
        &format!("{data}/x509v1-key.pem"),
        "--print-config",
    ]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("tls_cert") && err.contains("X.509 version 1") && err.contains("-extfile"), "{err}");
    let (code, _, err) = run(server().args([
        "--tls-cert",
        &format!("{data}/x509v1-key.pem"),
        "--tls-key",
        &format!("{data}/x509v1-key.pem"),
        "--print-config",
    ]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("holds no PEM certificate"), "{err}");
}
