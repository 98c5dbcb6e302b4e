//! The gRPC transport: thin tonic services over the application. Every
//! prost type on the server side stays in this module.

mod admin;
pub mod convert;
mod encode;
mod framed;
mod query;
pub mod reflection;

pub use admin::AdminService;
pub use framed::Framed;
pub use query::EligibilityService;
