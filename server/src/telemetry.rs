//! Logs and traces: the `tracing` subscriber (text or JSON), optional
//! OpenTelemetry trace export over OTLP/gRPC, and one span per RPC that
//! carries a trace id, so every log line of a call names its trace.
//!
//! The trace id comes from the caller's W3C `traceparent` header when it
//! sends one (its trace continues here), else a new one. With OTLP on, it
//! is the exported trace's id.

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::{
    Context,
    trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider as _},
};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt, util::SubscriberInitExt};

/// How logs are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("{other:?} is not text or json")),
        }
    }
}

/// Why logs or traces cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// `log_level` is not a tracing filter.
    #[error("log_level {filter:?}: {message}")]
    Filter {
        /// The filter given.
        filter: String,
        /// Why it does not parse.
        message: String,
    },
    /// The OTLP exporter cannot be built.
    #[error("otlp_endpoint {endpoint:?}: {message}")]
    Otlp {
        /// The endpoint given.
        endpoint: String,
        /// Why.
        message: String,
    },
    /// A subscriber is installed already.
    #[error("cannot install the log subscriber: {0}")]
    Install(String),
}

static OTEL: AtomicBool = AtomicBool::new(false);

/// Holds the trace exporter; flush it with [`Telemetry::shutdown`].
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports what is buffered and stops the exporter.
    pub fn shutdown(self) {
        if let Some(p) = self.provider {
            let _ = p.force_flush();
            let _ = p.shutdown();
        }
    }

    /// Exports what is buffered now.
    pub fn flush(&self) {
        if let Some(p) = &self.provider {
            let _ = p.force_flush();
        }
    }
}

/// Installs the process-wide subscriber: logs in `format` filtered by
/// `filter`, plus OTLP trace export to `otlp_endpoint` (e.g.
/// `http://collector:4317`) when given.
pub fn init(format: LogFormat, filter: &str, otlp_endpoint: Option<&str>) -> Result<Telemetry, TelemetryError> {
    let filter = EnvFilter::try_new(filter)
        .map_err(|e| TelemetryError::Filter { filter: filter.to_owned(), message: e.to_string() })?;
    let fmt = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer().boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer().json().boxed(),
    };
    let (otel, provider) = match otlp_endpoint {
        None => (None, None),
        Some(endpoint) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build()
                .map_err(|e| TelemetryError::Otlp { endpoint: endpoint.to_owned(), message: e.to_string() })?;
            let provider = SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(opentelemetry_sdk::Resource::builder().with_service_name("eligibility-server").build())
                .build();
            let tracer = provider.tracer("eligibility-server");
            OTEL.store(true, Ordering::Release);
            (Some(tracing_opentelemetry::layer().with_tracer(tracer)), Some(provider))
        }
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init()
        .map_err(|e| TelemetryError::Install(e.to_string()))?;
    Ok(Telemetry { provider })
}

/// Parses a W3C `traceparent` (`00-<trace id>-<parent span id>-<flags>`).
pub fn parse_traceparent(v: &str) -> Option<(TraceId, SpanId, TraceFlags)> {
    let mut parts = v.trim().split('-');
    let (version, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if version.len() != 2 || trace.len() != 32 || span.len() != 16 || flags.len() != 2 || version == "ff" {
        return None;
    }
    let trace = TraceId::from_hex(trace).ok().filter(|t| *t != TraceId::INVALID)?;
    let span = SpanId::from_hex(span).ok().filter(|s| *s != SpanId::INVALID)?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some((trace, span, TraceFlags::new(flags)))
}

/// A random trace id from fastrand's per-thread generator: no system call
/// per request. Trace ids need to be unique, not secret (never the
/// invalid all-zero id).
fn new_trace_id() -> TraceId {
    TraceId::from(fastrand::u128(1..))
}

/// The span of one RPC, with its trace id recorded for the logs.
pub fn rpc_span(method: &'static str, traceparent: Option<&str>) -> tracing::Span {
    let span = tracing::info_span!("rpc", method, trace_id = tracing::field::Empty);
    if span.is_disabled() {
        return span;
    }
    let remote = traceparent.and_then(parse_traceparent);
    let trace_id = if OTEL.load(Ordering::Acquire) {
        if let Some((trace, parent, flags)) = remote {
            let cx = Context::new().with_remote_span_context(SpanContext::new(
                trace,
                parent,
                flags,
                true,
                TraceState::default(),
            ));
            let _ = span.set_parent(cx);
        }
        span.context().span().span_context().trace_id()
    } else {
        remote.map(|(t, ..)| t).unwrap_or_else(new_trace_id)
    };
    span.record("trace_id", tracing::field::display(trace_id));
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent() {
        let (t, s, f) = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(t.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(s.to_string(), "00f067aa0ba902b7");
        assert!(f.is_sampled());
        for bad in [
            "",
            "00-xyz",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert!(parse_traceparent(bad).is_none(), "{bad}");
        }
    }
}

/// Events logged at most once per interval, with how many there were
/// since the last line: a flood (of refused connections, of cut consumers)
/// is counted in metrics, not written to the log once per event.
#[derive(Debug, Default)]
pub struct Throttled {
    since_logged: std::sync::atomic::AtomicU64,
    last: std::sync::Mutex<Option<std::time::Instant>>,
}

impl Throttled {
    /// The interval.
    const EVERY: std::time::Duration = std::time::Duration::from_secs(10);

    /// Counts one event; `Some(n)` when it is time to log (the `n` events
    /// since the last line, this one included).
    pub fn hit(&self) -> Option<u64> {
        let n = self.since_logged.fetch_add(1, Ordering::Relaxed) + 1;
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|t| t.elapsed() < Self::EVERY) {
            return None;
        }
        *last = Some(std::time::Instant::now());
        self.since_logged.store(0, Ordering::Relaxed);
        Some(n)
    }
}
