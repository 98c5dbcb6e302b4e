//! The HTTP/JSON surface on the gRPC port: every RPC at a resource path,
//! the change stream as server-sent events. A sibling of the gRPC
//! transport, not a client of it: each route parses its path, query and
//! body, asks the application (`reads::Queries`, `writes::Writer`, the
//! watch hub) with domain values, and encodes the answer as the proto3
//! canonical JSON of the same `eligibility.v1` messages (the conversions
//! are [`crate::wire`]'s, shared with gRPC; the JSON mapping is generated
//! by pbjson-build), so the answers are the same. Errors are RFC 9457
//! problem details carrying the gRPC code, the message and the field
//! violations, made from the domain error itself ([`Problem`]). The same
//! auth, metrics and limits layers stand in front of it as in front of
//! gRPC.

pub mod openapi;
mod reads;
mod sse;
mod writes;

use std::sync::Arc;

use axum::{
    Router,
    body::Body as AxumBody,
    routing::{MethodFilter, MethodRouter, on},
};
use http::{HeaderValue, Response, StatusCode, header};
use tonic::Status;

use axum::response::IntoResponse;

use crate::{
    app::App,
    app::Asked,
    error::Error,
    routes::{self, Op, Route, Surface},
};

/// What the routes share.
#[derive(Clone)]
pub(crate) struct Http {
    pub(crate) app: Arc<App>,
}

/// A route's early answer: a problem (RFC 9457), from a domain error or
/// from a refusal of the HTTP surface's own (413, 408). Boxed: a response
/// is large, and this is the rare path.
pub(crate) struct Problem(Box<Response<AxumBody>>);

impl From<Error> for Problem {
    fn from(e: Error) -> Self {
        Problem(Box::new(crate::problem::error(&e)))
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response<AxumBody> {
        *self.0
    }
}

/// A route's answer.
pub(crate) type Answer = Result<Response<AxumBody>, Problem>;

/// The HTTP/JSON routes (paths under `/v1/`; gRPC paths never start so),
/// from the route table ([`crate::routes::ROUTES`], surface `Http`).
pub fn router(app: Arc<App>) -> Router {
    // The OpenAPI document states this server's limits: built once.
    let openapi = Arc::new(openapi::document(app.registry.limits()));
    let state = Http { app };
    routes::of(Surface::Http)
        .fold(Router::new(), |router, route| router.route(route.path, endpoint(route, &openapi)))
        .with_state(state)
}

/// The handler of an HTTP route, on the route's verb.
fn endpoint(route: &Route, openapi: &Arc<serde_json::Value>) -> MethodRouter<Http> {
    let verb = MethodFilter::try_from(http::Method::from_bytes(route.verb.as_bytes()).unwrap_or(http::Method::GET))
        .unwrap_or(MethodFilter::GET);
    match route.op {
        Op::ListLists => on(verb, reads::list_lists),
        Op::CreateList => on(verb, writes::create_list),
        Op::GetList => on(verb, reads::get_list),
        Op::UpdateList => on(verb, writes::update_list),
        Op::ListEntries => on(verb, reads::list_entries),
        Op::Check => on(verb, reads::check),
        Op::BatchCheck => on(verb, reads::batch_check),
        Op::History => on(verb, reads::history),
        Op::Diff => on(verb, reads::diff),
        Op::ReplaceMembers => on(verb, writes::replace_members),
        Op::Apply => on(verb, writes::apply),
        Op::Watch => on(verb, sse::watch),
        Op::OpenApi => {
            let document = openapi.clone();
            on(verb, move || async move { json(StatusCode::OK, &*document) })
        }
        op => unreachable!("{op:?} is not an HTTP operation (the route table's test checks)"),
    }
}

/// A JSON answer.
pub(crate) fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<AxumBody> {
    match serde_json::to_vec(value) {
        Ok(bytes) => {
            let mut resp = Response::new(AxumBody::from(bytes));
            *resp.status_mut() = status;
            resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            resp
        }
        Err(e) => crate::problem::internal(&format!("cannot encode the answer: {e}")),
    }
}

/// How long a read may wait (a `grpc-timeout` header, as gRPC calls
/// send; rare over HTTP) and where a bad `at_revision` is reported.
pub(crate) fn asked(parts: &http::request::Parts) -> Asked {
    Asked { wait: crate::wire::deadline(&parts.headers), at_field: "point.at_revision" }
}

/// Reads a JSON body as `T` (unknown fields and wrong types are errors
/// naming them), within the size and time limits: a body over
/// `max_message_bytes` is refused with 413 as soon as it is known to be,
/// one that does not arrive within `body_timeout` (a client sending a byte
/// a second) with 408.
pub(crate) async fn body<T: serde::de::DeserializeOwned>(
    body: AxumBody,
    limits: &crate::limits::Limits,
) -> Result<T, Problem> {
    let (max, time) = (limits.max_message_bytes, limits.body_timeout);
    let bytes = match tokio::time::timeout(time, axum::body::to_bytes(body, max)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => {
            crate::prometheus::exhausted("body_size");
            let status =
                Status::resource_exhausted(format!("the request body is larger than the limit of {max} bytes ({e})"));
            return Err(Problem(Box::new(crate::problem::problem_as(&status, http::StatusCode::PAYLOAD_TOO_LARGE))));
        }
        Err(_) => {
            crate::prometheus::exhausted("body_time");
            let status = Status::deadline_exceeded(format!(
                "the request body did not arrive within {} ms (body_timeout_ms)",
                time.as_millis()
            ));
            return Err(Problem(Box::new(crate::problem::problem_as(&status, http::StatusCode::REQUEST_TIMEOUT))));
        }
    };
    if bytes.is_empty() {
        return Err(Error::invalid("body", "a JSON object is required").into());
    }
    serde_json::from_slice(&bytes).or_else(|e| {
        // The JSON mapping reads `null` as a field's default, for every
        // field; the generated decoder refuses it for some (a string, a
        // bool) and, for a oneof, depends on the member order. A body with
        // nulls is read again without them (only after a failure: the
        // common body pays nothing), so `null` means absent everywhere.
        let without_nulls = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|mut v| strip_nulls(&mut v).then(|| serde_json::from_value::<T>(v).ok()).flatten());
        without_nulls.ok_or_else(|| Error::invalid("body", format!("not the request's JSON: {}", explain(&e))).into())
    })
}

