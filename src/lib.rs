//! The `eligibility.v1` API crate: the generated gRPC code, the encoded
//! descriptor set (for server reflection), conversions at the wire edge, and
//! the domain types shared by the server and the client: [`Country`],
//! [`ListId`], [`Revision`], [`Timestamp`], the read [`Point`], and the
//! eligibility rule ([`decide`] over [`ListMode`] and [`EntryAction`]).
//!
//! The server and client crates depend on this one; applications normally
//! use the client crate instead of the generated code.
#![warn(missing_docs)]

mod convert;
mod country;
mod decision;
pub mod error_info;
mod list_id;
mod revision;
mod time;

pub use convert::{point_from_proto, point_to_proto};
pub use country::Country;
pub use decision::{DecisionReason, EntryAction, ListMode, decide};
pub use list_id::{LIST_ID_MAX_LEN, ListId};
pub use revision::{Consistency, Point, Revision};
pub use time::Timestamp;

/// Generated code for the `eligibility.v1` protobuf package.
pub mod proto {
    /// `eligibility.v1`: messages, the `EligibilityService` and
    /// `AdminService` clients and servers.
    #[allow(missing_docs, clippy::all, clippy::pedantic)]
    pub mod v1 {
        tonic::include_proto!("eligibility.v1");
    }
}

/// The encoded `FileDescriptorSet` of `proto/`, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/eligibility_v1_descriptor.bin"));

/// A value that is not a valid domain value. Messages name the bad value;
/// the caller adds which field it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TypeError {
    /// Not an accepted ISO 3166-1 code.
    #[error(
        "{0:?} is not an ISO 3166-1 country code (expected an officially assigned alpha-2, alpha-3 or numeric code, or XK)"
    )]
    Country(String),
    /// Not a valid list id.
    #[error("{0:?} is not a valid list id (expected ^[a-z0-9][a-z0-9._-]{{0,62}}$)")]
    ListId(String),
    /// Not a value of a wire enum (or its UNSPECIFIED value).
    #[error("{value} is not {kind} (expected {expected})")]
    Enum {
        /// Which enum, with its article ("a list mode").
        kind: &'static str,
        /// The wire value.
        value: i32,
        /// Its valid names.
        expected: &'static str,
    },
    /// Not a valid time.
    #[error(
        "{0:?} is not a valid time (expected RFC 3339 like 2021-11-01T00:00:00Z or a date like 2021-11-01, years 1-9999)"
    )]
    Timestamp(String),
}
