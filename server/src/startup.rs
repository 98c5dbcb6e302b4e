//! The port while the registry loads. A long history takes seconds to load
//! (every changeset is read and applied at start); meanwhile the port is
//! already bound and answers, so an orchestrator's probe sees "not ready"
//! instead of a refused connection, and a client's call fails fast with a
//! status it retries: `grpc.health.v1` answers `NOT_SERVING` (overall and
//! for each service), every other gRPC call `UNAVAILABLE`, every HTTP
//! request 503, each saying the registry is loading.

use std::{sync::Arc, time::Duration};

use eligibility::proto::v1::{
    admin_service_server::AdminServiceServer, eligibility_service_server::EligibilityServiceServer,
};
use futures_util::StreamExt;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::{Status, service::Routes};
use tonic_health::ServingStatus;

use crate::grpc::{AdminService, EligibilityService};

/// How long the loading server's connections get to finish when loading is
/// done (a health Watch stream never ends by itself).
const HANDOVER: Duration = Duration::from_secs(1);

/// The loading server, until [`Loading::finish`] hands the listener on.
pub struct Loading {
    listener: Arc<TcpListener>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// Serves `listener` with the loading answers until [`Loading::finish`].
pub fn serve_while_loading(listener: TcpListener) -> Loading {
    let listener = Arc::new(listener);
    let (stop, stopped) = oneshot::channel::<()>();
    let accepting = listener.clone();
    let task = tokio::spawn(async move {
        let (health, health_service) = tonic_health::server::health_reporter();
        health.set_service_status("", ServingStatus::NotServing).await;
        health.set_not_serving::<EligibilityServiceServer<EligibilityService>>().await;
        health.set_not_serving::<AdminServiceServer<AdminService>>().await;
        let routes = Routes::new(health_service).into_axum_router().fallback(
            |req: http::Request<axum::body::Body>| async move {
                let status = Status::unavailable("the registry is loading; retry shortly");
                crate::problem::refusal(status, crate::problem::is_grpc(req.headers()))
            },
        );
        let incoming = futures_util::stream::unfold(accepting, |l| async move {
            let accepted = l.accept().await.map(|(s, _)| {
                let _ = s.set_nodelay(true);
                s
            });
            Some((accepted, l))
        })
        .boxed();
        let served = tonic::transport::Server::builder()
            .accept_http1(true)
            .add_routes(Routes::from(routes))
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            })
            .await;
        if let Err(e) = served {
            tracing::warn!(error = %e, "the loading server failed");
        }
    });
    tracing::info!("port bound; answering NOT_SERVING while the registry loads");
    Loading { listener, stop, task }
}

impl Loading {
    /// Stops the loading answers (connections get [`HANDOVER`] to finish,
    /// then are closed) and hands the listener on.
    pub async fn finish(self) -> std::io::Result<TcpListener> {
        let _ = self.stop.send(());
        let mut task = self.task;
        if tokio::time::timeout(HANDOVER, &mut task).await.is_err() {
            task.abort();
            let _ = task.await;
        }
        Arc::try_unwrap(self.listener).map_err(|_| std::io::Error::other("the loading server still holds the listener"))
    }
}
