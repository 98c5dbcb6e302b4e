//! The gRPC transport: thin tonic services over the application. Every
//! prost type on the server side stays in this module.

mod admin;
pub mod convert;
mod encode;
mod query;
pub mod reflection;
mod watch_route;

pub use admin::AdminService;
pub use query::EligibilityService;
pub use watch_route::EligibilityRoute;
