//! The export eligibility service.
//!
//! Dependencies run one way, top to bottom; every module is named here:
//!
//! - the process: [`server`] (from bind to answer: [`startup`]'s
//!   NOT_SERVING port while the registry loads, then the layers and the
//!   background tasks; owns the [`lifecycle`]), [`config`], [`telemetry`]
//!   (logs and traces), [`prometheus`] (the Prometheus endpoint), [`demo`];
//! - transports, siblings over the application: [`grpc`] (tonic services;
//!   the framed fast paths), [`http`] (JSON and server-sent events) and
//!   [`console`] (pages), sharing [`wire`] (the `eligibility.v1` messages
//!   from and to domain values), [`query`] (query strings) and [`problem`]
//!   (RFC 9457 answers); behind the tower [`layers`] (auth, metrics,
//!   limits), which read the route each request was resolved to once
//!   against the one route table ([`routes`]); over the accepted
//!   connections ([`conns`]: limits, deadlines, the idle timeout) and the
//!   slow-consumer [`budget`]; callers are identified by [`identity`];
//! - the application: [`app`] (what transports hold; [`app::Queries`]
//!   orchestrates every read), [`reads`] (a [`reads::View`] answers every
//!   query at a resolved point; the request checks), [`writes`] (the write
//!   pipeline and activations), [`watch`] (the change stream; it depends on
//!   the registry, never the reverse);
//! - the state: [`registry`] (immutable snapshots, swapped per commit);
//! - the domain: [`snapshot`], [`model`], [`fields`] (a request's list
//!   and country fields, checked), [`limits`], [`error`] (the
//!   eligibility rule itself is the API crate's [`eligibility::decide`]);
//! - [`store`]: the `Store` trait, SQLite and Postgres.
#![warn(missing_docs)]

pub mod app;
pub mod budget;
pub mod config;
pub mod conns;
pub mod console;
pub mod demo;
pub mod error;
pub mod fields;
pub mod grpc;
pub mod http;
pub mod identity;
pub mod layers;
pub mod lifecycle;
pub mod limits;
pub mod model;
pub mod problem;
pub mod prometheus;
pub mod query;
pub mod reads;
pub mod registry;
pub mod routes;
pub mod server;
pub mod snapshot;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod watch;
pub mod wire;
pub mod writes;
