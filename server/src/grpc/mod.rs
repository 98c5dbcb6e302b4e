//! The gRPC transport: thin tonic services over the registry. Every prost
//! type on the server side stays in this module.

mod admin;
pub mod convert;
mod query;
mod watch_route;

pub use admin::AdminService;
pub use query::EligibilityService;
pub use watch_route::EligibilityRoute;

use tonic::{Request, Status};

use crate::auth::{AuthError, Authenticator, Principal, Role};

/// Authenticates a call and checks its role (see [`crate::auth`]).
pub fn authorize<T>(
    auth: &Authenticator,
    req: &Request<T>,
    needed: Role,
    what: &str,
) -> Result<Option<Principal>, Status> {
    if !auth.enabled() {
        return Ok(None);
    }
    let bearer = match req.metadata().get("authorization") {
        None => None,
        Some(v) => {
            let v = v.to_str().map_err(|_| Status::unauthenticated("the authorization header is not text"))?;
            Some(
                v.strip_prefix("Bearer ")
                    .ok_or_else(|| Status::unauthenticated("the authorization header must be `Bearer <token>`"))?,
            )
        }
    };
    let cn = req.peer_certs().and_then(|certs| certs.first().and_then(|c| crate::auth::common_name(c.as_ref())));
    auth.authorize(bearer, cn.as_deref(), needed, what).map_err(|e| match e {
        AuthError::Unauthenticated(m) => Status::unauthenticated(m),
        AuthError::PermissionDenied(m) => Status::permission_denied(m),
    })
}
