//! What the server's process-level tests share: an `eligibility-server`
//! process on a port of its own choosing.

use std::{
    io::BufRead,
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

/// Starts `eligibility-server` with `args` on `127.0.0.1:0` and waits for
/// its address (read from its JSON log, so no port is chosen in advance).
/// Its log lines are kept (standard error is also echoed: a panic's
/// message shows in the test's output).
pub fn spawn_server(args: &[String]) -> (Child, SocketAddr, Arc<Mutex<Vec<String>>>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_eligibility-server"))
        .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
        .args(["--log-level", "info,eligibility_server::writes=warn"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let kept = log.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("server: {line}");
            kept.lock().unwrap().push(line);
        }
    });
    let (tx, rx) = std::sync::mpsc::channel();
    let kept = log.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("serving eligibility.v1") {
                // A JSON log line: the address is its `addr` field.
                let event: Option<serde_json::Value> = serde_json::from_str(&line).ok();
                let addr = event.as_ref().and_then(|e| e["fields"]["addr"].as_str().or(e["addr"].as_str()));
                let _ = tx.send(addr.and_then(|a| a.parse::<SocketAddr>().ok()));
            }
            kept.lock().unwrap().push(line);
        }
    });
    let addr = rx.recv_timeout(Duration::from_secs(60)).ok().flatten().expect("the server did not start");
    (child, addr, log)
}
