//! `eligibility.v1.AdminService`: the write RPCs. Decode, hand the values
//! to the write side (which checks them), encode. Who may call which
//! method is the auth layer's table; the handler only records the
//! authenticated caller as the actor.

use std::sync::Arc;

use eligibility::proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::convert::{self as cv, to_status};
use crate::{
    app::App,
    fields,
    identity::Principal,
    layers::auth::Caller,
    writes::{ListPatch, WriteOptions, WriteResult},
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

/// The authenticated caller of a request (`None`: anonymous, or
/// authentication off).
fn caller<T>(req: &Request<T>) -> Option<&Principal> {
    req.extensions().get::<Caller>().and_then(|c| c.0.as_ref())
}

/// Counts a write's outcome, then encodes it.
fn finish(r: Result<WriteResult, crate::error::Error>) -> Result<Response<pb::WriteResponse>, Status> {
    crate::writes::count(&r);
    r.map(|w| Response::new(cv::written(&w))).map_err(to_status)
}

#[tonic::async_trait]
impl pb::admin_service_server::AdminService for AdminService {
    async fn create_list(&self, req: Request<pb::CreateListRequest>) -> Result<Response<pb::WriteResponse>, Status> {
        // The list's errors come before the options' (as they always have).
        let opts = cv::write_options(caller(&req), req.get_ref().options.as_ref());
        let (id, meta) = cv::new_list(req.into_inner().list).map_err(to_status)?;
        finish(self.app.writer.create_list(id, meta, opts.map_err(to_status)?).await)
    }

    async fn update_list(&self, req: Request<pb::UpdateListRequest>) -> Result<Response<pb::WriteResponse>, Status> {
        let opts = cv::write_options(caller(&req), req.get_ref().options.as_ref());
        let r = req.into_inner();
        let id = fields::list_id("list_id", &r.list_id).map_err(to_status)?;
        let patch = ListPatch { title: r.title, description: r.description, authority: r.authority };
        finish(self.app.writer.update_list(id, patch, opts.map_err(to_status)?).await)
    }

    async fn apply(&self, req: Request<pb::ApplyRequest>) -> Result<Response<pb::WriteResponse>, Status> {
        let opts = cv::write_options(caller(&req), req.get_ref().options.as_ref());
        let r = req.into_inner();
        let changes = cv::entry_changes(&r.changes, self.app.limits()).map_err(to_status)?;
        let effective_at = cv::timestamp("effective_at", r.effective_at.as_ref()).map_err(to_status)?;
        let opts = WriteOptions { validate_only: r.validate_only, ..opts.map_err(to_status)? };
        finish(self.app.writer.apply(changes, effective_at, opts).await)
    }

    async fn replace_members(
        &self,
        req: Request<pb::ReplaceMembersRequest>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        let opts = cv::write_options(caller(&req), req.get_ref().options.as_ref());
        let r = req.into_inner();
        let id = fields::list_id("list_id", &r.list_id).map_err(to_status)?;
        let members = cv::members(r.members).map_err(to_status)?;
        let effective_at = cv::timestamp("effective_at", r.effective_at.as_ref()).map_err(to_status)?;
        let opts = WriteOptions { validate_only: r.validate_only, ..opts.map_err(to_status)? };
        finish(self.app.writer.replace_members(id, members, effective_at, opts).await)
    }
}
