//! OpenTelemetry: spans of RPCs are exported over OTLP/gRPC, continuing the
//! caller's trace (W3C traceparent). Its own test binary, because the
//! tracing subscriber is process-wide.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use eligibility::proto::v1 as pb;
use eligibility_e2e::{TestServer, eventually};
use eligibility_server::telemetry::{self, LogFormat};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
    trace_service_server::{TraceService, TraceServiceServer},
};
use tokio::net::TcpListener;

#[derive(Default, Clone)]
struct Collector {
    spans: Arc<Mutex<Vec<(String, String)>>>, // (trace id hex, span name)
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        req: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().unwrap();
        for rs in &req.get_ref().resource_spans {
            for ss in &rs.scope_spans {
                for s in &ss.spans {
                    spans.push((hex(&s.trace_id), s.name.clone()));
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_spans_are_exported_with_the_callers_trace_id() {
    let collector = Collector::default();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let c = collector.clone();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(c))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
            .unwrap();
    });
    let t = telemetry::init(LogFormat::Text, "info", Some(&endpoint)).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), true).await;
    let mut q = server.client().await.raw_query();
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let mut req = tonic::Request::new(pb::CheckRequest { list_id: "cyber".into(), country: "MX".into(), point: None });
    req.metadata_mut().insert("traceparent", format!("00-{trace}-00f067aa0ba902b7-01").parse().unwrap());
    q.check(req).await.unwrap();
    // A call without a traceparent starts a trace of its own.
    q.check(pb::CheckRequest { list_id: "cyber".into(), country: "FR".into(), point: None }).await.unwrap();

    let found = eventually(Duration::from_secs(5), "two rpc spans at the collector", || async {
        t.flush();
        let found = collector.spans.lock().unwrap().clone();
        (found.iter().filter(|(_, n)| n == "rpc").count() >= 2).then_some(found)
    })
    .await;
    assert!(found.iter().any(|(id, name)| id == trace && name == "rpc"), "caller's trace continued: {found:?}");
    assert!(found.iter().any(|(id, name)| id != trace && name == "rpc"), "a new trace otherwise: {found:?}");
    server.stop().await;
    t.shutdown();
}
