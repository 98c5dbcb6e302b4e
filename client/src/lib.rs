//! Typed Rust client for the export eligibility service (`eligibility.v1`).
//!
//! Export, sales and shipping platforms embed this crate to ask "may
//! country X receive items of list L, now or as of date T, and why?", to
//! follow every change in order, and to keep a local mirror that answers
//! in-process.
//!
//! # Checks
//!
//! ```no_run
//! use eligibility_client::{Client, Country, ListId, Point, Timestamp};
//!
//! # async fn demo() -> eligibility_client::Result<()> {
//! let client = Client::connect("http://127.0.0.1:50051").await?;
//! let cyber = ListId::parse("cyber").unwrap();
//! let mx = Country::parse("MEX").unwrap(); // alpha-2, alpha-3 or numeric
//! let now = client.check(&cyber, mx).await?;
//! println!("{} ({:?}) at revision {}", now.decision.eligible, now.decision.reason, now.header.revision);
//! // What was the rule on 2021-10-15, and what did the registry know then?
//! let then = client.check_at(&cyber, mx, Point::as_of(Timestamp::parse("2021-10-15").unwrap())).await?;
//! if let Some(change) = then.decision.deciding_change {
//!     println!("decided by revision {}: {}", change.revision, change.reason);
//! }
//! # Ok(()) }
//! ```
//!
//! # Following changes
//!
//! [`Client::watch`] returns a [`WatchStream`] that reconnects with backoff
//! and resumes after the last revision it yielded: no gap, no duplicate,
//! never backwards, across disconnects and server restarts. It ends with
//! an error when resuming is unsafe (another store) or not allowed.
//!
//! ```no_run
//! use eligibility_client::{Client, Revision, WatchEvent, WatchOptions, WatchStart};
//! use tokio_stream::StreamExt;
//!
//! # async fn demo(client: Client) -> eligibility_client::Result<()> {
//! let mut stream = client.watch(WatchOptions::from(WatchStart::After(Revision(0)))).await?;
//! while let Some(event) = stream.next().await {
//!     match event? {
//!         WatchEvent::Changeset(c) => println!("revision {}: {}", c.revision, c.reason),
//!         WatchEvent::Progress(r) => println!("up to date through {r}"),
//!         WatchEvent::Snapshot { revision, .. } => println!("snapshot at {revision}"),
//!         // Events, answers, options and errors are `#[non_exhaustive]`:
//!         // a later minor version may add to them.
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! # A local mirror
//!
//! [`Client::mirror`] keeps lists in memory (snapshot, then the stream)
//! and answers [`Mirror::check`] in tens of nanoseconds, time-aware: a
//! future-dated change takes effect at its time without a round trip. Past
//! its staleness bound it fails closed with [`Error::Stale`].
//!
//! ```no_run
//! use std::time::Duration;
//! use eligibility_client::{Client, Country, ListId, MirrorOptions};
//!
//! # async fn demo(client: Client) -> eligibility_client::Result<()> {
//! let cyber = ListId::parse("cyber").unwrap();
//! let mirror = client
//!     .mirror(MirrorOptions::default().with_list(cyber.clone()).with_max_staleness(Duration::from_secs(60)))
//!     .await?;
//! let verdict = mirror.check(&cyber, Country::parse("SA").unwrap())?;
//! if !verdict.eligible {
//!     // block the deal
//! }
//! let mut changes = mirror.subscribe(); // react to cuts as they apply
//! # let _ = changes.recv().await;
//! # Ok(()) }
//! ```
//!
//! # Writes
//!
//! Every write is one changeset with a reason; a request id makes retries
//! safe, an expected revision gives optimistic concurrency
//! ([`Error::Conflict`]).
//!
//! ```no_run
//! use eligibility_client::{Client, Country, EntryChange, ListId, Timestamp, WriteOptions};
//!
//! # async fn demo(client: Client) -> eligibility_client::Result<()> {
//! let cyber = ListId::parse("cyber").unwrap();
//! let outcome = client
//!     .apply(
//!         &[EntryChange::remove(&cyber, Country::parse("MX").unwrap())],
//!         Some(Timestamp::parse("2021-11-01").unwrap()),
//!         &WriteOptions::reason("list cut").with_reference("DECA notice 2021/11").with_request_id("cut-2021-11"),
//!     )
//!     .await?;
//! println!("recorded at revision {}", outcome.revision);
//! # Ok(()) }
//! ```
//!
//! Connection options (TLS, bearer token, timeouts, keep-alive, retries of
//! idempotent calls with exponential backoff and jitter) are on
//! [`ClientBuilder`]. The generated wire types stay reachable through
//! [`proto`], [`Client::raw_query`] and [`Client::raw_admin`].
#![warn(missing_docs)]

mod client;
mod error;
mod mirror;
mod types;
mod watch;

pub use client::{
    BatchAnswer, CheckAnswer, Client, ClientBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, HistoryAnswer,
    ListAnswer, ListsAnswer, Members, RetryPolicy, TlsOptions, Transport,
};
pub use eligibility::{Consistency, Country, ListId, Point, Revision, Timestamp, point_to_proto};
pub use error::{Error, Result};
pub use mirror::{AppliedChange, Mirror, MirrorDecision, MirrorOptions, MirrorStatus, Verdict};
pub use types::*;
pub use watch::{ConnectionState, SnapshotList, WatchEvent, WatchOptions, WatchStart, WatchStream};

/// The generated `eligibility.v1` wire types, for the rare case that needs
/// them (the typed API covers the common path).
pub use eligibility::proto::v1 as proto;
