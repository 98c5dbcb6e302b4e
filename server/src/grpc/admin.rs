//! `eligibility.v1.AdminService`: the write RPCs. Decode, hand the values
//! to the write side (which checks them), encode. Who may call which
//! method is the auth layer's table; the handler only records the
//! authenticated caller as the actor.

use std::sync::Arc;

use eligibility::{Revision, proto::v1 as pb};
use tonic::{Request, Response, Status};

use super::convert::{self as cv, invalid, to_status};
use crate::{
    app::App,
    layers::auth::Caller,
    model::ListMeta,
    reads::request,
    writes::{EntryChange, ListPatch, WriteOptions, WriteResult},
};

/// The admin (write) service.
pub struct AdminService {
    app: Arc<App>,
}

impl AdminService {
    /// A service over `app`.
    pub fn new(app: Arc<App>) -> Self {
        AdminService { app }
    }
}

/// The options of a write, with the actor to record: the authenticated
/// caller (who cannot claim to be another), or the claimed actor when the
/// caller is anonymous (authentication off).
fn options<T>(req: &Request<T>, o: Option<&pb::WriteOptions>) -> Result<WriteOptions, Status> {
    let claimed = o.map(|o| o.actor.as_str()).unwrap_or("");
    let actor = match req.extensions().get::<Caller>().and_then(|c| c.0.as_ref()) {
        Some(p) if !claimed.is_empty() && claimed != p.name => {
            return Err(Status::permission_denied(format!(
                "options.actor {claimed:?} is not the authenticated principal {:?}; leave it empty",
                p.name
            )));
        }
        Some(p) => p.name.clone(),
        None => claimed.to_owned(),
    };
    let o = o.ok_or_else(|| invalid("options", "required (at least options.reason)"))?;
    Ok(WriteOptions {
        actor,
        reason: o.reason.clone(),
        reference: o.reference.clone(),
        request_id: (!o.request_id.is_empty()).then(|| o.request_id.clone()),
        expected_revision: o.expected_revision.map(Revision),
        validate_only: false,
    })
}

/// Counts a write's outcome, then converts it.
fn finish(r: Result<WriteResult, crate::error::Error>) -> Result<Response<pb::WriteResponse>, Status> {
    let outcome = match &r {
        Ok(w) if w.validate_only => "validated",
        Ok(w) if w.recorded => "recorded",
        Ok(w) if w.replayed => "replayed",
        Ok(_) => "noop",
        Err(_) => "failed",
    };
    metrics::counter!("eligibility_writes_total", "outcome" => outcome).increment(1);
    r.map(|w| {
        Response::new(pb::WriteResponse {
            revision: w.revision.0,
            store_id: w.store_id.to_string(),
            recorded: w.recorded,
            replayed: w.replayed,
            changeset: w.changeset.as_deref().map(cv::changeset),
            validate_only: w.validate_only,
        })
    })
    .map_err(to_status)
}

#[tonic::async_trait]
impl pb::admin_service_server::AdminService for AdminService {
    async fn create_list(&self, req: Request<pb::CreateListRequest>) -> Result<Response<pb::WriteResponse>, Status> {
        let opts = options(&req, req.get_ref().options.as_ref());
        let l = req.into_inner().list.ok_or_else(|| invalid("list", "required"))?;
        let id = request::list_id("list.id", &l.id).map_err(to_status)?;
        let meta = ListMeta {
            title: l.title,
            description: l.description,
            authority: l.authority,
            mode: cv::mode_from("list.mode", l.mode)?,
        };
        finish(self.app.writer.create_list(id, meta, opts?).await)
    }

    async fn update_list(&self, req: Request<pb::UpdateListRequest>) -> Result<Response<pb::WriteResponse>, Status> {
        let opts = options(&req, req.get_ref().options.as_ref());
        let r = req.into_inner();
        let id = request::list_id("list_id", &r.list_id).map_err(to_status)?;
        let patch = ListPatch { title: r.title, description: r.description, authority: r.authority };
        finish(self.app.writer.update_list(id, patch, opts?).await)
    }

    async fn apply(&self, req: Request<pb::ApplyRequest>) -> Result<Response<pb::WriteResponse>, Status> {
        let opts = options(&req, req.get_ref().options.as_ref());
        let r = req.into_inner();
        crate::writes::request::change_count(r.changes.len(), self.app.limits()).map_err(to_status)?;
        let mut changes = Vec::with_capacity(r.changes.len());
        for (i, c) in r.changes.iter().enumerate() {
            changes.push(EntryChange {
                list: request::list_id(&format!("changes[{i}].list_id"), &c.list_id).map_err(to_status)?,
                country: request::country(&format!("changes[{i}].country"), &c.country).map_err(to_status)?,
                action: cv::action_from(&format!("changes[{i}].action"), c.action)?,
                conditions: c.conditions.clone(),
            });
        }
        let effective_at = cv::timestamp("effective_at", r.effective_at.as_ref())?;
        let opts = WriteOptions { validate_only: r.validate_only, ..opts? };
        finish(self.app.writer.apply(changes, effective_at, opts).await)
    }

    async fn replace_members(
        &self,
        req: Request<pb::ReplaceMembersRequest>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        let opts = options(&req, req.get_ref().options.as_ref());
        let r = req.into_inner();
        let id = request::list_id("list_id", &r.list_id).map_err(to_status)?;
        let mut members = Vec::with_capacity(r.members.len());
        for (i, m) in r.members.into_iter().enumerate() {
            members.push((
                request::country(&format!("members[{i}].country"), &m.country).map_err(to_status)?,
                m.conditions,
            ));
        }
        let effective_at = cv::timestamp("effective_at", r.effective_at.as_ref())?;
        let opts = WriteOptions { validate_only: r.validate_only, ..opts? };
        finish(self.app.writer.replace_members(id, members, effective_at, opts).await)
    }
}
