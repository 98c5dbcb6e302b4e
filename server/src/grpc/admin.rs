//! `eligibility.v1.AdminService`: the write RPCs.

use std::sync::Arc;

use eligibility::{Revision, proto::v1 as pb};
use tonic::{Request, Response, Status};

use super::convert::{self as cv, invalid, to_status};
use crate::{
    auth::{Authenticator, Role},
    model::ListMeta,
    registry::{EntryChange, ListPatch, Registry, WriteOptions, WriteResult},
};

/// The admin (write) service.
pub struct AdminService {
    registry: Arc<Registry>,
    auth: Arc<Authenticator>,
}

impl AdminService {
    /// A service over `registry`, guarded by `auth`.
    pub fn new(registry: Arc<Registry>, auth: Arc<Authenticator>) -> Self {
        AdminService { registry, auth }
    }

    /// Checks the caller's role and returns the actor to record: the
    /// authenticated principal (a caller cannot claim another), or the
    /// claimed actor when authentication is off.
    fn actor<T>(&self, req: &Request<T>, needed: Role, what: &str, claimed: &str) -> Result<String, Status> {
        match super::authorize(&self.auth, req, needed, what)? {
            Some(p) if !claimed.is_empty() && claimed != p.name => Err(Status::permission_denied(format!(
                "options.actor {claimed:?} is not the authenticated principal {:?}; leave it empty",
                p.name
            ))),
            Some(p) => Ok(p.name),
            None => Ok(claimed.to_owned()),
        }
    }
}

fn claimed(o: Option<&pb::WriteOptions>) -> &str {
    o.map(|o| o.actor.as_str()).unwrap_or("")
}

fn options(o: Option<&pb::WriteOptions>, actor: String) -> Result<WriteOptions, Status> {
    let o = o.ok_or_else(|| invalid("options", "required (at least options.reason)"))?;
    Ok(WriteOptions {
        actor,
        reason: o.reason.clone(),
        reference: o.reference.clone(),
        request_id: (!o.request_id.is_empty()).then(|| o.request_id.clone()),
        expected_revision: o.expected_revision.map(Revision),
    })
}

/// Counts a write's outcome, then converts it.
fn finish(r: Result<WriteResult, crate::error::Error>) -> Result<Response<pb::WriteResponse>, Status> {
    let outcome = match &r {
        Ok(w) if w.recorded => "recorded",
        Ok(w) if w.replayed => "replayed",
        Ok(_) => "noop",
        Err(_) => "failed",
    };
    metrics::counter!("eligibility_writes_total", "outcome" => outcome).increment(1);
    r.map(response).map_err(to_status)
}

fn response(w: WriteResult) -> Response<pb::WriteResponse> {
    Response::new(pb::WriteResponse {
        revision: w.revision.0,
        store_id: w.store_id.to_string(),
        recorded: w.recorded,
        replayed: w.replayed,
        changeset: w.changeset.as_deref().map(cv::changeset),
    })
}

#[tonic::async_trait]
impl pb::admin_service_server::AdminService for AdminService {
    async fn create_list(&self, req: Request<pb::CreateListRequest>) -> Result<Response<pb::WriteResponse>, Status> {
        let actor = self.actor(&req, Role::Admin, "CreateList", claimed(req.get_ref().options.as_ref()))?;
        let r = req.into_inner();
        let l = r.list.ok_or_else(|| invalid("list", "required"))?;
        let id = cv::list_id("list.id", &l.id)?;
        let meta = ListMeta {
            title: l.title,
            description: l.description,
            authority: l.authority,
            mode: cv::mode_from("list.mode", l.mode)?,
        };
        let opts = options(r.options.as_ref(), actor)?;
        finish(self.registry.create_list(id, meta, opts).await)
    }

    async fn update_list(&self, req: Request<pb::UpdateListRequest>) -> Result<Response<pb::WriteResponse>, Status> {
        let actor = self.actor(&req, Role::Admin, "UpdateList", claimed(req.get_ref().options.as_ref()))?;
        let r = req.into_inner();
        let id = cv::list_id("list_id", &r.list_id)?;
        let patch = ListPatch { title: r.title, description: r.description, authority: r.authority };
        let opts = options(r.options.as_ref(), actor)?;
        finish(self.registry.update_list(id, patch, opts).await)
    }

    async fn apply(&self, req: Request<pb::ApplyRequest>) -> Result<Response<pb::WriteResponse>, Status> {
        let actor = self.actor(&req, Role::Writer, "Apply", claimed(req.get_ref().options.as_ref()))?;
        let r = req.into_inner();
        let mut changes = Vec::with_capacity(r.changes.len());
        for (i, c) in r.changes.iter().enumerate() {
            changes.push(EntryChange {
                list: cv::list_id(&format!("changes[{i}].list_id"), &c.list_id)?,
                country: cv::country(&format!("changes[{i}].country"), &c.country)?,
                action: cv::action_from(&format!("changes[{i}].action"), c.action)?,
                conditions: c.conditions.clone(),
            });
        }
        let effective_at = cv::timestamp("effective_at", r.effective_at.as_ref())?;
        let opts = options(r.options.as_ref(), actor)?;
        finish(self.registry.apply(changes, effective_at, opts).await)
    }

    async fn replace_members(
        &self,
        req: Request<pb::ReplaceMembersRequest>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        let actor = self.actor(&req, Role::Writer, "ReplaceMembers", claimed(req.get_ref().options.as_ref()))?;
        let r = req.into_inner();
        let id = cv::list_id("list_id", &r.list_id)?;
        let mut members = Vec::with_capacity(r.members.len());
        for (i, m) in r.members.into_iter().enumerate() {
            members.push((cv::country(&format!("members[{i}].country"), &m.country)?, m.conditions));
        }
        let effective_at = cv::timestamp("effective_at", r.effective_at.as_ref())?;
        let opts = options(r.options.as_ref(), actor)?;
        finish(self.registry.replace_members(id, members, effective_at, opts).await)
    }
}
