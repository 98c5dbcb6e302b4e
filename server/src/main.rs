//! `eligibility-server`: resolves the configuration (flags > environment >
//! `--config` file > defaults), binds, serves until SIGINT or SIGTERM.

use std::{io::Read, process::ExitCode};

use eligibility_server::{auth, config::Settings, server, startup, telemetry};

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown requested; finishing in-flight calls");
}

#[tokio::main]
async fn main() -> ExitCode {
    let flags = Settings::from_cli();
    if flags.new_token {
        let token = auth::new_token();
        println!("token:  {token}\nsha256: {}", auth::hash_token(&token));
        return ExitCode::SUCCESS;
    }
    if let Some(path) = &flags.write_descriptor_set {
        return match std::fs::write(path, eligibility::FILE_DESCRIPTOR_SET) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: cannot write {}: {e}", path.display());
                ExitCode::from(2)
            }
        };
    }
    if flags.hash_token {
        let mut token = String::new();
        if std::io::stdin().read_to_string(&mut token).is_err() {
            eprintln!("error: cannot read the token from stdin");
            return ExitCode::from(2);
        }
        println!("{}", auth::hash_token(token.trim_end_matches(['\n', '\r'])));
        return ExitCode::SUCCESS;
    }
    let resolved = match flags.load_file().and_then(|file| flags.resolve(&file)) {
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
    let loading = startup::serve_while_loading(listener);
    let opened = server::open(&resolved.config).await;
    let listener = match loading.finish().await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "cannot take the listener back from the loading server");
            return ExitCode::FAILURE;
        }
    };
    let app = match opened {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot open the store");
            return ExitCode::FAILURE;
        }
    };
    match server::run(listener, app, &resolved.config, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            ExitCode::FAILURE
        }
    }
}
