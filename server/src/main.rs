//! `eligibility-server`: resolves the configuration (flags > environment >
//! `--config` file > defaults), binds, serves until SIGINT or SIGTERM
//! (`server::serve`: the same path the tests run); or runs a one-shot
//! command (`token new`, `token hash`, `descriptor-set FILE`).

use std::{io::Read, process::ExitCode};

use eligibility_server::{
    config::{Command, Settings, TokenCommand},
    identity, server, telemetry,
};

#[tokio::main]
async fn main() -> ExitCode {
    let flags = Settings::from_cli();
    if let Some(command) = flags.one_shot() {
        return one_shot(command);
    }
    let resolved = match Settings::load_file(flags.config.as_deref()).and_then(|file| flags.resolve(&file)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    if flags.print_config {
        print!("{}", toml::to_string(&resolved.effective).unwrap_or_default());
        return ExitCode::SUCCESS;
    }
    let telemetry = match telemetry::init(resolved.log_format, &resolved.log_level, resolved.otlp_endpoint.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let code = serve(resolved).await;
    telemetry.shutdown();
    code
}

/// Does `command` and says how it went.
fn one_shot(command: Command) -> ExitCode {
    match command {
        Command::Token(TokenCommand::New) => {
            let token = identity::new_token();
            println!("token:  {token}\nsha256: {}", identity::hash_token(&token));
            ExitCode::SUCCESS
        }
        Command::Token(TokenCommand::Hash) => {
            let mut token = String::new();
            if std::io::stdin().read_to_string(&mut token).is_err() {
                eprintln!("error: cannot read the token from stdin");
                return ExitCode::from(2);
            }
            println!("{}", identity::hash_token(token.trim_end_matches(['\n', '\r'])));
            ExitCode::SUCCESS
        }
        Command::DescriptorSet { file } => match std::fs::write(&file, eligibility::FILE_DESCRIPTOR_SET) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: cannot write {}: {e}", file.display());
                ExitCode::from(2)
            }
        },
    }
}

async fn serve(resolved: eligibility_server::config::Resolved) -> ExitCode {
    // Bound first: while a long history loads, the port answers health
    // NOT_SERVING (and UNAVAILABLE to other calls), not a refused connection.
    let listener = match tokio::net::TcpListener::bind(resolved.listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, listen = %resolved.listen, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    let stop = async {
        eligibility::process::shutdown_signal().await;
        tracing::info!("shutdown requested; finishing in-flight calls");
    };
    match server::serve(listener, &resolved.config, stop).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            ExitCode::FAILURE
        }
    }
}
