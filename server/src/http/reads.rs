//! The read routes: each builds the RPC's request from its path and query
//! (or body) and answers what the gRPC method answers, as JSON, with an
//! `ETag` of the store and revision, and the caching an answer at a fixed
//! point allows.

use axum::{
    body::Body,
    extract::{Path, Request, State},
};
use eligibility::proto::v1::{self as pb, eligibility_service_server::EligibilityService as _};
use http::{HeaderValue, Response, StatusCode, header};
use tonic::Status;

use super::{
    Http, json, problem,
    query::{POINT, Query},
    rpc_request,
};

/// Read answers carry a header: revision, store id, valid time.
pub(crate) trait Answer: serde::Serialize {
    fn header(&self) -> Option<&pb::ResponseHeader>;
}

macro_rules! answers {
    ($($t:ty),*) => {$(
        impl Answer for $t {
            fn header(&self) -> Option<&pb::ResponseHeader> {
                self.header.as_ref()
            }
        }
    )*};
}
answers!(
    pb::CheckResponse,
    pb::BatchCheckResponse,
    pb::ListEntriesResponse,
    pb::ListListsResponse,
    pb::GetListResponse,
    pb::HistoryResponse,
    pb::DiffResponse
);

/// The JSON answer of a read, or its problem. `fixed`: the request named
/// both the revision and the valid time, so the answer never changes.
pub(crate) fn answer<T: Answer>(
    parts: &http::request::Parts,
    result: Result<tonic::Response<T>, Status>,
    fixed: bool,
) -> Response<Body> {
    let message = match result {
        Ok(r) => r.into_inner(),
        Err(status) => return problem(&status),
    };
    let etag = message.header().and_then(|h| HeaderValue::from_str(&format!("\"{}:{}\"", h.store_id, h.revision)).ok());
    let unchanged = etag.as_ref().is_some_and(|tag| {
        parts.headers.get_all(header::IF_NONE_MATCH).iter().any(|v| {
            v.to_str().is_ok_and(|v| v.split(',').any(|t| t.trim() == tag.to_str().unwrap_or("") || t.trim() == "*"))
        })
    });
    let mut resp = if unchanged {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        json(StatusCode::OK, &message)
    };
    let h = resp.headers_mut();
    if let Some(tag) = etag {
        h.insert(header::ETAG, tag);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if fixed { "public, max-age=31536000, immutable" } else { "no-cache" }),
    );
    resp
}

/// Whether a read point pins both time axes.
fn fixed(point: &pb::ReadPoint) -> bool {
    point.as_of.is_some() && matches!(point.consistency, Some(pb::read_point::Consistency::AtRevision(_)))
}

/// `GET /v1/lists/{list_id}/check/{country}`: Check.
pub async fn check(
    State(h): State<Http>,
    Path((list_id, country)): Path<(String, String)>,
    req: Request,
) -> Response<Body> {
    let (parts, _) = req.into_parts();
    let q = query!(parts, &POINT);
    let point = tri!(q.point());
    let fixed = fixed(&point);
    let msg = pb::CheckRequest { list_id, country, point: Some(point) };
    answer(&parts, h.query.check(rpc_request(&parts, msg)).await, fixed)
}

/// `POST /v1/check:batch`: BatchCheck, the body its request's JSON.
pub async fn batch_check(State(h): State<Http>, req: Request) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let _ = query!(parts, &[]);
    let msg: pb::BatchCheckRequest = body!(h, body);
    let fixed = msg.point.as_ref().is_some_and(fixed);
    answer(&parts, h.query.batch_check(rpc_request(&parts, msg)).await, fixed)
}

/// `GET /v1/lists`: ListLists.
pub async fn list_lists(State(h): State<Http>, req: Request) -> Response<Body> {
    let (parts, _) = req.into_parts();
    let q = query!(parts, &POINT);
    let point = tri!(q.point());
    let fixed = fixed(&point);
    answer(&parts, h.query.list_lists(rpc_request(&parts, pb::ListListsRequest { point: Some(point) })).await, fixed)
}

/// `GET /v1/lists/{list_id}`: GetList.
pub async fn get_list(State(h): State<Http>, Path(list_id): Path<String>, req: Request) -> Response<Body> {
    let (parts, _) = req.into_parts();
    let q = query!(parts, &POINT);
    let point = tri!(q.point());
    let fixed = fixed(&point);
    let msg = pb::GetListRequest { list_id, point: Some(point) };
    answer(&parts, h.query.get_list(rpc_request(&parts, msg)).await, fixed)
}

/// `GET /v1/lists/{list_id}/entries`: ListEntries (`page_size`,
/// `page_token`).
pub async fn list_entries(State(h): State<Http>, Path(list_id): Path<String>, req: Request) -> Response<Body> {
    let (parts, _) = req.into_parts();
    let q = query!(parts, &["as_of", "at_revision", "min_revision", "page_size", "page_token"]);
    let point = tri!(q.point());
    let fixed = fixed(&point);
    let page_size = tri!(page_size(&q));
    let page_token = tri!(q.one("page_token")).unwrap_or_default().to_owned();
    let msg = pb::ListEntriesRequest { list_id, point: Some(point), page_size, page_token };
    answer(&parts, h.query.list_entries(rpc_request(&parts, msg)).await, fixed)
}

/// `GET /v1/lists/{list_id}/history`: History (`country`, `at_revision`,
/// paging).
pub async fn history(State(h): State<Http>, Path(list_id): Path<String>, req: Request) -> Response<Body> {
    let (parts, _) = req.into_parts();
    let q = query!(parts, &["country", "at_revision", "page_size", "page_token"]);
    let msg = pb::HistoryRequest {
        list_id,
        country: tri!(q.one("country")).unwrap_or_default().to_owned(),
        at_revision: tri!(q.number("at_revision")).unwrap_or(0),
        page_size: tri!(page_size(&q)),
        page_token: tri!(q.one("page_token")).unwrap_or_default().to_owned(),
    };
    let fixed = msg.at_revision != 0;
    answer(&parts, h.query.history(rpc_request(&parts, msg)).await, fixed)
}

/// `GET /v1/lists/{list_id}/diff`: Diff (`from`, `to` as RFC 3339 times;
/// `from_revision`, `to_revision`).
pub async fn diff(State(h): State<Http>, Path(list_id): Path<String>, req: Request) -> Response<Body> {
    let (parts, _) = req.into_parts();
    let q = query!(parts, &["from", "to", "from_revision", "to_revision"]);
    let at = |r: Option<u64>| r.map(pb::read_point::Consistency::AtRevision);
    let from = pb::ReadPoint { as_of: tri!(q.time("from")), consistency: at(tri!(q.number("from_revision"))) };
    let to = pb::ReadPoint { as_of: tri!(q.time("to")), consistency: at(tri!(q.number("to_revision"))) };
    let fixed = fixed(&from) && fixed(&to);
    let msg = pb::DiffRequest { list_id, from: Some(from), to: Some(to) };
    answer(&parts, h.query.diff(rpc_request(&parts, msg)).await, fixed)
}

fn page_size(q: &Query) -> Result<u32, Status> {
    match q.number("page_size")? {
        None => Ok(0),
        Some(n) => {
            u32::try_from(n).map_err(|_| crate::grpc::convert::invalid("page_size", &format!("{n} is too large")))
        }
    }
}
