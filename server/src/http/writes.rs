//! The write routes: the body is the RPC's request as JSON; the
//! `Idempotency-Key` header is the request id and `If-Match: "<revision>"`
//! the expected revision (a stale one answers 412).

use axum::{
    body::Body,
    extract::{Path, Request, State},
};
use eligibility::proto::v1::{self as pb, admin_service_server::AdminService as _};
use http::{Response, StatusCode, header};
use tonic::Status;

use super::{Http, json, problem, rpc_request};
use crate::grpc::convert::invalid;

/// The write options with the headers' request id and expected revision.
fn options(parts: &http::request::Parts, options: Option<pb::WriteOptions>) -> Result<pb::WriteOptions, Status> {
    let mut o = options.unwrap_or_default();
    if let Some(key) = parts.headers.get("idempotency-key") {
        let key = key.to_str().map_err(|_| invalid("Idempotency-Key", "not text"))?;
        if !o.request_id.is_empty() && o.request_id != key {
            return Err(invalid("Idempotency-Key", "differs from options.requestId in the body"));
        }
        o.request_id = key.to_owned();
    }
    if let Some(tag) = parts.headers.get(header::IF_MATCH) {
        let tag = tag.to_str().map_err(|_| invalid("If-Match", "not text"))?;
        let revision = tag
            .trim()
            .trim_start_matches("W/")
            .trim_matches('"')
            .rsplit(':')
            .next()
            .and_then(|r| r.parse::<u64>().ok())
            .ok_or_else(|| invalid("If-Match", &format!("{tag:?} is not \"<revision>\" or an ETag of this API")))?;
        if o.expected_revision.is_some_and(|e| e != revision) {
            return Err(invalid("If-Match", "differs from options.expectedRevision in the body"));
        }
        o.expected_revision = Some(revision);
    }
    Ok(o)
}

/// The list id of the path into the body (which may repeat it, not
/// contradict it).
fn from_path(body: &mut String, path: String) -> Result<(), Status> {
    if !body.is_empty() && *body != path {
        return Err(invalid("listId", "differs from the list in the path"));
    }
    *body = path;
    Ok(())
}

/// The answer of a write (with the new head as its ETag), or its problem.
fn written(result: Result<tonic::Response<pb::WriteResponse>, Status>) -> Response<Body> {
    match result {
        Ok(r) => {
            let w = r.into_inner();
            let mut resp = json(StatusCode::OK, &w);
            if let Ok(tag) = format!("\"{}:{}\"", w.store_id, w.revision).parse() {
                resp.headers_mut().insert(header::ETAG, tag);
            }
            resp
        }
        Err(status) => problem(&status),
    }
}

/// `POST /v1/lists`: CreateList.
pub async fn create_list(State(h): State<Http>, req: Request) -> Response<Body> {
    let (parts, b) = req.into_parts();
    let mut msg: pb::CreateListRequest = body!(h, b);
    msg.options = Some(tri!(options(&parts, msg.options.take())));
    written(h.admin.create_list(rpc_request(&parts, msg)).await)
}

/// `PATCH /v1/lists/{list_id}`: UpdateList.
pub async fn update_list(State(h): State<Http>, Path(list_id): Path<String>, req: Request) -> Response<Body> {
    let (parts, b) = req.into_parts();
    let mut msg: pb::UpdateListRequest = body!(h, b);
    tri!(from_path(&mut msg.list_id, list_id));
    msg.options = Some(tri!(options(&parts, msg.options.take())));
    written(h.admin.update_list(rpc_request(&parts, msg)).await)
}

/// `POST /v1/changesets`: Apply.
pub async fn apply(State(h): State<Http>, req: Request) -> Response<Body> {
    let (parts, b) = req.into_parts();
    let mut msg: pb::ApplyRequest = body!(h, b);
    msg.options = Some(tri!(options(&parts, msg.options.take())));
    written(h.admin.apply(rpc_request(&parts, msg)).await)
}

/// `PUT /v1/lists/{list_id}/members`: ReplaceMembers.
pub async fn replace_members(State(h): State<Http>, Path(list_id): Path<String>, req: Request) -> Response<Body> {
    let (parts, b) = req.into_parts();
    let mut msg: pb::ReplaceMembersRequest = body!(h, b);
    tri!(from_path(&mut msg.list_id, list_id));
    msg.options = Some(tri!(options(&parts, msg.options.take())));
    written(h.admin.replace_members(rpc_request(&parts, msg)).await)
}
