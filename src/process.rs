//! What the service's processes share (feature `process`): the server and
//! the relay stop the same way.

/// Completes on SIGINT (Ctrl-C) or, on Unix, SIGTERM (what an orchestrator
/// sends): a process's graceful shutdown starts there. If SIGTERM cannot be
/// listened for, Ctrl-C still works (with a warning).
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; Ctrl-C still stops");
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
