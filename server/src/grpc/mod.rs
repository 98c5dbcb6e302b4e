//! The gRPC transport: thin tonic services over the registry. Every prost
//! type on the server side stays in this module.

mod admin;
pub mod convert;
mod query;

pub use admin::AdminService;
pub use query::EligibilityService;
