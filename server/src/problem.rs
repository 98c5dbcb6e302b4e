//! Errors of the HTTP surfaces as RFC 9457 problem details (`application/problem+json`): the
//! gRPC code's name as the title and `code`, the message as `detail`, and
//! the standard error details (field violations, error info) as members.

use std::collections::HashMap;

use axum::body::Body;
use http::{HeaderValue, Response, StatusCode, header};
use serde::Serialize;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::error::Error;

#[derive(Serialize)]
struct Problem<'a> {
    r#type: &'static str,
    title: &'static str,
    status: u16,
    detail: &'a str,
    /// The gRPC status code's name, e.g. `INVALID_ARGUMENT`.
    code: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    violations: Vec<Violation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    metadata: HashMap<String, String>,
}

#[derive(Serialize)]
struct Violation {
    field: String,
    description: String,
}

/// The HTTP status of a gRPC code, by the usual mapping (an ABORTED
/// write failed its `If-Match`: 412).
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::FailedPrecondition => StatusCode::CONFLICT,
        Code::Aborted => StatusCode::PRECONDITION_FAILED,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unavailable | Code::Cancelled => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// `status` as problem details.
pub fn problem(status: &Status) -> Response<Body> {
    problem_as(status, http_status(status.code()))
}

/// `status` as problem details with this HTTP status.
pub fn problem_as(status: &Status, http: StatusCode) -> Response<Body> {
    let violations = status
        .get_details_bad_request()
        .map(|b| {
            b.field_violations.into_iter().map(|v| Violation { field: v.field, description: v.description }).collect()
        })
        .unwrap_or_default();
    let info = status.get_details_error_info();
    let reason = info.as_ref().map(|i| i.reason.clone());
    let metadata = info.map(|i| i.metadata).unwrap_or_default();
    answer(status.code(), http, status.message(), violations, reason, metadata)
}

/// A domain error as problem details, straight from the error (its code,
/// field violation and reason; no status in between).
pub fn error(e: &Error) -> Response<Body> {
    let detail = e.to_string();
    if e.is_internal() {
        tracing::error!(error = %detail, "internal error");
    }
    let violations = e
        .violation()
        .map(|(field, description)| vec![Violation { field: field.to_owned(), description: description.to_owned() }])
        .unwrap_or_default();
    let (reason, metadata) = match e.info() {
        Some((reason, md)) => (Some(reason.to_owned()), md.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()),
        None => (None, HashMap::new()),
    };
    answer(e.code(), http_status(e.code()), &detail, violations, reason, metadata)
}

/// The problem answer.
fn answer(
    code: Code,
    http: StatusCode,
    detail: &str,
    violations: Vec<Violation>,
    reason: Option<String>,
    metadata: HashMap<String, String>,
) -> Response<Body> {
    let body = Problem {
        r#type: "about:blank",
        title: code_name(code),
        status: http.as_u16(),
        detail,
        code: code_name(code),
        violations,
        reason,
        metadata,
    };
    let bytes = serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec());
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = http;
    // For the metrics layer: the answer's gRPC code.
    resp.extensions_mut().insert(code);
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    if code == Code::Unauthenticated {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    resp
}

/// A problem of our own making on the HTTP side (never caused by input).
pub fn internal(message: &str) -> Response<Body> {
    problem(&Status::internal(message.to_owned()))
}

/// The canonical name of a gRPC code.
pub fn code_name(c: Code) -> &'static str {
    match c {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// A refusal (by a layer) in the form the request's surface expects: a
/// gRPC status for gRPC (and gRPC-Web) calls, problem details otherwise.
pub fn refusal(status: Status, grpc: bool) -> Response<tonic::body::Body> {
    if grpc { status.into_http() } else { problem(&status).map(tonic::body::Body::new) }
}

/// Whether a request is a gRPC (or gRPC-Web) call, by its content type.
pub fn is_grpc(headers: &http::HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|ct| ct.starts_with("application/grpc"))
}

/// `405 Method Not Allowed` for a resource that exists, with `Allow`.
pub fn method_not_allowed(method: &str, path: &str, allowed: &[&str]) -> Response<tonic::body::Body> {
    let status = Status::unimplemented(format!("{method} is not allowed on {path} (allowed: {})", allowed.join(", ")));
    let mut resp = problem_as(&status, StatusCode::METHOD_NOT_ALLOWED);
    if let Ok(v) = HeaderValue::from_str(&allowed.join(", ")) {
        resp.headers_mut().insert(header::ALLOW, v);
    }
    resp.map(tonic::body::Body::new)
}
