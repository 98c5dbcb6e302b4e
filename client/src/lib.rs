//! Typed Rust client for the export eligibility service (`eligibility.v1`).
//!
//! ```no_run
//! use eligibility_client::{Client, Country, ListId};
//!
//! # async fn demo() -> eligibility_client::Result<()> {
//! let client = Client::connect("http://127.0.0.1:50051").await?;
//! let cyber = ListId::parse("cyber").unwrap();
//! let answer = client.check(&cyber, Country::parse("MX").unwrap()).await?;
//! println!("eligible: {} ({:?}) at revision {}", answer.decision.eligible, answer.decision.reason, answer.header.revision);
//! # Ok(()) }
//! ```
//!
//! Every read answers with a [`Header`] (revision, store id, valid time).
//! Reads take a [`Point`] to ask "as of" a time and/or "at" a revision.
//! The generated wire types stay reachable through [`Client::raw_query`] and
//! [`Client::raw_admin`] for the rare case that needs them.
#![warn(missing_docs)]

mod client;
mod error;
mod mirror;
mod types;
mod watch;

pub use client::{
    Auth, BatchAnswer, CheckAnswer, Client, ClientBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, Members,
    RetryPolicy, TlsOptions, Transport,
};
pub use eligibility::{Consistency, Country, ListId, Point, Revision, Timestamp, point_to_proto};
pub use error::{Error, Result};
pub use mirror::{AppliedChange, Mirror, MirrorDecision, MirrorOptions, MirrorStatus, Verdict};
pub use types::*;
pub use watch::{ConnectionState, SnapshotList, WatchEvent, WatchOptions, WatchStart, WatchStream};

/// The generated `eligibility.v1` wire types, for the rare case that needs
/// them (the typed API covers the common path).
pub use eligibility::proto::v1 as proto;
