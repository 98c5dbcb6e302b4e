//! OTLP trace export configured as an operator would: by flag, by
//! environment variable and by config file, through the real binary. Each
//! way, an RPC's span reaches an in-process OTLP collector and continues
//! the caller's trace.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use eligibility::proto::v1::{CheckRequest, eligibility_service_client::EligibilityServiceClient};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
    trace_service_server::{TraceService, TraceServiceServer},
};

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
        for s in req.get_ref().resource_spans.iter().flat_map(|r| &r.scope_spans).flat_map(|s| &s.spans) {
            spans.push((s.trace_id.iter().map(|b| format!("{b:02x}")).collect(), s.name.clone()));
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

async fn collector() -> (Collector, String) {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let c = collector.clone();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(c))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
            .unwrap();
    });
    (collector, endpoint)
}

/// Starts the server on a port of its choosing; returns it and its address
/// (read from its "serving" log line).
fn start(configure: impl FnOnce(&mut Command), data: &std::path::Path) -> (Child, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_eligibility-server"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("ELIGIBILITY_")) {
        c.env_remove(k);
    }
    c.args(["--listen", "127.0.0.1:0", "--demo", "--log-format", "json", "--data-dir"]).arg(data);
    c.stdout(Stdio::piped()).stderr(Stdio::null());
    configure(&mut c);
    let mut child = c.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("the server exited before serving").unwrap();
        if line.contains("serving eligibility.v1") {
            let start = line.find("127.0.0.1:").expect("an address in the serving line");
            let end = line[start..].find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ':')).unwrap();
            break line[start..start + end].to_owned();
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (child, addr)
}

async fn traced_check(addr: &str, trace: &str) {
    let mut q = EligibilityServiceClient::connect(format!("http://{addr}")).await.unwrap();
    let mut req = tonic::Request::new(CheckRequest { list_id: "cyber".into(), country: "MX".into(), point: None });
    req.metadata_mut().insert("traceparent", format!("00-{trace}-00f067aa0ba902b7-01").parse().unwrap());
    q.check(req).await.unwrap();
}

/// Stops the server gracefully (it flushes its spans) and waits for it.
fn stop(mut child: Child) {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the server did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn exported(collector: &Collector, trace: &str) -> bool {
    for _ in 0..100 {
        if collector.spans.lock().unwrap().iter().any(|(id, name)| id == trace && name == "rpc") {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// One way to give the server its settings.
type Configure<'a> = Box<dyn FnOnce(&mut Command) + 'a>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_endpoint_by_flag_environment_or_file_exports_the_callers_trace() {
    let (collector, endpoint) = collector().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("server.toml");
    std::fs::write(&file, format!("otlp_endpoint = {endpoint:?}\n")).unwrap();
    let ways: [(&str, Configure); 3] = [
        (
            "flag",
            Box::new(|c: &mut Command| {
                c.args(["--otlp-endpoint", &endpoint]);
            }),
        ),
        (
            "environment",
            Box::new(|c: &mut Command| {
                c.env("ELIGIBILITY_OTLP_ENDPOINT", &endpoint);
            }),
        ),
        (
            "file",
            Box::new(|c: &mut Command| {
                c.arg("--config").arg(&file);
            }),
        ),
    ];
    for (i, (way, configure)) in ways.into_iter().enumerate() {
        let trace = format!("4bf92f3577b34da6a3ce929d0e0e47{i:02}");
        let (server, addr) = start(configure, &dir.path().join(way));
        traced_check(&addr, &trace).await;
        stop(server);
        assert!(exported(&collector, &trace).await, "by {way}: no span of trace {trace} reached the collector");
    }
}
