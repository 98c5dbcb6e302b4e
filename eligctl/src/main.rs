//! `eligctl`: the command-line client of the export eligibility service.
//!
//! Exit codes (for scripts): 0 success (for `check` and `batch`: eligible);
//! 1 `check`/`batch` answered "not eligible" (for any item); 2 bad usage, a
//! bad input file, or a request the server rejected as invalid; 3 not
//! found; 4 server unavailable or unreachable; 5 conflict (stale
//! `--expected-revision`, reused request id); 6 any other error.

mod args;
mod input;
mod json;
mod render;
mod run;

use std::process::ExitCode;

use clap::Parser;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = args::Cli::parse();
    let json = cli.json;
    let plaintext = cli.server.starts_with("http://");
    // Over TLS 1.3 a server that requires a client certificate refuses it
    // only after the handshake: the client may then see just a closed
    // connection, not the server's alert.
    let tls_without_identity = cli.server.starts_with("https://") && cli.client_cert.is_none();
    match run::run(cli).await {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let mut message = e.to_string();
            if plaintext && e.connected_then_failed() {
                message.push_str(" (if the server serves TLS, use an https:// URL)");
            }
            if tls_without_identity && e.connected_then_failed() {
                message.push_str(
                    " (the server closed the connection after TLS was set up: if it requires a client certificate, give one with --client-cert and --client-key)",
                );
            }
            render::error(json, &message);
            ExitCode::from(run::exit_code(&e))
        }
    }
}
