//! The web console in a real browser: `console/browser.mjs` drives Debian's
//! headless Chromium (through `playwright-core` from npm) against real
//! `eligibility-server --demo` processes, one open and one requiring tokens
//! for reads, and `eligctl` writes behind an open page's back. Screenshots
//! of every page are saved in `target/console-screenshots/`.
//!
//! Needs node, `playwright-core` installed in `server/tests/console`
//! (`npm ci` there) and Chromium (`/usr/bin/chromium`, or
//! `ELIGIBILITY_TEST_CHROMIUM`); `.ci/run` installs them. Without them the
//! test reports that it was skipped, and under `CI=true` it fails.

mod common;

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Child, Command},
};

/// A server process, killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn here() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console")
}

/// What the browser test needs, or why it cannot run.
fn prerequisites() -> Result<PathBuf, String> {
    let node = Command::new("node").arg("--version").output().map_err(|e| format!("node: {e}"))?;
    if !node.status.success() {
        return Err("node does not run".into());
    }
    if !here().join("node_modules/playwright-core").is_dir() {
        return Err(format!("playwright-core is not installed (npm ci in {})", here().display()));
    }
    let chromium =
        std::env::var_os("ELIGIBILITY_TEST_CHROMIUM").map_or_else(|| "/usr/bin/chromium".into(), PathBuf::from);
    if !chromium.exists() {
        return Err(format!("no Chromium at {} (apt-get install chromium)", chromium.display()));
    }
    Ok(chromium)
}

/// `eligctl`, beside the server binary; built if this run did not build it.
fn eligctl() -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_eligibility-server")).with_file_name("eligctl");
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", "eligibility-client", "--bin", "eligctl"])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building eligctl failed");
    }
    path
}

#[test]
fn the_console_in_a_real_browser() {
    let chromium = match prerequisites() {
        Ok(c) => c,
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("the browser test cannot run under CI: {why}")
        }
        Err(why) => {
            eprintln!("SKIPPED the_console_in_a_real_browser: {why}");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let arg = |s: &str| s.to_owned();
    let (open, open_addr, _) =
        common::spawn_server(&[arg("--demo"), arg("--data-dir"), dir.path().join("open").display().to_string()]);
    let _open = Running(open);

    // A second server whose reads need a token: one reader, one writer.
    let tokens = dir.path().join("tokens.toml");
    let mut f = std::fs::File::create(&tokens).unwrap();
    for (who, role, token) in [("rita", "reader", "reader-token-1"), ("walt", "writer", "writer-token-1")] {
        let sha = eligibility_server::identity::hash_token(token);
        writeln!(f, "[[token]]\nprincipal = \"{who}\"\nrole = \"{role}\"\nsha256 = \"{sha}\"\n").unwrap();
    }
    drop(f);
    let (auth, auth_addr, _) = common::spawn_server(&[
        arg("--demo"),
        arg("--data-dir"),
        dir.path().join("auth").display().to_string(),
        arg("--tokens-file"),
        tokens.display().to_string(),
        arg("--require-auth-for-reads"),
    ]);
    let _auth = Running(auth);

    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/console-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let status = Command::new("node")
        .arg(here().join("browser.mjs"))
        .env("CONSOLE_URL", format!("http://{open_addr}"))
        .env("CONSOLE_AUTH_URL", format!("http://{auth_addr}"))
        .env("READER_TOKEN", "reader-token-1")
        .env("WRITER_TOKEN", "writer-token-1")
        .env("ELIGCTL", eligctl())
        .env("CHROMIUM", chromium)
        .env("SCREENSHOTS", &shots)
        .env("SERVER", env!("CARGO_BIN_EXE_eligibility-server"))
        .env("RESTART_DATA", dir.path().join("restart"))
        .status()
        .expect("node runs");
    assert!(status.success(), "the browser test failed (its output is above)");
}
