//! The export eligibility service: the domain core ([`registry::Registry`]
//! over immutable [`snapshot::Snapshot`]s), the durable [`store`], and the
//! gRPC services.
#![warn(missing_docs)]

pub mod auth;
pub mod config;
pub mod demo;
pub mod error;
pub mod grpc;
pub mod metrics;
pub mod model;
pub mod registry;
pub mod server;
pub mod snapshot;
pub mod store;
pub mod telemetry;
pub mod watch;