/// Removes every object member whose value is `null`, at any depth;
/// whether there was one.
fn strip_nulls(v: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    // `|`, not `||`: every child is visited.
    match v {
        Value::Object(map) => {
            let before = map.len();
            map.retain(|_, v| !v.is_null());
            let removed = map.len() != before;
            map.values_mut().fold(removed, |any, child| strip_nulls(child) | any)
        }
        Value::Array(items) => items.iter_mut().fold(false, |any, child| strip_nulls(child) | any),
        _ => false,
    }
}

/// A JSON decoding error, said plainly where the generated decoder's words
/// mislead: it reports a second member of a oneof (`atRevision` beside
/// `minRevision` in a read point) as a "duplicate field".
fn explain(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let Some(name) = text.strip_prefix("duplicate field `").and_then(|rest| rest.split('`').next()) else {
        return text;
    };
    match ONEOFS.iter().find(|(_, members)| members.iter().any(|m| m == name)) {
        Some((_, members)) => format!(
            "{name} is given twice, or beside another of {}: they exclude each other (give one) ({text})",
            members.join(", ")
        ),
        None => text,
    }
}

/// Every oneof of `eligibility.v1`: its message's name and its members'
/// JSON names (from the descriptors; proto3 `optional` fields' synthetic
/// oneofs are not oneofs to a client). Read by the error message above and
/// by the OpenAPI schemas.
pub(crate) static ONEOFS: std::sync::LazyLock<Vec<(String, Vec<String>)>> = std::sync::LazyLock::new(|| {
    use prost::Message;
    let Ok(set) = prost_types::FileDescriptorSet::decode(eligibility::FILE_DESCRIPTOR_SET) else { return Vec::new() };
    let mut out = Vec::new();
    for m in set.file.iter().filter(|f| f.package() == "eligibility.v1").flat_map(|f| &f.message_type) {
        for (i, _) in m.oneof_decl.iter().enumerate() {
            let members: Vec<&prost_types::FieldDescriptorProto> =
                m.field.iter().filter(|f| f.oneof_index == Some(i as i32) && !f.proto3_optional()).collect();
            if members.len() > 1 {
                out.push((m.name().to_owned(), members.iter().map(|f| f.json_name().to_owned()).collect()));
            }
        }
    }
    out
});
