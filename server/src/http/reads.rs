//! The read routes: each parses its path and query (or body), asks the
//! application's reads, and answers what the gRPC method answers, as JSON, with an
//! `ETag` of the store and revision, and the caching an answer at a fixed
//! point allows.

use axum::{
    body::Body,
    extract::{Path, Request, State},
};
use eligibility::{Consistency, Point, Revision, proto::v1 as pb};
use http::{HeaderValue, Response, StatusCode, header};

use super::{Answer, Http, Problem, asked, json};
use crate::query::{POINT, Query, fixed};
use crate::{error::Error, wire};

/// Read answers carry a header: revision, store id, valid time.
pub(crate) trait Headed: serde::Serialize {
    fn header(&self) -> Option<&pb::ResponseHeader>;
}

macro_rules! answers {
    ($($t:ty),*) => {$(
        impl Headed for $t {
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

/// The JSON answer of a read. `fixed`: the request named both the
/// revision and the valid time, so the answer never changes.
pub(crate) fn answer<T: Headed>(parts: &http::request::Parts, message: T, fixed: bool) -> Response<Body> {
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

/// The query, with only `known` keys.
fn query(parts: &http::request::Parts, known: &[&str]) -> Result<Query, Problem> {
    let q = Query::parse(&parts.uri)?;
    q.only(known)?;
    Ok(q)
}

/// `GET /v1/lists/{list_id}/check/{country}`: Check.
pub async fn check(State(h): State<Http>, Path((list_id, country)): Path<(String, String)>, req: Request) -> Answer {
    let (parts, _) = req.into_parts();
    let point = query(&parts, &POINT)?.point()?;
    let (view, d) = h.app.queries.check(&list_id, &country, point, asked(&parts)).await?;
    let message = pb::CheckResponse { header: Some(wire::header(&view.header())), decision: Some(wire::decision(&d)) };
    Ok(answer(&parts, message, fixed(&point)))
}

/// `POST /v1/check:batch`: BatchCheck, the body its request's JSON.
pub async fn batch_check(State(h): State<Http>, req: Request) -> Answer {
    let (parts, body) = req.into_parts();
    query(&parts, &[])?;
    let msg: pb::BatchCheckRequest = super::body(body, h.app.limits()).await?;
    let point = wire::point("point", msg.point.as_ref())?;
    let items = msg.items.iter().map(|it| (it.list_id.as_str(), it.country.as_str()));
    let (view, decisions) = h.app.queries.batch_check(items, point, asked(&parts)).await?;
    let message = pb::BatchCheckResponse {
        header: Some(wire::header(&view.header())),
        decisions: decisions.iter().map(wire::decision).collect(),
    };
    Ok(answer(&parts, message, fixed(&point)))
}

/// `GET /v1/lists`: ListLists.
pub async fn list_lists(State(h): State<Http>, req: Request) -> Answer {
    let (parts, _) = req.into_parts();
    let point = query(&parts, &POINT)?.point()?;
    let view = h.app.queries.view(point, asked(&parts)).await?;
    Ok(answer(&parts, wire::lists(&view), fixed(&point)))
}

/// `GET /v1/lists/{list_id}`: GetList.
pub async fn get_list(State(h): State<Http>, Path(list_id): Path<String>, req: Request) -> Answer {
    let (parts, _) = req.into_parts();
    let point = query(&parts, &POINT)?.point()?;
    let (view, info) = h.app.queries.list(&list_id, point, asked(&parts)).await?;
    let message = pb::GetListResponse { header: Some(wire::header(&view.header())), list: Some(wire::list(&info)) };
    Ok(answer(&parts, message, fixed(&point)))
}

/// `GET /v1/lists/{list_id}/entries`: ListEntries (`page_size`,
/// `page_token`).
pub async fn list_entries(State(h): State<Http>, Path(list_id): Path<String>, req: Request) -> Answer {
    let (parts, _) = req.into_parts();
    let q = query(&parts, &["as_of", "at_revision", "min_revision", "page_size", "page_token"])?;
    let point = q.point()?;
    let size = page_size(&q)?;
    let token = q.one("page_token")?.unwrap_or_default();
    let (view, page) = h.app.queries.entries(&list_id, size, token, point, asked(&parts)).await?;
    Ok(answer(&parts, wire::entries(&view, &page), fixed(&point)))
}

/// `GET /v1/lists/{list_id}/history`: History (`country`, `at_revision`,
/// paging).
pub async fn history(State(h): State<Http>, Path(list_id): Path<String>, req: Request) -> Answer {
    let (parts, _) = req.into_parts();
    let q = query(&parts, &["country", "at_revision", "page_size", "page_token"])?;
    let country = q.one("country")?.unwrap_or_default();
    let at_revision = q.number("at_revision")?.unwrap_or(0);
    let size = page_size(&q)?;
    let token = q.one("page_token")?.unwrap_or_default();
    let wait = asked(&parts).wait;
    let (view, page) = h.app.queries.history(&list_id, country, at_revision, size, token, wait).await?;
    Ok(answer(&parts, wire::history(&view, &page), at_revision != 0))
}

/// `GET /v1/lists/{list_id}/diff`: Diff (`from`, `to` as RFC 3339 times;
/// `from_revision`, `to_revision`).
pub async fn diff(State(h): State<Http>, Path(list_id): Path<String>, req: Request) -> Answer {
    let (parts, _) = req.into_parts();
    let q = query(&parts, &["from", "to", "from_revision", "to_revision"])?;
    let at = |r: Option<u64>| r.map_or(Consistency::Latest, |r| Consistency::AtRevision(Revision(r)));
    let from = Point { as_of: q.time("from")?, consistency: at(q.number("from_revision")?) };
    let to = Point { as_of: q.time("to")?, consistency: at(q.number("to_revision")?) };
    let (view, d) = h.app.queries.diff(&list_id, from, to, asked(&parts).wait).await?;
    Ok(answer(&parts, wire::diff(&view, &d), fixed(&from) && fixed(&to)))
}

fn page_size(q: &Query) -> Result<u32, Error> {
    match q.number("page_size")? {
        None => Ok(0),
        Some(n) => u32::try_from(n).map_err(|_| Error::invalid("page_size", format!("{n} is too large"))),
    }
}
