//! The write routes: the body is the RPC's request as JSON; the
//! `Idempotency-Key` header is the request id and `If-Match: "<revision>"`
//! the expected revision (a stale one answers 412).

use axum::extract::{Path, Request, State};
use eligibility::proto::v1 as pb;
use http::{StatusCode, header};

use super::{Answer, Http, json};
use crate::{
    error::{Error, Result},
    fields,
    identity::Principal,
    layers::auth::Caller,
    wire,
    writes::{ListPatch, WriteOptions, WriteResult},
};

fn invalid(field: &str, message: &str) -> Error {
    Error::invalid(field, message)
}

/// The write options with the headers' request id and expected revision.
fn options(parts: &http::request::Parts, options: Option<pb::WriteOptions>) -> Result<pb::WriteOptions> {
    let mut o = options.unwrap_or_default();
    if let Some(key) = parts.headers.get("idempotency-key") {
        let key = key.to_str().map_err(|_| invalid("Idempotency-Key", "not text"))?;
        if !o.request_id.is_empty() && o.request_id != key {
            return Err(invalid("Idempotency-Key", "differs from options.requestId in the body"));
        }
        o.request_id = key.to_owned();
    }
    // An empty If-Match states no precondition (as an absent one).
    if let Some(tag) = parts.headers.get(header::IF_MATCH).filter(|t| !t.as_bytes().trim_ascii().is_empty()) {
        let tag = tag.to_str().map_err(|_| invalid("If-Match", "not text"))?;
        let revision = entity_tag_revision(tag)
            .ok_or_else(|| invalid("If-Match", &format!("{tag:?} is not \"<revision>\" or an ETag of this API")))?;
        if o.expected_revision.is_some_and(|e| e != revision) {
            return Err(invalid("If-Match", "differs from options.expectedRevision in the body"));
        }
        o.expected_revision = Some(revision);
    }
    Ok(o)
}

/// The revision of an entity tag as the OpenAPI document states it:
/// `"<revision>"` or an ETag of a read (`"<store_id>:<revision>"`),
/// optionally weak (`W/`); the revision at most 19 digits.
fn entity_tag_revision(tag: &str) -> Option<u64> {
    let tag = tag.trim();
    let quoted = tag.strip_prefix("W/").unwrap_or(tag);
    let inner = quoted.strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains('"') {
        return None;
    }
    fields::revision_digits(inner.rsplit_once(':').map_or(inner, |(_, r)| r))
}

/// The list id of the path into the body (which may repeat it, not
/// contradict it).
fn from_path(body: &mut String, path: String) -> Result<()> {
    if !body.is_empty() && *body != path {
        return Err(invalid("listId", "differs from the list in the path"));
    }
    *body = path;
    Ok(())
}

/// The authenticated caller (`None`: anonymous, or authentication off).
fn caller(parts: &http::request::Parts) -> Option<&Principal> {
    parts.extensions.get::<Caller>().and_then(|c| c.0.as_ref())
}

/// The write options of a body with the headers' request id and expected
/// revision (their errors at once), then, as a result the write checks
/// after its own fields (as gRPC does), with the actor to record.
fn write_options(parts: &http::request::Parts, o: Option<pb::WriteOptions>) -> Result<Result<WriteOptions>> {
    let o = options(parts, o)?;
    Ok(wire::write_options(caller(parts), Some(&o)))
}

/// Counts a write's outcome and answers it (with the new head as its
/// ETag), or its problem.
fn written(result: Result<WriteResult>) -> Answer {
    crate::writes::count(&result);
    let w = wire::written(&result?);
    let mut resp = json(StatusCode::OK, &w);
    if let Ok(tag) = format!("\"{}:{}\"", w.store_id, w.revision).parse() {
        resp.headers_mut().insert(header::ETAG, tag);
    }
    Ok(resp)
}

/// `POST /v1/lists`: CreateList.
pub async fn create_list(State(h): State<Http>, req: Request) -> Answer {
    let (parts, b) = req.into_parts();
    let msg: pb::CreateListRequest = super::body(b, h.app.limits()).await?;
    let opts = write_options(&parts, msg.options)?;
    let (id, meta) = wire::new_list(msg.list)?;
    written(h.app.writer.create_list(id, meta, opts?).await)
}

/// `PATCH /v1/lists/{list_id}`: UpdateList.
pub async fn update_list(State(h): State<Http>, Path(list_id): Path<String>, req: Request) -> Answer {
    let (parts, b) = req.into_parts();
    let mut msg: pb::UpdateListRequest = super::body(b, h.app.limits()).await?;
    from_path(&mut msg.list_id, list_id)?;
    let opts = write_options(&parts, msg.options.take())?;
    let id = fields::list_id("list_id", &msg.list_id)?;
    let patch = ListPatch { title: msg.title, description: msg.description, authority: msg.authority };
    written(h.app.writer.update_list(id, patch, opts?).await)
}

/// `POST /v1/changesets`: Apply.
pub async fn apply(State(h): State<Http>, req: Request) -> Answer {
    let (parts, b) = req.into_parts();
    let msg: pb::ApplyRequest = super::body(b, h.app.limits()).await?;
    let opts = write_options(&parts, msg.options)?;
    let changes = wire::entry_changes(&msg.changes, h.app.limits())?;
    let effective_at = wire::timestamp("effective_at", msg.effective_at.as_ref())?;
    let opts = WriteOptions { validate_only: msg.validate_only, ..opts? };
    written(h.app.writer.apply(changes, effective_at, opts).await)
}

/// `PUT /v1/lists/{list_id}/members`: ReplaceMembers.
pub async fn replace_members(State(h): State<Http>, Path(list_id): Path<String>, req: Request) -> Answer {
    let (parts, b) = req.into_parts();
    let mut msg: pb::ReplaceMembersRequest = super::body(b, h.app.limits()).await?;
    from_path(&mut msg.list_id, list_id)?;
    let opts = write_options(&parts, msg.options.take())?;
    let id = fields::list_id("list_id", &msg.list_id)?;
    let members = wire::members(msg.members)?;
    let effective_at = wire::timestamp("effective_at", msg.effective_at.as_ref())?;
    let opts = WriteOptions { validate_only: msg.validate_only, ..opts? };
    written(h.app.writer.replace_members(id, members, effective_at, opts).await)
}
