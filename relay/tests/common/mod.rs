//! What the relay's tests share: the relay process, NATS's reachability,
//! and the writes.

#![allow(dead_code)]

use std::{
    io::BufRead,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use eligibility_client::{Client, Country, EntryAction, EntryChange, ListId, ListMode, NewList, WriteOptions};

/// NATS for the tests (`ELIGIBILITY_TEST_NATS_URL`, default the machine's).
pub fn nats_url() -> String {
    std::env::var("ELIGIBILITY_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// Connects to NATS, or reports the test skipped (failed under `CI=true`).
pub async fn nats_or_skip(test: &str) -> Option<async_nats::Client> {
    let url = nats_url();
    match tokio::time::timeout(Duration::from_secs(5), async_nats::connect(url.as_str())).await {
        Ok(Ok(c)) => Some(c),
        other => {
            let why = match other {
                Ok(Err(e)) => e.to_string(),
                _ => "timed out".into(),
            };
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("NATS at {url} is unreachable under CI: {why}");
            }
            eprintln!("SKIPPED {test}: NATS at {url} is unreachable ({why})");
            None
        }
    }
}

/// An `eligibility-relay` process, killed when dropped; its log is kept.
pub struct Relay {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    /// The threads reading its stdout and stderr into `log`.
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Relay {
    /// Starts the relay with `args`.
    pub fn start(args: &[String]) -> Relay {
        let mut child = Command::new(env!("CARGO_BIN_EXE_eligibility-relay"))
            .args(["--log-format", "json", "--max-backoff-ms", "500"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let kept = log.clone();
            readers.push(std::thread::spawn(move || {
                for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                    kept.lock().unwrap().push(line);
                }
            }));
        }
        Relay { child, log, readers }
    }

    /// SIGKILL, no goodbye.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the process to exit by itself (at most `within`); its
    /// exit code. Its whole log is read by then.
    pub async fn exit_code(&mut self, within: Duration) -> Option<i32> {
        let deadline = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Its last lines may still be in the pipes: the readers
                // end at the pipes' end.
                while self.readers.iter().any(|r| !r.is_finished()) && tokio::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                return status.code();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// The log so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Creates `lists` (allowlists).
pub async fn create_lists(client: &Client, lists: &[ListId]) {
    for l in lists {
        client
            .create_list(&NewList::new(l.clone(), ListMode::Allowlist), &WriteOptions::reason("relay test"))
            .await
            .unwrap();
    }
}

/// The `i`th write: one country on one list, every fifth on two lists at
/// once (a changeset that becomes two messages).
pub async fn write(client: &Client, lists: &[ListId], i: usize) {
    let countries = Country::all();
    let country = countries[i % countries.len()];
    let action = if (i / countries.len()).is_multiple_of(2) { EntryAction::Add } else { EntryAction::Remove };
    let mut changes =
        vec![EntryChange { list: lists[i % lists.len()].clone(), country, action, conditions: String::new() }];
    if i.is_multiple_of(5) && lists.len() > 1 {
        changes.push(EntryChange {
            list: lists[(i + 1) % lists.len()].clone(),
            country,
            action,
            conditions: String::new(),
        });
    }
    client.apply(&changes, None, &WriteOptions::reason(format!("write {i}"))).await.unwrap();
}
